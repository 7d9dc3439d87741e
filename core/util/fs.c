/* Filesystem helpers: paths, directories, atomic writes, bounded reads, copies. */
#define _GNU_SOURCE
#include "util/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/buf.h"

char *kiln_path_join(const char *a, const char *b)
{
  if (b[0] == '/' || a[0] == '\0')
    return strdup(b);
  size_t la = strlen(a), lb = strlen(b);
  while (la > 1 && a[la - 1] == '/')
    la--;
  char *out = malloc(la + 1 + lb + 1);
  if (!out)
    return NULL;
  memcpy(out, a, la);
  size_t pos = la;
  if (!(la == 1 && a[0] == '/'))
    out[pos++] = '/';
  memcpy(out + pos, b, lb + 1);
  return out;
}

char *kiln_path_absolute(const char *base, const char *path)
{
  char *joined = NULL;
  if (path[0] == '/') {
    joined = strdup(path);
  } else {
    char *cwd = NULL;
    if (!base) {
      cwd = getcwd(NULL, 0);
      if (!cwd)
        return NULL;
      base = cwd;
    }
    joined = kiln_path_join(base, path);
    free(cwd);
  }
  if (!joined)
    return NULL;
  /* Lexical normalisation: drop "." and empty parts, resolve ".." against earlier parts. */
  size_t n = strlen(joined);
  char *out = malloc(n + 2);
  if (!out) {
    free(joined);
    return NULL;
  }
  size_t len = 0;
  char *save = NULL;
  for (char *part = strtok_r(joined, "/", &save); part; part = strtok_r(NULL, "/", &save)) {
    if (strcmp(part, ".") == 0)
      continue;
    if (strcmp(part, "..") == 0) {
      while (len > 0 && out[len - 1] != '/')
        len--;
      if (len > 0)
        len--;
      continue;
    }
    out[len++] = '/';
    size_t pl = strlen(part);
    memcpy(out + len, part, pl);
    len += pl;
  }
  if (len == 0)
    out[len++] = '/';
  out[len] = '\0';
  free(joined);
  return out;
}

kiln_err kiln_mkdir_p(const char *path, mode_t mode, struct kiln_error *err)
{
  char *p = strdup(path);
  if (!p)
    return kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  for (char *s = p + 1;; s++) {
    if (*s == '/' || *s == '\0') {
      char saved = *s;
      *s = '\0';
      if (mkdir(p, mode) != 0 && errno != EEXIST) {
        kiln_err rc =
            kiln_error_set(err, KILN_E_IO, "cannot create directory %s: %s", p, strerror(errno));
        free(p);
        return rc;
      }
      *s = saved;
      if (saved == '\0')
        break;
    }
  }
  free(p);
  if (!kiln_is_dir(path))
    return kiln_error_set(err, KILN_E_IO, "%s exists and is not a directory", path);
  return KILN_OK;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
  (void)st;
  (void)ftw;
  int rc = (flag == FTW_DP) ? rmdir(path) : unlink(path);
  if (rc != 0 && errno != ENOENT) {
    /* A directory we cannot enter or remove: make it writable and try once more. */
    if (flag == FTW_DP && errno == EACCES) {
      chmod(path, 0700);
      return rmdir(path) == 0 ? 0 : -1;
    }
    return -1;
  }
  return 0;
}

kiln_err kiln_rm_rf(const char *path, struct kiln_error *err)
{
  struct stat st;
  if (lstat(path, &st) != 0)
    return errno == ENOENT
               ? KILN_OK
               : kiln_error_set(err, KILN_E_IO, "cannot inspect %s: %s", path, strerror(errno));
  if (!S_ISDIR(st.st_mode)) {
    if (unlink(path) != 0 && errno != ENOENT)
      return kiln_error_set(err, KILN_E_IO, "cannot remove %s: %s", path, strerror(errno));
    return KILN_OK;
  }
  if (nftw(path, rm_one, 32, FTW_DEPTH | FTW_PHYS) != 0)
    return kiln_error_set(err, KILN_E_IO, "cannot remove %s: %s", path, strerror(errno));
  return KILN_OK;
}

