/* Error details for library code: formatting and ownership of the message. */
#include "util/error.h"

#include "util/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

kiln_err kiln_error_vset(struct kiln_error *err, kiln_err code, const char *fmt, va_list ap)
{
  if (!err)
    return code;
  struct kiln_buf b = KILN_BUF_INIT;
  kiln_buf_vprintf(&b, fmt, ap);
  free(err->msg);
  err->msg = b.data ? kiln_buf_detach(&b) : NULL;
  err->code = code;
  return code;
}

kiln_err kiln_error_set(struct kiln_error *err, kiln_err code, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  kiln_error_vset(err, code, fmt, ap);
  va_end(ap);
  return code;
}

kiln_err kiln_error_prefix(struct kiln_error *err, const char *fmt, ...)
{
  if (!err)
    return KILN_E_INTERNAL;
  struct kiln_buf b = KILN_BUF_INIT;
  va_list ap;
  va_start(ap, fmt);
  kiln_buf_vprintf(&b, fmt, ap);
  va_end(ap);
  kiln_buf_printf(&b, ": %s", kiln_error_msg(err));
  if (b.data) {
    free(err->msg);
    err->msg = kiln_buf_detach(&b);
  }
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
