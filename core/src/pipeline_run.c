/* Pipeline execution: run, plan and undo walk the steps with the step cache, the artifact
 * store and kiln.lock. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pipeline.h"
#include "util/hash.h"
#include "util/json.h"

/* Validate a step's options against its schema into a fresh copy (defaults filled). */
static kiln_err step_options(struct kiln_pipeline *p, const struct kiln_step *s, cJSON **out)
{
  struct kiln *k = p->k;
  *out = cJSON_Duplicate(s->options, 1);
  if (!*out)
    return kiln_set_error(k, KILN_E_NOMEM, "out of memory");
  if (!s->stage->options_schema)
    return KILN_OK;
  cJSON *schema = cJSON_Parse(s->stage->options_schema);
  struct kiln_error e = KILN_ERROR_INIT;
  char pointer[128];
  snprintf(pointer, sizeof pointer, "/%s", s->stage->name);
  const char *file = strcmp(s->origin, "--set") == 0 ? "options (kiln.json and --set)"
                     : k->config_path                ? k->config_path
                                                     : "options";
  kiln_err rc = kiln_schema_validate(schema, *out, file, pointer, &e);
  cJSON_Delete(schema);
  if (rc) {
    kiln_take_error(k, &e);
    cJSON_Delete(*out);
    *out = NULL;
  }
  return rc;
}

static kiln_err check_inputs(struct kiln_pipeline *p, const struct kiln_step *s, int allow_missing)
{
  for (size_t i = 0; s->stage->consumes && s->stage->consumes[i]; i++) {
    if (kiln_pipeline_output(p, s->stage->consumes[i]) || allow_missing)
      continue;
    return kiln_set_error(p->k, KILN_E_INVALID,
                          "stage %s needs a \"%s\" artifact, but no earlier step produced one; "
                          "run a pipeline that makes it first (e.g. `kiln build`)",
                          s->stage->name, s->stage->consumes[i]);
  }
  return KILN_OK;
}

/* SHA-256 over the stage identity, options, inputs and external identity. */
static kiln_err step_cache_key(struct kiln_pipeline *p, const struct kiln_step *s,
                               const cJSON *options, const struct kiln_stage_ctx *ctx,
                               char key[KILN_SHA256_HEX_LEN + 1])
{
  struct kiln_buf b = KILN_BUF_INIT;
  kiln_buf_printf(&b, "kiln-step-v1\n%s\n%s\n%s\n", s->stage->name, s->plugin->desc->name,
                  s->plugin->desc->version);
  kiln_json_canonical(options, &b);
  kiln_buf_putc(&b, '\n');
  const char *const *lists[2] = {s->stage->consumes, s->stage->accepts};
  for (int l = 0; l < 2; l++)
    for (size_t i = 0; lists[l] && lists[l][i]; i++) {
      const struct kiln_artifact *a = kiln_pipeline_output(p, lists[l][i]);
      kiln_buf_printf(&b, "%s=%s\n", lists[l][i], a ? a->digest : "-");
    }
  const char *const *reads = STAGE_FN(s->stage, config_reads);
  for (size_t i = 0; reads && reads[i]; i++) {
    kiln_buf_printf(&b, "config %s=", reads[i]);
    const cJSON *v = kiln_json_pointer(p->k->config, reads[i]);
    if (v)
      kiln_json_canonical(v, &b);
    kiln_buf_putc(&b, '\n');
  }
  /* The target architecture changes every stage's output; x86_64 (the default) adds nothing so
   * that keys made before /arch existed stay valid. */
  if (strcmp(kiln_arch(p->k), "x86_64") != 0)
    kiln_buf_printf(&b, "arch=%s\n", kiln_arch(p->k));
  kiln_buf_append(&b, ctx->identity.data ? ctx->identity.data : "", ctx->identity.len);
  if (kiln_buf_status(&b) || !b.data) { /* the appends above are checked here, once */
    kiln_buf_free(&b);
    return kiln_set_error(p->k, KILN_E_NOMEM, "out of memory");
  }
  kiln_sha256_hex(b.data, b.len, key);
  kiln_buf_free(&b);
  return KILN_OK;
}

