/* Private interfaces of the image plugin: the in-memory tree, the file-data spool, layer
 * application, image sources, run config and cpio emission. */
#ifndef KILN_IMAGE_H
#define KILN_IMAGE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <cjson/cJSON.h>

#include "util/buf.h"
#include "util/error.h"

/* ---- spool.c: file contents appended to one unlinked temp file, read back by offset ---- */
struct img_spool;
KILN_MUST_CHECK kiln_err img_spool_new(const char *temp_dir, struct img_spool **out,
                                       struct kiln_error *err);
void img_spool_free(struct img_spool *s);
/* Offset where the next appended bytes go. */
uint64_t img_spool_tell(const struct img_spool *s);
KILN_MUST_CHECK kiln_err img_spool_append(struct img_spool *s, const void *data, size_t len,
                                          struct kiln_error *err);
/* Read len bytes at off (flushes pending writes first). */
KILN_MUST_CHECK kiln_err img_spool_read(struct img_spool *s, uint64_t off, void *buf, size_t len,
                                        struct kiln_error *err);

/* ---- tree.c: the merged filesystem, never touching the host ---- */
#define IMG_MAX_PATH 4096
#define IMG_MAX_SYMLINK_HOPS 40

/* One inode: several nodes share it when hard-linked. Which union member is valid follows from
 * the type in mode. Nodes and inodes live in the tree's arena (compact: no per-entry malloc). */
struct img_inode {
  uint32_t refs;
  uint32_t mode; /* type and permission bits */
  uint32_t uid, gid;
  union {
    struct {
      uint64_t size;      /* S_ISREG: bytes in the spool */
      uint64_t spool_off; /* S_ISREG */
    };
    char *target; /* S_ISLNK: stored verbatim (malloc'd) */
    struct {
      uint32_t rdev_major, rdev_minor; /* S_ISCHR, S_ISBLK */
    };
  };
  uint32_t src; /* S_ISREG: 0 = the spool, k = data read in place from the tree's backing[k-1] */
  /* scratch used while emitting the cpio */
  uint32_t links_final, links_emitted, cpio_ino;
};

struct img_node {
  struct img_node *parent;
  struct img_inode *inode;
  struct img_node **kids; /* sorted bytewise by name (malloc'd) */
  uint32_t nkids, cap;
  uint32_t layer; /* index (1-based) of the layer that last wrote this path */
  char name[];    /* NUL-terminated */
};

struct img_arena_chunk;

typedef void (*img_warn_fn)(void *ctx, const char *fmt, ...) KILN_PRINTF(2, 3);

struct img_tree {
  struct img_node *root;
  struct img_spool *spool;
  uint64_t nodes, bytes; /* live counts (bytes: data written to the spool) */
  uint64_t max_nodes, max_bytes;
  struct img_arena_chunk *arena; /* current chunk; older ones chained behind it */
  int *backing;                  /* uncompressed layer files whose data is read in place (owned) */
  uint32_t nbacking;
  uint32_t inplace_src;  /* while applying an uncompressed layer: its backing index */
  uint64_t inplace_base; /* ... and where the layer starts in that file */
  int keep_devices;
  const char *layer_label; /* the layer being applied, for messages */
  img_warn_fn warn;
  void *warn_ctx;
};

KILN_MUST_CHECK kiln_err img_tree_new(struct img_spool *spool, struct img_tree **out,
                                      struct kiln_error *err);
void img_tree_free(struct img_tree *t);
struct img_node *img_node_find(const struct img_node *dir, const char *name, size_t len);
/* Insert a new child (name must not exist); takes a new reference on inode. */
KILN_MUST_CHECK kiln_err img_node_add(struct img_tree *t, struct img_node *dir, const char *name,
                                      size_t len, struct img_inode *inode, uint32_t layer,
                                      struct img_node **out, struct kiln_error *err);
/* Remove node and its subtree from its parent and free it. */
void img_node_remove(struct img_tree *t, struct img_node *node);
/* A new inode with one reference (the caller's), or NULL when memory ran out. */
struct img_inode *img_inode_new(struct img_tree *t, uint32_t mode, uint32_t uid, uint32_t gid);
void img_inode_unref(struct img_inode *ino);
int img_node_is_dir(const struct img_node *n);
/* Resolve every component of path (length len) from dir, following symlinks chroot-style (targets
 * relative to the tree root, ".." clamped at the root). create: make missing directories (0755,
 * root) stamped with layer. Fails on a non-directory component or too many symlink hops. */
