/* The Docker Engine API client (unix socket or tcp, libcurl) shared by docker-daemon: sources and
 * Dockerfile builds: connection, version negotiation, clear errors when the daemon is absent. */
#ifndef KILN_IMAGE_DAEMON_H
#define KILN_IMAGE_DAEMON_H

#include <curl/curl.h>

#include "util/buf.h"
#include "util/error.h"

struct img_daemon {
  CURL *curl;
  char *socket; /* unix socket path, or NULL for tcp */
  char *base;   /* "http://docker" or "http://host:port" */
  char version[16];
  char *api_version_hdr;
  const char *host_text;
};

/* Connect to $DOCKER_HOST (default unix:///var/run/docker.sock), _ping and negotiate the API
 * version. Close with img_daemon_close even on failure. */
kiln_err img_daemon_open(struct img_daemon *d, struct kiln_error *err);
void img_daemon_close(struct img_daemon *d);
/* Reset the handle for a request to path (versioned URL, socket, header parsing). */
void img_daemon_prepare(struct img_daemon *d, const char *path, struct kiln_buf *url);
/* The error for a failed transfer: names the socket and says how to start the daemon or which
 * group grants access to it. */
kiln_err img_daemon_transfer_error(const struct img_daemon *d, CURLcode cc, struct kiln_error *err);
/* The image's Id ("sha256:..."); KILN_E_NOT_FOUND (no message set) when the daemon lacks it. */
kiln_err img_daemon_image_id(struct img_daemon *d, const char *name, char **id,
                             struct kiln_error *err);

#endif
