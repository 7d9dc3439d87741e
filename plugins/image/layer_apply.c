/* Applying one layer (tar, tar+gzip, tar+zstd) onto the tree in a single streaming pass: replace
 * rules, whiteouts, hard links, the blob digest checked while reading, and umoci's truncated tars.
 */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image.h"
#include "util/hash.h"

#define LAYER_READ_SIZE (256u * 1024u)

struct blob_reader {
  const struct img_blob *blob;
  uint64_t pos;
  EVP_MD_CTX *sha;
  int io_errno;
  unsigned char buf[LAYER_READ_SIZE];
};

static la_ssize_t blob_read_cb(struct archive *a, void *ud, const void **out)
{
  struct blob_reader *r = ud;
  (void)a;
  uint64_t left = r->blob->size - r->pos;
  size_t want = left < LAYER_READ_SIZE ? (size_t)left : LAYER_READ_SIZE;
  *out = r->buf;
  if (want == 0)
    return 0;
  ssize_t n;
  do
    n = pread(r->blob->fd, r->buf, want, (off_t)(r->blob->offset + r->pos));
  while (n < 0 && errno == EINTR);
  if (n <= 0) {
    r->io_errno = n < 0 ? errno : EIO;
    archive_set_error(a, r->io_errno, "reading the layer blob failed: %s", strerror(r->io_errno));
    return -1;
  }
  EVP_DigestUpdate(r->sha, r->buf, (size_t)n);
  r->pos += (uint64_t)n;
  return n;
}

/* Hash whatever libarchive did not read (padding after the end blocks) and compare digests. */
static kiln_err blob_verify(struct blob_reader *r, int uncompressed, struct kiln_error *err)
{
  const struct img_blob *b = r->blob;
  const char *want = b->digest ? b->digest : (uncompressed ? b->diff_id : NULL);
  while (r->pos < b->size) {
    uint64_t left = b->size - r->pos;
    size_t n = left < LAYER_READ_SIZE ? (size_t)left : LAYER_READ_SIZE;
    ssize_t got = pread(b->fd, r->buf, n, (off_t)(b->offset + r->pos));
    if (got < 0 && errno == EINTR)
      continue;
    if (got <= 0)
      return kiln_error_set(err, KILN_E_IO, "layer %s: reading the blob failed: %s", b->label,
                            got < 0 ? strerror(errno) : "unexpected end of file");
    EVP_DigestUpdate(r->sha, r->buf, (size_t)got);
    r->pos += (uint64_t)got;
  }
  if (!want)
    return KILN_OK;
  unsigned char md[32];
  unsigned int mdlen = 0;
  char hex[KILN_SHA256_HEX_LEN + 1];
  EVP_DigestFinal_ex(r->sha, md, &mdlen);
  kiln_hex_encode(md, 32, hex);
  if (!kiln_digest_is_sha256(want))
    return kiln_error_set(err, KILN_E_UNSUPPORTED,
                          "layer %s: digest algorithm of \"%s\" is not supported (only sha256)",
                          b->label, want);
  if (strcmp(want + 7, hex) != 0)
    return kiln_error_set(err, KILN_E_INVALID,
                          "layer %s: digest mismatch: expected %s, got sha256:%s (corrupt or "
                          "tampered blob; pull or save the image again)",
                          b->label, want, hex);
  return KILN_OK;
}

static kiln_err spool_put(struct img_tree *t, struct img_inode *ino, const void *data, size_t n,
                          struct kiln_error *err)
{
  if (t->bytes + n > t->max_bytes)
    return kiln_error_set(err, KILN_E_NOMEM,
                          "the image holds more than %llu bytes of file data (limit); raise "
                          "/image/max_bytes",
                          (unsigned long long)t->max_bytes);
  kiln_err rc = img_spool_append(t->spool, data, n, err);
  if (!rc) {
    ino->size += n;
    t->bytes += n;
  }
  return rc;
}

