/* Resource kind "bucket": the deployment's EIF bucket (see bucket.c for its settings); teardown
 * empties and deletes it only with delete_bucket and only when it carries the deployment tag. */
#include <string.h>

#include "resource.h"
#include "s3.h"
#include "util/buf.h"

static kiln_err bucket_find(struct kiln_walk *w, struct kiln_error *err)
{
  kiln_err rc = kiln_bucket_exists(w->env, &w->bucket_exists, err);
  if (rc != KILN_OK || w->mode != KILN_WALK_STATUS || !w->bucket_exists)
    return rc;
  /* status lists the uploads a failed resumable upload kept */
  struct kiln_s3_upload_entry *e = NULL;
  size_t n = 0;
  w->bucket_uploads = cJSON_CreateArray();
  if (kiln_s3_list_uploads(w->env->c, w->env->names.bucket, NULL, &e, &n, err) == KILN_OK) {
    for (size_t i = 0; i < n; i++) {
      cJSON *u = cJSON_CreateObject();
      kiln_json_add_string(u, "key", e[i].key);
      kiln_json_add_string(u, "upload_id", e[i].upload_id);
      kiln_json_add_string(u, "initiated", e[i].initiated);
      cJSON_AddItemToArray(w->bucket_uploads, u);
    }
  } else {
    kiln_error_clear(err);
  }
  kiln_s3_upload_entries_free(e, n);
  return KILN_OK;
}

static kiln_err bucket_ensure(struct kiln_walk *w, struct kiln_error *err)
{
  return kiln_bucket_ensure(w->env, err);
}

static int bucket_exists(const struct kiln_walk *w)
{
  return w->bucket_exists;
}

static void bucket_fields(const struct kiln_walk *w, cJSON *meta)
{
  if (w->mode != KILN_WALK_STATUS)
    return;
  cJSON_AddBoolToObject(meta, "bucket_exists", w->bucket_exists);
  cJSON_AddItemToObject(meta, "incomplete_uploads",
                        w->bucket_uploads ? cJSON_Duplicate(w->bucket_uploads, 1)
                                          : cJSON_CreateArray());
}

/* Empty (every version, every incomplete upload) and delete the bucket. */
static kiln_err empty_and_delete(struct kiln_awsenv *env, struct kiln_error *err)
{
  int exists = 0;
  char owner[128];
  kiln_err rc = kiln_bucket_exists(env, &exists, err);
  if (rc != KILN_OK || !exists || (rc = kiln_bucket_tag(env, owner, sizeof owner, err)))
    return rc;
  if (strcmp(owner, env->dep.id) != 0) {
    kiln_awsenv_announce(env, "nothing", env->names.bucket,
                         "left alone: it does not carry the tag %s=%s", env->dep.tag_key,
                         env->dep.id);
    return KILN_OK;
  }
  kiln_awsenv_announce(env, "delete", env->names.bucket, "bucket with every object version");
  env->mutations++;
  if (env->dry_run)
    return KILN_OK;
  struct kiln_s3_upload_entry *uploads = NULL;
  size_t nup = 0;
  rc = kiln_s3_list_uploads(env->c, env->names.bucket, NULL, &uploads, &nup, err);
  for (size_t i = 0; i < nup && rc == KILN_OK; i++)
    rc = kiln_s3_abort_multipart(env->c, env->names.bucket, uploads[i].key, uploads[i].upload_id,
                                 err);
  kiln_s3_upload_entries_free(uploads, nup);
  for (int round = 0; rc == KILN_OK && round < 1000; round++) {
    struct kiln_aws_pair q[] = {{"versions", ""}};
    struct kiln_aws_request r = KILN_AWS_REQUEST_INIT;
    struct kiln_aws_response resp;
    struct kiln_xml *doc = NULL;
    r.service = "s3";
    r.operation = "ListObjectVersions";
    r.method = "GET";
    r.bucket = env->names.bucket;
    r.query = q;
    r.nquery = 1;
    rc = kiln_aws_send(env->c, &r, &resp, NULL, err);
    if (rc == KILN_OK)
      rc = kiln_xml_parse(resp.body.data, resp.body.len, "S3 ListObjectVersions response", &doc,
                          err);
    kiln_aws_response_clear(&resp);
    size_t deleted = 0;
    for (const struct kiln_xml *v = doc ? doc->child : NULL; v && rc == KILN_OK; v = v->next) {
      if (strcmp(v->name, "Version") != 0 && strcmp(v->name, "DeleteMarker") != 0)
        continue;
      struct kiln_buf path = KILN_BUF_INIT;
      kiln_buf_printf(&path, "/%s", kiln_xml_text(v, "Key") ? kiln_xml_text(v, "Key") : "");
      struct kiln_aws_pair vq[] = {{"versionId", kiln_xml_text(v, "VersionId")}};
      struct kiln_aws_request d = KILN_AWS_REQUEST_INIT;
      d.service = "s3";
      d.operation = "DeleteObject";
      d.method = "DELETE";
      d.bucket = env->names.bucket;
      d.path = kiln_buf_str(&path);
      d.query = vq;
      d.nquery = vq[0].value ? 1 : 0;
      rc = kiln_aws_send(env->c, &d, &resp, NULL, err);
      kiln_aws_response_clear(&resp);
      kiln_buf_free(&path);
      deleted++;
    }
    kiln_xml_free(doc);
    if (deleted == 0)
      break;
  }
  if (rc == KILN_OK) {
    struct kiln_aws_request r = KILN_AWS_REQUEST_INIT;
    struct kiln_aws_response resp;
    struct kiln_aws_error_info info;
    r.service = "s3";
    r.operation = "DeleteBucket";
    r.method = "DELETE";
    r.bucket = env->names.bucket;
    rc = kiln_aws_send(env->c, &r, &resp, &info, err);
    kiln_aws_response_clear(&resp);
    if (rc == KILN_E_NOT_FOUND) {
      kiln_error_clear(err);
      rc = KILN_OK;
    }
  }
  return rc;
}

static kiln_err bucket_teardown(struct kiln_walk *w, struct kiln_error *err)
{
  if (w->delete_bucket)
    return empty_and_delete(w->env, err);
  kiln_awsenv_announce(w->env, "nothing", w->env->names.bucket,
                       "bucket kept (its EIFs too): add --delete-bucket to remove it");
  return KILN_OK;
}

const struct kiln_aws_resource kiln_res_bucket = {
    .name = "bucket",
    .find = bucket_find,
    .ensure = bucket_ensure,
    .exists = bucket_exists,
    .fields = bucket_fields,
    .teardown = bucket_teardown,
};