/* Turn the stage's failure into the context's error message. */
static kiln_err stage_failed(struct kiln_stage_ctx *ctx, kiln_err rc, const char *what)
{
  struct kiln *k = ctx->k;
  if (kiln_cancelled() && ctx->err.msg) /* the stage says what it kept (e.g. a resumable upload) */
    return kiln_set_error(k, KILN_E_CANCELLED, "interrupted during stage %s: %s", ctx->stage->name,
                          ctx->err.msg);
  if (kiln_cancelled())
    return kiln_set_error(k, KILN_E_CANCELLED, "interrupted during stage %s; nothing was kept",
                          ctx->stage->name);
  if (ctx->err.msg)
    return kiln_set_error(k, rc ? rc : ctx->err.code, "%s: %s", ctx->stage->name, ctx->err.msg);
  return kiln_set_error(k, rc ? rc : KILN_E_PLUGIN,
                        "stage %s %s failed (%s) without saying why (plugin %s)", ctx->stage->name,
                        what, kiln_err_name(rc ? rc : KILN_E_PLUGIN), ctx->plugin->path);
}

static kiln_err run_identify(struct kiln_stage_ctx *ctx)
{
  kiln_stage_fn identify = STAGE_FN(ctx->stage, identify);
  if (!identify)
    return KILN_OK;
  enum kiln_stage_mode saved = ctx->mode;
  ctx->mode = KILN_MODE_IDENTIFY;
  kiln_err rc = identify(ctx, &kiln_host_services);
  ctx->mode = saved;
  return rc ? stage_failed(ctx, rc, "identify") : KILN_OK;
}

/* Load a cache hit's outputs; KILN_E_NOT_FOUND when any is missing from the store. */
static kiln_err load_hit(struct kiln_pipeline *p, const cJSON *outputs, cJSON *out_list)
{
  const cJSON *o;
  cJSON_ArrayForEach(o, outputs)
  {
    const cJSON *digest = cJSON_GetObjectItemCaseSensitive(o, "digest");
    struct kiln_stored_artifact *a = NULL;
    if (!cJSON_IsString(digest) || kiln_store_open(p->k, digest->valuestring, &a))
      return KILN_E_NOT_FOUND;
    cJSON_AddItemToArray(out_list, cJSON_CreateString(digest->valuestring));
    kiln_err rc = kiln_pipeline_push_artifact(p, a);
    if (rc)
      return rc;
  }
  return KILN_OK;
}

static cJSON *describe_output(const struct kiln_artifact *a)
{
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "kind", a->kind);
  cJSON_AddStringToObject(o, "digest", a->digest);
  cJSON_AddStringToObject(o, "path", a->path);
  cJSON_AddItemToObject(o, "meta", cJSON_Duplicate(a->meta, 1));
  return o;
}

