/* HTTP for registry pulls: one libcurl handle per pull, bearer/basic auth from WWW-Authenticate
 * challenges, retries with backoff on 429/5xx/resets, and blob downloads that resume with Range
 * and hash while streaming. libcurl drops our Authorization header on redirects to another host. */
#include <curl/curl.h>
#include <errno.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "registry.h"
#include "util/hash.h"
#include "util/json.h"

#define REG_MAX_ATTEMPTS 5
#define REG_MAX_SMALL (4u << 20)

struct reg_resp {
  struct reg *r;
  long status;
  struct kiln_buf body; /* small responses and error bodies */
  FILE *sink;           /* blob file, or NULL */
  uint64_t resume_from; /* bytes already in sink when the request was sent */
  int sink_checked;
  EVP_MD_CTX *sha;
  char *content_type, *docker_digest, *www_auth;
  int too_big;
};

static void resp_reset_headers(struct reg_resp *x)
{
  free(x->content_type);
  free(x->docker_digest);
  free(x->www_auth);
  x->content_type = x->docker_digest = x->www_auth = NULL;
}

static char *header_value(const char *line, size_t len, const char *name)
{
  size_t nl = strlen(name);
  if (len <= nl + 1 || strncasecmp(line, name, nl) != 0 || line[nl] != ':')
    return NULL;
  const char *v = line + nl + 1;
  const char *end = line + len;
  while (v < end && (*v == ' ' || *v == '\t'))
    v++;
  while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
    end--;
  return strndup(v, (size_t)(end - v));
}

static size_t on_header(char *p, size_t sz, size_t n, void *ud)
{
  struct reg_resp *x = ud;
  size_t len = sz * n;
  char *v;
  if (len >= 5 && strncmp(p, "HTTP/", 5) == 0)
    resp_reset_headers(x); /* a new response (after a redirect or 100) */
  else if ((v = header_value(p, len, "Content-Type")))
    free(x->content_type), x->content_type = v;
  else if ((v = header_value(p, len, "Docker-Content-Digest")))
    free(x->docker_digest), x->docker_digest = v;
  else if ((v = header_value(p, len, "WWW-Authenticate")))
    free(x->www_auth), x->www_auth = v;
  return len;
}

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
  struct reg_resp *x = ud;
  size_t len = sz * n;
  long code = 0;
  curl_easy_getinfo(x->r->curl, CURLINFO_RESPONSE_CODE, &code);
  if (x->sink && code / 100 == 2) {
    if (!x->sink_checked) {
      x->sink_checked = 1;
      if (code == 200 && x->resume_from > 0) { /* the server ignored Range: start over */
        if (ftruncate(fileno(x->sink), 0) != 0 || fseek(x->sink, 0, SEEK_SET) != 0)
          return 0;
        EVP_DigestInit_ex(x->sha, EVP_sha256(), NULL);
        x->resume_from = 0;
      }
    }
    if (fwrite(p, 1, len, x->sink) != len)
      return 0;
    EVP_DigestUpdate(x->sha, p, len);
    return len;
  }
  if (x->body.len + len > REG_MAX_SMALL) {
    x->too_big = 1;
    return 0;
  }
  return kiln_buf_append(&x->body, p, len) ? 0 : len;
}

static void backoff(int attempt)
{
  struct timespec ts = {0, 200000000L};
  for (int i = 0; i < attempt; i++) {
    ts.tv_nsec *= 2;
    if (ts.tv_nsec >= 1000000000L) {
      ts.tv_sec += ts.tv_nsec / 1000000000L;
      ts.tv_nsec %= 1000000000L;
    }
  }
  nanosleep(&ts, NULL);
}

/* Parse `Bearer realm="...",service="...",scope="..."`: value of key, or NULL (caller frees). */
static char *challenge_param(const char *ch, const char *key)
{
  size_t kl = strlen(key);
  const char *p = ch;
  while ((p = strstr(p, key))) {
    if ((p == ch || p[-1] == ' ' || p[-1] == ',') && p[kl] == '=') {
      p += kl + 1;
      if (*p == '"') {
        const char *end = strchr(p + 1, '"');
        return end ? strndup(p + 1, (size_t)(end - p - 1)) : NULL;
      }
      return strndup(p, strcspn(p, ","));
    }
    p += kl;
  }
  return NULL;
}

