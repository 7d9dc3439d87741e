/* The toolchain as a stage sees it: the choice in kiln.json, the cache key, kiln.lock's record. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stage_toolchain.h"
#include "util/buf.h"
#include "util/fs.h"
#include "util/hash.h"

const char *kiln_toolchain_kind(const cJSON *kiln_json)
{
  const cJSON *t = cJSON_GetObjectItemCaseSensitive(kiln_json, "toolchain");
  if (cJSON_IsObject(t))
    t = cJSON_GetObjectItemCaseSensitive(t, "kind");
  if (!t)
    return "pinned";
  if (cJSON_IsString(t) && strcmp(t->valuestring, "host") == 0)
    return "host";
  return cJSON_IsString(t) && strcmp(t->valuestring, "pinned") == 0 ? "pinned" : NULL;
}

/* The host cross compiler that builds for a non-x86_64 arch with "toolchain": "host" (NULL for
 * x86_64). */
const char *kiln_toolchain_cross_cc(const char *arch)
{
  return arch && strcmp(arch, "aarch64") == 0 ? "aarch64-linux-gnu-gcc" : NULL;
}

kiln_err kiln_toolchain_check_host_cross(const char *arch, const char *what, struct kiln_error *err)
{
  const char *cross = kiln_toolchain_cross_cc(arch);
  if (!cross)
    return KILN_OK;
  struct kiln_buf cmd = KILN_BUF_INIT;
  kiln_buf_printf(&cmd, "command -v %s >/dev/null 2>&1", cross);
  int found = !kiln_buf_status(&cmd) && system(kiln_buf_str(&cmd)) == 0;
  kiln_buf_free(&cmd);
  return found ? KILN_OK
               : kiln_error_set(err, KILN_E_NOT_FOUND,
                                "%s with the host toolchain (/toolchain \"host\") needs the cross "
                                "compiler %s, which is missing; install it with: apt-get install "
                                "gcc-aarch64-linux-gnu libc6-dev-arm64-cross (or leave /toolchain "
                                "\"pinned\", which needs nothing installed)",
                                what, cross);
}

static const char *host_cc(void)
{
  const char *cc = getenv("CC");
  return cc && *cc ? cc : "cc";
}

kiln_err kiln_stage_toolchain_identify(struct kiln_stage_ctx *ctx, const struct kiln_host *host,
                                       const char *arch)
{
  const char *kind = kiln_toolchain_kind(host->config(ctx));
  if (!kind)
    return host->fail(ctx, KILN_E_INVALID,
                      "kiln.json /toolchain: must be \"pinned\" (the default) or \"host\"");
  const char *cross = strcmp(kind, "host") == 0 ? kiln_toolchain_cross_cc(arch) : NULL;
  kiln_err rc = host->cache_key_add(ctx, cross ? "host-cross" : kind);
  if (rc)
    return rc;
  if (strcmp(kind, "host") == 0) {
    char *id = kiln_host_compiler_identity(cross ? cross : host_cc());
    rc = id ? host->cache_key_add(ctx, id) : KILN_E_NOMEM;
    free(id);
    return rc;
  }
  char *pins = kiln_toolchain_pins_path(host->share_dir(ctx), arch);
  char hex[KILN_SHA256_HEX_LEN + 1];
  struct kiln_error err = KILN_ERROR_INIT;
  rc = pins ? kiln_sha256_file(pins, hex, NULL, &err) : KILN_E_NOMEM;
  if (!rc)
    rc = host->cache_key_add(ctx, hex);
  else
    rc = host->fail(ctx, rc, "the pinned toolchain: %s", kiln_error_msg(&err));
  kiln_error_clear(&err);
  free(pins);
  return rc;
}

struct log_target {
  struct kiln_stage_ctx *ctx;
  const struct kiln_host *host;
};

static void log_line(void *arg, const char *line)
{
  struct log_target *t = arg;
  t->host->log(t->ctx, KILN_LOG_DEBUG, "%s", line);
}

/* Use the host compiler cc and describe it for kiln.lock: {kind, arch, compiler identity}. */
static cJSON *host_compiler_lock(struct kiln_stage_toolchain *st, const char *kind,
                                 const char *arch, const char *cc)
{
  st->host_cc = strdup(cc);
  char *id = kiln_host_compiler_identity(cc);
  cJSON *lock = cJSON_CreateObject();
  cJSON_AddStringToObject(lock, "kind", kind);
  cJSON_AddStringToObject(lock, "arch", arch);
  cJSON_AddStringToObject(lock, "compiler", id ? id : "unknown");
  free(id);
  return lock;
}

kiln_err kiln_stage_toolchain_open(struct kiln_stage_ctx *ctx, const struct kiln_host *host,
                                   const char *arch, struct kiln_stage_toolchain *st,
                                   struct kiln_error *err)
{
  memset(st, 0, sizeof *st);
  cJSON *lock = NULL;
  kiln_err rc = KILN_OK;
  const char *kind = kiln_toolchain_kind(host->config(ctx));
  if (!kind) {
    rc = kiln_error_set(err, KILN_E_INVALID,
                        "kiln.json /toolchain: must be \"pinned\" (the default) or \"host\"");
  } else if (strcmp(kind, "host") == 0) {
    /* The host's compiler, as asked for (its cross compiler for aarch64), named in the lock. */
    const char *cross = kiln_toolchain_cross_cc(arch);
    char what[64];
    snprintf(what, sizeof what, "building for %s", arch);
    if ((rc = kiln_toolchain_check_host_cross(arch, what, err)))
      return rc;
    lock = host_compiler_lock(st, cross ? "host-cross" : "host", arch, cross ? cross : host_cc());
    if (cross)
      host->log(ctx, KILN_LOG_WARN,
                "building for %s with the host's cross compiler %s (/toolchain is \"host\"): "
                "the PCRs depend on this machine's cross gcc, binutils and libc",
                arch, cross);
    else
      host->log(ctx, KILN_LOG_WARN,
                "building with the host's compiler (/toolchain is \"host\"): the PCRs depend on "
                "this machine's compiler, binutils and libc");
  } else {
    st->pinned = 1;
    struct kiln_fetch_config fc = {0};
    char *cache = kiln_cache_root_from_state(host->state_dir(ctx));
    struct log_target lt = {ctx, host};
    rc = cache ? kiln_fetch_config_init(&fc, host->config(ctx), host->app_dir(ctx), cache, err)
               : KILN_E_NOMEM;
    if (!rc)
      rc = kiln_toolchain_prepare(host->share_dir(ctx), arch, &fc, cache, log_line, &lt, &st->tc,
                                  &lock, err);
    kiln_fetch_config_free(&fc);
    free(cache);
  }
  if (!rc && lock)
    rc = host->lock_set(ctx, "toolchain", lock);
  else
    cJSON_Delete(lock);
  return rc;
}

void kiln_stage_toolchain_close(struct kiln_stage_toolchain *st)
{
  kiln_toolchain_free(&st->tc);
  free(st->host_cc);
  st->host_cc = NULL;
}