KILN_MUST_CHECK kiln_err img_tree_walk_dirs(struct img_tree *t, struct img_node *dir,
                                            const char *path, size_t len, int create,
                                            uint32_t layer, struct img_node **out,
                                            struct kiln_error *err);
/* Resolve a full path, following symlinks in every component including the last (for argv[0],
 * /etc/passwd); *out NULL when it does not exist. */
KILN_MUST_CHECK kiln_err img_tree_lookup(struct img_tree *t, const char *path,
                                         struct img_node **out, struct kiln_error *err);
/* Register fd (duplicated) as a place file data is read from in place; *src receives the index
 * for img_inode.src. The same file registered twice gets the same index. */
KILN_MUST_CHECK kiln_err img_tree_add_backing(struct img_tree *t, int fd, uint32_t *src,
                                              struct kiln_error *err);
/* Read len bytes of a regular file's data starting at off (relative to the file's start). */
KILN_MUST_CHECK kiln_err img_tree_read_data(struct img_tree *t, const struct img_inode *ino,
                                            uint64_t off, void *buf, size_t len,
                                            struct kiln_error *err);
/* Read the whole content of a regular file node (at most max bytes); caller frees. */
KILN_MUST_CHECK kiln_err img_tree_read_file(struct img_tree *t, const struct img_node *n,
                                            size_t max, char **out, size_t *len,
                                            struct kiln_error *err);

/* ---- path.c: entry-name normalisation ---- */
/* Normalise a layer entry name into out: strip leading "/" and "./", drop "." and empty
 * components; refuse ".." components, NUL-free empty names and names over IMG_MAX_PATH. An empty
 * result (the root itself) is allowed and gives out->len == 0. */
KILN_MUST_CHECK kiln_err img_path_normalise(const char *name, struct kiln_buf *out,
                                            struct kiln_error *err);

/* ---- whiteout.c ---- */
enum img_whiteout_kind { IMG_WH_NONE, IMG_WH_FILE, IMG_WH_OPAQUE, IMG_WH_META };
/* Classify the base name of a normalised entry; for IMG_WH_FILE *target is the hidden name. */
enum img_whiteout_kind img_whiteout_classify(const char *base, const char **target);
/* Hide dir/<name> from lower layers. */
KILN_MUST_CHECK kiln_err img_whiteout_apply(struct img_tree *t, struct img_node *dir,
                                            const char *name, uint32_t layer, const char *path,
                                            struct kiln_error *err);
/* Hide every lower-layer child of dir (recursively). */
void img_whiteout_opaque(struct img_tree *t, struct img_node *dir, uint32_t layer);

/* ---- layer_apply.c: one layer blob (tar, tar+gzip, tar+zstd) applied onto the tree ---- */
struct img_blob {
  int fd;          /* borrowed */
  uint64_t offset; /* where the blob starts in fd */
  uint64_t size;
  const char *label;  /* names the layer in messages (digest or path) */
  const char *digest; /* "sha256:<hex>" the stored bytes must have, or NULL */
  /* Alternative digest accepted when the blob turns out to be uncompressed (docker-save legacy
   * layer.tar, checked against the config's diff_id). */
  const char *diff_id;
};
KILN_MUST_CHECK kiln_err img_layer_apply(struct img_tree *t, const struct img_blob *blob,
                                         uint32_t layer, struct kiln_error *err);
struct archive;
struct archive_entry;
/* Apply one entry read from a (tar or disk) archive; *truncated_after_data: see layer_apply.c. */
KILN_MUST_CHECK kiln_err img_layer_apply_entry(struct img_tree *t, struct archive *a,
                                               struct archive_entry *e, uint32_t layer,
                                               int *truncated_after_data, struct kiln_error *err);
/* Apply a host directory tree as one layer (dir: sources); owners become 0:0. */
KILN_MUST_CHECK kiln_err img_layer_apply_dir(struct img_tree *t, const char *dir, uint32_t layer,
                                             struct kiln_error *err);

