/* The kernel stage: an enclave kernel artifact (bzImage or arm64 Image, config, cmdline, modules +
 * load order) from debian-build:6.12 (default: compiled with kiln's config), debian-cloud:6.12 or
 * blobs:DIR. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernel.h"
#include "stage_toolchain.h"
#include "util/buf.h"
#include "util/fs.h"
#include "util/hash.h"

#define KERNEL_STAGE_VERSION "0.3.0" /* 0.3: the pinned toolchain; 0.2: vsock loopback */
/* (aarch64 builds need no new version: a non-default /arch is in every step's cache key) */

/* The options schema: options.schema.json, compiled in by kiln_embed_text (CMakeLists.txt). */
extern const char options_schema[];

static const struct kernel_arch arches[] = {
    {"x86_64", "x86", "", "bzImage", "arch/x86/boot/bzImage", "kernel/enclave-x86_64.config",
     KILN_KERNEL_DEFAULT_CMDLINE},
    {"aarch64", "arm64", "aarch64-linux-gnu-", "Image", "arch/arm64/boot/Image",
     "kernel/enclave-aarch64.config", KILN_KERNEL_DEFAULT_CMDLINE_AARCH64},
};

const struct kernel_arch *kiln_kernel_arch(struct kiln_stage_ctx *ctx, const struct kiln_host *host)
{
  const cJSON *a = cJSON_GetObjectItemCaseSensitive(host->config(ctx), "arch");
  return cJSON_IsString(a) && strcmp(a->valuestring, "aarch64") == 0 ? &arches[1] : &arches[0];
}

static const char *source_of(const cJSON *opts)
{
  const cJSON *s = cJSON_GetObjectItemCaseSensitive(opts, "source");
  return cJSON_IsString(s) ? s->valuestring : "debian-build:6.12";
}

static kiln_err kernel_identify(struct kiln_stage_ctx *ctx, const struct kiln_host *host)
{
  const char *source = source_of(host->options(ctx));
  struct kiln_error err = KILN_ERROR_INIT;
  char hex[KILN_SHA256_HEX_LEN + 1];
  if (strncmp(source, "blobs:", 6) == 0) {
    /* The blobs' content, not their path, identifies the kernel. */
    char *dir = kiln_path_absolute(host->app_dir(ctx), source + 6);
    kiln_err rc = dir ? kiln_sha256_tree(dir, hex, &err) : KILN_E_NOMEM;
    free(dir);
    if (rc) {
      rc = host->fail(ctx, rc, "kernel %s: %s", source, kiln_error_msg(&err));
      kiln_error_clear(&err);
      return rc;
    }
    return host->cache_key_add(ctx, hex);
  }
  host->cache_key_add(ctx, KILN_DEBIAN_PACKAGE_VERSION);
  if (strncmp(source, "debian-build:", 13) == 0) {
    const char *arch = kiln_kernel_arch(ctx, host)->name;
    kiln_err rc = kiln_stage_toolchain_identify(ctx, host, arch);
    if (rc)
      return rc;
    char *config = kiln_path_join(host->share_dir(ctx), kiln_kernel_arch(ctx, host)->fragment);
    if (config && kiln_sha256_file(config, hex, NULL, &err) == KILN_OK)
      host->cache_key_add(ctx, hex);
    kiln_error_clear(&err);
    free(config);
  }
  return KILN_OK;
}

