/* Filesystem helpers: paths, directories, atomic writes, bounded reads, copies. */
#ifndef KILN_UTIL_FS_H
#define KILN_UTIL_FS_H

#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "util/error.h"

/* Join two path parts with one '/'; returns a new string (caller frees) or NULL on OOM.
 * An absolute b is returned as a copy of b. */
char *kiln_path_join(const char *a, const char *b);
/* Make path absolute against base (or the cwd when base is NULL), lexically; caller frees. */
char *kiln_path_absolute(const char *base, const char *path);

/* mkdir -p with the given mode for created directories. */
KILN_MUST_CHECK kiln_err kiln_mkdir_p(const char *path, mode_t mode, struct kiln_error *err);
/* rm -rf that never follows symlinks; a missing path is success. */
KILN_MUST_CHECK kiln_err kiln_rm_rf(const char *path, struct kiln_error *err);
/* The same on cleanup paths, where a leftover is harmless and there is no one to tell. */
void kiln_rm_rf_quiet(const char *path);
/* Create a fresh directory "<parent>/<prefix>XXXXXX"; *out receives the path (caller frees). */
KILN_MUST_CHECK kiln_err kiln_mkdtemp_in(const char *parent, const char *prefix, char **out,
                                         struct kiln_error *err);

/* Open an existing regular file read-only; returns the fd, or -1 with err set. st may be NULL. */
int kiln_open_regular(const char *path, struct stat *st, struct kiln_error *err);
/* Read fd to its end in 1 MiB chunks, handing each to sink (which may stop the loop by returning
 * an error); name is used in messages. */
KILN_MUST_CHECK kiln_err kiln_read_stream(int fd, const char *name,
                                          kiln_err (*sink)(void *arg, const void *data, size_t len),
                                          void *arg, struct kiln_error *err);
/* Read a whole file of at most max_size bytes; *out is NUL-terminated (caller frees). */
KILN_MUST_CHECK kiln_err kiln_read_file(const char *path, size_t max_size, char **out, size_t *len,
                                        struct kiln_error *err);
/* Write data to path atomically: a temp file beside it, fsync, rename. mode e.g. 0644. */
KILN_MUST_CHECK kiln_err kiln_write_file_atomic(const char *path, const void *data, size_t len,
                                                mode_t mode, struct kiln_error *err);
/* Copy a regular file (streaming) to dst atomically, keeping the executable bits of src. */
KILN_MUST_CHECK kiln_err kiln_copy_file(const char *src, const char *dst, struct kiln_error *err);
/* Hard-link src to dst, falling back to an atomic copy across filesystems. dst is replaced. */
KILN_MUST_CHECK kiln_err kiln_link_or_copy(const char *src, const char *dst,
                                           struct kiln_error *err);

int kiln_path_exists(const char *path);
/* 1 when both paths name the same file (device and inode). */
int kiln_same_file(const char *a, const char *b);
int kiln_is_dir(const char *path);

#endif
