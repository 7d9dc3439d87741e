/* kiln upload FILE s3://BUCKET[/KEY]: the s3 stage's upload engine on any file, with resume. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "client.h"
#include "upload.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/hash.h"

struct upload_hooks {
  struct kiln *k;
};

static void hook_log(void *p, int level, const char *msg)
{
  struct upload_hooks *h = p;
  kiln_log(h->k, (enum kiln_log_level)level, "%s", msg);
}

static void hook_redact(void *p, const char *secret)
{
  struct upload_hooks *h = p;
  kiln_secret(h->k, secret);
}

static int hook_cancelled(void *p)
{
  (void)p;
  return kiln_cancelled();
}

static void hook_progress(void *p, uint64_t done, uint64_t total)
{
  struct upload_hooks *h = p;
  kiln_progress(h->k, "upload", done, total, "");
}

/* "s3://bucket/key" -> bucket and key ("" when absent). */
static int parse_s3_uri(const char *uri, char **bucket, char **key)
{
  if (strncmp(uri, "s3://", 5) != 0)
    return -1;
  const char *b = uri + 5;
  const char *slash = strchr(b, '/');
  size_t blen = slash ? (size_t)(slash - b) : strlen(b);
  if (blen < 3 || blen > 63)
    return -1;
  *bucket = strndup(b, blen);
  *key = strdup(slash ? slash + 1 : "");
  return *bucket && *key ? 0 : -1;
}

static char *content_key(const char *prefix, const char *file, const char *sha256)
{
  const char *base = strrchr(file, '/') ? strrchr(file, '/') + 1 : file;
  size_t n = strlen(base);
  if (n > 4 && strcmp(base + n - 4, ".eif") == 0)
    n -= 4;
  char *name = strndup(base, n ? n : 1);
  char *key = name ? kiln_s3_content_key(prefix, name, sha256) : NULL;
  free(name);
  return key;
}

static int parse_count(const char *v, long min, long max, long *out)
{
  char *end = NULL;
  long n = v ? strtol(v, &end, 10) : 0;
  if (!v || !*v || *end || n < min || n > max)
    return -1;
  *out = n;
  return 0;
}

