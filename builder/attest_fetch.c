/* libcurl GET of an attestation endpoint: bounded time and size, no redirects, HTTP(S) only,
 * and an error for every way the answer can be something other than a document. */
#include "attest_fetch.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include <kiln/kiln.h>

struct sink {
  struct kiln_buf *body;
  size_t max;
  int too_big;
};

static size_t on_data(char *data, size_t size, size_t n, void *arg)
{
  struct sink *s = arg;
  size_t len = size * n;
  if (s->body->len + len > s->max) {
    s->too_big = 1;
    return 0; /* abort the transfer */
  }
  return kiln_buf_append(s->body, data, len) == KILN_OK ? len : 0;
}

/* The first line of a server's error body, printable characters only, at most 200 of them. */
static void reason_text(const struct kiln_buf *body, char *out, size_t size)
{
  size_t j = 0;
  for (size_t i = 0; i < body->len && j + 1 < size && j < 200; i++) {
    unsigned char c = (unsigned char)body->data[i];
    if (c == '\n' || c == '\r')
      break;
    out[j++] = isprint(c) ? (char)c : '?';
  }
  out[j] = '\0';
  if (j == 0)
    snprintf(out, size, "(no reason given)");
}

static int cbor_content_type(const char *type)
{
  if (!type)
    return 0;
  size_t n = strcspn(type, "; ");
  return (n == 16 && strncasecmp(type, "application/cbor", n) == 0) ||
         (n == 24 && strncasecmp(type, "application/octet-stream", n) == 0);
}

static kiln_err transfer_error(CURLcode code, const char *url, long timeout_s, const struct sink *s,
                               const char *detail, struct kiln_error *err)
{
  if (s->too_big)
    return kiln_error_set(err, KILN_E_INVALID,
                          "%s: the answer is larger than %zu bytes, the limit of an attestation "
                          "document",
                          url, s->max);
  if (code == CURLE_OPERATION_TIMEDOUT)
    return kiln_error_set(err, KILN_E_NETWORK,
                          "%s did not answer within %ld s (a slow or stuck endpoint; --timeout "
                          "SECONDS waits longer)",
                          url, timeout_s);
  if (code == CURLE_COULDNT_CONNECT || code == CURLE_COULDNT_RESOLVE_HOST)
    return kiln_error_set(err, KILN_E_NETWORK,
                          "cannot reach %s: %s (is kiln-host running there and the attestation "
                          "port open in the security group?)",
                          url, detail[0] ? detail : curl_easy_strerror(code));
  return kiln_error_set(err, KILN_E_NETWORK, "fetching %s failed: %s", url,
                        detail[0] ? detail : curl_easy_strerror(code));
}

kiln_err kiln_attest_fetch(const char *url, const char *nonce_hex, long timeout_s, size_t max_bytes,
                           struct kiln_buf *out, struct kiln_error *err)
{
  struct kiln_buf full = KILN_BUF_INIT, agent = KILN_BUF_INIT;
  struct sink s = {out, max_bytes, 0};
  char detail[CURL_ERROR_SIZE] = "";
  kiln_err rc = KILN_OK;
  CURL *curl = curl_easy_init();
  if (!curl ||
      kiln_buf_printf(&full, "%s%cnonce=%s", url, strchr(url, '?') ? '&' : '?', nonce_hex) !=
          KILN_OK ||
      kiln_buf_printf(&agent, "kiln/%s", kiln_version()) != KILN_OK) {
    rc = kiln_error_set(err, KILN_E_NOMEM, "out of memory");
    goto out;
  }
  curl_easy_setopt(curl, CURLOPT_URL, full.data);
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, timeout_s);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, timeout_s);
  curl_easy_setopt(curl, CURLOPT_USERAGENT, agent.data);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, detail);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_data);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &s);
  CURLcode code = curl_easy_perform(curl);
  if (code != CURLE_OK) {
    rc = transfer_error(code, url, timeout_s, &s, detail, err);
    goto out;
  }
  long status = 0;
  char *type = NULL;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_getinfo(curl, CURLINFO_CONTENT_TYPE, &type);
  char reason[256];
  reason_text(out, reason, sizeof reason);
  if (status == 503)
    rc = kiln_error_set(err, KILN_E_REMOTE,
                        "%s answered 503 Service Unavailable: %s (the enclave cannot attest; "
                        "e.g. no NSM device)",
                        url, reason);
  else if (status != 200)
    rc = kiln_error_set(err, KILN_E_REMOTE, "%s answered HTTP %ld: %s", url, status, reason);
  else if (!cbor_content_type(type))
    rc = kiln_error_set(err, KILN_E_INVALID,
                        "%s answered Content-Type %s, expected application/cbor (is this an "
                        "attestation endpoint?)",
                        url, type ? type : "(none)");
out:
  if (rc)
    kiln_buf_reset(out);
  curl_easy_cleanup(curl);
  kiln_buf_free(&full);
  kiln_buf_free(&agent);
  return rc;
}
