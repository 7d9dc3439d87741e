/* Unit tests of layer application and rootfs emission: tar layers are generated here with
 * libarchive, applied through the image plugin's modules, and the resulting cpio is read back. */
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "image.h"
#include "util/fs.h"
#include "util/hash.h"

/* One tar member: type f(ile) d(ir) l(symlink) h(ardlink) c(har device); arg = content/target. */
struct ent {
  char type;
  const char *name;
  const char *arg;
  unsigned mode;
};

enum layer_flags {
  L_GZIP = 1,
  L_UMOCI_TRUNCATE = 2,
  L_CUT_DATA = 4,
  L_BAD_DIGEST = 8,
  L_CUT_GZIP = 16,
  L_ZSTD = 32
};

struct layer {
  int flags;
  struct ent ents[12];
};

static char *tmpdir;
static int warnings;
static uint64_t limit_bytes, limit_entries; /* 0: the tree's defaults */

static void count_warn(void *ctx, const char *fmt, ...)
{
  (void)ctx;
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "  warning: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  warnings++;
}

/* Write the layer to a file; returns its path (caller frees). */
static char *make_layer(const struct layer *l, int index)
{
  char *path = NULL;
  if (asprintf(&path, "%s/layer%d.tar", tmpdir, index) < 0)
    return NULL;
  struct archive *a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  if (l->flags & (L_GZIP | L_CUT_GZIP))
    archive_write_add_filter_gzip(a);
  if (l->flags & L_ZSTD)
    archive_write_add_filter_zstd(a);
  archive_write_set_bytes_in_last_block(a, 1);
  archive_write_open_filename(a, path);
  for (const struct ent *e = l->ents; e->type; e++) {
    struct archive_entry *ae = archive_entry_new();
    archive_entry_set_pathname(ae, e->name);
    archive_entry_set_uid(ae, 0);
    archive_entry_set_gid(ae, 0);
    switch (e->type) {
    case 'f':
      archive_entry_set_filetype(ae, AE_IFREG);
      archive_entry_set_perm(ae, e->mode ? e->mode : 0644);
      archive_entry_set_size(ae, (la_int64_t)strlen(e->arg));
      break;
    case 'd':
      archive_entry_set_filetype(ae, AE_IFDIR);
      archive_entry_set_perm(ae, e->mode ? e->mode : 0755);
      break;
    case 'l':
      archive_entry_set_filetype(ae, AE_IFLNK);
      archive_entry_set_perm(ae, 0777);
      archive_entry_set_symlink(ae, e->arg);
      break;
    case 'h':
      archive_entry_set_filetype(ae, AE_IFREG);
      archive_entry_set_perm(ae, 0644);
      archive_entry_set_hardlink(ae, e->arg);
      break;
    case 'c':
      archive_entry_set_filetype(ae, AE_IFCHR);
      archive_entry_set_perm(ae, 0666);
      archive_entry_set_rdevmajor(ae, 1);
      archive_entry_set_rdevminor(ae, 3);
      break;
    }
    archive_write_header(a, ae);
    if (e->type == 'f')
      archive_write_data(a, e->arg, strlen(e->arg));
    archive_entry_free(ae);
  }
  archive_write_close(a);
  archive_write_free(a);
  if (l->flags & (L_UMOCI_TRUNCATE | L_CUT_DATA | L_CUT_GZIP)) {
    /* Cut right after the last file's data (umoci) or inside it; or halve the gzip stream. */
    char *data;
    size_t len;
    struct kiln_error err = KILN_ERROR_INIT;
    CHECK_INT(KILN_OK, kiln_read_file(path, 1 << 20, &data, &len, &err));
    const struct ent *last = l->ents;
    while (last[1].type)
      last++;
    size_t cut = len / 2;
    if (!(l->flags & L_CUT_GZIP)) {
      const char *at = memmem(data, len, last->arg, strlen(last->arg));
      cut = (size_t)(at - data) + strlen(last->arg) - ((l->flags & L_CUT_DATA) ? 2 : 0);
    }
    CHECK_INT(KILN_OK, kiln_write_file_atomic(path, data, cut, 0644, &err));
    free(data);
  }
  return path;
}

