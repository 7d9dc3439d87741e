/* The s3 stage: the pipeline's EIF to the deployment's S3 bucket under a content-addressed key,
 * skipped when the object is already there, resumable, never cached (the bucket is checked on every
 * run), and beside it the parent's kiln-host (kiln-host/<sha256>) that the instances install.
 * Output: an s3-object artifact describing where the EIF (and kiln-host) now live. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kiln/plugin.h>

#include "client.h"
#include "deploy.h"
#include "host_hooks.h"
#include "s3.h"
#include "upload.h"
#include "util/buf.h"
#include "util/fs.h"
#include "util/hash.h"
#include "util/json.h"

/* The options schema: options.schema.json, compiled in by kiln_embed_text (CMakeLists.txt). */
extern const char options_schema[];

static const char *string_at(const cJSON *obj, const char *key)
{
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
  return cJSON_IsString(v) && *v->valuestring ? v->valuestring : NULL;
}

static int int_at(const cJSON *obj, const char *key, int fallback)
{
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
  return cJSON_IsNumber(v) ? v->valueint : fallback;
}

/* The account id of the credentials (STS GetCallerIdentity), caller frees. */
static kiln_err caller_account(struct kiln_aws_client *c, char **account, struct kiln_error *err)
{
  struct kiln_xml *doc = NULL;
  kiln_err rc = kiln_aws_query(c, "sts", "GetCallerIdentity", NULL, &doc, NULL, err);
  *account = NULL;
  if (rc == KILN_OK) {
    const struct kiln_xml *a = kiln_xml_find(doc, "Account");
    if (!a || !*a->text)
      rc = kiln_error_set(err, KILN_E_REMOTE, "STS GetCallerIdentity: the answer has no Account");
    else if (!(*account = strdup(a->text)))
      rc = kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  }
  kiln_xml_free(doc);
  return rc;
}

/* The bucket: the stage's option, /aws/bucket, or the deployment's own bucket name. */
static kiln_err resolve_bucket(struct kiln_aws_client *c, const cJSON *opts, const cJSON *config,
                               const char *app_dir, char **bucket, struct kiln_error *err)
{
  const char *b = string_at(opts, "bucket");
  if (!b)
    b = string_at(cJSON_GetObjectItemCaseSensitive(config, "aws"), "bucket");
  if (b)
    return (*bucket = strdup(b)) ? KILN_OK : kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  struct kiln_deployment d = {0};
  struct kiln_deployment_names names = {0};
  char *account = NULL;
  kiln_err rc = kiln_deployment_resolve(config, app_dir, &d, err);
  if (rc == KILN_OK && !d.id)
    rc = kiln_error_set(err, KILN_E_INVALID,
                        "no bucket for the EIF: set /s3/bucket or /aws/bucket in kiln.json, or "
                        "run `kiln setup` to create the deployment (and its bucket)");
  if (rc == KILN_OK)
    rc = caller_account(c, &account, err);
  if (rc == KILN_OK)
    rc = kiln_deployment_names_make(d.id, account, &names, err);
  if (rc == KILN_OK) {
    *bucket = names.bucket;
    names.bucket = NULL;
  }
  kiln_deployment_names_clear(&names);
  kiln_deployment_clear(&d);
  free(account);
  return rc;
}

struct eif_file {
  char *path;
  char *name;
  const char *sha256;
  char computed[KILN_SHA256_HEX_LEN + 1];
};

/* The file to upload: the eif artifact's image, or a file given in place (meta "source", from
 * `--input eif=FILE`), whose name loses its .eif suffix. Without a digest in the metadata the file
 * is hashed here unless want_sha256 is 0 (an exact key needs none). */
static kiln_err eif_of(const struct kiln_artifact *eif, int want_sha256, struct eif_file *out,
                       struct kiln_error *err)
{
  const char *source = string_at(eif->meta, "source");
  const char *file = string_at(eif->meta, "file");
  const char *name = string_at(eif->meta, "name");
  size_t n = name ? strlen(name) : 0;
  if (source && n > 4 && strcmp(name + n - 4, ".eif") == 0)
    n -= 4;
  out->path = source ? strdup(source) : kiln_path_join(eif->path, file ? file : "image.eif");
  out->name = name ? strndup(name, n ? n : 1) : strdup("enclave");
  out->sha256 = string_at(eif->meta, "sha256");
  if (!out->path || !out->name)
    return kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  if (out->sha256 || !want_sha256)
    return KILN_OK;
  kiln_err rc = kiln_sha256_file(out->path, out->computed, NULL, err);
  if (rc == KILN_OK)
    out->sha256 = out->computed;
  return rc;
}