static double seconds_since(const struct timespec *t0)
{
  struct timespec t1;
  clock_gettime(CLOCK_MONOTONIC, &t1);
  return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

/* Bytes this process has read and written through system calls so far (/proc/self/io: every
 * thread, page cache and O_DIRECT alike); 0 where the kernel does not tell. */
static void io_counters(uint64_t *read, uint64_t *written)
{
  *read = *written = 0;
  FILE *f = fopen("/proc/self/io", "r");
  if (!f)
    return;
  char name[32];
  unsigned long long v;
  while (fscanf(f, "%31[^:]: %llu\n", name, &v) == 2) {
    if (strcmp(name, "rchar") == 0)
      *read = v;
    else if (strcmp(name, "wchar") == 0)
      *written = v;
  }
  fclose(f);
}

static void human_bytes(uint64_t n, char *out, size_t size)
{
  if (n >= (1ull << 30))
    snprintf(out, size, "%.2f GiB", (double)n / (1ull << 30));
  else if (n >= (1ull << 20))
    snprintf(out, size, "%.1f MiB", (double)n / (1ull << 20));
  else
    snprintf(out, size, "%llu B", (unsigned long long)n);
}

/* -v: what a stage read and wrote, and what the store read to address its outputs. */
static void report_io(struct kiln_pipeline *p, struct kiln_stage_ctx *ctx, const uint64_t io[6],
                      cJSON *step_json)
{
  char r[32], w[32], s[32];
  uint64_t read = io[2] - io[0], written = io[3] - io[1], store = io[4] - io[2];
  size_t handed = 0;
  for (size_t i = 0; i < ctx->noutputs; i++)
    handed += ctx->outputs[i].nknown;
  human_bytes(read, r, sizeof r);
  human_bytes(written, w, sizeof w);
  human_bytes(store, s, sizeof s);
  kiln_log(p->k, KILN_LOG_DEBUG,
           "%s: read %s, wrote %s; the store read %s to address the outputs (%zu file "
           "digest(s) handed over)",
           ctx->stage->name, r, w, s, handed);
  cJSON *b = cJSON_AddObjectToObject(step_json, "bytes");
  cJSON_AddNumberToObject(b, "read", (double)read);
  cJSON_AddNumberToObject(b, "written", (double)written);
  cJSON_AddNumberToObject(b, "store_read", (double)store);
  cJSON_AddNumberToObject(b, "digests_handed_over", (double)handed);
}

/* Commit the outputs of a successful run; fills index (for the step cache). */
static kiln_err commit_outputs(struct kiln_pipeline *p, struct kiln_stage_ctx *ctx, cJSON *index)
{
  for (size_t i = 0; ctx->stage->produces && ctx->stage->produces[i]; i++) {
    int made = 0;
    for (size_t j = 0; j < ctx->noutputs; j++)
      made |= strcmp(ctx->outputs[j].kind, ctx->stage->produces[i]) == 0;
    if (!made)
      return kiln_set_error(p->k, KILN_E_PLUGIN,
                            "stage %s (plugin %s) declares a \"%s\" output but did not create it",
                            ctx->stage->name, ctx->plugin->path, ctx->stage->produces[i]);
  }
  for (size_t j = 0; j < ctx->noutputs; j++) {
    struct kiln_stage_output *o = &ctx->outputs[j];
    cJSON *meta = o->meta ? o->meta : cJSON_CreateObject();
    struct kiln_stored_artifact *a = NULL;
    kiln_err rc = kiln_store_commit(p->k, o->root, o->kind, meta, o->known, o->nknown, NULL, &a);
    if (meta != o->meta)
      cJSON_Delete(meta);
    if (rc)
      return rc;
    free(o->root); /* consumed by the commit */
    o->root = NULL;
    cJSON *entry = cJSON_CreateObject();
    cJSON_AddStringToObject(entry, "kind", a->pub.kind);
    cJSON_AddStringToObject(entry, "digest", a->pub.digest);
    cJSON_AddItemToArray(index, entry);
    if ((rc = kiln_pipeline_push_artifact(p, a)))
      return rc;
  }
  return KILN_OK;
}

static cJSON *lock_entry(const struct kiln_step *s, const char *key, const cJSON *resolved,
                         struct kiln_pipeline *p, size_t first_output)
{
  cJSON *e = cJSON_CreateObject();
  cJSON_AddStringToObject(e, "plugin", s->plugin->desc->name);
  cJSON_AddStringToObject(e, "plugin_version", s->plugin->desc->version);
  cJSON_AddStringToObject(e, "cache_key", key);
  cJSON *outs = cJSON_AddObjectToObject(e, "outputs");
  for (size_t i = first_output; i < p->nartifacts; i++)
    cJSON_AddStringToObject(outs, p->artifacts[i]->pub.kind, p->artifacts[i]->pub.digest);
  cJSON_AddItemToObject(e, "resolved",
                        resolved ? cJSON_Duplicate(resolved, 1) : cJSON_CreateObject());
  return e;
}

static kiln_err run_step(struct kiln_pipeline *p, struct kiln_lock *lock, size_t index,
                         cJSON *steps_json, int *inputs_known)
{
  (void)inputs_known;
  struct kiln *k = p->k;
  const struct kiln_step *s = &p->steps[index];
  struct kiln_stage_ctx ctx;
  cJSON *options = NULL, *cached_outputs = NULL, *cached_resolved = NULL;
  cJSON *index_outputs = cJSON_CreateArray();
  cJSON *step_json = cJSON_CreateObject();
  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  size_t first_output = p->nartifacts;
  char key[KILN_SHA256_HEX_LEN + 1];
  int cached = 0;
  uint64_t io[6] = {0}; /* read/written: before run, after run, after commit */

  kiln_err rc = kiln_stage_ctx_init(&ctx, k, s->stage, s->plugin, KILN_MODE_RUN);
  rc = rc ? rc : step_options(p, s, &options);
  rc = rc ? rc : check_inputs(p, s, 0);
  if (rc)
    goto out;
  ctx.options = options;
  ctx.inputs = p->artifacts;
  ctx.ninputs = p->nartifacts;
  const cJSON *prev = kiln_lock_stage(lock, s->stage->name);
  ctx.lock_prev = cJSON_GetObjectItemCaseSensitive(prev, "resolved");
  if ((rc = run_identify(&ctx)) || (rc = step_cache_key(p, s, options, &ctx, key)))
    goto out;

  int cacheable = !(STAGE_FLAGS(s->stage) & KILN_STAGE_NO_CACHE);
  if (cacheable && !k->no_cache &&
      kiln_store_index_get(k, key, &cached_outputs, &cached_resolved) == KILN_OK) {
    cJSON *digests = cJSON_CreateArray();
    kiln_err hit = load_hit(p, cached_outputs, digests);
    cJSON_Delete(digests);
    if (hit == KILN_OK) {
      cached = 1;
      kiln_log(k, KILN_LOG_INFO, "%s: cached (step key %.12s)", s->stage->name, key);
      /* Keep the values recorded by the run that made these outputs. */
      ctx.lock_resolved = cached_resolved;
      cached_resolved = NULL;
    } else {
      while (p->nartifacts > first_output)
        kiln_stored_artifact_free(p->artifacts[--p->nartifacts]);
    }
  }
  if (!cached) {
    if (kiln_cancelled()) {
      rc = kiln_set_error(k, KILN_E_CANCELLED, "interrupted before stage %s", s->stage->name);
      goto out;
    }
    kiln_log(k, KILN_LOG_DEBUG, "%s: running (step key %.12s)", s->stage->name, key);
    io_counters(&io[0], &io[1]);
    rc = s->stage->run(&ctx, &kiln_host_services);
    io_counters(&io[2], &io[3]);
    kiln_progress_clear(k);
    if (!rc && ctx.contract_violation)
      rc = KILN_E_PLUGIN;
    if (!rc && kiln_cancelled())
      rc = KILN_E_CANCELLED;
    if (rc) {
      stage_failed(&ctx, rc, "run");
      goto out;
    }
    if ((rc = commit_outputs(p, &ctx, index_outputs)))
      goto out;
    io_counters(&io[4], &io[5]);
    report_io(p, &ctx, io, step_json);
    if (cacheable && kiln_store_index_put(k, key, index_outputs, ctx.lock_resolved) != KILN_OK)
      kiln_log(k, KILN_LOG_DEBUG, "step cache not written (%s): only a miss next time",
               kiln_errmsg(k));
  }
  rc = kiln_lock_set_stage(lock, s->stage->name,
                           lock_entry(s, key, ctx.lock_resolved, p, first_output));
  cJSON_AddStringToObject(step_json, "stage", s->stage->name);
  cJSON_AddBoolToObject(step_json, "cached", cached);
  cJSON_AddNumberToObject(step_json, "seconds", seconds_since(&t0));
  cJSON *outs = cJSON_AddArrayToObject(step_json, "outputs");
  for (size_t i = first_output; i < p->nartifacts; i++)
    cJSON_AddItemToArray(outs, describe_output(&p->artifacts[i]->pub));
  cJSON_AddItemToArray(steps_json, step_json);
  step_json = NULL;
out:
  cJSON_Delete(cached_resolved);
  cJSON_Delete(step_json);
  cJSON_Delete(options);
  cJSON_Delete(cached_outputs);
  cJSON_Delete(index_outputs);
  kiln_stage_ctx_release(&ctx);
  return rc;
}

/* Plan one step: cache status (when earlier outputs are known) and the stage's planned actions. */
static kiln_err plan_step(struct kiln_pipeline *p, struct kiln_lock *lock, size_t index,
                          cJSON *steps_json, int *inputs_known)
{
  struct kiln *k = p->k;
  const struct kiln_step *s = &p->steps[index];
  struct kiln_stage_ctx ctx;
  cJSON *options = NULL;
  kiln_err rc = kiln_stage_ctx_init(&ctx, k, s->stage, s->plugin, KILN_MODE_PLAN);
  rc = rc ? rc : step_options(p, s, &options);
  rc = rc ? rc : check_inputs(p, s, !*inputs_known);
  if (rc)
    goto out;
  ctx.options = options;
  ctx.inputs = p->artifacts;
  ctx.ninputs = p->nartifacts;
  ctx.lock_prev =
      cJSON_GetObjectItemCaseSensitive(kiln_lock_stage(lock, s->stage->name), "resolved");
  cJSON *step = cJSON_CreateObject();
  cJSON_AddItemToArray(steps_json, step);
  cJSON_AddStringToObject(step, "stage", s->stage->name);
  int cacheable = !(STAGE_FLAGS(s->stage) & KILN_STAGE_NO_CACHE);
  const char *status = "run";
  char key[KILN_SHA256_HEX_LEN + 1];
  size_t before = p->nartifacts;
  if (*inputs_known && cacheable && !(rc = run_identify(&ctx)) &&
      !(rc = step_cache_key(p, s, options, &ctx, key))) {
    cJSON *outs = NULL, *digests = cJSON_CreateArray();
    if (!k->no_cache && kiln_store_index_get(k, key, &outs, NULL) == KILN_OK &&
        load_hit(p, outs, digests) == KILN_OK)
      status = "cached";
    cJSON_Delete(outs);
    cJSON_Delete(digests);
  }
  if (strcmp(status, "cached") != 0) {
    while (p->nartifacts > before)
      kiln_stored_artifact_free(p->artifacts[--p->nartifacts]);
    *inputs_known = 0; /* later steps cannot know this step's outputs yet */
  }
  cJSON_AddStringToObject(step, "status", status);
  kiln_stage_fn plan = STAGE_FN(s->stage, plan);
  if (!rc && plan && (rc = plan(&ctx, &kiln_host_services)))
    stage_failed(&ctx, rc, "plan");
  cJSON_AddItemToObject(step, "actions", ctx.plan);
  ctx.plan = NULL;
out:
  cJSON_Delete(options);
  kiln_stage_ctx_release(&ctx);
  return rc;
}

/* Undo one step (teardown): only stages with an undo callback take part. */
static kiln_err undo_step(struct kiln_pipeline *p, struct kiln_lock *lock, size_t index,
                          cJSON *steps_json, int *inputs_known)
{
  (void)lock;
  (void)inputs_known;
  const struct kiln_step *s = &p->steps[index];
  kiln_stage_fn undo = STAGE_FN(s->stage, undo);
  if (!undo)
    return KILN_OK;
  struct kiln_stage_ctx ctx;
  cJSON *options = NULL;
  kiln_err rc = kiln_stage_ctx_init(&ctx, p->k, s->stage, s->plugin, KILN_MODE_UNDO);
  rc = rc ? rc : step_options(p, s, &options);
  if (!rc) {
    ctx.options = options;
    ctx.inputs = p->artifacts;
    ctx.ninputs = p->nartifacts;
    if ((rc = undo(&ctx, &kiln_host_services)))
      stage_failed(&ctx, rc, "undo");
  }
  if (!rc) {
    cJSON *step = cJSON_CreateObject();
    cJSON_AddStringToObject(step, "stage", s->stage->name);
    cJSON_AddStringToObject(step, "status", "undone");
    cJSON_AddItemToArray(steps_json, step);
  }
  cJSON_Delete(options);
  kiln_stage_ctx_release(&ctx);
  return rc;
}

typedef kiln_err (*step_fn)(struct kiln_pipeline *p, struct kiln_lock *lock, size_t index,
                            cJSON *steps_json, int *inputs_known);

/* Walk the steps (in reverse for undo) with the store and the lock ready; *result lists them. */
static kiln_err walk_steps(struct kiln_pipeline *p, step_fn fn, int reverse, int write_lock,
                           cJSON **result)
{
  *result = NULL;
  struct kiln *k = p->k;
  struct kiln_lock *lock = NULL;
  kiln_err rc = kiln_store_prepare(k);
  rc = rc ? rc : kiln_lock_open(k, &lock);
  if (rc)
    return rc;
  cJSON *doc = cJSON_CreateObject();
  cJSON *steps = cJSON_AddArrayToObject(doc, "steps");
  int inputs_known = 1;
  for (size_t i = 0; i < p->nsteps && !rc; i++)
    rc = fn(p, lock, reverse ? p->nsteps - 1 - i : i, steps, &inputs_known);
  if (!rc && write_lock && k->config_path)
    rc = kiln_lock_write(k, lock);
  kiln_lock_free(lock);
  if (rc) {
    cJSON_Delete(doc);
    return rc;
  }
  *result = doc;
  return KILN_OK;
}

kiln_err kiln_pipeline_run(struct kiln_pipeline *p, cJSON **result)
{
  return walk_steps(p, run_step, 0, 1, result);
}

kiln_err kiln_pipeline_plan(struct kiln_pipeline *p, cJSON **result)
{
  return walk_steps(p, plan_step, 0, 0, result);
}

kiln_err kiln_pipeline_undo(struct kiln_pipeline *p, cJSON **result)
{
  return walk_steps(p, undo_step, 1, 0, result);
}
