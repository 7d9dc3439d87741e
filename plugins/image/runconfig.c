/* The run config written next to the rootfs: argv (Entrypoint ++ Cmd, or nitro-cli's CMD-else-
 * ENTRYPOINT), argv[0] resolved against the image's PATH inside the tree, env, working directory
 * and numeric user/group looked up in the image's /etc/passwd and /etc/group. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "image.h"

#define RUN_DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define RUN_MAX_ID_FILE (4u << 20)

void img_runconfig_clear(struct img_runconfig *rc)
{
  for (size_t i = 0; i < rc->argc; i++)
    free(rc->argv[i]);
  for (size_t i = 0; i < rc->envc; i++)
    free(rc->env[i]);
  free(rc->argv);
  free(rc->env);
  free(rc->workdir);
  memset(rc, 0, sizeof(*rc));
}

static kiln_err push(char ***list, size_t *n, const char *s, struct kiln_error *err)
{
  char **grown = realloc(*list, (*n + 1) * sizeof(**list));
  if (!grown)
    return kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  *list = grown;
  if (!(grown[*n] = strdup(s)))
    return kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  (*n)++;
  return KILN_OK;
}

/* Append the strings of a JSON array (null/absent = nothing). */
static kiln_err push_array(char ***list, size_t *n, const cJSON *arr, const char *field,
                           struct kiln_error *err)
{
  if (!arr || cJSON_IsNull(arr))
    return KILN_OK;
  if (!cJSON_IsArray(arr))
    return kiln_error_set(err, KILN_E_INVALID, "%s must be an array of strings", field);
  const cJSON *it;
  cJSON_ArrayForEach(it, arr)
  {
    if (!cJSON_IsString(it))
      return kiln_error_set(err, KILN_E_INVALID, "%s must be an array of strings", field);
    if (strchr(it->valuestring, '\n'))
      return kiln_error_set(err, KILN_E_INVALID,
                            "%s: \"%s\" contains a newline, which the enclave's one-per-line "
                            "cmd/env files cannot hold",
                            field, it->valuestring);
    kiln_err rc = push(list, n, it->valuestring, err);
    if (rc)
      return rc;
  }
  return KILN_OK;
}

static kiln_err set_env(struct img_runconfig *rc, const char *key, const char *value,
                        struct kiln_error *err)
{
  struct kiln_buf kv = KILN_BUF_INIT;
  if (strchr(value, '\n') || strchr(key, '=') || !key[0])
    return kiln_error_set(err, KILN_E_INVALID,
                          "/enclave/env/%s: keys need no '=' and values no newline", key);
  if (kiln_buf_printf(&kv, "%s=%s", key, value))
    return kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  size_t klen = strlen(key);
  for (size_t i = 0; i < rc->envc; i++) {
    if (strncmp(rc->env[i], key, klen) == 0 && rc->env[i][klen] == '=') {
      free(rc->env[i]);
      rc->env[i] = kiln_buf_detach(&kv);
      return KILN_OK;
    }
  }
  kiln_err r = push(&rc->env, &rc->envc, kv.data, err);
  kiln_buf_free(&kv);
  return r;
}

static int is_executable_file(const struct img_node *n)
{
  return n && S_ISREG(n->inode->mode) && (n->inode->mode & 0111);
}

