/* The host services vtable handed to stage callbacks (struct kiln_host in kiln/plugin.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stage_ctx.h"
#include "util/fs.h"

static int kind_listed(const char *const *list, const char *kind)
{
  for (size_t i = 0; list && list[i]; i++)
    if (strcmp(list[i], kind) == 0)
      return 1;
  return 0;
}

static void host_log(struct kiln_stage_ctx *ctx, enum kiln_log_level level, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  kiln_vlog(ctx->k, level, ctx->log_prefix, fmt, ap);
  va_end(ap);
}

static void host_progress(struct kiln_stage_ctx *ctx, uint64_t done, uint64_t total,
                          const char *label)
{
  kiln_progress_draw(ctx->k, ctx->log_prefix, done, total, label);
}

static const cJSON *host_options(struct kiln_stage_ctx *ctx)
{
  return ctx->options;
}
static const cJSON *host_config(struct kiln_stage_ctx *ctx)
{
  return ctx->k->config;
}
static const char *host_app_dir(struct kiln_stage_ctx *ctx)
{
  return ctx->k->app_dir;
}

static const struct kiln_artifact *host_input(struct kiln_stage_ctx *ctx, const char *kind)
{
  if (!kind)
    return NULL;
  for (size_t i = ctx->ninputs; i > 0; i--)
    if (strcmp(ctx->inputs[i - 1]->pub.kind, kind) == 0)
      return &ctx->inputs[i - 1]->pub;
  return NULL;
}

static kiln_err host_fail(struct kiln_stage_ctx *ctx, kiln_err code, const char *fmt, ...)
{
  struct kiln_buf b = KILN_BUF_INIT;
  va_list ap;
  va_start(ap, fmt);
  kiln_buf_vprintf(&b, fmt, ap);
  va_end(ap);
  kiln_error_set(&ctx->err, code ? code : KILN_E_INTERNAL, "%s", kiln_buf_str(&b));
  kiln_buf_free(&b);
  return code;
}

static kiln_err host_output(struct kiln_stage_ctx *ctx, const char *kind, const char **dir)
{
  *dir = NULL;
  if (ctx->mode != KILN_MODE_RUN)
    return host_fail(ctx, KILN_E_PLUGIN, "stage %s asked for an output outside run()",
                     ctx->stage->name);
  if (!kind || !kind_listed(ctx->stage->produces, kind)) {
    ctx->contract_violation = 1;
    return host_fail(ctx, KILN_E_PLUGIN,
                     "stage %s (plugin %s) tried to produce a \"%s\" artifact, which it does not "
                     "declare; the plugin is broken: report it to its author",
                     ctx->stage->name, ctx->plugin->path, kind ? kind : "(null)");
  }
  for (size_t i = 0; i < ctx->noutputs; i++)
    if (strcmp(ctx->outputs[i].kind, kind) == 0) {
      *dir = ctx->outputs[i].files;
      return KILN_OK;
    }
  struct kiln_stage_output *n = realloc(ctx->outputs, (ctx->noutputs + 1) * sizeof *n);
  if (!n)
    return host_fail(ctx, KILN_E_NOMEM, "out of memory");
  ctx->outputs = n;
  struct kiln_stage_output *o = &ctx->outputs[ctx->noutputs];
  memset(o, 0, sizeof *o);
  char what[80];
  snprintf(what, sizeof what, "out-%s", kind);
  if (kiln_store_tmpdir(ctx->k, what, &o->root))
    return host_fail(ctx, KILN_E_IO, "%s", kiln_errmsg(ctx->k));
  ctx->noutputs++;
  o->kind = strdup(kind);
  o->files = kiln_path_join(o->root, "files");
  struct kiln_error e = KILN_ERROR_INIT;
  if (!o->kind || !o->files || kiln_mkdir_p(o->files, 0755, &e)) {
    kiln_err rc = host_fail(ctx, KILN_E_IO, "%s", kiln_error_msg(&e));
    kiln_error_clear(&e);
    return rc;
  }
  *dir = o->files;
  return KILN_OK;
}

static kiln_err host_output_digest(struct kiln_stage_ctx *ctx, const char *kind, const char *file,
                                   const char *sha256_hex, uint64_t size)
{
  struct kiln_stage_output *o = NULL;
  for (size_t i = 0; i < ctx->noutputs && !o; i++)
    if (kind && strcmp(ctx->outputs[i].kind, kind) == 0)
      o = &ctx->outputs[i];
  int hex_ok = sha256_hex && strlen(sha256_hex) == KILN_SHA256_HEX_LEN &&
               strspn(sha256_hex, "0123456789abcdef") == KILN_SHA256_HEX_LEN;
  if (!o || !file || !*file || file[0] == '/' || strstr(file, "..") || !hex_ok) {
    ctx->contract_violation = 1;
    return host_fail(ctx, KILN_E_PLUGIN,
                     "stage %s handed over a digest for %s/%s that the host cannot take (create "
                     "the output first; a relative file name; 64 lowercase hex digits)",
                     ctx->stage->name, kind ? kind : "(null)", file ? file : "(null)");
  }
  struct kiln_known_digest *n = realloc(o->known, (o->nknown + 1) * sizeof *n);
  if (!n)
    return host_fail(ctx, KILN_E_NOMEM, "out of memory");
  o->known = n;
  if (!(n[o->nknown].name = strdup(file)))
    return host_fail(ctx, KILN_E_NOMEM, "out of memory");
  n[o->nknown].size = size;
  memcpy(n[o->nknown].sha256, sha256_hex, KILN_SHA256_HEX_LEN + 1);
  o->nknown++;
  return KILN_OK;
}

static kiln_err host_output_meta(struct kiln_stage_ctx *ctx, const char *kind, cJSON *meta)
{
  for (size_t i = 0; i < ctx->noutputs; i++)
    if (kind && strcmp(ctx->outputs[i].kind, kind) == 0) {
      if (!cJSON_IsObject(meta)) {
        cJSON_Delete(meta);
        ctx->contract_violation = 1;
        return host_fail(ctx, KILN_E_PLUGIN, "stage %s: metadata of %s must be a JSON object",
                         ctx->stage->name, kind);
      }
      cJSON_Delete(ctx->outputs[i].meta);
      ctx->outputs[i].meta = meta;
      return KILN_OK;
    }
  cJSON_Delete(meta);
  ctx->contract_violation = 1;
  return host_fail(ctx, KILN_E_PLUGIN, "stage %s set metadata for \"%s\" before creating it",
                   ctx->stage->name, kind ? kind : "(null)");
}

static const char *host_temp_dir(struct kiln_stage_ctx *ctx)
{
  if (!ctx->temp_dir && kiln_store_tmpdir(ctx->k, ctx->stage->name, &ctx->temp_dir))
    return NULL;
  return ctx->temp_dir;
}

static const char *host_state_dir(struct kiln_stage_ctx *ctx)
{
  if (!ctx->state_dir) {
    struct kiln_buf p = KILN_BUF_INIT;
    struct kiln_error e = KILN_ERROR_INIT;
    kiln_buf_printf(&p, "%s/state/%s", ctx->k->cache_dir, ctx->stage->name);
    if (kiln_mkdir_p(kiln_buf_str(&p), 0700, &e)) {
      kiln_error_clear(&e);
      kiln_buf_free(&p);
      return NULL;
    }
    ctx->state_dir = kiln_buf_detach(&p);
  }
  return ctx->state_dir;
}

static int host_cancelled(struct kiln_stage_ctx *ctx)
{
  (void)ctx;
  return kiln_cancelled();
}

static void host_redact(struct kiln_stage_ctx *ctx, const char *secret)
{
  kiln_secret_add(ctx->k, secret);
}

static const cJSON *host_lock_get(struct kiln_stage_ctx *ctx, const char *key)
{
  return ctx->lock_prev ? cJSON_GetObjectItemCaseSensitive(ctx->lock_prev, key) : NULL;
}

static kiln_err host_lock_set(struct kiln_stage_ctx *ctx, const char *key, cJSON *value)
{
  if (!ctx->lock_resolved && !(ctx->lock_resolved = cJSON_CreateObject())) {
    cJSON_Delete(value);
    return host_fail(ctx, KILN_E_NOMEM, "out of memory");
  }
  cJSON_DeleteItemFromObjectCaseSensitive(ctx->lock_resolved, key);
  if (!value || !cJSON_AddItemToObject(ctx->lock_resolved, key, value)) {
    cJSON_Delete(value);
    return host_fail(ctx, KILN_E_NOMEM, "out of memory");
  }
  return KILN_OK;
}

static kiln_err host_plan_action(struct kiln_stage_ctx *ctx, const char *action,
                                 const char *resource, const char *detail)
{
  if (ctx->mode != KILN_MODE_PLAN || !ctx->plan)
    return KILN_OK;
  cJSON *a = cJSON_CreateObject();
  cJSON_AddStringToObject(a, "action", action ? action : "call");
  cJSON_AddStringToObject(a, "resource", resource ? resource : "");
  if (detail) {
    char *clean = kiln_redact(ctx->k, detail);
    cJSON_AddStringToObject(a, "detail", clean ? clean : "");
    free(clean);
  }
  cJSON_AddItemToArray(ctx->plan, a);
  return KILN_OK;
}

static kiln_err host_cache_key_add(struct kiln_stage_ctx *ctx, const char *text)
{
  kiln_buf_puts(&ctx->identity, text ? text : "");
  return kiln_buf_putc(&ctx->identity, '\n');
}

static const char *host_share_dir(struct kiln_stage_ctx *ctx)
{
  return ctx->k->share_dir;
}
static const char *host_lib_dir(struct kiln_stage_ctx *ctx)
{
  return ctx->k->lib_dir;
}

const struct kiln_host kiln_host_services = {
    .abi_version = KILN_ABI_VERSION,
    .struct_size = sizeof(struct kiln_host),
    .log = host_log,
    .progress = host_progress,
    .options = host_options,
    .config = host_config,
    .app_dir = host_app_dir,
    .input = host_input,
    .output = host_output,
    .output_meta = host_output_meta,
    .output_digest = host_output_digest,
    .temp_dir = host_temp_dir,
    .state_dir = host_state_dir,
    .cancelled = host_cancelled,
    .fail = host_fail,
    .redact = host_redact,
    .lock_get = host_lock_get,
    .lock_set = host_lock_set,
    .plan_action = host_plan_action,
    .cache_key_add = host_cache_key_add,
    .share_dir = host_share_dir,
    .lib_dir = host_lib_dir,
};

kiln_err kiln_stage_ctx_init(struct kiln_stage_ctx *ctx, struct kiln *k,
                             const struct kiln_stage *stage,
                             const struct kiln_loaded_plugin *plugin, enum kiln_stage_mode mode)
{
  memset(ctx, 0, sizeof *ctx);
  ctx->k = k;
  ctx->stage = stage;
  ctx->plugin = plugin;
  ctx->mode = mode;
  ctx->log_prefix = strdup(stage->name);
  if (mode == KILN_MODE_PLAN)
    ctx->plan = cJSON_CreateArray();
  if (!ctx->log_prefix || (mode == KILN_MODE_PLAN && !ctx->plan))
    return kiln_set_error(k, KILN_E_NOMEM, "out of memory");
  return KILN_OK;
}

void kiln_stage_ctx_release(struct kiln_stage_ctx *ctx)
{
  struct kiln_error e = KILN_ERROR_INIT;
  for (size_t i = 0; i < ctx->noutputs; i++) {
    if (ctx->outputs[i].root)
      kiln_rm_rf_quiet(ctx->outputs[i].root);
    kiln_error_clear(&e);
    free(ctx->outputs[i].kind);
    free(ctx->outputs[i].root);
    free(ctx->outputs[i].files);
    cJSON_Delete(ctx->outputs[i].meta);
    for (size_t j = 0; j < ctx->outputs[i].nknown; j++)
      free(ctx->outputs[i].known[j].name);
    free(ctx->outputs[i].known);
  }
  free(ctx->outputs);
  if (ctx->temp_dir)
    kiln_rm_rf_quiet(ctx->temp_dir);
  kiln_error_clear(&e);
  free(ctx->temp_dir);
  free(ctx->state_dir);
  cJSON_Delete(ctx->lock_resolved);
  cJSON_Delete(ctx->plan);
  kiln_buf_free(&ctx->identity);
  kiln_error_clear(&ctx->err);
  free(ctx->log_prefix);
  memset(ctx, 0, sizeof *ctx);
}
