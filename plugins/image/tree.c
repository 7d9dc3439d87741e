/* The in-memory merged filesystem: nodes with sorted children, shared inodes for hard links, and
 * chroot-style path resolution that can never reach the host filesystem. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image.h"

#define ARENA_CHUNK_SIZE (1u << 20)

struct img_arena_chunk {
  struct img_arena_chunk *prev;
  size_t used, cap;
  _Alignas(16) unsigned char data[];
};

/* Zeroed memory from the tree's arena, freed all at once with the tree. */
static void *arena_alloc(struct img_tree *t, size_t size)
{
  size = (size + 15) & ~(size_t)15;
  struct img_arena_chunk *c = t->arena;
  if (!c || c->cap - c->used < size) {
    size_t cap = size > ARENA_CHUNK_SIZE ? size : ARENA_CHUNK_SIZE;
    struct img_arena_chunk *n = calloc(1, sizeof(*n) + cap);
    if (!n)
      return NULL;
    n->cap = cap;
    n->prev = c;
    t->arena = c = n;
  }
  void *p = c->data + c->used;
  c->used += size;
  return p;
}

struct img_inode *img_inode_new(struct img_tree *t, uint32_t mode, uint32_t uid, uint32_t gid)
{
  struct img_inode *ino = arena_alloc(t, sizeof(*ino));
  if (ino) {
    ino->refs = 1; /* the creator's reference */
    ino->mode = mode;
    ino->uid = uid;
    ino->gid = gid;
  }
  return ino;
}

void img_inode_unref(struct img_inode *ino)
{
  if (!ino || --ino->refs > 0)
    return;
  if (S_ISLNK(ino->mode)) {
    free(ino->target);
    ino->target = NULL;
  }
}

int img_node_is_dir(const struct img_node *n)
{
  return S_ISDIR(n->inode->mode);
}

static void node_free(struct img_tree *t, struct img_node *n)
{
  /* Children first; depth is bounded by IMG_MAX_PATH / 2. The node's memory is the arena's. */
  for (size_t i = 0; i < n->nkids; i++)
    node_free(t, n->kids[i]);
  if (t->nodes)
    t->nodes--;
  free(n->kids);
  n->kids = NULL;
  n->nkids = n->cap = 0;
  img_inode_unref(n->inode);
}

kiln_err img_tree_new(struct img_spool *spool, struct img_tree **out, struct kiln_error *err)
{
  struct img_tree *t = calloc(1, sizeof(*t));
  *out = NULL;
  struct img_node *root = t ? arena_alloc(t, sizeof(*root) + 1) : NULL;
  struct img_inode *ino = root ? img_inode_new(t, S_IFDIR | 0755, 0, 0) : NULL;
  if (!ino) {
    img_tree_free(t);
    return kiln_error_set(err, KILN_E_NOMEM, "out of memory creating the image tree");
  }
  root->inode = ino;
  t->root = root;
  t->spool = spool;
  t->max_nodes = 10u * 1000u * 1000u;
  t->max_bytes = 64ull << 30;
  *out = t;
  return KILN_OK;
}

void img_tree_free(struct img_tree *t)
{
  if (!t)
    return;
  if (t->root)
    node_free(t, t->root);
  for (uint32_t i = 0; i < t->nbacking; i++)
    close(t->backing[i]);
  free(t->backing);
  while (t->arena) {
    struct img_arena_chunk *prev = t->arena->prev;
    free(t->arena);
    t->arena = prev;
  }
  free(t);
}

/* Bytewise compare of a counted name with a C string. */
static int name_cmp(const char *a, size_t alen, const char *b)
{
  size_t blen = strlen(b);
  int c = memcmp(a, b, alen < blen ? alen : blen);
  if (c)
    return c;
  return alen < blen ? -1 : alen > blen ? 1 : 0;
}

/* Index of name in dir's kids, or the insertion point (with *found = 0). */
static size_t kid_index(const struct img_node *dir, const char *name, size_t len, int *found)
{
  size_t lo = 0, hi = dir->nkids;
  *found = 0;
  /* Layers are usually sorted: check the end first so appends stay O(1). */
  if (hi > 0 && name_cmp(name, len, dir->kids[hi - 1]->name) > 0)
    return hi;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int c = name_cmp(name, len, dir->kids[mid]->name);
    if (c == 0) {
      *found = 1;
      return mid;
    }
    if (c < 0)
      hi = mid;
    else
      lo = mid + 1;
  }
  return lo;
}