/* Copy the entry's data into the spool, or, in an uncompressed layer file, only note where the
 * data lies (it is read in place later; the bytes still stream through the digest). Sets
 * *truncated_after_data when the stream ended right after all declared data (no padding, no end
 * blocks): umoci 0.4.7 writes such layers. */
static kiln_err copy_data(struct img_tree *t, struct archive *a, struct archive_entry *e,
                          struct img_inode *ino, int *truncated_after_data, struct kiln_error *err)
{
  static const char zeros[4096];
  int64_t declared = archive_entry_size_is_set(e) ? archive_entry_size(e) : -1;
  int in_place = t->inplace_src && archive_entry_sparse_count(e) == 0;
  ino->src = in_place ? t->inplace_src : 0;
  ino->spool_off =
      in_place ? t->inplace_base + (uint64_t)archive_filter_bytes(a, 0) : img_spool_tell(t->spool);
  ino->size = 0;
  for (;;) {
    const void *buf;
    size_t n;
    la_int64_t offset;
    int r = archive_read_data_block(a, &buf, &n, &offset);
    if (r == ARCHIVE_EOF)
      return KILN_OK;
    if (r < ARCHIVE_WARN) {
      if (declared >= 0 && (int64_t)ino->size == declared) {
        *truncated_after_data = 1;
        return KILN_OK;
      }
      return kiln_error_set(err, KILN_E_INVALID, "reading the data failed: %s",
                            archive_error_string(a) ? archive_error_string(a) : "unknown error");
    }
    if (in_place) {
      if (offset != (la_int64_t)ino->size || t->bytes + n > t->max_bytes)
        return kiln_error_set(err, KILN_E_INVALID,
                              "file data is not contiguous or over /image/max_bytes");
      ino->size += n;
      t->bytes += n;
      continue;
    }
    /* Sparse members: holes become zeros. */
    while (offset > (la_int64_t)ino->size) {
      uint64_t gap = (uint64_t)offset - ino->size;
      kiln_err rc =
          spool_put(t, ino, zeros, gap < sizeof(zeros) ? (size_t)gap : sizeof(zeros), err);
      if (rc)
        return rc;
    }
    kiln_err rc = n ? spool_put(t, ino, buf, n, err) : KILN_OK;
    if (rc)
      return rc;
  }
}

static kiln_err add_or_replace(struct img_tree *t, struct img_node *dir, const char *base,
                               struct img_inode *ino, uint32_t layer, struct kiln_error *err)
{
  struct img_node *old = img_node_find(dir, base, strlen(base));
  if (old)
    img_node_remove(t, old);
  return img_node_add(t, dir, base, strlen(base), ino, layer, NULL, err);
}

static kiln_err apply_hardlink(struct img_tree *t, struct img_node *dir, const char *base,
                               const char *linkname, uint32_t layer, struct kiln_error *err)
{
  kiln_err rc;
  struct kiln_buf lp = KILN_BUF_INIT;
  struct img_node *tdir = NULL, *target = NULL;
  if ((rc = img_path_normalise(linkname, &lp, err))) {
    kiln_error_prefix(err, "hard link target");
    goto out;
  }
  const char *slash = strrchr(lp.data, '/');
  const char *tbase = slash ? slash + 1 : lp.data;
  size_t dirlen = slash ? (size_t)(slash - lp.data) : 0;
  rc = img_tree_walk_dirs(t, t->root, lp.data, dirlen, 0, layer, &tdir, err);
  if (rc == KILN_OK && tbase[0])
    target = img_node_find(tdir, tbase, strlen(tbase));
  if (rc && rc != KILN_E_NOT_FOUND)
    goto out;
  if (!target) {
    rc = kiln_error_set(err, KILN_E_INVALID,
                        "hard link to \"%s\": no such file in this or a lower layer", linkname);
    goto out;
  }
  if (img_node_is_dir(target)) {
    rc = kiln_error_set(err, KILN_E_INVALID, "hard link to directory \"%s\" is not allowed",
                        linkname);
    goto out;
  }
  struct img_inode *ino = target->inode;
  struct img_node *old = img_node_find(dir, base, strlen(base));
  if (old == target) {
    old->layer = layer;
    goto out;
  }
  ino->refs++; /* keep it alive even if the replaced path contained the target */
  rc = add_or_replace(t, dir, base, ino, layer, err);
  img_inode_unref(ino);
out:
  kiln_buf_free(&lp);
  return rc;
}

