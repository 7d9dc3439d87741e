/* Pipelines: steps from a command's stage list plus kiln.json /steps, options merged and
 * validated, then run in order with the step cache, the artifact store and kiln.lock. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "pipeline.h"
#include "util/fs.h"
#include "util/json.h"

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

kiln_err kiln_pipeline_push_artifact(struct kiln_pipeline *p, struct kiln_stored_artifact *a)
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
    rc = kiln_store_commit(k, root, kind, m, NULL, 0, NULL, &a);
    cJSON_Delete(m);
    rc = rc ? rc : kiln_pipeline_push_artifact(p, a);
  }
  if (rc)
    kiln_rm_rf_quiet(root);
  kiln_error_clear(&e);
  cJSON_Delete(meta);
  free(dir);
  free(root);
  return rc;
}

kiln_err kiln_pipeline_add_input_file(struct kiln_pipeline *p, const char *kind, const char *file)
{
  struct stat st;
  char *abs = realpath(file, NULL);
  if (!abs || stat(abs, &st) != 0 || !S_ISREG(st.st_mode)) {
    free(abs);
    return kiln_set_error(p->k, KILN_E_NOT_FOUND, "%s: no such file", file);
  }
  const char *base = strrchr(abs, '/') ? strrchr(abs, '/') + 1 : abs;
  cJSON *meta = cJSON_CreateObject();
  if (!meta || !cJSON_AddStringToObject(meta, "source", abs) ||
      !cJSON_AddStringToObject(meta, "name", base) ||
      !cJSON_AddNumberToObject(meta, "size", (double)st.st_size)) {
    cJSON_Delete(meta);
    free(abs);
    return kiln_set_error(p->k, KILN_E_NOMEM, "out of memory");
  }
  free(abs);
  return kiln_pipeline_add_input(p, kind, NULL, meta);
}

const struct kiln_artifact *kiln_pipeline_output(const struct kiln_pipeline *p, const char *kind)
{
  for (size_t i = p->nartifacts; i > 0; i--)
    if (strcmp(p->artifacts[i - 1]->pub.kind, kind) == 0)
      return &p->artifacts[i - 1]->pub;
  return NULL;
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
