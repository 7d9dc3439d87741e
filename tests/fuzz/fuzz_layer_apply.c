/* libFuzzer target for layer tar/whiteout application: the input holds two layers (tar, gzip or
 * zstd, whatever libarchive detects) applied in order onto a fresh tree (whiteouts and opaque
 * directories of the second act on the first), then the tree's /etc/passwd and /etc/group
 * resolve a user and the tree is written out as the rootfs cpio. Errors are fine; crashes, leaks
 * and undefined behaviour are not. KILN_FUZZ_VERBOSE=1 prints each input's outcome.
 * Input: byte 0 = flags (bit 0: the user is "app:staff", else "1000"), bytes 1-2 = length of the
 * first layer (big endian), the first layer, then the second layer. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "image.h"
#include "util/fs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fuzz_paths {
  char *dir, *layer[2], *cpio; /* one file per layer: the tree reads file data from them later */
  cJSON *config[2];
};

static struct fuzz_paths *paths(void)
{
  static struct fuzz_paths p;
  if (p.dir)
    return &p;
  struct kiln_error err = KILN_ERROR_INIT;
  const char *tmp = getenv("TMPDIR");
  if (kiln_mkdtemp_in(tmp ? tmp : "/tmp", "kiln-fuzz-layer-", &p.dir, &err) != KILN_OK)
    abort();
  p.layer[0] = kiln_path_join(p.dir, "layer1");
  p.layer[1] = kiln_path_join(p.dir, "layer2");
  p.cpio = kiln_path_join(p.dir, "rootfs.cpio");
  p.config[0] = cJSON_Parse(
      "{\"config\":{\"User\":\"1000\",\"WorkingDir\":\"/w\",\"Entrypoint\":[\"/etc/passwd\"]}}");
  p.config[1] = cJSON_Parse("{\"config\":{\"User\":\"app:staff\",\"Cmd\":[\"/bin/z\"]}}");
  if (!p.layer[0] || !p.layer[1] || !p.cpio || !p.config[0] || !p.config[1])
    abort();
  return &p;
}

static kiln_err apply(struct img_tree *t, const char *path, const uint8_t *data, size_t len,
                      uint32_t layer, struct kiln_error *err)
{
  FILE *f = fopen(path, "wb");
  if (!f || (len && fwrite(data, 1, len, f) != len) || fclose(f) != 0)
    abort();
  int fd = open(path, O_RDONLY);
  if (fd < 0)
    abort();
  struct img_blob b = {.fd = fd, .size = len, .label = "fuzz layer"};
  kiln_err rc = img_layer_apply(t, &b, layer, err);
  close(fd);
  return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size < 3)
    return 0;
  struct fuzz_paths *p = paths();
  size_t first = (size_t)data[1] << 8 | data[2];
  if (first > size - 3)
    first = size - 3;
  struct kiln_error err = KILN_ERROR_INIT;
  struct img_spool *spool = NULL;
  struct img_tree *t = NULL;
  if (img_spool_new(p->dir, &spool, &err) != KILN_OK || img_tree_new(spool, &t, &err) != KILN_OK)
    abort();
  if (apply(t, p->layer[0], data + 3, first, 1, &err) == KILN_OK &&
      apply(t, p->layer[1], data + 3 + first, size - 3 - first, 2, &err) == KILN_OK) {
    struct img_runconfig rc;
    memset(&rc, 0, sizeof rc);
    struct img_run_overrides ov = {NULL, NULL, 0};
    if (img_runconfig_build(t, p->config[data[0] & 1], &ov, &rc, &err) == KILN_OK) {
      struct img_emit_stats st;
      (void)img_rootfs_write(t, &rc, 0, p->cpio, &st, &err);
      img_runconfig_clear(&rc);
    }
  }
  if (getenv("KILN_FUZZ_VERBOSE")) /* shows why a seed stops early */
    fprintf(stderr, "fuzz_layer_apply: %s\n",
            err.code ? kiln_error_msg(&err) : "applied and written");
  kiln_error_clear(&err);
  img_tree_free(t);
  img_spool_free(spool);
  return 0;
}
