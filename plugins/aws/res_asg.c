/* Resource kind "asg": the Auto Scaling group running the enclave instances (0 instances after
 * setup; deploy in fleet.c sizes it and refreshes its instances). teardown also terminates every
 * instance carrying the deployment tag. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resource.h"
#include "util/buf.h"

kiln_err kiln_fleet_find_group(struct kiln_awsenv *env, struct kiln_fleet *f,
                               struct kiln_error *err)
{
  struct kiln_aws_params p = {0};
  struct kiln_xml *doc = NULL;
  kiln_aws_params_add(&p, "AutoScalingGroupNames.member.1", env->names.asg);
  kiln_err rc = kiln_awsenv_read(env, "autoscaling", "DescribeAutoScalingGroups", &p, &doc, err);
  kiln_aws_params_clear(&p);
  if (rc != KILN_OK)
    return rc;
  const struct kiln_xml *group = kiln_xml_find(doc, "AutoScalingGroups");
  group = group ? kiln_xml_child(group, "member") : NULL;
  if (group) {
    const char *desired = kiln_xml_text(group, "DesiredCapacity");
    f->asg_exists = 1;
    f->asg_lt_version = kiln_awsenv_dup(kiln_xml_text(group, "LaunchTemplate/Version"));
    f->asg_desired = desired ? atoi(desired) : 0;
    const char *grace = kiln_xml_text(group, "HealthCheckGracePeriod");
    const char *max = kiln_xml_text(group, "MaxSize");
    f->asg_health_type = kiln_awsenv_dup(kiln_xml_text(group, "HealthCheckType"));
    f->asg_grace = grace ? atoi(grace) : 0;
    f->asg_max = max ? atoi(max) : 0;
    for (const struct kiln_xml *t = kiln_awsenv_items(group, "TargetGroupARNs");
         t && f->ntarget_groups < KILN_MAX_PORTS * 2; t = kiln_xml_next_same(t))
      if (*t->text)
        f->target_groups[f->ntarget_groups++] = strdup(t->text);
    for (const struct kiln_xml *i = kiln_awsenv_items(group, "Instances");
         i && f->ninstances < KILN_MAX_INSTANCES; i = kiln_xml_next_same(i)) {
      const char *id = kiln_xml_text(i, "InstanceId");
      if (!id)
        continue;
      struct kiln_member *m = &f->members[f->nmembers++];
      f->instance_ids[f->ninstances++] = strdup(id);
      m->id = strdup(id);
      m->lt_version = kiln_awsenv_dup(kiln_xml_text(i, "LaunchTemplate/Version"));
      m->lifecycle = kiln_awsenv_dup(kiln_xml_text(i, "LifecycleState"));
      m->health = kiln_awsenv_dup(kiln_xml_text(i, "HealthStatus"));
      m->zone = kiln_awsenv_dup(kiln_xml_text(i, "AvailabilityZone"));
    }
  }
  kiln_xml_free(doc);
  if (!f->asg_exists)
    return KILN_OK;
  kiln_aws_params_add(&p, "AutoScalingGroupName", env->names.asg);
  struct kiln_aws_error_info info;
  rc = kiln_aws_query(env->c, "autoscaling", "DescribeInstanceRefreshes", &p, &doc, &info, err);
  kiln_aws_params_clear(&p);
  if (rc == KILN_OK) {
    f->refresh_status = kiln_awsenv_dup(kiln_awsenv_first(doc, "Status"));
    f->refresh_id = kiln_awsenv_dup(kiln_awsenv_first(doc, "InstanceRefreshId"));
  } else
    kiln_error_clear(err); /* not every endpoint knows refreshes; status shows none */
  kiln_xml_free(doc);
  return KILN_OK;
}

static kiln_err tagged_ids(struct kiln_awsenv *env, const char *action, const char *set,
                           const char *field, char ***ids, size_t *n, struct kiln_error *err)
{
  struct kiln_aws_params p = {0};
  struct kiln_xml *doc = NULL;
  int fn = 1;
  *ids = NULL;
  *n = 0;
  kiln_awsenv_tag_filter(env, &p, &fn);
  if (strcmp(action, "DescribeInstances") == 0) {
    kiln_aws_params_add(&p, "Filter.2.Name", "instance-state-name");
    kiln_aws_params_add(&p, "Filter.2.Value.1", "pending");
    kiln_aws_params_add(&p, "Filter.2.Value.2", "running");
    kiln_aws_params_add(&p, "Filter.2.Value.3", "stopping");
    kiln_aws_params_add(&p, "Filter.2.Value.4", "stopped");
  }
  kiln_err rc = kiln_awsenv_read(env, "ec2", action, &p, &doc, err);
  kiln_aws_params_clear(&p);
  if (rc != KILN_OK)
    return rc;
  const struct kiln_xml *list = kiln_xml_find(doc, set);
  size_t cap = 0;
  /* instances sit one level deeper: reservationSet/item/instancesSet/item */
  for (const struct kiln_xml *it = list ? list->child : NULL; it; it = it->next) {
    const struct kiln_xml *inner =
        strcmp(action, "DescribeInstances") == 0 ? kiln_awsenv_items(it, "instancesSet") : it;
    for (; inner; inner = inner == it ? NULL : kiln_xml_next_same(inner)) {
      const char *id = kiln_xml_text(inner, field);
      if (!id)
        continue;
      if (*n == cap) {
        cap = cap ? cap * 2 : 8;
        char **grown = realloc(*ids, cap * sizeof(*grown));
        if (!grown)
          break;
        *ids = grown;
      }
      (*ids)[(*n)++] = strdup(id);
    }
  }
  kiln_xml_free(doc);
  return KILN_OK;
}

