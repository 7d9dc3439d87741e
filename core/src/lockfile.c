/* kiln.lock: resolved inputs and outputs of the last successful run, one entry per stage,
 * written with sorted keys so unchanged runs produce identical bytes. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "util/fs.h"
#include "util/json.h"

#define KILN_LOCK_VERSION 1

struct kiln_lock {
  char *path;
  cJSON *doc; /* {"kiln_lock_version": 1, "stages": {...}} */
  int changed;
};

kiln_err kiln_lock_open(struct kiln *k, struct kiln_lock **out)
{
  *out = NULL;
  struct kiln_lock *l = calloc(1, sizeof *l);
  if (!l || !(l->path = kiln_path_join(k->app_dir, "kiln.lock"))) {
    free(l);
    return kiln_set_error(k, KILN_E_NOMEM, "out of memory");
  }
  struct kiln_error e = KILN_ERROR_INIT;
  if (kiln_path_exists(l->path)) {
    kiln_err rc = kiln_json_read_file(l->path, 4u << 20, &l->doc, &e);
    if (rc || !cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(l->doc, "stages"))) {
      if (!rc)
        kiln_error_set(&e, KILN_E_INVALID, "%s: /stages is missing", l->path);
      kiln_set_error(k, KILN_E_INVALID, "%s is damaged (%s); delete it to re-resolve every input",
                     l->path, kiln_error_msg(&e));
      kiln_error_clear(&e);
      kiln_lock_free(l);
      return KILN_E_INVALID;
    }
  } else {
    l->doc = cJSON_CreateObject();
    cJSON_AddNumberToObject(l->doc, "kiln_lock_version", KILN_LOCK_VERSION);
    cJSON_AddObjectToObject(l->doc, "stages");
  }
  *out = l;
  return KILN_OK;
}

void kiln_lock_free(struct kiln_lock *l)
{
  if (!l)
    return;
  cJSON_Delete(l->doc);
  free(l->path);
  free(l);
}

const cJSON *kiln_lock_stage(const struct kiln_lock *l, const char *stage)
{
  return cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(l->doc, "stages"),
                                          stage);
}

kiln_err kiln_lock_set_stage(struct kiln_lock *l, const char *stage, cJSON *entry)
{
  cJSON *stages = cJSON_GetObjectItemCaseSensitive(l->doc, "stages");
  const cJSON *old = cJSON_GetObjectItemCaseSensitive(stages, stage);
  if (old && cJSON_Compare(old, entry, 1)) {
    cJSON_Delete(entry);
    return KILN_OK;
  }
  l->changed = 1;
  if (old)
    return cJSON_ReplaceItemInObjectCaseSensitive(stages, stage, entry) ? KILN_OK : KILN_E_NOMEM;
  return cJSON_AddItemToObject(stages, stage, entry) ? KILN_OK : KILN_E_NOMEM;
}

kiln_err kiln_lock_write(struct kiln *k, struct kiln_lock *l)
{
  if (!l->changed && kiln_path_exists(l->path))
    return KILN_OK; /* nothing changed: leave the file (and its mtime) alone */
  struct kiln_buf text = KILN_BUF_INIT;
  kiln_err rc = kiln_json_pretty(l->doc, &text);
  struct kiln_error e = KILN_ERROR_INIT;
  if (!rc)
    rc = kiln_write_file_atomic(l->path, text.data, text.len, 0644, &e);
  if (rc)
    kiln_take_error(k, &e);
  kiln_buf_free(&text);
  return rc;
}
