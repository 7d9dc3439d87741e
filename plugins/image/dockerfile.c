/* Just enough of the Dockerfile language to talk about a build: instructions with the line they
 * start on (continuations, comments, the escape directive), so a failing build step can name its
 * line, and the base images a build reads, so they can join the cache key. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "build.h"

void img_dockerfile_clear(struct img_dockerfile *df)
{
  for (size_t i = 0; i < df->n; i++) {
    free(df->instrs[i].keyword);
    free(df->instrs[i].args);
  }
  free(df->instrs);
  memset(df, 0, sizeof(*df));
}

static const char *skip_space(const char *s, const char *end)
{
  while (s < end && (*s == ' ' || *s == '\t'))
    s++;
  return s;
}

/* "# escape=`" among the leading comment lines switches the line-continuation character. */
static char escape_directive(const char *text, size_t len)
{
  const char *p = text, *end = text + len;
  while (p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    const char *le = nl ? nl : end;
    const char *s = skip_space(p, le);
    if (s == le || *s != '#')
      break;
    s = skip_space(s + 1, le);
    if ((size_t)(le - s) >= 7 && strncasecmp(s, "escape", 6) == 0) {
      const char *v = skip_space(s + 6, le);
      if (v < le && *v == '=') {
        v = skip_space(v + 1, le);
        if (v < le && (*v == '`' || *v == '\\'))
          return *v;
      }
    }
    p = le + (nl ? 1 : 0);
  }
  return '\\';
}

static kiln_err add_instr(struct img_dockerfile *df, unsigned line, const char *text,
                          struct kiln_error *err)
{
  const char *end = text + strlen(text);
  const char *k = skip_space(text, end), *ke = k;
  while (ke < end && *ke != ' ' && *ke != '\t')
    ke++;
  if (ke == k)
    return KILN_OK;
  void *p = realloc(df->instrs, (df->n + 1) * sizeof(*df->instrs));
  if (!p)
    return kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  df->instrs = p;
  struct img_dockerfile_instr *in = &df->instrs[df->n];
  in->line = line;
  in->keyword = strndup(k, (size_t)(ke - k));
  const char *a = skip_space(ke, end), *ae = end;
  while (ae > a && (ae[-1] == ' ' || ae[-1] == '\t'))
    ae--;
  in->args = strndup(a, (size_t)(ae - a));
  if (!in->keyword || !in->args) {
    free(in->keyword);
    free(in->args);
    return kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  }
  for (char *c = in->keyword; *c; c++)
    *c = (char)toupper((unsigned char)*c);
  df->n++;
  return KILN_OK;
}

