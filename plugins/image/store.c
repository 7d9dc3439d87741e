/* Blob stores: an OCI layout directory, or an uncompressed tar (docker save, oci-archive) indexed
 * once so each blob is read in place by offset, never extracted to disk. */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image.h"
#include "util/hash.h"

#define STORE_MAX_LINK_HOPS 8
#define STORE_MAX_MEMBERS (1u << 20) /* an image archive holds blobs and a few JSON files */

struct store_entry {
  char *name;
  char *link; /* symlink or hard-link target inside the tar, or NULL */
  uint64_t offset, size;
};

struct img_store {
  char *dir;  /* directory store */
  int fd;     /* tar file, or the blob opened last from a directory */
  char *file; /* tar path (for messages) */
  struct store_entry *ents;
  size_t n;
};

void img_store_free(struct img_store *s)
{
  if (!s)
    return;
  if (s->fd >= 0)
    close(s->fd);
  for (size_t i = 0; i < s->n; i++) {
    free(s->ents[i].name);
    free(s->ents[i].link);
  }
  free(s->ents);
  free(s->dir);
  free(s->file);
  free(s);
}

kiln_err img_store_open_dir(const char *dir, struct img_store **out, struct kiln_error *err)
{
  *out = NULL;
  struct stat st;
  if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
    return kiln_error_set(err, KILN_E_NOT_FOUND, "image directory %s does not exist", dir);
  struct img_store *s = calloc(1, sizeof(*s));
  if (!s || !(s->dir = strdup(dir))) {
    free(s);
    return kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  }
  s->fd = -1;
  *out = s;
  return KILN_OK;
}

/* Strip "./" and leading "/" so names compare like manifest.json's paths. */
static const char *clean_name(const char *name)
{
  while (name[0] == '.' && name[1] == '/')
    name += 2;
  while (name[0] == '/')
    name++;
  return name;
}

kiln_err img_store_open_tar(const char *file, struct img_store **out, struct kiln_error *err)
{
  kiln_err rc = KILN_OK;
  *out = NULL;
  struct archive *a = archive_read_new();
  struct img_store *s = calloc(1, sizeof(*s));
  size_t cap = 0;
  if (!a || !s || !(s->file = strdup(file))) {
    rc = kiln_error_set(err, KILN_E_NOMEM, "out of memory");
    goto out;
  }
  s->fd = open(file, O_RDONLY | O_CLOEXEC);
  if (s->fd < 0) {
    rc = kiln_error_set(err, errno == ENOENT ? KILN_E_NOT_FOUND : KILN_E_IO,
                        "cannot open image archive %s: %s", file, strerror(errno));
    goto out;
  }
  archive_read_support_format_tar(a);
  if (archive_read_open_filename(a, file, 64 * 1024) != ARCHIVE_OK) {
    rc = kiln_error_set(err, KILN_E_INVALID, "%s is not an uncompressed tar archive: %s", file,
                        archive_error_string(a));
    goto out;
  }
  for (;;) {
    struct archive_entry *e;
    int r = archive_read_next_header(a, &e);
    if (r == ARCHIVE_EOF)
      break;
    if (r < ARCHIVE_WARN) {
      rc = kiln_error_set(err, KILN_E_INVALID,
                          "%s: %s (only uncompressed tar archives are read; "
                          "decompress it first)",
                          file, archive_error_string(a));
      goto out;
    }
    const char *name = archive_entry_pathname(e);
    if (!name)
      continue;
    if (s->n >= STORE_MAX_MEMBERS) {
      rc = kiln_error_set(err, KILN_E_INVALID,
                          "%s has more than %u members; it is not an image archive", file,
                          STORE_MAX_MEMBERS);
      goto out;
    }
    if (s->n == cap) {
      size_t ncap = cap ? cap * 2 : 32;
      struct store_entry *grown = realloc(s->ents, ncap * sizeof(*grown));
      if (!grown) {
        rc = kiln_error_set(err, KILN_E_NOMEM, "out of memory");
        goto out;
      }
      s->ents = grown;
      cap = ncap;
    }
    struct store_entry *se = &s->ents[s->n];
    memset(se, 0, sizeof(*se));
    const char *link = archive_entry_hardlink(e);
    int is_sym = archive_entry_filetype(e) == AE_IFLNK;
    if (is_sym)
      link = archive_entry_symlink(e);
    if (!(se->name = strdup(clean_name(name))) || (link && !(se->link = strdup(link)))) {
      free(se->name);
      rc = kiln_error_set(err, KILN_E_NOMEM, "out of memory");
      goto out;
    }
    if (link && !is_sym) { /* hard links name the tar member verbatim */
      char *c = strdup(clean_name(link));
      free(se->link);
      se->link = c;
    } else if (is_sym && se->link) {
      /* resolve relative to the entry's directory: keep "dir/" + target */
      const char *slash = strrchr(se->name, '/');
      struct kiln_buf b = KILN_BUF_INIT;
      if (se->link[0] != '/' && slash)
        kiln_buf_append(&b, se->name, (size_t)(slash - se->name) + 1);
      kiln_buf_puts(&b, se->link);
      free(se->link);
      se->link = kiln_buf_detach(&b);
    }
    /* The tar reader has consumed the header: the data starts here. */
    se->offset = (uint64_t)archive_filter_bytes(a, 0);
    se->size = archive_entry_size_is_set(e) ? (uint64_t)archive_entry_size(e) : 0;
    s->n++;
  }
  if (archive_filter_count(a) > 1) {
    rc = kiln_error_set(err, KILN_E_UNSUPPORTED,
                        "%s is compressed; decompress it first (gunzip/zstd -d)", file);
    goto out;
  }
  *out = s;
  s = NULL;
out:
  archive_read_free(a);
  img_store_free(s);
  return rc;
}

