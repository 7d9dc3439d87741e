/* The image stage: parse the source, resolve the image, apply its layers onto the tree, build the
 * run config and write the rootfs artifact (rootfs.cpio + metadata + kiln.lock digest). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include <kiln/plugin.h>

#include "build.h"
#include "image.h"
#include "source.h"
#include "util/fs.h"
#include "util/hash.h"

/* The options schema: options.schema.json, compiled in by kiln_embed_text (CMakeLists.txt). */
extern const char image_schema[];

struct stage_run {
  struct kiln_stage_ctx *ctx;
  const struct kiln_host *host;
};

static void stage_vlog(void *ud, enum kiln_log_level level, const char *fmt, va_list ap)
{
  struct stage_run *sr = ud;
  struct kiln_buf b = KILN_BUF_INIT;
  if (!kiln_buf_vprintf(&b, fmt, ap))
    sr->host->log(sr->ctx, level, "%s", b.data);
  kiln_buf_free(&b);
}

/* Problems in the image that kiln works around (tree->warn). */
static void stage_warn(void *ud, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  stage_vlog(ud, KILN_LOG_WARN, fmt, ap);
  va_end(ap);
}

/* What the sources are doing: pulls, exports, retries (env->log). */
static void stage_info(void *ud, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  stage_vlog(ud, KILN_LOG_INFO, fmt, ap);
  va_end(ap);
}

static int stage_cancelled(void *ud)
{
  struct stage_run *sr = ud;
  return sr->host->cancelled(sr->ctx);
}

static void stage_progress(void *ud, uint64_t done, uint64_t total, const char *label)
{
  struct stage_run *sr = ud;
  sr->host->progress(sr->ctx, done, total, label);
}

static const char *opt_str(const cJSON *o, const char *key, const char *def)
{
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  return cJSON_IsString(v) ? v->valuestring : def;
}

static int64_t source_date_epoch(void)
{
  const char *s = getenv("SOURCE_DATE_EPOCH");
  if (!s || !*s)
    return 0;
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  return (*end || errno || v < 0) ? -1 : (int64_t)v;
}

static const char *arch_name(const char *platform)
{
  if (strstr(platform, "/arm64"))
    return "aarch64";
  if (strstr(platform, "/amd64"))
    return "x86_64";
  return NULL;
}

/* The platform to select: /image/platform, else the one of kiln.json /arch (linux/amd64 when
 * unset). NULL (with the stage failed) when /image/platform contradicts an /arch set in kiln.json
 * (without /arch, `kiln image --platform` picks any variant; the eif stage then checks that the
 * kernel and the image agree). */
static const char *wanted_platform(struct kiln_stage_ctx *ctx, const struct kiln_host *host,
                                   const cJSON *opts)
{
  const cJSON *a = cJSON_GetObjectItemCaseSensitive(host->config(ctx), "arch");
  const char *arch = cJSON_IsString(a) ? a->valuestring : "x86_64";
  const char *platform = opt_str(opts, "platform", NULL);
  if (!platform)
    return strcmp(arch, "aarch64") == 0 ? "linux/arm64" : "linux/amd64";
  const char *platform_arch = arch_name(platform);
  if (cJSON_IsString(a) && platform_arch && strcmp(platform_arch, arch) != 0) {
    host->fail(ctx, KILN_E_INVALID,
               "/image/platform \"%s\" is %s, but /arch is %s; drop /image/platform (it follows "
               "/arch) or make the two agree",
               platform, platform_arch, arch);
    return NULL;
  }
  return platform;
}

static cJSON *string_array(char *const *list, size_t n)
{
  cJSON *a = cJSON_CreateArray();
  for (size_t i = 0; a && i < n; i++)
    cJSON_AddItemToArray(a, cJSON_CreateString(list[i]));
  return a;
}

/* The kiln.lock digest, when it was recorded for this same source (a changed source re-resolves).
 */
static const cJSON *locked_digest(struct kiln_stage_ctx *ctx, const struct kiln_host *host,
                                  const struct img_source *src)
{
  const cJSON *source = host->lock_get(ctx, "image_source");
  if (src->kind != IMG_SRC_REGISTRY || !cJSON_IsString(source) ||
      strcmp(source->valuestring, src->text) != 0)
    return NULL;
  return host->lock_get(ctx, "image_digest");
}

/* What the stage reads: "source", or the Dockerfile build's description. */
static const char *stage_label(const cJSON *opts, struct kiln_buf *b)
{
  const cJSON *build = cJSON_GetObjectItemCaseSensitive(opts, "build");
  if (!build)
    return opt_str(opts, "source", "?");
  kiln_buf_printf(b, "build of %s/%s",
                  cJSON_IsString(build) ? build->valuestring : opt_str(build, "context", "."),
                  opt_str(build, "dockerfile", "Dockerfile"));
  return kiln_buf_str(b);
}

