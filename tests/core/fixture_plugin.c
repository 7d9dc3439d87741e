/* Test fixture plugins: one source built as several plugins (FIXTURE_VARIANT), good and broken,
 * to exercise the loader's checks and the pipeline runner. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <kiln/plugin.h>

#define VARIANT_GOOD 1
#define VARIANT_BAD_ABI 2
#define VARIANT_SMALL 3
#define VARIANT_NULL_ENTRY 4
#define VARIANT_NO_ENTRY 5
#define VARIANT_DUP 6
#define VARIANT_BROKEN 7

static kiln_err write_text(struct kiln_stage_ctx *ctx, const struct kiln_host *host,
                           const char *dir, const char *name, const char *text)
{
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "w");
  if (!f)
    return host->fail(ctx, KILN_E_IO, "cannot write %s: %s", path, strerror(errno));
  fputs(text, f);
  return fclose(f) == 0 ? KILN_OK : host->fail(ctx, KILN_E_IO, "cannot write %s", path);
}

/* produce: writes note.txt = options.text; records it in kiln.lock. */
static kiln_err produce_run(struct kiln_stage_ctx *ctx, const struct kiln_host *host)
{
  const cJSON *text = cJSON_GetObjectItemCaseSensitive(host->options(ctx), "text");
  const char *dir = NULL;
  kiln_err rc = host->output(ctx, "note", &dir);
  if (rc)
    return rc;
  rc = write_text(ctx, host, dir, "note.txt", text->valuestring);
  if (rc)
    return rc;
  cJSON *meta = cJSON_CreateObject();
  cJSON_AddStringToObject(meta, "text", text->valuestring);
  host->lock_set(ctx, "text", cJSON_CreateString(text->valuestring));
  host->log(ctx, KILN_LOG_INFO, "wrote a note");
  return host->output_meta(ctx, "note", meta);
}

static kiln_err produce_identify(struct kiln_stage_ctx *ctx, const struct kiln_host *host)
{
  const char *id = getenv("FIXTURE_IDENTITY");
  return id ? host->cache_key_add(ctx, id) : KILN_OK;
}

static kiln_err produce_plan(struct kiln_stage_ctx *ctx, const struct kiln_host *host)
{
  return host->plan_action(ctx, "create", "note", "would write note.txt");
}

/* consume: report.txt = "report: " + the note's text. */
static kiln_err consume_run(struct kiln_stage_ctx *ctx, const struct kiln_host *host)
{
  const struct kiln_artifact *note = host->input(ctx, "note");
  const cJSON *text = cJSON_GetObjectItemCaseSensitive(note->meta, "text");
  char buf[512];
  snprintf(buf, sizeof buf, "report: %s", cJSON_IsString(text) ? text->valuestring : "?");
  const char *dir = NULL;
  kiln_err rc = host->output(ctx, "report", &dir);
  return rc ? rc : write_text(ctx, host, dir, "report.txt", buf);
}

static kiln_err failing_run(struct kiln_stage_ctx *ctx, const struct kiln_host *host)
{
  const char *dir = NULL;
  host->output(ctx, "note", &dir); /* a half-made output must be thrown away */
  return host->fail(ctx, KILN_E_INVALID, "the fixture failed on purpose: option /failing/x is bad");
}

static kiln_err sneaky_run(struct kiln_stage_ctx *ctx, const struct kiln_host *host)
{
  const char *dir = NULL;
  host->output(ctx, "secret-kind", &dir);
  return host->output(ctx, "note", &dir);
}

/* liar: writes data.bin (options.mib MiB of 'x', or 100 bytes) and hands the store a digest
 * that is not the file's (options.lie "digest"), or the right-looking one for another size
 * ("size"). The store must catch it. */
