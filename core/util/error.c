/* Error details for library code: formatting and ownership of the message. */
#include "util/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *format_message(const char *fmt, va_list ap)
{
  va_list copy;
  va_copy(copy, ap);
  int n = vsnprintf(NULL, 0, fmt, copy);
  va_end(copy);
  if (n < 0)
    return NULL;
  char *s = malloc((size_t)n + 1);
  if (s)
    vsnprintf(s, (size_t)n + 1, fmt, ap);
  return s;
}

kiln_err kiln_error_set(struct kiln_error *err, kiln_err code, const char *fmt, ...)
{
  if (!err)
    return code;
  va_list ap;
  va_start(ap, fmt);
  char *msg = format_message(fmt, ap);
  va_end(ap);
  free(err->msg);
  err->msg = msg;
  err->code = code;
  return code;
}

kiln_err kiln_error_prefix(struct kiln_error *err, const char *fmt, ...)
{
  if (!err)
    return KILN_E_INTERNAL;
  va_list ap;
  va_start(ap, fmt);
  char *prefix = format_message(fmt, ap);
  va_end(ap);
  if (!prefix)
    return err->code;
  const char *old = kiln_error_msg(err);
  size_t len = strlen(prefix) + 2 + strlen(old) + 1;
  char *msg = malloc(len);
  if (msg) {
    snprintf(msg, len, "%s: %s", prefix, old);
    free(err->msg);
    err->msg = msg;
  }
  free(prefix);
  return err->code;
}

const char *kiln_err_name(kiln_err code)
{
  switch (code) {
  case KILN_OK: return "success";
  case KILN_E_INVALID: return "invalid input";
  case KILN_E_NOT_FOUND: return "not found";
  case KILN_E_IO: return "I/O error";
  case KILN_E_NOMEM: return "out of memory or over a size limit";
  case KILN_E_NETWORK: return "network error";
  case KILN_E_REMOTE: return "server error";
  case KILN_E_AUTH: return "authentication or permission error";
  case KILN_E_UNSUPPORTED: return "not supported";
  case KILN_E_CANCELLED: return "interrupted";
  case KILN_E_PLUGIN: return "plugin error";
  case KILN_E_INTERNAL: return "internal error";
  }
  return "unknown error";
}

const char *kiln_error_msg(const struct kiln_error *err)
{
  if (!err)
    return "unknown error";
  if (err->msg)
    return err->msg;
  return kiln_err_name(err->code);
}

void kiln_error_clear(struct kiln_error *err)
{
  if (!err)
    return;
  free(err->msg);
  err->msg = NULL;
  err->code = KILN_OK;
}
