/* Resource kind "deploy-user": the scoped IAM user `kiln deploy` runs as and the deploy role it
 * assumes. IAM caps a user's inline policies at 2,048 characters, far below the deploy policy, so
 * the user's own policy (share/policies/deploy-user-policy.json.tmpl) only allows sts:AssumeRole
 * of the role <user>-role, which trusts exactly that user and carries the tag-scoped deploy policy
 * (a role's inline limit is 10,240). An access key is written 0600, with the role's ARN, to the
 * file the user chose (only when that file does not exist yet); kiln's credential chain assumes
 * AWS_ROLE_ARN with the file's keys. A deployment whose user still carries the deploy policy
 * (kiln before the role) is migrated by setup and update-policy. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "iam.h"
#include "resource.h"
#include "util/buf.h"

static char *deploy_role_name(const struct kiln_awsenv *env)
{
  struct kiln_buf b = KILN_BUF_INIT;
  kiln_buf_printf(&b, "%s-role", env->names.deploy_user);
  return kiln_buf_detach(&b);
}

/* The inline policy `name` of the user or role (`key` UserName/RoleName) as JSON text, NULL
 * when absent. */
static kiln_err read_inline(struct kiln_awsenv *env, const char *action, const char *key,
                            const char *owner, const char *name, char **out, struct kiln_error *err)
{
  struct kiln_xml *doc = NULL;
  int found = 0;
  *out = NULL;
  kiln_err rc = kiln_iam_get(env, action, key, owner, "PolicyName", name, &doc, &found, err);
  cJSON *policy = rc == KILN_OK && found ? kiln_iam_document(doc, "PolicyDocument") : NULL;
  if (policy)
    *out = cJSON_PrintUnformatted(policy);
  cJSON_Delete(policy);
  kiln_xml_free(doc);
  return rc;
}

kiln_err kiln_iam_find_deploy_user(struct kiln_awsenv *env, struct kiln_iam *iam,
                                   struct kiln_error *err)
{
  struct kiln_xml *doc = NULL;
  int found = 0, role = 0;
  char *role_name = deploy_role_name(env);
  kiln_err rc = role_name ? KILN_OK : kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  if (rc == KILN_OK)
    rc = kiln_iam_get(env, "GetUser", "UserName", env->names.deploy_user, NULL, NULL, &doc,
                      &iam->deploy_user, err);
  kiln_xml_free(doc);
  doc = NULL;
  if (rc == KILN_OK && iam->deploy_user)
    rc = kiln_iam_get(env, "GetRole", "RoleName", role_name, NULL, NULL, &doc, &role, err);
  kiln_xml_free(doc);
  doc = NULL;
  /* the deploy policy in force: the role's, or (before the role) the user's own */
  if (rc == KILN_OK && iam->deploy_user && role)
    rc = read_inline(env, "GetRolePolicy", "RoleName", role_name, DEPLOY_POLICY_NAME,
                     &iam->deploy_policy, err);
  else if (rc == KILN_OK && iam->deploy_user)
    rc = read_inline(env, "GetUserPolicy", "UserName", env->names.deploy_user, DEPLOY_POLICY_NAME,
                     &iam->deploy_policy, err);
  if (rc == KILN_OK && iam->deploy_user) {
    rc = kiln_iam_get(env, "ListAccessKeys", "UserName", env->names.deploy_user, NULL, NULL, &doc,
                      &found, err);
    for (const struct kiln_xml *m = doc ? kiln_awsenv_items(doc, "AccessKeyMetadata") : NULL; m;
         m = kiln_xml_next_same(m))
      iam->deploy_keys++;
    kiln_xml_free(doc);
  }
  free(role_name);
  return rc;
}

static kiln_err write_key_file(const char *path, const char *id, const char *secret,
                               const char *role_arn, struct kiln_error *err)
{
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0)
    return kiln_error_set(err, KILN_E_IO, "cannot create %s: %s", path, strerror(errno));
  struct kiln_buf b = KILN_BUF_INIT;
  kiln_buf_printf(&b,
                  "# kiln deploy credentials (one deployment); keep this file secret.\n"
                  "# The keys may only assume AWS_ROLE_ARN; kiln does that with them.\n"
                  "# aws CLI: a profile with role_arn = AWS_ROLE_ARN and source_profile =\n"
                  "# a profile with these keys.\n"
                  "# KILN_CREDENTIALS_CREATED: when setup made the key; for a minute and a half\n"
                  "# after it, kiln asks STS again when IAM does not know the key or role yet.\n"
                  "AWS_ACCESS_KEY_ID=%s\nAWS_SECRET_ACCESS_KEY=%s\nAWS_ROLE_ARN=%s\n"
                  "KILN_CREDENTIALS_CREATED=%lld\n",
                  id, secret, role_arn, (long long)time(NULL));
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

