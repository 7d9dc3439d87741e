/* .dockerignore: Docker's pattern language and matching order (moby patternmatcher semantics),
 * so the same files reach a kiln build's context as a `docker build` of the same directory:
 * comments, `!` exceptions (last match wins), `**`, filepath.Match wildcards, and the parent
 * directory rule (a pattern matching a directory matches everything below it). */
#include <stdlib.h>
#include <string.h>

#include "build.h"

enum ignore_kind { IGNORE_EXACT, IGNORE_PREFIX, IGNORE_SUFFIX, IGNORE_GLOB };

struct ignore_pattern {
  char *text; /* cleaned, without the leading '!' */
  int exception;
  enum ignore_kind kind;
};

struct img_ignore {
  struct ignore_pattern *patterns;
  size_t n, cap;
  int exceptions;
};

/* Go's path.Clean: collapse "//" and ".", resolve ".." lexically, drop a trailing '/'. */
static char *clean_path(const char *p)
{
  size_t len = strlen(p);
  int rooted = len > 0 && p[0] == '/';
  char *out = malloc(len + 2);
  if (!out)
    return NULL;
  size_t o = 0, floor = 0; /* floor: where ".." may no longer backtrack */
  if (rooted)
    out[o++] = '/', floor = 1;
  for (size_t i = 0; i < len;) {
    size_t j = i;
    while (j < len && p[j] != '/')
      j++;
    size_t n = j - i;
    if (n == 0 || (n == 1 && p[i] == '.')) {
      /* skip */
    } else if (n == 2 && p[i] == '.' && p[i + 1] == '.') {
      if (o > floor) {
        while (o > floor && out[o - 1] != '/')
          o--;
        if (o > floor)
          o--;
        else if (rooted)
          o = 1;
      } else if (!rooted) {
        if (o > 0)
          out[o++] = '/';
        memcpy(out + o, "..", 2);
        o += 2;
        floor = o;
      }
    } else {
      if (o > 0 && out[o - 1] != '/')
        out[o++] = '/';
      memcpy(out + o, p + i, n);
      o += n;
    }
    i = j + 1;
  }
  if (o == 0)
    out[o++] = '.';
  out[o] = '\0';
  return out;
}

/* Length of the character class starting at p ('['), or 0 when it is not closed. */
static size_t class_len(const char *p)
{
  size_t i = 1;
  if (p[i] == '^')
    i++;
  if (p[i] == ']') /* a leading ']' is a member, as in regexp */
    i++;
  for (; p[i]; i++) {
    if (p[i] == '\\' && p[i + 1])
      i++;
    else if (p[i] == ']')
      return i + 1;
  }
  return 0;
}

static int class_match(const char *p, size_t len, unsigned char c)
{
  size_t i = 1;
  int negate = p[i] == '^', hit = 0;
  if (negate)
    i++;
  for (; i < len - 1; i++) {
    unsigned char lo = (unsigned char)p[i];
    if (lo == '\\' && i + 1 < len - 1)
      lo = (unsigned char)p[++i];
    unsigned char hi = lo;
    if (i + 2 < len - 1 && p[i + 1] == '-') {
      hi = (unsigned char)p[i + 2];
      if (hi == '\\' && i + 3 < len - 1)
        hi = (unsigned char)p[++i + 2];
      i += 2;
    }
    if (c >= lo && c <= hi)
      hit = 1;
  }
  return hit != negate;
}

static size_t utf8_len(const char *s)
{
  unsigned char c = (unsigned char)*s;
  size_t n = c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
  for (size_t i = 1; i < n; i++)
    if (!s[i])
      return i;
  return n;
}

/* The regexp Docker compiles a pattern into, interpreted directly: a double star matches any
 * run of whole directories (or anything at the end), a star any run without '/', '?' one
 * character but '/', "[...]" a class, a backslash escapes the next character. */
