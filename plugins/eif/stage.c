/* The eif stage: rootfs + kernel artifacts -> a measured EIF (bootstrap ramdisk with kiln's init
 * and agent, compiled for this pipeline (programs.c), and the kernel's modules, then the
 * application ramdisk) and its PCRs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <kiln/eif.h>
#include <kiln/enclave_runtime.h>
#include <kiln/plugin.h>

#include "bootstrap.h"
#include "programs.h"
#include "util/buf.h"
#include "util/fs.h"
#include "util/hash.h"
#include "util/json.h"

#define EIF_STAGE_VERSION "0.1.0"

/* The options schema: options.schema.json, compiled in by kiln_embed_text (CMakeLists.txt). */
extern const char options_schema[];

static const char *str_option(const cJSON *o, const char *key, const char *fallback)
{
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  return cJSON_IsString(v) ? v->valuestring : fallback;
}

static int64_t build_time(void)
{
  const char *sde = getenv("SOURCE_DATE_EPOCH");
  char *end = NULL;
  long long t = sde ? strtoll(sde, &end, 10) : 0;
  return (sde && *sde && end && *end == '\0' && t >= 0) ? (int64_t)t : 0;
}

/* /arch of kiln.json: x86_64 (default) or aarch64. */
static const char *config_arch(struct kiln_stage_ctx *ctx, const struct kiln_host *host)
{
  const cJSON *a = cJSON_GetObjectItemCaseSensitive(host->config(ctx), "arch");
  return cJSON_IsString(a) ? a->valuestring : "x86_64";
}

/* The kernel, the rootfs and /arch must name the same architecture. */
static kiln_err check_arch(struct kiln_stage_ctx *ctx, const struct kiln_host *host,
                           const struct kiln_artifact *kernel, const struct kiln_artifact *rootfs)
{
  const char *want = config_arch(ctx, host);
  const char *kernel_arch = str_option(kernel->meta, "arch", "x86_64");
  const char *rootfs_arch = str_option(rootfs->meta, "arch", "x86_64");
  if (strcmp(kernel_arch, want) != 0 || strcmp(rootfs_arch, want) != 0)
    return host->fail(ctx, KILN_E_INVALID,
                      "/arch is %s but the kernel is %s and the image %s; rebuild them for %s "
                      "(`kiln build --arch %s`)",
                      want, kernel_arch, rootfs_arch, want, want);
  return KILN_OK;
}

/* The target architecture: the rootfs artifact's (x86_64 when it names none). */
static const char *target_arch(struct kiln_stage_ctx *ctx, const struct kiln_host *host)
{
  const struct kiln_artifact *rootfs = host->input(ctx, "rootfs");
  return str_option(rootfs ? rootfs->meta : NULL, "arch", "x86_64");
}

/* The init binary: kiln's (compiled for this pipeline, with kiln-agent) or the kernel artifact's
 * blobs init. */
static kiln_err find_init(struct kiln_stage_ctx *ctx, const struct kiln_host *host,
                          const struct kiln_artifact *kernel, const char *which, char **init,
                          char **agent)
{
  *init = *agent = NULL;
  if (strcmp(which, "blobs") != 0) {
    struct kiln_error err = KILN_ERROR_INIT;
    kiln_err rc = eif_programs_build(ctx, host, target_arch(ctx, host), init, agent, &err);
    if (rc)
      rc = host->fail(ctx, rc, "kiln-init and kiln-agent: %s", kiln_error_msg(&err));
    kiln_error_clear(&err);
    return rc;
  }
  *init = kiln_path_join(kernel->path, "init");
  if (*init && !kiln_path_exists(*init)) {
    free(*init);
    *init = NULL;
    return host->fail(ctx, KILN_E_NOT_FOUND,
                      "/eif/init is \"blobs\" but the kernel artifact has no init file (use a "
                      "blobs:DIR kernel source, or set /eif/init to \"kiln\")");
  }
  return *init ? KILN_OK : KILN_E_NOMEM;
}

/* pcrs.json, kiln.lock's measurements and the eif artifact's metadata. */
static kiln_err record_eif(struct kiln_stage_ctx *ctx, const struct kiln_host *host,
                           const char *pcrs_file, const struct kiln_eif_pcrs *pcrs,
                           const char *name, const char *arch, const char *sha, uint64_t size,
                           struct kiln_error *err)
{
  cJSON *measurements = kiln_eif_pcrs_json(pcrs);
  struct kiln_buf text = KILN_BUF_INIT;
  kiln_json_pretty(measurements, &text);
  kiln_err rc = kiln_write_file_atomic(pcrs_file, text.data, text.len, 0644, err);
  kiln_buf_free(&text);
  if (rc) {
    cJSON_Delete(measurements);
    return rc;
  }
  host->lock_set(ctx, "measurements", cJSON_Duplicate(measurements, 1));
  host->lock_set(ctx, "eif_sha256", cJSON_CreateString(sha));
  cJSON *meta = cJSON_CreateObject();
  cJSON_AddStringToObject(meta, "name", name);
  cJSON_AddStringToObject(meta, "file", "image.eif");
  cJSON_AddNumberToObject(meta, "size", (double)size);
  cJSON_AddStringToObject(meta, "sha256", sha);
  cJSON_AddStringToObject(meta, "arch", arch);
  cJSON_AddBoolToObject(meta, "signed", 0);
  cJSON_AddItemToObject(meta, "measurements", measurements);
  rc = host->output_meta(ctx, "eif", meta);
  return rc ? kiln_error_set(err, rc, "cannot record the eif artifact's metadata") : KILN_OK;
}

