/* Unit tests of the kiln_cpio newc writer: exact bytes, read-back through libarchive, hard links,
 * determinism and misuse errors. */
#include <archive.h>
#include <archive_entry.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "kiln_cpio.h"

/* Write with the callback into a memory file; returns malloc'd bytes. */
typedef kiln_err (*fill_fn)(struct kiln_cpio *c, struct kiln_error *err);

static char *build(fill_fn fill, int64_t mtime, size_t *len, kiln_err *rc_out)
{
  char *data = NULL;
  *len = 0;
  FILE *f = tmpfile();
  struct kiln_error err = KILN_ERROR_INIT;
  struct kiln_cpio *c = NULL;
  kiln_err rc = kiln_cpio_open_fd(fileno(f), mtime, &c, &err);
  if (!rc)
    rc = fill(c, &err);
  if (!rc)
    rc = kiln_cpio_close(c, &err);
  kiln_cpio_free(c);
  *rc_out = rc;
  if (rc)
    fprintf(stderr, "  (expected or not) error: %s\n", kiln_error_msg(&err));
  kiln_error_clear(&err);
  long end = lseek(fileno(f), 0, SEEK_END);
  data = malloc((size_t)end + 1);
  if (pread(fileno(f), data, (size_t)end, 0) != end)
    end = 0;
  *len = (size_t)end;
  fclose(f);
  return data;
}

static kiln_err fill_empty(struct kiln_cpio *c, struct kiln_error *err)
{
  (void)c;
  (void)err;
  return KILN_OK;
}

static kiln_err fill_basic(struct kiln_cpio *c, struct kiln_error *err)
{
  kiln_err rc;
  if ((rc = kiln_cpio_add_dir(c, "rootfs", 0755, 0, 0, err)) ||
      (rc = kiln_cpio_add_file(c, "rootfs/hello", 04755, 1000, 50, 6, err)) ||
      (rc = kiln_cpio_write_data(c, "hel", 3, err)) ||
      (rc = kiln_cpio_write_data(c, "lo\n", 3, err)) ||
      (rc = kiln_cpio_add_symlink(c, "rootfs/link", "/usr/bin/python3", 0, 0, err)))
    return rc;
  return KILN_OK;
}

static kiln_err fill_hardlinks(struct kiln_cpio *c, struct kiln_error *err)
{
  const char *paths[] = {"a", "b", "c"};
  kiln_err rc = kiln_cpio_add_hardlinks(c, paths, 3, 0644, 0, 0, 5, err);
  if (!rc)
    rc = kiln_cpio_write_data(c, "12345", 5, err);
  if (!rc)
    rc = kiln_cpio_add_file(c, "d", 0600, 0, 0, 0, err);
  return rc;
}

static kiln_err fill_overflow(struct kiln_cpio *c, struct kiln_error *err)
{
  kiln_err rc = kiln_cpio_add_file(c, "f", 0644, 0, 0, 2, err);
  return rc ? rc : kiln_cpio_write_data(c, "abc", 3, err);
}

static kiln_err fill_incomplete(struct kiln_cpio *c, struct kiln_error *err)
{
  kiln_err rc = kiln_cpio_add_file(c, "f", 0644, 0, 0, 2, err);
  return rc ? rc : kiln_cpio_write_data(c, "a", 1, err);
}

static kiln_err fill_absolute(struct kiln_cpio *c, struct kiln_error *err)
{
  return kiln_cpio_add_file(c, "/etc/passwd", 0644, 0, 0, 0, err);
}

static kiln_err fill_huge(struct kiln_cpio *c, struct kiln_error *err)
{
  return kiln_cpio_add_file(c, "big", 0644, 0, 0, 5ull << 30, err);
}

static void test_empty_is_trailer_only(void)
{
  CHECK_CASE("empty archive is exactly the TRAILER!!! entry");
  size_t len;
  kiln_err rc;
  char *d = build(fill_empty, 0, &len, &rc);
  const char *want = "070701"
                     "00000000000000000000000000000000"
                     "00000001000000000000000000000000"
                     "000000000000000000000000"
                     "0000000B00000000"
                     "TRAILER!!!";
  CHECK_INT(0, rc);
  CHECK_INT(124, len); /* 110 + 11 name bytes + 3 padding */
  CHECK(len >= 120 && memcmp(d, want, strlen(want)) == 0);
  free(d);
}

