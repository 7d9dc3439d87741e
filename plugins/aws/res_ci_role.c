/* Resource kind "ci-role": the deploy role CI systems assume with their OIDC token (setup
 * --github-repo / --gitlab-project; see ci_role.c). Without those options setup only refreshes an
 * existing role's policy. */
#include <stdlib.h>

#include "resource.h"

static kiln_err ci_find(struct kiln_walk *w, struct kiln_error *err)
{
  free(w->role_arn);
  w->role_arn = NULL;
  return kiln_ci_role_arn(w->env, &w->role_arn, err);
}

static kiln_err ci_ensure(struct kiln_walk *w, struct kiln_error *err)
{
  free(w->role_arn);
  w->role_arn = NULL;
  struct kiln_policy_scope scope;
  kiln_policy_scope_of(&scope, &w->net, w->fleet.lt_id, w->opts, w->env->dry_run);
  return kiln_ci_role_ensure(w->env, w->trust.host ? &w->trust : NULL, &scope, &w->role_arn, err);
}

static int ci_exists(const struct kiln_walk *w)
{
  return w->role_arn != NULL;
}

static void ci_fields(const struct kiln_walk *w, cJSON *meta)
{
  kiln_json_add_string(meta, "deploy_role_arn", w->role_arn);
  kiln_doc_label(meta, "deploy_role_arn", "CI deploy role");
}

static kiln_err ci_teardown(struct kiln_walk *w, struct kiln_error *err)
{
  return kiln_ci_role_delete(w->env, err);
}

const struct kiln_aws_resource kiln_res_ci_role = {
    .name = "ci-role",
    .flags = KILN_RES_IAM,
    .find = ci_find,
    .ensure = ci_ensure,
    .exists = ci_exists,
    .fields = ci_fields,
    .teardown = ci_teardown,
};