/* Apply layers, write the cpio, list it: one line per rootfs entry "path type detail". */
static kiln_err run_layers(const struct layer *layers, size_t n, char **listing, char **errmsg,
                           char **cpio_sha)
{
  kiln_err rc;
  struct kiln_error err = KILN_ERROR_INIT;
  struct img_spool *spool = NULL;
  struct img_tree *t = NULL;
  struct kiln_buf out = KILN_BUF_INIT;
  char *cpio = NULL;
  *listing = *errmsg = NULL;
  if ((rc = img_spool_new(tmpdir, &spool, &err)) || (rc = img_tree_new(spool, &t, &err)))
    goto out;
  t->warn = count_warn;
  if (limit_bytes)
    t->max_bytes = limit_bytes;
  if (limit_entries)
    t->max_nodes = limit_entries;
  for (size_t i = 0; i < n; i++) {
    char *path = make_layer(&layers[i], (int)i);
    char hex[65], digest[80];
    CHECK_INT(KILN_OK, kiln_sha256_file(path, hex, NULL, &err));
    snprintf(digest, sizeof(digest), "sha256:%s", hex);
    if (layers[i].flags & L_BAD_DIGEST)
      digest[7] = digest[7] == '0' ? '1' : '0';
    int fd = open(path, O_RDONLY);
    struct stat st;
    fstat(fd, &st);
    struct img_blob b = {.fd = fd, .size = (uint64_t)st.st_size, .label = digest, .digest = digest};
    rc = img_layer_apply(t, &b, (uint32_t)i + 1, &err);
    close(fd);
    unlink(path);
    free(path);
    if (rc)
      goto out;
  }
  char *argv[] = {"/bin/app", "--flag"}, *env[] = {"PATH=/bin"};
  struct img_runconfig cfg = {.argv = argv, .argc = 2, .env = env, .envc = 1, .workdir = "/"};
  struct img_emit_stats stats;
  if (asprintf(&cpio, "%s/out.cpio", tmpdir) < 0 ||
      (rc = img_rootfs_write(t, &cfg, 0, cpio, &stats, &err)))
    goto out;
  char hex[65];
  CHECK_INT(KILN_OK, kiln_sha256_file(cpio, hex, NULL, &err));
  if (cpio_sha)
    *cpio_sha = strdup(hex);
  struct archive *a = archive_read_new();
  archive_read_support_format_cpio(a);
  archive_read_open_filename(a, cpio, 4096);
  struct archive_entry *e;
  while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
    const char *p = archive_entry_pathname(e);
    static const char *const skip[] = {"cmd",        "env",         "kiln-run",   "rootfs",
                                       "rootfs/dev", "rootfs/proc", "rootfs/run", "rootfs/sys",
                                       "rootfs/tmp", "rootfs/var"};
    int skipped = 0;
    for (size_t i = 0; i < sizeof(skip) / sizeof(skip[0]); i++)
      skipped |= strcmp(p, skip[i]) == 0;
    if (skipped)
      continue;
    unsigned mode = archive_entry_mode(e);
    kiln_buf_printf(&out, "%s %o", p + strlen("rootfs/"), mode);
    if (S_ISLNK(mode))
      kiln_buf_printf(&out, " ->%s", archive_entry_symlink(e));
    if (archive_entry_nlink(e) > 1 && S_ISREG(mode))
      kiln_buf_printf(&out, " ino%u/%u", (unsigned)archive_entry_ino(e),
                      (unsigned)archive_entry_nlink(e));
    if (S_ISREG(mode) && archive_entry_size(e) > 0) {
      char buf[256] = {0};
      archive_read_data(a, buf, sizeof(buf) - 1);
      kiln_buf_printf(&out, " =%s", buf);
    }
    kiln_buf_puts(&out, "\n");
  }
  archive_read_free(a);
  *listing = kiln_buf_detach(&out);
out:
  if (rc)
    *errmsg = strdup(kiln_error_msg(&err));
  if (cpio)
    unlink(cpio);
  free(cpio);
  kiln_buf_free(&out);
  kiln_error_clear(&err);
  img_tree_free(t);
  img_spool_free(spool);
  return rc;
}

struct tcase {
  const char *name;
  struct layer layers[3];
  const char *want;     /* expected listing (when want_err is NULL) */
  const char *want_err; /* substring of the expected error */
  int want_warnings;    /* -1: don't care */
};

#define F(n, c)                                                                                    \
  {                                                                                                \
    'f', n, c, 0                                                                                   \
  }
#define D(n)                                                                                       \
  {                                                                                                \
    'd', n, NULL, 0                                                                                \
  }
#define L(n, t)                                                                                    \
  {                                                                                                \
    'l', n, t, 0                                                                                   \
  }
#define H(n, t)                                                                                    \
  {                                                                                                \
    'h', n, t, 0                                                                                   \
  }