kiln_err img_layer_apply_entry(struct img_tree *t, struct archive *a, struct archive_entry *e,
                               uint32_t layer, int *truncated_after_data, struct kiln_error *err)
{
  kiln_err rc = KILN_OK;
  struct kiln_buf p = KILN_BUF_INIT;
  struct img_inode *ino = NULL;
  const char *name = archive_entry_pathname(e);
  if (!name)
    return kiln_error_set(err, KILN_E_INVALID, "an entry has no readable name");
  if ((rc = img_path_normalise(name, &p, err)))
    goto out;
  mode_t type = archive_entry_filetype(e);
  const char *hardlink = archive_entry_hardlink(e);
  uint32_t perm = (uint32_t)archive_entry_perm(e) & 07777;
  uint32_t uid = (uint32_t)archive_entry_uid(e), gid = (uint32_t)archive_entry_gid(e);
  if (p.len == 0) {
    if (type != AE_IFDIR || hardlink) {
      rc = kiln_error_set(err, KILN_E_INVALID, "the image root is not a directory");
      goto out;
    }
    t->root->inode->mode = S_IFDIR | perm;
    t->root->inode->uid = uid;
    t->root->inode->gid = gid;
    goto out;
  }
  char *slash = strrchr(p.data, '/');
  const char *base = slash ? slash + 1 : p.data;
  size_t dirlen = slash ? (size_t)(slash - p.data) : 0;
  const char *wh_target = NULL;
  enum img_whiteout_kind wk = img_whiteout_classify(base, &wh_target);
  struct img_node *dir = NULL;
  if (wk == IMG_WH_META)
    goto out;
  if (wk == IMG_WH_FILE) {
    if (!wh_target[0]) {
      rc = kiln_error_set(err, KILN_E_INVALID, "invalid whiteout \".wh.\": it names no file");
      goto out;
    }
    rc = img_tree_walk_dirs(t, t->root, p.data, dirlen, 0, layer, &dir, err);
    if (rc == KILN_E_NOT_FOUND) {
      rc = KILN_OK;
      if (t->warn)
        t->warn(t->warn_ctx,
                "layer %s: whiteout %s hides nothing (its directory does not exist); ignored",
                t->layer_label, p.data);
      goto out;
    }
    if (!rc)
      rc = img_whiteout_apply(t, dir, wh_target, layer, p.data, err);
    goto out;
  }
  if ((rc = img_tree_walk_dirs(t, t->root, p.data, dirlen, 1, layer, &dir, err)))
    goto out;
  if (wk == IMG_WH_OPAQUE) {
    img_whiteout_opaque(t, dir, layer);
    goto out;
  }
  if (dir == t->root && strcmp(base, ".dockerenv") == 0)
    goto out; /* Docker's runtime marker; nitro-cli's linuxkit drops it too */
  if (hardlink) {
    rc = apply_hardlink(t, dir, base, hardlink, layer, err);
    goto out;
  }
  switch (type) {
  case AE_IFDIR: {
    struct img_node *old = img_node_find(dir, base, strlen(base));
    if (old && img_node_is_dir(old)) {
      old->inode->mode = S_IFDIR | perm;
      old->inode->uid = uid;
      old->inode->gid = gid;
      old->layer = layer;
      goto out;
    }
    break;
  }
  case AE_IFREG:
  case AE_IFLNK:
  case AE_IFIFO: break;
  case AE_IFCHR:
  case AE_IFBLK:
    if (t->keep_devices)
      break;
    if (t->warn)
      t->warn(t->warn_ctx,
              "layer %s: device node %s dropped (set /image/devices to \"keep\" to keep it)",
              t->layer_label, p.data);
    goto out;
  default:
    if (t->warn)
      t->warn(t->warn_ctx,
              "layer %s: %s: entry type %o dropped (sockets and unknown types are not kept)",
              t->layer_label, p.data, (unsigned)type);
    goto out;
  }
  if (!(ino = img_inode_new(t, (uint32_t)type | perm, uid, gid))) {
    rc = kiln_error_set(err, KILN_E_NOMEM, "out of memory");
    goto out;
  }
  if (type == AE_IFLNK) {
    const char *target = archive_entry_symlink(e);
    if (!target || !(ino->target = strdup(target))) {
      rc = kiln_error_set(err, target ? KILN_E_NOMEM : KILN_E_INVALID, "symlink has no target");
      goto out;
    }
  } else if (type == AE_IFCHR || type == AE_IFBLK) {
    ino->rdev_major = (uint32_t)archive_entry_rdevmajor(e);
    ino->rdev_minor = (uint32_t)archive_entry_rdevminor(e);
  } else if (type == AE_IFREG) {
    if ((rc = copy_data(t, a, e, ino, truncated_after_data, err)))
      goto out;
  }
  rc = add_or_replace(t, dir, base, ino, layer, err);
out:
  if (rc && p.data)
    kiln_error_prefix(err, "%s", p.data);
  img_inode_unref(ino); /* the tree holds its own reference */
  kiln_buf_free(&p);
  return rc;
}

