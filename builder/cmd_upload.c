/* kiln upload FILE s3://BUCKET[/KEY]: the s3 stage on any file (`kiln run s3 --input eif=FILE`
 * with the bucket and key from the address), with resume. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

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

static int parse_count(const char *v, long min, long max, long *out)
{
  char *end = NULL;
  long n = v ? strtol(v, &end, 10) : 0;
  if (!v || !*v || *end || n < min || n > max)
    return -1;
  *out = n;
  return 0;
}

struct upload_args {
  const char *file, *uri, *region, *profile;
  long part_mib, parallel;
  int resumable;
};

/* Returns 0, or the usage error's exit code. */
static int parse_args(struct kiln_cli *cli, struct upload_args *u)
{
  for (int i = 1; i < cli->argc; i++) {
    const char *a = cli->argv[i];
    const char *v = i + 1 < cli->argc ? cli->argv[i + 1] : NULL;
    if (strcmp(a, "--part-size") == 0) {
      if (parse_count(v, 5, 5120, &u->part_mib))
        return kiln_cli_usage(cli, "--part-size takes MiB from 5 to 5120, got \"%s\"", v ? v : "");
      i++;
    } else if (strcmp(a, "--parallel") == 0) {
      if (parse_count(v, 1, 64, &u->parallel))
        return kiln_cli_usage(cli, "--parallel takes a number from 1 to 64, got \"%s\"",
                              v ? v : "");
      i++;
    } else if (strcmp(a, "--region") == 0 || strcmp(a, "--profile") == 0) {
      if (!v)
        return kiln_cli_usage(cli, "%s needs a value", a);
      *(strcmp(a, "--region") == 0 ? &u->region : &u->profile) = v;
      /* the client's region option comes after AWS_REGION; the command line wins over both */
      if (strcmp(a, "--region") == 0 && setenv("AWS_REGION", v, 1) != 0)
        return kiln_cli_fail_msg(cli, KILN_E_NOMEM, "cannot set AWS_REGION");
      i++;
    } else if (strcmp(a, "--resumable") == 0) {
      u->resumable = 1;
    } else if (a[0] == '-' && a[1]) {
      return kiln_cli_usage(cli, "unknown option \"%s\"", a);
    } else if (!u->file) {
      u->file = a;
    } else if (!u->uri) {
      u->uri = a;
    } else {
      return kiln_cli_usage(cli, "unexpected argument \"%s\"", a);
    }
  }
  if (!u->file || !u->uri)
    return kiln_cli_usage(cli, "give the file and the destination: kiln upload FILE "
                               "s3://BUCKET[/KEY]");
  return 0;
}

/* The s3 stage's options for this upload; returns 0 or the exit code. */
static int set_options(struct kiln_cli *cli, struct kiln *k, struct kiln_pipeline *p,
                       const struct upload_args *u, const char *bucket, const char *key)
{
  int content_addressed = *key == '\0' || key[strlen(key) - 1] == '/';
  int code = kiln_cli_set_string(cli, k, p, "s3", "bucket", bucket);
  if (!code && *key)
    code = kiln_cli_set_string(cli, k, p, "s3", content_addressed ? "prefix" : "key", key);
  if (!code && u->region)
    code = kiln_cli_set_string(cli, k, p, "s3", "region", u->region);
  if (!code && u->profile)
    code = kiln_cli_set_string(cli, k, p, "s3", "profile", u->profile);
  char num[32];
  kiln_err rc = KILN_OK;
  if (!code && u->part_mib) {
    snprintf(num, sizeof num, "%ld", u->part_mib);
    rc = kiln_pipeline_set(p, "s3", "part_size_mib", num);
  }
  if (!code && !rc && u->parallel) {
    snprintf(num, sizeof num, "%ld", u->parallel);
    rc = kiln_pipeline_set(p, "s3", "parallel", num);
  }
  if (!code && !rc && u->resumable)
    rc = kiln_pipeline_set(p, "s3", "resumable", "true");
  return code ? code : rc ? kiln_cli_fail(cli, k, rc) : 0;
}

