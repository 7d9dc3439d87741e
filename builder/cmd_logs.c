/* kiln logs: the enclave's output as the instances' CloudWatch agent shipped it to the log group
 * /kiln/<deployment id> (one stream per instance), read by the aws stage's "logs" action
 * (FilterLogEvents, every page). --follow runs it again every few seconds from shortly before the
 * newest event seen and prints each event once (deduplicated by event id over that overlap, so
 * late events are not lost and none repeats); failed polls (throttling) slow the polls down. */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <kiln/attestation.h>

#include "aws_cli.h"

#define DEFAULT_SINCE_MS (10LL * 60 * 1000)
#define FOLLOW_POLL_S 2
#define FOLLOW_MAX_POLL_S 60
#define FOLLOW_MAX_FAILURES 5
/* --follow asks again from this long before the newest event seen: the agent ships in batches
 * and instances' events interleave, so an event can land behind one already printed. */
#define FOLLOW_OVERLAP_MS (60LL * 1000)

struct logs_args {
  int follow;
  int64_t since_ms; /* start time, ms since the epoch */
  const char *instance;
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

/* The command's own options (--region and --profile are left for kiln_aws_cli_option). */
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
  struct seen_set seen;
  cJSON *collected; /* --json without --follow: every event, printed at the end */
  int64_t newest_ms;
  size_t printed;
};

static void print_event(struct reader *r, const cJSON *e)
{
  const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "event_id"));
  const char *stream = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "instance"));
  const char *msg = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "message"));
  const cJSON *ts = cJSON_GetObjectItemCaseSensitive(e, "timestamp");
  char when[40];
  kiln_attestation_format_time(cJSON_IsNumber(ts) ? (int64_t)ts->valuedouble : 0, when,
                               sizeof when);
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

/* The events of one read not printed before, printed. */
static int print_new(struct reader *r, const cJSON *meta)
{
  const cJSON *e;
  cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(meta, "events"))
  {
    const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "event_id"));
    const cJSON *ts = cJSON_GetObjectItemCaseSensitive(e, "timestamp");
    int64_t t = cJSON_IsNumber(ts) ? (int64_t)ts->valuedouble : 0;
    char *copy = id ? strdup(id) : NULL;
    int fresh = copy ? seen_add(&r->seen, copy, t) : -1;
    if (fresh < 0)
      return kiln_cli_fail_msg(r->cli, KILN_E_NOMEM, "out of memory");
    if (fresh)
      print_event(r, e);
    if (t > r->newest_ms)
      r->newest_ms = t;
  }
  fflush(stdout);
  return 0;
}

/* One read by the aws stage from start_ms; its events printed. */
static int read_once(struct reader *r, struct kiln *k, struct kiln_pipeline *p, int64_t start_ms,
                     const cJSON **meta)
{
  char value[32];
  const struct kiln_artifact *d = NULL;
  snprintf(value, sizeof value, "%lld", (long long)start_ms);
  int code = kiln_aws_cli_set(r->cli, k, p, "logs_since_ms", value);
  if (!code)
    code = kiln_cli_run_pipeline(r->cli, k, p, "deployment", &d);
  if (!code)
    code = print_new(r, d->meta);
  if (!code && meta)
    *meta = d->meta;
  return code;
}

/* Poll until Ctrl-C; a failed poll (throttling, after the client's own retries) slows the polls
 * down, FOLLOW_MAX_FAILURES in a row end it. */
static int follow(struct reader *r, struct kiln *k, struct kiln_pipeline *p, int64_t since_ms)
{
  unsigned interval = FOLLOW_POLL_S;
  int failures = 0;
  int64_t start = since_ms;
  while (!kiln_cancelled()) {
    for (unsigned waited = 0; waited < interval * 10 && !kiln_cancelled(); waited++)
      usleep(100000);
    if (kiln_cancelled())
      break;
    if (r->newest_ms - FOLLOW_OVERLAP_MS > start) {
      start = r->newest_ms - FOLLOW_OVERLAP_MS;
      if (seen_rebuild(&r->seen, r->seen.cap, start) != 0)
        return kiln_cli_fail_msg(r->cli, KILN_E_NOMEM, "out of memory");
    }
    int code = read_once(r, k, p, start, NULL);
    if (code && (kiln_cancelled() || ++failures >= FOLLOW_MAX_FAILURES))
      return code;
    failures = code ? failures : 0;
    interval = !code                              ? FOLLOW_POLL_S
               : interval * 2 > FOLLOW_MAX_POLL_S ? FOLLOW_MAX_POLL_S
                                                  : interval * 2;
  }
  return kiln_cli_fail_msg(r->cli, KILN_E_CANCELLED, "interrupted");
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
  struct kiln_aws_cli aws = {.action = "logs"};
  struct kiln_pipeline *p = NULL;
  struct reader r = {.cli = cli};
  const cJSON *meta = NULL;
  code = kiln_aws_cli_pipeline(cli, k, &aws, &p);
  for (int i = 1; i < cli->argc && !code; i++) {
    int taken = 0;
    if (strcmp(cli->argv[i], "--region") == 0 || strcmp(cli->argv[i], "--profile") == 0)
      code = kiln_aws_cli_option(cli, k, p, &aws, &i, &taken);
  }
  if (!code && a.instance)
    code = kiln_cli_set_string(cli, k, p, "aws", "logs_instance", a.instance);
  if (!code && cli->json && !a.follow)
    r.collected = cJSON_CreateArray();
  if (!code)
    code = read_once(&r, k, p, a.since_ms, &meta);
  if (!code && a.follow)
    code = follow(&r, k, p, a.since_ms);
  if (!code && r.collected) {
    char since[40];
    kiln_attestation_format_time(a.since_ms, since, sizeof since);
    cJSON *doc = cJSON_CreateObject();
    static const char *const keys[] = {"log_group", "deployment_id", "region"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
      const char *v = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(meta, keys[i]));
      cJSON_AddStringToObject(doc, keys[i], v ? v : "");
    }
    cJSON_AddStringToObject(doc, "since", since);
    if (a.instance)
      cJSON_AddStringToObject(doc, "instance", a.instance);
    cJSON_AddItemToObject(doc, "events", r.collected);
    r.collected = NULL;
    kiln_cli_print_json_ordered(doc);
  } else if (!code && !cli->json && r.printed == 0) {
    kiln_log(k, KILN_LOG_INFO, "no events in %s%s%s since the start time",
             cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(meta, "log_group")),
             a.instance ? " from " : "", a.instance ? a.instance : "");
  }
  cJSON_Delete(r.collected);
  seen_free(&r.seen);
  free(aws.eif_storage);
  kiln_pipeline_free(p);
  kiln_free(k);
  return code;
}