static void test_basic_read_back(void)
{
  CHECK_CASE("dir, file and symlink read back with fixed mtime, owners and no names");
  size_t len;
  kiln_err rc;
  char *d = build(fill_basic, 1700000000, &len, &rc);
  CHECK_INT(0, rc);
  struct archive *a = archive_read_new();
  archive_read_support_format_cpio(a);
  CHECK_INT(ARCHIVE_OK, archive_read_open_memory(a, d, len));
  struct archive_entry *e;
  int n = 0;
  while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
    n++;
    CHECK_INT(1700000000, archive_entry_mtime(e));
    CHECK(archive_entry_uname(e) == NULL);
    if (n == 1) {
      CHECK_STR("rootfs", archive_entry_pathname(e));
      CHECK_INT(S_IFDIR | 0755, archive_entry_mode(e));
      CHECK_INT(1, archive_entry_ino(e));
    } else if (n == 2) {
      CHECK_STR("rootfs/hello", archive_entry_pathname(e));
      CHECK_INT(S_IFREG | 04755, archive_entry_mode(e));
      CHECK_INT(1000, archive_entry_uid(e));
      CHECK_INT(50, archive_entry_gid(e));
      CHECK_INT(2, archive_entry_ino(e));
      char buf[16] = {0};
      CHECK_INT(6, archive_read_data(a, buf, sizeof(buf)));
      CHECK_STR("hello\n", buf);
    } else if (n == 3) {
      CHECK_STR("rootfs/link", archive_entry_pathname(e));
      CHECK_STR("/usr/bin/python3", archive_entry_symlink(e));
      CHECK_INT(3, archive_entry_ino(e));
    }
  }
  CHECK_INT(3, n);
  archive_read_free(a);
  free(d);
}

static void test_hardlinks_share_inode(void)
{
  CHECK_CASE("hard-link group shares one inode, nlink 3, data on the last member");
  size_t len;
  kiln_err rc;
  char *d = build(fill_hardlinks, 0, &len, &rc);
  CHECK_INT(0, rc);
  /* headers: a (size 0), b (size 0), c (size 5) share inode 1; d gets inode 2 */
  CHECK(len > 110 && memcmp(d, "07070100000001000081A4", 22) == 0);
  const char *c_hdr = memmem(d, len, "c\0", 2);
  CHECK(c_hdr != NULL);
  struct archive *a = archive_read_new();
  archive_read_support_format_cpio(a);
  archive_read_open_memory(a, d, len);
  struct archive_entry *e;
  int n = 0;
  while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
    n++;
    if (n <= 3) {
      CHECK_INT(1, archive_entry_ino(e));
      CHECK_INT(3, archive_entry_nlink(e));
    } else {
      CHECK_INT(2, archive_entry_ino(e));
    }
  }
  CHECK_INT(4, n);
  archive_read_free(a);
  free(d);
}

static void test_deterministic(void)
{
  CHECK_CASE("same calls give identical bytes");
  size_t l1, l2;
  kiln_err r1, r2;
  char *d1 = build(fill_basic, 0, &l1, &r1);
  char *d2 = build(fill_basic, 0, &l2, &r2);
  CHECK(l1 == l2 && memcmp(d1, d2, l1) == 0);
  CHECK_INT(0, l1 % 4);
  free(d1);
  free(d2);
}

static void test_errors(void)
{
  static const struct {
    const char *name;
    fill_fn fill;
    kiln_err want;
  } cases[] = {
      {"more data than declared is refused", fill_overflow, KILN_E_INTERNAL},
      {"closing with data missing is refused", fill_incomplete, KILN_E_INTERNAL},
      {"absolute entry name is refused", fill_absolute, KILN_E_INVALID},
      {"entry over 4 GiB is refused", fill_huge, KILN_E_UNSUPPORTED},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    CHECK_CASE(cases[i].name);
    size_t len;
    kiln_err rc;
    free(build(cases[i].fill, 0, &len, &rc));
    CHECK_INT(cases[i].want, rc);
  }
  CHECK_CASE("mtime outside 32 bits is refused");
  struct kiln_cpio *c = NULL;
  struct kiln_error err = KILN_ERROR_INIT;
  CHECK_INT(KILN_E_INVALID, kiln_cpio_open_fd(1, -5, &c, &err));
  CHECK_CONTAINS("SOURCE_DATE_EPOCH", kiln_error_msg(&err));
  kiln_error_clear(&err);
}

int main(void)
{
  test_empty_is_trailer_only();
  test_basic_read_back();
  test_hardlinks_share_inode();
  test_deterministic();
  test_errors();
  return check_done();
}