static kiln_err open_client(struct kiln_stage_ctx *ctx, const struct kiln_host *host,
                            struct kiln_aws_host *hooks, struct kiln_aws_client **c,
                            struct kiln_error *err)
{
  const cJSON *opts = host->options(ctx);
  const cJSON *aws = cJSON_GetObjectItemCaseSensitive(host->config(ctx), "aws");
  struct kiln_aws_client_options o = {
      .profile =
          string_at(opts, "profile") ? string_at(opts, "profile") : string_at(aws, "profile"),
      .region = string_at(opts, "region") ? string_at(opts, "region") : string_at(aws, "region"),
      .s3_path_style = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(aws, "s3_path_style")),
  };
  kiln_aws_host_hooks(hooks, &o);
  return kiln_aws_client_new(&o, c, err);
}

/* kiln-host beside the EIF, content-addressed; {"key", "sha256"} into meta. */
static kiln_err upload_kiln_host(struct kiln_stage_ctx *ctx, const struct kiln_host *host,
                                 struct kiln_aws_client *c, const char *bucket, cJSON *meta,
                                 struct kiln_error *err)
{
  char sha[KILN_SHA256_HEX_LEN + 1], *key = NULL;
  /* the parent's architecture is the enclave's: lib_dir/aarch64/kiln-host for Graviton */
  const cJSON *arch = cJSON_GetObjectItemCaseSensitive(host->config(ctx), "arch");
  int aarch64 = cJSON_IsString(arch) && strcmp(arch->valuestring, "aarch64") == 0;
  char *path = kiln_path_join(host->lib_dir(ctx), aarch64 ? "aarch64/kiln-host" : "kiln-host");
  kiln_err rc = path ? kiln_sha256_file(path, sha, NULL, err) : KILN_E_NOMEM;
  if (rc == KILN_E_NOT_FOUND || rc == KILN_E_IO)
    kiln_error_prefix(err, aarch64 ? "kiln-host for aarch64 (the Graviton parent's side of the "
                                     "enclave runtime) is missing: build kiln with c-ares for "
                                     "arm64 (libc-ares-dev:arm64) installed"
                                   : "kiln-host (the parent side of the enclave runtime) is "
                                     "missing: rebuild or reinstall kiln");
  if (rc == KILN_OK && !(key = kiln_s3_kiln_host_key(sha)))
    rc = kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  struct kiln_s3_upload_result res;
  memset(&res, 0, sizeof(res));
  if (rc == KILN_OK) {
    struct kiln_s3_upload_options uo = {.bucket = bucket, .key = key, .path = path, .sha256 = sha};
    rc = kiln_s3_upload(c, &uo, &res, err);
  }
  if (rc == KILN_OK) {
    host->log(ctx, KILN_LOG_INFO, "%s s3://%s/%s", res.skipped ? "already in" : "uploaded to",
              bucket, key);
    cJSON *kh = cJSON_AddObjectToObject(meta, "kiln_host");
    if (!kh || !cJSON_AddStringToObject(kh, "key", key) ||
        !cJSON_AddStringToObject(kh, "sha256", sha))
      rc = kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  }
  kiln_s3_upload_result_clear(&res);
  free(path);
  free(key);
  return rc;
}

