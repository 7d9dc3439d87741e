/* kiln logs: the enclave's output as the instances' CloudWatch agent shipped it to the log group
 * /kiln/<deployment id> (one stream per instance), read with CloudWatch Logs FilterLogEvents
 * (every page, throttling backed off). --follow polls and prints each event once (deduplicated by
 * event id over an overlap window, so late events are not lost and none repeats). */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <kiln/attestation.h>

#include "cli.h"
#include "client.h"
#include "deploy.h"
#include "util/buf.h"

#define DEFAULT_SINCE_MS (10LL * 60 * 1000)
#define FOLLOW_POLL_S 2
#define FOLLOW_MAX_POLL_S 60
/* --follow asks again from this long before the newest event seen: the agent ships in batches
 * and instances' events interleave, so an event can land behind one already printed. */
#define FOLLOW_OVERLAP_MS (60LL * 1000)
#define MAX_PAGES 100000

struct logs_args {
  int follow;
  int64_t since_ms; /* start time, ms since the epoch */
  const char *instance;
  const char *region;
  const char *profile;
};

static int64_t now_ms(void)
{
  struct timespec t;
  clock_gettime(CLOCK_REALTIME, &t);
  return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* "90s", "10m", "2h", "1d" (before now) or an RFC 3339 time; -1 when neither. */
static int64_t parse_since(const char *text)
{
  int64_t at = 0;
  if (kiln_attestation_parse_time(text, &at) == 0)
    return at;
  char *end = NULL;
  double v = strtod(text, &end);
  if (end == text || v < 0 || !isdigit((unsigned char)text[0]))
    return -1;
  double unit = strcmp(end, "s") == 0   ? 1
                : strcmp(end, "m") == 0 ? 60
                : strcmp(end, "h") == 0 ? 3600
                : strcmp(end, "d") == 0 ? 86400
                                        : -1;
  return unit < 0 ? -1 : now_ms() - (int64_t)(v * unit * 1000);
}

/* A log stream name as CloudWatch allows it (1..512 characters, no ':' or '*'). */
static int valid_stream(const char *s)
{
  size_t n = strlen(s);
  return n > 0 && n <= 512 && !strpbrk(s, ":*") && !isspace((unsigned char)s[0]);
}

static int parse_args(struct kiln_cli *cli, struct logs_args *a)
{
  memset(a, 0, sizeof *a);
  a->since_ms = now_ms() - DEFAULT_SINCE_MS;
  for (int i = 1; i < cli->argc; i++) {
    const char *arg = cli->argv[i], *val = i + 1 < cli->argc ? cli->argv[i + 1] : NULL;
    if (strcmp(arg, "--follow") == 0 || strcmp(arg, "-f") == 0) {
      a->follow = 1;
      continue;
    }
    if (strcmp(arg, "--since") && strcmp(arg, "--instance") && strcmp(arg, "--region") &&
        strcmp(arg, "--profile"))
      return kiln_cli_usage(cli, "unexpected argument \"%s\"", arg);
    if (!val)
      return kiln_cli_usage(cli, "%s needs a value", arg);
    i++;
    if (strcmp(arg, "--since") == 0 && (a->since_ms = parse_since(val)) < 0)
      return kiln_cli_usage(cli,
                            "--since %s: use a duration before now (90s, 10m, 2h, 1d) or an RFC "
                            "3339 time (2026-01-31T12:00:00Z)",
                            val);
    if (strcmp(arg, "--instance") == 0 && !valid_stream(val))
      return kiln_cli_usage(cli, "--instance %s: give an instance id such as i-0123456789abcdef0",
                            val);
    if (strcmp(arg, "--instance") == 0)
      a->instance = val;
    else if (strcmp(arg, "--region") == 0)
      a->region = val;
    else if (strcmp(arg, "--profile") == 0)
      a->profile = val;
  }
  return 0;
}

/* Event ids printed, with their times, so --follow's overlapping polls print nothing twice. An
 * open-addressing hash set; entries older than the next poll's start are dropped. */
struct seen_set {
  char **ids;
  int64_t *times;
  size_t cap, len;
};

static uint64_t hash_id(const char *s)
{
  uint64_t h = 1469598103934665603ULL;
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 1099511628211ULL;
  return h;
}

static void seen_free(struct seen_set *s)
{
  for (size_t i = 0; i < s->cap; i++)
    free(s->ids[i]);
  free(s->ids);
  free(s->times);
  memset(s, 0, sizeof *s);
}

/* Insert id (owned by the set afterwards); 1 when new, 0 when seen before, -1 out of memory. */
static int seen_add(struct seen_set *s, char *id, int64_t t);

/* Rebuild with room for twice the entries kept (those at or after keep_from). */
static int seen_rebuild(struct seen_set *s, size_t cap, int64_t keep_from)
{
  if (cap == 0)
    return 0;
  struct seen_set grown = {calloc(cap, sizeof(char *)), calloc(cap, sizeof(int64_t)), cap, 0};
  if (!grown.ids || !grown.times) {
    seen_free(&grown);
    return -1;
  }
  for (size_t i = 0; i < s->cap; i++) {
    if (s->ids[i] && s->times[i] >= keep_from) {
      seen_add(&grown, s->ids[i], s->times[i]);
      s->ids[i] = NULL;
    }
  }
  seen_free(s);
  *s = grown;
  return 0;
}

static int seen_add(struct seen_set *s, char *id, int64_t t)
{
  if ((s->len + 1) * 2 > s->cap && seen_rebuild(s, s->cap ? s->cap * 2 : 1024, INT64_MIN) != 0) {
    free(id);
    return -1;
  }
  size_t i = hash_id(id) & (s->cap - 1);
  while (s->ids[i]) {
    if (strcmp(s->ids[i], id) == 0) {
      free(id);
      return 0;
    }
    i = (i + 1) & (s->cap - 1);
  }
  s->ids[i] = id;
  s->times[i] = t;
  s->len++;
  return 1;
}

struct reader {
  struct kiln_cli *cli;
  struct kiln_aws_client *c;
  const struct logs_args *args;
  char group[64];
  struct seen_set seen;
  cJSON *collected; /* --json without --follow: every event, printed at the end */
  int64_t newest_ms;
  size_t printed;
};

static void print_event(struct reader *r, const cJSON *e)
{
  const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "eventId"));
  const char *stream = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "logStreamName"));
  const char *msg = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "message"));
  const cJSON *ts = cJSON_GetObjectItemCaseSensitive(e, "timestamp");
  int64_t t = cJSON_IsNumber(ts) ? (int64_t)ts->valuedouble : 0;
  char when[40];
  kiln_attestation_format_time(t, when, sizeof when);
  if (r->cli->json) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "time", when);
    cJSON_AddStringToObject(o, "instance", stream ? stream : "");
    cJSON_AddStringToObject(o, "message", msg ? msg : "");
    cJSON_AddStringToObject(o, "event_id", id ? id : "");
    if (r->collected) {
      cJSON_AddItemToArray(r->collected, o);
    } else { /* --follow --json: one object per line */
      char *line = cJSON_PrintUnformatted(o);
      if (line)
        printf("%s\n", line);
      free(line);
      cJSON_Delete(o);
    }
  } else {
    size_t n = msg ? strlen(msg) : 0;
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
      n--;
    printf("%s %.*s\n", stream ? stream : "-", (int)n, msg ? msg : "");
  }
  r->printed++;
}

