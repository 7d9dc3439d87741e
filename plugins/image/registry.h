/* Private interface between the registry source and its HTTP layer. */
#ifndef KILN_IMAGE_REGISTRY_H
#define KILN_IMAGE_REGISTRY_H

#include <stdio.h>

#include "source.h"

struct reg {
  void *curl;  /* CURL * */
  char *base;  /* "https://host" or "http://127.0.0.1:5000" */
  char *host;  /* host[:port] as in the reference (credentials key) */
  char *repo;  /* "library/alpine" */
  char *basic; /* base64 "user:password" from the Docker config, or NULL */
  char *auth;  /* current "Authorization: ..." header line, or NULL */
  img_warn_fn log;
  void *log_ctx;
};

struct reg_result {
  char *body; /* small responses (manifests); NULL for blobs written to a sink */
  size_t len;
  char *content_type;
  char digest[80]; /* "sha256:<hex>" of the body or of the blob */
};

/* GET base+path with retries and auth; blob bodies go to sink (resumed with Range when sink
 * already holds bytes), others to out->body. want_digest: verify the content. */
KILN_MUST_CHECK kiln_err reg_get(struct reg *r, const char *path, const char *accept, FILE *sink,
                                 const char *want_digest, struct reg_result *out,
                                 struct kiln_error *err);
void reg_result_clear(struct reg_result *res);

/* A parsed docker:// reference: host "docker.io" for Docker Hub (API host registry-1.docker.io),
 * "library/" added to one-component Hub names, tag "latest" when neither tag nor digest is given.
 */
struct img_registry_ref {
  char *host, *repo, *tag, *digest;
};
KILN_MUST_CHECK kiln_err img_registry_ref_parse(const char *text, struct img_registry_ref *ref,
                                                struct kiln_error *err);
void img_registry_ref_clear(struct img_registry_ref *r);
/* 1 for localhost, [::1] and 127.x.y.z (with or without :port): plain HTTP is allowed there. */
int img_registry_is_loopback(const char *host);

/* credentials.c: base64 "user:secret" for host from the Docker config ($DOCKER_CONFIG/config.json
 * or ~/.docker/config.json): credHelpers/credsStore via `docker-credential-<name> get`, else
 * auths.<host>.auth. NULL when there are none (anonymous). Caller frees. */
char *img_docker_credentials(const char *host, img_warn_fn log, void *log_ctx);

#endif