static kiln_err s3_run(struct kiln_stage_ctx *ctx, const struct kiln_host *host)
{
  const cJSON *opts = host->options(ctx);
  const struct kiln_artifact *eif = host->input(ctx, "eif");
  struct kiln_aws_host hooks = {ctx, host};
  struct kiln_aws_client *c = NULL;
  struct kiln_error err = KILN_ERROR_INIT;
  struct kiln_s3_upload_result res;
  struct eif_file file = {0};
  char *bucket = NULL, *key = NULL, *json_path = NULL;
  struct kiln_buf text = KILN_BUF_INIT;
  kiln_err rc;
  memset(&res, 0, sizeof(res));

  const int exact_key = string_at(opts, "key") != NULL;
  if ((rc = eif_of(eif, !exact_key, &file, &err)) ||
      (rc = open_client(ctx, host, &hooks, &c, &err)) ||
      (rc = resolve_bucket(c, opts, host->config(ctx), host->app_dir(ctx), &bucket, &err)))
    goto fail;
  key = string_at(opts, "key")
            ? strdup(string_at(opts, "key"))
            : kiln_s3_content_key(string_at(opts, "prefix"), file.name, file.sha256);
  if (!key) {
    rc = kiln_error_set(&err, KILN_E_NOMEM, "out of memory");
    goto fail;
  }
  /* The EIF's PCRs travel with the object (x-amz-meta-pcr0...), so `kiln status` can show what
   * is deployed from AWS alone. */
  struct kiln_aws_pair pcr_headers[4];
  size_t npcr = 0;
  static const char *const pcr_names[][2] = {{"PCR0", "x-amz-meta-pcr0"},
                                             {"PCR1", "x-amz-meta-pcr1"},
                                             {"PCR2", "x-amz-meta-pcr2"},
                                             {"PCR8", "x-amz-meta-pcr8"}};
  const cJSON *pcrs = cJSON_GetObjectItemCaseSensitive(eif->meta, "measurements");
  for (size_t i = 0; i < 4; i++)
    if (string_at(pcrs, pcr_names[i][0]))
      pcr_headers[npcr++] =
          (struct kiln_aws_pair){pcr_names[i][1], string_at(pcrs, pcr_names[i][0])};
  struct kiln_s3_upload_options uo = {
      .headers = pcr_headers,
      .nheaders = npcr,
      .bucket = bucket,
      .key = key,
      .path = file.path,
      .sha256 = file.sha256,
      .checksum_identity = !file.sha256,
      .part_size = (uint64_t)int_at(opts, "part_size_mib", 0) << 20,
      .parallel = (unsigned)int_at(opts, "parallel", 0),
      .journal_dir = host->state_dir(ctx),
      .keep_on_failure = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(opts, "resumable")),
      .progress = kiln_aws_host_progress,
      .progress_ctx = &hooks,
  };
  if ((rc = kiln_s3_upload(c, &uo, &res, &err))) {
    if (strstr(kiln_error_msg(&err), "NoSuchBucket"))
      kiln_error_prefix(&err,
                        "bucket %s does not exist: run `kiln setup` (it creates the "
                        "deployment's bucket), or check that these credentials belong to "
                        "the deployment's account",
                        bucket);
    goto fail;
  }
  char how[64];
  if (res.skipped)
    snprintf(how, sizeof(how), "nothing sent");
  else if (res.parts)
    snprintf(how, sizeof(how), "%u of %u parts sent%s", res.parts_sent, res.parts,
             res.resumed ? ", resumed" : "");
  else
    snprintf(how, sizeof(how), "one request");
  host->log(ctx, KILN_LOG_INFO, "%s s3://%s/%s (%llu bytes, %s, %.1f s)",
            res.skipped ? "already in" : "uploaded to", bucket, key, (unsigned long long)res.bytes,
            how, res.seconds);
  cJSON *meta = kiln_s3_upload_result_json(kiln_aws_client_region(c), bucket, key, &res);
  cJSON *transfer = cJSON_AddObjectToObject(meta, "transfer");
  if (transfer) {
    kiln_s3_upload_stats_json(transfer, &res);
    cJSON_AddNumberToObject(transfer, "parallel",
                            uo.parallel ? (double)uo.parallel : KILN_S3_DEFAULT_PARALLEL);
    cJSON_AddBoolToObject(transfer, "resumable", uo.keep_on_failure);
  }
  /* a deploy (content-addressed key) also ships kiln-host; `kiln upload FILE s3://B/K` does not */
  if (!exact_key && (rc = upload_kiln_host(ctx, host, c, bucket, meta, &err))) {
    cJSON_Delete(meta);
    goto fail;
  }
  const char *dir = NULL;
  if ((rc = host->output(ctx, "s3-object", &dir))) {
    cJSON_Delete(meta);
    goto out;
  }
  kiln_json_pretty(meta, &text);
  json_path = kiln_path_join(dir, "object.json");
  if (!json_path || (rc = kiln_write_file_atomic(json_path, text.data, text.len, 0644, &err))) {
    cJSON_Delete(meta);
    rc = rc ? rc : KILN_E_NOMEM;
    goto fail;
  }
  rc = host->output_meta(ctx, "s3-object", meta);
  goto out;