static kiln_err resolve_argv0(struct img_tree *t, struct img_runconfig *rc, struct kiln_error *err)
{
  kiln_err r = KILN_OK;
  const char *arg0 = rc->argv[0];
  const char *path = RUN_DEFAULT_PATH;
  struct kiln_buf cand = KILN_BUF_INIT;
  for (size_t i = 0; i < rc->envc; i++)
    if (strncmp(rc->env[i], "PATH=", 5) == 0)
      path = rc->env[i] + 5;
  struct img_node *n = NULL;
  if (strchr(arg0, '/')) {
    if (arg0[0] != '/')
      r = kiln_buf_printf(&cand, "%s/%s", strcmp(rc->workdir, "/") ? rc->workdir : "", arg0);
    else
      r = kiln_buf_puts(&cand, arg0);
    if (r || (r = img_tree_lookup(t, cand.data, &n, err)))
      goto out;
    if (!n) {
      r = kiln_error_set(err, KILN_E_NOT_FOUND, "the command %s does not exist in the image",
                         cand.data);
      goto out;
    }
  } else {
    const char *p = path;
    while (*p) {
      size_t len = strcspn(p, ":");
      kiln_buf_reset(&cand);
      if (len > 0 && p[0] == '/') {
        if ((r = kiln_buf_printf(&cand, "%.*s/%s", (int)len, p, arg0)) ||
            (r = img_tree_lookup(t, cand.data, &n, err)))
          goto out;
        if (is_executable_file(n))
          break;
      }
      n = NULL;
      p += len;
      if (*p == ':')
        p++;
    }
    if (!n) {
      r = kiln_error_set(err, KILN_E_NOT_FOUND,
                         "the command \"%s\" is not in the image's PATH (%s); use an absolute "
                         "path in ENTRYPOINT/CMD or set /enclave/cmd in kiln.json",
                         arg0, path);
      goto out;
    }
  }
  if (!is_executable_file(n)) {
    r = kiln_error_set(err, KILN_E_INVALID,
                       "the command %s is not an executable regular file in the image", cand.data);
    goto out;
  }
  /* "/app/./run.sh" -> "/app/run.sh" (paths with ".." stay as written: they resolved above). */
  struct kiln_buf clean = KILN_BUF_INIT;
  struct kiln_error ignored = KILN_ERROR_INIT;
  if (img_path_normalise(cand.data, &clean, &ignored) == KILN_OK && clean.len) {
    kiln_buf_reset(&cand);
    r = kiln_buf_printf(&cand, "/%s", clean.data);
  }
  kiln_buf_free(&clean);
  kiln_error_clear(&ignored);
  if (r) {
    r = kiln_error_set(err, KILN_E_NOMEM, "out of memory");
    goto out;
  }
  free(rc->argv[0]);
  rc->argv[0] = kiln_buf_detach(&cand);
out:
  kiln_buf_free(&cand);
  return r;
}

/* Find the line of an /etc/passwd-style file whose field `match_field` equals key; returns the
 * numeric value of field `want_field` in *out. */
static int id_lookup(const char *text, const char *key, int match_field, int want_field,
                     uint32_t *out)
{
  const char *line = text;
  while (line && *line) {
    const char *end = strchr(line, '\n');
    size_t len = end ? (size_t)(end - line) : strlen(line);
    const char *f = line;
    const char *fields[8] = {0};
    size_t flen[8] = {0};
    int nf = 0;
    while (nf < 8 && f <= line + len) {
      const char *c = memchr(f, ':', (size_t)(line + len - f));
      size_t l = c ? (size_t)(c - f) : (size_t)(line + len - f);
      fields[nf] = f;
      flen[nf++] = l;
      if (!c)
        break;
      f = c + 1;
    }
    if (nf > want_field && nf > match_field && flen[match_field] == strlen(key) &&
        memcmp(fields[match_field], key, flen[match_field]) == 0) {
      *out = (uint32_t)strtoul(fields[want_field], NULL, 10);
      return 1;
    }
    line = end ? end + 1 : NULL;
  }
  return 0;
}

static kiln_err read_id_file(struct img_tree *t, const char *path, char **out,
                             struct kiln_error *err)
{
  struct img_node *n = NULL;
  size_t len;
  *out = NULL;
  kiln_err r = img_tree_lookup(t, path, &n, err);
  if (r || !n || !S_ISREG(n->inode->mode))
    return r;
  return img_tree_read_file(t, n, RUN_MAX_ID_FILE, out, &len, err);
}

static int parse_num(const char *s, uint32_t *out)
{
  char *end;
  if (!*s || *s < '0' || *s > '9')
    return 0;
  errno = 0;
  unsigned long v = strtoul(s, &end, 10);
  if (*end || errno || v > 0xffffffffUL)
    return 0;
  *out = (uint32_t)v;
  return 1;
}