static const struct tcase cases[] = {
    {"files, dirs and symlinks keep their modes and verbatim targets",
     {{0,
       {D("bin"),
        F("bin/app", "x"),
        L("bin/sh", "/usr/bin/busybox"),
        {'f', "bin/su", "s", 04755}}}},
     "bin 40755\nbin/app 100644 =x\nbin/sh 120777 ->/usr/bin/busybox\nbin/su 104755 =s\n",
     NULL,
     0},
    {"entries are sorted bytewise like find | sort (a-c before a/b)",
     {{0, {D("a"), F("a/b", "1"), F("a-c", "2"), F("B", "3")}}},
     "B 100644 =3\na 40755\na-c 100644 =2\na/b 100644 =1\n",
     NULL,
     0},
    {"a later layer replaces a file by a directory and a directory by a file",
     {{0, {D("x"), F("x/inner", "1"), F("y", "2")}},
      {0, {F("x", "now a file"), D("y"), F("y/z", "3")}}},
     "x 100644 =now a file\ny 40755\ny/z 100644 =3\n",
     NULL,
     0},
    {"directory over directory updates the mode and keeps lower children",
     {{0, {D("d"), F("d/keep", "1")}}, {0, {{'d', "d", NULL, 0700}}}},
     "d 40700\nd/keep 100644 =1\n",
     NULL,
     0},
    {"whiteout hides a lower file and a lower directory subtree",
     {{0, {D("d"), F("d/f", "1"), D("e"), F("e/g", "2"), F("k", "3")}},
      {0, {F("d/.wh.f", ""), F(".wh.e", "")}}},
     "d 40755\nk 100644 =3\n",
     NULL,
     0},
    {"opaque directory hides lower children, same-layer children survive (before and after)",
     {{0, {D("o"), F("o/old", "1"), D("o/sub"), F("o/sub/deep", "2")}},
      {0, {D("o"), F("o/before", "3"), F("o/.wh..wh..opq", ""), F("o/after", "4")}}},
     "o 40755\no/after 100644 =4\no/before 100644 =3\n",
     NULL,
     0},
    {"whiteout does not hide a file added by the same layer",
     {{0, {F("same", "1"), F(".wh.same", "")}}},
     "same 100644 =1\n",
     NULL,
     0},
    {"whiteout of a missing path is ignored with a warning",
     {{0, {F("a", "1")}}, {0, {F(".wh.nothing", ""), F("gone/.wh.x", "")}}},
     "a 100644 =1\n",
     NULL,
     2},
    {"aufs metadata entries are dropped",
     {{0, {F(".wh..wh.plnk", ""), F("a", "1")}}},
     "a 100644 =1\n",
     NULL,
     0},
    {".wh. alone is refused", {{0, {F("d/.wh.", "")}}}, NULL, "invalid whiteout", -1},
    {"../../etc/passwd is refused naming the layer and path",
     {{0, {F("../../etc/passwd", "root")}}},
     NULL,
     "../../etc/passwd",
     -1},
    {"absolute path is normalised into the image root",
     {{0, {F("/etc/passwd", "root")}}},
     "etc 40755\netc/passwd 100644 =root\n",
     NULL,
     0},
    {"symlink etc -> / then etc/passwd stays inside the image root",
     {{0, {L("etc", "/")}}, {0, {F("etc/passwd", "root")}}},
     "etc 120777 ->/\npasswd 100644 =root\n",
     NULL,
     0},
    {"symlink lib -> ../../.. is clamped at the image root",
     {{0, {L("lib", "../../..")}}, {0, {F("lib/x", "1")}}},
     "lib 120777 ->../../..\nx 100644 =1\n",
     NULL,
     0},
    {"merged-/usr symlink lib -> usr/lib receives later files",
     {{0, {D("usr"), D("usr/lib"), L("lib", "usr/lib")}}, {0, {F("lib/libc.so", "c")}}},
     "lib 120777 ->usr/lib\nusr 40755\nusr/lib 40755\nusr/lib/libc.so 100644 =c\n",
     NULL,
     0},
    {"hard link to ../x is refused", {{0, {F("a", "1"), H("b", "../x")}}}, NULL, "..", -1},
    {"hard link to a missing file is refused",
     {{0, {H("b", "nowhere")}}},
     NULL,
     "no such file",
     -1},
    {"hard links in one layer share an inode with data on the last member",
     {{0, {F("a", "data"), H("b", "a"), F("c", "other")}}},
     "a 100644 ino5/2\nb 100644 ino5/2 =data\nc 100644 =other\n",
     NULL,
     0},
    {"hard link to a lower-layer file keeps the old content when the target is replaced",
     {{0, {F("t", "old")}}, {0, {H("l", "t")}}, {0, {F("t", "new")}}},
     "l 100644 =old\nt 100644 =new\n",
     NULL,
     0},
    {"device nodes are dropped with a warning",
     {{0, {{'c', "null", NULL, 0}, F("a", "1")}}},
     "a 100644 =1\n",
     NULL,
     1},
    {"gzip layers are read",
     {{L_GZIP, {D("z"), F("z/f", "zipped")}}},
     "z 40755\nz/f 100644 =zipped\n",
     NULL,
     0},
    {"zstd layers are read", {{L_ZSTD, {F("zs", "zstd data")}}}, "zs 100644 =zstd data\n", NULL, 0},
    {"a long ../ chain after a directory is refused",
     {{0,
       {F("x/../../../../../../../../../../../../../../../../../../../../../../../../../../..",
          "1")}}},
     NULL,
     "..",
     -1},
    {"umoci layer ending right after the last data is accepted with a warning",
     {{L_UMOCI_TRUNCATE, {F("a", "first"), F("b", "lastdata")}}},
     "a 100644 =first\nb 100644 =lastdata\n",
     NULL,
     1},
    {"layer ending inside a file's data is refused",
     {{L_CUT_DATA, {F("a", "first"), F("b", "lastdata")}}},
     NULL,
     "layer sha256:",
     -1},
    {"truncated gzip is refused",
     {{L_CUT_GZIP, {F("a", "first"), F("b", "lastdata")}}},
     NULL,
     "layer sha256:",
     -1},
    {"layer digest mismatch is refused",
     {{L_BAD_DIGEST, {F("a", "1")}}},
     NULL,
     "digest mismatch",
     -1},
};

