/* docker:// sources: parse the reference, find credentials in the Docker config, fetch the
 * manifest (index -> platform manifest), config and layers into a temporary OCI layout that the
 * OCI reader then resolves with full digest checks. */
#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "registry.h"
#include "util/fs.h"
#include "util/hash.h"
#include "util/json.h"

#define ACCEPT_MANIFESTS                                                                           \
  "application/vnd.oci.image.index.v1+json, "                                                      \
  "application/vnd.docker.distribution.manifest.list.v2+json, "                                    \
  "application/vnd.oci.image.manifest.v1+json, "                                                   \
  "application/vnd.docker.distribution.manifest.v2+json"

void img_registry_ref_clear(struct img_registry_ref *r)
{
  free(r->host);
  free(r->repo);
  free(r->tag);
  free(r->digest);
}

kiln_err img_registry_ref_parse(const char *text, struct img_registry_ref *ref,
                                struct kiln_error *err)
{
  memset(ref, 0, sizeof(*ref));
  char *s = strdup(text);
  if (!s)
    return kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  char *at = strchr(s, '@');
  if (at) {
    *at = '\0';
    ref->digest = strdup(at + 1);
  }
  char *slash = strrchr(s, '/');
  char *colon = strrchr(slash ? slash : s, ':');
  if (colon && !at) {
    *colon = '\0';
    ref->tag = strdup(colon + 1);
  } else if (colon) {
    *colon = '\0'; /* name:tag@digest: the digest wins */
  }
  char *first = strchr(s, '/');
  if (first && (memchr(s, '.', (size_t)(first - s)) || memchr(s, ':', (size_t)(first - s)) ||
                strncmp(s, "localhost/", 10) == 0)) {
    ref->host = strndup(s, (size_t)(first - s));
    ref->repo = strdup(first + 1);
  } else {
    ref->host = strdup("docker.io");
    struct kiln_buf b = KILN_BUF_INIT;
    kiln_buf_printf(&b, "%s%s", first ? "" : "library/", s);
    ref->repo = kiln_buf_detach(&b);
  }
  free(s);
  if (!ref->tag && !ref->digest)
    ref->tag = strdup("latest");
  if (!ref->host || !ref->repo || !ref->repo[0] || (!ref->tag && !ref->digest))
    return kiln_error_set(err, KILN_E_INVALID, "docker://%s is not a valid image reference", text);
  if (ref->digest && !kiln_digest_is_sha256(ref->digest))
    return kiln_error_set(err, KILN_E_INVALID, "docker://%s: only sha256 digests are supported",
                          text);
  return KILN_OK;
}

int img_registry_is_loopback(const char *host)
{
  /* host[:port] -> the name alone; only literal loopback addresses and "localhost" count */
  size_t len = host[0] == '[' ? strcspn(host, "]") + 1 : strcspn(host, ":");
  if (len == 9 && strncmp(host, "localhost", 9) == 0)
    return 1;
  if (len == 5 && strncmp(host, "[::1]", 5) == 0)
    return 1;
  unsigned a, b, c, d;
  char tail;
  char ip[16];
  if (len >= sizeof(ip))
    return 0;
  memcpy(ip, host, len);
  ip[len] = '\0';
  return sscanf(ip, "%u.%u.%u.%u%c", &a, &b, &c, &d, &tail) == 4 && a == 127 && b < 256 &&
         c < 256 && d < 256;
}

static int insecure_allowed(const cJSON *list, const char *host)
{
  const cJSON *it;
  cJSON_ArrayForEach(it,
                     list) if (cJSON_IsString(it) && strcmp(it->valuestring, host) == 0) return 1;
  return 0;
}

static kiln_err write_blob_file(const char *dir, const char *digest, const char *data, size_t len,
                                struct kiln_error *err)
{
  struct kiln_buf p = KILN_BUF_INIT;
  kiln_buf_printf(&p, "%s/blobs/sha256/%s", dir, digest + 7);
  kiln_err rc = kiln_write_file_atomic(p.data, data, len, 0644, err);
  kiln_buf_free(&p);
  return rc;
}

static kiln_err fetch_blob(struct reg *r, const char *dir, const char *digest,
                           struct kiln_error *err)
{
  struct kiln_buf path = KILN_BUF_INIT, file = KILN_BUF_INIT;
  struct reg_result res;
  kiln_err rc;
  char *blob_path = NULL;
  if ((rc = img_digest_path(digest, &blob_path, err)))
    return rc;
  kiln_buf_printf(&path, "/v2/%s/blobs/%s", r->repo, digest);
  kiln_buf_printf(&file, "%s/%s", dir, blob_path);
  FILE *f = fopen(file.data, "w+b");
  if (!f) {
    rc = kiln_error_set(err, KILN_E_IO, "cannot create %s", file.data);
    goto out;
  }
  rc = reg_get(r, path.data, NULL, f, digest, &res, err);
  if (!rc)
    reg_result_clear(&res);
  if (fclose(f) != 0 && !rc)
    rc = kiln_error_set(err, KILN_E_IO, "writing %s failed", file.data);
out:
  free(blob_path);
  kiln_buf_free(&path);
  kiln_buf_free(&file);
  return rc;
}