static kiln_err resolve_user(struct img_tree *t, const char *spec, struct img_runconfig *rc,
                             struct kiln_error *err)
{
  kiln_err r = KILN_OK;
  char *user = strdup(spec), *passwd = NULL, *group = NULL;
  if (!user)
    return kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  char *grp = strchr(user, ':');
  if (grp)
    *grp++ = '\0';
  if ((r = read_id_file(t, "/etc/passwd", &passwd, err)) ||
      (r = read_id_file(t, "/etc/group", &group, err)))
    goto out;
  if (!parse_num(user, &rc->uid) && !(passwd && id_lookup(passwd, user, 0, 2, &rc->uid))) {
    r = kiln_error_set(err, KILN_E_NOT_FOUND,
                       "image config User \"%s\": no such user in the image's /etc/passwd", spec);
    goto out;
  }
  if (grp) {
    if (!parse_num(grp, &rc->gid) && !(group && id_lookup(group, grp, 0, 2, &rc->gid))) {
      r = kiln_error_set(err, KILN_E_NOT_FOUND,
                         "image config User \"%s\": no such group in the image's /etc/group", spec);
      goto out;
    }
  } else {
    /* The user's primary group, by name or by uid. */
    char uidtxt[16];
    snprintf(uidtxt, sizeof(uidtxt), "%u", rc->uid);
    rc->gid = 0;
    if (passwd && !id_lookup(passwd, user, 0, 3, &rc->gid))
      id_lookup(passwd, uidtxt, 2, 3, &rc->gid);
  }
out:
  free(user);
  free(passwd);
  free(group);
  return r;
}

kiln_err img_runconfig_build(struct img_tree *t, const cJSON *config,
                             const struct img_run_overrides *ov, struct img_runconfig *rc,
                             struct kiln_error *err)
{
  kiln_err r;
  memset(rc, 0, sizeof(*rc));
  const cJSON *c = config ? cJSON_GetObjectItemCaseSensitive(config, "config") : NULL;
  const cJSON *ep = c ? cJSON_GetObjectItemCaseSensitive(c, "Entrypoint") : NULL;
  const cJSON *cmd = c ? cJSON_GetObjectItemCaseSensitive(c, "Cmd") : NULL;
  const cJSON *wd = c ? cJSON_GetObjectItemCaseSensitive(c, "WorkingDir") : NULL;
  const cJSON *user = c ? cJSON_GetObjectItemCaseSensitive(c, "User") : NULL;
  if (ov->cmd && !cJSON_IsNull(ov->cmd)) {
    r = push_array(&rc->argv, &rc->argc, ov->cmd, "/enclave/cmd", err);
  } else if (ov->nitro_cli_mode) {
    int has_cmd = cmd && cJSON_IsArray(cmd);
    r = push_array(&rc->argv, &rc->argc, has_cmd ? cmd : ep,
                   has_cmd ? "config.Cmd" : "config.Entrypoint", err);
  } else {
    r = push_array(&rc->argv, &rc->argc, ep, "config.Entrypoint", err);
    if (!r)
      r = push_array(&rc->argv, &rc->argc, cmd, "config.Cmd", err);
  }
  if (r)
    goto out;
  if (rc->argc == 0 || !rc->argv[0][0]) {
    r = kiln_error_set(err, KILN_E_INVALID,
                       "the image has no Entrypoint or Cmd: set one in the Dockerfile or give "
                       "/enclave/cmd in kiln.json");
    goto out;
  }
  if ((r = push_array(&rc->env, &rc->envc, c ? cJSON_GetObjectItemCaseSensitive(c, "Env") : NULL,
                      "config.Env", err)))
    goto out;
  if (ov->env && cJSON_IsObject(ov->env)) {
    const cJSON *it;
    cJSON_ArrayForEach(it, ov->env)
    {
      if (!cJSON_IsString(it)) {
        r = kiln_error_set(err, KILN_E_INVALID, "/enclave/env/%s must be a string", it->string);
        goto out;
      }
      if ((r = set_env(rc, it->string, it->valuestring, err)))
        goto out;
    }
  }
  const char *wdir = cJSON_IsString(wd) && wd->valuestring[0] ? wd->valuestring : "/";
  struct kiln_buf w = KILN_BUF_INIT;
  if (wdir[0] != '/' && kiln_buf_putc(&w, '/')) {
    r = kiln_error_set(err, KILN_E_NOMEM, "out of memory");
    goto out;
  }
  if (kiln_buf_puts(&w, wdir) || strchr(wdir, '\n')) {
    kiln_buf_free(&w);
    r = kiln_error_set(err, KILN_E_INVALID, "config.WorkingDir \"%s\" is not usable", wdir);
    goto out;
  }
  rc->workdir = kiln_buf_detach(&w);
  if ((r = resolve_argv0(t, rc, err)))
    goto out;
  if (cJSON_IsString(user) && user->valuestring[0] &&
      (r = resolve_user(t, user->valuestring, rc, err)))
    goto out;
out:
  if (r)
    img_runconfig_clear(rc);
  return r;
}
