/* SHA-256 helpers over buffers, files and directory trees (OpenSSL EVP). */
#define _GNU_SOURCE
#include "util/hash.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "util/buf.h"
#include "util/fs.h"

void kiln_hex_encode(const uint8_t *in, size_t n, char *out)
{
  static const char digits[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = digits[in[i] >> 4];
    out[2 * i + 1] = digits[in[i] & 15];
  }
  out[2 * n] = '\0';
}

void kiln_sha256_digest(const char hex[KILN_SHA256_HEX_LEN + 1],
                        char out[KILN_SHA256_DIGEST_LEN + 1])
{
  memcpy(out, KILN_SHA256_PREFIX, 7);
  memcpy(out + 7, hex, KILN_SHA256_HEX_LEN);
  out[KILN_SHA256_DIGEST_LEN] = '\0';
}

int kiln_digest_is_sha256(const char *text)
{
  return text && strncmp(text, KILN_SHA256_PREFIX, 7) == 0;
}

const char *kiln_sha256_digest_hex(const char *text)
{
  if (!kiln_digest_is_sha256(text))
    return NULL;
  const char *hex = text + 7;
  if (strlen(hex) != KILN_SHA256_HEX_LEN || strspn(hex, "0123456789abcdef") != KILN_SHA256_HEX_LEN)
    return NULL;
  return hex;
}

void kiln_sha256_hex(const void *data, size_t len, char out[KILN_SHA256_HEX_LEN + 1])
{
  uint8_t md[32];
  unsigned int mdlen = 0;
  EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
  kiln_hex_encode(md, 32, out);
}

struct digest_sink {
  EVP_MD_CTX *md;
  uint64_t total;
};

static kiln_err digest_update(void *arg, const void *data, size_t len)
{
  struct digest_sink *d = arg;
  EVP_DigestUpdate(d->md, data, len);
  d->total += len;
  return KILN_OK;
}

/* Feed a whole file into an initialised digest context. */
static kiln_err digest_file(EVP_MD_CTX *md, const char *path, uint64_t *size,
                            struct kiln_error *err)
{
  int fd = kiln_open_regular(path, NULL, err);
  if (fd < 0)
    return err ? err->code : KILN_E_IO;
  struct digest_sink d = {md, 0};
  kiln_err rc = kiln_read_stream(fd, path, digest_update, &d, err);
  close(fd);
  if (size)
    *size = d.total;
  return rc;
}

/* Finish a SHA-256 context into lowercase hex and free it. */
static void finish_hex(EVP_MD_CTX *md, char out[KILN_SHA256_HEX_LEN + 1])
{
  uint8_t d[32];
  unsigned int dl = 0;
  EVP_DigestFinal_ex(md, d, &dl);
  kiln_hex_encode(d, 32, out);
}

static EVP_MD_CTX *sha256_new(void)
{
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  if (md)
    EVP_DigestInit_ex(md, EVP_sha256(), NULL);
  return md;
}

kiln_err kiln_sha256_file(const char *path, char out[KILN_SHA256_HEX_LEN + 1], uint64_t *size,
                          struct kiln_error *err)
{
  EVP_MD_CTX *md = sha256_new();
  if (!md)
    return kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  kiln_err rc = digest_file(md, path, size, err);
  if (rc == KILN_OK)
    finish_hex(md, out);
  EVP_MD_CTX_free(md);
  return rc;
}

