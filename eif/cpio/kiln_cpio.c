/* kiln_cpio: newc headers, padding and trailer written by hand so every byte is under our control
 * (libarchive's newc writer takes inode numbers and link counts from the entry and would need the
 * same bookkeeping; writing the 110-byte header ourselves is simpler and has no hidden defaults).
 */
#include "kiln_cpio.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libdeflate.h>
#include <openssl/evp.h>

#define CPIO_BUF_SIZE (128u * 1024u)
#define CPIO_MAX_FIELD 0xffffffffu

struct kiln_cpio {
  int fd;
  int own_fd;
  uint32_t mtime;
  uint32_t next_ino;
  uint64_t data_left; /* bytes still owed for the last header */
  uint32_t pad_after; /* padding to write once the data is complete */
  uint64_t written;
  int failed;
  EVP_MD_CTX *sha256; /* the archive's SHA-256 as it is written (kiln_cpio_hash) */
  uint32_t crc32;     /* and its CRC-32 */
  size_t buf_len;
  unsigned char buf[CPIO_BUF_SIZE];
};

static kiln_err flush_buf(struct kiln_cpio *c, struct kiln_error *err)
{
  size_t off = 0;
  if (c->sha256) {
    EVP_DigestUpdate(c->sha256, c->buf, c->buf_len);
    c->crc32 = (uint32_t)libdeflate_crc32(c->crc32, c->buf, c->buf_len);
  }
  while (off < c->buf_len) {
    ssize_t n = write(c->fd, c->buf + off, c->buf_len - off);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      c->failed = 1;
      return kiln_error_set(err, KILN_E_IO, "writing the cpio archive failed: %s",
                            n < 0 ? strerror(errno) : "short write");
    }
    off += (size_t)n;
  }
  c->buf_len = 0;
  return KILN_OK;
}

static kiln_err put(struct kiln_cpio *c, const void *data, size_t len, struct kiln_error *err)
{
  const unsigned char *p = data;
  while (len > 0) {
    size_t room = CPIO_BUF_SIZE - c->buf_len;
    size_t take = len < room ? len : room;
    memcpy(c->buf + c->buf_len, p, take);
    c->buf_len += take;
    p += take;
    len -= take;
    c->written += take;
    if (c->buf_len == CPIO_BUF_SIZE) {
      kiln_err rc = flush_buf(c, err);
      if (rc)
        return rc;
    }
  }
  return KILN_OK;
}

static uint32_t pad4(uint64_t n)
{
  return (uint32_t)((4 - (n & 3)) & 3);
}

kiln_err kiln_cpio_open_fd(int fd, int64_t mtime, struct kiln_cpio **out, struct kiln_error *err)
{
  *out = NULL;
  if (mtime < 0 || mtime > (int64_t)CPIO_MAX_FIELD)
    return kiln_error_set(err, KILN_E_INVALID,
                          "cpio mtime %" PRId64 " does not fit newc's 32-bit field; use a "
                          "SOURCE_DATE_EPOCH between 0 and 4294967295",
                          mtime);
  struct kiln_cpio *c = calloc(1, sizeof(*c));
  if (!c)
    return kiln_error_set(err, KILN_E_NOMEM, "out of memory creating a cpio writer");
  c->fd = fd;
  c->mtime = (uint32_t)mtime;
  c->next_ino = 1;
  *out = c;
  return KILN_OK;
}

kiln_err kiln_cpio_open_path(const char *path, int64_t mtime, struct kiln_cpio **out,
                             struct kiln_error *err)
{
  *out = NULL;
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    return kiln_error_set(err, KILN_E_IO, "cannot create cpio archive %s: %s", path,
                          strerror(errno));
  kiln_err rc = kiln_cpio_open_fd(fd, mtime, out, err);
  if (rc) {
    close(fd);
    return rc;
  }
  (*out)->own_fd = 1;
  return KILN_OK;
}