static const char *media_type_of(const cJSON *doc, const char *content_type)
{
  const cJSON *mt = cJSON_GetObjectItemCaseSensitive(doc, "mediaType");
  return cJSON_IsString(mt) ? mt->valuestring : content_type ? content_type : "";
}

/* A manifest list (index): the manifest for env->platform, fetched in its place (*doc, *res and
 * *mt replaced); *platform is the chosen entry's "platform" object as JSON (caller frees). */
static kiln_err follow_index(struct reg *r, const struct img_registry_ref *ref,
                             const char *reference, const struct img_source_env *env, cJSON **doc,
                             struct reg_result *res, const char **mt, char **platform,
                             struct kiln_error *err)
{
  const cJSON *d, *chosen = NULL;
  struct kiln_buf seen = KILN_BUF_INIT;
  cJSON_ArrayForEach(d, cJSON_GetObjectItemCaseSensitive(*doc, "manifests"))
  {
    const cJSON *plat = cJSON_GetObjectItemCaseSensitive(d, "platform");
    const cJSON *os = cJSON_GetObjectItemCaseSensitive(plat, "os");
    const cJSON *arch = cJSON_GetObjectItemCaseSensitive(plat, "architecture");
    if (cJSON_IsString(os) && cJSON_IsString(arch))
      kiln_buf_printf(&seen, "%s%s/%s", seen.len ? ", " : "", os->valuestring, arch->valuestring);
    if (!chosen && plat && img_platform_matches(plat, env->platform))
      chosen = d;
  }
  const cJSON *cd = chosen ? cJSON_GetObjectItemCaseSensitive(chosen, "digest") : NULL;
  if (!cJSON_IsString(cd)) {
    kiln_err rc = kiln_error_set(err, KILN_E_NOT_FOUND,
                                 "docker://%s has no manifest for %s (available: %s); set "
                                 "/image/platform",
                                 reference, env->platform, seen.len ? seen.data : "none");
    kiln_buf_free(&seen);
    return rc;
  }
  kiln_buf_free(&seen);
  *platform = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(chosen, "platform"));
  char *child = strdup(cd->valuestring);
  cJSON_Delete(*doc);
  *doc = NULL;
  reg_result_clear(res);
  struct kiln_buf path = KILN_BUF_INIT;
  kiln_buf_printf(&path, "/v2/%s/manifests/%s", ref->repo, child ? child : "");
  kiln_err rc = child && *platform && !kiln_buf_status(&path)
                    ? reg_get(r, path.data, ACCEPT_MANIFESTS, NULL, child, res, err)
                    : kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  free(child);
  kiln_buf_free(&path);
  if (rc || (rc = kiln_json_parse(res->body, res->len, "manifest", doc, err)))
    return rc;
  *mt = media_type_of(*doc, res->content_type);
  return KILN_OK;
}