static int compare_names(const void *a, const void *b)
{
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Append one record per entry under dir (relative name rel) to the digest, in sorted order. */
struct tree_walk {
  EVP_MD_CTX *md;
  const struct kiln_known_digest *known;
  size_t nknown;
  uint64_t verify_limit;
  uint64_t read_bytes;
};

/* A regular file's SHA-256: handed over (checked by size, re-hashed when small enough) or read. */
static kiln_err file_digest(struct tree_walk *w, const char *full, const char *relname,
                            const struct stat *st, char hex[KILN_SHA256_HEX_LEN + 1],
                            struct kiln_error *err)
{
  const struct kiln_known_digest *k = NULL;
  for (size_t i = 0; i < w->nknown && !k; i++)
    if (strcmp(w->known[i].name, relname) == 0)
      k = &w->known[i];
  if (k && k->size != (uint64_t)st->st_size)
    return kiln_error_set(err, KILN_E_PLUGIN,
                          "%s: the stage handed over a digest for %llu bytes, but the file has "
                          "%llu; the plugin is broken: report it to its author",
                          full, (unsigned long long)k->size, (unsigned long long)st->st_size);
  if (k && k->size > w->verify_limit) {
    memcpy(hex, k->sha256, KILN_SHA256_HEX_LEN + 1);
    return KILN_OK;
  }
  kiln_err rc = kiln_sha256_file(full, hex, NULL, err);
  w->read_bytes += (uint64_t)st->st_size;
  if (!rc && k && strcmp(hex, k->sha256) != 0)
    rc = kiln_error_set(err, KILN_E_PLUGIN,
                        "%s: the stage handed over SHA-256 %s, but the file's is %s; the plugin "
                        "is broken: report it to its author",
                        full, k->sha256, hex);
  return rc;
}

static kiln_err digest_tree(struct tree_walk *w, const char *dir, const char *rel, int depth,
                            struct kiln_error *err)
{
  EVP_MD_CTX *md = w->md;
  if (depth > 64)
    return kiln_error_set(err, KILN_E_INVALID, "%s: directory tree too deep", dir);
  DIR *d = opendir(dir);
  if (!d)
    return kiln_error_set(err, KILN_E_IO, "cannot open directory %s: %s", dir, strerror(errno));
  char **names = NULL;
  size_t count = 0, cap = 0;
  kiln_err rc = KILN_OK;
  for (struct dirent *e; (e = readdir(d));) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    if (count == cap) {
      cap = cap ? cap * 2 : 16;
      char **n = realloc(names, cap * sizeof *names);
      if (!n) {
        rc = kiln_error_set(err, KILN_E_NOMEM, "out of memory");
        goto out;
      }
      names = n;
    }
    if (!(names[count] = strdup(e->d_name))) {
      rc = kiln_error_set(err, KILN_E_NOMEM, "out of memory");
      goto out;
    }
    count++;
  }
  if (count > 1)
    qsort(names, count, sizeof *names, compare_names);
  for (size_t i = 0; i < count && rc == KILN_OK; i++) {
    char *full = kiln_path_join(dir, names[i]);
    char *relname = rel[0] ? kiln_path_join(rel, names[i]) : strdup(names[i]);
    struct stat st;
    if (!full || !relname) {
      rc = kiln_error_set(err, KILN_E_NOMEM, "out of memory");
    } else if (lstat(full, &st) != 0) {
      rc = kiln_error_set(err, KILN_E_IO, "cannot inspect %s: %s", full, strerror(errno));
    } else if (S_ISDIR(st.st_mode)) {
      EVP_DigestUpdate(md, "D", 1);
      EVP_DigestUpdate(md, relname, strlen(relname) + 1);
      rc = digest_tree(w, full, relname, depth + 1, err);
    } else if (S_ISLNK(st.st_mode)) {
      char target[4096];
      ssize_t n = readlink(full, target, sizeof target);
      if (n < 0 || (size_t)n >= sizeof target) {
        rc = kiln_error_set(err, KILN_E_IO, "cannot read link %s", full);
      } else {
        EVP_DigestUpdate(md, "L", 1);
        EVP_DigestUpdate(md, relname, strlen(relname) + 1);
        EVP_DigestUpdate(md, target, (size_t)n);
        EVP_DigestUpdate(md, "", 1);
      }
    } else if (S_ISREG(st.st_mode)) {
      char hex[KILN_SHA256_HEX_LEN + 1];
      rc = file_digest(w, full, relname, &st, hex, err);
      if (rc == KILN_OK) {
        EVP_DigestUpdate(md, (st.st_mode & 0111) ? "X" : "F", 1);
        EVP_DigestUpdate(md, relname, strlen(relname) + 1);
        EVP_DigestUpdate(md, hex, KILN_SHA256_HEX_LEN);
      }
    } else {
      rc = kiln_error_set(err, KILN_E_INVALID,
                          "%s: artifacts may hold only files, directories "
                          "and symlinks",
                          full);
    }
    free(full);
    free(relname);
  }
out:
  for (size_t i = 0; i < count; i++)
    free(names[i]);
  free(names);
  closedir(d);
  return rc;
}

kiln_err kiln_sha256_tree_known(const char *dir, const struct kiln_known_digest *known,
                                size_t nknown, uint64_t verify_limit,
                                char out[KILN_SHA256_HEX_LEN + 1], uint64_t *read_bytes,
                                struct kiln_error *err)
{
  struct tree_walk w = {sha256_new(), known, nknown, verify_limit, 0};
  if (!w.md)
    return kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  kiln_err rc = digest_tree(&w, dir, "", 0, err);
  if (rc == KILN_OK)
    finish_hex(w.md, out);
  EVP_MD_CTX_free(w.md);
  if (read_bytes)
    *read_bytes = w.read_bytes;
  return rc;
}

kiln_err kiln_sha256_tree(const char *dir, char out[KILN_SHA256_HEX_LEN + 1],
                          struct kiln_error *err)
{
  return kiln_sha256_tree_known(dir, NULL, 0, 0, out, NULL, err);
}