void kiln_rm_rf_quiet(const char *path)
{
  struct kiln_error e = KILN_ERROR_INIT;
  kiln_err rc = kiln_rm_rf(path, &e);
  (void)rc; /* best effort by design */
  kiln_error_clear(&e);
}

kiln_err kiln_mkdtemp_in(const char *parent, const char *prefix, char **out, struct kiln_error *err)
{
  struct kiln_buf b = KILN_BUF_INIT;
  if (kiln_buf_printf(&b, "%s/%sXXXXXX", parent, prefix))
    return kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  if (!mkdtemp(b.data)) {
    kiln_err rc = kiln_error_set(err, KILN_E_IO, "cannot create a temporary directory in %s: %s",
                                 parent, strerror(errno));
    kiln_buf_free(&b);
    return rc;
  }
  *out = kiln_buf_detach(&b);
  return KILN_OK;
}

int kiln_open_regular(const char *path, struct stat *st, struct kiln_error *err)
{
  struct stat local;
  if (!st)
    st = &local;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    kiln_error_set(err, errno == ENOENT ? KILN_E_NOT_FOUND : KILN_E_IO, "cannot open %s: %s", path,
                   strerror(errno));
    return -1;
  }
  if (fstat(fd, st) != 0 || !S_ISREG(st->st_mode)) {
    close(fd);
    kiln_error_set(err, KILN_E_INVALID, "%s is not a regular file", path);
    return -1;
  }
  return fd;
}

kiln_err kiln_read_stream(int fd, const char *name,
                          kiln_err (*sink)(void *arg, const void *data, size_t len), void *arg,
                          struct kiln_error *err)
{
  enum { CHUNK = 1 << 20 };
  char *chunk = malloc(CHUNK);
  if (!chunk)
    return kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  kiln_err rc = KILN_OK;
  for (;;) {
    ssize_t n = read(fd, chunk, CHUNK);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      rc = kiln_error_set(err, KILN_E_IO, "cannot read %s: %s", name, strerror(errno));
      break;
    }
    if (n == 0 || (rc = sink(arg, chunk, (size_t)n)))
      break;
  }
  free(chunk);
  return rc;
}

struct bounded_buf {
  struct kiln_buf buf;
  size_t max;
};

static kiln_err append_bounded(void *arg, const void *data, size_t len)
{
  struct bounded_buf *b = arg;
  if (b->buf.len + len > b->max)
    return KILN_E_INVALID;
  return kiln_buf_append(&b->buf, data, len);
}

kiln_err kiln_read_file(const char *path, size_t max_size, char **out, size_t *len,
                        struct kiln_error *err)
{
  *out = NULL;
  if (len)
    *len = 0;
  struct stat st;
  int fd = kiln_open_regular(path, &st, err);
  if (fd < 0)
    return err ? err->code : KILN_E_IO;
  if ((uint64_t)st.st_size > max_size) {
    close(fd);
    return kiln_error_set(err, KILN_E_INVALID, "%s is too large (%lld bytes, at most %zu)", path,
                          (long long)st.st_size, max_size);
  }
  struct bounded_buf b = {KILN_BUF_INIT, max_size};
  kiln_err rc = kiln_read_stream(fd, path, append_bounded, &b, err);
  close(fd);
  if (rc) {
    kiln_buf_free(&b.buf);
    if (rc == KILN_E_INVALID || rc == KILN_E_NOMEM)
      kiln_error_set(err, KILN_E_INVALID, "%s is too large (at most %zu bytes)", path, max_size);
    return err ? err->code : rc;
  }
  if (len)
    *len = b.buf.len;
  *out = kiln_buf_detach(&b.buf);
  return *out ? KILN_OK : kiln_error_set(err, KILN_E_NOMEM, "out of memory");
}

