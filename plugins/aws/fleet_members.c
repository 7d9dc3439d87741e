/* The instances of the deployment's Auto Scaling group one by one, for status and the rollout:
 * the launch template version each was launched from, the group's health, the EIF it runs (its
 * kiln:eif-sha256 tag) and, behind a load balancer, its target health. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "byoc.h"

void kiln_fleet_clear_members(struct kiln_fleet *f)
{
  for (size_t i = 0; i < f->nmembers; i++) {
    struct kiln_member *m = &f->members[i];
    free(m->id);
    free(m->lt_version);
    free(m->lifecycle);
    free(m->health);
    free(m->zone);
    free(m->eif_sha256);
    free(m->target_health);
  }
  memset(f->members, 0, sizeof(f->members));
  f->nmembers = 0;
}

static struct kiln_member *member(struct kiln_fleet *f, const char *id)
{
  for (size_t i = 0; id && i < f->nmembers; i++)
    if (strcmp(f->members[i].id, id) == 0)
      return &f->members[i];
  return NULL;
}

static kiln_err read_eifs(struct kiln_awsenv *env, struct kiln_fleet *f, struct kiln_error *err)
{
  struct kiln_aws_params p = {0};
  struct kiln_xml *doc = NULL;
  for (size_t i = 0; i < f->nmembers; i++) {
    char key[32];
    snprintf(key, sizeof(key), "InstanceId.%zu", i + 1);
    kiln_aws_params_add(&p, key, f->members[i].id);
  }
  kiln_err rc = kiln_awsenv_read(env, "ec2", "DescribeInstances", &p, &doc, err);
  kiln_aws_params_clear(&p);
  for (const struct kiln_xml *r = rc == KILN_OK ? kiln_awsenv_items(doc, "reservationSet") : NULL;
       r; r = kiln_xml_next_same(r))
    for (const struct kiln_xml *i = kiln_awsenv_items(r, "instancesSet"); i;
         i = kiln_xml_next_same(i)) {
      struct kiln_member *m = member(f, kiln_xml_text(i, "instanceId"));
      for (const struct kiln_xml *t = kiln_awsenv_items(i, "tagSet"); m && t;
           t = kiln_xml_next_same(t)) {
        const char *k = kiln_xml_text(t, "key");
        if (k && strcmp(k, KILN_TAG_EIF_SHA256) == 0 && !m->eif_sha256)
          m->eif_sha256 = kiln_awsenv_dup(kiln_xml_text(t, "value"));
      }
    }
  kiln_xml_free(doc);
  return rc;
}

/* ELB's target states from best to worst: a member shows its worst over the target groups. */
static int rank(const char *state)
{
  static const char *const order[] = {"healthy",     "initial",   "draining", "unused",
                                      "unavailable", "unhealthy", NULL};
  for (int i = 0; state && order[i]; i++)
    if (strcmp(order[i], state) == 0)
      return i;
  return 99;
}

static kiln_err read_target_health(struct kiln_awsenv *env, struct kiln_fleet *f,
                                   struct kiln_error *err)
{
  kiln_err rc = KILN_OK;
  for (size_t g = 0; g < f->ntarget_groups && rc == KILN_OK; g++) {
    struct kiln_aws_params p = {0};
    struct kiln_xml *doc = NULL;
    kiln_aws_params_add(&p, "TargetGroupArn", f->target_groups[g]);
    rc = kiln_awsenv_read(env, "elasticloadbalancing", "DescribeTargetHealth", &p, &doc, err);
    kiln_aws_params_clear(&p);
    for (const struct kiln_xml *d =
             rc == KILN_OK ? kiln_awsenv_items(doc, "TargetHealthDescriptions") : NULL;
         d; d = kiln_xml_next_same(d)) {
      struct kiln_member *m = member(f, kiln_xml_text(d, "Target/Id"));
      const char *state = kiln_xml_text(d, "TargetHealth/State");
      if (m && state && (!m->target_health || rank(state) > rank(m->target_health))) {
        free(m->target_health);
        m->target_health = strdup(state);
      }
    }
    kiln_xml_free(doc);
  }
  /* a member no target group lists is not registered (yet) */
  for (size_t i = 0; f->ntarget_groups && i < f->nmembers; i++)
    if (!f->members[i].target_health)
      f->members[i].target_health = strdup("unregistered");
  return rc;
}

kiln_err kiln_fleet_find_members(struct kiln_awsenv *env, struct kiln_fleet *f,
                                 struct kiln_error *err)
{
  if (f->nmembers == 0)
    return KILN_OK;
  kiln_err rc = read_eifs(env, f, err);
  if (rc == KILN_OK)
    rc = read_target_health(env, f, err);
  return rc;
}

cJSON *kiln_fleet_members_json(const struct kiln_fleet *f)
{
  cJSON *a = cJSON_CreateArray();
  for (size_t i = 0; i < f->nmembers; i++) {
    const struct kiln_member *m = &f->members[i];
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "instance_id", m->id);
    if (m->lt_version)
      cJSON_AddNumberToObject(o, "launch_template_version", atol(m->lt_version));
    if (m->lifecycle)
      cJSON_AddStringToObject(o, "lifecycle", m->lifecycle);
    if (m->health)
      cJSON_AddStringToObject(o, "health", m->health);
    if (m->target_health)
      cJSON_AddStringToObject(o, "target_health", m->target_health);
    if (m->zone)
      cJSON_AddStringToObject(o, "zone", m->zone);
    if (m->eif_sha256)
      cJSON_AddStringToObject(o, "eif_sha256", m->eif_sha256);
    cJSON_AddItemToArray(a, o);
  }
  return a;
}
