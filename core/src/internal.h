/* libkiln internals shared between the core's source files (never installed). */
#ifndef KILN_CORE_INTERNAL_H
#define KILN_CORE_INTERNAL_H

#include <stddef.h>
#include <time.h>

#include <kiln/kiln.h>

#include "util/buf.h"
#include "util/error.h"

/* Read a struct field only when the producer's struct_size covers it. */
#define KILN_HAS_FIELD(ptr, type, field)                                                           \
  ((ptr)->struct_size >= offsetof(type, field) + sizeof(((type *)0)->field))

struct kiln_loaded_plugin {
  char *path;   /* absolute file name */
  void *handle; /* dlopen handle */
  const struct kiln_plugin *desc;
};

struct kiln {
  char *app_dir;
  char *cache_dir;
  char *share_dir;
  char *lib_dir;
  char *plugin_path;
  int no_cache;
  int verbosity;
  int progress;
  int color;
  double progress_start;         /* monotonic seconds when the current progress line started */
  uint64_t progress_first;       /* done at that time (a resumed transfer starts above 0) */
  struct timespec progress_last; /* when the line was last drawn (redrawn at most every 100 ms) */
  int progress_visible; /* a progress line is on screen and must be cleared before logging */

  struct kiln_error err;

  struct kiln_loaded_plugin *plugins;
  size_t nplugins;

  cJSON *config;     /* kiln.json or an empty object */
  char *config_path; /* NULL when there is no kiln.json */
  char *app_name;

  char **secrets;
  size_t nsecrets;
  int secrets_lost; /* a secret could not be registered: every later message is withheld */
};

/* context.c */
/* Set the context's error message (redacted); returns code. */
#define kiln_set_error kiln_fail
kiln_err kiln_take_error(struct kiln *k, struct kiln_error *from);

/* log.c */
void kiln_vlog(struct kiln *k, enum kiln_log_level level, const char *prefix, const char *fmt,
               va_list ap);
void kiln_progress_draw(struct kiln *k, const char *prefix, uint64_t done, uint64_t total,
                        const char *label);
void kiln_progress_clear(struct kiln *k);
/* Register a secret to mask. When memory runs out the sticky secrets_lost flag is set and
 * kiln_redact withholds every later message rather than risk showing the secret. */
void kiln_secret_add(struct kiln *k, const char *secret);
/* Replace every registered secret in s with "***" (in place, allocating a new string). */
char *kiln_redact(const struct kiln *k, const char *s);

/* schema.c: validate value against a JSON-schema subset, filling defaults; errors read
 * "<file>: <pointer>: <problem>". */
KILN_MUST_CHECK kiln_err kiln_schema_validate(const cJSON *schema, cJSON *value, const char *file,
                                              const char *pointer, struct kiln_error *err);
/* Check that a schema only uses the keywords the validator understands. */
KILN_MUST_CHECK kiln_err kiln_schema_check(const cJSON *schema, const char *where,
                                           struct kiln_error *err);

/* config.c */
KILN_MUST_CHECK kiln_err kiln_config_check_sections(struct kiln *k);
cJSON *kiln_config_stage_section(const struct kiln *k, const struct kiln_stage *stage);

/* plugin_loader.c */
const struct kiln_loaded_plugin *kiln_stage_plugin(const struct kiln *k, const char *stage);

/* store.c: the content-addressed artifact store and the step cache index. */
struct kiln_stored_artifact {
  struct kiln_artifact pub; /* kind, path, digest, meta: owned by this struct */
  char *dir;                /* artifact root: <cache>/artifacts/<hex> */
};
KILN_MUST_CHECK kiln_err kiln_store_prepare(struct kiln *k);
KILN_MUST_CHECK kiln_err kiln_store_tmpdir(struct kiln *k, const char *what, char **out);
struct kiln_known_digest;
/* Commit a staging root (holding files/) as an artifact; the staging root is consumed. known:
 * file digests the stage handed over (see kiln_host.output_digest), used instead of reading
 * those files again (a sample is checked); *read_bytes (optional): bytes the store read. */
KILN_MUST_CHECK kiln_err kiln_store_commit(struct kiln *k, const char *staging_root,
                                           const char *kind, const cJSON *meta,
                                           const struct kiln_known_digest *known, size_t nknown,
                                           uint64_t *read_bytes, struct kiln_stored_artifact **out);
KILN_MUST_CHECK kiln_err kiln_store_open(struct kiln *k, const char *digest,
                                         struct kiln_stored_artifact **out);
void kiln_stored_artifact_free(struct kiln_stored_artifact *a);
/* Step cache index: the outputs (array of {"kind","digest"}) and the values the stage recorded
 * for kiln.lock ("resolved", may be NULL) under a cache key. get: *resolved may be NULL. */
KILN_MUST_CHECK kiln_err kiln_store_index_get(struct kiln *k, const char *key, cJSON **outputs,
                                              cJSON **resolved);
KILN_MUST_CHECK kiln_err kiln_store_index_put(struct kiln *k, const char *key, const cJSON *outputs,
                                              const cJSON *resolved);

/* lockfile.c */
struct kiln_lock;
KILN_MUST_CHECK kiln_err kiln_lock_open(struct kiln *k, struct kiln_lock **out);
void kiln_lock_free(struct kiln_lock *l);
const cJSON *kiln_lock_stage(const struct kiln_lock *l, const char *stage);
/* Replace one stage's entry (takes ownership of entry). */
KILN_MUST_CHECK kiln_err kiln_lock_set_stage(struct kiln_lock *l, const char *stage, cJSON *entry);
KILN_MUST_CHECK kiln_err kiln_lock_write(struct kiln *k, struct kiln_lock *l);

/* cancel.c */
void kiln_cancel_reset(void);

#endif
