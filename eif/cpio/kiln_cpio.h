/* kiln_cpio: a deterministic "newc" (SVR4, no CRC) cpio writer for initramfs images. */
#ifndef KILN_CPIO_H
#define KILN_CPIO_H

#include <stddef.h>
#include <stdint.h>

#include "util/error.h"

/*
 * Every entry gets the archive's fixed mtime, device 0/0, no user or group names (newc has none),
 * and an inode number from a counter starting at 1 (members of a hard-link group share one).
 * Nothing of the host leaks into the output: the same calls always give the same bytes.
 *
 *   struct kiln_cpio *c;
 *   kiln_cpio_open_path("out.cpio", 0, &c, &err);
 *   kiln_cpio_add_dir(c, "rootfs", 0755, 0, 0, &err);
 *   kiln_cpio_add_file(c, "rootfs/hello", 0644, 0, 0, 6, &err);
 *   kiln_cpio_write_data(c, "hello\n", 6, &err);
 *   kiln_cpio_close(c, &err);  // writes TRAILER!!!; then kiln_cpio_free(c)
 *
 * Hard links: newc marks them with equal inode numbers and nlink > 1; the data travels with the
 * last member (GNU cpio and the kernel's initramfs unpacker both accept this). Use
 * kiln_cpio_add_hardlinks() for a contiguous group, or kiln_cpio_add() with an explicit inode for
 * members spread over a sorted archive.
 */

struct kiln_cpio;

/* One header. Fields left 0 are written as 0; ino 0 means "the next sequential number". */
struct kiln_cpio_entry {
  const char *path; /* relative, no leading "/" */
  uint32_t mode;    /* including the type bits (S_IFREG, S_IFDIR, ...) */
  uint32_t uid, gid;
  uint32_t nlink; /* 0 = 1 (2 for directories) */
  uint64_t size;  /* bytes of data that must follow via kiln_cpio_write_data (< 4 GiB) */
  uint32_t rdev_major, rdev_minor;
  uint32_t ino;
};

/* Write to an open file descriptor (not closed by kiln_cpio). mtime: seconds since the epoch. */
kiln_err kiln_cpio_open_fd(int fd, int64_t mtime, struct kiln_cpio **out, struct kiln_error *err);
/* Create/truncate path (mode 0644) and write to it. */
kiln_err kiln_cpio_open_path(const char *path, int64_t mtime, struct kiln_cpio **out,
                             struct kiln_error *err);

/* Add one header; *ino_out (optional) receives the inode number used. */
kiln_err kiln_cpio_add(struct kiln_cpio *c, const struct kiln_cpio_entry *e, uint32_t *ino_out,
                       struct kiln_error *err);
/* Stream the data of the last header added; the total must equal its declared size. */
kiln_err kiln_cpio_write_data(struct kiln_cpio *c, const void *data, size_t len,
                              struct kiln_error *err);

kiln_err kiln_cpio_add_dir(struct kiln_cpio *c, const char *path, uint32_t perm, uint32_t uid,
                           uint32_t gid, struct kiln_error *err);
/* A regular file of size bytes; follow with kiln_cpio_write_data. */
kiln_err kiln_cpio_add_file(struct kiln_cpio *c, const char *path, uint32_t perm, uint32_t uid,
                            uint32_t gid, uint64_t size, struct kiln_error *err);
/* A symlink (mode 0777) whose target is stored verbatim. */
kiln_err kiln_cpio_add_symlink(struct kiln_cpio *c, const char *path, const char *target,
                               uint32_t uid, uint32_t gid, struct kiln_error *err);
/* n paths naming one regular file of size bytes; follow with kiln_cpio_write_data. */
kiln_err kiln_cpio_add_hardlinks(struct kiln_cpio *c, const char *const *paths, size_t n,
                                 uint32_t perm, uint32_t uid, uint32_t gid, uint64_t size,
                                 struct kiln_error *err);

/* Number of bytes written so far. */
uint64_t kiln_cpio_bytes(const struct kiln_cpio *c);
/* Compute the archive's SHA-256 and CRC-32 while writing it (call before the first entry). */
kiln_err kiln_cpio_hash(struct kiln_cpio *c, struct kiln_error *err);
/* After kiln_cpio_close: the archive's SHA-256 as 64 hex digits; 0, or -1 when not computed. */
int kiln_cpio_sha256(struct kiln_cpio *c, char hex[65]);
/* After kiln_cpio_close: the archive's CRC-32 (zlib's); 0, or -1 when not computed. */
int kiln_cpio_crc32(const struct kiln_cpio *c, uint32_t *crc);
/* Check the last entry's data is complete, write the TRAILER!!! entry and flush. */
kiln_err kiln_cpio_close(struct kiln_cpio *c, struct kiln_error *err);
/* Free the writer (closes a file opened by kiln_cpio_open_path). NULL is a no-op. */
void kiln_cpio_free(struct kiln_cpio *c);

#endif