static kiln_err liar_run(struct kiln_stage_ctx *ctx, const struct kiln_host *host)
{
  const cJSON *opts = host->options(ctx);
  const cJSON *mib = cJSON_GetObjectItemCaseSensitive(opts, "mib");
  const cJSON *lie = cJSON_GetObjectItemCaseSensitive(opts, "lie");
  uint64_t size = cJSON_IsNumber(mib) ? (uint64_t)mib->valueint << 20 : 100;
  const char *dir = NULL;
  kiln_err rc = host->output(ctx, "note", &dir);
  if (rc)
    return rc;
  char path[4096];
  snprintf(path, sizeof path, "%s/data.bin", dir);
  FILE *f = fopen(path, "w");
  if (!f)
    return host->fail(ctx, KILN_E_IO, "cannot write %s", path);
  for (uint64_t i = 0; i < size; i++)
    fputc('x', f);
  if (fclose(f) != 0)
    return host->fail(ctx, KILN_E_IO, "cannot write %s", path);
  if (!KILN_HOST_HAS(host, output_digest))
    return host->fail(ctx, KILN_E_UNSUPPORTED, "this kiln cannot take handed-over digests");
  int size_lie = cJSON_IsString(lie) && strcmp(lie->valuestring, "size") == 0;
  return host->output_digest(ctx, "note", "data.bin",
                             "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                             size_lie ? size + 1 : size);
}

/* slow: writes a marker file in the app dir, then waits up to 30 s for cancellation. */
static kiln_err slow_run(struct kiln_stage_ctx *ctx, const struct kiln_host *host)
{
  const char *dir = NULL;
  kiln_err rc = host->output(ctx, "note", &dir);
  if (rc)
    return rc;
  write_text(ctx, host, dir, "partial.txt", "half");
  const char *tmp = host->temp_dir(ctx);
  if (tmp)
    write_text(ctx, host, tmp, "scratch", "scratch");
  write_text(ctx, host, host->app_dir(ctx), "slow-started", "1");
  for (int i = 0; i < 300; i++) {
    if (host->cancelled(ctx))
      return host->fail(ctx, KILN_E_CANCELLED, "slow stage interrupted");
    struct timespec ts = {0, 100 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  return host->fail(ctx, KILN_E_INTERNAL, "slow stage was never interrupted");
}

static const char produce_schema[] =
    "{\"type\":\"object\",\"additionalProperties\":false,\"properties\":{"
    "\"text\":{\"type\":\"string\",\"default\":\"hello\"},"
    "\"count\":{\"type\":\"integer\",\"minimum\":1}}}";
static const char *const note_kind[] = {"note", NULL};
static const char *const produce_reads[] = {"/enclave/cmd", NULL};
static const char *const report_kind[] = {"report", NULL};

__attribute__((unused)) static const struct kiln_stage produce = {sizeof(struct kiln_stage),
                                                                  "produce",
                                                                  "Write a note",
                                                                  NULL,
                                                                  NULL,
                                                                  note_kind,
                                                                  produce_schema,
                                                                  produce_run,
                                                                  produce_plan,
                                                                  NULL,
                                                                  produce_identify,
                                                                  0,
                                                                  produce_reads};
__attribute__((unused)) static const struct kiln_stage consume = {sizeof(struct kiln_stage),
                                                                  "consume",
                                                                  "Report on a note",
                                                                  note_kind,
                                                                  NULL,
                                                                  report_kind,
                                                                  NULL,
                                                                  consume_run,
                                                                  NULL,
                                                                  NULL,
                                                                  NULL,
                                                                  0,
                                                                  NULL};
__attribute__((unused)) static const struct kiln_stage failing = {sizeof(struct kiln_stage),
                                                                  "failing",
                                                                  "Always fails",
                                                                  NULL,
                                                                  NULL,
                                                                  note_kind,
                                                                  NULL,
                                                                  failing_run,
                                                                  NULL,
                                                                  NULL,
                                                                  NULL,
                                                                  0,
                                                                  NULL};
__attribute__((unused)) static const struct kiln_stage sneaky = {sizeof(struct kiln_stage),
                                                                 "sneaky",
                                                                 "Produces an undeclared kind",
                                                                 NULL,
                                                                 NULL,
                                                                 note_kind,
                                                                 NULL,
                                                                 sneaky_run,
                                                                 NULL,
                                                                 NULL,
                                                                 NULL,
                                                                 0,
                                                                 NULL};
static const char liar_schema[] =
    "{\"type\":\"object\",\"additionalProperties\":false,\"properties\":{"
    "\"mib\":{\"type\":\"integer\",\"minimum\":1},"
    "\"lie\":{\"type\":\"string\",\"enum\":[\"digest\",\"size\"]}}}";
__attribute__((unused)) static const struct kiln_stage liar = {sizeof(struct kiln_stage),
                                                               "liar",
                                                               "Hands the store a wrong digest",
                                                               NULL,
                                                               NULL,
                                                               note_kind,
                                                               liar_schema,
                                                               liar_run,
                                                               NULL,
                                                               NULL,
                                                               NULL,
                                                               KILN_STAGE_NO_CACHE,
                                                               NULL};
__attribute__((unused)) static const struct kiln_stage slow = {sizeof(struct kiln_stage),
                                                               "slow",
                                                               "Waits to be interrupted",
                                                               NULL,
                                                               NULL,
                                                               note_kind,
                                                               NULL,
                                                               slow_run,
                                                               NULL,
                                                               NULL,
                                                               NULL,
                                                               KILN_STAGE_NO_CACHE,
                                                               NULL};

#if FIXTURE_VARIANT == VARIANT_DUP
static const struct kiln_stage *const stages[] = {&produce, NULL};
#define PLUGIN_NAME "fixture-dup"
#elif FIXTURE_VARIANT == VARIANT_BROKEN
static const struct kiln_stage *const stages[] = {&failing, &sneaky, &slow, &liar, NULL};
#define PLUGIN_NAME "fixture-broken"
#else
static const struct kiln_stage *const stages[] = {&produce, &consume, NULL};
#define PLUGIN_NAME "fixture"
#endif

__attribute__((unused)) static const struct kiln_plugin plugin = {
#if FIXTURE_VARIANT == VARIANT_BAD_ABI
    99,
#else
    KILN_ABI_VERSION,
#endif
#if FIXTURE_VARIANT == VARIANT_SMALL
    8,
#else
    sizeof(struct kiln_plugin),
#endif
    PLUGIN_NAME, "1.0.0", "Apache-2.0", stages};

#if FIXTURE_VARIANT == VARIANT_NO_ENTRY
const struct kiln_plugin *fixture_not_the_entry(uint32_t host_abi_version);
KILN_PLUGIN_EXPORT const struct kiln_plugin *fixture_not_the_entry(uint32_t host_abi_version)
#else
KILN_PLUGIN_EXPORT const struct kiln_plugin *kiln_plugin_entry(uint32_t host_abi_version)
#endif
{
  (void)host_abi_version;
#if FIXTURE_VARIANT == VARIANT_NULL_ENTRY
  return NULL;
#else
  return &plugin;
#endif
}
