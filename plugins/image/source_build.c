/* Dockerfile builds for the image stage ("image": {"build": ...}): the options, the context tar,
 * the cache identity, and the build over the Engine API (POST /build, classic builder: no
 * BuildKit session, no docker CLI), whose output is streamed as log lines or progress and whose
 * failure names the Dockerfile line. The built image is then read like docker-daemon:IMAGE_ID. */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "build.h"
#include "daemon.h"
#include "util/fs.h"
#include "util/json.h"

#define BUILD_DEFAULT_WARN_MIB 100

void img_build_opts_clear(struct img_build_opts *o)
{
  free(o->context);
  free(o->dockerfile);
  free(o->target);
  free(o->platform);
  cJSON_Delete(o->args);
  memset(o, 0, sizeof(*o));
}

static const char *str_opt(const cJSON *o, const char *key, const char *def)
{
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  return cJSON_IsString(v) ? v->valuestring : def;
}

/* The Dockerfile path relative to the context; refuses one outside it. */
static kiln_err dockerfile_rel(const char *context, const char *given, char **out,
                               struct kiln_error *err)
{
  char *abs = kiln_path_absolute(context, given);
  size_t cl = strlen(context);
  *out = NULL;
  if (!abs)
    return kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  kiln_err rc = KILN_OK;
  if (strncmp(abs, context, cl) != 0 || abs[cl] != '/' || strstr(abs + cl, "/../"))
    rc = kiln_error_set(err, KILN_E_INVALID,
                        "/image/build/dockerfile \"%s\" is outside the build context %s; keep "
                        "the Dockerfile inside the context",
                        given, context);
  else if (!kiln_path_exists(abs) || kiln_is_dir(abs))
    rc = kiln_error_set(err, KILN_E_NOT_FOUND,
                        "no Dockerfile at %s (/image/build/dockerfile); write one there or "
                        "point \"dockerfile\" at it",
                        abs);
  else if (!(*out = strdup(abs + cl + 1)))
    rc = kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  free(abs);
  return rc;
}

kiln_err img_build_opts_parse(const cJSON *build, const char *app_dir, const char *platform,
                              int64_t source_date_epoch, struct img_build_opts *o,
                              struct kiln_error *err)
{
  memset(o, 0, sizeof(*o));
  const cJSON *obj = cJSON_IsObject(build) ? build : NULL;
  const char *context = cJSON_IsString(build) ? build->valuestring : str_opt(obj, "context", ".");
  const cJSON *target = cJSON_GetObjectItemCaseSensitive(obj, "target");
  const cJSON *args = cJSON_GetObjectItemCaseSensitive(obj, "args");
  const cJSON *warn = cJSON_GetObjectItemCaseSensitive(obj, "context_warn_mib");
  kiln_err rc = KILN_OK;
  o->source_date_epoch = source_date_epoch;
  o->warn_bytes = (uint64_t)(cJSON_IsNumber(warn) ? warn->valuedouble : BUILD_DEFAULT_WARN_MIB)
                  << 20;
  o->context = kiln_path_absolute(app_dir, context);
  o->platform = strdup(str_opt(obj, "platform", platform));
  o->args = cJSON_IsObject(args) ? cJSON_Duplicate(args, 1) : cJSON_CreateObject();
  if (cJSON_IsString(target) && !(o->target = strdup(target->valuestring)))
    rc = KILN_E_NOMEM;
  if (!o->context || !o->platform || !o->args || rc)
    rc = kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  if (!rc) {
    size_t cl = strlen(o->context);
    while (cl > 1 && o->context[cl - 1] == '/')
      o->context[--cl] = '\0';
    if (!kiln_is_dir(o->context))
      rc = kiln_error_set(err, KILN_E_NOT_FOUND,
                          "the build context %s (/image/build/context) is not a directory",
                          o->context);
  }
  if (!rc)
    rc = dockerfile_rel(o->context, str_opt(obj, "dockerfile", "Dockerfile"), &o->dockerfile, err);
  const cJSON *a;
  cJSON_ArrayForEach(a, o->args)
  {
    if (!rc && !cJSON_IsString(a))
      rc = kiln_error_set(err, KILN_E_INVALID, "/image/build/args/%s must be a string", a->string);
  }
  if (rc)
    img_build_opts_clear(o);
  return rc;
}

static void human_size(uint64_t n, char *out, size_t len)
{
  if (n >= (1u << 30))
    snprintf(out, len, "%.1f GiB", (double)n / (1u << 30));
  else
    snprintf(out, len, "%.1f MiB", (double)n / (1u << 20));
}

