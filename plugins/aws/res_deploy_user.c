/* Resource kind "deploy-user": the scoped IAM user `kiln deploy` runs as, its tag-scoped inline
 * policy rendered from share/policies, and an access key written 0600 to the file the user chose
 * (only when that file does not exist yet). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "iam.h"
#include "resource.h"
#include "util/buf.h"

kiln_err kiln_iam_find_deploy_user(struct kiln_awsenv *env, struct kiln_iam *iam,
                                   struct kiln_error *err)
{
  struct kiln_xml *doc = NULL;
  int found = 0;
  kiln_err rc = KILN_OK;
  rc = kiln_iam_get(env, "GetUser", "UserName", env->names.deploy_user, NULL, NULL, &doc,
                    &iam->deploy_user, err);
  kiln_xml_free(doc);
  doc = NULL;
  if (rc == KILN_OK && iam->deploy_user) {
    rc = kiln_iam_get(env, "GetUserPolicy", "UserName", env->names.deploy_user, "PolicyName",
                      DEPLOY_POLICY_NAME, &doc, &found, err);
    cJSON *policy = found ? kiln_iam_document(doc, "PolicyDocument") : NULL;
    iam->deploy_policy = policy ? cJSON_PrintUnformatted(policy) : NULL;
    cJSON_Delete(policy);
    kiln_xml_free(doc);
    doc = NULL;
  }
  if (rc == KILN_OK && iam->deploy_user) {
    rc = kiln_iam_get(env, "ListAccessKeys", "UserName", env->names.deploy_user, NULL, NULL, &doc,
                      &found, err);
    for (const struct kiln_xml *m = doc ? kiln_awsenv_items(doc, "AccessKeyMetadata") : NULL; m;
         m = kiln_xml_next_same(m))
      iam->deploy_keys++;
    kiln_xml_free(doc);
  }
  return rc;
}

static int same_policy(const char *have, const char *want)
{
  cJSON *a = have ? cJSON_Parse(have) : NULL, *b = want ? cJSON_Parse(want) : NULL;
  int same = a && b && cJSON_Compare(a, b, 1);
  cJSON_Delete(a);
  cJSON_Delete(b);
  return same;
}

static kiln_err write_key_file(const char *path, const char *id, const char *secret,
                               struct kiln_error *err)
{
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0)
    return kiln_error_set(err, KILN_E_IO, "cannot create %s: %s", path, strerror(errno));
  struct kiln_buf b = KILN_BUF_INIT;
  kiln_buf_printf(&b,
                  "# kiln deploy credentials (scoped to one deployment); keep this file secret\n"
                  "AWS_ACCESS_KEY_ID=%s\nAWS_SECRET_ACCESS_KEY=%s\n",
                  id, secret);
  ssize_t w = write(fd, b.data, b.len);
  int ok = w == (ssize_t)b.len && fsync(fd) == 0;
  close(fd);
  kiln_buf_free(&b);
  if (!ok) {
    unlink(path);
    return kiln_error_set(err, KILN_E_IO, "writing %s failed", path);
  }
  return KILN_OK;
}

kiln_err kiln_iam_ensure_deploy_user(struct kiln_awsenv *env, struct kiln_iam *iam,
                                     const struct kiln_policy_scope *scope,
                                     const char *credentials_file, struct kiln_error *err)
{
  struct kiln_aws_params p = {0};
  struct kiln_xml *doc = NULL;
  char *policy = NULL;
  static const char *const exists[] = {"EntityAlreadyExists", NULL};
  kiln_err rc = KILN_OK;
  if (!iam->deploy_user) {
    kiln_awsenv_announce(env, "create", env->names.deploy_user,
                         "IAM user for `kiln deploy` (scoped by tag)");
    kiln_aws_params_add(&p, "UserName", env->names.deploy_user);
    kiln_iam_add_tags(env, &p);
    rc =
        kiln_awsenv_mutate(env, "iam", "CreateUser", &p, env->names.deploy_user, exists, NULL, err);
    kiln_aws_params_clear(&p);
  }
  if (rc == KILN_OK)
    rc = kiln_iam_render_policy(env, scope, &policy, err);
  if (rc == KILN_OK && !same_policy(iam->deploy_policy, policy)) {
    kiln_awsenv_announce(env, iam->deploy_policy ? "update" : "create", env->names.deploy_user,
                         "inline policy " DEPLOY_POLICY_NAME " (tag-scoped deploy rights)");
    kiln_aws_params_add(&p, "UserName", env->names.deploy_user);
    kiln_aws_params_add(&p, "PolicyName", DEPLOY_POLICY_NAME);
    kiln_aws_params_add(&p, "PolicyDocument", policy);
    rc = kiln_awsenv_mutate(env, "iam", "PutUserPolicy", &p, env->names.deploy_user, NULL, NULL,
                            err);
    kiln_aws_params_clear(&p);
  }
  free(policy);
  if (rc != KILN_OK || !credentials_file || access(credentials_file, F_OK) == 0)
    return rc;
  if (iam->deploy_keys >= 2)
    return kiln_error_set(err, KILN_E_REMOTE,
                          "IAM user %s already has 2 access keys (the limit) and %s does not "
                          "exist: delete an old key in IAM, then run `kiln setup` again",
                          env->names.deploy_user, credentials_file);
  kiln_awsenv_announce(env, "create", env->names.deploy_user, "access key written to %s",
                       credentials_file);
  kiln_aws_params_add(&p, "UserName", env->names.deploy_user);
  rc = kiln_awsenv_mutate(env, "iam", "CreateAccessKey", &p, env->names.deploy_user, NULL, &doc,
                          err);
  kiln_aws_params_clear(&p);
  if (rc != KILN_OK || env->dry_run)
    return rc;
  const char *id = kiln_awsenv_first(doc, "AccessKeyId");
  const char *secret = kiln_awsenv_first(doc, "SecretAccessKey");
  if (!id || !secret)
    rc = kiln_error_set(err, KILN_E_REMOTE, "IAM CreateAccessKey: the answer has no key");
  else
    rc = write_key_file(credentials_file, id, secret, err);
  kiln_xml_free(doc);
  return rc;
}

static kiln_err user_find(struct kiln_walk *w, struct kiln_error *err)
{
  return kiln_iam_find_deploy_user(w->env, &w->iam, err);
}

static kiln_err user_ensure(struct kiln_walk *w, struct kiln_error *err)
{
  struct kiln_policy_scope scope;
  kiln_policy_scope_of(&scope, &w->net, w->fleet.lt_id, w->opts, w->env->dry_run);
  return kiln_iam_ensure_deploy_user(w->env, &w->iam, &scope, w->credentials_file, err);
}

static int user_exists(const struct kiln_walk *w)
{
  return w->iam.deploy_user;
}

static void user_fields(const struct kiln_walk *w, cJSON *meta)
{
  if (w->mode == KILN_WALK_STATUS)
    cJSON_AddBoolToObject(meta, "deploy_user_exists", w->iam.deploy_user);
  else
    kiln_json_add_string(meta, "credentials_file", w->credentials_file);
  kiln_doc_label(meta, "credentials_file", "deploy credentials");
}

/* Access keys and the policy first, then the user, only when it carries the tag. */
static kiln_err user_teardown(struct kiln_walk *w, struct kiln_error *err)
{
  struct kiln_awsenv *env = w->env;
  struct kiln_iam iam = w->iam;
  struct kiln_aws_params p = {0};
  int tagged = 0;
  kiln_err rc = KILN_OK;
  if (rc == KILN_OK && iam.deploy_user)
    rc = kiln_iam_tagged(env, "ListUserTags", "UserName", env->names.deploy_user, &tagged, err);
  if (rc == KILN_OK && iam.deploy_user && tagged) {
    struct kiln_xml *doc = NULL;
    kiln_aws_params_add(&p, "UserName", env->names.deploy_user);
    rc = kiln_awsenv_read(env, "iam", "ListAccessKeys", &p, &doc, err);
    kiln_aws_params_clear(&p);
    for (const struct kiln_xml *k = rc == KILN_OK ? kiln_awsenv_items(doc, "AccessKeyMetadata")
                                                  : NULL;
         k && rc == KILN_OK; k = kiln_xml_next_same(k)) {
      kiln_aws_params_add(&p, "UserName", env->names.deploy_user);
      kiln_aws_params_add(&p, "AccessKeyId", kiln_xml_text(k, "AccessKeyId"));
      rc = kiln_awsenv_mutate(env, "iam", "DeleteAccessKey", &p, env->names.deploy_user,
                              kiln_awsenv_gone, NULL, err);
      kiln_aws_params_clear(&p);
    }
    kiln_xml_free(doc);
    if (rc == KILN_OK && iam.deploy_policy) {
      kiln_aws_params_add(&p, "UserName", env->names.deploy_user);
      kiln_aws_params_add(&p, "PolicyName", "kiln-deploy");
      rc = kiln_awsenv_mutate(env, "iam", "DeleteUserPolicy", &p, env->names.deploy_user,
                              kiln_awsenv_gone, NULL, err);
      kiln_aws_params_clear(&p);
    }
    if (rc == KILN_OK)
      rc = kiln_awsenv_delete(env, "iam", "DeleteUser", "UserName", env->names.deploy_user,
                              "deploy user", err);
  }
  return rc;
}

const struct kiln_aws_resource kiln_res_deploy_user = {
    .name = "deploy-user",
    .flags = KILN_RES_IAM,
    .find = user_find,
    .ensure = user_ensure,
    .exists = user_exists,
    .fields = user_fields,
    .teardown = user_teardown,
};
