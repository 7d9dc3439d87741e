/* A growable byte buffer (always NUL-terminated) and a length-carrying cursor for parsing. */
#ifndef KILN_UTIL_BUF_H
#define KILN_UTIL_BUF_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <kiln/plugin.h>

/* Appends that fail (out of memory) set the sticky flag failed; later appends do nothing and
 * kiln_buf_detach returns NULL, so text is built with unchecked appends and checked once where it
 * is used: kiln_buf_status(), or the NULL from kiln_buf_detach(). */
struct kiln_buf {
  char *data; /* owned; NULL until the first append; data[len] == '\0' when non-NULL */
  size_t len;
  size_t cap;
  int failed;
};

#define KILN_BUF_INIT                                                                              \
  {                                                                                                \
    NULL, 0, 0, 0                                                                                  \
  }

kiln_err kiln_buf_append(struct kiln_buf *b, const void *data, size_t len);
kiln_err kiln_buf_puts(struct kiln_buf *b, const char *s);
kiln_err kiln_buf_putc(struct kiln_buf *b, char c);
kiln_err kiln_buf_printf(struct kiln_buf *b, const char *fmt, ...) KILN_PRINTF(2, 3);
kiln_err kiln_buf_vprintf(struct kiln_buf *b, const char *fmt, va_list ap);
/* Make room for at least extra more bytes. */
kiln_err kiln_buf_reserve(struct kiln_buf *b, size_t extra);
/* KILN_E_NOMEM when an append failed since the buffer was made or reset, else KILN_OK. */
KILN_MUST_CHECK kiln_err kiln_buf_status(const struct kiln_buf *b);
/* The contents as a C string ("" when empty); stays owned by b. */
const char *kiln_buf_str(const struct kiln_buf *b);
/* Hand the contents to the caller (who frees them); b becomes empty. NULL when out of memory or
 * an append failed (the partial text is freed). */
char *kiln_buf_detach(struct kiln_buf *b);
void kiln_buf_reset(struct kiln_buf *b);
void kiln_buf_free(struct kiln_buf *b);

/* A read cursor over untrusted bytes: every read checks the remaining length. */
struct kiln_cursor {
  const uint8_t *p;
  size_t left;
};

int kiln_cursor_take(struct kiln_cursor *c, void *out, size_t n);
int kiln_cursor_be16(struct kiln_cursor *c, uint16_t *out);
int kiln_cursor_be32(struct kiln_cursor *c, uint32_t *out);
int kiln_cursor_be64(struct kiln_cursor *c, uint64_t *out);

#endif