kiln_err img_dockerfile_parse(const char *text, size_t len, struct img_dockerfile *df,
                              struct kiln_error *err)
{
  memset(df, 0, sizeof(*df));
  char esc = escape_directive(text, len);
  struct kiln_buf cur = KILN_BUF_INIT;
  unsigned line = 0, start = 0;
  int open = 0;
  kiln_err rc = KILN_OK;
  const char *p = text, *end = text + len;
  while (!rc && p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    const char *le = nl ? nl : end;
    line++;
    const char *s = skip_space(p, le), *e = le;
    while (e > s && (e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t'))
      e--;
    p = le + (nl ? 1 : 0);
    if (s == e || *s == '#')
      continue; /* blank lines and comments, also inside continuations */
    if (!open)
      start = line;
    int cont = e[-1] == esc;
    rc = kiln_buf_append(&cur, s, (size_t)(e - s) - (cont ? 1 : 0));
    if (!rc && cont) {
      rc = kiln_buf_putc(&cur, ' ');
      open = 1;
      continue;
    }
    open = 0;
    if (!rc)
      rc = add_instr(df, start, kiln_buf_str(&cur), err);
    kiln_buf_reset(&cur);
  }
  if (!rc && open)
    rc = add_instr(df, start, kiln_buf_str(&cur), err);
  kiln_buf_free(&cur);
  if (rc == KILN_E_NOMEM && !err->msg)
    kiln_error_set(err, rc, "out of memory");
  if (rc)
    img_dockerfile_clear(df);
  return rc;
}

/* Value of NAME: a build arg, else the ARG default before the first FROM, else NULL. */
static const char *arg_value(const cJSON *args, const cJSON *meta, const char *name, size_t len)
{
  char buf[256];
  if (len >= sizeof(buf))
    return NULL;
  memcpy(buf, name, len);
  buf[len] = '\0';
  const cJSON *meta_item = cJSON_GetObjectItemCaseSensitive(meta, buf);
  if (!meta_item)
    return NULL; /* only declared ARGs reach FROM */
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(args, buf);
  if (cJSON_IsString(v))
    return v->valuestring;
  return cJSON_IsString(meta_item) ? meta_item->valuestring : "";
}

/* $NAME, ${NAME}, ${NAME:-word}, ${NAME:+word} in a FROM image name. */
static kiln_err substitute(const char *in, const cJSON *args, const cJSON *meta,
                           struct kiln_buf *out)
{
  kiln_err rc = KILN_OK;
  for (const char *p = in; !rc && *p;) {
    if (*p != '$') {
      rc = kiln_buf_putc(out, *p++);
      continue;
    }
    const char *n = p + 1, *ne;
    const char *word = NULL, *we = NULL;
    char op = 0;
    if (*n == '{') {
      n++;
      ne = n;
      while (*ne && (isalnum((unsigned char)*ne) || *ne == '_'))
        ne++;
      if (ne[0] == ':' && (ne[1] == '-' || ne[1] == '+')) {
        op = ne[1];
        word = ne + 2;
        we = strchr(word, '}');
      } else {
        we = ne;
      }
      if (!we || *we != '}')
        return kiln_buf_puts(out, p); /* not a substitution after all */
      p = we + 1;
    } else {
      ne = n;
      while (*ne && (isalnum((unsigned char)*ne) || *ne == '_'))
        ne++;
      p = ne;
    }
    const char *v = arg_value(args, meta, n, (size_t)(ne - n));
    if (op == '-' && (!v || !*v))
      rc = kiln_buf_append(out, word, (size_t)(we - word));
    else if (op == '+')
      rc = (v && *v) ? kiln_buf_append(out, word, (size_t)(we - word)) : KILN_OK;
    else if (v)
      rc = kiln_buf_puts(out, v);
  }
  return rc;
}

/* Split "a b  c" into at most max words (pointers into the modified string). */
static size_t words(char *s, char **w, size_t max)
{
  size_t n = 0;
  for (char *t = strtok(s, " \t"); t && n < max; t = strtok(NULL, " \t"))
    w[n++] = t;
  return n;
}

static int is_stage(const cJSON *stages, const char *name)
{
  const cJSON *s;
  cJSON_ArrayForEach(s, stages)
  {
    if (strcasecmp(s->valuestring, name) == 0)
      return 1;
  }
  for (const char *c = name; *c; c++)
    if (!isdigit((unsigned char)*c))
      return 0;
  return *name != '\0'; /* COPY --from=0 names a stage by index */
}

static void add_unique(cJSON *names, const char *name)
{
  const cJSON *s;
  if (strcmp(name, "scratch") == 0 || !*name)
    return;
  cJSON_ArrayForEach(s, names)
  {
    if (strcmp(s->valuestring, name) == 0)
      return;
  }
  cJSON_AddItemToArray(names, cJSON_CreateString(name));
}

/* Record the ARG NAME[=value] declarations of one instruction into meta. */
static void meta_args(char *text, cJSON *meta)
{
  char *w[32];
  size_t n = words(text, w, 32);
  for (size_t i = 0; i < n; i++) {
    char *eq = strchr(w[i], '=');
    if (eq)
      *eq = '\0';
    cJSON_DeleteItemFromObjectCaseSensitive(meta, w[i]);
    if (eq) {
      char *v = eq + 1;
      size_t vl = strlen(v);
      if (vl >= 2 && (v[0] == '"' || v[0] == '\'') && v[vl - 1] == v[0])
        v[vl - 1] = '\0', v++;
      cJSON_AddStringToObject(meta, w[i], v);
    } else {
      cJSON_AddNullToObject(meta, w[i]);
    }
  }
}

static int cmp_strings(const void *a, const void *b)
{
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static cJSON *sorted_copy(const cJSON *names)
{
  int n = cJSON_GetArraySize(names);
  const char **v = calloc((size_t)n + 1, sizeof(*v));
  cJSON *out = cJSON_CreateArray();
  for (int i = 0; v && out && i < n; i++)
    v[i] = cJSON_GetArrayItem(names, i)->valuestring;
  if (v)
    qsort(v, (size_t)n, sizeof(*v), cmp_strings);
  for (int i = 0; v && out && i < n; i++)
    cJSON_AddItemToArray(out, cJSON_CreateString(v[i]));
  free(v);
  return out;
}

kiln_err img_dockerfile_bases(const struct img_dockerfile *df, const cJSON *args,
                              const char *target, cJSON **names, struct kiln_error *err)
{
  cJSON *meta = cJSON_CreateObject(), *stages = cJSON_CreateArray(), *found = cJSON_CreateArray();
  kiln_err rc = (meta && stages && found) ? KILN_OK : KILN_E_NOMEM;
  int seen_from = 0, in_target = 0, reached = !target;
  *names = NULL;
  for (size_t i = 0; !rc && i < df->n; i++) {
    const struct img_dockerfile_instr *in = &df->instrs[i];
    char *copy = strdup(in->args), *w[8];
    if (!copy) {
      rc = KILN_E_NOMEM;
      break;
    }
    if (strcmp(in->keyword, "ARG") == 0 && !seen_from) {
      meta_args(copy, meta);
    } else if (strcmp(in->keyword, "FROM") == 0) {
      if (in_target) {
        free(copy);
        break; /* the stages after the target are not built */
      }
      seen_from = 1;
      size_t n = words(copy, w, 8), k = 0;
      while (k < n && strncmp(w[k], "--", 2) == 0)
        k++;
      struct kiln_buf image = KILN_BUF_INIT;
      if (k < n && !(rc = substitute(w[k], args, meta, &image)) &&
          !is_stage(stages, kiln_buf_str(&image)))
        add_unique(found, kiln_buf_str(&image));
      kiln_buf_free(&image);
      if (k + 2 < n && strcasecmp(w[k + 1], "AS") == 0) {
        cJSON_AddItemToArray(stages, cJSON_CreateString(w[k + 2]));
        if (target && strcasecmp(w[k + 2], target) == 0)
          in_target = reached = 1;
      }
    } else if (strcmp(in->keyword, "COPY") == 0 || strcmp(in->keyword, "ADD") == 0) {
      size_t n = words(copy, w, 8);
      for (size_t k = 0; k < n && strncmp(w[k], "--", 2) == 0; k++)
        if (strncmp(w[k], "--from=", 7) == 0 && !is_stage(stages, w[k] + 7))
          add_unique(found, w[k] + 7);
    }
    free(copy);
  }
  if (!rc && !reached) {
    struct kiln_buf list = KILN_BUF_INIT;
    const cJSON *s;
    cJSON_ArrayForEach(s, stages)
    {
      kiln_buf_printf(&list, "%s%s", list.len ? ", " : "", s->valuestring);
    }
    rc = kiln_error_set(err, KILN_E_INVALID,
                        "build target \"%s\" is not a stage of the Dockerfile (stages: %s)", target,
                        list.len ? list.data : "none named");
    kiln_buf_free(&list);
  }
  if (!rc && !(*names = sorted_copy(found)))
    rc = KILN_E_NOMEM;
  if (rc == KILN_E_NOMEM)
    kiln_error_set(err, rc, "out of memory");
  cJSON_Delete(meta);
  cJSON_Delete(stages);
  cJSON_Delete(found);
  return rc;
}
