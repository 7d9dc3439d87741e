/* libkiln public API: the context, configuration, plugins and pipelines, as used by the kiln CLI.
 */
#ifndef KILN_KILN_H
#define KILN_KILN_H

#include <stdint.h>

#include <cjson/cJSON.h>

#include <kiln/plugin.h>

#if defined(__GNUC__)
#define KILN_API __attribute__((visibility("default")))
#else
#define KILN_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* The library context: settings, loaded plugins, kiln.json and the last error message. */
struct kiln;

struct kiln_settings {
  uint32_t struct_size;
  const char *app_dir;     /* application directory (NULL = current directory) */
  const char *plugin_path; /* extra plugin directories, ':'-separated (--plugin-path), or NULL */
  const char *cache_dir;   /* NULL = $KILN_CACHE_DIR, $XDG_CACHE_HOME/kiln, ~/.cache/kiln */
  int no_cache;            /* run every stage even on a cache hit (results are still stored) */
  int verbosity;           /* -1 quiet, 0 normal, 1 verbose (-v), 2 debug (-vv) */
  int progress;            /* draw progress bars (the CLI sets this when stderr is a TTY) */
  int color;               /* colour log prefixes (TTY and no NO_COLOR) */
};

/* Create a context. On failure *out is still set (so kiln_errmsg works) unless memory ran out. */
KILN_API KILN_MUST_CHECK kiln_err kiln_new(struct kiln **out, const struct kiln_settings *settings);
KILN_API void kiln_free(struct kiln *k);

/* The message of the last failure: what failed, on which file/field/resource, what to do. */
KILN_API const char *kiln_errmsg(const struct kiln *k);
/* Set the error message from outside the core (builder commands use it for their own failures). */
KILN_API kiln_err kiln_fail(struct kiln *k, kiln_err code, const char *fmt, ...) KILN_PRINTF(3, 4);
/* Log a line on stderr the way stages do (respects verbosity, colour and redaction). */
KILN_API void kiln_log(struct kiln *k, enum kiln_log_level level, const char *fmt, ...)
    KILN_PRINTF(3, 4);

/* Mask this secret in every later log line, message and JSON output (commands that talk to AWS
 * directly register credentials this way). */
KILN_API void kiln_secret(struct kiln *k, const char *secret);
/* Draw a progress line (TTY only, like a stage's progress): label, done/total bytes, rate, ETA. */
KILN_API void kiln_progress(struct kiln *k, const char *prefix, uint64_t done, uint64_t total,
                            const char *label);
/* Remove a progress line from the terminal (before printing results). */
KILN_API void kiln_progress_end(struct kiln *k);

KILN_API const char *kiln_version(void);
/* The absolute application directory, the cache directory, and the install dirs in use. */
KILN_API const char *kiln_app_dir(const struct kiln *k);
KILN_API const char *kiln_cache_dir(const struct kiln *k);
KILN_API const char *kiln_share_dir(const struct kiln *k);
KILN_API const char *kiln_lib_dir(const struct kiln *k);

/* Load every plugin from the search path (--plugin-path, $KILN_PLUGIN_PATH, <app>/.kiln/plugins,
 * <prefix>/lib/kiln/plugins) plus those named in kiln.json /plugins. Call after kiln_config_load.
 */
KILN_API KILN_MUST_CHECK kiln_err kiln_plugins_load(struct kiln *k);
/* Load one plugin file (also used by tests). */
KILN_API KILN_MUST_CHECK kiln_err kiln_plugin_load_file(struct kiln *k, const char *path);
/* A JSON array describing the loaded plugins and their stages (for `kiln plugins`); caller frees.
 */
KILN_API cJSON *kiln_plugins_describe(const struct kiln *k);
/* The stage with this name, or NULL. */
KILN_API const struct kiln_stage *kiln_stage_find(const struct kiln *k, const char *name);

/* Read <app>/kiln.json. required=0: a missing file is fine (empty configuration). The file is
 * validated fully (top level here, stage sections when a pipeline is built). */
