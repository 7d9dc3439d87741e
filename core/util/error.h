/* Error details for library code outside a stage: a code plus one heap-allocated message. */
#ifndef KILN_UTIL_ERROR_H
#define KILN_UTIL_ERROR_H

#include <stdarg.h>

#include <kiln/plugin.h>

/* Filled once where a failure is understood; the caller owns it and calls kiln_error_clear(). */
struct kiln_error {
  kiln_err code;
  char *msg; /* NULL when no message was set */
};

#define KILN_ERROR_INIT                                                                            \
  {                                                                                                \
    KILN_OK, NULL                                                                                  \
  }

/* Set code and a formatted message (replacing an earlier one); returns code. */
kiln_err kiln_error_set(struct kiln_error *err, kiln_err code, const char *fmt, ...)
    KILN_PRINTF(3, 4);
kiln_err kiln_error_vset(struct kiln_error *err, kiln_err code, const char *fmt, va_list ap);
/* Prefix the existing message with more context: "<prefix>: <old message>"; returns err->code. */
kiln_err kiln_error_prefix(struct kiln_error *err, const char *fmt, ...) KILN_PRINTF(2, 3);
/* The message, or a generic text for the code when none was set. Never NULL. */
const char *kiln_error_msg(const struct kiln_error *err);
void kiln_error_clear(struct kiln_error *err);
/* A short name for a code ("invalid input", "I/O error", ...). */
const char *kiln_err_name(kiln_err code);

#endif