static void free_ids(char **ids, size_t n)
{
  for (size_t i = 0; i < n; i++)
    free(ids[i]);
  free(ids);
}

static kiln_err asg_find(struct kiln_walk *w, struct kiln_error *err)
{
  kiln_err rc = kiln_fleet_find_group(w->env, &w->fleet, err);
  if (rc == KILN_OK && w->mode == KILN_WALK_STATUS)
    rc = kiln_fleet_find_members(w->env, &w->fleet, err);
  return rc;
}

static kiln_err asg_ensure(struct kiln_walk *w, struct kiln_error *err)
{
  if (w->fleet.asg_exists)
    return KILN_OK;
  struct kiln_buf zones = KILN_BUF_INIT;
  for (size_t i = 0; i < w->net.nsubnets; i++)
    kiln_buf_printf(&zones, "%s%s", i ? "," : "", w->net.subnet_ids[i]);
  kiln_err rc = kiln_buf_status(&zones)
                    ? kiln_error_set(err, KILN_E_NOMEM, "out of memory")
                    : kiln_fleet_create_group(w->env, &w->fleet, "1", 0, kiln_buf_str(&zones), err);
  kiln_buf_free(&zones);
  return rc;
}

static int asg_exists(const struct kiln_walk *w)
{
  return w->fleet.asg_exists;
}

static void asg_fields(const struct kiln_walk *w, cJSON *meta)
{
  if (w->fleet.asg_exists) {
    cJSON_AddNumberToObject(meta, "desired_count", w->fleet.asg_desired);
    cJSON_AddBoolToObject(meta, "parked", w->fleet.asg_desired == 0);
    kiln_json_add_string(meta, "group_launch_template_version", w->fleet.asg_lt_version);
    cJSON_AddItemToObject(meta, "fleet", kiln_fleet_members_json(&w->fleet));
  }
  cJSON_AddItemToObject(meta, "instance_ids",
                        kiln_json_string_array(w->fleet.instance_ids, w->fleet.ninstances));
  kiln_json_add_string(meta, "instance_refresh", w->fleet.refresh_status);
  kiln_doc_label(meta, "instance_ids", "instances");
  kiln_doc_label(meta, "instance_refresh", "instance refresh");
}

static kiln_err asg_teardown(struct kiln_walk *w, struct kiln_error *err)
{
  struct kiln_awsenv *env = w->env;
  struct kiln_fleet *f = &w->fleet;
  kiln_err rc = KILN_OK;
  if (rc == KILN_OK && f->asg_exists) {
    struct kiln_aws_params p = {0};
    kiln_awsenv_announce(env, "delete", env->names.asg, "Auto Scaling group and its instances");
    kiln_aws_params_add(&p, "AutoScalingGroupName", env->names.asg);
    kiln_aws_params_add(&p, "ForceDelete", "true");
    static const char *const missing[] = {"ValidationError", NULL};
    rc = kiln_awsenv_mutate(env, "autoscaling", "DeleteAutoScalingGroup", &p, env->names.asg,
                            missing, NULL, err);
    kiln_aws_params_clear(&p);
  }
  char **ids = NULL;
  size_t n = 0;
  if (rc == KILN_OK)
    rc = tagged_ids(env, "DescribeInstances", "reservationSet", "instanceId", &ids, &n, err);
  if (rc == KILN_OK && n > 0) {
    struct kiln_aws_params p = {0};
    for (size_t i = 0; i < n; i++) {
      char key[32];
      snprintf(key, sizeof(key), "InstanceId.%zu", i + 1);
      kiln_aws_params_add(&p, key, ids[i]);
      kiln_awsenv_announce(env, "delete", ids[i], "terminate instance");
    }
    rc = kiln_awsenv_mutate(env, "ec2", "TerminateInstances", &p, "terminating instances",
                            kiln_awsenv_gone, NULL, err);
    kiln_aws_params_clear(&p);
  }
  free_ids(ids, n);
  return rc;
}

const struct kiln_aws_resource kiln_res_asg = {
    .name = "asg",
    .find = asg_find,
    .ensure = asg_ensure,
    .exists = asg_exists,
    .fields = asg_fields,
    .teardown = asg_teardown,
};
