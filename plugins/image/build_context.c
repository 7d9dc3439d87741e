/* The build context of a Dockerfile build: the application directory as a tar, filtered by
 * .dockerignore exactly as `docker build` filters it, written deterministically (walk order
 * sorted bytewise per directory, fixed mtime, owners 0:0 without names) and hashed while it is
 * written, so the same directory gives the same bytes and the same cache key anywhere. */
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "build.h"
#include "util/fs.h"
#include "util/hash.h"

struct context_walk {
  struct archive *a;
  struct archive_entry_linkresolver *links; /* hard links: later names refer to the first */
  struct img_ignore *ig;
  int64_t mtime;
  struct img_context_stats *st;
  struct kiln_error *err;
  EVP_MD_CTX *sha;
  int fd;
  int write_failed;
  int abandon;
};

static la_ssize_t on_write(struct archive *a, void *ud, const void *buf, size_t len)
{
  struct context_walk *w = ud;
  (void)a;
  if (w->abandon)
    return -1;
  EVP_DigestUpdate(w->sha, buf, len);
  for (size_t done = 0; done < len;) {
    ssize_t n = write(w->fd, (const char *)buf + done, len - done);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      w->write_failed = errno ? errno : EIO;
      return -1;
    }
    done += (size_t)n;
  }
  return (la_ssize_t)len;
}

static int cmp_names(const void *a, const void *b)
{
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The sorted entry names of dir (caller frees each and the array). */
static kiln_err list_dir(const char *dir, char ***names, size_t *n, struct kiln_error *err)
{
  DIR *d = opendir(dir);
  struct dirent *e;
  size_t cap = 0;
  *names = NULL;
  *n = 0;
  if (!d)
    return kiln_error_set(err, KILN_E_IO, "cannot read the directory %s: %s", dir, strerror(errno));
  while ((e = readdir(d))) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    if (*n == cap) {
      cap = cap ? cap * 2 : 32;
      char **p = realloc(*names, cap * sizeof(**names));
      if (!p)
        break;
      *names = p;
    }
    if (!((*names)[*n] = strdup(e->d_name)))
      break;
    (*n)++;
  }
  int oom = e != NULL;
  closedir(d);
  if (oom)
    return kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  qsort(*names, *n, sizeof(**names), cmp_names);
  return KILN_OK;
}

/* 1 when a link at rel (context-relative) with this target resolves outside the context. */
static int link_escapes(const char *rel, const char *target)
{
  if (target[0] == '/')
    return 1;
  long depth = 0;
  for (const char *c = rel; *c; c++)
    depth += *c == '/';
  for (const char *p = target; *p;) {
    size_t n = strcspn(p, "/");
    if (n == 2 && p[0] == '.' && p[1] == '.')
      depth--;
    else if (n > 0 && !(n == 1 && p[0] == '.'))
      depth++;
    if (depth < 0)
      return 1;
    p += n + (p[n] == '/');
  }
  return 0;
}

static kiln_err copy_data(struct context_walk *w, const char *path, const char *rel)
{
  char buf[65536];
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0)
    return kiln_error_set(w->err, KILN_E_IO,
                          "cannot read %s in the build context: %s (docker build would fail "
                          "too; fix its permissions or list it in .dockerignore)",
                          rel, strerror(errno));
  kiln_err rc = KILN_OK;
  for (unsigned chunk = 1;; chunk++) {
    if (chunk % 64 == 0 && w->st->cancelled && w->st->cancelled(w->st->cancel_ctx)) {
      rc = kiln_error_set(w->err, KILN_E_CANCELLED, "interrupted while making the build context");
      break;
    }
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      rc = kiln_error_set(w->err, KILN_E_IO, "reading %s failed: %s", rel, strerror(errno));
      break;
    }
    if (n == 0)
      break;
    if (archive_write_data(w->a, buf, (size_t)n) != n) {
      rc = kiln_error_set(w->err, KILN_E_IO, "writing the build context failed: %s",
                          w->write_failed ? strerror(w->write_failed) : archive_error_string(w->a));
      break;
    }
  }
  close(fd);
  return rc;
}