KILN_API KILN_MUST_CHECK kiln_err kiln_config_load(struct kiln *k, int required);
/* The loaded configuration (an empty object when there is none). Borrowed. */
KILN_API const cJSON *kiln_config(const struct kiln *k);
/* The application name: /name, else the app directory's base name. */
KILN_API const char *kiln_app_name(const struct kiln *k);
/* The enclave's CPU architecture: /arch ("x86_64" or "aarch64"), x86_64 when unset. Every stage
 * reads it from the configuration; a non-default value is part of every step's cache key. */
KILN_API const char *kiln_arch(const struct kiln *k);
/* Override /arch (`kiln build --arch`); anything but x86_64 or aarch64 is an error. */
KILN_API KILN_MUST_CHECK kiln_err kiln_set_arch(struct kiln *k, const char *arch);

/* A pipeline: ordered steps (stage + options). */
struct kiln_pipeline;

/* Build a pipeline from the given stage names (NULL-terminated), inserting the extra steps of
 * kiln.json /steps after the stages they name. */
KILN_API KILN_MUST_CHECK kiln_err kiln_pipeline_new(struct kiln *k, const char *const *stages,
                                                    struct kiln_pipeline **out);
KILN_API void kiln_pipeline_free(struct kiln_pipeline *p);
/* Override one option of a step: value is parsed as JSON when it parses, else taken as a string.
 * key may be a nested path "a.b". */
KILN_API KILN_MUST_CHECK kiln_err kiln_pipeline_set(struct kiln_pipeline *p, const char *stage,
                                                    const char *key, const char *value);
/* Give an artifact directory as the input of a kind (e.g. `kiln size --eif FILE`): the core
 * imports it into the store first. files: NULL-terminated (name, source path) pairs. */
KILN_API KILN_MUST_CHECK kiln_err kiln_pipeline_add_input(struct kiln_pipeline *p, const char *kind,
                                                          const char *const *files, cJSON *meta);
/* Give a file in place as the input of a kind (`kiln run --input KIND=FILE`): nothing is copied;
 * the artifact holds no files and its metadata names the file: {"source": absolute path, "name":
 * its base name, "size": bytes}. Stages read it from "source" while they run. */
KILN_API KILN_MUST_CHECK kiln_err kiln_pipeline_add_input_file(struct kiln_pipeline *p,
                                                               const char *kind, const char *file);
/* Run all steps. *result (caller frees) describes every step:
 * {"steps":[{"stage":..,"cached":bool,"seconds":..,"outputs":[{"kind","digest","path","meta"}]}]}
 */
KILN_API KILN_MUST_CHECK kiln_err kiln_pipeline_run(struct kiln_pipeline *p, cJSON **result);
/* Dry run: call each stage's plan(); *result lists steps with cache status and planned actions. */
KILN_API KILN_MUST_CHECK kiln_err kiln_pipeline_plan(struct kiln_pipeline *p, cJSON **result);
/* Call undo() of the given stages in reverse order (teardown). */
KILN_API KILN_MUST_CHECK kiln_err kiln_pipeline_undo(struct kiln_pipeline *p, cJSON **result);
/* The newest artifact of a kind after run(), or NULL. Borrowed from the pipeline. */
KILN_API const struct kiln_artifact *kiln_pipeline_output(const struct kiln_pipeline *p,
                                                          const char *kind);

/* Copy (hard-link when possible) file `name` of an artifact to dest atomically. Does nothing when
 * dest already is that file (same inode), so re-runs rewrite nothing. */
KILN_API KILN_MUST_CHECK kiln_err kiln_artifact_export(struct kiln *k,
                                                       const struct kiln_artifact *a,
                                                       const char *name, const char *dest);

/* SIGINT/SIGTERM handling: install handlers that set the cancel flag stages poll. */
KILN_API void kiln_cancel_install_handlers(void);
KILN_API int kiln_cancelled(void);

#ifdef __cplusplus
}
#endif

#endif