int kiln_cmd_upload(struct kiln_cli *cli)
{
  const char *file = NULL, *uri = NULL, *region = NULL, *profile = NULL;
  long part_mib = 0, parallel = 0;
  int resumable = 0;
  for (int i = 1; i < cli->argc; i++) {
    const char *a = cli->argv[i];
    const char *v = i + 1 < cli->argc ? cli->argv[i + 1] : NULL;
    if (strcmp(a, "--part-size") == 0) {
      if (parse_count(v, 5, 5120, &part_mib))
        return kiln_cli_usage(cli, "--part-size takes MiB from 5 to 5120, got \"%s\"", v ? v : "");
      i++;
    } else if (strcmp(a, "--parallel") == 0) {
      if (parse_count(v, 1, 64, &parallel))
        return kiln_cli_usage(cli, "--parallel takes a number from 1 to 64, got \"%s\"",
                              v ? v : "");
      i++;
    } else if (strcmp(a, "--region") == 0 || strcmp(a, "--profile") == 0) {
      if (!v)
        return kiln_cli_usage(cli, "%s needs a value", a);
      *(strcmp(a, "--region") == 0 ? &region : &profile) = v;
      /* the client's region option comes after AWS_REGION; the command line wins over both */
      if (strcmp(a, "--region") == 0 && setenv("AWS_REGION", v, 1) != 0)
        return kiln_cli_fail_msg(cli, KILN_E_NOMEM, "cannot set AWS_REGION");
      i++;
    } else if (strcmp(a, "--resumable") == 0) {
      resumable = 1;
    } else if (a[0] == '-' && a[1]) {
      return kiln_cli_usage(cli, "unknown option \"%s\"", a);
    } else if (!file) {
      file = a;
    } else if (!uri) {
      uri = a;
    } else {
      return kiln_cli_usage(cli, "unexpected argument \"%s\"", a);
    }
  }
  if (!file || !uri)
    return kiln_cli_usage(cli, "give the file and the destination: kiln upload FILE "
                               "s3://BUCKET[/KEY]");
  char *bucket = NULL, *key = NULL, *journal_dir = NULL;
  if (parse_s3_uri(uri, &bucket, &key) != 0) {
    free(bucket);
    free(key);
    return kiln_cli_usage(cli,
                          "\"%s\" is not an S3 address: write s3://BUCKET/KEY (bucket names "
                          "have 3 to 63 characters)",
                          uri);
  }
  struct kiln *k = kiln_cli_open(cli);
  if (!k) {
    free(bucket);
    free(key);
    return KILN_EXIT_FAILURE;
  }
  struct upload_hooks hooks = {k};
  struct kiln_aws_client_options o = {.profile = profile,
                                      .region = region,
                                      .log = hook_log,
                                      .redact = hook_redact,
                                      .cancelled = hook_cancelled,
                                      .hook_ctx = &hooks};
  struct kiln_aws_client *c = NULL;
  struct kiln_error err = KILN_ERROR_INIT;
  struct kiln_s3_upload_result res;
  char sha256[KILN_SHA256_HEX_LEN + 1];
  int code = KILN_EXIT_OK;
  kiln_err rc;
  memset(&res, 0, sizeof(res));

  if ((rc = kiln_aws_client_new(&o, &c, &err)) != KILN_OK ||
      (rc = kiln_aws_client_credentials(c, NULL, &err)) != KILN_OK)
    goto fail;
  if (*key == '\0' || key[strlen(key) - 1] == '/') {
    if ((rc = kiln_sha256_file(file, sha256, NULL, &err)) != KILN_OK)
      goto fail;
    char *addressed = content_key(key, file, sha256);
    free(key);
    key = addressed;
    if (!key) {
      rc = kiln_error_set(&err, KILN_E_NOMEM, "out of memory");
      goto fail;
    }
  } else {
    sha256[0] = '\0';
  }
  struct kiln_buf jd = KILN_BUF_INIT;
  kiln_buf_printf(&jd, "%s/state/s3", kiln_cache_dir(k));
  journal_dir = kiln_buf_detach(&jd);
  struct kiln_s3_upload_options uo = {.bucket = bucket,
                                      .key = key,
                                      .path = file,
                                      .sha256 = sha256[0] ? sha256 : NULL,
                                      .checksum_identity = !sha256[0],
                                      .part_size = (uint64_t)part_mib << 20,
                                      .parallel = (unsigned)parallel,
                                      .journal_dir = journal_dir,
                                      .keep_on_failure = resumable,
                                      .progress = cli->json ? NULL : hook_progress,
                                      .progress_ctx = &hooks};
  rc = kiln_s3_upload(c, &uo, &res, &err);
  kiln_progress_end(k);
  if (rc != KILN_OK)
    goto fail;
  if (cli->json) {
    cJSON *doc = kiln_s3_upload_result_json(kiln_aws_client_region(c), bucket, key, &res);
    kiln_s3_upload_stats_json(doc, &res);
    cJSON_AddNumberToObject(doc, "parallel",
                            parallel ? (double)parallel : KILN_S3_DEFAULT_PARALLEL);
    cJSON_AddBoolToObject(doc, "resumable", resumable);
    kiln_cli_print_json(doc);
  } else if (res.skipped) {
    printf("s3://%s/%s already holds %s; nothing sent\n", bucket, key, file);
  } else {
    double mib = (double)res.bytes_sent / 1048576.0;
    char how[96];
    if (res.parts)
      snprintf(how, sizeof(how), "%u of %u parts sent%s", res.parts_sent, res.parts,
               res.resumed ? " (resumed)" : "");
    else
      snprintf(how, sizeof(how), "one request");
    printf("uploaded %s to s3://%s/%s\n  %llu bytes, %s, %.1f s (%.1f MiB/s)\n"
           "  sha256 %s\n",
           file, bucket, key, (unsigned long long)res.bytes, how, res.seconds,
           res.seconds > 0 ? mib / res.seconds : 0.0,
           res.sha256[0] ? res.sha256 : "not computed (the key is not content-addressed)");
    if (res.version_id && strcmp(res.version_id, "null") != 0)
      printf("  version %s\n", res.version_id);
  }
  goto out;
fail:
  kiln_progress_end(k);
  kiln_fail(k, rc, "%s", kiln_error_msg(&err));
  code = kiln_cli_fail(cli, k, rc);
out:
  kiln_error_clear(&err);
  kiln_s3_upload_result_clear(&res);
  kiln_aws_client_free(c);
  kiln_free(k);
  free(bucket);
  free(key);
  free(journal_dir);
  return code;
}
