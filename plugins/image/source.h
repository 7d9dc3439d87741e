/* Image sources by transport name (dir:, oci:, oci-archive:, docker-archive:, docker://,
 * docker-daemon:): parsing, loading onto the tree, and cache identity. */
#ifndef KILN_IMAGE_SOURCE_H
#define KILN_IMAGE_SOURCE_H

#include "image.h"

enum img_source_kind {
  IMG_SRC_DIR,
  IMG_SRC_OCI,
  IMG_SRC_OCI_ARCHIVE,
  IMG_SRC_DOCKER_ARCHIVE,
  IMG_SRC_REGISTRY,
  IMG_SRC_DAEMON
};

struct img_transport; /* source.c's table entry: prefix, syntax, load, identify */

struct img_source {
  const struct img_transport *transport;
  enum img_source_kind kind;
  char *text; /* as given */
  char *path; /* file or directory (absolute), or registry reference / daemon image name */
  char *ref;  /* tag/name inside an archive or layout, or NULL */
};

struct img_source_env {
  const char *platform;
  const char *temp_dir;
  const cJSON *insecure;      /* array of registry hosts allowed over plain HTTP */
  const cJSON *locked_digest; /* kiln.lock image_digest, or NULL */
  img_warn_fn log;
  void *log_ctx;
  int (*cancelled)(void *ctx);
  void (*progress)(void *ctx, uint64_t done, uint64_t total, const char *label);
  img_warn_fn warn; /* problems the user should fix (log_ctx), or NULL */
};

KILN_MUST_CHECK kiln_err img_source_parse(const char *text, const char *app_dir,
                                          struct img_source *src, struct kiln_error *err);
void img_source_clear(struct img_source *src);
/* Resolve the image and apply every layer onto tree; m receives digests and config. */
KILN_MUST_CHECK kiln_err img_source_load(const struct img_source *src,
                                         const struct img_source_env *env, struct img_tree *tree,
                                         struct img_manifest *m, struct kiln_error *err);
/* Text identifying the resolved image for the stage cache key; caller frees. */
KILN_MUST_CHECK kiln_err img_source_identify(const struct img_source *src,
                                             const struct img_source_env *env, char **out,
                                             struct kiln_error *err);

/* source_registry.c: pull into a temporary OCI-style blob directory; *dir (caller frees) is
 * usable with img_store_open_dir, m is filled like img_oci_resolve does. apply: fetch layers too.
 */
KILN_MUST_CHECK kiln_err img_registry_pull(const char *reference, const struct img_source_env *env,
                                           int layers, char **dir, struct img_manifest *m,
                                           struct kiln_error *err);
/* source_daemon.c: export the image from the Docker Engine API into a docker-save tar in
 * temp_dir; *tar_path (caller frees). */
KILN_MUST_CHECK kiln_err img_daemon_export(const char *name, const struct img_source_env *env,
                                           char **tar_path, char **image_id,
                                           struct kiln_error *err);

#endif
