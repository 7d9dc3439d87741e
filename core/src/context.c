/* The library context: settings, resolved directories and the last error message. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "util/fs.h"

#ifndef KILN_VERSION
#define KILN_VERSION "0.0.0"
#endif

const char *kiln_version(void)
{
  return KILN_VERSION;
}

kiln_err kiln_take_error(struct kiln *k, struct kiln_error *from)
{
  kiln_err code = from->code ? from->code : KILN_E_INTERNAL;
  kiln_fail(k, code, "%s", kiln_error_msg(from));
  kiln_error_clear(from);
  return code;
}

kiln_err kiln_fail(struct kiln *k, kiln_err code, const char *fmt, ...)
{
  struct kiln_buf b = KILN_BUF_INIT;
  va_list ap;
  va_start(ap, fmt);
  kiln_buf_vprintf(&b, fmt, ap);
  va_end(ap);
  char *clean = kiln_redact(k, kiln_buf_str(&b)); /* secrets never reach a message */
  kiln_error_set(&k->err, code, "%s", clean ? clean : kiln_buf_str(&b));
  free(clean);
  kiln_buf_free(&b);
  return code;
}

const char *kiln_errmsg(const struct kiln *k)
{
  if (!k)
    return "out of memory";
  return kiln_error_msg(&k->err);
}

/* The install prefix: libkiln.so lives in <prefix>/<libdir>, so strip libdir's components. */
static char *find_prefix(void)
{
  Dl_info info;
  if (!dladdr((void *)find_prefix, &info) || !info.dli_fname)
    return NULL;
  char *path = realpath(info.dli_fname, NULL);
  if (!path)
    return NULL;
  char *slash = strrchr(path, '/');
  if (slash)
    *slash = '\0';
  int parts = 1;
  for (const char *p = KILN_INSTALL_LIBDIR; *p; p++)
    parts += (*p == '/');
  for (int i = 0; i < parts; i++) {
    slash = strrchr(path, '/');
    if (!slash || slash == path) {
      path[1] = '\0';
      break;
    }
    *slash = '\0';
  }
  return path;
}

static char *dir_from_env_or(const char *env, const char *prefix, const char *rel)
{
  const char *v = getenv(env);
  if (v && *v)
    return kiln_path_absolute(NULL, v);
  return prefix ? kiln_path_join(prefix, rel) : NULL;
}

static char *default_cache_dir(void)
{
  const char *v = getenv("KILN_CACHE_DIR");
  if (v && *v)
    return kiln_path_absolute(NULL, v);
  v = getenv("XDG_CACHE_HOME");
  if (v && *v && v[0] == '/')
    return kiln_path_join(v, "kiln");
  v = getenv("HOME");
  if (v && *v) {
    char *c = kiln_path_join(v, ".cache");
    char *r = c ? kiln_path_join(c, "kiln") : NULL;
    free(c);
    return r;
  }
  return NULL;
}

kiln_err kiln_new(struct kiln **out, const struct kiln_settings *s)
{
  *out = NULL;
  struct kiln *k = calloc(1, sizeof *k);
  if (!k)
    return KILN_E_NOMEM;
  *out = k;
  if (s && KILN_HAS_FIELD(s, struct kiln_settings, color)) {
    k->no_cache = s->no_cache;
    k->verbosity = s->verbosity;
    k->progress = s->progress;
    k->color = s->color;
  }
  const char *app = (s && s->app_dir) ? s->app_dir : ".";
  k->app_dir = kiln_path_absolute(NULL, app);
  if (!k->app_dir)
    return kiln_set_error(k, KILN_E_NOMEM, "out of memory");
  if (!kiln_is_dir(k->app_dir))
    return kiln_set_error(k, KILN_E_NOT_FOUND, "application directory %s does not exist (check -C)",
                          k->app_dir);
  k->cache_dir =
      (s && s->cache_dir) ? kiln_path_absolute(k->app_dir, s->cache_dir) : default_cache_dir();
  if (!k->cache_dir)
    return kiln_set_error(k, KILN_E_INVALID,
                          "no cache directory: set KILN_CACHE_DIR, XDG_CACHE_HOME or HOME");
  char *prefix = find_prefix();
  k->share_dir = dir_from_env_or("KILN_SHARE_DIR", prefix, KILN_SHARE_DIR_REL);
  k->lib_dir = dir_from_env_or("KILN_LIB_DIR", prefix, KILN_LIB_DIR_REL);
  free(prefix);
  if (!k->share_dir || !k->lib_dir)
    return kiln_set_error(k, KILN_E_INTERNAL, "cannot locate kiln's installation directory");
  if (s && s->plugin_path && !(k->plugin_path = strdup(s->plugin_path)))
    return kiln_set_error(k, KILN_E_NOMEM, "out of memory");
  k->config = cJSON_CreateObject();
  if (!k->config)
    return kiln_set_error(k, KILN_E_NOMEM, "out of memory");
  return KILN_OK;
}

void kiln_free(struct kiln *k)
{
  if (!k)
    return;
  for (size_t i = 0; i < k->nplugins; i++) {
    free(k->plugins[i].path);
    /* Plugins stay mapped: a stage may have registered atexit handlers or thread-locals. */
  }
  free(k->plugins);
  for (size_t i = 0; i < k->nsecrets; i++)
    free(k->secrets[i]);
  free(k->secrets);
  cJSON_Delete(k->config);
  free(k->config_path);
  free(k->app_name);
  free(k->app_dir);
  free(k->cache_dir);
  free(k->share_dir);
  free(k->lib_dir);
  free(k->plugin_path);
  kiln_error_clear(&k->err);
  free(k);
}

const char *kiln_app_dir(const struct kiln *k)
{
  return k->app_dir;
}
const char *kiln_cache_dir(const struct kiln *k)
{
  return k->cache_dir;
}
const char *kiln_share_dir(const struct kiln *k)
{
  return k->share_dir;
}
const char *kiln_lib_dir(const struct kiln *k)
{
  return k->lib_dir;
}
