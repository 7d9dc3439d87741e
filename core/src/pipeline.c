/* Pipelines: steps from a command's stage list plus kiln.json /steps, options merged and
 * validated, then run in order with the step cache, the artifact store and kiln.lock. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "stage_ctx.h"
#include "util/fs.h"
#include "util/hash.h"
#include "util/json.h"

struct kiln_step {
  const struct kiln_stage *stage;
  const struct kiln_loaded_plugin *plugin;
  cJSON *options; /* merged, not yet validated */
  char *origin;   /* where the options come from, for messages: "kiln.json /image" */
};

struct kiln_pipeline {
  struct kiln *k;
  struct kiln_step *steps;
  size_t nsteps;
  struct kiln_stored_artifact **artifacts; /* pipeline inputs and outputs so far, newest last */
  size_t nartifacts;
};

static int has_field(const struct kiln_stage *s, size_t offset, size_t size)
{
  return s->struct_size >= offset + size;
}
#define STAGE_FN(s, field)                                                                         \
  (has_field((s), offsetof(struct kiln_stage, field), sizeof((s)->field)) ? (s)->field : NULL)
#define STAGE_FLAGS(s)                                                                             \
  (has_field((s), offsetof(struct kiln_stage, flags), sizeof((s)->flags)) ? (s)->flags : 0u)

static kiln_err add_step(struct kiln_pipeline *p, size_t at, const char *name, cJSON *options,
                         const char *origin)
{
  struct kiln *k = p->k;
  const struct kiln_stage *stage = kiln_stage_find(k, name);
  if (!stage) {
    struct kiln_buf names = KILN_BUF_INIT;
    for (size_t i = 0; i < k->nplugins; i++)
      for (const struct kiln_stage *const *s = k->plugins[i].desc->stages; *s; s++) {
        if (names.len)
          kiln_buf_puts(&names, ", ");
        kiln_buf_puts(&names, (*s)->name);
      }
    kiln_err rc = kiln_set_error(k, KILN_E_NOT_FOUND,
                                 "%s: unknown stage \"%s\" (loaded stages: %s); `kiln plugins` "
                                 "lists them, --plugin-path adds more",
                                 origin, name, names.len ? kiln_buf_str(&names) : "none");
    kiln_buf_free(&names);
    cJSON_Delete(options);
    return rc;
  }
  struct kiln_step *n = realloc(p->steps, (p->nsteps + 1) * sizeof *n);
  if (!n) {
    cJSON_Delete(options);
    return kiln_set_error(k, KILN_E_NOMEM, "out of memory");
  }
  p->steps = n;
  memmove(&p->steps[at + 1], &p->steps[at], (p->nsteps - at) * sizeof *n);
  p->steps[at] = (struct kiln_step){stage, kiln_stage_plugin(k, name), options, strdup(origin)};
  p->nsteps++;
  return KILN_OK;
}

/* The options object of a stage's kiln.json section, with the "source" shorthand only for
 * stages whose schema has a source option. */
static cJSON *section_options(struct kiln *k, const struct kiln_stage *stage)
{
  const cJSON *section = cJSON_GetObjectItemCaseSensitive(k->config, stage->name);
  if (cJSON_IsString(section)) {
    cJSON *schema = stage->options_schema ? cJSON_Parse(stage->options_schema) : NULL;
    int has_source = cJSON_GetObjectItemCaseSensitive(
                         cJSON_GetObjectItemCaseSensitive(schema, "properties"), "source") != NULL;
    cJSON_Delete(schema);
    if (!has_source)
      return cJSON_CreateObject();
  }
  return kiln_config_stage_section(k, stage);
}