/* ---- sources: every input reduces to this model ---- */
struct img_layer_ref {
  char *path;    /* blob path inside the store */
  char *digest;  /* stored-bytes digest or NULL */
  char *diff_id; /* uncompressed digest or NULL */
};

struct img_manifest {
  char *manifest_digest; /* "sha256:..." or NULL */
  char *config_digest;
  cJSON *config; /* the image config (owned) */
  struct img_layer_ref *layers;
  size_t nlayers;
  char *platform_warning; /* an index entry said the platform, the config says another (owned) */
};
void img_manifest_clear(struct img_manifest *m);

/* A place blobs are read from: a directory (OCI layout) or an uncompressed tar (indexed). */
struct img_store;
KILN_MUST_CHECK kiln_err img_store_open_dir(const char *dir, struct img_store **out,
                                            struct kiln_error *err);
KILN_MUST_CHECK kiln_err img_store_open_tar(const char *file, struct img_store **out,
                                            struct kiln_error *err);
void img_store_free(struct img_store *s);
int img_store_has(struct img_store *s, const char *path);
/* Locate a blob: fills fd/offset/size of b (fd owned by the store). */
KILN_MUST_CHECK kiln_err img_store_blob(struct img_store *s, const char *path, struct img_blob *b,
                                        struct kiln_error *err);
/* Read a small blob (JSON) fully, verifying digest when given; caller frees *out. */
KILN_MUST_CHECK kiln_err img_store_read(struct img_store *s, const char *path, const char *digest,
                                        size_t max, char **out, size_t *len,
                                        struct kiln_error *err);

/* source_oci.c: OCI layout (dir or tar). ref: tag/name or NULL; platform "linux/amd64". */
KILN_MUST_CHECK kiln_err img_oci_resolve(struct img_store *s, const char *ref, const char *platform,
                                         struct img_manifest *m, struct kiln_error *err);
/* source_docker_archive.c: docker save tarball. ref "NAME:TAG" or NULL. */
KILN_MUST_CHECK kiln_err img_docker_archive_resolve(struct img_store *s, const char *ref,
                                                    const char *platform, struct img_manifest *m,
                                                    struct kiln_error *err);
/* 1 when obj's os/architecture(/variant) match platform "os/arch[/variant]". */
int img_platform_matches(const cJSON *obj, const char *platform);
/* Check the config's os/architecture against platform ("os/arch[/variant]"). An image that is
 * only for another platform is refused; when an index entry claimed the platform (claimed), the
 * disagreement is a mislabelled image: m->platform_warning says so and the image is used. */
KILN_MUST_CHECK kiln_err img_platform_check(const cJSON *config, const char *platform, int claimed,
                                            struct img_manifest *m, struct kiln_error *err);
/* Parse "sha256:<64 hex>" into a blob path "blobs/sha256/<hex>"; caller frees. */
KILN_MUST_CHECK kiln_err img_digest_path(const char *digest, char **out, struct kiln_error *err);

/* ---- runconfig.c ---- */
struct img_runconfig {
  char **argv;
  size_t argc;
  char **env;
  size_t envc;
  char *workdir;
  uint32_t uid, gid;
};
struct img_run_overrides {
  const cJSON *cmd; /* /enclave/cmd (array) or NULL */
  const cJSON *env; /* /enclave/env (object) or NULL */
  int nitro_cli_mode;
};
KILN_MUST_CHECK kiln_err img_runconfig_build(struct img_tree *t, const cJSON *config,
                                             const struct img_run_overrides *ov,
                                             struct img_runconfig *rc, struct kiln_error *err);
void img_runconfig_clear(struct img_runconfig *rc);

/* ---- rootfs_cpio.c ---- */
struct img_emit_stats {
  uint64_t files;  /* entries written under rootfs/ */
  uint64_t bytes;  /* archive size */
  char sha256[65]; /* the archive's SHA-256 and CRC-32, computed while writing it */
  uint32_t crc32;
};
KILN_MUST_CHECK kiln_err img_rootfs_write(struct img_tree *t, const struct img_runconfig *rc,
                                          int64_t mtime, const char *out_path,
                                          struct img_emit_stats *stats, struct kiln_error *err);

#endif
