/* The deployment's EIF bucket: created when missing, each setting read back and written only when
 * it differs (so a second setup makes no change). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/md5.h>

#include "byoc.h"
#include "checksum.h"
#include "util/buf.h"
#include "util/json.h"

#define LIFECYCLE_RULE_ID "kiln-abort-incomplete-multipart-uploads"

static kiln_err s3_call(struct kiln_awsenv *env, const char *op, const char *method,
                        const char *subresource, const char *body, const char *content_type,
                        struct kiln_aws_response *resp, struct kiln_aws_error_info *info,
                        struct kiln_error *err)
{
  struct kiln_aws_pair query[1] = {{subresource ? subresource : "", ""}};
  struct kiln_aws_pair headers[2];
  size_t nh = 0;
  char md5_b64[32];
  if (body) {
    unsigned char md[MD5_DIGEST_LENGTH];
    unsigned int md_len = 0;
    EVP_Digest(body, strlen(body), md, &md_len, EVP_md5(), NULL);
    kiln_base64(md, md_len, md5_b64);
    headers[nh++] = (struct kiln_aws_pair){"content-md5", md5_b64};
    headers[nh++] = (struct kiln_aws_pair){"content-type", content_type};
  }
  struct kiln_aws_request r = KILN_AWS_REQUEST_INIT;
  r.service = "s3";
  r.operation = op;
  r.method = method;
  r.bucket = env->names.bucket;
  r.path = "/";
  r.query = subresource ? query : NULL;
  r.nquery = subresource ? 1 : 0;
  r.headers = headers;
  r.nheaders = nh;
  r.body = body;
  r.body_len = body ? strlen(body) : 0;
  return kiln_aws_send(env->c, &r, resp, info, err);
}

/* GET a bucket setting; *doc is NULL when the setting is absent (404-class answer). */
static kiln_err get_setting(struct kiln_awsenv *env, const char *op, const char *sub,
                            struct kiln_xml **doc, char **raw, struct kiln_error *err)
{
  struct kiln_aws_response resp;
  struct kiln_aws_error_info info;
  *doc = NULL;
  if (raw)
    *raw = NULL;
  kiln_err rc = s3_call(env, op, "GET", sub, NULL, NULL, &resp, &info, err);
  if (rc == KILN_E_NOT_FOUND || (rc != KILN_OK && info.http_status == 404)) {
    kiln_error_clear(err);
    rc = KILN_OK;
  } else if (rc == KILN_OK && raw) {
    *raw = kiln_buf_detach(&resp.body);
  } else if (rc == KILN_OK) {
    rc = kiln_xml_parse(resp.body.data, resp.body.len, op, doc, err);
  }
  kiln_aws_response_clear(&resp);
  return rc;
}

static kiln_err put_setting(struct kiln_awsenv *env, const char *op, const char *sub,
                            const char *body, const char *content_type, const char *what,
                            struct kiln_error *err)
{
  struct kiln_aws_response resp;
  kiln_awsenv_announce(env, "update", env->names.bucket, "%s", what);
  env->mutations++;
  if (env->dry_run)
    return KILN_OK;
  kiln_err rc = s3_call(env, op, "PUT", sub, body, content_type, &resp, NULL, err);
  kiln_aws_response_clear(&resp);
  return rc == KILN_OK ? KILN_OK : kiln_error_prefix(err, "bucket %s", env->names.bucket);
}

kiln_err kiln_bucket_exists(struct kiln_awsenv *env, int *exists, struct kiln_error *err)
{
  struct kiln_aws_response resp;
  struct kiln_aws_error_info info;
  kiln_err rc = s3_call(env, "HeadBucket", "HEAD", NULL, NULL, NULL, &resp, &info, err);
  kiln_aws_response_clear(&resp);
  *exists = rc == KILN_OK;
  if (rc == KILN_E_NOT_FOUND) {
    kiln_error_clear(err);
    return KILN_OK;
  }
  if (rc == KILN_E_AUTH && info.http_status == 403)
    return kiln_error_set(err, KILN_E_AUTH,
                          "bucket %s exists but these credentials may not use it: the name is "
                          "taken by another account, or the credentials lack access",
                          env->names.bucket);
  return rc;
}