kiln_err kiln_pipeline_new(struct kiln *k, const char *const *stages, struct kiln_pipeline **out)
{
  *out = NULL;
  struct kiln_pipeline *p = calloc(1, sizeof *p);
  if (!p)
    return kiln_set_error(k, KILN_E_NOMEM, "out of memory");
  p->k = k;
  kiln_err rc = KILN_OK;
  for (size_t i = 0; stages && stages[i] && !rc; i++) {
    const struct kiln_stage *stage = kiln_stage_find(k, stages[i]);
    rc = add_step(p, p->nsteps, stages[i], stage ? section_options(k, stage) : NULL, "pipeline");
  }
  const cJSON *extra = cJSON_GetObjectItemCaseSensitive(k->config, "steps");
  int idx = 0;
  const cJSON *item;
  cJSON_ArrayForEach(item, extra)
  {
    if (rc)
      break;
    const char *name = cJSON_GetObjectItemCaseSensitive(item, "stage")->valuestring;
    const cJSON *after = cJSON_GetObjectItemCaseSensitive(item, "after");
    const cJSON *opts = cJSON_GetObjectItemCaseSensitive(item, "options");
    char origin[160];
    snprintf(origin, sizeof origin, "%s: /steps/%d", k->config_path, idx++);
    size_t at = p->nsteps;
    if (cJSON_IsString(after)) {
      size_t found = SIZE_MAX;
      for (size_t i = 0; i < p->nsteps; i++)
        if (strcmp(p->steps[i].stage->name, after->valuestring) == 0)
          found = i;
      if (found == SIZE_MAX)
        continue; /* this command's pipeline does not run that stage */
      at = found + 1;
    }
    const struct kiln_stage *stage = kiln_stage_find(k, name);
    cJSON *options = stage ? section_options(k, stage) : NULL;
    const cJSON *o;
    cJSON_ArrayForEach(o, opts)
    {
      cJSON_DeleteItemFromObjectCaseSensitive(options, o->string);
      cJSON_AddItemToObject(options, o->string, cJSON_Duplicate(o, 1));
    }
    rc = add_step(p, at, name, options, origin);
  }
  if (rc) {
    kiln_pipeline_free(p);
    return rc;
  }
  *out = p;
  return KILN_OK;
}

void kiln_pipeline_free(struct kiln_pipeline *p)
{
  if (!p)
    return;
  for (size_t i = 0; i < p->nsteps; i++) {
    cJSON_Delete(p->steps[i].options);
    free(p->steps[i].origin);
  }
  free(p->steps);
  for (size_t i = 0; i < p->nartifacts; i++)
    kiln_stored_artifact_free(p->artifacts[i]);
  free(p->artifacts);
  free(p);
}

kiln_err kiln_pipeline_set(struct kiln_pipeline *p, const char *stage, const char *key,
                           const char *value)
{
  struct kiln *k = p->k;
  int matched = 0;
  for (size_t i = 0; i < p->nsteps; i++) {
    if (stage && strcmp(p->steps[i].stage->name, stage) != 0)
      continue;
    matched = 1;
    cJSON *parsed = cJSON_Parse(value);
    cJSON *v = parsed ? parsed : cJSON_CreateString(value);
    cJSON *obj = p->steps[i].options;
    char *path = strdup(key);
    if (!path || !v) {
      free(path);
      cJSON_Delete(v);
      return kiln_set_error(k, KILN_E_NOMEM, "out of memory");
    }
    char *save = NULL, *part = strtok_r(path, ".", &save);
    while (part) {
      char *next = strtok_r(NULL, ".", &save);
      if (!next) {
        cJSON_DeleteItemFromObjectCaseSensitive(obj, part);
        cJSON_AddItemToObject(obj, part, v);
        v = NULL;
        break;
      }
      cJSON *child = cJSON_GetObjectItemCaseSensitive(obj, part);
      if (!cJSON_IsObject(child)) {
        cJSON_DeleteItemFromObjectCaseSensitive(obj, part);
        child = cJSON_AddObjectToObject(obj, part);
      }
      obj = child;
      part = next;
    }
    cJSON_Delete(v);
    free(path);
    if (!part)
      return kiln_set_error(k, KILN_E_INVALID, "--set %s: the option name is empty", key);
    free(p->steps[i].origin);
    p->steps[i].origin = strdup("--set");
  }
  if (!matched)
    return kiln_set_error(k, KILN_E_INVALID, "--set: this pipeline has no stage \"%s\"",
                          stage ? stage : "");
  return KILN_OK;
}

static kiln_err push_artifact(struct kiln_pipeline *p, struct kiln_stored_artifact *a)
{
  struct kiln_stored_artifact **n = realloc(p->artifacts, (p->nartifacts + 1) * sizeof *n);
  if (!n) {
    kiln_stored_artifact_free(a);
    return kiln_set_error(p->k, KILN_E_NOMEM, "out of memory");
  }
  p->artifacts = n;
  p->artifacts[p->nartifacts++] = a;
  return KILN_OK;
}