static void test_cases(void)
{
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    const struct tcase *tc = &cases[i];
    CHECK_CASE(tc->name);
    size_t n = 0;
    while (n < 3 && tc->layers[n].ents[0].type)
      n++;
    char *listing = NULL, *errmsg = NULL;
    warnings = 0;
    kiln_err rc = run_layers(tc->layers, n, &listing, &errmsg, NULL);
    if (tc->want_err) {
      CHECK(rc != KILN_OK);
      CHECK_CONTAINS(tc->want_err, errmsg);
    } else {
      CHECK_INT(0, rc);
      if (rc)
        fprintf(stderr, "  error: %s\n", errmsg);
      CHECK_STR(tc->want, listing);
      if (tc->want_warnings >= 0)
        CHECK_INT(tc->want_warnings, warnings);
    }
    free(listing);
    free(errmsg);
  }
}

static void test_limits(void)
{
  static const struct layer big[1] = {{0, {F("a", "0123456789"), F("b", "0123456789")}}};
  static const struct layer many[1] = {{0, {D("d"), F("d/1", ""), F("d/2", ""), F("d/3", "")}}};
  char *listing = NULL, *errmsg = NULL;
  CHECK_CASE("total file data over /image/max_bytes is refused");
  limit_bytes = 15;
  CHECK(run_layers(big, 1, &listing, &errmsg, NULL) != KILN_OK);
  CHECK_CONTAINS("max_bytes", errmsg);
  free(listing);
  free(errmsg);
  limit_bytes = 0;
  CHECK_CASE("more entries than /image/max_entries is refused");
  limit_entries = 3;
  CHECK(run_layers(many, 1, &listing, &errmsg, NULL) != KILN_OK);
  CHECK_CONTAINS("max_entries", errmsg);
  free(listing);
  free(errmsg);
  limit_entries = 0;
}

static void test_deterministic(void)
{
  CHECK_CASE("two runs give byte-identical cpio archives");
  const struct layer layers[2] = {{0, {D("a"), F("a/b", "1"), F("h", "x"), H("h2", "h")}},
                                  {L_GZIP, {F("a/.wh.b", ""), L("s", "a")}}};
  char *l1, *l2, *e1, *e2, *s1 = NULL, *s2 = NULL;
  run_layers(layers, 2, &l1, &e1, &s1);
  run_layers(layers, 2, &l2, &e2, &s2);
  CHECK(s1 && s2 && strcmp(s1, s2) == 0);
  free(l1);
  free(l2);
  free(e1);
  free(e2);
  free(s1);
  free(s2);
}

int main(void)
{
  struct kiln_error err = KILN_ERROR_INIT;
  if (kiln_mkdtemp_in(getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", "kiln-layers-", &tmpdir, &err))
    return 1;
  test_cases();
  test_deterministic();
  test_limits();
  kiln_rm_rf_quiet(tmpdir);
  free(tmpdir);
  return check_done();
}