static kiln_err client_error(struct reader *r, const struct kiln_aws_error_info *info,
                             struct kiln_error *err)
{
  if (strcmp(info->code, "ResourceNotFoundException") == 0) {
    kiln_error_clear(err);
    return kiln_error_set(err, KILN_E_NOT_FOUND,
                          "no log group %s yet (region %s): run `kiln setup` (it creates the "
                          "group the instances ship the app's output to), then `kiln deploy`",
                          r->group, kiln_aws_client_region(r->c));
  }
  if (err && err->code == KILN_E_AUTH)
    return kiln_error_prefix(err,
                             "these credentials may not read %s (the scoped deploy policy reads "
                             "its own deployment's group; one from an older kiln lacks that "
                             "statement: run `kiln update-policy` with admin credentials)",
                             r->group);
  return err ? err->code : KILN_E_REMOTE;
}

/* Every page of FilterLogEvents from start_ms on; each event not seen before is printed. */
static kiln_err sweep(struct reader *r, int64_t start_ms, int *throttled, struct kiln_error *err)
{
  char *token = NULL;
  kiln_err rc = KILN_OK;
  *throttled = 0;
  for (int page = 0; page < MAX_PAGES && rc == KILN_OK; page++) {
    cJSON *body = cJSON_CreateObject(), *answer = NULL;
    struct kiln_aws_error_info info;
    cJSON_AddStringToObject(body, "logGroupName", r->group);
    cJSON_AddNumberToObject(body, "startTime", (double)start_ms);
    cJSON_AddBoolToObject(body, "interleaved", 1);
    if (r->args->instance)
      cJSON_AddItemToArray(cJSON_AddArrayToObject(body, "logStreamNames"),
                           cJSON_CreateString(r->args->instance));
    if (token)
      cJSON_AddStringToObject(body, "nextToken", token);
    rc = kiln_aws_json(r->c, "logs", "Logs_20140328.FilterLogEvents", body, &answer, &info, err);
    cJSON_Delete(body);
    if (rc != KILN_OK) {
      *throttled = kiln_aws_retryable(info.http_status, info.code);
      rc = *throttled && r->args->follow ? rc : client_error(r, &info, err);
      break;
    }
    const cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(answer, "events"))
    {
      const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "eventId"));
      const cJSON *ts = cJSON_GetObjectItemCaseSensitive(e, "timestamp");
      int64_t t = cJSON_IsNumber(ts) ? (int64_t)ts->valuedouble : 0;
      char *copy = id ? strdup(id) : NULL;
      int fresh = copy ? seen_add(&r->seen, copy, t) : -1;
      if (fresh < 0) {
        rc = kiln_error_set(err, KILN_E_NOMEM, "out of memory");
        break;
      }
      if (fresh)
        print_event(r, e);
      if (t > r->newest_ms)
        r->newest_ms = t;
    }
    const char *next = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(answer, "nextToken"));
    int more = next && *next && (!token || strcmp(next, token) != 0);
    free(token);
    token = more ? strdup(next) : NULL;
    cJSON_Delete(answer);
    if (!more)
      break;
  }
  free(token);
  fflush(stdout);
  return rc;
}

