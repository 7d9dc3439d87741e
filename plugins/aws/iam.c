/* The deployment's IAM: the instance role (read EIFs from the bucket) and its instance profile, and
 * the scoped deploy user with the tag-scoped policy rendered from share/policies, whose access key
 * is written 0600 to a file the user chose. Each piece is read back and changed only if different.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "byoc.h"
#include "sigv4.h"
#include "util/buf.h"

#define INSTANCE_POLICY_NAME "kiln-read-eifs"
#define DEPLOY_POLICY_NAME "kiln-deploy"

void kiln_iam_clear(struct kiln_iam *iam)
{
  free(iam->deploy_policy);
  memset(iam, 0, sizeof(*iam));
}

static kiln_err add_tags(struct kiln_awsenv *env, struct kiln_aws_params *p)
{
  kiln_err rc = kiln_aws_params_add(p, "Tags.member.1.Key", env->dep.tag_key);
  if (rc == KILN_OK)
    rc = kiln_aws_params_add(p, "Tags.member.1.Value", env->dep.id);
  if (rc == KILN_OK)
    rc = kiln_aws_params_add(p, "Tags.member.2.Key", "kiln:managed");
  if (rc == KILN_OK)
    rc = kiln_aws_params_add(p, "Tags.member.2.Value", "true");
  return rc;
}

/* A read call where NoSuchEntity means "absent": *found 0, KILN_OK. */
static kiln_err iam_get(struct kiln_awsenv *env, const char *action, const char *name_key,
                        const char *name, const char *extra_key, const char *extra,
                        struct kiln_xml **doc, int *found, struct kiln_error *err)
{
  struct kiln_aws_params p = {0};
  struct kiln_aws_error_info info;
  kiln_aws_params_add(&p, name_key, name);
  if (extra_key)
    kiln_aws_params_add(&p, extra_key, extra);
  kiln_err rc = kiln_aws_query(env->c, "iam", action, &p, doc, &info, err);
  kiln_aws_params_clear(&p);
  *found = rc == KILN_OK;
  if (rc != KILN_OK && strcmp(info.code, "NoSuchEntity") == 0) {
    kiln_error_clear(err);
    return KILN_OK;
  }
  return rc;
}

cJSON *kiln_iam_document(const struct kiln_xml *doc, const char *element)
{
  const char *encoded = doc ? kiln_awsenv_first(doc, element) : NULL;
  char *text = encoded ? kiln_aws_uri_decode(encoded, strlen(encoded)) : NULL;
  cJSON *json = text ? cJSON_Parse(text) : NULL;
  if (!json && encoded)
    json = cJSON_Parse(encoded);
  free(text);
  return json;
}

static kiln_err render(struct kiln_awsenv *env, const char *tmpl, const char *vpc_id, char **out,
                       struct kiln_error *err)
{
  cJSON *values = kiln_policy_values(&env->dep, &env->names, env->account_id, vpc_id);
  kiln_err rc = kiln_template_render_file(env->share_dir, tmpl, values, out, err);
  cJSON_Delete(values);
  return rc;
}

kiln_err kiln_iam_render_policy(struct kiln_awsenv *env, const char *vpc_id, char **policy,
                                struct kiln_error *err)
{
  return render(env, "policies/deploy-policy.json.tmpl", vpc_id, policy, err);
}

