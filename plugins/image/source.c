/* Source dispatch: transport-name parsing ("oci:DIR:REF", ...), loading every layer of the chosen
 * image onto the tree, and the identity text the stage cache key uses. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "source.h"
#include "util/buf.h"
#include "util/fs.h"
#include "util/hash.h"
#include <unistd.h>

/* Every transport, once: its prefix, what follows it, and its kind. */
static const struct {
  const char *prefix;
  const char *syntax;
  enum img_source_kind kind;
} transports[] = {
    {"docker-daemon:", "NAME[:TAG]", IMG_SRC_DAEMON},
    {"docker-archive:", "FILE", IMG_SRC_DOCKER_ARCHIVE},
    {"oci:", "DIR[:REF]", IMG_SRC_OCI},
    {"oci-archive:", "FILE[:REF]", IMG_SRC_OCI_ARCHIVE},
    {"docker://", "REPO[:TAG]", IMG_SRC_REGISTRY},
    {"dir:", "PATH", IMG_SRC_DIR},
};

#define NTRANSPORTS (sizeof(transports) / sizeof(transports[0]))

/* "docker-daemon:NAME[:TAG], ... or dir:PATH" */
static void transport_list(struct kiln_buf *b)
{
  for (size_t i = 0; i < NTRANSPORTS; i++)
    kiln_buf_printf(b, "%s%s%s",
                    i == 0                 ? ""
                    : i + 1 == NTRANSPORTS ? " or "
                                           : ", ",
                    transports[i].prefix, transports[i].syntax);
}

void img_source_clear(struct img_source *src)
{
  free(src->text);
  free(src->path);
  free(src->ref);
  memset(src, 0, sizeof(*src));
}

kiln_err img_source_parse(const char *text, const char *app_dir, struct img_source *src,
                          struct kiln_error *err)
{
  memset(src, 0, sizeof(*src));
  size_t i;
  for (i = 0; i < NTRANSPORTS; i++)
    if (strncmp(text, transports[i].prefix, strlen(transports[i].prefix)) == 0)
      break;
  if (i == NTRANSPORTS) {
    struct kiln_buf list = KILN_BUF_INIT;
    transport_list(&list);
    kiln_err rc =
        kiln_error_set(err, KILN_E_INVALID, "image source \"%s\" has no transport; write %s", text,
                       kiln_buf_str(&list));
    kiln_buf_free(&list);
    return rc;
  }
  src->kind = transports[i].kind;
  const char *rest = text + strlen(transports[i].prefix);
  if (!*rest)
    return kiln_error_set(err, KILN_E_INVALID, "image source \"%s\" names nothing", text);
  if (!(src->text = strdup(text)))
    goto oom;
  if (src->kind == IMG_SRC_REGISTRY || src->kind == IMG_SRC_DAEMON) {
    if (!(src->path = strdup(rest)))
      goto oom;
    return KILN_OK;
  }
  /* FILE[:REF]: the first ':' separates the reference (as in containers-transports). */
  const char *colon = src->kind == IMG_SRC_DIR ? NULL : strchr(rest, ':');
  char *file = colon ? strndup(rest, (size_t)(colon - rest)) : strdup(rest);
  if (!file)
    goto oom;
  if (colon && colon[1] && !(src->ref = strdup(colon + 1))) {
    free(file);
    goto oom;
  }
  size_t fl = strlen(file);
  while (fl > 1 && file[fl - 1] == '/')
    file[--fl] = '\0';
  src->path = kiln_path_absolute(app_dir, file);
  free(file);
  if (!src->path)
    goto oom;
  return KILN_OK;
oom:
  img_source_clear(src);
  return kiln_error_set(err, KILN_E_NOMEM, "out of memory");
}

static kiln_err apply_layers(struct img_store *store, const struct img_manifest *m,
                             struct img_tree *tree, const struct img_source_env *env,
                             struct kiln_error *err)
{
  for (size_t i = 0; i < m->nlayers; i++) {
    const struct img_layer_ref *l = &m->layers[i];
    struct img_blob b = {
        .label = l->digest ? l->digest : l->path, .digest = l->digest, .diff_id = l->diff_id};
    if (env->progress)
      env->progress(env->log_ctx, i, m->nlayers, "layers");
    kiln_err rc = img_store_blob(store, l->path, &b, err);
    if (!rc)
      rc = img_layer_apply(tree, &b, (uint32_t)i + 1, err);
    if (rc)
      return rc;
    if (env->cancelled && env->cancelled(env->log_ctx))
      return kiln_error_set(err, KILN_E_CANCELLED, "interrupted");
  }
  if (env->progress)
    env->progress(env->log_ctx, m->nlayers, m->nlayers, "layers");
  return KILN_OK;
}