static void client_log(void *ctx, int level, const char *msg)
{
  kiln_log(ctx, (enum kiln_log_level)level, "%s", msg);
}

static int client_cancelled(void *ctx)
{
  (void)ctx;
  return kiln_cancelled();
}

/* Poll until Ctrl-C; throttling (after the client's own retries) slows the polls down. */
static kiln_err follow(struct reader *r, struct kiln_error *err)
{
  unsigned interval = FOLLOW_POLL_S;
  int64_t start = r->args->since_ms;
  while (!kiln_cancelled()) {
    for (unsigned waited = 0; waited < interval * 10 && !kiln_cancelled(); waited++)
      usleep(100000);
    if (kiln_cancelled())
      break;
    if (r->newest_ms - FOLLOW_OVERLAP_MS > start) {
      start = r->newest_ms - FOLLOW_OVERLAP_MS;
      if (seen_rebuild(&r->seen, r->seen.cap, start) != 0)
        return kiln_error_set(err, KILN_E_NOMEM, "out of memory");
    }
    int throttled = 0;
    kiln_err rc = sweep(r, start, &throttled, err);
    if (rc != KILN_OK && !throttled)
      return rc;
    if (throttled) {
      kiln_error_clear(err);
      interval = interval * 2 > FOLLOW_MAX_POLL_S ? FOLLOW_MAX_POLL_S : interval * 2;
    } else {
      interval = FOLLOW_POLL_S;
    }
  }
  return kiln_error_set(err, KILN_E_CANCELLED, "interrupted");
}

