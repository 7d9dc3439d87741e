/* Test shim (LD_PRELOAD): pread() on the file named by $KILN_EIO_PATH fails with EIO beyond
 * $KILN_EIO_AFTER_BYTES, so the upload's disk-read-error path runs against a real server. */
#undef _FILE_OFFSET_BITS /* define pread and pread64 each, not one as the other */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef ssize_t (*pread_fn)(int, void *, size_t, off64_t);

static int is_target(int fd)
{
  const char *want = getenv("KILN_EIO_PATH");
  char link[64], path[PATH_MAX];
  if (!want)
    return 0;
  snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
  ssize_t n = readlink(link, path, sizeof(path) - 1);
  if (n <= 0)
    return 0;
  path[n] = '\0';
  return strcmp(path, want) == 0;
}

static ssize_t shim(const char *name, int fd, void *buf, size_t count, off64_t offset)
{
  pread_fn real = (pread_fn)dlsym(RTLD_NEXT, name);
  const char *after = getenv("KILN_EIO_AFTER_BYTES");
  if (after && is_target(fd) && (long long)offset + (long long)count > atoll(after)) {
    errno = EIO;
    return -1;
  }
  return real(fd, buf, count, offset);
}

__attribute__((visibility("default"))) ssize_t pread(int fd, void *buf, size_t count, off_t offset)
{
  return shim("pread", fd, buf, count, offset);
}

__attribute__((visibility("default"))) ssize_t pread64(int fd, void *buf, size_t count,
                                                       off64_t offset)
{
  return shim("pread64", fd, buf, count, offset);
}