/* Open the store of a file/dir source and resolve the manifest. */
static kiln_err resolve_local(const struct img_source *src, const char *path,
                              const struct img_source_env *env, struct img_store **store,
                              struct img_manifest *m, struct kiln_error *err)
{
  kiln_err rc;
  *store = NULL;
  if (src->kind == IMG_SRC_OCI)
    rc = img_store_open_dir(path, store, err);
  else
    rc = img_store_open_tar(path, store, err);
  if (rc)
    return rc;
  if (src->kind == IMG_SRC_DOCKER_ARCHIVE || src->kind == IMG_SRC_DAEMON) {
    if (img_store_has(*store, "manifest.json"))
      return img_docker_archive_resolve(*store, src->kind == IMG_SRC_DAEMON ? NULL : src->ref,
                                        env->platform, m, err);
    if (!img_store_has(*store, "oci-layout"))
      return kiln_error_set(err, KILN_E_INVALID,
                            "%s has neither manifest.json nor oci-layout: not a docker save "
                            "archive",
                            path);
  }
  return img_oci_resolve(*store, src->ref, env->platform, m, err);
}

kiln_err img_source_load(const struct img_source *src, const struct img_source_env *env,
                         struct img_tree *tree, struct img_manifest *m, struct kiln_error *err)
{
  kiln_err rc;
  struct img_store *store = NULL;
  char *tmp = NULL, *image_id = NULL;
  memset(m, 0, sizeof(*m));
  switch (src->kind) {
  case IMG_SRC_DIR: rc = img_layer_apply_dir(tree, src->path, 1, err); break;
  case IMG_SRC_OCI:
  case IMG_SRC_OCI_ARCHIVE:
  case IMG_SRC_DOCKER_ARCHIVE:
    rc = resolve_local(src, src->path, env, &store, m, err);
    if (!rc)
      rc = apply_layers(store, m, tree, env, err);
    break;
  case IMG_SRC_REGISTRY:
    rc = img_registry_pull(src->path, env, 1, &tmp, m, err);
    if (!rc)
      rc = img_store_open_dir(tmp, &store, err);
    if (!rc)
      rc = apply_layers(store, m, tree, env, err);
    break;
  case IMG_SRC_DAEMON:
    rc = img_daemon_export(src->path, env, &tmp, &image_id, err);
    if (!rc)
      rc = resolve_local(src, tmp, env, &store, m, err);
    if (!rc)
      rc = apply_layers(store, m, tree, env, err);
    if (tmp)
      unlink(tmp);
    break;
  default: rc = kiln_error_set(err, KILN_E_INTERNAL, "unknown source kind");
  }
  img_store_free(store);
  if (tmp && src->kind == IMG_SRC_REGISTRY) {
    struct kiln_error e2 = KILN_ERROR_INIT;
    kiln_rm_rf_quiet(tmp);
    kiln_error_clear(&e2);
  }
  free(tmp);
  free(image_id);
  return rc;
}

kiln_err img_source_identify(const struct img_source *src, const struct img_source_env *env,
                             char **out, struct kiln_error *err)
{
  kiln_err rc = KILN_OK;
  struct img_store *store = NULL;
  struct img_manifest m = {0};
  struct kiln_buf b = KILN_BUF_INIT;
  char *tmp = NULL;
  char hex[KILN_SHA256_HEX_LEN + 1];
  *out = NULL;
  switch (src->kind) {
  case IMG_SRC_DIR:
    if (!(rc = kiln_sha256_tree(src->path, hex, err)))
      kiln_buf_printf(&b, "dir sha256:%s", hex);
    break;
  case IMG_SRC_OCI:
  case IMG_SRC_OCI_ARCHIVE:
  case IMG_SRC_DOCKER_ARCHIVE:
    if (!(rc = resolve_local(src, src->path, env, &store, &m, err)))
      kiln_buf_printf(&b, "%s %s", m.manifest_digest ? m.manifest_digest : "-", m.config_digest);
    break;
  case IMG_SRC_REGISTRY:
    if (!(rc = img_registry_pull(src->path, env, 0, &tmp, &m, err)))
      kiln_buf_printf(&b, "%s %s", m.manifest_digest, m.config_digest);
    break;
  case IMG_SRC_DAEMON: {
    char *id = NULL;
    if (!(rc = img_daemon_export(src->path, env, NULL, &id, err)))
      kiln_buf_printf(&b, "daemon %s", id);
    free(id);
    break;
  }
  }
  if (!rc && !(*out = kiln_buf_detach(&b)))
    rc = kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  if (tmp) {
    struct kiln_error e2 = KILN_ERROR_INIT;
    kiln_rm_rf_quiet(tmp);
    kiln_error_clear(&e2);
    free(tmp);
  }
  kiln_buf_free(&b);
  img_manifest_clear(&m);
  img_store_free(store);
  return rc;
}