/* Lexically resolve "a/../b" in a tar member path; returns a new string. */
static char *lexical(const char *path)
{
  struct kiln_buf out = KILN_BUF_INIT;
  /* img_path_normalise refuses "..": handle it here by dropping the previous component. */
  const char *p = path;
  while (*p) {
    while (*p == '/')
      p++;
    size_t len = strcspn(p, "/");
    if (len == 2 && p[0] == '.' && p[1] == '.') {
      char *slash = out.len ? strrchr(out.data, '/') : NULL;
      out.len = slash ? (size_t)(slash - out.data) : 0;
      if (out.data)
        out.data[out.len] = '\0';
    } else if (len && !(len == 1 && p[0] == '.')) {
      if (out.len)
        kiln_buf_putc(&out, '/');
      kiln_buf_append(&out, p, len);
    }
    p += len;
  }
  if (!out.data)
    kiln_buf_append(&out, "", 0);
  return kiln_buf_detach(&out);
}

static const struct store_entry *tar_find(const struct img_store *s, const char *path)
{
  char *cur = lexical(path);
  const struct store_entry *found = NULL;
  for (int hops = 0; cur && hops < STORE_MAX_LINK_HOPS; hops++) {
    found = NULL;
    for (size_t i = s->n; i-- > 0;)
      if (strcmp(s->ents[i].name, cur) == 0) {
        found = &s->ents[i];
        break;
      }
    if (!found || !found->link)
      break;
    free(cur);
    cur = lexical(found->link);
    found = NULL;
  }
  free(cur);
  return found;
}

int img_store_has(struct img_store *s, const char *path)
{
  if (s->dir) {
    char *full = NULL;
    struct kiln_buf b = KILN_BUF_INIT;
    kiln_buf_printf(&b, "%s/%s", s->dir, path);
    full = kiln_buf_detach(&b);
    int ok = full && access(full, R_OK) == 0;
    free(full);
    return ok;
  }
  return tar_find(s, path) != NULL;
}

kiln_err img_store_blob(struct img_store *s, const char *path, struct img_blob *b,
                        struct kiln_error *err)
{
  if (s->dir) {
    if (strstr(path, "../") || strcmp(path, "..") == 0 || path[0] == '/')
      return kiln_error_set(err, KILN_E_INVALID, "blob path %s leaves the image directory", path);
    struct kiln_buf full = KILN_BUF_INIT;
    if (kiln_buf_printf(&full, "%s/%s", s->dir, path))
      return kiln_error_set(err, KILN_E_NOMEM, "out of memory");
    if (s->fd >= 0)
      close(s->fd);
    s->fd = open(full.data, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (s->fd < 0 || fstat(s->fd, &st) != 0 || !S_ISREG(st.st_mode)) {
      kiln_err rc = kiln_error_set(err, KILN_E_NOT_FOUND, "blob %s is missing in %s", path, s->dir);
      kiln_buf_free(&full);
      return rc;
    }
    kiln_buf_free(&full);
    b->fd = s->fd;
    b->offset = 0;
    b->size = (uint64_t)st.st_size;
    return KILN_OK;
  }
  const struct store_entry *e = tar_find(s, path);
  if (!e)
    return kiln_error_set(err, KILN_E_NOT_FOUND, "%s has no member %s", s->file, path);
  b->fd = s->fd;
  b->offset = e->offset;
  b->size = e->size;
  return KILN_OK;
}

kiln_err img_store_read(struct img_store *s, const char *path, const char *digest, size_t max,
                        char **out, size_t *len, struct kiln_error *err)
{
  struct img_blob b = {0};
  *out = NULL;
  kiln_err rc = img_store_blob(s, path, &b, err);
  if (rc)
    return rc;
  if (b.size > max)
    return kiln_error_set(err, KILN_E_INVALID, "%s is %llu bytes; refusing more than %zu", path,
                          (unsigned long long)b.size, max);
  char *buf = malloc((size_t)b.size + 1);
  if (!buf)
    return kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  size_t got = 0;
  while (got < b.size) {
    ssize_t n = pread(b.fd, buf + got, (size_t)b.size - got, (off_t)(b.offset + got));
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      free(buf);
      return kiln_error_set(err, KILN_E_IO, "reading %s failed: %s", path,
                            n < 0 ? strerror(errno) : "unexpected end of file");
    }
    got += (size_t)n;
  }
  buf[got] = '\0';
  if (digest) {
    char hex[KILN_SHA256_HEX_LEN + 1];
    kiln_sha256_hex(buf, got, hex);
    const char *want = kiln_sha256_digest_hex(digest);
    if (!want || strcmp(want, hex) != 0) {
      free(buf);
      return kiln_error_set(err, KILN_E_INVALID,
                            "%s: digest mismatch: expected %s, got sha256:%s (corrupt image?)",
                            path, digest, hex);
    }
  }
  *out = buf;
  *len = got;
  return KILN_OK;
}

kiln_err img_digest_path(const char *digest, char **out, struct kiln_error *err)
{
  *out = NULL;
  if (!kiln_digest_is_sha256(digest))
    return kiln_error_set(err, KILN_E_UNSUPPORTED,
                          "digest \"%s\" is not sha256 (the only algorithm kiln reads)",
                          digest ? digest : "(missing)");
  const char *hex = kiln_sha256_digest_hex(digest);
  if (!hex)
    return kiln_error_set(err, KILN_E_INVALID, "digest \"%s\" is not 64 lowercase hex digits",
                          digest);
  struct kiln_buf b = KILN_BUF_INIT;
  if (kiln_buf_printf(&b, "blobs/sha256/%s", hex))
    return kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  *out = kiln_buf_detach(&b);
  return KILN_OK;
}