static kiln_err check_data_done(struct kiln_cpio *c, struct kiln_error *err)
{
  if (c->data_left)
    return kiln_error_set(err, KILN_E_INTERNAL,
                          "cpio entry data incomplete: %" PRIu64 " bytes still expected",
                          c->data_left);
  return KILN_OK;
}

/* One header + name + padding; ino is used as given (0 for the trailer). */
static kiln_err write_header(struct kiln_cpio *c, const struct kiln_cpio_entry *e, uint32_t ino,
                             uint32_t mtime, struct kiln_error *err)
{
  kiln_err rc;
  size_t namesize = strlen(e->path) + 1;
  if (e->size > CPIO_MAX_FIELD || namesize > CPIO_MAX_FIELD)
    return kiln_error_set(err, KILN_E_UNSUPPORTED,
                          "%s: %" PRIu64 " bytes is too large for a newc cpio entry (limit 4 GiB)",
                          e->path, e->size);
  uint32_t nlink = e->nlink ? e->nlink : ((e->mode & S_IFMT) == S_IFDIR ? 2 : 1);
  char hdr[111];
  snprintf(hdr, sizeof(hdr),
           "070701%08" PRIX32 "%08" PRIX32 "%08" PRIX32 "%08" PRIX32 "%08" PRIX32 "%08" PRIX32
           "%08" PRIX32 "%08" PRIX32 "%08" PRIX32 "%08" PRIX32 "%08" PRIX32 "%08" PRIX32
           "%08" PRIX32,
           ino, e->mode, e->uid, e->gid, nlink, mtime, (uint32_t)e->size, (uint32_t)0, (uint32_t)0,
           e->rdev_major, e->rdev_minor, (uint32_t)namesize, (uint32_t)0);
  static const char zeros[4] = {0};
  if ((rc = put(c, hdr, 110, err)) || (rc = put(c, e->path, namesize, err)) ||
      (rc = put(c, zeros, pad4(110 + namesize), err)))
    return rc;
  c->data_left = e->size;
  c->pad_after = pad4(e->size);
  return KILN_OK;
}

kiln_err kiln_cpio_add(struct kiln_cpio *c, const struct kiln_cpio_entry *e, uint32_t *ino_out,
                       struct kiln_error *err)
{
  kiln_err rc = KILN_OK;
  if (c->failed)
    return kiln_error_set(err, KILN_E_IO, "cpio archive is unusable after an earlier failure");
  if ((rc = check_data_done(c, err)))
    return rc;
  if (!e->path[0] || e->path[0] == '/' || strcmp(e->path, "TRAILER!!!") == 0)
    return kiln_error_set(err, KILN_E_INVALID,
                          "cpio entry name \"%s\" must be relative, non-empty and not the trailer",
                          e->path);
  uint32_t ino = e->ino;
  if (ino == 0) {
    if (c->next_ino == CPIO_MAX_FIELD)
      return kiln_error_set(err, KILN_E_NOMEM, "too many cpio entries");
    ino = c->next_ino++;
  }
  if ((rc = write_header(c, e, ino, c->mtime, err)))
    return rc;
  if (ino_out)
    *ino_out = ino;
  return KILN_OK;
}

kiln_err kiln_cpio_write_data(struct kiln_cpio *c, const void *data, size_t len,
                              struct kiln_error *err)
{
  kiln_err rc;
  if (len > c->data_left)
    return kiln_error_set(err, KILN_E_INTERNAL,
                          "cpio entry data overflow: %zu bytes given, %" PRIu64 " expected", len,
                          c->data_left);
  if ((rc = put(c, data, len, err)))
    return rc;
  c->data_left -= len;
  if (c->data_left == 0 && c->pad_after) {
    static const char zeros[4] = {0};
    rc = put(c, zeros, c->pad_after, err);
    c->pad_after = 0;
  }
  return rc;
}

kiln_err kiln_cpio_add_dir(struct kiln_cpio *c, const char *path, uint32_t perm, uint32_t uid,
                           uint32_t gid, struct kiln_error *err)
{
  struct kiln_cpio_entry e = {
      .path = path, .mode = S_IFDIR | (perm & 07777), .uid = uid, .gid = gid};
  return kiln_cpio_add(c, &e, NULL, err);
}

