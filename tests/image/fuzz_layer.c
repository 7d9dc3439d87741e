/* Fuzz smoke test of layer application: a valid layer full of awkward entries (whiteouts, hard
 * links, symlinks through parents, long names) is mutated deterministically many times and applied
 * onto a fresh tree, then emitted; errors are fine, crashes and sanitizer reports are not.
 * Usage: fuzz_layer [ITERATIONS] */
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "image.h"
#include "util/fs.h"

static void add(struct archive *a, const char *name, int type, const char *arg)
{
  struct archive_entry *e = archive_entry_new();
  archive_entry_set_pathname(e, name);
  archive_entry_set_filetype(e, (unsigned)type);
  archive_entry_set_perm(e, 0755);
  if (type == AE_IFLNK)
    archive_entry_set_symlink(e, arg);
  if (type == AE_IFREG && arg && arg[0] == '@')
    archive_entry_set_hardlink(e, arg + 1);
  else if (type == AE_IFREG && arg)
    archive_entry_set_size(e, (la_int64_t)strlen(arg));
  archive_write_header(a, e);
  if (type == AE_IFREG && arg && arg[0] != '@')
    archive_write_data(a, arg, strlen(arg));
  archive_entry_free(e);
}

static size_t make_seed(char *buf, size_t cap, int gzip)
{
  size_t used = 0;
  struct archive *a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  if (gzip)
    archive_write_add_filter_gzip(a);
  archive_write_set_bytes_in_last_block(a, 1);
  archive_write_open_memory(a, buf, cap, &used);
  add(a, "etc", AE_IFLNK, "/");
  add(a, "etc/passwd", AE_IFREG, "root:x:0:0\n");
  add(a, "d", AE_IFDIR, NULL);
  add(a, "d/f", AE_IFREG, "data");
  add(a, "d/h", AE_IFREG, "@d/f");
  add(a, "d/.wh..wh..opq", AE_IFREG, "");
  add(a, "d/.wh.f", AE_IFREG, "");
  add(a, "lib", AE_IFLNK, "../../usr/lib");
  add(a, "lib/x", AE_IFREG, "x");
  add(a, "loop", AE_IFLNK, "loop/loop");
  add(a, "a/b/c/d/e/f/g", AE_IFREG, "deep");
  archive_write_close(a);
  archive_write_free(a);
  return used;
}

int main(int argc, char **argv)
{
  int iterations = argc > 1 ? atoi(argv[1]) : 3000;
  static char seed[2][65536], mutated[65536];
  size_t seed_len[2] = {make_seed(seed[0], sizeof(seed[0]), 0),
                        make_seed(seed[1], sizeof(seed[1]), 1)};
  struct kiln_error err = KILN_ERROR_INIT;
  char *dir = NULL;
  if (kiln_mkdtemp_in(getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", "kiln-fuzz-", &dir, &err))
    return 1;
  struct kiln_buf layer = KILN_BUF_INIT, cpio = KILN_BUF_INIT;
  kiln_buf_printf(&layer, "%s/layer", dir);
  kiln_buf_printf(&cpio, "%s/out.cpio", dir);
  unsigned state = 12345u;
  int applied = 0;
  for (int i = 0; i < iterations; i++) {
    int which = i % 2;
    size_t len = seed_len[which];
    memcpy(mutated, seed[which], len);
    int flips = 1 + (int)((state = state * 1103515245u + 12345u) >> 16) % 8;
    for (int f = 0; f < flips; f++) {
      state = state * 1103515245u + 12345u;
      size_t at = (state >> 8) % len;
      state = state * 1103515245u + 12345u;
      mutated[at] = (char)(state >> 16);
    }
    if (i % 7 == 0) {
      state = state * 1103515245u + 12345u;
      len = (state >> 8) % len; /* truncation */
    }
    struct img_spool *spool = NULL;
    struct img_tree *t = NULL;
    if (kiln_write_file_atomic(layer.data, mutated, len, 0644, &err) != KILN_OK ||
        img_spool_new(dir, &spool, &err) != KILN_OK || img_tree_new(spool, &t, &err) != KILN_OK) {
      fprintf(stderr, "fuzz_layer: setup failed: %s\n", kiln_error_msg(&err));
      return 1;
    }
    int fd = open(layer.data, O_RDONLY);
    struct img_blob b = {.fd = fd, .size = len, .label = "fuzz"};
    if (img_layer_apply(t, &b, 1, &err) == KILN_OK) {
      char *args[] = {"/x"};
      struct img_runconfig rc = {.argv = args, .argc = 1, .workdir = "/"};
      struct img_emit_stats st;
      /* counted when the applied tree also writes out */
      if (img_rootfs_write(t, &rc, 0, cpio.data, &st, &err) == KILN_OK)
        applied++;
    }
    kiln_error_clear(&err);
    img_tree_free(t);
    img_spool_free(spool);
    close(fd);
  }
  printf("%d iterations, %d mutated layers applied without error\n", iterations, applied);
  kiln_rm_rf_quiet(dir);
  kiln_error_clear(&err);
  kiln_buf_free(&layer);
  kiln_buf_free(&cpio);
  free(dir);
  return 0;
}
