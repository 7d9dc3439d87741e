/* Private interfaces of Dockerfile builds in the image stage: .dockerignore matching, the
 * Dockerfile's instructions and base images, the deterministic build context tar, and the build
 * itself over the Engine API. */
#ifndef KILN_IMAGE_BUILD_H
#define KILN_IMAGE_BUILD_H

#include <stdint.h>

#include "source.h"

/* ---- dockerignore.c ---- */
struct img_ignore;
kiln_err img_ignore_new(struct img_ignore **out, struct kiln_error *err);
void img_ignore_free(struct img_ignore *ig);
/* Add the lines of a .dockerignore file (comments, blank lines, '!' exceptions). */
kiln_err img_ignore_parse(struct img_ignore *ig, const char *text, size_t len,
                          struct kiln_error *err);
/* Add one pattern as Docker's matcher takes it ("!" prefix = exception). */
kiln_err img_ignore_add(struct img_ignore *ig, const char *pattern, struct kiln_error *err);
size_t img_ignore_count(const struct img_ignore *ig);
/* 1 when path (relative, '/'-separated) is excluded. parent: the results its directory got
 * (mine of that call), or NULL to test the parent directories here; mine (img_ignore_count
 * bytes, or NULL) receives this path's results for its children. */
int img_ignore_match(const struct img_ignore *ig, const char *path, const uint8_t *parent,
                     uint8_t *mine);
/* 1 when an exception pattern names something under dir, so an excluded dir is still walked. */
int img_ignore_exception_under(const struct img_ignore *ig, const char *dir);

/* ---- dockerfile.c ---- */
struct img_dockerfile_instr {
  unsigned line; /* where the instruction starts (1-based) */
  char *keyword; /* upper case: FROM, RUN, ... */
  char *args;    /* the rest, continuation lines joined */
};
struct img_dockerfile {
  struct img_dockerfile_instr *instrs;
  size_t n;
};
kiln_err img_dockerfile_parse(const char *text, size_t len, struct img_dockerfile *df,
                              struct kiln_error *err);
void img_dockerfile_clear(struct img_dockerfile *df);
/* The images a build up to target (NULL: the last stage) starts from: FROM images (build args
 * substituted) and COPY --from images that are not stages, without "scratch". *names: a sorted
 * array of strings (caller frees). Fails when target names no stage. */
kiln_err img_dockerfile_bases(const struct img_dockerfile *df, const cJSON *args,
                              const char *target, cJSON **names, struct kiln_error *err);

/* ---- build_context.c ---- */
struct img_context_stats {
  uint64_t files; /* entries in the tar */
  uint64_t bytes; /* file data */
  int has_dockerignore;
  int (*cancelled)(void *ctx); /* in: checked between entries (or NULL) */
  void *cancel_ctx;
};
/* Write the build context of dir as a tar to out_path: .dockerignore applied as docker build
 * does (the Dockerfile and .dockerignore always sent), entries in sorted walk order, mtime
 * fixed, owners 0:0 without names; symlinks leaving the context refused. sha256_hex receives
 * the tar's digest. dockerfile: its path relative to dir. st->cancelled (set by the caller) stops
 * the walk with KILN_E_CANCELLED. */
kiln_err img_context_tar(const char *dir, const char *dockerfile, int64_t mtime,
                         const char *out_path, char sha256_hex[65], struct img_context_stats *st,
                         struct kiln_error *err);

/* ---- source_build.c ---- */
struct img_build_opts {
  char *context;    /* absolute directory */
  char *dockerfile; /* path relative to the context, '/'-separated */
  char *target;     /* or NULL */
  cJSON *args;      /* object of strings (owned) */
  char *platform;
  uint64_t warn_bytes; /* warn above this context size when there is no .dockerignore */
  int64_t source_date_epoch;
};
/* Read the "build" option (a context path string or an object) relative to app_dir. */
kiln_err img_build_opts_parse(const cJSON *build, const char *app_dir, const char *platform,
                              int64_t source_date_epoch, struct img_build_opts *o,
                              struct kiln_error *err);
void img_build_opts_clear(struct img_build_opts *o);
/* Make (or reuse) temp_dir/context.tar; *digest: its "sha256:..." (caller frees). */
kiln_err img_build_context(const struct img_build_opts *o, const struct img_source_env *env,
                           char **tar_path, char **digest, struct kiln_error *err);
/* Cache identity: context digest, Dockerfile, args, target, platform and the base images' ids
 * (locked: an object name -> id from kiln.lock; asked from the daemon only for names it lacks).
 */
kiln_err img_build_identify(const struct img_build_opts *o, const struct img_source_env *env,
                            const cJSON *locked, char **ident, struct kiln_error *err);
/* Build over the Engine API (POST /build, classic builder): output lines to env->log, or as
 * progress when tty; *image_id the result, *bases the base images' ids (name -> id). */
kiln_err img_build_run(const struct img_build_opts *o, const struct img_source_env *env, int tty,
                       char **image_id, cJSON **bases, struct kiln_error *err);

#endif