static kiln_err create_bucket(struct kiln_awsenv *env, struct kiln_error *err)
{
  struct kiln_aws_response resp;
  struct kiln_aws_error_info info;
  struct kiln_buf body = KILN_BUF_INIT;
  const char *region = env->dep.region ? env->dep.region : "us-east-1";
  kiln_awsenv_announce(env, "create", env->names.bucket, "S3 bucket for EIFs in %s", region);
  env->mutations++;
  if (env->dry_run)
    return KILN_OK;
  if (strcmp(region, "us-east-1") != 0)
    kiln_buf_printf(&body,
                    "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
                    "<LocationConstraint>%s</LocationConstraint></CreateBucketConfiguration>",
                    region);
  kiln_err rc = s3_call(env, "CreateBucket", "PUT", NULL, body.len ? body.data : NULL,
                        "application/xml", &resp, &info, err);
  kiln_aws_response_clear(&resp);
  kiln_buf_free(&body);
  if (rc != KILN_OK && strcmp(info.code, "BucketAlreadyOwnedByYou") == 0) {
    kiln_error_clear(err);
    return KILN_OK;
  }
  if (rc != KILN_OK && strcmp(info.code, "BucketAlreadyExists") == 0) {
    kiln_error_clear(err);
    return kiln_error_set(err, KILN_E_REMOTE,
                          "bucket name %s is taken by another AWS account: set another bucket "
                          "name in kiln.json /aws/bucket, or another deployment id, and run "
                          "`kiln setup` again",
                          env->names.bucket);
  }
  return rc;
}

static int all_true(const struct kiln_xml *doc, const char *const *names)
{
  for (size_t i = 0; names[i]; i++) {
    const char *v = kiln_xml_text(doc, names[i]);
    if (!v || strcmp(v, "true") != 0)
      return 0;
  }
  return 1;
}

