/* The table of the deployment's AWS resource kinds and the walks over it (see resource.h). */
#include <stdlib.h>
#include <string.h>

#include "resource.h"

#ifdef KILN_AWS_TEST_RESOURCE
extern const struct kiln_aws_resource kiln_res_test_marker;
#endif

/* Dependency order: setup creates top to bottom, teardown deletes bottom to top. The bucket comes
 * first: a name taken by another account stops setup before anything else exists. */
const struct kiln_aws_resource *const kiln_aws_resources[] = {
    &kiln_res_bucket,          /* res_bucket.c: the EIF bucket and its settings */
    &kiln_res_vpc,             /* res_vpc.c: the VPC (or the user's) */
    &kiln_res_subnets,         /* res_subnets.c: one public subnet per zone */
    &kiln_res_routes,          /* res_routes.c: internet gateway, route table, associations */
    &kiln_res_security_group,  /* res_security_group.c: ingress ports */
    &kiln_res_instance_role,   /* res_instance_role.c: instance role, policy and profile */
    &kiln_res_launch_template, /* res_launch_template.c: the launch template */
    &kiln_res_target_groups,   /* res_target_groups.c: nlb: a target group per public port */
    &kiln_res_asg,             /* res_asg.c: the Auto Scaling group and its instances */
    &kiln_res_instances,       /* res_instances.c: status: each instance's address and release */
    &kiln_res_lb_attachment,   /* res_lb_attachment.c: the group's target groups, health checks */
    &kiln_res_nlb,             /* res_nlb.c: nlb: load balancer, listeners, static addresses */
    &kiln_res_eip,             /* res_eip.c: the Elastic IP (eip mode) */
    &kiln_res_log_group,       /* res_log_group.c: the CloudWatch Logs group of the app's output */
    /* the deploy policy names the network and launch template above: rendered after them */
    &kiln_res_deploy_user, /* res_deploy_user.c: scoped deploy user, policy, access key */
    &kiln_res_ci_role,     /* res_ci_role.c: the CI systems' OIDC deploy role */
#ifdef KILN_AWS_TEST_RESOURCE
    &kiln_res_test_marker, /* tests/aws/res_test_marker.c, only in the tests' build */
#endif
    NULL};

int kiln_aws_resource_index(const struct kiln_aws_resource *r)
{
  for (int i = 0; kiln_aws_resources[i]; i++)
    if (kiln_aws_resources[i] == r)
      return i;
  return -1;
}

void kiln_doc_label(cJSON *meta, const char *field, const char *label)
{
  cJSON *display = cJSON_GetObjectItemCaseSensitive(meta, "display");
  if (!display)
    display = cJSON_AddArrayToObject(meta, "display");
  cJSON *entry = cJSON_CreateObject();
  cJSON_AddStringToObject(entry, "field", field);
  cJSON_AddStringToObject(entry, "label", label);
  cJSON_AddItemToArray(display, entry);
}

void kiln_json_add_string(cJSON *o, const char *key, const char *value)
{
  if (value)
    cJSON_AddStringToObject(o, key, value);
}

cJSON *kiln_json_string_array(char *const *items, size_t n)
{
  cJSON *a = cJSON_CreateArray();
  for (size_t i = 0; i < n; i++)
    cJSON_AddItemToArray(a, cJSON_CreateString(items[i]));
  return a;
}

void kiln_walk_init(struct kiln_walk *w, struct kiln_awsenv *env, const cJSON *opts,
                    enum kiln_walk_mode mode)
{
  memset(w, 0, sizeof(*w));
  w->env = env;
  w->opts = opts;
  w->mode = mode;
  w->iam_visible = 1;
}

void kiln_walk_clear(struct kiln_walk *w)
{
  for (int i = 0; kiln_aws_resources[i]; i++)
    if (kiln_aws_resources[i]->clear)
      kiln_aws_resources[i]->clear(w);
  kiln_network_clear(&w->net);
  kiln_iam_clear(&w->iam);
  kiln_fleet_clear(&w->fleet);
  kiln_ci_trust_clear(&w->trust);
  cJSON_Delete(w->bucket_uploads);
  cJSON_Delete(w->measurements);
  free(w->role_arn);
  free(w->credentials_file);
  memset(w, 0, sizeof(*w));
}

/* Find one resource; with the scoped deploy credentials IAM is unreadable, and status shows the
 * rest instead of failing. */
static kiln_err find(struct kiln_walk *w, const struct kiln_aws_resource *r, struct kiln_error *err)
{
  if ((r->flags & KILN_RES_IAM) && !w->iam_visible)
    return KILN_OK;
  kiln_err rc = r->find(w, err);
  if (rc == KILN_E_AUTH && (r->flags & KILN_RES_IAM) && w->mode == KILN_WALK_STATUS) {
    kiln_aws_client_log(w->env->c, KILN_LOG_INFO,
                        "IAM is not readable with these credentials (the scoped deploy policy "
                        "has no IAM rights): roles and the deploy user are not shown");
    kiln_error_clear(err);
    w->iam_visible = 0;
    rc = KILN_OK;
  }
  return rc;
}

kiln_err kiln_walk_setup(struct kiln_walk *w, struct kiln_error *err)
{
  kiln_err rc = KILN_OK;
  for (int i = 0; kiln_aws_resources[i] && rc == KILN_OK; i++) {
    rc = find(w, kiln_aws_resources[i], err);
    if (rc == KILN_OK)
      rc = kiln_aws_resources[i]->ensure(w, err);
  }
  return rc;
}

kiln_err kiln_walk_status(struct kiln_walk *w, struct kiln_error *err)
{
  kiln_err rc = KILN_OK;
  int any = 0;
  for (int i = 0; kiln_aws_resources[i] && rc == KILN_OK; i++) {
    const struct kiln_aws_resource *r = kiln_aws_resources[i];
    rc = find(w, r, err);
    any |= rc == KILN_OK && !((r->flags & KILN_RES_IAM) && !w->iam_visible) && r->exists(w);
  }
  if (rc == KILN_OK && !any)
    rc = kiln_error_set(err, KILN_E_NOT_FOUND,
                        "no resource of deployment %s in account %s, region %s: it was never set "
                        "up there, was torn down, or these credentials belong to another account; "
                        "run `kiln setup`, or use credentials of the deployment's account",
                        w->env->dep.id, w->env->account_id,
                        w->env->dep.region ? w->env->dep.region : "(default)");
  return rc;
}

kiln_err kiln_walk_teardown(struct kiln_walk *w, struct kiln_error *err)
{
  kiln_err rc = KILN_OK;
  int n = 0;
  while (kiln_aws_resources[n])
    n++;
  for (int i = 0; i < n && rc == KILN_OK; i++)
    rc = find(w, kiln_aws_resources[i], err);
  for (int i = n - 1; i >= 0 && rc == KILN_OK; i--)
    rc = kiln_aws_resources[i]->teardown(w, err);
  return rc;
}

void kiln_walk_fields(const struct kiln_walk *w, cJSON *meta)
{
  for (int i = 0; kiln_aws_resources[i]; i++) {
    const struct kiln_aws_resource *r = kiln_aws_resources[i];
    if (r->fields && !((r->flags & KILN_RES_IAM) && !w->iam_visible))
      r->fields(w, meta);
  }
  if (w->mode == KILN_WALK_STATUS)
    cJSON_AddBoolToObject(meta, "iam_visible", w->iam_visible);
}
