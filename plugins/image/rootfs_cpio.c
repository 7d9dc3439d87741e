/* Emitting the application ramdisk: cmd, env, kiln-run and rootfs/... as a newc cpio, entries in
 * bytewise path order (the order of `find | LC_ALL=C sort`), file data streamed from the spool. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "image.h"
#include "kiln_cpio.h"

#define EMIT_COPY_SIZE (128u * 1024u)

struct emitter {
  struct img_tree *t;
  struct kiln_cpio *c;
  struct kiln_buf path;
  char *buf;
  uint64_t files;
};

struct item {
  struct img_node *n;
  int sub; /* 0: the node itself ("name"); 1: its subtree ("name/...") */
};

/* Order of "name" (sub 0) or "name/" (sub 1) as bytewise strings; names never contain '/'. */
static int item_cmp(const void *x, const void *y)
{
  const struct item *a = x, *b = y;
  size_t la = strlen(a->n->name), lb = strlen(b->n->name);
  int c = memcmp(a->n->name, b->n->name, la < lb ? la : lb);
  if (c)
    return c;
  if (la == lb)
    return a->sub - b->sub;
  if (la < lb)
    return a->sub ? (int)'/' - (int)(unsigned char)b->n->name[la] : -1;
  return b->sub ? (int)(unsigned char)a->n->name[lb] - (int)'/' : 1;
}

static void links_reset(struct img_node *dir)
{
  for (size_t i = 0; i < dir->nkids; i++) {
    struct img_inode *ino = dir->kids[i]->inode;
    ino->links_final = ino->links_emitted = ino->cpio_ino = 0;
    if (img_node_is_dir(dir->kids[i]))
      links_reset(dir->kids[i]);
  }
}

static void links_count(struct img_node *dir)
{
  for (size_t i = 0; i < dir->nkids; i++) {
    if (img_node_is_dir(dir->kids[i]))
      links_count(dir->kids[i]);
    else
      dir->kids[i]->inode->links_final++;
  }
}

static uint32_t dir_nlink(const struct img_node *dir)
{
  uint32_t n = 2;
  for (size_t i = 0; i < dir->nkids; i++)
    n += img_node_is_dir(dir->kids[i]) ? 1 : 0;
  return n;
}

static kiln_err emit_node(struct emitter *em, struct img_node *n, struct kiln_error *err)
{
  kiln_err rc;
  struct img_inode *ino = n->inode;
  struct kiln_cpio_entry e = {
      .path = em->path.data, .mode = ino->mode, .uid = ino->uid, .gid = ino->gid};
  if (S_ISCHR(ino->mode) || S_ISBLK(ino->mode)) {
    e.rdev_major = ino->rdev_major;
    e.rdev_minor = ino->rdev_minor;
  }
  uint64_t data = 0;
  if (S_ISDIR(ino->mode)) {
    e.nlink = dir_nlink(n);
  } else if (S_ISLNK(ino->mode)) {
    e.size = strlen(ino->target);
  } else if (S_ISREG(ino->mode)) {
    /* Hard links share an inode number; the data goes with the last member. */
    e.nlink = ino->links_final;
    e.ino = ino->cpio_ino;
    ino->links_emitted++;
    if (ino->links_emitted == ino->links_final)
      e.size = data = ino->size;
  }
  uint32_t assigned = 0;
  if ((rc = kiln_cpio_add(em->c, &e, &assigned, err)))
    return rc;
  if (S_ISREG(ino->mode) && ino->links_final > 1)
    ino->cpio_ino = assigned;
  em->files++;
  if (S_ISLNK(ino->mode))
    return kiln_cpio_write_data(em->c, ino->target, e.size, err);
  uint64_t off = 0;
  while (data > 0) {
    size_t n_read = data < EMIT_COPY_SIZE ? (size_t)data : EMIT_COPY_SIZE;
    if ((rc = img_tree_read_data(em->t, ino, off, em->buf, n_read, err)) ||
        (rc = kiln_cpio_write_data(em->c, em->buf, n_read, err)))
      return rc;
    off += n_read;
    data -= n_read;
  }
  return KILN_OK;
}

static kiln_err emit_dir(struct emitter *em, struct img_node *dir, struct kiln_error *err)
{
  kiln_err rc = KILN_OK;
  size_t count = 0;
  struct item *items = calloc(dir->nkids * 2 + 1, sizeof(*items));
  if (!items)
    return kiln_error_set(err, KILN_E_NOMEM, "out of memory writing the rootfs");
  for (size_t i = 0; i < dir->nkids; i++) {
    items[count++] = (struct item){dir->kids[i], 0};
    if (img_node_is_dir(dir->kids[i]) && dir->kids[i]->nkids)
      items[count++] = (struct item){dir->kids[i], 1};
  }
  qsort(items, count, sizeof(*items), item_cmp);
  size_t base_len = em->path.len;
  for (size_t i = 0; i < count && !rc; i++) {
    em->path.len = base_len;
    em->path.data[base_len] = '\0';
    if ((rc = kiln_buf_printf(&em->path, "/%s", items[i].n->name))) {
      kiln_error_set(err, rc, "out of memory");
      break;
    }
    rc = items[i].sub ? emit_dir(em, items[i].n, err) : emit_node(em, items[i].n, err);
  }
  em->path.len = base_len;
  em->path.data[base_len] = '\0';
  free(items);
  return rc;
}