fail:
  rc = host->fail(ctx, rc, "%s", kiln_error_msg(&err));
out:
  kiln_error_clear(&err);
  kiln_s3_upload_result_clear(&res);
  kiln_aws_client_free(c);
  kiln_buf_free(&text);
  free(file.path);
  free(file.name);
  free(bucket);
  free(key);
  free(json_path);
  return rc;
}

/* Plan: where the EIF would go and whether it is already there (a read-only HEAD). */
static kiln_err s3_plan(struct kiln_stage_ctx *ctx, const struct kiln_host *host)
{
  const cJSON *opts = host->options(ctx);
  const struct kiln_artifact *eif = host->input(ctx, "eif");
  struct kiln_aws_host hooks = {ctx, host};
  struct kiln_aws_client *c = NULL;
  struct kiln_error err = KILN_ERROR_INIT;
  struct eif_file file = {0};
  struct kiln_s3_object obj = {0};
  char *bucket = NULL, *key = NULL;
  struct kiln_buf resource = KILN_BUF_INIT;
  kiln_err rc;
  if (!eif)
    return host->plan_action(ctx, "create", "s3 object", "the EIF this run builds");
  if ((rc = eif_of(eif, 0, &file, &err)) || (rc = open_client(ctx, host, &hooks, &c, &err)) ||
      (rc = resolve_bucket(c, opts, host->config(ctx), host->app_dir(ctx), &bucket, &err)))
    goto fail;
  key = string_at(opts, "key") ? strdup(string_at(opts, "key"))
                               : kiln_s3_content_key(string_at(opts, "prefix"), file.name,
                                                     file.sha256 ? file.sha256 : "unknown");
  if ((rc = kiln_s3_head(c, bucket, key, &obj, &err)))
    goto fail;
  kiln_buf_printf(&resource, "s3://%s/%s", bucket, key);
  int same = obj.exists && obj.meta_sha256 && file.sha256 && !strcmp(obj.meta_sha256, file.sha256);
  rc = host->plan_action(ctx, same ? "nothing" : "create", kiln_buf_str(&resource),
                         same ? "the object holds this EIF already" : "upload the EIF");
  goto out;
fail:
  rc = host->fail(ctx, rc, "%s", kiln_error_msg(&err));
out:
  kiln_error_clear(&err);
  kiln_s3_object_clear(&obj);
  kiln_aws_client_free(c);
  kiln_buf_free(&resource);
  free(file.path);
  free(file.name);
  free(bucket);
  free(key);
  return rc;
}

static const char *const consumes[] = {"eif", NULL};
static const char *const produces[] = {"s3-object", NULL};

static const struct kiln_stage s3_stage = {
    .struct_size = sizeof(struct kiln_stage),
    .name = "s3",
    .summary = "Upload the EIF to S3 (content-addressed key, parallel resumable multipart, CRC32C)",
    .consumes = consumes,
    .accepts = NULL,
    .produces = produces,
    .options_schema = options_schema,
    .run = s3_run,
    .plan = s3_plan,
    .flags = KILN_STAGE_NO_CACHE,
};

static const struct kiln_stage *const stages[] = {&s3_stage, NULL};

static const struct kiln_plugin plugin = {
    .abi_version = KILN_ABI_VERSION,
    .struct_size = sizeof(struct kiln_plugin),
    .name = "s3",
    .version = "0.1.0",
    .license = "Apache-2.0",
    .stages = stages,
};

KILN_PLUGIN_EXPORT const struct kiln_plugin *kiln_plugin_entry(uint32_t host_abi_version)
{
  return host_abi_version == KILN_ABI_VERSION ? &plugin : NULL;
}
