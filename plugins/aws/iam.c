/* What the IAM resource kinds (res_instance_role.c, res_deploy_user.c) share, and the deployment's
 * IAM read and converged as one value for update-policy. */
#include <stdlib.h>
#include <string.h>

#include "iam.h"
#include "resource.h"
#include "sigv4.h"

void kiln_iam_clear(struct kiln_iam *iam)
{
  free(iam->deploy_policy);
  memset(iam, 0, sizeof(*iam));
}

kiln_err kiln_iam_add_tags(struct kiln_awsenv *env, struct kiln_aws_params *p)
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
kiln_err kiln_iam_get(struct kiln_awsenv *env, const char *action, const char *name_key,
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

kiln_err kiln_iam_render(struct kiln_awsenv *env, const char *tmpl, const char *vpc_id, char **out,
                         struct kiln_error *err)
{
  cJSON *values = kiln_policy_values(&env->dep, &env->names, env->account_id, vpc_id);
  kiln_err rc = kiln_template_render_file(env->share_dir, tmpl, values, out, err);
  cJSON_Delete(values);
  return rc;
}

/* Append the statements of every resource kind that brings its own to the policy document. */
static kiln_err add_kind_statements(struct kiln_awsenv *env, const char *vpc_id, cJSON *doc,
                                    struct kiln_error *err)
{
  cJSON *statements = cJSON_GetObjectItemCaseSensitive(doc, "Statement");
  cJSON *values = kiln_policy_values(&env->dep, &env->names, env->account_id, vpc_id);
  kiln_err rc =
      cJSON_IsArray(statements) && values
          ? KILN_OK
          : kiln_error_set(err, KILN_E_INTERNAL, "the deploy policy has no Statement list");
  for (int i = 0; rc == KILN_OK && kiln_aws_resources[i]; i++) {
    const struct kiln_aws_resource *r = kiln_aws_resources[i];
    char *text = NULL;
    if (!r->policy)
      continue;
    rc = kiln_template_render(r->name, r->policy, values, 1, &text, err);
    cJSON *more = rc == KILN_OK ? cJSON_Parse(text) : NULL;
    if (rc == KILN_OK && !cJSON_IsArray(more))
      rc = kiln_error_set(err, KILN_E_INTERNAL,
                          "resource kind %s: its policy statements are not a JSON array", r->name);
    while (rc == KILN_OK && more->child)
      cJSON_AddItemToArray(statements, cJSON_DetachItemViaPointer(more, more->child));
    cJSON_Delete(more);
    free(text);
  }
  cJSON_Delete(values);
  return rc;
}

kiln_err kiln_iam_render_policy(struct kiln_awsenv *env, const char *vpc_id, char **policy,
                                struct kiln_error *err)
{
  char *base = NULL;
  *policy = NULL;
  kiln_err rc = kiln_iam_render(env, "policies/deploy-policy.json.tmpl", vpc_id, &base, err);
  cJSON *doc = rc == KILN_OK ? cJSON_Parse(base) : NULL;
  int extra = 0;
  for (int i = 0; kiln_aws_resources[i]; i++)
    extra |= kiln_aws_resources[i]->policy != NULL;
  if (rc == KILN_OK && !extra) { /* the base template's text as it is */
    *policy = base;
    base = NULL;
  } else if (rc == KILN_OK && (rc = add_kind_statements(env, vpc_id, doc, err)) == KILN_OK &&
             !(*policy = cJSON_PrintUnformatted(doc))) {
    rc = kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  }
  cJSON_Delete(doc);
  free(base);
  return rc;
}

/* Does the IAM role/user carry the deployment tag? */
kiln_err kiln_iam_tagged(struct kiln_awsenv *env, const char *action, const char *key,
                         const char *name, int *tagged, struct kiln_error *err)
{
  struct kiln_aws_params p = {0};
  struct kiln_xml *doc = NULL;
  kiln_aws_params_add(&p, key, name);
  kiln_err rc = kiln_awsenv_read(env, "iam", action, &p, &doc, err);
  kiln_aws_params_clear(&p);
  *tagged = 0;
  for (const struct kiln_xml *t = rc == KILN_OK ? kiln_awsenv_items(doc, "Tags") : NULL; t;
       t = kiln_xml_next_same(t))
    *tagged |= kiln_xml_text(t, "Key") && !strcmp(kiln_xml_text(t, "Key"), env->dep.tag_key) &&
               kiln_xml_text(t, "Value") && !strcmp(kiln_xml_text(t, "Value"), env->dep.id);
  kiln_xml_free(doc);
  return rc;
}

kiln_err kiln_iam_find(struct kiln_awsenv *env, struct kiln_iam *iam, struct kiln_error *err)
{
  memset(iam, 0, sizeof(*iam));
  kiln_err rc = kiln_iam_find_instance_role(env, iam, err);
  return rc == KILN_OK ? kiln_iam_find_deploy_user(env, iam, err) : rc;
}

kiln_err kiln_iam_ensure(struct kiln_awsenv *env, struct kiln_iam *iam, const char *vpc_id,
                         const char *credentials_file, struct kiln_error *err)
{
  kiln_err rc = kiln_iam_ensure_instance_role(env, iam, err);
  return rc == KILN_OK ? kiln_iam_ensure_deploy_user(env, iam, vpc_id, credentials_file, err) : rc;
}