static kiln_err fetch_token(struct reg *r, const char *challenge, struct kiln_error *err)
{
  kiln_err rc = KILN_OK;
  char *realm = challenge_param(challenge, "realm"),
       *service = challenge_param(challenge, "service");
  char *scope = challenge_param(challenge, "scope");
  struct kiln_buf url = KILN_BUF_INIT, hdr = KILN_BUF_INIT;
  struct reg_resp x = {.r = r};
  struct curl_slist *h = NULL;
  cJSON *doc = NULL;
  if (!realm || strncmp(realm, "http", 4) != 0) {
    rc = kiln_error_set(err, KILN_E_REMOTE, "registry %s sent a bearer challenge without a realm",
                        r->host);
    goto out;
  }
  kiln_buf_printf(&url, "%s%s", realm, strchr(realm, '?') ? "&" : "?");
  if (service) {
    char *e = curl_easy_escape(r->curl, service, 0);
    kiln_buf_printf(&url, "service=%s&", e);
    curl_free(e);
  }
  if (scope) {
    char *e = curl_easy_escape(r->curl, scope, 0);
    kiln_buf_printf(&url, "scope=%s", e);
    curl_free(e);
  }
  if (r->basic) {
    kiln_buf_printf(&hdr, "Authorization: Basic %s", r->basic);
    h = curl_slist_append(h, hdr.data);
  }
  curl_easy_reset(r->curl);
  curl_easy_setopt(r->curl, CURLOPT_URL, url.data);
  curl_easy_setopt(r->curl, CURLOPT_HTTPHEADER, h);
  curl_easy_setopt(r->curl, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(r->curl, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(r->curl, CURLOPT_WRITEDATA, &x);
  curl_easy_setopt(r->curl, CURLOPT_CONNECTTIMEOUT, 30L);
  CURLcode cc = curl_easy_perform(r->curl);
  curl_easy_getinfo(r->curl, CURLINFO_RESPONSE_CODE, &x.status);
  if (cc != CURLE_OK) {
    rc = kiln_error_set(err, KILN_E_NETWORK, "token request to %s failed: %s", realm,
                        curl_easy_strerror(cc));
    goto out;
  }
  if (x.status == 401 || x.status == 403) {
    rc = kiln_error_set(err, KILN_E_AUTH,
                        "the token service %s refused the %s for %s (HTTP %ld); check the "
                        "credentials for %s in ~/.docker/config.json (or $DOCKER_CONFIG)",
                        realm, r->basic ? "credentials" : "anonymous request", r->repo, x.status,
                        r->host);
    goto out;
  }
  const cJSON *tok;
  struct kiln_error jerr = KILN_ERROR_INIT;
  if (x.status != 200 || kiln_json_parse(kiln_buf_str(&x.body), x.body.len, "token", &doc, &jerr) ||
      !(cJSON_IsString(tok = cJSON_GetObjectItemCaseSensitive(doc, "token")) ||
        cJSON_IsString(tok = cJSON_GetObjectItemCaseSensitive(doc, "access_token")))) {
    kiln_error_clear(&jerr);
    rc = kiln_error_set(err, KILN_E_REMOTE,
                        "the token service %s answered HTTP %ld without a token", realm, x.status);
    goto out;
  }
  free(r->auth);
  struct kiln_buf a = KILN_BUF_INIT;
  kiln_buf_printf(&a, "Authorization: Bearer %s", tok->valuestring);
  r->auth = kiln_buf_detach(&a);
out:
  cJSON_Delete(doc);
  curl_slist_free_all(h);
  kiln_buf_free(&x.body);
  resp_reset_headers(&x);
  kiln_buf_free(&url);
  kiln_buf_free(&hdr);
  free(realm);
  free(service);
  free(scope);
  return rc;
}

/* One GET of url into x (headers reset, Range when resuming into sink); the curl result. */
static CURLcode perform_once(struct reg *r, struct reg_resp *x, const char *url, const char *accept,
                             FILE *sink)
{
  struct curl_slist *h = NULL;
  char range[64];
  kiln_buf_reset(&x->body);
  resp_reset_headers(x);
  x->sink_checked = 0;
  x->too_big = 0;
  if (accept) {
    struct kiln_buf a = KILN_BUF_INIT;
    kiln_buf_printf(&a, "Accept: %s", accept);
    h = curl_slist_append(h, a.data);
    kiln_buf_free(&a);
  }
  if (r->auth)
    h = curl_slist_append(h, r->auth);
  curl_easy_reset(r->curl);
  if (sink) {
    fflush(sink);
    long pos = ftell(sink);
    x->resume_from = pos > 0 ? (uint64_t)pos : 0;
    if (x->resume_from) {
      snprintf(range, sizeof(range), "%llu-", (unsigned long long)x->resume_from);
      curl_easy_setopt(r->curl, CURLOPT_RANGE, range);
    }
  }
  curl_easy_setopt(r->curl, CURLOPT_URL, url);
  curl_easy_setopt(r->curl, CURLOPT_HTTPHEADER, h);
  curl_easy_setopt(r->curl, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(r->curl, CURLOPT_MAXREDIRS, 10L);
  curl_easy_setopt(r->curl, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(r->curl, CURLOPT_HEADERDATA, x);
  curl_easy_setopt(r->curl, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(r->curl, CURLOPT_WRITEDATA, x);
  curl_easy_setopt(r->curl, CURLOPT_CONNECTTIMEOUT, 30L);
  curl_easy_setopt(r->curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(r->curl, CURLOPT_LOW_SPEED_TIME, 60L);
  CURLcode cc = curl_easy_perform(r->curl);
  curl_slist_free_all(h);
  x->status = 0;
  curl_easy_getinfo(r->curl, CURLINFO_RESPONSE_CODE, &x->status);
  return cc;
}

/* The answer of a finished GET: status errors, the digest (of the body or of what went into
 * sink) checked against want_digest and Docker-Content-Digest, then the result. */
static kiln_err finish(struct reg *r, struct reg_resp *x, const char *path, const char *url,
                       FILE *sink, const char *want_digest, struct reg_result *out,
                       struct kiln_error *err)
{
  if (x->status == 401 || x->status == 403) {
    return kiln_error_set(err, KILN_E_AUTH,
                          "registry %s denied access to %s (HTTP %ld); log in (credentials in "
                          "~/.docker/config.json or $DOCKER_CONFIG) or check the name",
                          r->host, r->repo, x->status);
  }
  if (x->status == 404)
    return kiln_error_set(err, KILN_E_NOT_FOUND, "%s: not found on registry %s (HTTP 404)", path,
                          r->host);
  if (x->status / 100 != 2)
    return kiln_error_set(err, KILN_E_REMOTE, "%s: HTTP %ld", url, x->status);
  unsigned char md[32];
  char hex[KILN_SHA256_HEX_LEN + 1];
  if (sink) {
    fflush(sink);
    if (ferror(sink)) {
      return kiln_error_set(err, KILN_E_IO, "writing %s failed", path);
    }
    EVP_DigestFinal_ex(x->sha, md, NULL);
    kiln_hex_encode(md, 32, hex);
  } else {
    kiln_sha256_hex(kiln_buf_str(&x->body), x->body.len, hex);
  }
  kiln_sha256_digest(hex, out->digest);
  if (want_digest && strcmp(want_digest, out->digest) != 0)
    return kiln_error_set(err, KILN_E_INVALID, "%s: digest mismatch: expected %s, got %s", path,
                          want_digest, out->digest);
  if (x->docker_digest && kiln_digest_is_sha256(x->docker_digest) && !sink &&
      strcmp(x->docker_digest, out->digest) != 0)
    return kiln_error_set(err, KILN_E_INVALID,
                          "%s: Docker-Content-Digest %s does not match the content (%s)", path,
                          x->docker_digest, out->digest);
  out->len = x->body.len;
  out->body = kiln_buf_detach(&x->body);
  out->content_type = x->content_type;
  x->content_type = NULL;
  return KILN_OK;
}

kiln_err reg_get(struct reg *r, const char *path, const char *accept, FILE *sink,
                 const char *want_digest, struct reg_result *out, struct kiln_error *err)
{
  kiln_err rc = KILN_OK;
  struct reg_resp x = {.r = r, .sink = sink};
  struct kiln_buf url = KILN_BUF_INIT;
  int auth_tried = 0;
  memset(out, 0, sizeof(*out));
  if (sink && (!(x.sha = EVP_MD_CTX_new()) || !EVP_DigestInit_ex(x.sha, EVP_sha256(), NULL))) {
    rc = kiln_error_set(err, KILN_E_NOMEM, "out of memory");
    goto out;
  }
  kiln_buf_printf(&url, "%s%s", r->base, path);
  for (int attempt = 0;; attempt++) {
    CURLcode cc = perform_once(r, &x, url.data, accept, sink);
    if (x.too_big) {
      rc = kiln_error_set(err, KILN_E_REMOTE, "%s: response larger than %u bytes", url.data,
                          REG_MAX_SMALL);
      goto out;
    }
    if (cc != CURLE_OK || x.status == 429 || x.status >= 500) {
      if (attempt + 1 < REG_MAX_ATTEMPTS) {
        if (r->log)
          r->log(r->log_ctx, "%s: %s; retrying (%d/%d)", url.data,
                 cc != CURLE_OK ? curl_easy_strerror(cc) : "server error", attempt + 1,
                 REG_MAX_ATTEMPTS - 1);
        backoff(attempt);
        continue;
      }
      if (cc != CURLE_OK)
        rc = kiln_error_set(err, KILN_E_NETWORK, "%s: %s (after %d attempts)", url.data,
                            curl_easy_strerror(cc), REG_MAX_ATTEMPTS);
      else
        rc = kiln_error_set(err, KILN_E_REMOTE, "%s: HTTP %ld (after %d attempts)", url.data,
                            x.status, REG_MAX_ATTEMPTS);
      goto out;
    }
    if (x.status == 401 && !auth_tried && x.www_auth) {
      auth_tried = 1;
      if (strncasecmp(x.www_auth, "Bearer", 6) == 0) {
        if ((rc = fetch_token(r, x.www_auth, err)))
          goto out;
      } else if (r->basic) {
        struct kiln_buf a = KILN_BUF_INIT;
        kiln_buf_printf(&a, "Authorization: Basic %s", r->basic);
        free(r->auth);
        r->auth = kiln_buf_detach(&a);
      }
      if (r->auth) {
        attempt--;
        continue;
      }
    }
    break;
  }
  rc = finish(r, &x, path, url.data, sink, want_digest, out, err);
out:
  kiln_buf_free(&x.body);
  resp_reset_headers(&x);
  EVP_MD_CTX_free(x.sha);
  kiln_buf_free(&url);
  return rc;
}

void reg_result_clear(struct reg_result *res)
{
  free(res->body);
  free(res->content_type);
  memset(res, 0, sizeof(*res));
}