/* kiln-agent's configuration from kiln.json's enclave settings. */
static kiln_err agent_conf_text(struct kiln_stage_ctx *ctx, const struct kiln_host *host,
                                char **conf, struct kiln_error *err)
{
  struct kiln_enclave_runtime rt;
  kiln_err rc = kiln_enclave_runtime_load(host->config(ctx), &rt, err);
  if (rc)
    return rc;
  *conf = kiln_enclave_agent_conf(&rt);
  host->log(ctx, KILN_LOG_INFO, "enclave runtime: %zu port(s), egress %zu allow / %zu deny",
            rt.nports, rt.nallow, rt.ndeny);
  kiln_enclave_runtime_free(&rt);
  return *conf ? KILN_OK : kiln_error_set(err, KILN_E_NOMEM, "out of memory");
}

/* The bootstrap ramdisk, with kiln-agent and its configuration when the init is kiln's (agent
 * not NULL). */
static kiln_err write_bootstrap(struct kiln_stage_ctx *ctx, const struct kiln_host *host,
                                const char *agent, struct kiln_bootstrap *boot, const char *out,
                                struct kiln_error *err)
{
  char *agent_conf = NULL;
  kiln_err rc = agent ? agent_conf_text(ctx, host, &agent_conf, err) : KILN_OK;
  boot->agent_path = agent;
  boot->agent_conf = agent_conf;
  if (rc == KILN_OK)
    rc = kiln_bootstrap_write(out, boot, err);
  boot->agent_path = boot->agent_conf = NULL;
  free(agent_conf);
  return rc;
}

/* The sources of kiln-init and kiln-agent and the toolchain that compiles them are inputs of
 * this step: another kiln, or another toolchain, must not reuse an EIF made with the old ones. */
static kiln_err eif_identify(struct kiln_stage_ctx *ctx, const struct kiln_host *host)
{
  return eif_programs_identify(ctx, host, target_arch(ctx, host));
}