/* Put inline policy `name` on the user or role unless it is already `want`. */
static kiln_err converge_inline(struct kiln_awsenv *env, const char *put_action, const char *key,
                                const char *owner, const char *name, const char *have,
                                const char *want, const char *what, struct kiln_error *err)
{
  if (kiln_iam_same_document(have, want))
    return KILN_OK;
  struct kiln_aws_params p = {0};
  kiln_awsenv_announce(env, have ? "update" : "create", owner, "inline policy %s (%s)", name, what);
  kiln_aws_params_add(&p, key, owner);
  kiln_aws_params_add(&p, "PolicyName", name);
  kiln_aws_params_add(&p, "PolicyDocument", want);
  kiln_err rc = kiln_awsenv_mutate(env, "iam", put_action, &p, owner, NULL, NULL, err);
  kiln_aws_params_clear(&p);
  return rc;
}

static kiln_err render_for_user(struct kiln_awsenv *env, const char *tmpl, const char *role_name,
                                char **out, struct kiln_error *err)
{
  cJSON *extra = cJSON_CreateObject();
  cJSON_AddStringToObject(extra, "deploy_user", env->names.deploy_user);
  cJSON_AddStringToObject(extra, "deploy_role", role_name);
  kiln_err rc = kiln_iam_render_with(env, tmpl, extra, out, err);
  cJSON_Delete(extra);
  return rc;
}

/* The deploy role: trusts exactly the deploy user, carries the deploy policy. Refused when a role
 * of that name exists without the deployment tag. */
static kiln_err ensure_deploy_role(struct kiln_awsenv *env, const char *role_name,
                                   const struct kiln_policy_scope *scope, struct kiln_error *err)
{
  struct kiln_aws_params p = {0};
  struct kiln_xml *doc = NULL;
  char *trust = NULL, *policy = NULL, *have_policy = NULL, *have_trust = NULL;
  int exists = 0, tagged = 0;
  kiln_err rc = kiln_iam_get(env, "GetRole", "RoleName", role_name, NULL, NULL, &doc, &exists, err);
  if (rc == KILN_OK && exists) {
    cJSON *t = kiln_iam_document(doc, "AssumeRolePolicyDocument");
    have_trust = t ? cJSON_PrintUnformatted(t) : NULL;
    cJSON_Delete(t);
    rc = kiln_iam_tagged(env, "ListRoleTags", "RoleName", role_name, &tagged, err);
    if (rc == KILN_OK && !tagged)
      rc = kiln_error_set(err, KILN_E_REMOTE,
                          "IAM role %s exists without the tag %s=%s: kiln does not touch it; "
                          "delete or rename it, then run `kiln setup` again",
                          role_name, env->dep.tag_key, env->dep.id);
  }
  kiln_xml_free(doc);
  if (rc == KILN_OK)
    rc = render_for_user(env, "policies/deploy-user-trust.json.tmpl", role_name, &trust, err);
  if (rc == KILN_OK && !exists) {
    kiln_awsenv_announce(env, "create", role_name, "IAM role the deploy user %s assumes",
                         env->names.deploy_user);
    kiln_aws_params_add(&p, "RoleName", role_name);
    kiln_aws_params_add(&p, "AssumeRolePolicyDocument", trust);
    kiln_aws_params_add(&p, "Description", "kiln: deploys of one deployment (its deploy user)");
    kiln_iam_add_tags(env, &p);
    static const char *const already[] = {"EntityAlreadyExists", NULL};
    rc = kiln_awsenv_mutate(env, "iam", "CreateRole", &p, role_name, already, NULL, err);
    kiln_aws_params_clear(&p);
  } else if (rc == KILN_OK && !kiln_iam_same_document(have_trust, trust)) {
    kiln_awsenv_announce(env, "update", role_name, "trust: the deploy user %s only",
                         env->names.deploy_user);
    kiln_aws_params_add(&p, "RoleName", role_name);
    kiln_aws_params_add(&p, "PolicyDocument", trust);
    rc = kiln_awsenv_mutate(env, "iam", "UpdateAssumeRolePolicy", &p, role_name, NULL, NULL, err);
    kiln_aws_params_clear(&p);
  }
  if (rc == KILN_OK && exists)
    rc = read_inline(env, "GetRolePolicy", "RoleName", role_name, DEPLOY_POLICY_NAME, &have_policy,
                     err);
  if (rc == KILN_OK)
    rc = kiln_iam_render_policy(env, scope, &policy, err);
  if (rc == KILN_OK)
    rc = converge_inline(env, "PutRolePolicy", "RoleName", role_name, DEPLOY_POLICY_NAME,
                         have_policy, policy, "tag-scoped deploy rights", err);
  free(trust);
  free(policy);
  free(have_policy);
  free(have_trust);
  return rc;
}