/* Exactly one of /image/source and /image/build; *build set for the latter. */
static kiln_err check_input(const cJSON *opts, const cJSON **build, struct kiln_error *err)
{
  *build = cJSON_GetObjectItemCaseSensitive(opts, "build");
  const cJSON *source = cJSON_GetObjectItemCaseSensitive(opts, "source");
  if (*build && source)
    return kiln_error_set(err, KILN_E_INVALID,
                          "/image has both \"source\" and \"build\"; keep one (build makes the "
                          "image from your Dockerfile, source reads an existing one)");
  if (!*build && !source)
    return kiln_error_set(err, KILN_E_INVALID,
                          "/image needs \"source\" (docker-daemon:NAME[:TAG], docker://REPO:TAG, "
                          "oci:DIR, dir:PATH, ...) or \"build\" ({\"build\": \".\"} builds the "
                          "Dockerfile in the app directory)");
  return KILN_OK;
}

/* Run the Dockerfile build; *source becomes "docker-daemon:<image id>" (caller frees) and the
 * base images' ids go to kiln.lock, where the next identify() finds them. */
static kiln_err run_build(struct kiln_stage_ctx *ctx, const struct kiln_host *host,
                          const cJSON *build, const struct img_source_env *env, int64_t mtime,
                          char **source, struct kiln_error *err)
{
  struct img_build_opts o;
  char *id = NULL;
  cJSON *bases = NULL;
  struct kiln_buf b = KILN_BUF_INIT;
  kiln_err rc = img_build_opts_parse(build, host->app_dir(ctx), env->platform, mtime, &o, err);
  if (!rc)
    rc = img_build_run(&o, env, isatty(STDERR_FILENO), &id, &bases, err);
  if (!rc) {
    host->log(ctx, KILN_LOG_INFO, "built %s/%s: image %s", o.context, o.dockerfile, id);
    rc = host->lock_set(ctx, "build_bases", bases);
    bases = NULL;
    if (rc)
      kiln_error_set(err, rc, "cannot record the base images in kiln.lock");
  }
  if (!rc && (kiln_buf_printf(&b, "docker-daemon:%s", id) || !(*source = kiln_buf_detach(&b))))
    rc = kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  cJSON_Delete(bases);
  kiln_buf_free(&b);
  free(id);
  img_build_opts_clear(&o);
  return rc;
}

/* The rootfs artifact's metadata and the kiln.lock entries of the resolved image. */
static kiln_err record_rootfs(struct kiln_stage_ctx *ctx, const struct kiln_host *host,
                              const struct img_manifest *m, const struct img_runconfig *run,
                              const struct img_emit_stats *stats, const char *platform,
                              const char *label, const char *source, struct kiln_error *err)
{
  kiln_err rc;
  cJSON *meta = cJSON_CreateObject();
  const char *image_digest = m->manifest_digest ? m->manifest_digest : m->config_digest;
  char user[32];
  snprintf(user, sizeof(user), "%u:%u", run->uid, run->gid);
  cJSON_AddStringToObject(meta, "image_digest", image_digest ? image_digest : "");
  cJSON_AddStringToObject(meta, "config_digest", m->config_digest ? m->config_digest : "");
  cJSON_AddStringToObject(meta, "platform", platform);
  cJSON_AddStringToObject(meta, "arch", arch_name(platform));
  cJSON_AddItemToObject(meta, "argv", string_array(run->argv, run->argc));
  cJSON_AddItemToObject(meta, "env", string_array(run->env, run->envc));
  cJSON_AddStringToObject(meta, "workdir", run->workdir);
  cJSON_AddStringToObject(meta, "user", user);
  cJSON_AddNumberToObject(meta, "files", (double)stats->files);
  cJSON_AddNumberToObject(meta, "bytes", (double)stats->bytes);
  cJSON_AddNumberToObject(meta, "crc32", (double)stats->crc32); /* spares the eif stage a read */
  cJSON_AddStringToObject(meta, "source", label);
  if ((rc = host->output_meta(ctx, "rootfs", meta)) ||
      (image_digest &&
       ((rc = host->lock_set(ctx, "image_digest", cJSON_CreateString(image_digest))) ||
        (rc = host->lock_set(ctx, "image_source", cJSON_CreateString(source))))))
    return kiln_error_set(err, rc, "cannot record the rootfs metadata or kiln.lock entry");
  host->log(ctx, KILN_LOG_INFO, "rootfs: %llu entries, %llu bytes, image %s",
            (unsigned long long)stats->files, (unsigned long long)stats->bytes,
            image_digest ? image_digest : "(directory)");
  return KILN_OK;
}

