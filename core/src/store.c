/* The content-addressed artifact store and the step cache index under the cache directory:
 *   artifacts/<hex>/{files/, meta.json, kind}   one committed artifact (read-only)
 *   steps/<cache key>.json                      outputs of a step run with that key
 *   tmp/<pid>-<what>XXXXXX/                     staging; stale ones are removed at start */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "internal.h"
#include "util/fs.h"
#include "util/hash.h"
#include "util/json.h"

static kiln_err store_path(struct kiln *k, const char *a, const char *b, char **out)
{
  struct kiln_buf p = KILN_BUF_INIT;
  kiln_err rc = kiln_buf_printf(&p, "%s/%s%s%s", k->cache_dir, a, b ? "/" : "", b ? b : "");
  if (rc) {
    kiln_buf_free(&p);
    return kiln_set_error(k, KILN_E_NOMEM, "out of memory");
  }
  *out = kiln_buf_detach(&p);
  return KILN_OK;
}

/* Remove staging directories left by processes that no longer run. */
static void remove_stale_tmp(struct kiln *k, const char *tmp)
{
  DIR *d = opendir(tmp);
  if (!d)
    return;
  for (struct dirent *e; (e = readdir(d));) {
    char *end = NULL;
    long pid = strtol(e->d_name, &end, 10);
    if (pid <= 0 || !end || *end != '-')
      continue;
    if (kill((pid_t)pid, 0) == 0 || errno == EPERM)
      continue;
    char *path = kiln_path_join(tmp, e->d_name);
    struct kiln_error err = KILN_ERROR_INIT;
    if (path && kiln_rm_rf(path, &err) == KILN_OK)
      kiln_log(k, KILN_LOG_DEBUG, "removed stale staging directory %s", path);
    kiln_error_clear(&err);
    free(path);
  }
  closedir(d);
}

kiln_err kiln_store_prepare(struct kiln *k)
{
  static const char *const subdirs[] = {"artifacts", "steps", "tmp", "state"};
  struct kiln_error e = KILN_ERROR_INIT;
  for (size_t i = 0; i < sizeof subdirs / sizeof *subdirs; i++) {
    char *p = NULL;
    if (store_path(k, subdirs[i], NULL, &p))
      return KILN_E_NOMEM;
    kiln_err rc = kiln_mkdir_p(p, 0755, &e);
    if (!rc && access(p, W_OK | X_OK) != 0)
      rc = kiln_error_set(&e, KILN_E_IO, "%s is not writable", p);
    if (rc) {
      kiln_set_error(k, KILN_E_IO,
                     "cache directory %s is not usable (%s); fix its permissions or set "
                     "KILN_CACHE_DIR to a writable directory",
                     k->cache_dir, kiln_error_msg(&e));
      kiln_error_clear(&e);
      free(p);
      return KILN_E_IO;
    }
    if (strcmp(subdirs[i], "tmp") == 0)
      remove_stale_tmp(k, p);
    free(p);
  }
  return KILN_OK;
}

kiln_err kiln_store_tmpdir(struct kiln *k, const char *what, char **out)
{
  char *tmp = NULL;
  if (store_path(k, "tmp", NULL, &tmp))
    return KILN_E_NOMEM;
  char prefix[96];
  snprintf(prefix, sizeof prefix, "%ld-%s-", (long)getpid(), what);
  struct kiln_error e = KILN_ERROR_INIT;
  kiln_err rc = kiln_mkdtemp_in(tmp, prefix, out, &e);
  free(tmp);
  if (rc)
    return kiln_take_error(k, &e);
  return KILN_OK;
}

/* Make committed files read-only so a hard-linked export cannot be edited into the store. */
static int make_read_only(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
  (void)ftw;
  if (flag == FTW_F && S_ISREG(st->st_mode))
    chmod(path, (st->st_mode & 0111) ? 0555 : 0444);
  return 0;
}

void kiln_stored_artifact_free(struct kiln_stored_artifact *a)
{
  if (!a)
    return;
  free((char *)a->pub.kind);
  free((char *)a->pub.path);
  free((char *)a->pub.digest);
  cJSON_Delete((cJSON *)a->pub.meta);
  free(a->dir);
  free(a);
}