kiln_err kiln_pipeline_add_input(struct kiln_pipeline *p, const char *kind,
                                 const char *const *files, cJSON *meta)
{
  struct kiln *k = p->k;
  char *root = NULL;
  kiln_err rc = kiln_store_prepare(k);
  rc = rc ? rc : kiln_store_tmpdir(k, "input", &root);
  if (rc) {
    cJSON_Delete(meta);
    return rc;
  }
  struct kiln_error e = KILN_ERROR_INIT;
  char *dir = kiln_path_join(root, "files");
  rc = dir ? kiln_mkdir_p(dir, 0755, &e) : KILN_E_NOMEM;
  for (size_t i = 0; !rc && files && files[i] && files[i + 1]; i += 2) {
    char *dest = kiln_path_join(dir, files[i]);
    rc = dest ? kiln_copy_file(files[i + 1], dest, &e) : KILN_E_NOMEM;
    free(dest);
  }
  if (rc) {
    kiln_take_error(k, &e);
  } else {
    struct kiln_stored_artifact *a = NULL;
    cJSON *m = meta ? meta : cJSON_CreateObject();
    meta = NULL;
    rc = kiln_store_commit(k, root, kind, m, &a);
    cJSON_Delete(m);
    rc = rc ? rc : push_artifact(p, a);
  }
  if (rc)
    kiln_rm_rf(root, &e);
  kiln_error_clear(&e);
  cJSON_Delete(meta);
  free(dir);
  free(root);
  return rc;
}

const struct kiln_artifact *kiln_pipeline_output(const struct kiln_pipeline *p, const char *kind)
{
  for (size_t i = p->nartifacts; i > 0; i--)
    if (strcmp(p->artifacts[i - 1]->pub.kind, kind) == 0)
      return &p->artifacts[i - 1]->pub;
  return NULL;
}

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
  kiln_buf_append(&b, ctx->identity.data ? ctx->identity.data : "", ctx->identity.len);
  if (!b.data) {
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
    kiln_err rc = push_artifact(p, a);
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
    kiln_err rc = kiln_store_commit(p->k, o->root, o->kind, meta, &a);
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
    if ((rc = push_artifact(p, a)))
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
                         cJSON *steps_json)
{
  struct kiln *k = p->k;
  const struct kiln_step *s = &p->steps[index];
  struct kiln_stage_ctx ctx;
  cJSON *options = NULL, *cached_outputs = NULL, *index_outputs = cJSON_CreateArray();
  cJSON *step_json = cJSON_CreateObject();
  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  size_t first_output = p->nartifacts;
  char key[KILN_SHA256_HEX_LEN + 1];
  int cached = 0;

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
  if (cacheable && !k->no_cache && kiln_store_index_get(k, key, &cached_outputs) == KILN_OK) {
    cJSON *digests = cJSON_CreateArray();
    kiln_err hit = load_hit(p, cached_outputs, digests);
    cJSON_Delete(digests);
    if (hit == KILN_OK) {
      cached = 1;
      kiln_log(k, KILN_LOG_INFO, "%s: cached (step key %.12s)", s->stage->name, key);
      /* Keep the resolved values of the run that made these outputs. */
      const cJSON *prev_key = cJSON_GetObjectItemCaseSensitive(prev, "cache_key");
      if (cJSON_IsString(prev_key) && strcmp(prev_key->valuestring, key) == 0 && ctx.lock_prev)
        ctx.lock_resolved = cJSON_Duplicate(ctx.lock_prev, 1);
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
    rc = s->stage->run(&ctx, &kiln_host_services);
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
    if (cacheable)
      kiln_store_index_put(k, key, index_outputs); /* a cache that cannot be written is a miss */
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
  cJSON_Delete(step_json);
  cJSON_Delete(options);
  cJSON_Delete(cached_outputs);
  cJSON_Delete(index_outputs);
  kiln_stage_ctx_release(&ctx);
  return rc;
}

kiln_err kiln_pipeline_run(struct kiln_pipeline *p, cJSON **result)
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
  for (size_t i = 0; i < p->nsteps && !rc; i++)
    rc = run_step(p, lock, i, steps);
  if (!rc && k->config_path)
    rc = kiln_lock_write(k, lock);
  kiln_lock_free(lock);
  if (rc) {
    cJSON_Delete(doc);
    return rc;
  }
  *result = doc;
  return KILN_OK;
}

kiln_err kiln_pipeline_plan(struct kiln_pipeline *p, cJSON **result)
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
  for (size_t i = 0; i < p->nsteps && !rc; i++) {
    const struct kiln_step *s = &p->steps[i];
    struct kiln_stage_ctx ctx;
    cJSON *options = NULL;
    rc = kiln_stage_ctx_init(&ctx, k, s->stage, s->plugin, KILN_MODE_PLAN);
    rc = rc ? rc : step_options(p, s, &options);
    rc = rc ? rc : check_inputs(p, s, !inputs_known);
    if (rc) {
      cJSON_Delete(options);
      kiln_stage_ctx_release(&ctx);
      break;
    }
    ctx.options = options;
    ctx.inputs = p->artifacts;
    ctx.ninputs = p->nartifacts;
    ctx.lock_prev =
        cJSON_GetObjectItemCaseSensitive(kiln_lock_stage(lock, s->stage->name), "resolved");
    cJSON *step = cJSON_CreateObject();
    cJSON_AddItemToArray(steps, step);
    cJSON_AddStringToObject(step, "stage", s->stage->name);
    int cacheable = !(STAGE_FLAGS(s->stage) & KILN_STAGE_NO_CACHE);
    const char *status = "run";
    char key[KILN_SHA256_HEX_LEN + 1];
    size_t before = p->nartifacts;
    if (inputs_known && cacheable && !(rc = run_identify(&ctx)) &&
        !(rc = step_cache_key(p, s, options, &ctx, key))) {
      cJSON *outs = NULL, *digests = cJSON_CreateArray();
      if (!k->no_cache && kiln_store_index_get(k, key, &outs) == KILN_OK &&
          load_hit(p, outs, digests) == KILN_OK)
        status = "cached";
      cJSON_Delete(outs);
      cJSON_Delete(digests);
    }
    if (strcmp(status, "cached") != 0) {
      while (p->nartifacts > before)
        kiln_stored_artifact_free(p->artifacts[--p->nartifacts]);
      if (cacheable || s->stage->produces)
        inputs_known = 0;
    }
    cJSON_AddStringToObject(step, "status", status);
    kiln_stage_fn plan = STAGE_FN(s->stage, plan);
    if (!rc && plan) {
      rc = plan(&ctx, &kiln_host_services);
      if (rc)
        stage_failed(&ctx, rc, "plan");
    }
    cJSON_AddItemToObject(step, "actions", ctx.plan);
    ctx.plan = NULL;
    cJSON_Delete(options);
    kiln_stage_ctx_release(&ctx);
  }
  kiln_lock_free(lock);
  if (rc) {
    cJSON_Delete(doc);
    return rc;
  }
  *result = doc;
  return KILN_OK;
}

