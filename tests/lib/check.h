/* A tiny assertion helper for kiln's C tests: each failed check prints what was expected and what
 * came, and the test's exit status is the failure count (capped), so ctest sees failures. */
#ifndef KILN_TEST_CHECK_H
#define KILN_TEST_CHECK_H

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static int check_failures;
static const char *check_case = "";

#define CHECK_CASE(name) (check_case = (name))

#define CHECK(cond)                                                                                \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      fprintf(stderr, "%s:%d: [%s] check failed: %s\n", __FILE__, __LINE__, check_case, #cond);    \
      check_failures++;                                                                            \
    }                                                                                              \
  } while (0)

#define CHECK_INT(expected, got)                                                                   \
  do {                                                                                             \
    long long e_ = (long long)(expected), g_ = (long long)(got);                                   \
    if (e_ != g_) {                                                                                \
      fprintf(stderr, "%s:%d: [%s] %s: expected %lld, got %lld\n", __FILE__, __LINE__, check_case, \
              #got, e_, g_);                                                                       \
      check_failures++;                                                                            \
    }                                                                                              \
  } while (0)

#define CHECK_STR(expected, got)                                                                   \
  do {                                                                                             \
    const char *e_ = (expected), *g_ = (got);                                                      \
    if (!e_ || !g_ || strcmp(e_, g_) != 0) {                                                       \
      fprintf(stderr, "%s:%d: [%s] %s:\n  expected: %s\n  got:      %s\n", __FILE__, __LINE__,     \
              check_case, #got, e_ ? e_ : "(null)", g_ ? g_ : "(null)");                           \
      check_failures++;                                                                            \
    }                                                                                              \
  } while (0)

/* got contains needle */
#define CHECK_CONTAINS(needle, got)                                                                \
  do {                                                                                             \
    const char *n_ = (needle), *g_ = (got);                                                        \
    if (!g_ || !strstr(g_, n_)) {                                                                  \
      fprintf(stderr, "%s:%d: [%s] %s should contain \"%s\", got: %s\n", __FILE__, __LINE__,       \
              check_case, #got, n_, g_ ? g_ : "(null)");                                           \
      check_failures++;                                                                            \
    }                                                                                              \
  } while (0)

static inline int check_done(void)
{
  if (check_failures)
    fprintf(stderr, "%d check(s) failed\n", check_failures);
  return check_failures > 100 ? 100 : check_failures;
}

#endif