static int glob_match(const char *p, const char *s)
{
  for (;;) {
    switch (*p) {
    case '\0': return *s == '\0';
    case '*':
      if (p[1] == '*') {
        p += 2;
        if (*p == '/')
          p++;
        if (!*p)
          return 1;
        if (glob_match(p, s))
          return 1;
        for (; *s; s++)
          if (*s == '/' && glob_match(p, s + 1))
            return 1;
        return 0;
      }
      for (;; s++) {
        if (glob_match(p + 1, s))
          return 1;
        if (!*s || *s == '/')
          return 0;
      }
    case '?':
      if (!*s || *s == '/')
        return 0;
      s += utf8_len(s);
      p++;
      break;
    case '[': {
      size_t n = class_len(p);
      if (!*s || !class_match(p, n, (unsigned char)*s))
        return 0;
      p += n;
      s++;
      break;
    }
    case '\\':
      if (p[1])
        p++;
      /* fall through */
    default:
      if (*p != *s)
        return 0;
      p++;
      s++;
    }
  }
}

/* Decide the match kind like Docker: literal patterns compare exactly, "lit**" is a prefix test,
 * "**lit" a suffix test, anything else the glob. Returns -1 for a malformed pattern. */
static int classify(const char *p)
{
  enum ignore_kind kind = IGNORE_EXACT;
  for (size_t i = 0; p[i]; i++) {
    if (p[i] == '*' && p[i + 1] == '*') {
      size_t start = i;
      i += 2;
      if (p[i] == '/')
        i++;
      if (!p[i])
        kind = kind == IGNORE_EXACT ? IGNORE_PREFIX : IGNORE_GLOB;
      else
        kind = IGNORE_GLOB;
      if (start == 0)
        kind = IGNORE_SUFFIX;
      i--;
    } else if (p[i] == '*' || p[i] == '?') {
      kind = IGNORE_GLOB;
    } else if (p[i] == '[') {
      size_t n = class_len(p + i);
      if (!n)
        return -1;
      kind = IGNORE_GLOB;
      i += n - 1;
    } else if (p[i] == ']') {
      kind = IGNORE_GLOB;
    } else if (p[i] == '\\') {
      if (!p[i + 1])
        return -1;
      kind = IGNORE_GLOB;
      i++;
    }
  }
  return (int)kind;
}

static int pattern_match(const struct ignore_pattern *pt, const char *path)
{
  size_t pl = strlen(pt->text), sl = strlen(path);
  switch (pt->kind) {
  case IGNORE_EXACT: return strcmp(path, pt->text) == 0;
  case IGNORE_PREFIX: return strncmp(path, pt->text, pl - 2) == 0;
  case IGNORE_SUFFIX: {
    const char *suffix = pt->text + 2;
    size_t n = pl - 2;
    if (sl >= n && memcmp(path + sl - n, suffix, n) == 0)
      return 1;
    return n > 0 && suffix[0] == '/' && strcmp(path, suffix + 1) == 0;
  }
  case IGNORE_GLOB: return glob_match(pt->text, path);
  }
  return 0;
}

kiln_err img_ignore_new(struct img_ignore **out, struct kiln_error *err)
{
  if (!(*out = calloc(1, sizeof(**out))))
    return kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  return KILN_OK;
}

void img_ignore_free(struct img_ignore *ig)
{
  if (!ig)
    return;
  for (size_t i = 0; i < ig->n; i++)
    free(ig->patterns[i].text);
  free(ig->patterns);
  free(ig);
}

