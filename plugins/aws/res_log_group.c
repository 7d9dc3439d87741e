/* Resource kind "log-group": the CloudWatch Logs group /kiln/<deployment id> the instances' agent
 * ships the enclave's output to (stream = instance id), tagged with the deployment, retention from
 * the stage option log_retention_days. teardown deletes it only when it carries the tag. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resource.h"

#define DEFAULT_RETENTION_DAYS 30

struct log_group {
  char name[64];
  int exists;
  int unreadable; /* status with credentials that may not list log groups */
  long retention_days;
};

static struct log_group *group_of(struct kiln_walk *w)
{
  int i = kiln_aws_resource_index(&kiln_res_log_group);
  if (i < 0 || (size_t)i >= sizeof(w->state) / sizeof(w->state[0]))
    return NULL;
  if (!w->state[i])
    w->state[i] = calloc(1, sizeof(struct log_group));
  struct log_group *g = w->state[i];
  if (g && w->env->dep.id)
    snprintf(g->name, sizeof g->name, "/kiln/%s", w->env->dep.id);
  return g;
}

static const struct log_group *group_in(const struct kiln_walk *w)
{
  int i = kiln_aws_resource_index(&kiln_res_log_group);
  return i < 0 ? NULL : w->state[i];
}

static long wanted_retention(const struct kiln_walk *w)
{
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(w->opts, "log_retention_days");
  return cJSON_IsNumber(v) && v->valueint > 0 ? v->valueint : DEFAULT_RETENTION_DAYS;
}

/* One CloudWatch Logs call (body consumed); the answer in *out when out is set. An error whose
 * code is `tolerated` is cleared and reported as *hit = 1. */
static kiln_err logs_call(struct kiln_walk *w, const char *operation, cJSON *body, cJSON **out,
                          const char *tolerated, int *hit, struct kiln_error *err)
{
  char target[64];
  struct kiln_aws_error_info info;
  cJSON *answer = NULL;
  snprintf(target, sizeof target, "Logs_20140328.%s", operation);
  kiln_err rc = body ? kiln_aws_json(w->env->c, "logs", target, body, &answer, &info, err)
                     : kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  cJSON_Delete(body);
  if (hit)
    *hit = rc != KILN_OK && tolerated && strcmp(info.code, tolerated) == 0;
  if (hit && *hit) {
    kiln_error_clear(err);
    rc = KILN_OK;
  }
  if (out)
    *out = answer;
  else
    cJSON_Delete(answer);
  return rc;
}

static cJSON *named(const struct log_group *g)
{
  cJSON *body = cJSON_CreateObject();
  if (body && !cJSON_AddStringToObject(body, "logGroupName", g->name)) {
    cJSON_Delete(body);
    return NULL;
  }
  return body;
}

static kiln_err group_find(struct kiln_walk *w, struct kiln_error *err)
{
  struct log_group *g = group_of(w);
  if (!g)
    return kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  if (!w->env->dep.id)
    return KILN_OK;
  cJSON *body = cJSON_CreateObject(), *answer = NULL;
  if (body)
    cJSON_AddStringToObject(body, "logGroupNamePrefix", g->name);
  kiln_err rc = logs_call(w, "DescribeLogGroups", body, &answer, NULL, NULL, err);
  if (rc == KILN_E_AUTH && w->mode == KILN_WALK_STATUS) {
    /* the scoped deploy policy reads the group's events, not the account's list of groups */
    kiln_error_clear(err);
    g->unreadable = 1;
    return KILN_OK;
  }
  const cJSON *item;
  cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(answer, "logGroups"))
  {
    const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(item, "logGroupName"));
    const cJSON *days = cJSON_GetObjectItemCaseSensitive(item, "retentionInDays");
    if (name && strcmp(name, g->name) == 0) {
      g->exists = 1;
      g->retention_days = cJSON_IsNumber(days) ? days->valueint : 0; /* 0: kept forever */
    }
  }
  cJSON_Delete(answer);
  return rc;
}