static kiln_err image_run(struct kiln_stage_ctx *ctx, const struct kiln_host *host)
{
  kiln_err rc;
  struct kiln_error err = KILN_ERROR_INIT;
  struct stage_run sr = {ctx, host};
  struct img_source src;
  struct img_spool *spool = NULL;
  struct img_tree *tree = NULL;
  struct img_manifest m = {0};
  struct img_runconfig run = {0};
  struct img_emit_stats stats = {0};
  char *cpio = NULL;
  const char *outdir = NULL;
  const cJSON *opts = host->options(ctx), *build = NULL;
  const char *platform = wanted_platform(ctx, host, opts);
  if (!platform)
    return KILN_E_INVALID;
  int64_t mtime = source_date_epoch();
  char *built = NULL;
  struct kiln_buf label = KILN_BUF_INIT;
  memset(&src, 0, sizeof(src));
  if (cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(opts, "build")))
    platform = opt_str(cJSON_GetObjectItemCaseSensitive(opts, "build"), "platform", platform);
  if (mtime < 0)
    return host->fail(ctx, KILN_E_INVALID,
                      "SOURCE_DATE_EPOCH must be a non-negative integer (seconds since 1970)");
  if (!arch_name(platform))
    return host->fail(ctx, KILN_E_INVALID,
                      "/image/platform \"%s\": Nitro Enclaves run linux/amd64 or linux/arm64",
                      platform);
  struct img_source_env env = {.platform = platform,
                               .temp_dir = host->temp_dir(ctx),
                               .insecure =
                                   cJSON_GetObjectItemCaseSensitive(opts, "insecure_registries"),
                               .log = stage_info,
                               .log_ctx = &sr,
                               .cancelled = stage_cancelled,
                               .progress = stage_progress,
                               .warn = stage_warn};
  if ((rc = check_input(opts, &build, &err)) ||
      (build && (rc = run_build(ctx, host, build, &env, mtime, &built, &err))) ||
      (rc = img_source_parse(built ? built : opt_str(opts, "source", ""), host->app_dir(ctx), &src,
                             &err)) ||
      (rc = img_spool_new(host->temp_dir(ctx), &spool, &err)) ||
      (rc = img_tree_new(spool, &tree, &err)))
    goto out;
  env.locked_digest = locked_digest(ctx, host, &src);
  tree->warn = stage_warn;
  tree->warn_ctx = &sr;
  tree->keep_devices = strcmp(opt_str(opts, "devices", "drop"), "keep") == 0;
  const cJSON *mb = cJSON_GetObjectItemCaseSensitive(opts, "max_bytes");
  const cJSON *me = cJSON_GetObjectItemCaseSensitive(opts, "max_entries");
  if (cJSON_IsNumber(mb))
    tree->max_bytes = (uint64_t)mb->valuedouble;
  if (cJSON_IsNumber(me))
    tree->max_nodes = (uint64_t)me->valuedouble;
  if ((rc = img_source_load(&src, &env, tree, &m, &err)))
    goto out;
  if (host->cancelled(ctx)) {
    rc = KILN_E_CANCELLED;
    kiln_error_set(&err, rc, "interrupted");
    goto out;
  }
  const cJSON *cfg = host->config(ctx);
  struct img_run_overrides ov = {
      .cmd =
          cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(cfg, "enclave"), "cmd"),
      .env =
          cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(cfg, "enclave"), "env"),
      .nitro_cli_mode = strcmp(opt_str(opts, "cmd_mode", "docker"), "nitro-cli") == 0};
  if ((rc = img_runconfig_build(tree, m.config, &ov, &run, &err)))
    goto out;
  if ((rc = host->output(ctx, "rootfs", &outdir))) {
    kiln_error_set(&err, rc, "cannot create the rootfs artifact");
    goto out;
  }
  if (!(cpio = kiln_path_join(outdir, "rootfs.cpio"))) {
    rc = kiln_error_set(&err, KILN_E_NOMEM, "out of memory");
    goto out;
  }
  if ((rc = img_rootfs_write(tree, &run, mtime, cpio, &stats, &err)))
    goto out;
  /* the store takes the digest computed while writing instead of reading the archive again */
  if (KILN_HOST_HAS(host, output_digest) &&
      (rc = host->output_digest(ctx, "rootfs", "rootfs.cpio", stats.sha256, stats.bytes))) {
    kiln_error_set(&err, rc, "cannot hand the rootfs digest to the store");
    goto out;
  }
  rc = record_rootfs(ctx, host, &m, &run, &stats, platform,
                     build ? stage_label(opts, &label) : src.text, src.text, &err);