kiln_err kiln_store_open(struct kiln *k, const char *digest, struct kiln_stored_artifact **out)
{
  *out = NULL;
  if (!kiln_sha256_digest_hex(digest))
    return kiln_set_error(k, KILN_E_INVALID, "invalid artifact digest %s", digest);
  struct kiln_stored_artifact *a = calloc(1, sizeof *a);
  char *meta_path = NULL, *kind_text = NULL;
  cJSON *meta = NULL;
  struct kiln_error e = KILN_ERROR_INIT;
  kiln_err rc = KILN_E_NOMEM;
  if (!a || store_path(k, "artifacts", digest + 7, &a->dir))
    goto out;
  meta_path = kiln_path_join(a->dir, "meta.json");
  char *kind_path = kiln_path_join(a->dir, "kind");
  a->pub.path = kiln_path_join(a->dir, "files");
  if (!meta_path || !kind_path || !a->pub.path) {
    free(kind_path);
    goto out;
  }
  rc = kiln_read_file(kind_path, 256, &kind_text, NULL, &e);
  free(kind_path);
  if (!rc)
    rc = kiln_json_read_file(meta_path, 16u << 20, &meta, &e);
  if (rc) {
    rc = kiln_take_error(k, &e);
    goto out;
  }
  if (!kiln_is_dir(a->pub.path)) {
    rc = kiln_set_error(k, KILN_E_NOT_FOUND, "artifact %s is incomplete", digest);
    goto out;
  }
  a->pub.struct_size = sizeof a->pub;
  a->pub.kind = kind_text;
  kind_text = NULL;
  a->pub.meta = meta;
  meta = NULL;
  a->pub.digest = strdup(digest);
  rc = a->pub.digest ? KILN_OK : KILN_E_NOMEM;
out:
  if (rc == KILN_E_NOMEM)
    kiln_set_error(k, rc, "out of memory");
  free(meta_path);
  free(kind_text);
  cJSON_Delete(meta);
  if (rc)
    kiln_stored_artifact_free(a);
  else
    *out = a;
  return rc;
}

/* Handed-over digests of files up to this size are re-hashed and compared (all of them with
 * KILN_VERIFY_DIGESTS=1); see kiln_host.output_digest for why larger ones are trusted. */
#define KILN_STORE_VERIFY_LIMIT (16u << 20)

kiln_err kiln_store_commit(struct kiln *k, const char *staging_root, const char *kind,
                           const cJSON *meta, const struct kiln_known_digest *known, size_t nknown,
                           uint64_t *read_bytes, struct kiln_stored_artifact **out)
{
  struct kiln_error e = KILN_ERROR_INIT;
  struct kiln_buf text = KILN_BUF_INIT;
  char *files = kiln_path_join(staging_root, "files");
  char *dest = NULL;
  char tree[KILN_SHA256_HEX_LEN + 1], digest[KILN_SHA256_DIGEST_LEN + 1];
  const char *verify_all = getenv("KILN_VERIFY_DIGESTS");
  uint64_t limit =
      verify_all && strcmp(verify_all, "1") == 0 ? UINT64_MAX : KILN_STORE_VERIFY_LIMIT;
  kiln_err rc = files ? kiln_sha256_tree_known(files, known, nknown, limit, tree, read_bytes, &e)
                      : KILN_E_NOMEM;
  if (rc) {
    rc = kiln_take_error(k, &e);
    goto out;
  }
  /* The address covers the kind, the files and the metadata. */
  kiln_buf_printf(&text, "kiln-artifact-v1\n%s\n%s\n", kind, tree);
  kiln_json_canonical(meta, &text);
  if ((rc = kiln_buf_status(&text))) { /* the appends above, checked once */
    rc = kiln_set_error(k, rc, "out of memory");
    goto out;
  }
  char hex[KILN_SHA256_HEX_LEN + 1];
  kiln_sha256_hex(text.data, text.len, hex);
  kiln_sha256_digest(hex, digest);
  kiln_buf_reset(&text);
  kiln_json_pretty(meta, &text);
  char *meta_path = kiln_path_join(staging_root, "meta.json");
  char *kind_path = kiln_path_join(staging_root, "kind");
  rc = (meta_path && kind_path) ? KILN_OK : KILN_E_NOMEM;
  if (!rc)
    rc = kiln_write_file_atomic(meta_path, text.data, text.len, 0444, &e);
  if (!rc)
    rc = kiln_write_file_atomic(kind_path, kind, strlen(kind), 0444, &e);
  free(meta_path);
  free(kind_path);
  if (rc) {
    rc = kiln_take_error(k, &e);
    goto out;
  }
  nftw(files, make_read_only, 32, FTW_PHYS);
  if ((rc = store_path(k, "artifacts", hex, &dest)))
    goto out;
  if (kiln_is_dir(dest)) {
    /* Same content is already stored: keep the stored copy untouched. */
    kiln_rm_rf_quiet(staging_root);
    kiln_error_clear(&e);
  } else if (rename(staging_root, dest) != 0) {
    if (errno == ENOTEMPTY || errno == EEXIST) {
      kiln_rm_rf_quiet(staging_root); /* another kiln committed the same artifact meanwhile */
      kiln_error_clear(&e);
    } else {
      rc = kiln_set_error(k, KILN_E_IO, "cannot store artifact in %s: %s", dest, strerror(errno));
      goto out;
    }
  }
  rc = kiln_store_open(k, digest, out);
out:
  kiln_buf_free(&text);
  free(files);
  free(dest);
  return rc;
}

