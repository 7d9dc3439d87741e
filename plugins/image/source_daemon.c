/* docker-daemon: sources and the shared Engine API client (Docker's or podman's) over its unix
 * socket with libcurl: _ping version negotiation, image inspect, and `images/{name}/get` streamed
 * into a temp tar that the docker-archive reader then takes apart. No docker CLI involved. */
#include <curl/curl.h>
#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon.h"
#include "source.h"
#include "util/json.h"

#define DAEMON_MAX_API_MINOR 45 /* the newest Engine API version kiln speaks (1.45) */
#define DAEMON_MAX_SMALL (4u << 20)

struct sink {
  struct kiln_buf body;
  FILE *file;
  int too_big;
};

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
  struct sink *s = ud;
  size_t len = sz * n;
  if (s->file)
    return fwrite(p, 1, len, s->file);
  if (s->body.len + len > DAEMON_MAX_SMALL) {
    s->too_big = 1;
    return 0;
  }
  return kiln_buf_append(&s->body, p, len) ? 0 : len;
}

static size_t on_header(char *p, size_t sz, size_t n, void *ud)
{
  struct img_daemon *d = ud;
  size_t len = sz * n;
  if (len > 12 && strncasecmp(p, "API-Version:", 12) == 0) {
    const char *v = p + 12;
    while (*v == ' ')
      v++;
    free(d->api_version_hdr);
    d->api_version_hdr = strndup(v, strcspn(v, "\r\n"));
  }
  return len;
}