kiln_err img_layer_apply(struct img_tree *t, const struct img_blob *blob, uint32_t layer,
                         struct kiln_error *err)
{
  kiln_err rc = KILN_OK;
  struct archive *a = archive_read_new();
  struct blob_reader *r = calloc(1, sizeof(*r));
  int truncated = 0;
  if (!a || !r || !(r->sha = EVP_MD_CTX_new())) {
    rc = kiln_error_set(err, KILN_E_NOMEM, "out of memory opening layer %s", blob->label);
    goto out;
  }
  r->blob = blob;
  t->layer_label = blob->label;
  EVP_DigestInit_ex(r->sha, EVP_sha256(), NULL);
  archive_read_support_filter_gzip(a);
  archive_read_support_filter_zstd(a);
  archive_read_support_format_tar(a);
  archive_read_support_format_empty(a);
  if (archive_read_open(a, r, NULL, blob_read_cb, NULL) != ARCHIVE_OK) {
    rc = kiln_error_set(err, KILN_E_INVALID,
                        "layer %s is not a tar archive (plain, gzip or zstd): %s", blob->label,
                        archive_error_string(a));
    goto out;
  }
  /* Uncompressed layer files are not copied: their file data is read in place when emitting. */
  if (archive_filter_count(a) <= 1 &&
      (rc = img_tree_add_backing(t, blob->fd, &t->inplace_src, err)))
    goto out;
  t->inplace_base = blob->offset;
  while (!truncated) {
    struct archive_entry *e;
    int ar = archive_read_next_header(a, &e);
    if (ar == ARCHIVE_EOF)
      break;
    if (ar < ARCHIVE_WARN) {
      rc = kiln_error_set(err, KILN_E_INVALID, "layer %s: %s", blob->label,
                          archive_error_string(a) ? archive_error_string(a) : "unreadable tar");
      goto out;
    }
    if ((rc = img_layer_apply_entry(t, a, e, layer, &truncated, err))) {
      kiln_error_prefix(err, "layer %s", blob->label);
      goto out;
    }
  }
  if (truncated && t->warn)
    t->warn(t->warn_ctx,
            "layer %s ends right after its last file's data (no tar padding or end blocks, as "
            "umoci 0.4 writes); accepted",
            blob->label);
  int uncompressed = archive_filter_count(a) <= 1;
  if ((rc = blob_verify(r, uncompressed, err)))
    goto out;
out:
  t->inplace_src = 0;
  if (a)
    archive_read_free(a);
  if (r)
    EVP_MD_CTX_free(r->sha);
  free(r);
  return rc;
}