kiln_err img_registry_pull(const char *reference, const struct img_source_env *env, int layers,
                           char **dir, struct img_manifest *m, struct kiln_error *err)
{
  kiln_err rc;
  struct img_registry_ref ref;
  struct reg r = {.log = env->log, .log_ctx = env->log_ctx};
  struct reg_result res = {0};
  struct img_store *store = NULL;
  cJSON *doc = NULL;
  char *platform = NULL; /* the index entry's platform, when the tag is an index */
  struct kiln_buf path = KILN_BUF_INIT, idx = KILN_BUF_INIT, tmp = KILN_BUF_INIT;
  *dir = NULL;
  memset(m, 0, sizeof(*m));
  if ((rc = img_registry_ref_parse(reference, &ref, err)))
    goto out;
  const char *api_host = strcmp(ref.host, "docker.io") == 0 ? "registry-1.docker.io" : ref.host;
  int plain = img_registry_is_loopback(ref.host) || insecure_allowed(env->insecure, ref.host);
  kiln_buf_printf(&tmp, "%s://%s", plain ? "http" : "https", api_host);
  r.base = kiln_buf_detach(&tmp);
  r.host = strdup(ref.host);
  r.repo = strdup(ref.repo);
  r.basic = img_docker_credentials(ref.host, env->log, env->log_ctx);
  if (!(r.curl = curl_easy_init()) || !r.base || !r.host || !r.repo) {
    rc = kiln_error_set(err, KILN_E_NOMEM, "out of memory starting the registry client");
    goto out;
  }
  if ((rc = kiln_mkdtemp_in(env->temp_dir, "registry-", dir, err)))
    goto out;
  kiln_buf_printf(&tmp, "%s/blobs/sha256", *dir);
  if ((rc = kiln_mkdir_p(tmp.data, 0755, err)))
    goto out;
  /* With a kiln.lock entry for this tag, pull exactly what was pulled before. */
  const char *want = ref.digest;
  if (!want && cJSON_IsString(env->locked_digest))
    want = env->locked_digest->valuestring;
  kiln_buf_printf(&path, "/v2/%s/manifests/%s", ref.repo, want ? want : ref.tag);
  if ((rc = reg_get(&r, path.data, ACCEPT_MANIFESTS, NULL, want, &res, err)) ||
      (rc = kiln_json_parse(res.body, res.len, "manifest", &doc, err)))
    goto out;
  const char *mt = media_type_of(doc, res.content_type);
  if (strstr(mt, "distribution.manifest.v1") || strstr(mt, "prettyjws")) {
    rc = kiln_error_set(err, KILN_E_UNSUPPORTED,
                        "docker://%s is a Docker schema 1 image, which kiln does not read; re-push "
                        "it with a current Docker or skopeo",
                        reference);
    goto out;
  }
  if ((strstr(mt, "index") || strstr(mt, "manifest.list")) &&
      (rc = follow_index(&r, &ref, reference, env, &doc, &res, &mt, &platform, err)))
    goto out;
  if ((rc = write_blob_file(*dir, res.digest, res.body, res.len, err)))
    goto out;
  const cJSON *cfg_digest = kiln_json_pointer(doc, "/config/digest");
  if (!cJSON_IsString(cfg_digest)) {
    rc = kiln_error_set(err, KILN_E_INVALID, "docker://%s: the manifest has no config", reference);
    goto out;
  }
  if ((rc = fetch_blob(&r, *dir, cfg_digest->valuestring, err)))
    goto out;
  const cJSON *l, *layer_list = layers ? cJSON_GetObjectItemCaseSensitive(doc, "layers") : NULL;
  cJSON_ArrayForEach(l, layer_list)
  {
    const cJSON *ld = cJSON_GetObjectItemCaseSensitive(l, "digest");
    if (!cJSON_IsString(ld)) {
      rc = kiln_error_set(err, KILN_E_INVALID, "docker://%s: a layer has no digest", reference);
      goto out;
    }
    if (r.log)
      r.log(r.log_ctx, "pulling %s", ld->valuestring);
    if ((rc = fetch_blob(&r, *dir, ld->valuestring, err)))
      goto out;
  }
  /* The index entry's platform goes along, so a config that contradicts it is a warning about
   * a mislabelled image rather than a refusal. */
  kiln_buf_printf(&idx,
                  "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"%s\",\"digest\":\"%s\","
                  "\"size\":%zu%s%s}]}",
                  mt, res.digest, res.len, platform ? ",\"platform\":" : "",
                  platform ? platform : "");
  kiln_buf_reset(&tmp);
  kiln_buf_printf(&tmp, "%s/index.json", *dir);
  if ((rc = kiln_write_file_atomic(tmp.data, idx.data, idx.len, 0644, err)))
    goto out;
  kiln_buf_reset(&tmp);
  kiln_buf_printf(&tmp, "%s/oci-layout", *dir);
  static const char layout[] = "{\"imageLayoutVersion\":\"1.0.0\"}";
  if ((rc = kiln_write_file_atomic(tmp.data, layout, strlen(layout), 0644, err)) ||
      (rc = img_store_open_dir(*dir, &store, err)) ||
      (rc = img_oci_resolve(store, NULL, env->platform, m, err)))
    goto out;
out:
  if (rc && *dir) {
    struct kiln_error e2 = KILN_ERROR_INIT;
    kiln_rm_rf_quiet(*dir);
    kiln_error_clear(&e2);
    free(*dir);
    *dir = NULL;
  }
  img_store_free(store);
  cJSON_Delete(doc);
  free(platform);
  reg_result_clear(&res);
  kiln_buf_free(&path);
  kiln_buf_free(&idx);
  kiln_buf_free(&tmp);
  if (r.curl)
    curl_easy_cleanup(r.curl);
  free(r.base);
  free(r.host);
  free(r.repo);
  free(r.basic);
  free(r.auth);
  img_registry_ref_clear(&ref);
  return rc;
}