kiln_err img_build_context(const struct img_build_opts *o, const struct img_source_env *env,
                           char **tar_path, char **digest, struct kiln_error *err)
{
  struct kiln_buf tar = KILN_BUF_INIT, sum = KILN_BUF_INIT;
  char hex[65];
  char *text = NULL;
  struct img_context_stats st = {.cancelled = env->cancelled, .cancel_ctx = env->log_ctx};
  kiln_buf_printf(&tar, "%s/context.tar", env->temp_dir);
  kiln_buf_printf(&sum, "%s/context.sha256", env->temp_dir);
  *tar_path = *digest = NULL;
  kiln_err rc = KILN_OK;
  /* identify() already made it in this stage's temp dir: reuse it in run() */
  if (kiln_path_exists(tar.data) && kiln_read_file(sum.data, 128, &text, NULL, err) == KILN_OK &&
      strlen(text) == 64) {
    memcpy(hex, text, 65);
  } else if (!(rc = img_context_tar(o->context, o->dockerfile, o->source_date_epoch, tar.data, hex,
                                    &st, err))) {
    rc = kiln_write_file_atomic(sum.data, hex, 64, 0600, err);
    char size[32];
    human_size(st.bytes, size, sizeof(size));
    if (!rc && !st.has_dockerignore && st.bytes > o->warn_bytes && env->warn)
      env->warn(env->log_ctx,
                "the build context %s is %s and has no .dockerignore: all of it goes to the "
                "Docker daemon on every build; list what the image does not need (.git, "
                "node_modules, build outputs) in %s/.dockerignore",
                o->context, size, o->context);
    if (!rc && env->log)
      env->log(env->log_ctx, "build context %s: %llu entries, %s, sha256:%.12s", o->context,
               (unsigned long long)st.files, size, hex);
  }
  free(text);
  if (!rc) {
    struct kiln_buf d = KILN_BUF_INIT;
    kiln_buf_printf(&d, "sha256:%s", hex);
    *digest = kiln_buf_detach(&d);
    *tar_path = kiln_buf_detach(&tar);
  }
  kiln_buf_free(&tar);
  kiln_buf_free(&sum);
  return rc;
}

/* The Dockerfile's instructions and the base image names of this build. */
static kiln_err read_dockerfile(const struct img_build_opts *o, struct img_dockerfile *df,
                                cJSON **bases, struct kiln_error *err)
{
  char *path = kiln_path_join(o->context, o->dockerfile), *text = NULL;
  size_t len = 0;
  kiln_err rc = path ? kiln_read_file(path, 16u << 20, &text, &len, err)
                     : kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  if (!rc && !(rc = img_dockerfile_parse(text, len, df, err)) && bases &&
      (rc = img_dockerfile_bases(df, o->args, o->target, bases, err)))
    kiln_error_prefix(err, "%s", path);
  free(path);
  free(text);
  return rc;
}

/* name -> image id for every base; ids from locked when present, else from the daemon (opened
 * on first need; "absent" when it lacks the image, "unknown" when it cannot be reached). */
static kiln_err base_ids(const cJSON *names, const cJSON *locked, struct img_daemon *d, int *opened,
                         cJSON **out, struct kiln_error *err)
{
  const cJSON *n;
  kiln_err rc = KILN_OK;
  *out = cJSON_CreateObject();
  cJSON_ArrayForEach(n, names)
  {
    const cJSON *l = cJSON_GetObjectItemCaseSensitive(locked, n->valuestring);
    char *id = NULL;
    if (cJSON_IsString(l)) {
      cJSON_AddStringToObject(*out, n->valuestring, l->valuestring);
      continue;
    }
    if (!*opened) {
      struct kiln_error e2 = KILN_ERROR_INIT;
      *opened = img_daemon_open(d, &e2) == KILN_OK ? 1 : -1;
      kiln_error_clear(&e2);
    }
    kiln_err r = *opened > 0 ? img_daemon_image_id(d, n->valuestring, &id, err) : KILN_E_NETWORK;
    if (r && r != KILN_E_NOT_FOUND && r != KILN_E_NETWORK) {
      rc = r;
      break;
    }
    cJSON_AddStringToObject(*out, n->valuestring,
                            id                      ? id
                            : r == KILN_E_NOT_FOUND ? "absent"
                                                    : "unknown");
    free(id);
  }
  return rc;
}

kiln_err img_build_identify(const struct img_build_opts *o, const struct img_source_env *env,
                            const cJSON *locked, char **ident, struct kiln_error *err)
{
  struct img_dockerfile df;
  struct img_daemon d;
  int opened = 0;
  char *tar = NULL, *digest = NULL;
  cJSON *names = NULL, *bases = NULL, *doc = cJSON_CreateObject();
  struct kiln_buf text = KILN_BUF_INIT;
  memset(&df, 0, sizeof(df));
  memset(&d, 0, sizeof(d));
  *ident = NULL;
  kiln_err rc = img_build_context(o, env, &tar, &digest, err);
  if (!rc)
    rc = read_dockerfile(o, &df, &names, err);
  if (!rc)
    rc = base_ids(names, locked, &d, &opened, &bases, err);
  if (!rc) {
    cJSON_AddStringToObject(doc, "context", digest);
    cJSON_AddStringToObject(doc, "dockerfile", o->dockerfile);
    cJSON_AddItemToObject(doc, "args", cJSON_Duplicate(o->args, 1));
    cJSON_AddStringToObject(doc, "target", o->target ? o->target : "");
    cJSON_AddStringToObject(doc, "platform", o->platform);
    cJSON_AddNumberToObject(doc, "source_date_epoch", (double)o->source_date_epoch);
    cJSON_AddItemToObject(doc, "bases", bases);
    bases = NULL;
    rc = kiln_json_canonical(doc, &text);
    if (!rc && !(*ident = kiln_buf_detach(&text)))
      rc = KILN_E_NOMEM;
    if (rc)
      kiln_error_set(err, rc, "out of memory");
  }
  if (opened)
    img_daemon_close(&d);
  img_dockerfile_clear(&df);
  cJSON_Delete(names);
  cJSON_Delete(bases);
  cJSON_Delete(doc);
  kiln_buf_free(&text);
  free(tar);
  free(digest);
  return rc;
}
