/* Resource kind "lb-attachment": the Auto Scaling group attached to the deployment's target
 * groups with ELB health checks and a grace period (nlb mode), or detached with EC2 health checks
 * (eip mode). The group registers and deregisters its instances itself. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resource.h"

static int attached(const struct kiln_fleet *f, const char *arn)
{
  for (size_t i = 0; i < f->ntarget_groups; i++)
    if (strcmp(f->target_groups[i], arn) == 0)
      return 1;
  return 0;
}

static int wanted(const struct kiln_walk *w, const char *arn)
{
  if (!w->scale.nlb)
    return 0;
  for (size_t i = 0; i < w->lb.ntgs; i++)
    if (w->lb.tgs[i].arn && strcmp(w->lb.tgs[i].arn, arn) == 0)
      for (size_t j = 0; j < w->nports; j++)
        if (w->ports[j] == w->lb.tgs[i].port)
          return 1;
  return 0;
}

/* Attach (or detach) the listed target groups. */
static kiln_err change(struct kiln_walk *w, const char *action, char **arns, size_t n,
                       struct kiln_error *err)
{
  struct kiln_aws_params p = {0};
  kiln_aws_params_add(&p, "AutoScalingGroupName", w->env->names.asg);
  for (size_t i = 0; i < n; i++) {
    char key[48];
    snprintf(key, sizeof(key), "TargetGroupARNs.member.%zu", i + 1);
    kiln_aws_params_add(&p, key, arns[i]);
  }
  kiln_err rc =
      kiln_awsenv_mutate(w->env, "autoscaling", action, &p, w->env->names.asg, NULL, NULL, err);
  kiln_aws_params_clear(&p);
  return rc;
}

static kiln_err attach_find(struct kiln_walk *w, struct kiln_error *err)
{
  (void)w;
  (void)err;
  return KILN_OK; /* the group's attachments come with the group (res_asg.c) */
}

static kiln_err attach_ensure(struct kiln_walk *w, struct kiln_error *err)
{
  struct kiln_awsenv *env = w->env;
  struct kiln_fleet *f = &w->fleet;
  char *add[KILN_MAX_PORTS * 2], *drop[KILN_MAX_PORTS * 2];
  size_t nadd = 0, ndrop = 0;
  for (size_t i = 0; w->scale.nlb && i < w->lb.ntgs; i++)
    if (w->lb.tgs[i].arn && wanted(w, w->lb.tgs[i].arn) && !attached(f, w->lb.tgs[i].arn)) {
      add[nadd++] = w->lb.tgs[i].arn;
      kiln_awsenv_announce(env, "update", env->names.asg, "attach target group %s (port %d)",
                           w->lb.tgs[i].name, w->lb.tgs[i].port);
    }
  for (size_t i = 0; i < f->ntarget_groups; i++)
    if (!wanted(w, f->target_groups[i])) {
      drop[ndrop++] = f->target_groups[i];
      kiln_awsenv_announce(env, "update", env->names.asg, "detach target group %s",
                           f->target_groups[i]);
    }
  kiln_err rc = KILN_OK;
  if (nadd)
    rc = change(w, "AttachLoadBalancerTargetGroups", add, nadd, err);
  if (rc == KILN_OK && ndrop)
    rc = change(w, "DetachLoadBalancerTargetGroups", drop, ndrop, err);
  const char *type = w->scale.nlb ? "ELB" : "EC2";
  int grace = w->scale.warmup_seconds;
  int same_type = f->asg_health_type && strcmp(f->asg_health_type, type) == 0;
  if (rc == KILN_OK && (!same_type || (w->scale.nlb && f->asg_grace != grace))) {
    struct kiln_aws_params p = {0};
    kiln_awsenv_announce(env, "update", env->names.asg, "%s health checks%s", type,
                         w->scale.nlb ? " after a grace period" : "");
    kiln_aws_params_add(&p, "AutoScalingGroupName", env->names.asg);
    kiln_aws_params_add(&p, "HealthCheckType", type);
    kiln_aws_params_addf(&p, "HealthCheckGracePeriod", "%d", grace);
    rc = kiln_awsenv_mutate(env, "autoscaling", "UpdateAutoScalingGroup", &p, env->names.asg, NULL,
                            NULL, err);
    kiln_aws_params_clear(&p);
  } else if (rc == KILN_OK && !nadd && !ndrop) {
    kiln_awsenv_announce(env, "nothing", env->names.asg, "%s health checks, %zu target group(s)",
                         type, f->ntarget_groups);
  }
  return rc;
}

static int attach_exists(const struct kiln_walk *w)
{
  return w->fleet.ntarget_groups > 0;
}

static void attach_fields(const struct kiln_walk *w, cJSON *meta)
{
  kiln_json_add_string(meta, "health_check_type", w->fleet.asg_health_type);
}

static kiln_err attach_teardown(struct kiln_walk *w, struct kiln_error *err)
{
  (void)w;
  (void)err;
  return KILN_OK; /* deleting the group ends its attachments */
}

const struct kiln_aws_resource kiln_res_lb_attachment = {
    .name = "lb-attachment",
    .find = attach_find,
    .ensure = attach_ensure,
    .exists = attach_exists,
    .fields = attach_fields,
    .teardown = attach_teardown,
};