static int is_space(char c)
{
  return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

/* Trim spaces on both ends of [s, s+len) into a new string. */
static char *trimmed(const char *s, size_t len)
{
  while (len && is_space(*s))
    s++, len--;
  while (len && is_space(s[len - 1]))
    len--;
  return strndup(s, len);
}

kiln_err img_ignore_add(struct img_ignore *ig, const char *pattern, struct kiln_error *err)
{
  char *t = trimmed(pattern, strlen(pattern));
  char *c = t && *t ? clean_path(t) : NULL;
  free(t);
  if (!c)
    return t ? KILN_OK : kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  int exception = c[0] == '!';
  if (exception && !c[1]) {
    free(c);
    return kiln_error_set(err, KILN_E_INVALID, "illegal exclusion pattern \"!\"");
  }
  int kind = classify(c + exception);
  if (kind < 0) {
    kiln_error_set(err, KILN_E_INVALID, "syntax error in pattern \"%s\"", c);
    free(c);
    return KILN_E_INVALID;
  }
  if (ig->n == ig->cap) {
    size_t cap = ig->cap ? ig->cap * 2 : 16;
    void *p = realloc(ig->patterns, cap * sizeof(*ig->patterns));
    if (!p) {
      free(c);
      return kiln_error_set(err, KILN_E_NOMEM, "out of memory");
    }
    ig->patterns = p;
    ig->cap = cap;
  }
  if (exception)
    memmove(c, c + 1, strlen(c));
  ig->patterns[ig->n++] = (struct ignore_pattern){c, exception, (enum ignore_kind)kind};
  ig->exceptions |= exception;
  return KILN_OK;
}

/* One .dockerignore line, normalised as Docker's reader does before the matcher sees it. */
static kiln_err add_line(struct img_ignore *ig, const char *line, size_t len,
                         struct kiln_error *err)
{
  if (len && line[0] == '#')
    return KILN_OK;
  char *t = trimmed(line, len);
  if (!t)
    return kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  kiln_err rc = KILN_OK;
  char *p = t;
  int invert = p[0] == '!';
  if (invert) {
    p++;
    while (is_space(*p))
      p++;
  }
  if (*t) {
    char *c = *p ? clean_path(p) : strdup("");
    struct kiln_buf b = KILN_BUF_INIT;
    if (!c)
      rc = kiln_error_set(err, KILN_E_NOMEM, "out of memory");
    else if (!(rc = kiln_buf_printf(&b, "%s%s", invert ? "!" : "",
                                    (strlen(c) > 1 && c[0] == '/') ? c + 1 : c)))
      rc = img_ignore_add(ig, b.data, err);
    free(c);
    kiln_buf_free(&b);
  }
  free(t);
  return rc;
}

kiln_err img_ignore_parse(struct img_ignore *ig, const char *text, size_t len,
                          struct kiln_error *err)
{
  size_t line_no = 0;
  if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0)
    text += 3, len -= 3;
  while (len) {
    const char *nl = memchr(text, '\n', len);
    size_t n = nl ? (size_t)(nl - text) : len;
    line_no++;
    kiln_err rc = add_line(ig, text, n, err);
    if (rc)
      return kiln_error_prefix(err, "line %zu", line_no);
    text += nl ? n + 1 : n;
    len -= nl ? n + 1 : n;
  }
  return KILN_OK;
}

size_t img_ignore_count(const struct img_ignore *ig)
{
  return ig->n;
}

int img_ignore_match(const struct img_ignore *ig, const char *path, const uint8_t *parent,
                     uint8_t *mine)
{
  int matched = 0;
  for (size_t i = 0; i < ig->n; i++) {
    const struct ignore_pattern *pt = &ig->patterns[i];
    int match = parent ? parent[i] : 0;
    if (!match && pt->exception == matched) {
      match = pattern_match(pt, path);
      /* Without the parent's results, test every parent directory (Docker's fallback). */
      for (const char *slash = strchr(path, '/'); !match && !parent && slash;
           slash = strchr(slash + 1, '/')) {
        char *dir = strndup(path, (size_t)(slash - path));
        match = dir && pattern_match(pt, dir);
        free(dir);
      }
    }
    if (mine)
      mine[i] = (uint8_t)match;
    if (match)
      matched = !pt->exception;
  }
  return matched;
}

int img_ignore_exception_under(const struct img_ignore *ig, const char *dir)
{
  size_t dl = strlen(dir);
  for (size_t i = 0; ig->exceptions && i < ig->n; i++) {
    const struct ignore_pattern *pt = &ig->patterns[i];
    size_t pl = strlen(pt->text);
    /* Docker compares the pattern text + "/" with "dir/" */
    if (pt->exception && pl >= dl && strncmp(pt->text, dir, dl) == 0 &&
        (pl == dl || pt->text[dl] == '/'))
      return 1;
  }
  return 0;
}