static kiln_err index_path(struct kiln *k, const char *key, char **out)
{
  struct kiln_buf name = KILN_BUF_INIT;
  if (kiln_buf_printf(&name, "%s.json", key)) {
    kiln_buf_free(&name);
    return kiln_set_error(k, KILN_E_NOMEM, "out of memory");
  }
  kiln_err rc = store_path(k, "steps", name.data, out);
  kiln_buf_free(&name);
  return rc;
}

kiln_err kiln_store_index_get(struct kiln *k, const char *key, cJSON **outputs, cJSON **resolved)
{
  *outputs = NULL;
  if (resolved)
    *resolved = NULL;
  char *path = NULL;
  if (index_path(k, key, &path))
    return KILN_E_NOMEM;
  struct kiln_error e = KILN_ERROR_INIT;
  cJSON *doc = NULL;
  kiln_err rc = kiln_json_read_file(path, 1u << 20, &doc, &e);
  kiln_error_clear(&e);
  free(path);
  if (rc)
    return KILN_E_NOT_FOUND; /* no entry, or an unreadable one: treated as a miss */
  cJSON *o = cJSON_DetachItemFromObjectCaseSensitive(doc, "outputs");
  cJSON *r = cJSON_DetachItemFromObjectCaseSensitive(doc, "resolved");
  cJSON_Delete(doc);
  if (resolved && cJSON_IsObject(r))
    *resolved = r;
  else
    cJSON_Delete(r);
  if (!cJSON_IsArray(o)) {
    cJSON_Delete(o);
    return KILN_E_NOT_FOUND;
  }
  *outputs = o;
  return KILN_OK;
}

kiln_err kiln_store_index_put(struct kiln *k, const char *key, const cJSON *outputs,
                              const cJSON *resolved)
{
  char *path = NULL;
  if (index_path(k, key, &path))
    return KILN_E_NOMEM;
  cJSON *doc = cJSON_CreateObject();
  cJSON_AddItemToObject(doc, "outputs", cJSON_Duplicate(outputs, 1));
  if (resolved)
    cJSON_AddItemToObject(doc, "resolved", cJSON_Duplicate(resolved, 1));
  struct kiln_buf text = KILN_BUF_INIT;
  kiln_json_pretty(doc, &text);
  struct kiln_error e = KILN_ERROR_INIT;
  kiln_err rc = kiln_write_file_atomic(path, text.data, text.len, 0644, &e);
  if (rc)
    kiln_take_error(k, &e);
  kiln_buf_free(&text);
  cJSON_Delete(doc);
  free(path);
  return rc;
}