/* The client, with --region/--profile over kiln.json /aws/region, and credentials now. */
static kiln_err open_client(struct kiln *k, const struct logs_args *a, const char *config_region,
                            struct kiln_aws_client **c, struct kiln_error *err)
{
  struct kiln_aws_client_options o = {.profile = a->profile,
                                      .region = config_region,
                                      .log = client_log,
                                      .cancelled = client_cancelled,
                                      .hook_ctx = k};
  if (a->region && setenv("AWS_REGION", a->region, 1) != 0)
    return kiln_error_set(err, KILN_E_NOMEM, "cannot set AWS_REGION");
  kiln_err rc = kiln_aws_client_new(&o, c, err);
  if (rc == KILN_OK)
    rc = kiln_aws_client_credentials(*c, NULL, err);
  if (rc == KILN_OK && !kiln_aws_client_region(*c))
    rc = kiln_error_set(err, KILN_E_INVALID,
                        "no AWS region: set AWS_REGION, \"region\" in the AWS profile, "
                        "/aws/region in kiln.json, or --region");
  return rc;
}

int kiln_cmd_logs(struct kiln_cli *cli)
{
  struct logs_args a;
  int code = parse_args(cli, &a);
  if (code)
    return code;
  struct kiln *k = kiln_cli_open_app(cli, 0, &code);
  if (!k)
    return code;
  struct kiln_deployment dep;
  struct kiln_error e = KILN_ERROR_INIT;
  struct reader r = {.cli = cli, .args = &a};
  kiln_err rc = kiln_deployment_resolve(kiln_config(k), kiln_app_dir(k), &dep, &e);
  if (rc == KILN_OK && !dep.id)
    rc = kiln_error_set(&e, KILN_E_INVALID,
                        "no deployment id: run `kiln setup` first (it writes DEPLOYMENT_ID to "
                        "the app's .env), or set /aws/deployment_id in kiln.json or "
                        "$KILN_DEPLOYMENT_ID");
  if (rc == KILN_OK) {
    snprintf(r.group, sizeof r.group, "/kiln/%s", dep.id);
    rc = open_client(k, &a, dep.region, &r.c, &e);
  }
  if (rc == KILN_OK && cli->json && !a.follow)
    r.collected = cJSON_CreateArray();
  int throttled = 0;
  if (rc == KILN_OK)
    rc = sweep(&r, a.since_ms, &throttled, &e);
  if (rc != KILN_OK && throttled) { /* --follow: the polls try again */
    kiln_error_clear(&e);
    rc = KILN_OK;
  }
  if (rc == KILN_OK && a.follow)
    rc = follow(&r, &e);
  if (rc == KILN_OK && r.collected) {
    char since[40];
    kiln_attestation_format_time(a.since_ms, since, sizeof since);
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "log_group", r.group);
    cJSON_AddStringToObject(doc, "region", kiln_aws_client_region(r.c));
    cJSON_AddStringToObject(doc, "since", since);
    if (a.instance)
      cJSON_AddStringToObject(doc, "instance", a.instance);
    cJSON_AddItemToObject(doc, "events", r.collected);
    r.collected = NULL;
    kiln_cli_print_json_ordered(doc);
  } else if (rc == KILN_OK && !cli->json && r.printed == 0) {
    kiln_log(k, KILN_LOG_INFO, "no events in %s%s%s since the start time", r.group,
             a.instance ? " from " : "", a.instance ? a.instance : "");
  }
  code = rc == KILN_OK ? KILN_EXIT_OK : kiln_cli_fail_msg(cli, rc, "%s", kiln_error_msg(&e));
  cJSON_Delete(r.collected);
  seen_free(&r.seen);
  kiln_aws_client_free(r.c);
  kiln_deployment_clear(&dep);
  kiln_error_clear(&e);
  kiln_free(k);
  return code;
}