static kiln_err add_entry(struct context_walk *w, const char *path, const char *rel,
                          const struct stat *st)
{
  char target[4096];
  if (S_ISSOCK(st->st_mode) || S_ISCHR(st->st_mode) || S_ISBLK(st->st_mode))
    return KILN_OK; /* not build input (Docker's tar skips sockets too) */
  struct archive_entry *e = archive_entry_new();
  if (!e)
    return kiln_error_set(w->err, KILN_E_NOMEM, "out of memory");
  kiln_err rc = KILN_OK;
  archive_entry_set_pathname(e, rel);
  archive_entry_set_mode(e, st->st_mode & (S_IFMT | 07777));
  archive_entry_set_uid(e, 0);
  archive_entry_set_gid(e, 0);
  archive_entry_set_mtime(e, w->mtime, 0);
  if (S_ISREG(st->st_mode))
    archive_entry_set_size(e, st->st_size);
  if (S_ISREG(st->st_mode) && st->st_nlink > 1) {
    struct archive_entry *spare = NULL;
    archive_entry_set_dev(e, st->st_dev);
    archive_entry_set_ino64(e, st->st_ino);
    archive_entry_set_nlink(e, st->st_nlink);
    archive_entry_linkify(w->links, &e, &spare); /* tar strategy: never defers, spare unused */
    archive_entry_free(spare);
    archive_entry_set_dev(e, 0); /* keep host numbers out of the bytes */
    archive_entry_set_ino64(e, 0);
    archive_entry_set_nlink(e, 1);
  }
  if (S_ISLNK(st->st_mode)) {
    ssize_t n = readlink(path, target, sizeof(target) - 1);
    if (n < 0) {
      rc =
          kiln_error_set(w->err, KILN_E_IO, "cannot read the symlink %s: %s", rel, strerror(errno));
      goto out;
    }
    target[n] = '\0';
    if (link_escapes(rel, target)) {
      rc = kiln_error_set(w->err, KILN_E_INVALID,
                          "the symlink %s -> %s points outside the build context, where the "
                          "build cannot follow it; replace it with what it points to, or list "
                          "it in .dockerignore",
                          rel, target);
      goto out;
    }
    archive_entry_set_symlink(e, target);
  }
  if (archive_write_header(w->a, e) != ARCHIVE_OK) {
    rc = kiln_error_set(w->err, KILN_E_IO, "writing the build context failed at %s: %s", rel,
                        w->write_failed ? strerror(w->write_failed) : archive_error_string(w->a));
    goto out;
  }
  w->st->files++;
  if (S_ISREG(st->st_mode) && !archive_entry_hardlink(e)) {
    w->st->bytes += (uint64_t)st->st_size;
    rc = copy_data(w, path, rel);
  }
out:
  archive_entry_free(e);
  return rc;
}

static kiln_err walk(struct context_walk *w, const char *dir, const char *prefix,
                     const uint8_t *parent, int depth)
{
  char **names = NULL;
  size_t n = 0, npat = img_ignore_count(w->ig);
  uint8_t *mine = malloc(npat + 1);
  if (!mine)
    return kiln_error_set(w->err, KILN_E_NOMEM, "out of memory");
  if (depth > 256) {
    free(mine);
    return kiln_error_set(w->err, KILN_E_INVALID,
                          "the build context nests deeper than 256 "
                          "directories");
  }
  kiln_err rc = list_dir(dir, &names, &n, w->err);
  for (size_t i = 0; !rc && i < n; i++) {
    if (w->st->cancelled && w->st->cancelled(w->st->cancel_ctx)) {
      rc = kiln_error_set(w->err, KILN_E_CANCELLED, "interrupted while making the build context");
      break;
    }
    char *path = kiln_path_join(dir, names[i]);
    struct kiln_buf rel = KILN_BUF_INIT;
    struct stat st;
    kiln_buf_printf(&rel, "%s%s%s", prefix, *prefix ? "/" : "", names[i]);
    if (!path || !rel.data)
      rc = kiln_error_set(w->err, KILN_E_NOMEM, "out of memory");
    else if (lstat(path, &st) != 0)
      rc = kiln_error_set(w->err, KILN_E_IO, "cannot stat %s: %s", path, strerror(errno));
    else {
      int excluded = img_ignore_match(w->ig, rel.data, depth ? parent : NULL, mine);
      int is_dir = S_ISDIR(st.st_mode);
      if (!excluded)
        rc = add_entry(w, path, rel.data, &st);
      /* An excluded directory is still walked when an exception names something inside it;
       * its own entry stays out, as in Docker's tar. */
      if (!rc && is_dir && (!excluded || img_ignore_exception_under(w->ig, rel.data))) {
        uint8_t *copy = malloc(npat + 1);
        if (!copy)
          rc = kiln_error_set(w->err, KILN_E_NOMEM, "out of memory");
        else
          rc = walk(w, path, rel.data, npat ? memcpy(copy, mine, npat) : copy, depth + 1);
        free(copy);
      }
    }
    free(path);
    kiln_buf_free(&rel);
  }
  for (size_t i = 0; i < n; i++)
    free(names[i]);
  free(names);
  free(mine);
  return rc;
}

