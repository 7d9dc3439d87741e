/* Resource kind "instance-role": the IAM role of the enclave parent instances (trusting
 * ec2.amazonaws.com), its inline policy reading EIFs from the bucket, and its instance profile. */
#include <stdlib.h>
#include <string.h>

#include "iam.h"
#include "resource.h"

kiln_err kiln_iam_find_instance_role(struct kiln_awsenv *env, struct kiln_iam *iam,
                                     struct kiln_error *err)
{
  struct kiln_xml *doc = NULL;
  kiln_err rc = kiln_iam_get(env, "GetRole", "RoleName", env->names.instance_role, NULL, NULL, &doc,
                             &iam->instance_role, err);
  kiln_xml_free(doc);
  if (rc == KILN_OK && iam->instance_role) {
    rc = kiln_iam_get(env, "GetRolePolicy", "RoleName", env->names.instance_role, "PolicyName",
                      INSTANCE_POLICY_NAME, &doc, &iam->instance_role_policy, err);
    cJSON *policy = iam->instance_role_policy ? kiln_iam_document(doc, "PolicyDocument") : NULL;
    free(iam->instance_policy);
    iam->instance_policy = policy ? cJSON_PrintUnformatted(policy) : NULL;
    cJSON_Delete(policy);
    kiln_xml_free(doc);
    doc = NULL;
  }
  if (rc == KILN_OK)
    rc = kiln_iam_get(env, "GetInstanceProfile", "InstanceProfileName", env->names.instance_role,
                      NULL, NULL, &doc, &iam->instance_profile, err);
  if (rc == KILN_OK && doc) {
    for (const struct kiln_xml *m = kiln_awsenv_items(doc, "Roles"); m; m = kiln_xml_next_same(m))
      iam->profile_has_role |= kiln_xml_text(m, "RoleName") &&
                               strcmp(kiln_xml_text(m, "RoleName"), env->names.instance_role) == 0;
  }
  kiln_xml_free(doc);
  return rc;
}

kiln_err kiln_iam_ensure_instance_role(struct kiln_awsenv *env, struct kiln_iam *iam,
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
    rc = kiln_iam_render(env, "policies/instance-role-trust.json.tmpl", &doc_text, err);
    if (rc == KILN_OK) {
      kiln_aws_params_add(&p, "RoleName", env->names.instance_role);
      kiln_aws_params_add(&p, "AssumeRolePolicyDocument", doc_text);
      kiln_aws_params_add(&p, "Description", "kiln: enclave parent instances of one deployment");
      kiln_iam_add_tags(env, &p);
      rc = kiln_awsenv_mutate(env, "iam", "CreateRole", &p, env->names.instance_role, exists, NULL,
                              err);
    }
    kiln_aws_params_clear(&p);
    free(doc_text);
    doc_text = NULL;
  }
  if (rc == KILN_OK)
    rc = kiln_iam_render(env, "policies/instance-role-policy.json.tmpl", &doc_text, err);
  if (rc == KILN_OK && !kiln_iam_same_document(iam->instance_policy, doc_text)) {
    kiln_awsenv_announce(env, "update", env->names.instance_role,
                         "inline policy " INSTANCE_POLICY_NAME
                         ": read EIFs from %s, ship the app's log to /kiln/%s",
                         env->names.bucket, env->dep.id);
    {
      kiln_aws_params_add(&p, "RoleName", env->names.instance_role);
      kiln_aws_params_add(&p, "PolicyName", INSTANCE_POLICY_NAME);
      kiln_aws_params_add(&p, "PolicyDocument", doc_text);
      rc = kiln_awsenv_mutate(env, "iam", "PutRolePolicy", &p, env->names.instance_role, NULL, NULL,
                              err);
    }
    kiln_aws_params_clear(&p);
  }
  free(doc_text);
  if (rc == KILN_OK && !iam->instance_profile) {
    kiln_awsenv_announce(env, "create", env->names.instance_role, "instance profile");
    kiln_aws_params_add(&p, "InstanceProfileName", env->names.instance_role);
    kiln_iam_add_tags(env, &p);
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

static kiln_err role_find(struct kiln_walk *w, struct kiln_error *err)
{
  return kiln_iam_find_instance_role(w->env, &w->iam, err);
}

static kiln_err role_ensure(struct kiln_walk *w, struct kiln_error *err)
{
  return kiln_iam_ensure_instance_role(w->env, &w->iam, err);
}

static int role_exists(const struct kiln_walk *w)
{
  return w->iam.instance_role;
}

static void role_fields(const struct kiln_walk *w, cJSON *meta)
{
  if (w->mode == KILN_WALK_STATUS)
    cJSON_AddBoolToObject(meta, "instance_role_exists", w->iam.instance_role);
}

/* The profile first (it holds the role), then the role, only when it carries the tag. */
static kiln_err role_teardown(struct kiln_walk *w, struct kiln_error *err)
{
  struct kiln_awsenv *env = w->env;
  struct kiln_iam iam = w->iam;
  struct kiln_aws_params p = {0};
  int tagged = 0;
  kiln_err rc = KILN_OK;
  if (rc == KILN_OK && iam.instance_profile && iam.profile_has_role) {
    kiln_aws_params_add(&p, "InstanceProfileName", env->names.instance_role);
    kiln_aws_params_add(&p, "RoleName", env->names.instance_role);
    rc = kiln_awsenv_mutate(env, "iam", "RemoveRoleFromInstanceProfile", &p,
                            env->names.instance_role, kiln_awsenv_gone, NULL, err);
    kiln_aws_params_clear(&p);
  }
  if (rc == KILN_OK && iam.instance_profile)
    rc = kiln_awsenv_delete(env, "iam", "DeleteInstanceProfile", "InstanceProfileName",
                            env->names.instance_role, "instance profile", err);
  if (rc == KILN_OK && iam.instance_role)
    rc = kiln_iam_tagged(env, "ListRoleTags", "RoleName", env->names.instance_role, &tagged, err);
  if (rc == KILN_OK && iam.instance_role && !tagged)
    kiln_aws_client_log(env->c, KILN_LOG_WARN, "role %s lacks the tag %s=%s: left alone",
                        env->names.instance_role, env->dep.tag_key, env->dep.id);
  if (rc == KILN_OK && iam.instance_role && tagged) {
    if (iam.instance_role_policy) {
      kiln_aws_params_add(&p, "RoleName", env->names.instance_role);
      kiln_aws_params_add(&p, "PolicyName", "kiln-read-eifs");
      rc = kiln_awsenv_mutate(env, "iam", "DeleteRolePolicy", &p, env->names.instance_role,
                              kiln_awsenv_gone, NULL, err);
      kiln_aws_params_clear(&p);
    }
    if (rc == KILN_OK)
      rc = kiln_awsenv_delete(env, "iam", "DeleteRole", "RoleName", env->names.instance_role,
                              "instance role", err);
  }
  return rc;
}

const struct kiln_aws_resource kiln_res_instance_role = {
    .name = "instance-role",
    .flags = KILN_RES_IAM,
    .find = role_find,
    .ensure = role_ensure,
    .exists = role_exists,
    .fields = role_fields,
    .teardown = role_teardown,
};
