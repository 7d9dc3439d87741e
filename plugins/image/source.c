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

/* Every transport, once (the table is at the end of this file): its prefix, what follows it,
 * how the rest parses, and how an image is loaded and identified. */
struct img_transport {
  const char *prefix;
  const char *syntax;
  enum img_source_kind kind;
  enum { REST_NAME, REST_FILE_REF, REST_PATH } rest; /* a name, FILE[:REF], or a plain path */
  kiln_err (*load)(const struct img_source *src, const struct img_source_env *env,
                   struct img_tree *tree, struct img_manifest *m, struct kiln_error *err);
  kiln_err (*identify)(const struct img_source *src, const struct img_source_env *env,
                       struct kiln_buf *out, struct kiln_error *err);
};
static const struct img_transport transports[];
static const size_t ntransports;

/* "docker-daemon:NAME[:TAG], ... or dir:PATH" */
static void transport_list(struct kiln_buf *b)
{
  for (size_t i = 0; i < ntransports; i++)
    kiln_buf_printf(b, "%s%s%s",
                    i == 0                 ? ""
                    : i + 1 == ntransports ? " or "
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
  for (i = 0; i < ntransports; i++)
    if (strncmp(text, transports[i].prefix, strlen(transports[i].prefix)) == 0)
      break;
  if (i == ntransports) {
    struct kiln_buf list = KILN_BUF_INIT;
    transport_list(&list);
    kiln_err rc =
        kiln_error_set(err, KILN_E_INVALID, "image source \"%s\" has no transport; write %s", text,
                       kiln_buf_str(&list));
    kiln_buf_free(&list);
    return rc;
  }
  src->transport = &transports[i];
  src->kind = transports[i].kind;
  const char *rest = text + strlen(transports[i].prefix);
  if (!*rest)
    return kiln_error_set(err, KILN_E_INVALID, "image source \"%s\" names nothing", text);
  if (!(src->text = strdup(text)))
    goto oom;
  if (transports[i].rest == REST_NAME) {
    if (!(src->path = strdup(rest)))
      goto oom;
    return KILN_OK;
  }
  /* FILE[:REF]: the first ':' separates the reference (as in containers-transports). */
  const char *colon = transports[i].rest == REST_PATH ? NULL : strchr(rest, ':');
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

static kiln_err load_dir(const struct img_source *src, const struct img_source_env *env,
                         struct img_tree *tree, struct img_manifest *m, struct kiln_error *err)
{
  (void)env;
  (void)m;
  return img_layer_apply_dir(tree, src->path, 1, err);
}

static kiln_err load_local(const struct img_source *src, const struct img_source_env *env,
                           struct img_tree *tree, struct img_manifest *m, struct kiln_error *err)
{
  struct img_store *store = NULL;
  kiln_err rc = resolve_local(src, src->path, env, &store, m, err);
  if (!rc)
    rc = apply_layers(store, m, tree, env, err);
  img_store_free(store);
  return rc;
}

static kiln_err load_registry(const struct img_source *src, const struct img_source_env *env,
                              struct img_tree *tree, struct img_manifest *m, struct kiln_error *err)
{
  struct img_store *store = NULL;
  char *tmp = NULL;
  kiln_err rc = img_registry_pull(src->path, env, 1, &tmp, m, err);
  if (!rc)
    rc = img_store_open_dir(tmp, &store, err);
  if (!rc)
    rc = apply_layers(store, m, tree, env, err);
  img_store_free(store);
  if (tmp)
    kiln_rm_rf_quiet(tmp);
  free(tmp);
  return rc;
}

static kiln_err load_daemon(const struct img_source *src, const struct img_source_env *env,
                            struct img_tree *tree, struct img_manifest *m, struct kiln_error *err)
{
  struct img_store *store = NULL;
  char *tmp = NULL, *image_id = NULL;
  kiln_err rc = img_daemon_export(src->path, env, &tmp, &image_id, err);
  if (!rc)
    rc = resolve_local(src, tmp, env, &store, m, err);
  if (!rc)
    rc = apply_layers(store, m, tree, env, err);
  img_store_free(store);
  if (tmp)
    unlink(tmp);
  free(tmp);
  free(image_id);
  return rc;
}

kiln_err img_source_load(const struct img_source *src, const struct img_source_env *env,
                         struct img_tree *tree, struct img_manifest *m, struct kiln_error *err)
{
  memset(m, 0, sizeof(*m));
  if (!src->transport)
    return kiln_error_set(err, KILN_E_INTERNAL, "image source without a transport");
  kiln_err rc = src->transport->load(src, env, tree, m, err);
  if (!rc && m->platform_warning && env->warn)
    env->warn(env->log_ctx, "%s", m->platform_warning);
  return rc;
}

static kiln_err identify_dir(const struct img_source *src, const struct img_source_env *env,
                             struct kiln_buf *out, struct kiln_error *err)
{
  char hex[KILN_SHA256_HEX_LEN + 1];
  (void)env;
  kiln_err rc = kiln_sha256_tree(src->path, hex, err);
  if (!rc)
    kiln_buf_printf(out, "dir sha256:%s", hex);
  return rc;
}

static kiln_err identify_local(const struct img_source *src, const struct img_source_env *env,
                               struct kiln_buf *out, struct kiln_error *err)
{
  struct img_store *store = NULL;
  struct img_manifest m = {0};
  kiln_err rc = resolve_local(src, src->path, env, &store, &m, err);
  if (!rc)
    kiln_buf_printf(out, "%s %s", m.manifest_digest ? m.manifest_digest : "-", m.config_digest);
  img_manifest_clear(&m);
  img_store_free(store);
  return rc;
}

static kiln_err identify_registry(const struct img_source *src, const struct img_source_env *env,
                                  struct kiln_buf *out, struct kiln_error *err)
{
  struct img_manifest m = {0};
  char *tmp = NULL;
  kiln_err rc = img_registry_pull(src->path, env, 0, &tmp, &m, err);
  if (!rc)
    kiln_buf_printf(out, "%s %s", m.manifest_digest, m.config_digest);
  if (tmp)
    kiln_rm_rf_quiet(tmp);
  free(tmp);
  img_manifest_clear(&m);
  return rc;
}

static kiln_err identify_daemon(const struct img_source *src, const struct img_source_env *env,
                                struct kiln_buf *out, struct kiln_error *err)
{
  char *id = NULL;
  kiln_err rc = img_daemon_export(src->path, env, NULL, &id, err);
  if (!rc)
    kiln_buf_printf(out, "daemon %s", id);
  free(id);
  return rc;
}

kiln_err img_source_identify(const struct img_source *src, const struct img_source_env *env,
                             char **out, struct kiln_error *err)
{
  struct kiln_buf b = KILN_BUF_INIT;
  *out = NULL;
  if (!src->transport)
    return kiln_error_set(err, KILN_E_INTERNAL, "image source without a transport");
  kiln_err rc = src->transport->identify(src, env, &b, err);
  if (!rc && !(*out = kiln_buf_detach(&b)))
    rc = kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  kiln_buf_free(&b);
  return rc;
}

/* Adding a transport: its source_<name>.c, its load and identify functions, and one line here. */
static const struct img_transport transports[] = {
    {"docker-daemon:", "NAME[:TAG]", IMG_SRC_DAEMON, REST_NAME, load_daemon, identify_daemon},
    {"docker-archive:", "FILE", IMG_SRC_DOCKER_ARCHIVE, REST_FILE_REF, load_local, identify_local},
    {"oci:", "DIR[:REF]", IMG_SRC_OCI, REST_FILE_REF, load_local, identify_local},
    {"oci-archive:", "FILE[:REF]", IMG_SRC_OCI_ARCHIVE, REST_FILE_REF, load_local, identify_local},
    {"docker://", "REPO[:TAG]", IMG_SRC_REGISTRY, REST_NAME, load_registry, identify_registry},
    {"dir:", "PATH", IMG_SRC_DIR, REST_PATH, load_dir, identify_dir},
};
static const size_t ntransports = sizeof(transports) / sizeof(transports[0]);
