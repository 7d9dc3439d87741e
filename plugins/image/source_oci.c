/* OCI image layouts (a directory, an oci-archive tar, or the OCI part of a Docker >= 25 save):
 * index.json -> (nested indexes) -> the manifest for the wanted tag and platform -> config +
 * layers. */
#include <stdlib.h>
#include <string.h>

#include "image.h"
#include "util/json.h"

#define OCI_MAX_JSON (4u << 20)
#define OCI_MAX_DEPTH 4

#define MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define MT_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"

void img_manifest_clear(struct img_manifest *m)
{
  for (size_t i = 0; i < m->nlayers; i++) {
    free(m->layers[i].path);
    free(m->layers[i].digest);
    free(m->layers[i].diff_id);
  }
  free(m->layers);
  free(m->manifest_digest);
  free(m->config_digest);
  free(m->platform_warning);
  cJSON_Delete(m->config);
  memset(m, 0, sizeof(*m));
}

static const char *jstr(const cJSON *o, const char *key)
{
  const cJSON *v = o ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL;
  return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Compare "os/arch[/variant]" with the fields os/architecture/variant of obj. */
int img_platform_matches(const cJSON *obj, const char *platform)
{
  const char *os = jstr(obj, "os"), *arch = jstr(obj, "architecture"), *var = jstr(obj, "variant");
  if (!os || !arch)
    return 0;
  size_t oslen = strlen(os), archlen = strlen(arch);
  if (strncmp(platform, os, oslen) != 0 || platform[oslen] != '/')
    return 0;
  const char *p = platform + oslen + 1;
  if (strncmp(p, arch, archlen) != 0 || (p[archlen] != '\0' && p[archlen] != '/'))
    return 0;
  if (p[archlen] == '/') {
    const char *want_var = p + archlen + 1;
    const char *have = var ? var : (strcmp(arch, "arm64") == 0 ? "v8" : "");
    return strcmp(want_var, have) == 0;
  }
  return 1;
}

kiln_err img_platform_check(const cJSON *config, const char *platform, int claimed,
                            struct img_manifest *m, struct kiln_error *err)
{
  if (img_platform_matches(config, platform))
    return KILN_OK;
  const char *os = jstr(config, "os"), *arch = jstr(config, "architecture");
  if (!claimed)
    return kiln_error_set(err, KILN_E_NOT_FOUND,
                          "the image is for %s/%s, not %s; build or pull the image for %s (or "
                          "set /image/platform)",
                          os ? os : "?", arch ? arch : "?", platform, platform);
  struct kiln_buf w = KILN_BUF_INIT;
  kiln_buf_printf(&w,
                  "the image index lists this image for %s, but its config says %s/%s: if the "
                  "config is right, its programs will not run in the enclave (exec format "
                  "error); check how the image was built",
                  platform, os ? os : "?", arch ? arch : "?");
  free(m->platform_warning);
  m->platform_warning = kiln_buf_detach(&w);
  return m->platform_warning ? KILN_OK : kiln_error_set(err, KILN_E_NOMEM, "out of memory");
}

static kiln_err read_json_blob(struct img_store *s, const char *digest, cJSON **out,
                               struct kiln_error *err)
{
  char *path = NULL, *text = NULL;
  size_t len;
  *out = NULL;
  kiln_err rc = img_digest_path(digest, &path, err);
  if (!rc)
    rc = img_store_read(s, path, digest, OCI_MAX_JSON, &text, &len, err);
  if (!rc)
    rc = kiln_json_parse(text, len, path, out, err);
  free(path);
  free(text);
  return rc;
}

static int ref_matches(const cJSON *desc, const char *ref)
{
  const cJSON *ann = cJSON_GetObjectItemCaseSensitive(desc, "annotations");
  const char *name = jstr(ann, "org.opencontainers.image.ref.name");
  const char *full = jstr(ann, "io.containerd.image.name");
  if (name && strcmp(name, ref) == 0)
    return 1;
  if (full) {
    size_t fl = strlen(full), rl = strlen(ref);
    if (strcmp(full, ref) == 0)
      return 1;
    /* "docker.io/library/hello:latest" also answers to "hello:latest" */
    if (fl > rl && strcmp(full + fl - rl, ref) == 0 && full[fl - rl - 1] == '/')
      return 1;
  }
  return 0;
}

struct selection {
  char *digest; /* chosen manifest */
  cJSON *manifest;
  int claimed;          /* its index entry named the platform */
  struct kiln_buf seen; /* platforms seen, for the error message */
};

static kiln_err select_in_index(struct img_store *s, const cJSON *index, const char *ref,
                                const char *platform, int depth, struct selection *sel,
                                struct kiln_error *err)
{
  kiln_err rc;
  const cJSON *manifests = cJSON_GetObjectItemCaseSensitive(index, "manifests");
  if (depth > OCI_MAX_DEPTH)
    return kiln_error_set(err, KILN_E_INVALID, "image indexes nested deeper than %d levels",
                          OCI_MAX_DEPTH);
  if (manifests && !cJSON_IsArray(manifests) && !cJSON_IsNull(manifests))
    return kiln_error_set(err, KILN_E_INVALID, "index.json: \"manifests\" must be an array");
  const cJSON *d;
  cJSON_ArrayForEach(d, manifests)
  {
    const char *mt = jstr(d, "mediaType"), *digest = jstr(d, "digest");
    if (!mt || !digest || sel->digest)
      continue;
    if (ref && !ref_matches(d, ref))
      continue;
    char *path = NULL;
    if (img_digest_path(digest, &path, err) != KILN_OK) {
      free(path);
      continue;
    }
    int present = img_store_has(s, path);
    free(path);
    if (!present)
      continue; /* containerd-store saves hold only local platforms */
    if (strcmp(mt, MT_OCI_INDEX) == 0 || strcmp(mt, MT_DOCKER_LIST) == 0) {
      cJSON *child = NULL;
      if ((rc = read_json_blob(s, digest, &child, err)))
        return rc;
      rc = select_in_index(s, child, NULL, platform, depth + 1, sel, err);
      cJSON_Delete(child);
      if (rc)
        return rc;
      continue;
    }
    if (strcmp(mt, MT_OCI_MANIFEST) != 0 && strcmp(mt, MT_DOCKER_MANIFEST) != 0)
      continue; /* unknown media types are skipped (image-spec) */
    const cJSON *plat = cJSON_GetObjectItemCaseSensitive(d, "platform");
    cJSON *manifest = NULL;
    if (plat) {
      kiln_buf_printf(&sel->seen, "%s%s/%s", sel->seen.len ? ", " : "",
                      jstr(plat, "os") ? jstr(plat, "os") : "?",
                      jstr(plat, "architecture") ? jstr(plat, "architecture") : "?");
      if (!img_platform_matches(plat, platform))
        continue;
    }
    if ((rc = read_json_blob(s, digest, &manifest, err)))
      return rc;
    sel->manifest = manifest;
    sel->claimed = plat != NULL;
    if (!(sel->digest = strdup(digest)))
      return kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  }
  return KILN_OK;
}

static kiln_err load_manifest(struct img_store *s, cJSON *manifest, const char *platform,
                              int claimed, struct img_manifest *m, struct kiln_error *err)
{
  kiln_err rc;
  const char *mt = jstr(manifest, "mediaType");
  if (mt && strstr(mt, "distribution.manifest.v1"))
    return kiln_error_set(err, KILN_E_UNSUPPORTED,
                          "Docker schema 1 manifests are not supported; re-push the image with a "
                          "current Docker or skopeo");
  const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(manifest, "config");
  const char *cfg_digest = jstr(cfg, "digest");
  if (!cfg_digest)
    return kiln_error_set(err, KILN_E_INVALID, "manifest %s has no config digest",
                          m->manifest_digest ? m->manifest_digest : "");
  if ((rc = read_json_blob(s, cfg_digest, &m->config, err)))
    return rc;
  if (!(m->config_digest = strdup(cfg_digest)))
    return kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  if ((rc = img_platform_check(m->config, platform, claimed, m, err)))
    return rc;
  const cJSON *layers = cJSON_GetObjectItemCaseSensitive(manifest, "layers");
  const cJSON *diff_ids = kiln_json_pointer(m->config, "/rootfs/diff_ids");
  int n = cJSON_IsArray(layers) ? cJSON_GetArraySize(layers) : 0;
  if (n > 0 && !(m->layers = calloc((size_t)n, sizeof(*m->layers))))
    return kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  for (int i = 0; i < n; i++) {
    const cJSON *l = cJSON_GetArrayItem(layers, i);
    const char *lmt = jstr(l, "mediaType"), *ld = jstr(l, "digest");
    const cJSON *diff = cJSON_GetArrayItem(diff_ids, i);
    if (lmt && !strstr(lmt, ".tar") && !strstr(lmt, "rootfs.diff"))
      return kiln_error_set(err, KILN_E_UNSUPPORTED,
                            "layer %d has media type %s, which is not a tar layer", i, lmt);
    struct img_layer_ref *r = &m->layers[m->nlayers++];
    if ((rc = img_digest_path(ld, &r->path, err)))
      return rc;
    if (!(r->digest = strdup(ld)) ||
        (cJSON_IsString(diff) && !(r->diff_id = strdup(diff->valuestring))))
      return kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  }
  return KILN_OK;
}

kiln_err img_oci_resolve(struct img_store *s, const char *ref, const char *platform,
                         struct img_manifest *m, struct kiln_error *err)
{
  kiln_err rc;
  char *text = NULL;
  size_t len;
  cJSON *index = NULL;
  struct selection sel = {.seen = KILN_BUF_INIT};
  memset(m, 0, sizeof(*m));
  if (!img_store_has(s, "oci-layout")) {
    rc = kiln_error_set(err, KILN_E_INVALID,
                        "not an OCI image layout: oci-layout is missing (make one with `skopeo "
                        "copy ... oci:DIR` or `docker save`)");
    goto out;
  }
  if ((rc = img_store_read(s, "index.json", NULL, OCI_MAX_JSON, &text, &len, err)) ||
      (rc = kiln_json_parse(text, len, "index.json", &index, err)))
    goto out;
  const cJSON *manifests = cJSON_GetObjectItemCaseSensitive(index, "manifests");
  if (!ref && cJSON_GetArraySize(manifests) > 1) {
    struct kiln_buf names = KILN_BUF_INIT;
    const cJSON *d;
    cJSON_ArrayForEach(d, manifests)
    {
      const char *n = jstr(cJSON_GetObjectItemCaseSensitive(d, "annotations"),
                           "org.opencontainers.image.ref.name");
      kiln_buf_printf(&names, "%s%s", names.len ? ", " : "", n ? n : "(untagged)");
    }
    int same_image = 1; /* a multi-platform index written flat is fine without a name */
    cJSON_ArrayForEach(d, manifests) same_image &=
        cJSON_GetObjectItemCaseSensitive(d, "platform") != NULL;
    if (!same_image) {
      rc = kiln_error_set(err, KILN_E_INVALID,
                          "the layout holds several images (%s); name one as oci:DIR:REF",
                          kiln_buf_str(&names));
      kiln_buf_free(&names);
      goto out;
    }
    kiln_buf_free(&names);
  }
  if ((rc = select_in_index(s, index, ref, platform, 0, &sel, err)))
    goto out;
  if (!sel.digest) {
    if (ref && !sel.seen.len)
      rc = kiln_error_set(err, KILN_E_NOT_FOUND, "no image named \"%s\" in the layout", ref);
    else
      rc = kiln_error_set(err, KILN_E_NOT_FOUND,
                          "no manifest for platform %s (available: %s); set /image/platform or "
                          "use an image built for %s",
                          platform, sel.seen.len ? kiln_buf_str(&sel.seen) : "none", platform);
    goto out;
  }
  m->manifest_digest = sel.digest;
  sel.digest = NULL;
  rc = load_manifest(s, sel.manifest, platform, sel.claimed, m, err);
out:
  if (rc)
    img_manifest_clear(m);
  free(sel.digest);
  cJSON_Delete(sel.manifest);
  kiln_buf_free(&sel.seen);
  cJSON_Delete(index);
  free(text);
  return rc;
}
