/* The aws stage's "logs" action: one read of the deployment's log group /kiln/<id> with
 * CloudWatch Logs FilterLogEvents from a start time (every page; throttling is retried by the
 * client's standard mode), optionally one instance's stream. `kiln logs` prints the events and,
 * with --follow, runs it again from the newest event it saw. */
#include "logs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resource.h"

#define MAX_PAGES 100000

/* One page's events appended to events as {event_id, timestamp, instance, message}. */
static void add_events(cJSON *events, const cJSON *answer)
{
  const cJSON *e;
  cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(answer, "events"))
  {
    const cJSON *ts = cJSON_GetObjectItemCaseSensitive(e, "timestamp");
    cJSON *o = cJSON_CreateObject();
    kiln_json_add_string(o, "event_id",
                         cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "eventId")));
    cJSON_AddNumberToObject(o, "timestamp", cJSON_IsNumber(ts) ? ts->valuedouble : 0);
    kiln_json_add_string(
        o, "instance", cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "logStreamName")));
    kiln_json_add_string(o, "message",
                         cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "message")));
    cJSON_AddItemToArray(events, o);
  }
}

static kiln_err explain(const char *group, const char *region,
                        const struct kiln_aws_error_info *info, kiln_err rc, struct kiln_error *err)
{
  if (strcmp(info->code, "ResourceNotFoundException") == 0) {
    kiln_error_clear(err);
    return kiln_error_set(err, KILN_E_NOT_FOUND,
                          "no log group %s yet (region %s): run `kiln setup` (it creates the "
                          "group the instances ship the app's output to), then `kiln deploy`",
                          group, region);
  }
  if (rc == KILN_E_AUTH)
    return kiln_error_prefix(err,
                             "these credentials may not read %s (the scoped deploy policy reads "
                             "its own deployment's group; one from an older kiln lacks that "
                             "statement: run `kiln update-policy` with admin credentials)",
                             group);
  return rc;
}

kiln_err kiln_logs_read(struct kiln_awsenv *env, const cJSON *opts, cJSON *meta,
                        struct kiln_error *err)
{
  char group[64];
  const cJSON *since = cJSON_GetObjectItemCaseSensitive(opts, "logs_since_ms");
  const char *instance =
      cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(opts, "logs_instance"));
  char *token = NULL;
  kiln_err rc = KILN_OK;
  snprintf(group, sizeof group, "/kiln/%s", env->dep.id);
  kiln_json_add_string(meta, "log_group", group);
  cJSON *events = cJSON_AddArrayToObject(meta, "events");
  for (int page = 0; page < MAX_PAGES && rc == KILN_OK; page++) {
    cJSON *body = cJSON_CreateObject(), *answer = NULL;
    struct kiln_aws_error_info info;
    cJSON_AddStringToObject(body, "logGroupName", group);
    cJSON_AddNumberToObject(body, "startTime", cJSON_IsNumber(since) ? since->valuedouble : 0);
    cJSON_AddBoolToObject(body, "interleaved", 1);
    if (instance)
      cJSON_AddItemToArray(cJSON_AddArrayToObject(body, "logStreamNames"),
                           cJSON_CreateString(instance));
    if (token)
      cJSON_AddStringToObject(body, "nextToken", token);
    rc = kiln_aws_json(env->c, "logs", "Logs_20140328.FilterLogEvents", body, &answer, &info, err);
    cJSON_Delete(body);
    if (rc != KILN_OK) {
      rc = explain(group, env->dep.region ? env->dep.region : "?", &info, rc, err);
      break;
    }
    add_events(events, answer);
    const char *next = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(answer, "nextToken"));
    int more = next && *next && (!token || strcmp(next, token) != 0);
    free(token);
    token = more ? strdup(next) : NULL;
    cJSON_Delete(answer);
    if (!more)
      break;
  }
  free(token);
  return rc;
}
