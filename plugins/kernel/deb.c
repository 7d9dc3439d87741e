/* Debian packages for the kernel stage: a pinned version fetched and verified by sha256 (the
 * toolchain's fetcher, no apt), and selected files unpacked with libarchive (the ar container,
 * then data.tar.*). */
#define _GNU_SOURCE
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kernel.h"
#include "toolchain.h"
#include "util/buf.h"
#include "util/fs.h"

/* The pin of package=version in share/toolchain/kernel.pins, fetched and verified like the
 * toolchain's packages (download cache, /toolchain/debs, mirrors, snapshot pattern). */
kiln_err kiln_deb_fetch(struct kiln_stage_ctx *ctx, const struct kiln_host *host,
                        const char *package, const char *version, char **deb,
                        struct kiln_error *err)
{
  *deb = NULL;
  struct kiln_pins pins;
  struct kiln_fetch_config fc;
  char *path = kiln_path_join(host->share_dir(ctx), "toolchain/kernel.pins");
  char *cache = kiln_cache_root_from_state(host->state_dir(ctx));
  kiln_err rc = path && cache ? kiln_pins_load(path, &pins, err) : KILN_E_NOMEM;
  if (rc)
    goto out;
  rc = kiln_fetch_config_init(&fc, host->config(ctx), host->app_dir(ctx), cache, err);
  const struct kiln_pin *pin = NULL;
  for (size_t i = 0; !rc && i < pins.count && !pin; i++)
    if (strcmp(pins.items[i].package, package) == 0 && strcmp(pins.items[i].version, version) == 0)
      pin = &pins.items[i];
  if (!rc && !pin)
    rc = kiln_error_set(err, KILN_E_NOT_FOUND, "%s pins no %s %s", path, package, version);
  if (!rc)
    rc = kiln_pin_fetch(pin, &fc, deb, err);
  kiln_fetch_config_free(&fc);
  kiln_pins_free(&pins);
out:
  free(path);
  free(cache);
  return rc;
}

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

static kiln_err write_entry(struct archive *a, const char *dest, mode_t mode,
                            struct kiln_error *err)
{
  char *dir = strdup(dest);
  char *slash = dir ? strrchr(dir, '/') : NULL;
  if (slash)
    *slash = '\0';
  kiln_err rc = dir ? kiln_mkdir_p(dir, 0755, err) : KILN_E_NOMEM;
  free(dir);
  if (rc)
    return rc;
  int fd = open(dest, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, (mode & 0111) ? 0755 : 0644);
  if (fd < 0)
    return kiln_error_set(err, KILN_E_IO, "cannot write %s: %s", dest, strerror(errno));
  int r = archive_read_data_into_fd(a, fd);
  if (close(fd) != 0 || r != ARCHIVE_OK)
    return kiln_error_set(err, KILN_E_IO, "cannot unpack %s: %s", dest, archive_error_string(a));
  return KILN_OK;
}

kiln_err kiln_deb_extract(const char *deb, kiln_deb_select_fn select, void *arg,
                          struct kiln_error *err)
{
  struct archive *ar = archive_read_new();
  struct archive *tar = NULL;
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
    while (!rc && (r = archive_read_next_header(tar, &te)) == ARCHIVE_OK) {
      if (archive_entry_filetype(te) != AE_IFREG)
        continue;
      char *dest = select(arg, archive_entry_pathname(te));
      if (dest)
        rc = write_entry(tar, dest, archive_entry_perm(te), err);
      free(dest);
    }
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
