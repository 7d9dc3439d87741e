/* libFuzzer target for the cpio writer's input paths: the input is a program of writer calls
 * (directories, files with right and wrong data lengths, symlinks, hard-link groups, raw headers
 * with any mode/nlink/rdev/inode, stray data) whose names and data come from the input. Errors are
 * fine; crashes, leaks and undefined behaviour are not, and every archive the writer closes must
 * read back with libarchive with the same entry names in the same order and the advertised size. */
#include <archive.h>
#include <archive_entry.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kiln_cpio.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_MAX_ENTRIES 64

struct reader {
  const uint8_t *p, *end;
};

static uint32_t take(struct reader *r, int bytes)
{
  uint32_t v = 0;
  for (int i = 0; i < bytes && r->p < r->end; i++)
    v = v << 8 | *r->p++;
  return v;
}

/* A NUL-terminated name of up to 255 bytes from the input (caller frees). */
static char *take_name(struct reader *r)
{
  size_t len = take(r, 1);
  if (len > (size_t)(r->end - r->p))
    len = (size_t)(r->end - r->p);
  char *s = malloc(len + 1);
  if (!s)
    abort();
  memcpy(s, r->p, len);
  s[len] = '\0';
  r->p += len;
  return s;
}

/* Write want bytes of data (from the input, zero-padded) in up to two calls. */
static kiln_err put_data(struct kiln_cpio *c, struct reader *r, size_t want, struct kiln_error *err)
{
  static const uint8_t zeros[256];
  size_t have = (size_t)(r->end - r->p);
  const uint8_t *src = have >= want ? r->p : zeros;
  if (have >= want)
    r->p += want;
  size_t first = want / 2;
  kiln_err rc = kiln_cpio_write_data(c, src, first, err);
  return rc ? rc : kiln_cpio_write_data(c, src + first, want - first, err);
}

/* Every name the writer accepted, in order, must come back from libarchive. */
static void check_read_back(int fd, uint64_t bytes, char **names, size_t nnames)
{
  struct stat st;
  if (fstat(fd, &st) != 0 || (uint64_t)st.st_size != bytes || lseek(fd, 0, SEEK_SET) != 0)
    abort();
  struct archive *a = archive_read_new();
  archive_read_support_format_cpio(a);
  if (archive_read_open_fd(a, fd, 4096) != ARCHIVE_OK)
    abort();
  struct archive_entry *e;
  size_t seen = 0;
  int rc;
  while ((rc = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
    if (seen >= nnames || strcmp(archive_entry_pathname(e), names[seen]) != 0)
      abort();
    seen++;
  }
  if (rc != ARCHIVE_EOF || seen != nnames)
    abort();
  archive_read_free(a);
}

static kiln_err run_op(struct kiln_cpio *c, struct reader *r, char **names, size_t *nnames,
                       struct kiln_error *err)
{
  uint32_t op = take(r, 1) % 6, perm = take(r, 2), owner = take(r, 1);
  char *name = take_name(r);
  kiln_err rc = KILN_OK;
  size_t added = 0;
  char *group[4] = {name, NULL, NULL, NULL};
  if (op == 0) {
    rc = kiln_cpio_add_dir(c, name, perm, owner, owner, err);
    added = rc == KILN_OK;
  } else if (op == 1) {
    uint32_t declared = take(r, 1), given = declared + (take(r, 1) % 3) - 1;
    rc = kiln_cpio_add_file(c, name, perm, owner, owner, declared, err);
    added = rc == KILN_OK;
    if (rc == KILN_OK)
      rc = put_data(c, r, given > 255 ? 0 : given, err);
  } else if (op == 2) {
    char *target = take_name(r);
    rc = kiln_cpio_add_symlink(c, name, target, owner, owner, err);
    added = rc == KILN_OK;
    free(target);
  } else if (op == 3) {
    size_t n = 1 + take(r, 1) % 4;
    for (size_t i = 1; i < n; i++)
      group[i] = take_name(r);
    uint32_t data_size = take(r, 1);
    rc = kiln_cpio_add_hardlinks(c, (const char *const *)group, n, perm, owner, owner, data_size,
                                 err);
    added = rc == KILN_OK ? n : 0;
    if (rc == KILN_OK)
      rc = put_data(c, r, data_size, err);
  } else if (op == 4) {
    uint32_t mode = take(r, 4), nlink = take(r, 1), data_size = take(r, 1);
    uint32_t major = take(r, 1), minor = take(r, 1), ino = take(r, 2);
    struct kiln_cpio_entry e = {name, mode, owner, owner, nlink, data_size, major, minor, ino};
    rc = kiln_cpio_add(c, &e, NULL, err);
    added = rc == KILN_OK;
    if (rc == KILN_OK)
      rc = put_data(c, r, (size_t)e.size, err);
  } else {
    rc = put_data(c, r, take(r, 1) % 8, err);
  }
  for (size_t i = 0; i < added; i++)
    names[(*nnames)++] = group[i], group[i] = NULL;
  for (size_t i = 0; i < 4; i++)
    free(group[i]);
  return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size < 1)
    return 0;
  FILE *f = tmpfile();
  if (!f)
    return 0;
  struct kiln_error err = KILN_ERROR_INIT;
  struct kiln_cpio *c = NULL;
  struct reader r = {data + 1, data + size};
  char *names[FUZZ_MAX_ENTRIES];
  size_t nnames = 0, ops = 0;
  int ok = 1;
  if (kiln_cpio_open_fd(fileno(f), (int64_t)data[0] * 86400 * 365, &c, &err) != KILN_OK) {
    kiln_error_clear(&err); /* mtime beyond newc's 32 bits */
    fclose(f);
    return 0;
  }
  if (data[0] & 1)
    ok = kiln_cpio_hash(c, &err) == KILN_OK;
  /* an operation adds at most 4 names (a hard-link group), all of which must be recorded */
  while (ok && r.p < r.end && nnames + 4 <= FUZZ_MAX_ENTRIES && ops++ < 256)
    ok = run_op(c, &r, names, &nnames, &err) == KILN_OK;
  kiln_error_clear(&err);
  if (ok && kiln_cpio_close(c, &err) == KILN_OK) {
    char hex[65];
    uint32_t crc;
    if ((data[0] & 1) && (kiln_cpio_sha256(c, hex) != 0 || kiln_cpio_crc32(c, &crc) != 0))
      abort();
    check_read_back(fileno(f), kiln_cpio_bytes(c), names, nnames);
  }
  kiln_error_clear(&err);
  kiln_cpio_free(c);
  for (size_t i = 0; i < nnames; i++)
    free(names[i]);
  fclose(f);
  return 0;
}