static kiln_err group_ensure(struct kiln_walk *w, struct kiln_error *err)
{
  struct log_group *g = group_of(w);
  struct kiln_awsenv *env = w->env;
  long days = wanted_retention(w);
  kiln_err rc = KILN_OK;
  if (!g)
    return kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  if (!g->exists) {
    kiln_awsenv_announce(env, "create", g->name,
                         "CloudWatch Logs group for the enclave's output (stream = instance id)");
    env->mutations++;
    if (!env->dry_run) {
      cJSON *body = named(g);
      cJSON *tags = body ? cJSON_AddObjectToObject(body, "tags") : NULL;
      if (tags) {
        cJSON_AddStringToObject(tags, env->dep.tag_key, env->dep.id);
        cJSON_AddStringToObject(tags, "kiln:managed", "true");
      }
      int existed = 0;
      rc = logs_call(w, "CreateLogGroup", body, NULL, "ResourceAlreadyExistsException", &existed,
                     err);
    }
    if (rc != KILN_OK)
      return kiln_error_prefix(err, "creating log group %s", g->name);
    g->exists = 1;
    g->retention_days = 0;
  }
  if (g->retention_days == days) {
    kiln_awsenv_announce(env, "nothing", g->name, "log group, events kept %ld days", days);
    return KILN_OK;
  }
  kiln_awsenv_announce(env, "update", g->name, "keep events %ld days", days);
  env->mutations++;
  if (env->dry_run)
    return KILN_OK;
  cJSON *body = named(g);
  if (body)
    cJSON_AddNumberToObject(body, "retentionInDays", (double)days);
  rc = logs_call(w, "PutRetentionPolicy", body, NULL, NULL, NULL, err);
  if (rc != KILN_OK)
    return kiln_error_prefix(err,
                             "setting the retention of log group %s (/aws/log_retention_days "
                             "must be one of CloudWatch's values: 1, 3, 5, 7, 14, 30, 60, 90...)",
                             g->name);
  g->retention_days = days;
  return KILN_OK;
}

static int group_exists(const struct kiln_walk *w)
{
  const struct log_group *g = group_in(w);
  return g && g->exists;
}

static void group_fields(const struct kiln_walk *w, cJSON *meta)
{
  const struct log_group *g = group_in(w);
  if (g && g->exists) {
    cJSON_AddStringToObject(meta, "log_group", g->name);
    cJSON_AddNumberToObject(meta, "log_retention_days", (double)g->retention_days);
  } else if (g && g->unreadable && g->name[0]) {
    cJSON_AddStringToObject(meta, "log_group", g->name);
    cJSON_AddBoolToObject(meta, "log_group_listable", 0);
  }
  kiln_doc_label(meta, "log_group", "log group");
}

/* Whether the group carries the deployment tag (never delete another owner's group). */
static kiln_err group_tagged(struct kiln_walk *w, const struct log_group *g, int *tagged,
                             struct kiln_error *err)
{
  cJSON *answer = NULL;
  kiln_err rc = logs_call(w, "ListTagsLogGroup", named(g), &answer, NULL, NULL, err);
  const char *owner = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
      cJSON_GetObjectItemCaseSensitive(answer, "tags"), w->env->dep.tag_key));
  *tagged = rc == KILN_OK && owner && strcmp(owner, w->env->dep.id) == 0;
  cJSON_Delete(answer);
  return rc;
}

static kiln_err group_teardown(struct kiln_walk *w, struct kiln_error *err)
{
  struct log_group *g = group_of(w);
  int tagged = 0;
  if (!g || !g->exists)
    return KILN_OK;
  kiln_err rc = group_tagged(w, g, &tagged, err);
  if (rc != KILN_OK)
    return rc;
  if (!tagged) {
    kiln_awsenv_announce(w->env, "nothing", g->name, "left alone: it does not carry the tag %s=%s",
                         w->env->dep.tag_key, w->env->dep.id);
    return KILN_OK;
  }
  kiln_awsenv_announce(w->env, "delete", g->name, "log group with its events");
  w->env->mutations++;
  if (w->env->dry_run)
    return KILN_OK;
  return logs_call(w, "DeleteLogGroup", named(g), NULL, "ResourceNotFoundException", NULL, err);
}

static void group_clear(struct kiln_walk *w)
{
  int i = kiln_aws_resource_index(&kiln_res_log_group);
  if (i >= 0) {
    free(w->state[i]);
    w->state[i] = NULL;
  }
}

const struct kiln_aws_resource kiln_res_log_group = {
    .name = "log-group",
    .find = group_find,
    .ensure = group_ensure,
    .exists = group_exists,
    .fields = group_fields,
    .teardown = group_teardown,
    .clear = group_clear,
};