kiln_err kiln_iam_find(struct kiln_awsenv *env, struct kiln_iam *iam, struct kiln_error *err)
{
  struct kiln_xml *doc = NULL;
  int found = 0;
  memset(iam, 0, sizeof(*iam));
  kiln_err rc = iam_get(env, "GetRole", "RoleName", env->names.instance_role, NULL, NULL, &doc,
                        &iam->instance_role, err);
  kiln_xml_free(doc);
  if (rc == KILN_OK && iam->instance_role) {
    rc = iam_get(env, "GetRolePolicy", "RoleName", env->names.instance_role, "PolicyName",
                 INSTANCE_POLICY_NAME, &doc, &iam->instance_role_policy, err);
    kiln_xml_free(doc);
  }
  if (rc == KILN_OK)
    rc = iam_get(env, "GetInstanceProfile", "InstanceProfileName", env->names.instance_role, NULL,
                 NULL, &doc, &iam->instance_profile, err);
  if (rc == KILN_OK && doc) {
    for (const struct kiln_xml *m = kiln_awsenv_items(doc, "Roles"); m; m = kiln_xml_next_same(m))
      iam->profile_has_role |= kiln_xml_text(m, "RoleName") &&
                               strcmp(kiln_xml_text(m, "RoleName"), env->names.instance_role) == 0;
  }
  kiln_xml_free(doc);
  doc = NULL;
  if (rc == KILN_OK)
    rc = iam_get(env, "GetUser", "UserName", env->names.deploy_role, NULL, NULL, &doc,
                 &iam->deploy_user, err);
  kiln_xml_free(doc);
  doc = NULL;
  if (rc == KILN_OK && iam->deploy_user) {
    rc = iam_get(env, "GetUserPolicy", "UserName", env->names.deploy_role, "PolicyName",
                 DEPLOY_POLICY_NAME, &doc, &found, err);
    cJSON *policy = found ? kiln_iam_document(doc, "PolicyDocument") : NULL;
    iam->deploy_policy = policy ? cJSON_PrintUnformatted(policy) : NULL;
    cJSON_Delete(policy);
    kiln_xml_free(doc);
    doc = NULL;
  }
  if (rc == KILN_OK && iam->deploy_user) {
    rc = iam_get(env, "ListAccessKeys", "UserName", env->names.deploy_role, NULL, NULL, &doc,
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

static kiln_err ensure_instance_role(struct kiln_awsenv *env, struct kiln_iam *iam,
                                     struct kiln_error *err)
{
  struct kiln_aws_params p = {0};
  char *doc_text = NULL;
  kiln_err rc = KILN_OK;
  static const char *const exists[] = {"EntityAlreadyExists", NULL};
  static const char *const full[] = {"LimitExceeded", "EntityAlreadyExists", NULL};
  if (!iam->instance_role) {
    kiln_awsenv_announce(env, "create", env->names.instance_role,
                         "IAM role for the enclave instances (trusts ec2.amazonaws.com)");
    rc = render(env, "policies/instance-role-trust.json.tmpl", NULL, &doc_text, err);
    if (rc == KILN_OK) {
      kiln_aws_params_add(&p, "RoleName", env->names.instance_role);
      kiln_aws_params_add(&p, "AssumeRolePolicyDocument", doc_text);
      kiln_aws_params_add(&p, "Description", "kiln: enclave parent instances of one deployment");
      add_tags(env, &p);
      rc = kiln_awsenv_mutate(env, "iam", "CreateRole", &p, env->names.instance_role, exists, NULL,
                              err);
    }
    kiln_aws_params_clear(&p);
    free(doc_text);
    doc_text = NULL;
  }
  if (rc == KILN_OK && !iam->instance_role_policy) {
    kiln_awsenv_announce(env, "update", env->names.instance_role,
                         "inline policy " INSTANCE_POLICY_NAME ": read EIFs from %s",
                         env->names.bucket);
    rc = render(env, "policies/instance-role-policy.json.tmpl", NULL, &doc_text, err);
    if (rc == KILN_OK) {
      kiln_aws_params_add(&p, "RoleName", env->names.instance_role);
      kiln_aws_params_add(&p, "PolicyName", INSTANCE_POLICY_NAME);
      kiln_aws_params_add(&p, "PolicyDocument", doc_text);
      rc = kiln_awsenv_mutate(env, "iam", "PutRolePolicy", &p, env->names.instance_role, NULL, NULL,
                              err);
    }
    kiln_aws_params_clear(&p);
    free(doc_text);
  }
  if (rc == KILN_OK && !iam->instance_profile) {
    kiln_awsenv_announce(env, "create", env->names.instance_role, "instance profile");
    kiln_aws_params_add(&p, "InstanceProfileName", env->names.instance_role);
    add_tags(env, &p);
    rc = kiln_awsenv_mutate(env, "iam", "CreateInstanceProfile", &p, env->names.instance_role,
                            exists, NULL, err);
    kiln_aws_params_clear(&p);
  }
  if (rc == KILN_OK && !iam->profile_has_role) {
    kiln_awsenv_announce(env, "update", env->names.instance_role, "add the role to the profile");
    kiln_aws_params_add(&p, "InstanceProfileName", env->names.instance_role);
    kiln_aws_params_add(&p, "RoleName", env->names.instance_role);
    rc = kiln_awsenv_mutate(env, "iam", "AddRoleToInstanceProfile", &p, env->names.instance_role,
                            full, NULL, err);
    kiln_aws_params_clear(&p);
  }
  return rc;
}

kiln_err kiln_iam_ensure(struct kiln_awsenv *env, struct kiln_iam *iam, const char *vpc_id,
                         const char *credentials_file, struct kiln_error *err)
{
  struct kiln_aws_params p = {0};
  struct kiln_xml *doc = NULL;
  char *policy = NULL;
  static const char *const exists[] = {"EntityAlreadyExists", NULL};
  kiln_err rc = ensure_instance_role(env, iam, err);
  if (rc == KILN_OK && !iam->deploy_user) {
    kiln_awsenv_announce(env, "create", env->names.deploy_role,
                         "IAM user for `kiln deploy` (scoped by tag)");
    kiln_aws_params_add(&p, "UserName", env->names.deploy_role);
    add_tags(env, &p);
    rc =
        kiln_awsenv_mutate(env, "iam", "CreateUser", &p, env->names.deploy_role, exists, NULL, err);
    kiln_aws_params_clear(&p);
  }
  if (rc == KILN_OK)
    rc = kiln_iam_render_policy(env, vpc_id, &policy, err);
  if (rc == KILN_OK && !same_policy(iam->deploy_policy, policy)) {
    kiln_awsenv_announce(env, iam->deploy_policy ? "update" : "create", env->names.deploy_role,
                         "inline policy " DEPLOY_POLICY_NAME " (tag-scoped deploy rights)");
    kiln_aws_params_add(&p, "UserName", env->names.deploy_role);
    kiln_aws_params_add(&p, "PolicyName", DEPLOY_POLICY_NAME);
    kiln_aws_params_add(&p, "PolicyDocument", policy);
    rc = kiln_awsenv_mutate(env, "iam", "PutUserPolicy", &p, env->names.deploy_role, NULL, NULL,
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
                          env->names.deploy_role, credentials_file);
  kiln_awsenv_announce(env, "create", env->names.deploy_role, "access key written to %s",
                       credentials_file);
  kiln_aws_params_add(&p, "UserName", env->names.deploy_role);
  rc = kiln_awsenv_mutate(env, "iam", "CreateAccessKey", &p, env->names.deploy_role, NULL, &doc,
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