static kiln_err eif_run(struct kiln_stage_ctx *ctx, const struct kiln_host *host)
{
  const cJSON *opts = host->options(ctx);
  const struct kiln_artifact *rootfs = host->input(ctx, "rootfs");
  const struct kiln_artifact *kernel = host->input(ctx, "kernel");
  struct kiln_error err = KILN_ERROR_INIT;
  struct kiln_buf cmdline = KILN_BUF_INIT;
  char *init = NULL, *agent = NULL, *bootstrap = NULL, *app = NULL, *kernel_file = NULL,
       *config = NULL;
  char *modules = NULL, *order = NULL, *eif = NULL, *pcrs_file = NULL, *cmdline_text = NULL;
  char *os = NULL, *kver = NULL;
  kiln_err rc = KILN_OK;
  const char *dir = NULL, *tmp = host->temp_dir(ctx);
  if (!tmp)
    return host->fail(ctx, KILN_E_IO, "no temporary directory for the bootstrap ramdisk");
  const cJSON *kernel_section = cJSON_GetObjectItemCaseSensitive(host->config(ctx), "kernel");
  const char *which_init = str_option(opts, "init", str_option(kernel_section, "init", "kiln"));
  if ((rc = check_arch(ctx, host, kernel, rootfs)))
    return rc;
  if ((rc = find_init(ctx, host, kernel, which_init, &init, &agent)))
    return rc;
  const cJSON *kfile = cJSON_GetObjectItemCaseSensitive(kernel->meta, "kernel_file");
  kernel_file =
      kiln_path_join(kernel->path, cJSON_IsString(kfile) ? kfile->valuestring : "bzImage");
  config = kiln_path_join(kernel->path, "config");
  modules = kiln_path_join(kernel->path, "modules");
  order = kiln_path_join(kernel->path, "modules.order");
  bootstrap = kiln_path_join(tmp, "bootstrap.cpio");
  app = kiln_path_join(rootfs->path, "rootfs.cpio");
  char *cmdline_path = kiln_path_join(kernel->path, "cmdline");
  if (!kernel_file || !config || !modules || !order || !bootstrap || !app || !cmdline_path) {
    free(cmdline_path);
    rc = kiln_error_set(&err, KILN_E_NOMEM, "out of memory");
    goto fail;
  }
  rc = kiln_read_file(cmdline_path, 4096, &cmdline_text, NULL, &err);
  free(cmdline_path);
  if (rc)
    goto fail;
  size_t n = strlen(cmdline_text);
  while (n && (cmdline_text[n - 1] == '\n' || cmdline_text[n - 1] == '\r'))
    cmdline_text[--n] = '\0'; /* as nitro-cli trims the blobs' cmdline */
  int64_t mtime = build_time();
  struct kiln_bootstrap boot = {
      .init_path = init, .modules_dir = modules, .order_path = order, .mtime = mtime};
  if ((rc = write_bootstrap(ctx, host, agent, &boot, bootstrap, &err)))
    goto fail;
  if ((rc = host->output(ctx, "eif", &dir)))
    goto out;
  eif = kiln_path_join(dir, "image.eif");
  pcrs_file = kiln_path_join(dir, "pcrs.json");
  const char *arch = str_option(rootfs->meta, "arch", "x86_64");
  const char *algo = str_option(opts, "algo", "sha384");
  const char *name = str_option(opts, "name", str_option(host->config(ctx), "name", "app"));
  if (kiln_path_exists(config))
    kiln_eif_kernel_config_words(config, &os, &kver, &err);
  kiln_error_clear(&err);
  const char *ramdisks[] = {bootstrap, app};
  struct kiln_eif_build b = {
      .kernel = kernel_file,
      .cmdline = cmdline_text,
      .ramdisks = ramdisks,
      .nramdisks = 2,
      .aarch64 = strcmp(arch, "aarch64") == 0,
      .hash = strcmp(algo, "sha256") == 0   ? KILN_EIF_SHA256
              : strcmp(algo, "sha512") == 0 ? KILN_EIF_SHA512
                                            : KILN_EIF_SHA384,
      .metadata = {.image_name = name,
                   .image_version = str_option(opts, "version", "1.0"),
                   .build_time = mtime,
                   .build_tool = "kiln",
                   .build_tool_version = EIF_STAGE_VERSION,
                   .operating_system = os,
                   .kernel_version = kver},
  };
  struct kiln_eif_pcrs pcrs;
  char sha[KILN_SHA256_HEX_LEN + 1];
  uint64_t size = 0;
  b.file_sha256 = sha; /* in the same pass as the PCRs: the EIF is not read again */
  const cJSON *app_crc = cJSON_GetObjectItemCaseSensitive(rootfs->meta, "crc32");
  int crc_ok = cJSON_IsNumber(app_crc) && app_crc->valuedouble >= 0 &&
               app_crc->valuedouble <= 4294967295.0; /* a wrong one fails the write, see eif.h */
  int64_t crcs[2] = {-1, crc_ok ? (int64_t)app_crc->valuedouble : -1};
  b.ramdisk_crc32 = crcs;
  host->log(ctx, KILN_LOG_INFO, "assembling %s.eif", name);
  if ((rc = kiln_eif_write(&b, eif, &pcrs, &err)))
    goto fail;
  struct stat st;
  if (stat(eif, &st) != 0) {
    rc = kiln_error_set(&err, KILN_E_IO, "cannot inspect %s", eif);
    goto fail;
  }
  size = (uint64_t)st.st_size;
  if (KILN_HOST_HAS(host, output_digest) &&
      (rc = host->output_digest(ctx, "eif", "image.eif", sha, size)))
    goto out;
  if ((rc = record_eif(ctx, host, pcrs_file, &pcrs, name, arch, sha, size, &err)))
    goto fail;
  goto out;
fail:
  rc = host->fail(ctx, rc ? rc : err.code, "%s", kiln_error_msg(&err));
out:
  kiln_error_clear(&err);
  kiln_buf_free(&cmdline);
  free(init);
  free(agent);
  free(bootstrap);
  free(app);
  free(kernel_file);
  free(config);
  free(modules);
  free(order);
  free(eif);
  free(pcrs_file);
  free(cmdline_text);
  free(os);
  free(kver);
  return rc;
}

static const char *const consumes[] = {"rootfs", "kernel", NULL};
static const char *const produces[] = {"eif", NULL};
static const char *const config_reads[] = {"/name",           "/kernel/init", "/enclave/ports",
                                           "/enclave/egress", "/aws/ports",   NULL};

static const struct kiln_stage eif_stage = {
    .struct_size = sizeof(struct kiln_stage),
    .name = "eif",
    .summary = "Assemble a byte-reproducible EIF and its PCRs from a rootfs and a kernel",
    .consumes = consumes,
    .produces = produces,
    .options_schema = options_schema,
    .run = eif_run,
    .identify = eif_identify,
    .config_reads = config_reads,
};

static const struct kiln_stage *const stages[] = {&eif_stage, NULL};

static const struct kiln_plugin plugin = {
    .abi_version = KILN_ABI_VERSION,
    .struct_size = sizeof(struct kiln_plugin),
    .name = "eif",
    .version = EIF_STAGE_VERSION,
    .license = "Apache-2.0",
    .stages = stages,
};

KILN_PLUGIN_EXPORT const struct kiln_plugin *kiln_plugin_entry(uint32_t host_abi_version)
{
  return host_abi_version == KILN_ABI_VERSION ? &plugin : NULL;
}
