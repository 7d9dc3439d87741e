/* `docker save` tarballs (legacy <id>/layer.tar and Docker >= 25's OCI-inside layout): read through
 * manifest.json, whose Config and Layers are paths inside the tar in both shapes. */
#include <stdlib.h>
#include <string.h>

#include "image.h"
#include "util/hash.h"
#include "util/json.h"

#define DA_MAX_JSON (4u << 20)

static const char *jstr(const cJSON *o, const char *key)
{
  const cJSON *v = o ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL;
  return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int tag_matches(const cJSON *entry, const char *ref)
{
  const cJSON *tags = cJSON_GetObjectItemCaseSensitive(entry, "RepoTags"), *t;
  cJSON_ArrayForEach(t, tags)
  {
    if (!cJSON_IsString(t))
      continue;
    const char *tag = t->valuestring;
    size_t tl = strlen(tag), rl = strlen(ref);
    if (strcmp(tag, ref) == 0 ||
        (tl > rl && strcmp(tag + tl - rl, ref) == 0 && tag[tl - rl - 1] == '/'))
      return 1;
  }
  return 0;
}

/* "blobs/sha256/<hex>" names its own digest (Docker >= 25); legacy paths do not. */
static char *digest_of_path(const char *path)
{
  const char *p = strstr(path, "blobs/sha256/");
  if (!p || (p != path && p[-1] != '/'))
    return NULL;
  p += strlen("blobs/sha256/");
  char digest[KILN_SHA256_DIGEST_LEN + 1];
  if (strlen(p) != KILN_SHA256_HEX_LEN)
    return NULL;
  kiln_sha256_digest(p, digest);
  return kiln_sha256_digest_hex(digest) ? strdup(digest) : NULL;
}

kiln_err img_docker_archive_resolve(struct img_store *s, const char *ref, const char *platform,
                                    struct img_manifest *m, struct kiln_error *err)
{
  kiln_err rc;
  char *text = NULL, *cfg_text = NULL;
  size_t len, cfg_len;
  cJSON *list = NULL;
  memset(m, 0, sizeof(*m));
  if ((rc = img_store_read(s, "manifest.json", NULL, DA_MAX_JSON, &text, &len, err)) ||
      (rc = kiln_json_parse(text, len, "manifest.json", &list, err)))
    goto out;
  if (!cJSON_IsArray(list) || cJSON_GetArraySize(list) == 0) {
    rc = kiln_error_set(err, KILN_E_INVALID, "manifest.json must be a non-empty array of images");
    goto out;
  }
  const cJSON *entry = NULL, *it;
  if (ref) {
    cJSON_ArrayForEach(it, list) if (!entry && tag_matches(it, ref)) entry = it;
    if (!entry) {
      rc = kiln_error_set(err, KILN_E_NOT_FOUND, "no image tagged \"%s\" in the archive", ref);
      goto out;
    }
  } else if (cJSON_GetArraySize(list) > 1) {
    rc = kiln_error_set(err, KILN_E_INVALID,
                        "the archive holds %d images; name one as docker-archive:FILE:NAME:TAG",
                        cJSON_GetArraySize(list));
    goto out;
  } else {
    entry = cJSON_GetArrayItem(list, 0);
  }
  const char *cfg_path = jstr(entry, "Config");
  const cJSON *layers = cJSON_GetObjectItemCaseSensitive(entry, "Layers");
  if (!cfg_path || !cJSON_IsArray(layers)) {
    rc = kiln_error_set(err, KILN_E_INVALID, "manifest.json: an image lacks Config or Layers");
    goto out;
  }
  char *cfg_digest_path = digest_of_path(cfg_path);
  rc = img_store_read(s, cfg_path, cfg_digest_path, DA_MAX_JSON, &cfg_text, &cfg_len, err);
  free(cfg_digest_path);
  if (rc || (rc = kiln_json_parse(cfg_text, cfg_len, cfg_path, &m->config, err)))
    goto out;
  char hex[KILN_SHA256_HEX_LEN + 1];
  kiln_sha256_hex(cfg_text, cfg_len, hex);
  char digest[KILN_SHA256_DIGEST_LEN + 1];
  kiln_sha256_digest(hex, digest);
  m->config_digest = strdup(digest);
  if ((rc = img_platform_check(m->config, platform, 0, m, err)))
    goto out;
  const cJSON *diff_ids = kiln_json_pointer(m->config, "/rootfs/diff_ids");
  int n = cJSON_GetArraySize(layers);
  if (n > 0 && !(m->layers = calloc((size_t)n, sizeof(*m->layers)))) {
    rc = kiln_error_set(err, KILN_E_NOMEM, "out of memory");
    goto out;
  }
  for (int i = 0; i < n; i++) {
    const cJSON *l = cJSON_GetArrayItem(layers, i), *diff = cJSON_GetArrayItem(diff_ids, i);
    if (!cJSON_IsString(l)) {
      rc = kiln_error_set(err, KILN_E_INVALID, "manifest.json: Layers[%d] is not a path", i);
      goto out;
    }
    struct img_layer_ref *r = &m->layers[m->nlayers++];
    r->digest = digest_of_path(l->valuestring);
    if (!(r->path = strdup(l->valuestring)) ||
        (cJSON_IsString(diff) && !(r->diff_id = strdup(diff->valuestring)))) {
      rc = kiln_error_set(err, KILN_E_NOMEM, "out of memory");
      goto out;
    }
  }
out:
  if (rc)
    img_manifest_clear(m);
  cJSON_Delete(list);
  free(text);
  free(cfg_text);
  return rc;
}