static kiln_err kernel_run(struct kiln_stage_ctx *ctx, const struct kiln_host *host)
{
  const cJSON *opts = host->options(ctx);
  const char *source = source_of(opts);
  const cJSON *cmdline_opt = cJSON_GetObjectItemCaseSensitive(opts, "cmdline");
  const char *dir = NULL;
  struct kernel_result r = {NULL, NULL};
  struct kiln_error err = KILN_ERROR_INIT;
  const struct kernel_arch *arch = kiln_kernel_arch(ctx, host);
  if (strcmp(source, "debian-cloud:6.12") == 0 && strcmp(arch->name, "x86_64") != 0)
    return host->fail(ctx, KILN_E_INVALID,
                      "/kernel/source: debian-cloud:6.12 is Debian's amd64 cloud kernel, but /arch "
                      "is %s; use debian-build:6.12 (cross-compiled) or blobs:DIR with %s blobs",
                      arch->name, arch->name);
  kiln_err rc = host->output(ctx, "kernel", &dir);
  if (rc)
    return rc;
  if (strcmp(source, "debian-cloud:6.12") == 0)
    rc = kiln_kernel_debian_cloud(ctx, host, dir, &r);
  else if (strcmp(source, "debian-build:6.12") == 0)
    rc = kiln_kernel_debian_build(ctx, host, dir, &r);
  else if (strncmp(source, "blobs:", 6) == 0 && source[6])
    rc = kiln_kernel_blobs(ctx, host, source + 6, dir, &r);
  else
    return host->fail(ctx, KILN_E_INVALID,
                      "/kernel/source: \"%s\" is not a kernel source; use debian-build:6.12, "
                      "debian-cloud:6.12 or blobs:DIR",
                      source);
  if (rc)
    goto out;
  /* The command line: the option, else the blobs' file, else nitro-cli's default. */
  const cJSON *blobs_cmdline = cJSON_GetObjectItemCaseSensitive(r.meta, "cmdline");
  const char *cmdline = cJSON_IsString(cmdline_opt)     ? cmdline_opt->valuestring
                        : cJSON_IsString(blobs_cmdline) ? blobs_cmdline->valuestring
                                                        : arch->cmdline;
  char *path = kiln_path_join(dir, "cmdline");
  char *modules = kiln_path_join(dir, "modules");
  rc = path ? kiln_write_file_atomic(path, cmdline, strlen(cmdline), 0644, &err) : KILN_E_NOMEM;
  if (!rc)
    rc = kiln_mkdir_p(modules, 0755, &err);
  free(path);
  free(modules);
  if (rc) {
    rc = host->fail(ctx, rc, "%s", kiln_error_msg(&err));
    goto out;
  }
  /* copy first: cmdline may be the blobs' value that the deletion frees */
  cJSON *cmdline_item = cJSON_CreateString(cmdline);
  cJSON_DeleteItemFromObjectCaseSensitive(r.meta, "cmdline");
  cJSON_AddItemToObject(r.meta, "cmdline", cmdline_item);
  cJSON_AddStringToObject(r.meta, "source", source);
  cJSON_AddStringToObject(r.meta, "arch", arch->name);
  cJSON_AddStringToObject(r.meta, "kernel_file", arch->target);
  if (r.package) {
    cJSON_AddItemToObject(r.meta, "package", cJSON_Duplicate(r.package, 1));
    host->lock_set(ctx, "package", r.package);
    r.package = NULL;
  }
  rc = host->output_meta(ctx, "kernel", r.meta);
  r.meta = NULL;
out:
  kiln_error_clear(&err);
  cJSON_Delete(r.meta);
  cJSON_Delete(r.package);
  return rc;
}

static const char *const produces[] = {"kernel", NULL};

static const struct kiln_stage kernel_stage = {
    .struct_size = sizeof(struct kiln_stage),
    .name = "kernel",
    .summary = "Enclave kernel from Debian's pinned sources (compiled), Debian's cloud kernel "
               "(tests/qemu: no virtio-mmio cmdline discovery), or nitro-cli blobs",
    .produces = produces,
    .options_schema = options_schema,
    .run = kernel_run,
    .identify = kernel_identify,
};

static const struct kiln_stage *const stages[] = {&kernel_stage, NULL};

static const struct kiln_plugin plugin = {
    .abi_version = KILN_ABI_VERSION,
    .struct_size = sizeof(struct kiln_plugin),
    .name = "kernel",
    .version = KERNEL_STAGE_VERSION,
    .license = "Apache-2.0",
    .stages = stages,
};

KILN_PLUGIN_EXPORT const struct kiln_plugin *kiln_plugin_entry(uint32_t host_abi_version)
{
  return host_abi_version == KILN_ABI_VERSION ? &plugin : NULL;
}