struct img_node *img_node_find(const struct img_node *dir, const char *name, size_t len)
{
  int found;
  size_t i = kid_index(dir, name, len, &found);
  return found ? dir->kids[i] : NULL;
}

kiln_err img_node_add(struct img_tree *t, struct img_node *dir, const char *name, size_t len,
                      struct img_inode *inode, uint32_t layer, struct img_node **out,
                      struct kiln_error *err)
{
  int found;
  size_t at = kid_index(dir, name, len, &found);
  if (found)
    return kiln_error_set(err, KILN_E_INTERNAL, "tree: %.*s added twice", (int)len, name);
  if (t->nodes >= t->max_nodes)
    return kiln_error_set(err, KILN_E_NOMEM,
                          "the image has more than %llu entries (limit); raise /image/max_entries",
                          (unsigned long long)t->max_nodes);
  if (dir->nkids == dir->cap) {
    if (dir->cap >= UINT32_MAX / 2)
      return kiln_error_set(err, KILN_E_NOMEM, "too many entries in one directory");
    uint32_t cap = dir->cap ? dir->cap * 2 : 4;
    struct img_node **kids = realloc(dir->kids, cap * sizeof(*kids));
    if (!kids)
      return kiln_error_set(err, KILN_E_NOMEM, "out of memory growing the image tree");
    dir->kids = kids;
    dir->cap = cap;
  }
  struct img_node *n = arena_alloc(t, sizeof(*n) + len + 1);
  if (!n)
    return kiln_error_set(err, KILN_E_NOMEM, "out of memory growing the image tree");
  memcpy(n->name, name, len);
  n->parent = dir;
  n->inode = inode;
  inode->refs++;
  n->layer = layer;
  memmove(dir->kids + at + 1, dir->kids + at, (dir->nkids - at) * sizeof(*dir->kids));
  dir->kids[at] = n;
  dir->nkids++;
  t->nodes++;
  if (out)
    *out = n;
  return KILN_OK;
}

void img_node_remove(struct img_tree *t, struct img_node *node)
{
  struct img_node *dir = node->parent;
  if (!dir)
    return; /* the root is never removed */
  int found;
  size_t i = kid_index(dir, node->name, strlen(node->name), &found);
  if (found && dir->kids[i] == node) {
    memmove(dir->kids + i, dir->kids + i + 1, (dir->nkids - i - 1) * sizeof(*dir->kids));
    dir->nkids--;
  }
  node_free(t, node);
}

static kiln_err walk(struct img_tree *t, struct img_node *dir, const char *path, size_t len,
                     int create, uint32_t layer, int *hops, int follow_last, struct img_node **out,
                     struct kiln_error *err)
{
  size_t i = 0;
  *out = NULL;
  while (i < len) {
    while (i < len && path[i] == '/')
      i++;
    size_t start = i;
    while (i < len && path[i] != '/')
      i++;
    size_t clen = i - start;
    const char *comp = path + start;
    int last = (i >= len) || (strspn(path + i, "/") == len - i);
    if (clen == 0 || (clen == 1 && comp[0] == '.'))
      continue;
    if (clen == 2 && comp[0] == '.' && comp[1] == '.') {
      if (dir->parent)
        dir = dir->parent;
      continue;
    }
    struct img_node *child = img_node_find(dir, comp, clen);
    if (!child) {
      if (!create)
        return KILN_E_NOT_FOUND;
      struct img_inode *ino = img_inode_new(t, S_IFDIR | 0755, 0, 0);
      if (!ino)
        return kiln_error_set(err, KILN_E_NOMEM, "out of memory");
      kiln_err rc = img_node_add(t, dir, comp, clen, ino, layer, &child, err);
      img_inode_unref(ino);
      if (rc)
        return rc;
    }
    if (S_ISLNK(child->inode->mode) && (!last || follow_last)) {
      if (++*hops > IMG_MAX_SYMLINK_HOPS)
        return kiln_error_set(err, KILN_E_INVALID,
                              "too many levels of symbolic links (more than %d) at \"%.*s\"",
                              IMG_MAX_SYMLINK_HOPS, (int)(i), path);
      const char *target = child->inode->target ? child->inode->target : "";
      struct img_node *base = target[0] == '/' ? t->root : dir;
      kiln_err rc = walk(t, base, target, strlen(target), create, layer, hops, 1, &child, err);
      if (rc)
        return rc;
    }
    if (!last && !img_node_is_dir(child)) {
      if (!create)
        return KILN_E_NOT_FOUND;
      return kiln_error_set(err, KILN_E_INVALID, "\"%.*s\" is not a directory", (int)i, path);
    }
    dir = child;
  }
  *out = dir;
  return KILN_OK;
}

