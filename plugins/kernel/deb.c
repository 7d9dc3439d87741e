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

struct extract_target {
  kiln_deb_select_fn select;
  void *arg;
};

static kiln_err extract_one(void *arg, struct archive *tar, struct archive_entry *e,
                            struct kiln_error *err)
{
  struct extract_target *t = arg;
  if (archive_entry_filetype(e) != AE_IFREG)
    return KILN_OK;
  char *dest = t->select(t->arg, archive_entry_pathname(e));
  kiln_err rc = dest ? write_entry(tar, dest, archive_entry_perm(e), err) : KILN_OK;
  free(dest);
  return rc;
}

kiln_err kiln_deb_extract(const char *deb, kiln_deb_select_fn select, void *arg,
                          struct kiln_error *err)
{
  struct extract_target t = {select, arg};
  return kiln_deb_each_data_entry(deb, extract_one, &t, err);
}
