/* kiln plugin SDK: the one header a stage plugin includes (the stage ABI and host services). */
#ifndef KILN_PLUGIN_H
#define KILN_PLUGIN_H

/*
 * A plugin is a shared object that exports exactly one symbol, kiln_plugin_entry. The host calls it
 * with its ABI version; the plugin returns a pointer to a const descriptor, or NULL when it cannot
 * work with that host. Nothing else is looked up and no global constructors are relied on.
 *
 * Compatibility rules:
 *   - every struct starts with its size (struct_size) so fields can be appended later; the host
 * reads a field only when struct_size covers it, and plugins must do the same with struct
 * kiln_host;
 *   - an incompatible change bumps KILN_ABI_VERSION; the host refuses plugins built for another
 * one.
 *
 * Everything a stage needs comes through the host vtable passed to each callback: options,
 * input artifacts, output staging, logging, progress, cancellation and error reporting.
 * Strings handed to a plugin are borrowed (valid during the callback); cJSON values passed to
 * output_meta/lock_set are owned by the host afterwards.
 */

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#ifdef __cplusplus
extern "C" {
#endif

#define KILN_ABI_VERSION 1u
#define KILN_PLUGIN_ENTRY_SYMBOL "kiln_plugin_entry"

#if defined(__GNUC__)
#define KILN_PRINTF(fmt_index, first_arg) __attribute__((format(printf, fmt_index, first_arg)))
#define KILN_PLUGIN_EXPORT __attribute__((visibility("default")))
/* On fallible functions: ignoring the kiln_err they return is a compile error under -Werror. */
#define KILN_MUST_CHECK __attribute__((warn_unused_result))
#else
#define KILN_PRINTF(fmt_index, first_arg)
#define KILN_PLUGIN_EXPORT
#define KILN_MUST_CHECK
#endif

/* The one error type: every fallible function returns one of these; 0 is success. */
typedef enum kiln_err {
  KILN_OK = 0,
  KILN_E_INVALID,     /* bad input: configuration, file format, option value */
  KILN_E_NOT_FOUND,   /* a named file, stage, image or resource does not exist */
  KILN_E_IO,          /* reading or writing local files failed */
  KILN_E_NOMEM,       /* allocation failed or a size limit was exceeded */
  KILN_E_NETWORK,     /* connection, DNS, TLS or timeout */
  KILN_E_REMOTE,      /* a server answered with an error */
  KILN_E_AUTH,        /* credentials missing, wrong or denied */
  KILN_E_UNSUPPORTED, /* valid but not supported (yet) */
  KILN_E_CANCELLED,   /* interrupted by the user (SIGINT) */
  KILN_E_PLUGIN,      /* a plugin broke the ABI contract */
  KILN_E_INTERNAL     /* a bug in kiln */
} kiln_err;

enum kiln_log_level {
  KILN_LOG_ERROR = 0,
  KILN_LOG_WARN = 1,
  KILN_LOG_INFO = 2,
  KILN_LOG_DEBUG = 3
};

/* Opaque per-run context of one stage. */
struct kiln_stage_ctx;

/* An input artifact, read-only. */
struct kiln_artifact {
  uint32_t struct_size;
  const char *kind;   /* "rootfs", "kernel", "eif", "sizing", "s3-object", "deployment", ... */
  const char *path;   /* directory holding the artifact's files; never modify it */
  const char *digest; /* content address, "sha256:<64 hex>" */
  const cJSON *meta;  /* metadata object set by the producing stage (an empty object if none) */
};

/* Host services, versioned like the descriptors (check struct_size before using a field). */
struct kiln_host {
  uint32_t abi_version;
  uint32_t struct_size;

  /* Log one line (no trailing newline needed). Secrets registered with redact() are masked. */
  void (*log)(struct kiln_stage_ctx *ctx, enum kiln_log_level level, const char *fmt, ...)
      KILN_PRINTF(3, 4);
  /* Report progress of long work; total 0 = unknown. Drawn only when stderr is a terminal. */
  void (*progress)(struct kiln_stage_ctx *ctx, uint64_t done, uint64_t total, const char *label);

  /* This step's options, validated against the stage's schema (always an object). */
  const cJSON *(*options)(struct kiln_stage_ctx *ctx);
  /* The whole kiln.json (validated), for settings outside the stage's section; {} without one. */
  const cJSON *(*config)(struct kiln_stage_ctx *ctx);
  /* The application directory (absolute): relative paths in options are relative to it. */
  const char *(*app_dir)(struct kiln_stage_ctx *ctx);

  /* The newest artifact of this kind produced earlier in the pipeline, or NULL. */
  const struct kiln_artifact *(*input)(struct kiln_stage_ctx *ctx, const char *kind);
  /* Create the output artifact of a declared kind; *dir receives an empty staging directory the
   * stage writes files into. The host content-addresses and commits it atomically after run()
   * returns KILN_OK, and deletes it otherwise. */
  kiln_err (*output)(struct kiln_stage_ctx *ctx, const char *kind, const char **dir);
  /* Set the metadata of an output created with output(); takes ownership of meta. */
  kiln_err (*output_meta)(struct kiln_stage_ctx *ctx, const char *kind, cJSON *meta);

  /* A private temporary directory, removed after the stage (also on failure/interrupt). */
  const char *(*temp_dir)(struct kiln_stage_ctx *ctx);
  /* A persistent directory for this stage in the cache (resume journals and the like). */
  const char *(*state_dir)(struct kiln_stage_ctx *ctx);
  /* Non-zero once the user interrupted the run: stop soon and return KILN_E_CANCELLED. */
  int (*cancelled)(struct kiln_stage_ctx *ctx);
  /* Record the failure message (say what failed, on which file/field/resource, and what to do)
   * and return code, so a stage can write: return host->fail(ctx, KILN_E_INVALID, "..."); */
  kiln_err (*fail)(struct kiln_stage_ctx *ctx, kiln_err code, const char *fmt, ...)
      KILN_PRINTF(3, 4);
  /* Never show this string in logs, messages or JSON output. */
  void (*redact)(struct kiln_stage_ctx *ctx, const char *secret);

  /* kiln.lock: the value this stage recorded under key in the last successful run, or NULL. */
  const cJSON *(*lock_get)(struct kiln_stage_ctx *ctx, const char *key);
  /* Record a resolved input or result in kiln.lock under this stage; takes ownership of value. */
  kiln_err (*lock_set)(struct kiln_stage_ctx *ctx, const char *key, cJSON *value);

  /* In plan(): announce one effect the run would have. action: "create", "update", "delete",
   * "nothing" (resource up to date) or "call" (a read-only API call). */
  kiln_err (*plan_action)(struct kiln_stage_ctx *ctx, const char *action, const char *resource,
                          const char *detail);
  /* In identify(): add text that identifies external inputs (e.g. a resolved image digest) to
   * this step's cache key. */
  kiln_err (*cache_key_add)(struct kiln_stage_ctx *ctx, const char *text);

  /* Installed data and library directories (share/kiln and lib/kiln of the prefix or build tree).
   */
  const char *(*share_dir)(struct kiln_stage_ctx *ctx);
  const char *(*lib_dir)(struct kiln_stage_ctx *ctx);

  /* Appended (check with KILN_HOST_HAS): the stage computed the SHA-256 of an output file while
   * writing it; hand it over so the store does not read the file again to address the artifact.
   * file is relative to the output's directory, sha256_hex 64 lowercase hex digits, size the
   * file's length. The store checks the size always and re-hashes a sample (every file up to
   * 16 MiB; every file when KILN_VERIFY_DIGESTS=1, as kiln's CI runs): a digest that is not the
   * file's fails the step as a plugin bug. Larger files are trusted otherwise: a plugin runs in
   * kiln's process with the store's rights, so a wrong digest is a bug to catch in its tests,
   * not an attack to stop here. */
  kiln_err (*output_digest)(struct kiln_stage_ctx *ctx, const char *kind, const char *file,
                            const char *sha256_hex, uint64_t size);
};

/* Non-zero when the host provides the appended service field (older hosts' vtables are shorter). */
#define KILN_HOST_HAS(host, field)                                                                 \
  ((host)->struct_size >= offsetof(struct kiln_host, field) + sizeof((host)->field) &&             \
   (host)->field != NULL)

typedef kiln_err (*kiln_stage_fn)(struct kiln_stage_ctx *ctx, const struct kiln_host *host);

/* Stage flags. */
#define KILN_STAGE_NO_CACHE 0x1u /* always run (external side effects are checked every time) */

struct kiln_stage {
  uint32_t struct_size;
  const char *name;            /* unique across loaded plugins: [a-z][a-z0-9-]* */
  const char *summary;         /* one line */
  const char *const *consumes; /* NULL-terminated list of required input kinds (or NULL) */
  const char *const *accepts;  /* NULL-terminated list of optional input kinds (or NULL) */
  const char *const *produces; /* NULL-terminated list of output kinds (or NULL) */
  const char *options_schema;  /* JSON schema of the options object (subset: see docs) */
  kiln_stage_fn run;           /* required */
  kiln_stage_fn plan;          /* optional: describe effects, no side effects */
  kiln_stage_fn undo;          /* optional: remove external side effects (teardown) */
  kiln_stage_fn identify;      /* optional: add external input identity to the cache key */
  uint32_t flags;              /* KILN_STAGE_* */
  /* NULL-terminated JSON pointers of kiln.json settings outside the stage's own section that the
   * stage reads through host->config() (e.g. "/enclave/cmd"); their values join the cache key. */
  const char *const *config_reads;
};

struct kiln_plugin {
  uint32_t abi_version; /* KILN_ABI_VERSION the plugin was built for */
  uint32_t struct_size; /* sizeof(struct kiln_plugin) as the plugin saw it */
  const char *name;
  const char *version;
  const char *license;
  const struct kiln_stage *const *stages; /* NULL-terminated */
};

typedef const struct kiln_plugin *(*kiln_plugin_entry_fn)(uint32_t host_abi_version);

/* The one symbol a plugin exports. */
KILN_PLUGIN_EXPORT const struct kiln_plugin *kiln_plugin_entry(uint32_t host_abi_version);

#ifdef __cplusplus
}
#endif

#endif