/* kiln's own files in the app directory: what it writes there must not change the context of
 * the next build (or every build would miss the cache). */
static const char *const kiln_outputs[] = {"kiln.lock", "*.eif", ".kiln"};

/* .dockerignore of dir, kiln's outputs, and the exceptions docker build adds for the files it
 * always sends. */
static kiln_err load_ignore(const char *dir, const char *dockerfile, struct img_ignore **ig,
                            int *has_file, struct kiln_error *err)
{
  char *path = kiln_path_join(dir, ".dockerignore"), *text = NULL;
  size_t len = 0;
  kiln_err rc = img_ignore_new(ig, err);
  *has_file = path && kiln_path_exists(path);
  if (!rc && *has_file && !(rc = kiln_read_file(path, 16u << 20, &text, &len, err)) &&
      (rc = img_ignore_parse(*ig, text, len, err)))
    kiln_error_prefix(err, "%s", path);
  for (size_t i = 0; !rc && i < sizeof(kiln_outputs) / sizeof(*kiln_outputs); i++)
    rc = img_ignore_add(*ig, kiln_outputs[i], err);
  if (!rc && img_ignore_match(*ig, ".dockerignore", NULL, NULL))
    rc = img_ignore_add(*ig, "!.dockerignore", err);
  if (!rc && img_ignore_match(*ig, dockerfile, NULL, NULL)) {
    struct kiln_buf b = KILN_BUF_INIT;
    kiln_buf_printf(&b, "!%s", dockerfile);
    rc = img_ignore_add(*ig, kiln_buf_str(&b), err);
    kiln_buf_free(&b);
  }
  free(path);
  free(text);
  return rc;
}

kiln_err img_context_tar(const char *dir, const char *dockerfile, int64_t mtime,
                         const char *out_path, char sha256_hex[65], struct img_context_stats *st,
                         struct kiln_error *err)
{
  struct context_walk w = {.mtime = mtime, .st = st, .err = err, .fd = -1};
  int (*cancelled)(void *) = st->cancelled;
  void *cancel_ctx = st->cancel_ctx;
  memset(st, 0, sizeof(*st));
  st->cancelled = cancelled;
  st->cancel_ctx = cancel_ctx;
  kiln_err rc = load_ignore(dir, dockerfile, &w.ig, &st->has_dockerignore, err);
  if (rc)
    goto out;
  w.fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  w.sha = EVP_MD_CTX_new();
  w.a = archive_write_new();
  w.links = archive_entry_linkresolver_new();
  if (w.fd < 0) {
    rc = kiln_error_set(err, KILN_E_IO, "cannot create %s: %s", out_path, strerror(errno));
    goto out;
  }
  if (!w.sha || !w.a || !w.links || !EVP_DigestInit_ex(w.sha, EVP_sha256(), NULL) ||
      archive_write_set_format_pax_restricted(w.a) != ARCHIVE_OK ||
      archive_write_open(w.a, &w, NULL, on_write, NULL) != ARCHIVE_OK) {
    rc = kiln_error_set(err, KILN_E_NOMEM, "cannot start the context tar");
    goto out;
  }
  archive_entry_linkresolver_set_strategy(w.links, archive_format(w.a));
  if ((rc = walk(&w, dir, "", NULL, 0)))
    goto out;
  if (archive_write_close(w.a) != ARCHIVE_OK) {
    rc = kiln_error_set(err, KILN_E_IO, "writing %s failed: %s", out_path,
                        w.write_failed ? strerror(w.write_failed) : archive_error_string(w.a));
    goto out;
  }
  unsigned char md[32];
  unsigned int mdlen = 0;
  EVP_DigestFinal_ex(w.sha, md, &mdlen);
  kiln_hex_encode(md, sizeof(md), sha256_hex);
out:
  w.abandon = rc != KILN_OK; /* an unfinished entry is not padded out: writes fail at once */
  if (w.a)
    archive_write_free(w.a);
  archive_entry_linkresolver_free(w.links);
  if (w.fd >= 0 && close(w.fd) != 0 && !rc)
    rc = kiln_error_set(err, KILN_E_IO, "writing %s failed: %s", out_path, strerror(errno));
  if (rc)
    unlink(out_path);
  EVP_MD_CTX_free(w.sha);
  img_ignore_free(w.ig);
  return rc;
}