static kiln_err add_lines(struct kiln_cpio *c, const char *name, char *const *lines, size_t n,
                          struct kiln_error *err)
{
  kiln_err rc;
  struct kiln_buf b = KILN_BUF_INIT;
  for (size_t i = 0; i < n; i++) {
    if ((rc = kiln_buf_printf(&b, "%s\n", lines[i]))) {
      kiln_buf_free(&b);
      return kiln_error_set(err, rc, "out of memory");
    }
  }
  rc = kiln_cpio_add_file(c, name, 0644, 0, 0, b.len, err);
  if (!rc && b.len)
    rc = kiln_cpio_write_data(c, b.data, b.len, err);
  kiln_buf_free(&b);
  return rc;
}

/* The mount points nitro-cli's ramdisk always has (rootfs/{dev,proc,...}). */
static kiln_err ensure_mount_points(struct img_tree *t, struct kiln_error *err)
{
  static const char *const names[] = {"dev", "proc", "run", "sys", "tmp", "var"};
  for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
    if (img_node_find(t->root, names[i], strlen(names[i])))
      continue;
    struct img_inode *ino = img_inode_new(t, S_IFDIR | 0755, 0, 0);
    if (!ino)
      return kiln_error_set(err, KILN_E_NOMEM, "out of memory");
    kiln_err rc = img_node_add(t, t->root, names[i], strlen(names[i]), ino, 0, NULL, err);
    img_inode_unref(ino);
    if (rc)
      return rc;
  }
  return KILN_OK;
}

kiln_err img_rootfs_write(struct img_tree *t, const struct img_runconfig *rc_cfg, int64_t mtime,
                          const char *out_path, struct img_emit_stats *stats,
                          struct kiln_error *err)
{
  kiln_err rc;
  struct emitter em = {.t = t};
  struct kiln_buf run = KILN_BUF_INIT;
  memset(stats, 0, sizeof(*stats));
  if ((rc = ensure_mount_points(t, err)))
    goto out;
  if (!(em.buf = malloc(EMIT_COPY_SIZE))) {
    rc = kiln_error_set(err, KILN_E_NOMEM, "out of memory");
    goto out;
  }
  if ((rc = kiln_cpio_open_path(out_path, mtime, &em.c, err)) || (rc = kiln_cpio_hash(em.c, err)))
    goto out;
  if ((rc = kiln_buf_printf(&run, "workdir=%s\nuser=%u:%u\n", rc_cfg->workdir, rc_cfg->uid,
                            rc_cfg->gid))) {
    kiln_error_set(err, rc, "out of memory");
    goto out;
  }
  if ((rc = add_lines(em.c, "cmd", rc_cfg->argv, rc_cfg->argc, err)) ||
      (rc = add_lines(em.c, "env", rc_cfg->env, rc_cfg->envc, err)) ||
      (rc = kiln_cpio_add_file(em.c, "kiln-run", 0644, 0, 0, run.len, err)) ||
      (rc = kiln_cpio_write_data(em.c, run.data, run.len, err)))
    goto out;
  struct img_inode *root = t->root->inode;
  struct kiln_cpio_entry re = {.path = "rootfs",
                               .mode = root->mode,
                               .uid = root->uid,
                               .gid = root->gid,
                               .nlink = dir_nlink(t->root)};
  if ((rc = kiln_cpio_add(em.c, &re, NULL, err)))
    goto out;
  links_reset(t->root);
  links_count(t->root);
  if ((rc = kiln_buf_puts(&em.path, "rootfs"))) {
    kiln_error_set(err, rc, "out of memory");
    goto out;
  }
  if ((rc = emit_dir(&em, t->root, err)) || (rc = kiln_cpio_close(em.c, err)))
    goto out;
  stats->files = em.files;
  stats->bytes = kiln_cpio_bytes(em.c);
  if (kiln_cpio_sha256(em.c, stats->sha256) != 0 || kiln_cpio_crc32(em.c, &stats->crc32) != 0)
    rc = kiln_error_set(err, KILN_E_INTERNAL, "the archive's SHA-256 was not computed");
out:
  kiln_cpio_free(em.c);
  kiln_buf_free(&em.path);
  kiln_buf_free(&run);
  free(em.buf);
  return rc;
}
