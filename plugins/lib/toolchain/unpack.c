/* Unpacking a whole .deb with libarchive (the ar container, then data.tar.{xz,zst,gz}) under a
 * directory: regular files, directories, symlinks and hard links. Paths with ".." or leaving the
 * directory are refused; absolute symlink targets are made relative so that the unpacked tree
 * never points back into the host's filesystem. */
#define _GNU_SOURCE
#include <archive.h>
#include <archive_entry.h>
#include <stdlib.h>
#include <string.h>

#include "toolchain.h"
#include "util/buf.h"

struct outer {
  struct archive *ar;
};

static la_ssize_t read_member(struct archive *a, void *arg, const void **buf)
{
  (void)a;
  struct outer *o = arg;
  size_t size = 0;
  la_int64_t offset = 0;
  int r = archive_read_data_block(o->ar, buf, &size, &offset);
  if (r == ARCHIVE_EOF)
    return 0;
  return r == ARCHIVE_OK ? (la_ssize_t)size : -1;
}

/* "./usr/bin/x" -> "usr/bin/x"; NULL when unsafe (absolute after "./", or any ".." part). */
static const char *safe_name(const char *name)
{
  if (!name)
    return NULL;
  while (strncmp(name, "./", 2) == 0)
    name += 2;
  if (name[0] == '/')
    return NULL;
  for (const char *p = name; *p;) {
    size_t n = strcspn(p, "/");
    if (n == 2 && p[0] == '.' && p[1] == '.')
      return NULL;
    p += n;
    while (*p == '/')
      p++;
  }
  return name;
}

/* An absolute symlink target as a path relative to the link's directory inside the tree. */
static void relative_target(struct kiln_buf *out, const char *name, const char *target)
{
  for (const char *p = strchr(name, '/'); p; p = strchr(p + 1, '/'))
    kiln_buf_puts(out, "../");
  while (*target == '/')
    target++;
  kiln_buf_puts(out, *target ? target : ".");
}

static kiln_err unpack_entry(struct archive *tar, struct archive *out, struct archive_entry *e,
                             const char *deb, const char *dir, struct kiln_error *err)
{
  const char *raw = archive_entry_pathname(e);
  const char *safe = safe_name(raw);
  if (!safe)
    return kiln_error_set(err, KILN_E_INVALID, "%s: unsafe path \"%s\"", deb, raw ? raw : "");
  if (!*safe)
    return KILN_OK; /* "./" itself */
  /* A copy: setting the entry's pathname below frees the storage raw points into. */
  char *name = strdup(safe);
  if (!name)
    return KILN_E_NOMEM;
  struct kiln_buf path = KILN_BUF_INIT, link = KILN_BUF_INIT;
  kiln_err rc = KILN_OK;
  kiln_buf_printf(&path, "%s/%s", dir, name);
  archive_entry_set_pathname(e, path.data);
  const char *hard = archive_entry_hardlink(e);
  const char *sym = archive_entry_symlink(e);
  if (hard) {
    const char *h = safe_name(hard);
    if (!h)
      rc = kiln_error_set(err, KILN_E_INVALID, "%s: unsafe link \"%s\"", deb, hard);
    kiln_buf_printf(&link, "%s/%s", dir, h ? h : "");
    archive_entry_set_hardlink(e, link.data);
  } else if (sym && sym[0] == '/') {
    relative_target(&link, name, sym);
    archive_entry_set_symlink(e, link.data);
  }
  if (!rc && archive_write_header(out, e) != ARCHIVE_OK)
    rc = kiln_error_set(err, KILN_E_IO, "unpacking %s: %s", deb, archive_error_string(out));
  const void *buf;
  size_t size;
  la_int64_t off;
  int r = ARCHIVE_EOF;
  if (!rc && archive_entry_size(e) > 0 && !hard)
    while ((r = archive_read_data_block(tar, &buf, &size, &off)) == ARCHIVE_OK)
      if (archive_write_data_block(out, buf, size, off) != ARCHIVE_OK) {
        rc = kiln_error_set(err, KILN_E_IO, "unpacking %s: %s", deb, archive_error_string(out));
        break;
      }
  if (!rc && r != ARCHIVE_EOF)
    rc = kiln_error_set(err, KILN_E_INVALID, "%s: damaged data archive: %s", deb,
                        archive_error_string(tar));
  if (!rc && archive_write_finish_entry(out) != ARCHIVE_OK)
    rc = kiln_error_set(err, KILN_E_IO, "unpacking %s: %s", deb, archive_error_string(out));
  kiln_buf_free(&path);
  kiln_buf_free(&link);
  free(name);
  return rc;
}

kiln_err kiln_deb_each_data_entry(const char *deb, kiln_deb_entry_fn fn, void *arg,
                                  struct kiln_error *err)
{
  struct archive *ar = archive_read_new(), *tar = NULL;
  struct archive_entry *e;
  kiln_err rc = KILN_OK;
  int found = 0;
  archive_read_support_format_ar(ar);
  archive_read_support_filter_none(ar);
  if (archive_read_open_filename(ar, deb, 1 << 16) != ARCHIVE_OK) {
    rc = kiln_error_set(err, KILN_E_INVALID, "%s is not a Debian package: %s", deb,
                        archive_error_string(ar));
    goto out;
  }
  while (!found && archive_read_next_header(ar, &e) == ARCHIVE_OK) {
    if (strncmp(archive_entry_pathname(e), "data.tar", 8) != 0)
      continue;
    found = 1;
    tar = archive_read_new();
    archive_read_support_format_tar(tar);
    archive_read_support_filter_xz(tar);
    archive_read_support_filter_zstd(tar);
    archive_read_support_filter_gzip(tar);
    struct outer o = {ar};
    if (archive_read_open(tar, &o, NULL, read_member, NULL) != ARCHIVE_OK) {
      rc = kiln_error_set(err, KILN_E_INVALID, "%s: cannot read its data archive: %s", deb,
                          archive_error_string(tar));
      break;
    }
    struct archive_entry *te;
    int r;
    while (!rc && (r = archive_read_next_header(tar, &te)) == ARCHIVE_OK)
      rc = fn(arg, tar, te, err);
    if (!rc && r != ARCHIVE_EOF)
      rc = kiln_error_set(err, KILN_E_INVALID, "%s: damaged data archive: %s", deb,
                          archive_error_string(tar));
  }
  if (!rc && !found)
    rc = kiln_error_set(err, KILN_E_INVALID, "%s has no data.tar member", deb);
out:
  if (tar)
    archive_read_free(tar);
  archive_read_free(ar);
  return rc;
}

struct unpack_target {
  struct archive *out;
  const char *deb, *dir;
};

static kiln_err unpack_one(void *arg, struct archive *tar, struct archive_entry *e,
                           struct kiln_error *err)
{
  struct unpack_target *t = arg;
  return unpack_entry(tar, t->out, e, t->deb, t->dir, err);
}

kiln_err kiln_deb_unpack_all(const char *deb, const char *dir, struct kiln_error *err)
{
  struct archive *out = archive_write_disk_new();
  archive_write_disk_set_options(out, ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_SECURE_SYMLINKS |
                                          ARCHIVE_EXTRACT_SECURE_NODOTDOT);
  struct unpack_target t = {out, deb, dir};
  kiln_err rc = kiln_deb_each_data_entry(deb, unpack_one, &t, err);
  if (archive_write_close(out) != ARCHIVE_OK && !rc)
    rc = kiln_error_set(err, KILN_E_IO, "unpacking %s: %s", deb, archive_error_string(out));
  archive_write_free(out);
  return rc;
}