out:
  if (rc)
    rc = host->fail(ctx, rc, "image %s: %s", stage_label(opts, &label), kiln_error_msg(&err));
  free(cpio);
  free(built);
  kiln_buf_free(&label);
  img_runconfig_clear(&run);
  img_manifest_clear(&m);
  img_tree_free(tree);
  img_spool_free(spool);
  img_source_clear(&src);
  kiln_error_clear(&err);
  return rc;
}

/* Cache identity: the resolved image (manifest/config digests), or the directory's tree hash. */
/* A Dockerfile build's identity: the context tar, Dockerfile, args and the base images' ids. */
static kiln_err identify_build(struct kiln_stage_ctx *ctx, const struct kiln_host *host,
                               const cJSON *build, const struct img_source_env *env, char **ident,
                               struct kiln_error *err)
{
  struct img_build_opts o;
  int64_t mtime = source_date_epoch();
  if (mtime < 0)
    return kiln_error_set(err, KILN_E_INVALID,
                          "SOURCE_DATE_EPOCH must be a non-negative integer (seconds since 1970)");
  kiln_err rc = img_build_opts_parse(build, host->app_dir(ctx), env->platform, mtime, &o, err);
  if (!rc)
    rc = img_build_identify(&o, env, host->lock_get(ctx, "build_bases"), ident, err);
  img_build_opts_clear(&o);
  return rc;
}

/* Cache identity: the resolved image (manifest/config digests), the directory's tree hash, or
 * the Dockerfile build's inputs. */
static kiln_err image_identify(struct kiln_stage_ctx *ctx, const struct kiln_host *host)
{
  kiln_err rc;
  struct kiln_error err = KILN_ERROR_INIT;
  struct stage_run sr = {ctx, host};
  struct img_source src;
  struct kiln_buf label = KILN_BUF_INIT;
  char *ident = NULL;
  const cJSON *opts = host->options(ctx), *build = NULL;
  memset(&src, 0, sizeof(src));
  const char *platform = wanted_platform(ctx, host, opts);
  if (!platform)
    return KILN_E_INVALID;
  struct img_source_env env = {.platform = platform,
                               .temp_dir = host->temp_dir(ctx),
                               .insecure =
                                   cJSON_GetObjectItemCaseSensitive(opts, "insecure_registries"),
                               .locked_digest = NULL,
                               .log = stage_info,
                               .log_ctx = &sr,
                               .cancelled = stage_cancelled,
                               .warn = stage_warn};
  if ((rc = check_input(opts, &build, &err)))
    ;
  else if (build)
    rc = identify_build(ctx, host, build, &env, &ident, &err);
  else if (!(rc = img_source_parse(opt_str(opts, "source", ""), host->app_dir(ctx), &src, &err)))
    env.locked_digest = locked_digest(ctx, host, &src),
    rc = img_source_identify(&src, &env, &ident, &err);
  if (rc)
    rc = host->fail(ctx, rc, "image %s: %s", stage_label(opts, &label), kiln_error_msg(&err));
  else
    rc = host->cache_key_add(ctx, ident);
  const char *sde = getenv("SOURCE_DATE_EPOCH");
  if (!rc && sde)
    rc = host->cache_key_add(ctx, sde);
  free(ident);
  kiln_buf_free(&label);
  img_source_clear(&src);
  kiln_error_clear(&err);
  return rc;
}

static const char *const image_produces[] = {"rootfs", NULL};

/* The run configuration in kiln.json overrides the image's: part of the cache key. */
static const char *const image_config_reads[] = {"/enclave/cmd", "/enclave/env", NULL};

static const struct kiln_stage image_stage = {
    .struct_size = sizeof(struct kiln_stage),
    .name = "image",
    .summary = "container image (Dockerfile build, daemon, archive, OCI layout, registry or "
               "directory) -> rootfs",
    .produces = image_produces,
    .options_schema = image_schema,
    .run = image_run,
    .identify = image_identify,
    .config_reads = image_config_reads,
};

static const struct kiln_stage *const image_stages[] = {&image_stage, NULL};

static const struct kiln_plugin image_plugin = {
    .abi_version = KILN_ABI_VERSION,
    .struct_size = sizeof(struct kiln_plugin),
    .name = "image",
    .version = "0.1.0",
    .license = "Apache-2.0",
    .stages = image_stages,
};

KILN_PLUGIN_EXPORT const struct kiln_plugin *kiln_plugin_entry(uint32_t host_abi_version)
{
  return host_abi_version == KILN_ABI_VERSION ? &image_plugin : NULL;
}
