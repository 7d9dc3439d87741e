/* A growable byte buffer and a bounds-checked read cursor. */
#include "util/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static kiln_err failed(struct kiln_buf *b)
{
  b->failed = 1;
  return KILN_E_NOMEM;
}

kiln_err kiln_buf_reserve(struct kiln_buf *b, size_t extra)
{
  if (b->failed || extra > SIZE_MAX - b->len - 1)
    return failed(b);
  size_t need = b->len + extra + 1;
  if (need <= b->cap)
    return KILN_OK;
  size_t cap = b->cap ? b->cap : 64;
  while (cap < need)
    cap = cap > SIZE_MAX / 2 ? need : cap * 2;
  char *p = realloc(b->data, cap);
  if (!p)
    return failed(b);
  b->data = p;
  b->cap = cap;
  return KILN_OK;
}

kiln_err kiln_buf_append(struct kiln_buf *b, const void *data, size_t len)
{
  kiln_err rc = kiln_buf_reserve(b, len);
  if (rc)
    return rc;
  if (len)
    memcpy(b->data + b->len, data, len);
  b->len += len;
  b->data[b->len] = '\0';
  return KILN_OK;
}

kiln_err kiln_buf_puts(struct kiln_buf *b, const char *s)
{
  return kiln_buf_append(b, s, strlen(s));
}

kiln_err kiln_buf_putc(struct kiln_buf *b, char c)
{
  return kiln_buf_append(b, &c, 1);
}

kiln_err kiln_buf_vprintf(struct kiln_buf *b, const char *fmt, va_list ap)
{
  va_list copy;
  va_copy(copy, ap);
  int n = vsnprintf(NULL, 0, fmt, copy);
  va_end(copy);
  if (n < 0) {
    b->failed = 1;
    return KILN_E_INVALID;
  }
  kiln_err rc = kiln_buf_reserve(b, (size_t)n);
  if (rc)
    return rc;
  vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
  b->len += (size_t)n;
  return KILN_OK;
}

kiln_err kiln_buf_printf(struct kiln_buf *b, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  kiln_err rc = kiln_buf_vprintf(b, fmt, ap);
  va_end(ap);
  return rc;
}

kiln_err kiln_buf_status(const struct kiln_buf *b)
{
  return b->failed ? KILN_E_NOMEM : KILN_OK;
}

const char *kiln_buf_str(const struct kiln_buf *b)
{
  return b->data ? b->data : "";
}

char *kiln_buf_detach(struct kiln_buf *b)
{
  char *p = b->data;
  if (b->failed) {
    free(p);
    p = NULL;
  } else if (!p) {
    p = calloc(1, 1);
  }
  b->data = NULL;
  b->len = b->cap = 0;
  b->failed = 0;
  return p;
}

void kiln_buf_reset(struct kiln_buf *b)
{
  b->len = 0;
  b->failed = 0;
  if (b->data)
    b->data[0] = '\0';
}

void kiln_buf_free(struct kiln_buf *b)
{
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
  b->failed = 0;
}

int kiln_cursor_take(struct kiln_cursor *c, void *out, size_t n)
{
  if (c->left < n)
    return 0;
  if (out && n)
    memcpy(out, c->p, n);
  c->p += n;
  c->left -= n;
  return 1;
}

int kiln_cursor_be16(struct kiln_cursor *c, uint16_t *out)
{
  uint8_t b[2];
  if (!kiln_cursor_take(c, b, 2))
    return 0;
  *out = (uint16_t)((b[0] << 8) | b[1]);
  return 1;
}

int kiln_cursor_be32(struct kiln_cursor *c, uint32_t *out)
{
  uint8_t b[4];
  if (!kiln_cursor_take(c, b, 4))
    return 0;
  *out = ((uint32_t)b[0] << 24) | ((uint32_t)b[1] << 16) | ((uint32_t)b[2] << 8) | b[3];
  return 1;
}

int kiln_cursor_be64(struct kiln_cursor *c, uint64_t *out)
{
  uint32_t hi, lo;
  if (!kiln_cursor_be32(c, &hi) || !kiln_cursor_be32(c, &lo))
    return 0;
  *out = ((uint64_t)hi << 32) | lo;
  return 1;
}
