/* cJSON helpers: canonical (sorted-key) printing, parsing files with line/column errors. */
#include "util/json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/fs.h"

kiln_err kiln_json_quote(const char *s, struct kiln_buf *out)
{
  kiln_err rc = kiln_buf_putc(out, '"');
  for (const unsigned char *p = (const unsigned char *)s; *p && rc == KILN_OK; p++) {
    switch (*p) {
    case '"': rc = kiln_buf_puts(out, "\\\""); break;
    case '\\': rc = kiln_buf_puts(out, "\\\\"); break;
    case '\n': rc = kiln_buf_puts(out, "\\n"); break;
    case '\r': rc = kiln_buf_puts(out, "\\r"); break;
    case '\t': rc = kiln_buf_puts(out, "\\t"); break;
    case '\b': rc = kiln_buf_puts(out, "\\b"); break;
    case '\f': rc = kiln_buf_puts(out, "\\f"); break;
    default:
      if (*p < 0x20)
        rc = kiln_buf_printf(out, "\\u%04x", *p);
      else
        rc = kiln_buf_putc(out, (char)*p);
    }
  }
  return rc ? rc : kiln_buf_putc(out, '"');
}

static int compare_keys(const void *a, const void *b)
{
  const cJSON *x = *(const cJSON *const *)a, *y = *(const cJSON *const *)b;
  return strcmp(x->string, y->string);
}

static kiln_err print_number(const cJSON *v, struct kiln_buf *out)
{
  double d = v->valuedouble;
  if (!isfinite(d))
    return kiln_buf_puts(out, "null");
  if (d == floor(d) && fabs(d) < 9007199254740992.0)
    return kiln_buf_printf(out, "%.0f", d);
  /* The shortest form that reads back as the same double. */
  char text[40];
  for (int precision = 15; precision <= 17; precision++) {
    snprintf(text, sizeof text, "%.*g", precision, d);
    if (strtod(text, NULL) == d)
      break;
  }
  return kiln_buf_puts(out, text);
}

static kiln_err print_value(const cJSON *v, struct kiln_buf *out, int indent, int depth, int sort)
{
  kiln_err rc = KILN_OK;
  if (depth > 256)
    return KILN_E_INVALID;
  if (cJSON_IsNull(v))
    return kiln_buf_puts(out, "null");
  if (cJSON_IsFalse(v))
    return kiln_buf_puts(out, "false");
  if (cJSON_IsTrue(v))
    return kiln_buf_puts(out, "true");
  if (cJSON_IsNumber(v))
    return print_number(v, out);
  if (cJSON_IsString(v))
    return kiln_json_quote(v->valuestring, out);
  int is_object = cJSON_IsObject(v);
  if (!is_object && !cJSON_IsArray(v))
    return kiln_buf_puts(out, "null");
  size_t n = 0;
  for (const cJSON *c = v->child; c; c = c->next)
    n++;
  const cJSON **items = n ? malloc(n * sizeof *items) : NULL;
  if (n && !items)
    return KILN_E_NOMEM;
  size_t i = 0;
  for (const cJSON *c = v->child; c; c = c->next)
    items[i++] = c;
  if (sort && is_object && n > 1)
    qsort(items, n, sizeof *items, compare_keys);
  rc = kiln_buf_putc(out, is_object ? '{' : '[');
  for (i = 0; i < n && rc == KILN_OK; i++) {
    if (i)
      rc = kiln_buf_putc(out, ',');
    if (indent)
      rc = rc ? rc : kiln_buf_printf(out, "\n%*s", indent * (depth + 1), "");
    if (is_object) {
      rc = rc ? rc : kiln_json_quote(items[i]->string, out);
      rc = rc ? rc : kiln_buf_puts(out, indent ? ": " : ":");
    }
    rc = rc ? rc : print_value(items[i], out, indent, depth + 1, sort);
  }
  if (indent && n && rc == KILN_OK)
    rc = kiln_buf_printf(out, "\n%*s", indent * depth, "");
  rc = rc ? rc : kiln_buf_putc(out, is_object ? '}' : ']');
  free(items);
  return rc;
}

kiln_err kiln_json_canonical(const cJSON *value, struct kiln_buf *out)
{
  return print_value(value, out, 0, 0, 1);
}

kiln_err kiln_json_pretty(const cJSON *value, struct kiln_buf *out)
{
  kiln_err rc = print_value(value, out, 2, 0, 1);
  return rc ? rc : kiln_buf_putc(out, '\n');
}

kiln_err kiln_json_pretty_ordered(const cJSON *value, struct kiln_buf *out)
{
  kiln_err rc = print_value(value, out, 2, 0, 0);
  return rc ? rc : kiln_buf_putc(out, '\n');
}

kiln_err kiln_json_parse(const char *text, size_t len, const char *name, cJSON **out,
                         struct kiln_error *err)
{
  const char *end = NULL;
  *out = cJSON_ParseWithLengthOpts(text, len, &end, 0);
  if (*out) {
    /* Only white space may follow the value. */
    const char *p = end;
    while (p < text + len && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
      p++;
    if (p == text + len)
      return KILN_OK;
    cJSON_Delete(*out);
    *out = NULL;
    end = p;
  }
  if (!end || end < text || end > text + len)
    end = text + len;
  size_t line = 1, col = 1;
  for (const char *p = text; p < end; p++) {
    if (*p == '\n') {
      line++;
      col = 1;
    } else {
      col++;
    }
  }
  if (len == 0)
    return kiln_error_set(err, KILN_E_INVALID, "%s: empty file, expected a JSON document", name);
  return kiln_error_set(err, KILN_E_INVALID, "%s:%zu:%zu: invalid JSON near here", name, line, col);
}

kiln_err kiln_json_read_file(const char *path, size_t max_size, cJSON **out, struct kiln_error *err)
{
  char *text = NULL;
  size_t len = 0;
  kiln_err rc = kiln_read_file(path, max_size, &text, &len, err);
  if (rc)
    return rc;
  rc = kiln_json_parse(text, len, path, out, err);
  free(text);
  return rc;
}

const cJSON *kiln_json_pointer(const cJSON *root, const char *pointer)
{
  if (!pointer || pointer[0] == '\0')
    return root;
  if (pointer[0] != '/')
    return NULL;
  const cJSON *cur = root;
  const char *p = pointer + 1;
  char token[256];
  for (;;) {
    size_t n = 0;
    while (*p && *p != '/') {
      char c = *p++;
      if (c == '~' && (*p == '0' || *p == '1'))
        c = (*p++ == '0') ? '~' : '/';
      if (n + 1 >= sizeof token)
        return NULL;
      token[n++] = c;
    }
    token[n] = '\0';
    if (cJSON_IsObject(cur)) {
      cur = cJSON_GetObjectItemCaseSensitive(cur, token);
    } else if (cJSON_IsArray(cur)) {
      char *e = NULL;
      long idx = strtol(token, &e, 10);
      cur = (n && *e == '\0' && idx >= 0) ? cJSON_GetArrayItem(cur, (int)idx) : NULL;
    } else {
      return NULL;
    }
    if (!cur || *p == '\0')
      return cur;
    p++;
  }
}

kiln_err kiln_json_keys(const cJSON *object, struct kiln_buf *out)
{
  kiln_err rc = KILN_OK;
  const cJSON *member;
  size_t start = out->len;
  cJSON_ArrayForEach(member, object)
  {
    if (out->len > start)
      rc = rc ? rc : kiln_buf_puts(out, ", ");
    rc = rc ? rc : kiln_buf_puts(out, member->string);
  }
  return rc;
}