kiln_err kiln_iam_ensure_deploy_user(struct kiln_awsenv *env, struct kiln_iam *iam,
                                     const struct kiln_policy_scope *scope,
                                     const char *credentials_file, struct kiln_error *err)
{
  struct kiln_aws_params p = {0};
  struct kiln_xml *doc = NULL;
  char *role_name = deploy_role_name(env), *user_policy = NULL, *have_user = NULL, *legacy = NULL,
       *role_arn = NULL;
  static const char *const exists[] = {"EntityAlreadyExists", NULL};
  kiln_err rc = role_name ? KILN_OK : kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  if (rc == KILN_OK && !iam->deploy_user) {
    kiln_awsenv_announce(env, "create", env->names.deploy_user,
                         "IAM user for `kiln deploy` (may only assume %s)", role_name);
    kiln_aws_params_add(&p, "UserName", env->names.deploy_user);
    kiln_iam_add_tags(env, &p);
    rc =
        kiln_awsenv_mutate(env, "iam", "CreateUser", &p, env->names.deploy_user, exists, NULL, err);
    kiln_aws_params_clear(&p);
  }
  /* the role's trust names the user, so the user exists first */
  if (rc == KILN_OK)
    rc = ensure_deploy_role(env, role_name, scope, err);
  if (rc == KILN_OK && iam->deploy_user)
    rc = read_inline(env, "GetUserPolicy", "UserName", env->names.deploy_user,
                     DEPLOY_USER_POLICY_NAME, &have_user, err);
  if (rc == KILN_OK)
    rc =
        render_for_user(env, "policies/deploy-user-policy.json.tmpl", role_name, &user_policy, err);
  if (rc == KILN_OK)
    rc = converge_inline(env, "PutUserPolicy", "UserName", env->names.deploy_user,
                         DEPLOY_USER_POLICY_NAME, have_user, user_policy,
                         "sts:AssumeRole of the deploy role only", err);
  /* kiln before the deploy role put the whole deploy policy on the user: moved to the role */
  if (rc == KILN_OK && iam->deploy_user)
    rc = read_inline(env, "GetUserPolicy", "UserName", env->names.deploy_user, DEPLOY_POLICY_NAME,
                     &legacy, err);
  if (rc == KILN_OK && legacy) {
    kiln_awsenv_announce(env, "delete", env->names.deploy_user,
                         "inline policy " DEPLOY_POLICY_NAME " (moved to the role %s)", role_name);
    kiln_aws_params_add(&p, "UserName", env->names.deploy_user);
    kiln_aws_params_add(&p, "PolicyName", DEPLOY_POLICY_NAME);
    rc = kiln_awsenv_mutate(env, "iam", "DeleteUserPolicy", &p, env->names.deploy_user,
                            kiln_awsenv_gone, NULL, err);
    kiln_aws_params_clear(&p);
  }
  free(user_policy);
  free(have_user);
  free(legacy);
  if (rc != KILN_OK || !credentials_file || access(credentials_file, F_OK) == 0) {
    free(role_name);
    return rc;
  }
  if (iam->deploy_keys >= 2) {
    rc = kiln_error_set(err, KILN_E_REMOTE,
                        "IAM user %s already has 2 access keys (the limit) and %s does not "
                        "exist: delete an old key in IAM, then run `kiln setup` again",
                        env->names.deploy_user, credentials_file);
    free(role_name);
    return rc;
  }
  kiln_awsenv_announce(env, "create", env->names.deploy_user, "access key written to %s",
                       credentials_file);
  kiln_aws_params_add(&p, "UserName", env->names.deploy_user);
  rc = kiln_awsenv_mutate(env, "iam", "CreateAccessKey", &p, env->names.deploy_user, NULL, &doc,
                          err);
  kiln_aws_params_clear(&p);
  if (rc != KILN_OK || env->dry_run) {
    free(role_name);
    return rc;
  }
  const char *id = kiln_awsenv_first(doc, "AccessKeyId");
  const char *secret = kiln_awsenv_first(doc, "SecretAccessKey");
  struct kiln_buf arn = KILN_BUF_INIT;
  kiln_buf_printf(&arn, "arn:aws:iam::%s:role/%s", env->account_id, role_name);
  role_arn = kiln_buf_detach(&arn);
  if (!id || !secret)
    rc = kiln_error_set(err, KILN_E_REMOTE, "IAM CreateAccessKey: the answer has no key");
  else if (!role_arn)
    rc = kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  else
    rc = write_key_file(credentials_file, id, secret, role_arn, err);
  kiln_xml_free(doc);
  free(role_arn);
  free(role_name);
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

/* The deploy role (its policy, then the role) when tagged; then the user's access keys and
 * policies, then the user, when it carries the tag. */
static kiln_err role_teardown(struct kiln_awsenv *env, struct kiln_error *err)
{
  struct kiln_aws_params p = {0};
  struct kiln_xml *doc = NULL;
  char *role_name = deploy_role_name(env);
  int exists = 0, tagged = 0;
  kiln_err rc = role_name ? kiln_iam_get(env, "GetRole", "RoleName", role_name, NULL, NULL, &doc,
                                         &exists, err)
                          : kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  kiln_xml_free(doc);
  if (rc == KILN_OK && exists)
    rc = kiln_iam_tagged(env, "ListRoleTags", "RoleName", role_name, &tagged, err);
  if (rc == KILN_OK && exists && !tagged)
    kiln_aws_client_log(env->c, KILN_LOG_WARN, "role %s lacks the tag %s=%s: left alone", role_name,
                        env->dep.tag_key, env->dep.id);
  if (rc == KILN_OK && exists && tagged) {
    kiln_aws_params_add(&p, "RoleName", role_name);
    kiln_aws_params_add(&p, "PolicyName", DEPLOY_POLICY_NAME);
    rc = kiln_awsenv_mutate(env, "iam", "DeleteRolePolicy", &p, role_name, kiln_awsenv_gone, NULL,
                            err);
    kiln_aws_params_clear(&p);
    if (rc == KILN_OK)
      rc = kiln_awsenv_delete(env, "iam", "DeleteRole", "RoleName", role_name, "deploy role", err);
  }
  free(role_name);
  return rc;
}

static kiln_err user_teardown(struct kiln_walk *w, struct kiln_error *err)
{
  struct kiln_awsenv *env = w->env;
  struct kiln_iam iam = w->iam;
  struct kiln_aws_params p = {0};
  int tagged = 0;
  kiln_err rc = role_teardown(env, err);
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
    /* its own policy, and the deploy policy of a user kiln has not migrated yet */
    char *legacy = NULL;
    if (rc == KILN_OK)
      rc = read_inline(env, "GetUserPolicy", "UserName", env->names.deploy_user, DEPLOY_POLICY_NAME,
                       &legacy, err);
    const char *const policies[] = {DEPLOY_USER_POLICY_NAME, legacy ? DEPLOY_POLICY_NAME : NULL};
    for (size_t i = 0; rc == KILN_OK && i < 2 && policies[i]; i++) {
      kiln_aws_params_add(&p, "UserName", env->names.deploy_user);
      kiln_aws_params_add(&p, "PolicyName", policies[i]);
      rc = kiln_awsenv_mutate(env, "iam", "DeleteUserPolicy", &p, env->names.deploy_user,
                              kiln_awsenv_gone, NULL, err);
      kiln_aws_params_clear(&p);
    }
    free(legacy);
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