static void print_human(const char *file, const cJSON *m)
{
  const cJSON *t = cJSON_GetObjectItem(m, "transfer");
  const char *uri = cJSON_GetStringValue(cJSON_GetObjectItem(m, "uri"));
  const char *sha256 = cJSON_GetStringValue(cJSON_GetObjectItem(m, "sha256"));
  const char *version = cJSON_GetStringValue(cJSON_GetObjectItem(m, "version_id"));
  double bytes = cJSON_GetNumberValue(cJSON_GetObjectItem(m, "bytes"));
  double sent = cJSON_GetNumberValue(cJSON_GetObjectItem(t, "bytes_sent"));
  double seconds = cJSON_GetNumberValue(cJSON_GetObjectItem(t, "seconds"));
  int parts = (int)cJSON_GetNumberValue(cJSON_GetObjectItem(t, "parts"));
  if (cJSON_IsTrue(cJSON_GetObjectItem(t, "skipped"))) {
    printf("%s already holds %s; nothing sent\n", uri, file);
    return;
  }
  char how[96];
  if (parts > 0)
    snprintf(how, sizeof(how), "%d of %d parts sent%s",
             (int)cJSON_GetNumberValue(cJSON_GetObjectItem(t, "parts_sent")), parts,
             cJSON_IsTrue(cJSON_GetObjectItem(t, "resumed")) ? " (resumed)" : "");
  else
    snprintf(how, sizeof(how), "one request");
  printf("uploaded %s to %s\n  %.0f bytes, %s, %.1f s (%.1f MiB/s)\n  sha256 %s\n", file, uri,
         bytes, how, seconds, seconds > 0 ? sent / 1048576.0 / seconds : 0.0,
         sha256 ? sha256 : "not computed (the key is not content-addressed)");
  if (version)
    printf("  version %s\n", version);
}

/* The artifact's metadata with the transfer figures at the top level, as --json prints it. */
static cJSON *result_json(const cJSON *meta)
{
  cJSON *doc = cJSON_Duplicate(meta, 1);
  cJSON *t = doc ? cJSON_DetachItemFromObject(doc, "transfer") : NULL;
  while (t && t->child) {
    cJSON *item = cJSON_DetachItemViaPointer(t, t->child);
    cJSON_AddItemToObject(doc, item->string, item);
  }
  cJSON_Delete(t);
  return doc;
}

int kiln_cmd_upload(struct kiln_cli *cli)
{
  struct upload_args u = {0};
  int code = parse_args(cli, &u);
  if (code)
    return code;
  char *bucket = NULL, *key = NULL;
  if (parse_s3_uri(u.uri, &bucket, &key) != 0) {
    free(bucket);
    free(key);
    return kiln_cli_usage(cli,
                          "\"%s\" is not an S3 address: write s3://BUCKET/KEY (bucket names "
                          "have 3 to 63 characters)",
                          u.uri);
  }
  struct kiln_pipeline *p = NULL;
  const char *stages[] = {"s3", NULL};
  const struct kiln_artifact *object = NULL;
  struct kiln *k = kiln_cli_open_app(cli, 0, &code);
  if (!k)
    goto out;
  if ((code = kiln_cli_pipeline(cli, k, stages, &p)) ||
      (code = kiln_cli_add_input(cli, k, p, "upload", "eif", u.file)) ||
      (code = set_options(cli, k, p, &u, bucket, key)) ||
      (code = kiln_cli_run_pipeline(cli, k, p, "s3-object", &object)))
    goto out;
  if (cli->json)
    kiln_cli_print_json(result_json(object->meta));
  else
    print_human(u.file, object->meta);
out:
  kiln_pipeline_free(p);
  kiln_free(k);
  free(bucket);
  free(key);
  return code;
}