static kiln_err write_all(int fd, const void *data, size_t len)
{
  const char *p = data;
  while (len) {
    ssize_t n = write(fd, p, len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return KILN_E_IO;
    p += n;
    len -= (size_t)n;
  }
  return KILN_OK;
}

/* Open "<path>.tmp.XXXXXX" beside path; *tmp receives its name. */
static int open_temp_beside(const char *path, char **tmp)
{
  struct kiln_buf b = KILN_BUF_INIT;
  if (kiln_buf_printf(&b, "%s.tmp.XXXXXX", path)) {
    kiln_buf_free(&b);
    return -1;
  }
  int fd = mkostemp(b.data, O_CLOEXEC);
  if (fd < 0) {
    kiln_buf_free(&b);
    return -1;
  }
  *tmp = kiln_buf_detach(&b);
  return fd;
}

kiln_err kiln_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode,
                                struct kiln_error *err)
{
  char *tmp = NULL;
  int fd = open_temp_beside(path, &tmp);
  if (fd < 0)
    return kiln_error_set(err, KILN_E_IO, "cannot write %s: %s", path, strerror(errno));
  kiln_err rc = KILN_OK;
  if (fchmod(fd, mode) != 0 || write_all(fd, data, len) != KILN_OK || fsync(fd) != 0) {
    rc = kiln_error_set(err, KILN_E_IO, "cannot write %s: %s", path, strerror(errno));
    close(fd);
    unlink(tmp);
    free(tmp);
    return rc;
  }
  if (close(fd) != 0 || rename(tmp, path) != 0) {
    rc = kiln_error_set(err, KILN_E_IO, "cannot write %s: %s", path, strerror(errno));
    unlink(tmp);
  }
  free(tmp);
  return rc;
}

struct copy_target {
  int fd;
};

static kiln_err write_sink(void *arg, const void *data, size_t len)
{
  return write_all(((struct copy_target *)arg)->fd, data, len);
}

kiln_err kiln_copy_file(const char *src, const char *dst, struct kiln_error *err)
{
  struct stat st;
  int in = kiln_open_regular(src, &st, err);
  if (in < 0)
    return err ? err->code : KILN_E_IO;
  char *tmp = NULL;
  int out = open_temp_beside(dst, &tmp);
  if (out < 0) {
    kiln_err rc = kiln_error_set(err, KILN_E_IO, "cannot write %s: %s", dst, strerror(errno));
    close(in);
    return rc;
  }
  struct copy_target target = {out};
  kiln_err rc = kiln_read_stream(in, src, write_sink, &target, err);
  if (rc == KILN_E_IO && err && !err->msg)
    kiln_error_set(err, KILN_E_IO, "cannot write %s: %s", dst, strerror(errno));
  if (!rc && (fchmod(out, (st.st_mode & 0111) ? 0755 : 0644) != 0 || fsync(out) != 0))
    rc = kiln_error_set(err, KILN_E_IO, "cannot write %s: %s", dst, strerror(errno));
  close(in);
  if (close(out) != 0 && rc == KILN_OK)
    rc = kiln_error_set(err, KILN_E_IO, "cannot write %s: %s", dst, strerror(errno));
  if (rc == KILN_OK && rename(tmp, dst) != 0)
    rc = kiln_error_set(err, KILN_E_IO, "cannot write %s: %s", dst, strerror(errno));
  if (rc != KILN_OK)
    unlink(tmp);
  free(tmp);
  return rc;
}

kiln_err kiln_link_or_copy(const char *src, const char *dst, struct kiln_error *err)
{
  struct kiln_buf tmp = KILN_BUF_INIT;
  if (kiln_buf_printf(&tmp, "%s.link.%ld", dst, (long)getpid())) {
    kiln_buf_free(&tmp);
    return kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  }
  unlink(tmp.data);
  if (link(src, tmp.data) == 0) {
    if (rename(tmp.data, dst) == 0) {
      kiln_buf_free(&tmp);
      return KILN_OK;
    }
    unlink(tmp.data);
  }
  kiln_buf_free(&tmp);
  return kiln_copy_file(src, dst, err);
}

int kiln_path_exists(const char *path)
{
  struct stat st;
  return lstat(path, &st) == 0;
}

int kiln_is_dir(const char *path)
{
  struct stat st;
  return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int kiln_same_file(const char *a, const char *b)
{
  struct stat sa, sb;
  return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}