kiln_err img_tree_walk_dirs(struct img_tree *t, struct img_node *dir, const char *path, size_t len,
                            int create, uint32_t layer, struct img_node **out,
                            struct kiln_error *err)
{
  int hops = 0;
  kiln_err rc = walk(t, dir, path, len, create, layer, &hops, 1, out, err);
  if (!rc && !img_node_is_dir(*out))
    rc = create ? kiln_error_set(err, KILN_E_INVALID, "\"%.*s\" is not a directory", (int)len, path)
                : KILN_E_NOT_FOUND;
  return rc;
}

kiln_err img_tree_lookup(struct img_tree *t, const char *path, struct img_node **out,
                         struct kiln_error *err)
{
  int hops = 0;
  kiln_err rc = walk(t, t->root, path, strlen(path), 0, 0, &hops, 1, out, err);
  if (rc == KILN_E_NOT_FOUND) {
    *out = NULL;
    return KILN_OK;
  }
  return rc;
}

kiln_err img_tree_read_file(struct img_tree *t, const struct img_node *n, size_t max, char **out,
                            size_t *len, struct kiln_error *err)
{
  *out = NULL;
  if (!S_ISREG(n->inode->mode))
    return kiln_error_set(err, KILN_E_INVALID, "%s is not a regular file", n->name);
  if (n->inode->size > max)
    return kiln_error_set(err, KILN_E_NOMEM, "%s is larger than %zu bytes", n->name, max);
  size_t size = (size_t)n->inode->size;
  char *buf = malloc(size + 1);
  if (!buf)
    return kiln_error_set(err, KILN_E_NOMEM, "out of memory reading %s", n->name);
  kiln_err rc = size ? img_tree_read_data(t, n->inode, 0, buf, size, err) : KILN_OK;
  if (rc) {
    free(buf);
    return rc;
  }
  buf[size] = '\0';
  *out = buf;
  *len = size;
  return KILN_OK;
}

kiln_err img_tree_add_backing(struct img_tree *t, int fd, uint32_t *src, struct kiln_error *err)
{
  struct stat st, have;
  if (fstat(fd, &st) != 0)
    return kiln_error_set(err, KILN_E_IO, "cannot stat a layer file: %s", strerror(errno));
  for (uint32_t i = 0; i < t->nbacking; i++) {
    if (fstat(t->backing[i], &have) == 0 && have.st_dev == st.st_dev && have.st_ino == st.st_ino) {
      *src = i + 1;
      return KILN_OK;
    }
  }
  int *grown = realloc(t->backing, (t->nbacking + 1) * sizeof(*grown));
  if (!grown)
    return kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  t->backing = grown;
  int dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (dup_fd < 0)
    return kiln_error_set(err, KILN_E_IO, "cannot keep a layer file open: %s", strerror(errno));
  t->backing[t->nbacking++] = dup_fd;
  *src = t->nbacking;
  return KILN_OK;
}

kiln_err img_tree_read_data(struct img_tree *t, const struct img_inode *ino, uint64_t off,
                            void *buf, size_t len, struct kiln_error *err)
{
  if (ino->src == 0)
    return img_spool_read(t->spool, ino->spool_off + off, buf, len, err);
  if (ino->src > t->nbacking)
    return kiln_error_set(err, KILN_E_INTERNAL, "file data refers to an unknown layer file");
  int fd = t->backing[ino->src - 1];
  unsigned char *p = buf;
  off += ino->spool_off;
  while (len > 0) {
    ssize_t n = pread(fd, p, len, (off_t)off);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return kiln_error_set(err, KILN_E_IO, "reading file data from a layer failed: %s",
                            n < 0 ? strerror(errno) : "the layer file shrank");
    p += n;
    off += (uint64_t)n;
    len -= (size_t)n;
  }
  return KILN_OK;
}
