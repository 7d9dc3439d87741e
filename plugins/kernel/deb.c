/* Debian packages for the kernel stage: `apt-get download` of a pinned version into the stage's
 * persistent directory, and unpacking with libarchive (the ar container, then data.tar.*). */
#define _GNU_SOURCE
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kernel.h"
#include "util/buf.h"
#include "util/fs.h"

/* apt-get's file name for package_version_arch.deb: ':' in versions is written as "%3a". */
static char *find_deb(const char *dir, const char *package, const char *version)
{
  struct kiln_buf prefix = KILN_BUF_INIT;
  kiln_buf_printf(&prefix, "%s_", package);
  for (const char *v = version; *v; v++) {
    if (*v == ':')
      kiln_buf_puts(&prefix, "%3a");
    else
      kiln_buf_putc(&prefix, *v);
  }
  kiln_buf_putc(&prefix, '_');
  DIR *d = opendir(dir);
  char *found = NULL;
  for (struct dirent *e; d && (e = readdir(d)) && !found;)
    if (strncmp(e->d_name, prefix.data, prefix.len) == 0 && strstr(e->d_name, ".deb"))
      found = kiln_path_join(dir, e->d_name);
  if (d)
    closedir(d);
  kiln_buf_free(&prefix);
  return found;
}

kiln_err kiln_deb_fetch(const char *package, const char *version, const char *dir, char **deb,
                        struct kiln_error *err)
{
  *deb = find_deb(dir, package, version);
  if (*deb)
    return KILN_OK;
  struct kiln_buf spec = KILN_BUF_INIT;
  kiln_buf_printf(&spec, "%s=%s", package, version);
  pid_t pid = fork();
  if (pid == 0) {
    if (chdir(dir) != 0)
      _exit(126);
    int devnull = open("/dev/null", O_WRONLY);
    if (devnull >= 0)
      dup2(devnull, STDOUT_FILENO);
    execlp("apt-get", "apt-get", "-q", "download", spec.data, (char *)NULL);
    _exit(127);
  }
  int status = 0;
  while (pid > 0 && waitpid(pid, &status, 0) < 0 && errno == EINTR)
    ;
  kiln_err rc = KILN_OK;
  if (pid < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    rc = kiln_error_set(err, KILN_E_NETWORK,
                        "`apt-get download %s` failed (%s): run `apt-get update` and check that "
                        "Debian's package mirrors are reachable, or give a local .deb with "
                        "/kernel/deb",
                        spec.data, code == 127 ? "apt-get not found" : "see its messages above");
  } else if (!(*deb = find_deb(dir, package, version))) {
    rc = kiln_error_set(err, KILN_E_NOT_FOUND, "apt-get download %s left no .deb in %s", spec.data,
                        dir);
  }
  kiln_buf_free(&spec);
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

static kiln_err write_entry(struct archive *a, const char *dest, mode_t mode, struct kiln_error *err)
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
