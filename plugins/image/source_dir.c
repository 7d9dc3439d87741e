/* dir:PATH sources: a plain directory tree applied as the only layer, read with libarchive's disk
 * reader (symlinks not followed); owners become 0:0 so the result is the same for every user. */
#include <archive.h>
#include <archive_entry.h>
#include <string.h>

#include "image.h"

kiln_err img_layer_apply_dir(struct img_tree *t, const char *dir, uint32_t layer,
                             struct kiln_error *err)
{
  kiln_err rc = KILN_OK;
  struct archive *a = archive_read_disk_new();
  int truncated = 0;
  size_t dlen = strlen(dir);
  if (!a)
    return kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  t->layer_label = dir;
  archive_read_disk_set_symlink_physical(a);
  archive_read_disk_set_behavior(a, ARCHIVE_READDISK_NO_XATTR | ARCHIVE_READDISK_NO_ACL |
                                        ARCHIVE_READDISK_NO_FFLAGS);
  if (archive_read_disk_open(a, dir) != ARCHIVE_OK) {
    rc = kiln_error_set(err, KILN_E_NOT_FOUND, "cannot read directory %s: %s", dir,
                        archive_error_string(a));
    goto out;
  }
  for (;;) {
    struct archive_entry *e;
    int r = archive_read_next_header(a, &e);
    if (r == ARCHIVE_EOF)
      break;
    if (r < ARCHIVE_WARN) {
      rc = kiln_error_set(err, KILN_E_IO, "reading %s failed: %s", dir, archive_error_string(a));
      goto out;
    }
    archive_read_disk_descend(a);
    const char *p = archive_entry_pathname(e);
    if (!p || strncmp(p, dir, dlen) != 0)
      continue;
    archive_entry_set_pathname(e, p[dlen] ? p + dlen : "/");
    archive_entry_set_uid(e, 0);
    archive_entry_set_gid(e, 0);
    if ((rc = img_layer_apply_entry(t, a, e, layer, &truncated, err))) {
      kiln_error_prefix(err, "dir:%s", dir);
      goto out;
    }
  }
out:
  archive_read_free(a);
  return rc;
}