kiln_err kiln_pipeline_undo(struct kiln_pipeline *p, cJSON **result)
{
  *result = NULL;
  struct kiln *k = p->k;
  kiln_err rc = kiln_store_prepare(k);
  if (rc)
    return rc;
  cJSON *doc = cJSON_CreateObject();
  cJSON *steps = cJSON_AddArrayToObject(doc, "steps");
  for (size_t i = p->nsteps; i > 0 && !rc; i--) {
    const struct kiln_step *s = &p->steps[i - 1];
    kiln_stage_fn undo = STAGE_FN(s->stage, undo);
    if (!undo)
      continue;
    struct kiln_stage_ctx ctx;
    cJSON *options = NULL;
    rc = kiln_stage_ctx_init(&ctx, k, s->stage, s->plugin, KILN_MODE_UNDO);
    rc = rc ? rc : step_options(p, s, &options);
    if (!rc) {
      ctx.options = options;
      ctx.inputs = p->artifacts;
      ctx.ninputs = p->nartifacts;
      rc = undo(&ctx, &kiln_host_services);
      if (rc)
        stage_failed(&ctx, rc, "undo");
    }
    if (!rc) {
      cJSON *step = cJSON_CreateObject();
      cJSON_AddStringToObject(step, "stage", s->stage->name);
      cJSON_AddStringToObject(step, "status", "undone");
      cJSON_AddItemToArray(steps, step);
    }
    cJSON_Delete(options);
    kiln_stage_ctx_release(&ctx);
  }
  if (rc) {
    cJSON_Delete(doc);
    return rc;
  }
  *result = doc;
  return KILN_OK;
}

kiln_err kiln_artifact_export(struct kiln *k, const struct kiln_artifact *a, const char *name,
                              const char *dest)
{
  char *src = kiln_path_join(a->path, name);
  if (!src)
    return kiln_set_error(k, KILN_E_NOMEM, "out of memory");
  struct kiln_error e = KILN_ERROR_INIT;
  kiln_err rc = KILN_OK;
  if (!kiln_path_exists(src)) {
    rc = kiln_set_error(k, KILN_E_NOT_FOUND, "artifact %s has no file %s", a->digest, name);
  } else if (!kiln_same_file(src, dest)) {
    rc = kiln_link_or_copy(src, dest, &e);
    if (rc)
      kiln_set_error(k, rc, "cannot write %s: %s", dest, kiln_error_msg(&e));
  }
  kiln_error_clear(&e);
  free(src);
  return rc;
}