kiln_err kiln_cpio_add_file(struct kiln_cpio *c, const char *path, uint32_t perm, uint32_t uid,
                            uint32_t gid, uint64_t size, struct kiln_error *err)
{
  struct kiln_cpio_entry e = {
      .path = path, .mode = S_IFREG | (perm & 07777), .uid = uid, .gid = gid, .size = size};
  return kiln_cpio_add(c, &e, NULL, err);
}

kiln_err kiln_cpio_add_symlink(struct kiln_cpio *c, const char *path, const char *target,
                               uint32_t uid, uint32_t gid, struct kiln_error *err)
{
  size_t len = strlen(target);
  struct kiln_cpio_entry e = {
      .path = path, .mode = S_IFLNK | 0777, .uid = uid, .gid = gid, .size = len};
  kiln_err rc = kiln_cpio_add(c, &e, NULL, err);
  if (!rc)
    rc = kiln_cpio_write_data(c, target, len, err);
  return rc;
}

kiln_err kiln_cpio_add_hardlinks(struct kiln_cpio *c, const char *const *paths, size_t n,
                                 uint32_t perm, uint32_t uid, uint32_t gid, uint64_t size,
                                 struct kiln_error *err)
{
  if (n == 0 || n > CPIO_MAX_FIELD)
    return kiln_error_set(err, KILN_E_INVALID, "a hard-link group needs 1 to 2^32-1 paths");
  uint32_t ino = 0;
  for (size_t i = 0; i < n; i++) {
    struct kiln_cpio_entry e = {.path = paths[i],
                                .mode = S_IFREG | (perm & 07777),
                                .uid = uid,
                                .gid = gid,
                                .nlink = (uint32_t)n,
                                .size = i + 1 == n ? size : 0,
                                .ino = ino};
    kiln_err rc = kiln_cpio_add(c, &e, &ino, err);
    if (rc)
      return rc;
  }
  return KILN_OK;
}

uint64_t kiln_cpio_bytes(const struct kiln_cpio *c)
{
  return c->written;
}

kiln_err kiln_cpio_close(struct kiln_cpio *c, struct kiln_error *err)
{
  kiln_err rc;
  if ((rc = check_data_done(c, err)))
    return rc;
  /* The trailer: inode 0, nlink 1, mtime 0, no data (what GNU cpio --reproducible writes). */
  struct kiln_cpio_entry e = {.path = "TRAILER!!!", .nlink = 1};
  if ((rc = write_header(c, &e, 0, 0, err)))
    return rc;
  return flush_buf(c, err);
}

kiln_err kiln_cpio_hash(struct kiln_cpio *c, struct kiln_error *err)
{
  if (c->written || c->sha256)
    return kiln_error_set(err, KILN_E_INTERNAL, "kiln_cpio_hash after the first entry");
  if (!(c->sha256 = EVP_MD_CTX_new()) || EVP_DigestInit_ex(c->sha256, EVP_sha256(), NULL) != 1)
    return kiln_error_set(err, KILN_E_NOMEM, "cannot set up the archive's SHA-256");
  return KILN_OK;
}

int kiln_cpio_crc32(const struct kiln_cpio *c, uint32_t *crc)
{
  if (!c->sha256 || c->buf_len)
    return -1;
  *crc = c->crc32;
  return 0;
}

int kiln_cpio_sha256(struct kiln_cpio *c, char hex[65])
{
  unsigned char d[32];
  unsigned int n = 0;
  if (!c->sha256 || c->buf_len || EVP_DigestFinal_ex(c->sha256, d, &n) != 1 || n != sizeof d)
    return -1;
  for (unsigned i = 0; i < n; i++)
    snprintf(hex + 2 * i, 3, "%02x", d[i]);
  return 0;
}

void kiln_cpio_free(struct kiln_cpio *c)
{
  if (!c)
    return;
  EVP_MD_CTX_free(c->sha256);
  if (c->own_fd)
    close(c->fd);
  free(c);
}