static kiln_err ensure_settings(struct kiln_awsenv *env, struct kiln_error *err)
{
  struct kiln_xml *doc = NULL;
  char *raw = NULL;
  kiln_err rc;
  static const char *const blocks[] = {"BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy",
                                       "RestrictPublicBuckets", NULL};
  if ((rc = get_setting(env, "GetPublicAccessBlock", "publicAccessBlock", &doc, NULL, err)))
    return rc;
  if (!doc || !all_true(doc, blocks))
    rc = put_setting(env, "PutPublicAccessBlock", "publicAccessBlock",
                     "<PublicAccessBlockConfiguration xmlns=\"http://s3.amazonaws.com/doc/"
                     "2006-03-01/\"><BlockPublicAcls>true</BlockPublicAcls><IgnorePublicAcls>true"
                     "</IgnorePublicAcls><BlockPublicPolicy>true</BlockPublicPolicy>"
                     "<RestrictPublicBuckets>true</RestrictPublicBuckets>"
                     "</PublicAccessBlockConfiguration>",
                     "application/xml", "block public access", err);
  kiln_xml_free(doc);
  if (rc || (rc = get_setting(env, "GetBucketVersioning", "versioning", &doc, NULL, err)))
    return rc;
  const char *status = doc ? kiln_xml_text(doc, "Status") : NULL;
  if (!status || strcmp(status, "Enabled") != 0)
    rc = put_setting(env, "PutBucketVersioning", "versioning",
                     "<VersioningConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
                     "<Status>Enabled</Status></VersioningConfiguration>",
                     "application/xml", "enable versioning", err);
  kiln_xml_free(doc);
  if (rc || (rc = get_setting(env, "GetBucketEncryption", "encryption", &doc, NULL, err)))
    return rc;
  if (!doc || !kiln_xml_find(doc, "SSEAlgorithm"))
    rc = put_setting(env, "PutBucketEncryption", "encryption",
                     "<ServerSideEncryptionConfiguration xmlns=\"http://s3.amazonaws.com/doc/"
                     "2006-03-01/\"><Rule><ApplyServerSideEncryptionByDefault><SSEAlgorithm>AES256"
                     "</SSEAlgorithm></ApplyServerSideEncryptionByDefault></Rule>"
                     "</ServerSideEncryptionConfiguration>",
                     "application/xml", "default encryption (SSE-S3)", err);
  kiln_xml_free(doc);
  if (rc ||
      (rc = get_setting(env, "GetBucketLifecycleConfiguration", "lifecycle", &doc, NULL, err)))
    return rc;
  int has_rule = 0;
  for (const struct kiln_xml *r = doc ? kiln_xml_child(doc, "Rule") : NULL; r;
       r = kiln_xml_next_same(r))
    has_rule |= kiln_xml_text(r, "ID") && strcmp(kiln_xml_text(r, "ID"), LIFECYCLE_RULE_ID) == 0;
  if (!has_rule)
    rc = put_setting(env, "PutBucketLifecycleConfiguration", "lifecycle",
                     "<LifecycleConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
                     "<Rule><ID>" LIFECYCLE_RULE_ID "</ID><Filter><Prefix></Prefix></Filter>"
                     "<Status>Enabled</Status><AbortIncompleteMultipartUpload>"
                     "<DaysAfterInitiation>1</DaysAfterInitiation>"
                     "</AbortIncompleteMultipartUpload></Rule></LifecycleConfiguration>",
                     "application/xml", "abort incomplete multipart uploads after 1 day", err);
  kiln_xml_free(doc);
  if (rc)
    return rc;
  /* The bucket policy, compared as canonical JSON. */
  cJSON *values = kiln_policy_values(&env->dep, &env->names, env->account_id, NULL);
  char *policy = NULL;
  rc = kiln_template_render_file(env->share_dir, "policies/bucket-policy.json.tmpl", values,
                                 &policy, err);
  cJSON_Delete(values);
  if (rc || (rc = get_setting(env, "GetBucketPolicy", "policy", &doc, &raw, err))) {
    free(policy);
    return rc;
  }
  cJSON *want = cJSON_Parse(policy), *have = raw ? cJSON_Parse(raw) : NULL;
  char *endpoint = kiln_aws_service_endpoint(env->c, "s3");
  if (endpoint && strncmp(endpoint, "http://", 7) == 0) {
    /* A plain-http endpoint (a local test server) could never be reached again. */
    cJSON *statements = cJSON_GetObjectItemCaseSensitive(want, "Statement");
    for (int i = cJSON_GetArraySize(statements) - 1; i >= 0; i--) {
      const cJSON *sid = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(statements, i), "Sid");
      if (cJSON_IsString(sid) && strcmp(sid->valuestring, "DenyInsecureTransport") == 0)
        cJSON_DeleteItemFromArray(statements, i);
    }
    free(policy);
    policy = cJSON_PrintUnformatted(want);
    kiln_aws_client_log(env->c, KILN_LOG_WARN,
                        "S3 endpoint %s is plain HTTP: no TLS-only bucket policy", endpoint);
  }
  free(endpoint);
  /* The bucket is the account's alone without a policy granting others (and public access is
   * blocked); the policy adds TLS-only access. */
  if (cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(want, "Statement")) > 0 &&
      (!have || !cJSON_Compare(want, have, 1)))
    rc = put_setting(env, "PutBucketPolicy", "policy", policy, "application/json",
                     "bucket policy: TLS only", err);
  cJSON_Delete(want);
  cJSON_Delete(have);
  free(policy);
  free(raw);
  return rc;
}

kiln_err kiln_bucket_tag(struct kiln_awsenv *env, char *owner, size_t n, struct kiln_error *err)
{
  struct kiln_xml *doc = NULL;
  owner[0] = '\0';
  kiln_err rc = get_setting(env, "GetBucketTagging", "tagging", &doc, NULL, err);
  for (const struct kiln_xml *t = doc ? kiln_xml_find(doc, "Tag") : NULL; t && !rc;
       t = kiln_xml_next_same(t)) {
    const char *key = kiln_xml_text(t, "Key"), *value = kiln_xml_text(t, "Value");
    if (key && value && strcmp(key, env->dep.tag_key) == 0)
      snprintf(owner, n, "%s", value);
  }
  kiln_xml_free(doc);
  return rc;
}

