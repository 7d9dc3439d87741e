/* The size stage: enclave CPUs/memory (and the EIF's size) -> the cheapest fitting instance. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <kiln/plugin.h>

#include "sizing.h"
#include "util/buf.h"
#include "util/fs.h"
#include "util/json.h"

/* The options schema: options.schema.json, compiled in by kiln_embed_text (CMakeLists.txt). */
extern const char options_schema[];

static int int_option(const cJSON *opts, const cJSON *config, const char *key, int fallback)
{
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(opts, key);
  if (cJSON_IsNumber(v))
    return v->valueint;
  v = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(config, "enclave"), key);
  return cJSON_IsNumber(v) ? v->valueint : fallback;
}

static const char *string_option(const cJSON *opts, const char *key)
{
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(opts, key);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* The EIF's size in bytes from its metadata, or from the file; 0 when there is no EIF. */
static int64_t eif_size(const struct kiln_artifact *eif)
{
  if (!eif)
    return 0;
  const cJSON *size = cJSON_GetObjectItemCaseSensitive(eif->meta, "size");
  if (cJSON_IsNumber(size) && size->valuedouble > 0)
    return (int64_t)size->valuedouble;
  const cJSON *file = cJSON_GetObjectItemCaseSensitive(eif->meta, "file");
  char *path = kiln_path_join(eif->path, cJSON_IsString(file) ? file->valuestring : "image.eif");
  struct stat st;
  int64_t n = (path && stat(path, &st) == 0) ? (int64_t)st.st_size : 0;
  free(path);
  return n;
}

static kiln_err size_run(struct kiln_stage_ctx *ctx, const struct kiln_host *host)
{
  const cJSON *opts = host->options(ctx);
  const cJSON *config = host->config(ctx);
  const struct kiln_artifact *eif = host->input(ctx, "eif");
  struct kiln_error err = KILN_ERROR_INIT;
  struct kiln_catalogue *cat = NULL;
  struct kiln_sizing_result res;
  memset(&res, 0, sizeof res);
  struct kiln_buf text = KILN_BUF_INIT;
  char *path = NULL, *out_file = NULL;
  kiln_err rc;

  const char *catalogue = string_option(opts, "catalogue");
  path = catalogue ? kiln_path_absolute(host->app_dir(ctx), catalogue)
                   : kiln_path_join(host->share_dir(ctx), "instance-types.json");
  if (!path)
    return host->fail(ctx, KILN_E_NOMEM, "out of memory");
  if ((rc = kiln_catalogue_load(path, &cat, &err)))
    goto fail;

  struct kiln_sizing_request req = {
      .cpus = int_option(opts, config, "cpus", 2),
      .memory_mib = int_option(opts, config, "memory_mib", 1024),
      .families = string_option(opts, "family"),
      .arch = string_option(opts, "arch"),
      .eif_size = eif_size(eif),
  };
  const cJSON *eif_arch = eif ? cJSON_GetObjectItemCaseSensitive(eif->meta, "arch") : NULL;
  if (!req.arch && cJSON_IsString(eif_arch))
    req.arch = eif_arch->valuestring;
  const cJSON *config_arch = cJSON_GetObjectItemCaseSensitive(config, "arch");
  if (!req.arch && cJSON_IsString(config_arch))
    req.arch = config_arch->valuestring; /* kiln.json /arch when there is no EIF yet */
  if ((rc = kiln_sizing_choose(cat, &req, &res, &err)))
    goto fail;

  const cJSON *n;
  cJSON_ArrayForEach(n, res.notes) host->log(ctx, KILN_LOG_INFO, "%s", n->valuestring);
  cJSON *meta = kiln_sizing_to_json(cat, &res);
  const char *dir = NULL;
  if ((rc = host->output(ctx, "sizing", &dir))) {
    cJSON_Delete(meta);
    goto out;
  }
  kiln_json_pretty(meta, &text);
  out_file = kiln_path_join(dir, "sizing.json");
  if (!out_file || (rc = kiln_write_file_atomic(out_file, text.data, text.len, 0644, &err))) {
    cJSON_Delete(meta);
    rc = rc ? rc : KILN_E_NOMEM;
    goto fail;
  }
  rc = host->output_meta(ctx, "sizing", meta);
  goto out;
fail:
  rc = host->fail(ctx, rc, "%s", kiln_error_msg(&err));
out:
  kiln_error_clear(&err);
  kiln_sizing_result_clear(&res);
  kiln_catalogue_free(cat);
  kiln_buf_free(&text);
  free(path);
  free(out_file);
  return rc;
}

static const char *const accepts[] = {"eif", NULL};
static const char *const produces[] = {"sizing", NULL};
static const char *const config_reads[] = {"/enclave/cpus", "/enclave/memory_mib", NULL};

static const struct kiln_stage size_stage = {
    .struct_size = sizeof(struct kiln_stage),
    .name = "size",
    .summary = "Choose the cheapest Nitro Enclave-capable EC2 instance that fits the enclave",
    .consumes = NULL,
    .accepts = accepts,
    .produces = produces,
    .options_schema = options_schema,
    .run = size_run,
    .config_reads = config_reads,
};

static const struct kiln_stage *const stages[] = {&size_stage, NULL};

static const struct kiln_plugin plugin = {
    .abi_version = KILN_ABI_VERSION,
    .struct_size = sizeof(struct kiln_plugin),
    .name = "size",
    .version = "0.1.0",
    .license = "Apache-2.0",
    .stages = stages,
};

KILN_PLUGIN_EXPORT const struct kiln_plugin *kiln_plugin_entry(uint32_t host_abi_version)
{
  return host_abi_version == KILN_ABI_VERSION ? &plugin : NULL;
}