void img_daemon_prepare(struct img_daemon *d, const char *path, struct kiln_buf *url)
{
  kiln_buf_reset(url);
  kiln_buf_printf(url, "%s%s%s", d->base, d->version[0] ? d->version : "", path);
  curl_easy_reset(d->curl);
  if (d->socket)
    curl_easy_setopt(d->curl, CURLOPT_UNIX_SOCKET_PATH, d->socket);
  curl_easy_setopt(d->curl, CURLOPT_URL, kiln_buf_str(url));
  curl_easy_setopt(d->curl, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(d->curl, CURLOPT_HEADERDATA, d);
  curl_easy_setopt(d->curl, CURLOPT_CONNECTTIMEOUT, 10L);
}

kiln_err img_daemon_transfer_error(const struct img_daemon *d, CURLcode cc, struct kiln_error *err)
{
  struct stat st;
  if (d->socket && cc == CURLE_COULDNT_CONNECT) {
    if (stat(d->socket, &st) != 0)
      return kiln_error_set(err, KILN_E_NETWORK,
                            "cannot talk to the Docker daemon at %s: %s does not exist, so the "
                            "daemon is not running (start it: sudo systemctl start docker, or "
                            "run dockerd), or set DOCKER_HOST=unix:///path/to/docker.sock",
                            d->host_text, d->socket);
    if (access(d->socket, R_OK | W_OK) != 0 && errno == EACCES) {
      struct group *g = getgrgid(st.st_gid);
      const char *group = g ? g->gr_name : "the socket's group";
      return kiln_error_set(err, KILN_E_AUTH,
                            "cannot talk to the Docker daemon at %s: permission denied on %s "
                            "(group %s, mode %04o); add your user to that group: sudo usermod "
                            "-aG %s $USER, then log in again",
                            d->host_text, d->socket, group, (unsigned)(st.st_mode & 07777), group);
    }
    return kiln_error_set(err, KILN_E_NETWORK,
                          "cannot talk to the Docker daemon at %s: nothing answers on %s, so "
                          "the daemon is not running (start it: sudo systemctl start docker, or "
                          "run dockerd)",
                          d->host_text, d->socket);
  }
  return kiln_error_set(err, KILN_E_NETWORK,
                        "cannot talk to the Docker daemon at %s: %s (is it running? set "
                        "DOCKER_HOST=unix:///path/to/docker.sock)",
                        d->host_text, curl_easy_strerror(cc));
}

/* GET path; the body goes to file (when the answer is 200) or into s->body. */
static kiln_err daemon_get(struct img_daemon *d, const char *path, FILE *file, long *status,
                           struct sink *s, struct kiln_error *err)
{
  struct kiln_buf url = KILN_BUF_INIT;
  img_daemon_prepare(d, path, &url);
  s->file = file;
  curl_easy_setopt(d->curl, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(d->curl, CURLOPT_WRITEDATA, s);
  curl_easy_setopt(d->curl, CURLOPT_FAILONERROR, file ? 1L : 0L);
  CURLcode cc = curl_easy_perform(d->curl);
  *status = 0;
  curl_easy_getinfo(d->curl, CURLINFO_RESPONSE_CODE, status);
  kiln_buf_free(&url);
  if (cc == CURLE_HTTP_RETURNED_ERROR)
    return KILN_OK; /* status tells */
  if (cc != CURLE_OK)
    return img_daemon_transfer_error(d, cc, err);
  return KILN_OK;
}

/* min(server's API-Version, ours), as "/v1.NN". */
static void negotiate(struct img_daemon *d)
{
  int major = 0, minor = 0;
  d->version[0] = '\0';
  if (d->api_version_hdr && sscanf(d->api_version_hdr, "%d.%d", &major, &minor) == 2 &&
      major == 1) {
    if (minor > DAEMON_MAX_API_MINOR)
      minor = DAEMON_MAX_API_MINOR;
    snprintf(d->version, sizeof(d->version), "/v1.%d", minor);
  }
}

kiln_err img_daemon_open(struct img_daemon *d, struct kiln_error *err)
{
  const char *host = getenv("DOCKER_HOST");
  struct kiln_buf b = KILN_BUF_INIT;
  memset(d, 0, sizeof(*d));
  if (!host || !*host)
    host = "unix:///var/run/docker.sock";
  d->host_text = host;
  if (strncmp(host, "unix://", 7) == 0) {
    d->socket = strdup(host + 7);
    d->base = strdup("http://docker");
  } else if (strncmp(host, "tcp://", 6) == 0) {
    kiln_buf_printf(&b, "http://%s", host + 6);
    d->base = kiln_buf_detach(&b);
  } else {
    return kiln_error_set(err, KILN_E_UNSUPPORTED,
                          "DOCKER_HOST=%s: only unix:// and tcp:// daemons are supported", host);
  }
  if (!(d->curl = curl_easy_init()) || !d->base)
    return kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  struct sink s = {.body = KILN_BUF_INIT};
  long status;
  kiln_err rc = daemon_get(d, "/_ping", NULL, &status, &s, err);
  kiln_buf_free(&s.body);
  if (rc)
    return rc;
  if (status != 200)
    return kiln_error_set(err, KILN_E_REMOTE,
                          "the Docker daemon at %s answered _ping with HTTP %ld", host, status);
  negotiate(d);
  return KILN_OK;
}

void img_daemon_close(struct img_daemon *d)
{
  if (d->curl)
    curl_easy_cleanup(d->curl);
  free(d->socket);
  free(d->base);
  free(d->api_version_hdr);
  memset(d, 0, sizeof(*d));
}

/* GET /images/{name}/json: *inspect (caller frees) or KILN_E_NOT_FOUND without a message. */
static kiln_err daemon_inspect(struct img_daemon *d, const char *name, cJSON **inspect,
                               struct kiln_error *err)
{
  struct sink s = {.body = KILN_BUF_INIT};
  struct kiln_buf path = KILN_BUF_INIT;
  long status = 0;
  char *escaped = curl_easy_escape(d->curl, name, 0);
  kiln_err rc = escaped ? KILN_OK : kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  if (!rc) {
    kiln_buf_printf(&path, "/images/%s/json", escaped);
    rc = daemon_get(d, path.data, NULL, &status, &s, err);
  }
  if (!rc && status == 404)
    rc = KILN_E_NOT_FOUND;
  else if (!rc && (status != 200 || (rc = kiln_json_parse(kiln_buf_str(&s.body), s.body.len,
                                                          "image inspect", inspect, err)))) {
    if (!rc)
      rc = kiln_error_set(err, KILN_E_REMOTE, "inspecting %s failed: HTTP %ld %s", name, status,
                          kiln_buf_str(&s.body));
  }
  curl_free(escaped);
  kiln_buf_free(&s.body);
  kiln_buf_free(&path);
  return rc;
}

kiln_err img_daemon_image_id(struct img_daemon *d, const char *name, char **id,
                             struct kiln_error *err)
{
  cJSON *inspect = NULL;
  *id = NULL;
  kiln_err rc = daemon_inspect(d, name, &inspect, err);
  if (rc)
    return rc;
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(inspect, "Id");
  if (!cJSON_IsString(v) || !(*id = strdup(v->valuestring)))
    rc = kiln_error_set(err, KILN_E_REMOTE, "inspecting %s: the answer has no Id", name);
  cJSON_Delete(inspect);
  return rc;
}

kiln_err img_daemon_export(const char *name, const struct img_source_env *env, char **tar_path,
                           char **image_id, struct kiln_error *err)
{
  kiln_err rc;
  struct img_daemon d;
  struct sink s = {.body = KILN_BUF_INIT};
  struct kiln_buf path = KILN_BUF_INIT, file = KILN_BUF_INIT;
  char *escaped = NULL;
  FILE *f = NULL;
  long status = 0;
  if (tar_path)
    *tar_path = NULL;
  *image_id = NULL;
  if ((rc = img_daemon_open(&d, err)))
    goto out;
  if ((rc = img_daemon_image_id(&d, name, image_id, err)) == KILN_E_NOT_FOUND)
    rc = kiln_error_set(err, KILN_E_NOT_FOUND,
                        "the Docker daemon has no image \"%s\" (docker pull or docker build it "
                        "first, or use docker://%s to pull without a daemon)",
                        name, name);
  if (rc || !tar_path)
    goto out;
  if (!(escaped = curl_easy_escape(d.curl, name, 0))) {
    rc = kiln_error_set(err, KILN_E_NOMEM, "out of memory");
    goto out;
  }
  kiln_buf_printf(&file, "%s/daemon-export.tar", env->temp_dir);
  if (!(f = fopen(file.data, "wb"))) {
    rc = kiln_error_set(err, KILN_E_IO, "cannot create %s", file.data);
    goto out;
  }
  kiln_buf_printf(&path, "/images/%s/get", escaped);
  if (env->log)
    env->log(env->log_ctx, "exporting %s%s%s%s from the Docker daemon", name,
             strcmp(name, *image_id) ? " (" : "", strcmp(name, *image_id) ? *image_id : "",
             strcmp(name, *image_id) ? ")" : "");
  rc = daemon_get(&d, path.data, f, &status, &s, err);
  if (fclose(f) != 0 && !rc)
    rc = kiln_error_set(err, KILN_E_IO, "writing %s failed (disk full?)", file.data);
  f = NULL;
  if (!rc && status != 200)
    rc = kiln_error_set(err, KILN_E_REMOTE, "exporting %s from the daemon failed: HTTP %ld", name,
                        status);
  if (rc) {
    unlink(file.data);
    goto out;
  }
  *tar_path = kiln_buf_detach(&file);
out:
  if (f)
    fclose(f);
  curl_free(escaped);
  kiln_buf_free(&s.body);
  kiln_buf_free(&path);
  kiln_buf_free(&file);
  img_daemon_close(&d);
  return rc;
}