static kiln_err put_bucket_tags(struct kiln_awsenv *env, const char *why, struct kiln_error *err)
{
  struct kiln_buf body = KILN_BUF_INIT;
  kiln_buf_puts(&body, "<Tagging xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><TagSet>"
                       "<Tag><Key>");
  kiln_xml_escape(&body, env->dep.tag_key);
  kiln_buf_puts(&body, "</Key><Value>");
  kiln_xml_escape(&body, env->dep.id);
  kiln_buf_puts(&body, "</Value></Tag><Tag><Key>kiln:managed</Key><Value>true</Value></Tag>"
                       "</TagSet></Tagging>");
  kiln_err rc = put_setting(env, "PutBucketTagging", "tagging", kiln_buf_str(&body),
                            "application/xml", why, err);
  kiln_buf_free(&body);
  return rc;
}

/* Whether this account owns the bucket (ListBuckets; S3 answers other accounts' buckets to
 * HeadBucket when their policy lets us in, and local servers always do). */
static kiln_err owned_by_account(struct kiln_awsenv *env, int *owned, struct kiln_error *err)
{
  struct kiln_aws_pair query[1] = {{"prefix", env->names.bucket}};
  struct kiln_aws_response resp;
  struct kiln_aws_request r = KILN_AWS_REQUEST_INIT;
  r.service = "s3";
  r.operation = "ListBuckets";
  r.method = "GET";
  r.path = "/";
  r.query = query;
  r.nquery = 1;
  *owned = 0;
  kiln_err rc = kiln_aws_send(env->c, &r, &resp, NULL, err);
  struct kiln_xml *doc = NULL;
  if (rc == KILN_OK)
    rc = kiln_xml_parse(resp.body.data, resp.body.len, "ListBuckets", &doc, err);
  for (const struct kiln_xml *b = doc ? kiln_xml_find(doc, "Bucket") : NULL; b && !*owned;
       b = kiln_xml_next_same(b))
    *owned = kiln_xml_text(b, "Name") && strcmp(kiln_xml_text(b, "Name"), env->names.bucket) == 0;
  kiln_xml_free(doc);
  kiln_aws_response_clear(&resp);
  return rc;
}

/* An existing bucket is used only when it carries this deployment's tag, or is untagged and owned
 * by this account (a setup interrupted between creating and tagging it). */
static kiln_err claim_existing(struct kiln_awsenv *env, struct kiln_error *err)
{
  char owner[128];
  int owned = 0;
  kiln_err rc = kiln_bucket_tag(env, owner, sizeof owner, err);
  if (rc || strcmp(owner, env->dep.id) == 0)
    return rc;
  if ((rc = owned_by_account(env, &owned, err)))
    return kiln_error_prefix(err, "bucket %s exists without the tag %s=%s; checking its owner",
                             env->names.bucket, env->dep.tag_key, env->dep.id);
  if (!owned)
    return kiln_error_set(err, KILN_E_REMOTE,
                          "bucket name %s is taken by another AWS account: set another bucket "
                          "name in kiln.json /aws/bucket, or another deployment id, and run "
                          "`kiln setup` again",
                          env->names.bucket);
  if (owner[0])
    return kiln_error_set(err, KILN_E_REMOTE,
                          "bucket %s belongs to deployment %s (tag %s), not %s: kiln does not "
                          "touch it; set /aws/bucket in kiln.json to another name",
                          env->names.bucket, owner, env->dep.tag_key, env->dep.id);
  return put_bucket_tags(env, "tag the bucket (left untagged by an interrupted setup)", err);
}

kiln_err kiln_bucket_ensure(struct kiln_awsenv *env, struct kiln_error *err)
{
  int exists = 0;
  kiln_err rc = kiln_bucket_exists(env, &exists, err);
  if (rc == KILN_OK && !exists) {
    if ((rc = create_bucket(env, err)) == KILN_OK)
      rc = put_bucket_tags(env, "tag the bucket", err);
  } else if (rc == KILN_OK && (rc = claim_existing(env, err)) == KILN_OK) {
    kiln_awsenv_announce(env, "nothing", env->names.bucket, "bucket exists");
  }
  if (rc == KILN_OK && !(env->dry_run && !exists))
    rc = ensure_settings(env, err);
  return rc;
}
