/* libFuzzer target for the image config and manifest/index JSON readers: the input is cut at NUL
 * bytes into documents; document 0 is an OCI index.json or a `docker save` manifest.json, the
 * others are blobs stored under blobs/sha256/<their digest>, and "@N" in a document stands for
 * the hex SHA-256 of document N (so the fuzzer can link an index to manifests, a manifest to its
 * config). They are written into an image tar, opened as a store and resolved (OCI layout or
 * docker-archive; platform linux/amd64 or linux/arm64/v8); a resolved config becomes the run
 * configuration (Entrypoint, Cmd, Env, WorkingDir, User). Errors are fine; crashes, leaks and
 * undefined behaviour are not.
 * Byte 0: bit 0 docker-archive, bit 1 arm64, bit 2 nitro-cli mode, bit 3 look up a tag. */
#include <archive.h>
#include <archive_entry.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image.h"
#include "util/buf.h"
#include "util/fs.h"
#include "util/hash.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_MAX_DOCS 10

struct doc {
  const char *text;
  size_t len;
  struct kiln_buf expanded; /* text with the @N references replaced */
  char hex[KILN_SHA256_HEX_LEN + 1];
};

/* Expand documents from the last to the first, so "@N" (N > i) is always known. */
static void expand(struct doc *docs, size_t n)
{
  for (size_t i = n; i-- > 0;) {
    struct doc *d = &docs[i];
    for (size_t at = 0; at < d->len; at++) {
      size_t ref = at + 1 < d->len ? (size_t)(d->text[at + 1] - '0') : n;
      if (d->text[at] == '@' && ref > i && ref < n) {
        kiln_buf_puts(&d->expanded, docs[ref].hex);
        at++;
      } else {
        kiln_buf_putc(&d->expanded, d->text[at]);
      }
    }
    kiln_sha256_hex(d->expanded.data ? d->expanded.data : "", d->expanded.len, d->hex);
  }
}

static void add_file(struct archive *a, const char *name, const struct kiln_buf *body)
{
  struct archive_entry *e = archive_entry_new();
  archive_entry_set_pathname(e, name);
  archive_entry_set_filetype(e, AE_IFREG);
  archive_entry_set_perm(e, 0644);
  archive_entry_set_size(e, (la_int64_t)body->len);
  archive_write_header(a, e);
  if (body->len)
    archive_write_data(a, body->data, body->len);
  archive_entry_free(e);
}

static void write_image_tar(const char *path, struct doc *docs, size_t n, int docker)
{
  struct archive *a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  if (archive_write_open_filename(a, path) != ARCHIVE_OK)
    abort();
  struct kiln_buf layout = KILN_BUF_INIT;
  kiln_buf_puts(&layout, "{\"imageLayoutVersion\":\"1.0.0\"}");
  add_file(a, "oci-layout", &layout);
  add_file(a, docker ? "manifest.json" : "index.json", &docs[0].expanded);
  for (size_t i = 1; i < n; i++) {
    char name[96];
    snprintf(name, sizeof name, "blobs/sha256/%s", docs[i].hex);
    add_file(a, name, &docs[i].expanded);
  }
  archive_write_close(a);
  archive_write_free(a);
  kiln_buf_free(&layout);
}

static void run_config(const char *dir, const cJSON *config, int nitro_cli_mode)
{
  struct kiln_error err = KILN_ERROR_INIT;
  struct img_spool *spool = NULL;
  struct img_tree *tree = NULL;
  struct img_runconfig rc;
  memset(&rc, 0, sizeof rc);
  struct img_run_overrides ov = {NULL, NULL, nitro_cli_mode};
  if (img_spool_new(dir, &spool, &err) != KILN_OK || img_tree_new(spool, &tree, &err) != KILN_OK)
    abort();
  if (img_runconfig_build(tree, config, &ov, &rc, &err) == KILN_OK)
    img_runconfig_clear(&rc);
  kiln_error_clear(&err);
  img_tree_free(tree);
  img_spool_free(spool);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  static char *dir, *tar_path;
  struct kiln_error err = KILN_ERROR_INIT;
  if (!dir) {
    const char *tmp = getenv("TMPDIR");
    if (kiln_mkdtemp_in(tmp ? tmp : "/tmp", "kiln-fuzz-image-", &dir, &err) != KILN_OK)
      abort();
    tar_path = kiln_path_join(dir, "image.tar");
  }
  if (size < 1)
    return 0;
  uint8_t mode = data[0];
  struct doc docs[FUZZ_MAX_DOCS];
  size_t n = 0;
  const char *p = (const char *)data + 1, *end = (const char *)data + size;
  while (n < FUZZ_MAX_DOCS && p <= end) {
    const char *nul = memchr(p, '\0', (size_t)(end - p));
    size_t len = nul ? (size_t)(nul - p) : (size_t)(end - p);
    docs[n++] = (struct doc){p, len, KILN_BUF_INIT, {0}};
    p += len + 1;
  }
  expand(docs, n);
  write_image_tar(tar_path, docs, n, mode & 1);

  struct img_store *store = NULL;
  struct img_manifest m;
  memset(&m, 0, sizeof m);
  const char *platform = mode & 2 ? "linux/arm64/v8" : "linux/amd64";
  const char *ref = mode & 8 ? (mode & 1 ? "hello:latest" : "latest") : NULL;
  if (img_store_open_tar(tar_path, &store, &err) == KILN_OK) {
    kiln_err rc = mode & 1 ? img_docker_archive_resolve(store, ref, platform, &m, &err)
                           : img_oci_resolve(store, ref, platform, &m, &err);
    if (rc == KILN_OK) {
      for (size_t i = 0; i < m.nlayers; i++)
        (void)img_store_has(store, m.layers[i].path);
      run_config(dir, m.config, mode & 4);
      img_manifest_clear(&m);
    }
  }
  kiln_error_clear(&err);
  img_store_free(store);
  for (size_t i = 0; i < n; i++)
    kiln_buf_free(&docs[i].expanded);
  return 0;
}
