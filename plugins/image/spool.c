/* The spool: regular-file contents of every layer appended to one unlinked temp file, so the
 * tree holds only offsets and memory stays bounded whatever the image size. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "image.h"

#define SPOOL_BUF_SIZE (1u << 20)

struct img_spool {
  int fd;
  uint64_t flushed; /* bytes on disk */
  size_t buf_len;
  unsigned char *buf;
};

kiln_err img_spool_new(const char *temp_dir, struct img_spool **out, struct kiln_error *err)
{
  kiln_err rc = KILN_OK;
  struct kiln_buf path = KILN_BUF_INIT;
  struct img_spool *s = calloc(1, sizeof(*s));
  *out = NULL;
  if (s)
    s->fd = -1;
  if (!s || !(s->buf = malloc(SPOOL_BUF_SIZE))) {
    rc = kiln_error_set(err, KILN_E_NOMEM, "out of memory creating the layer spool");
    goto out;
  }
  s->fd = open(temp_dir, O_RDWR | O_TMPFILE | O_CLOEXEC, 0600);
  if (s->fd < 0) {
    /* Filesystems without O_TMPFILE: a named file, unlinked at once. */
    if ((rc = kiln_buf_printf(&path, "%s/spool-XXXXXX", temp_dir))) {
      kiln_error_set(err, rc, "out of memory");
      goto out;
    }
    s->fd = mkostemp(path.data, O_CLOEXEC);
    if (s->fd >= 0)
      unlink(path.data);
  }
  if (s->fd < 0) {
    rc = kiln_error_set(err, KILN_E_IO, "cannot create a spool file in %s: %s", temp_dir,
                        strerror(errno));
    goto out;
  }
  *out = s;
  s = NULL;
out:
  kiln_buf_free(&path);
  img_spool_free(s);
  return rc;
}

void img_spool_free(struct img_spool *s)
{
  if (!s)
    return;
  if (s->fd >= 0)
    close(s->fd);
  free(s->buf);
  free(s);
}

uint64_t img_spool_tell(const struct img_spool *s)
{
  return s->flushed + s->buf_len;
}

static kiln_err spool_flush(struct img_spool *s, struct kiln_error *err)
{
  size_t off = 0;
  while (off < s->buf_len) {
    ssize_t n = pwrite(s->fd, s->buf + off, s->buf_len - off, (off_t)(s->flushed + off));
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return kiln_error_set(err, KILN_E_IO,
                            "writing the layer spool failed: %s (free space in the temp dir?)",
                            n < 0 ? strerror(errno) : "short write");
    off += (size_t)n;
  }
  s->flushed += s->buf_len;
  s->buf_len = 0;
  return KILN_OK;
}

kiln_err img_spool_append(struct img_spool *s, const void *data, size_t len, struct kiln_error *err)
{
  const unsigned char *p = data;
  while (len > 0) {
    size_t take = SPOOL_BUF_SIZE - s->buf_len;
    if (take > len)
      take = len;
    memcpy(s->buf + s->buf_len, p, take);
    s->buf_len += take;
    p += take;
    len -= take;
    if (s->buf_len == SPOOL_BUF_SIZE) {
      kiln_err rc = spool_flush(s, err);
      if (rc)
        return rc;
    }
  }
  return KILN_OK;
}

kiln_err img_spool_read(struct img_spool *s, uint64_t off, void *buf, size_t len,
                        struct kiln_error *err)
{
  kiln_err rc;
  if (s->buf_len && (rc = spool_flush(s, err)))
    return rc;
  unsigned char *p = buf;
  while (len > 0) {
    ssize_t n = pread(s->fd, p, len, (off_t)off);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return kiln_error_set(err, KILN_E_IO, "reading the layer spool failed: %s",
                            n < 0 ? strerror(errno) : "unexpected end of file");
    p += n;
    off += (uint64_t)n;
    len -= (size_t)n;
  }
  return KILN_OK;
}
