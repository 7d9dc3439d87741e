/* AWS Signature Version 4 (header signing and presigned URLs) with HMAC-SHA256 from OpenSSL. */
#include "sigv4.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "util/buf.h"

#define SIGV4_ALGORITHM "AWS4-HMAC-SHA256"

void kiln_aws_credentials_clear(struct kiln_aws_credentials *c)
{
  if (!c)
    return;
  if (c->secret_access_key)
    OPENSSL_cleanse(c->secret_access_key, strlen(c->secret_access_key));
  if (c->session_token)
    OPENSSL_cleanse(c->session_token, strlen(c->session_token));
  free(c->access_key_id);
  free(c->secret_access_key);
  free(c->session_token);
  memset(c, 0, sizeof(*c));
}

kiln_err kiln_aws_credentials_copy(struct kiln_aws_credentials *dst,
                                   const struct kiln_aws_credentials *src)
{
  memset(dst, 0, sizeof(*dst));
  dst->access_key_id = src->access_key_id ? strdup(src->access_key_id) : NULL;
  dst->secret_access_key = src->secret_access_key ? strdup(src->secret_access_key) : NULL;
  dst->session_token = src->session_token ? strdup(src->session_token) : NULL;
  dst->expires = src->expires;
  memcpy(dst->source, src->source, sizeof(dst->source));
  if ((src->access_key_id && !dst->access_key_id) ||
      (src->secret_access_key && !dst->secret_access_key) ||
      (src->session_token && !dst->session_token)) {
    kiln_aws_credentials_clear(dst);
    return KILN_E_NOMEM;
  }
  return KILN_OK;
}

void kiln_sigv4_result_clear(struct kiln_sigv4_result *r)
{
  if (!r)
    return;
  free(r->canonical_request);
  free(r->string_to_sign);
  for (size_t i = 0; i < r->nadd_headers; i++)
    free((char *)r->add_headers[i].value);
  free(r->query);
  memset(r, 0, sizeof(*r));
}

static int is_unreserved(unsigned char c)
{
  return isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~';
}

kiln_err kiln_aws_uri_encode(struct kiln_buf *out, const char *s, size_t len, int keep_slash)
{
  static const char hex[] = "0123456789ABCDEF";
  if (kiln_buf_reserve(out, len * 3) != KILN_OK)
    return KILN_E_NOMEM;
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if (is_unreserved(c) || (keep_slash && c == '/')) {
      out->data[out->len++] = (char)c;
    } else {
      out->data[out->len++] = '%';
      out->data[out->len++] = hex[c >> 4];
      out->data[out->len++] = hex[c & 15];
    }
  }
  out->data[out->len] = '\0';
  return KILN_OK;
}

static int hex_value(char c)
{
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

char *kiln_aws_uri_decode(const char *s, size_t len)
{
  char *out = malloc(len + 1);
  size_t n = 0;
  if (!out)
    return NULL;
  for (size_t i = 0; i < len; i++) {
    if (s[i] != '%') {
      out[n++] = s[i];
      continue;
    }
    int hi = i + 1 < len ? hex_value(s[i + 1]) : -1;
    int lo = i + 2 < len ? hex_value(s[i + 2]) : -1;
    if (hi < 0 || lo < 0) {
      free(out);
      return NULL;
    }
    out[n++] = (char)(hi * 16 + lo);
    i += 2;
  }
  out[n] = '\0';
  return out;
}

void kiln_aws_amz_date(time_t t, char out[17])
{
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
}

static void to_hex(const unsigned char *in, size_t len, char *out)
{
  static const char hex[] = "0123456789abcdef";
  for (size_t i = 0; i < len; i++) {
    out[2 * i] = hex[in[i] >> 4];
    out[2 * i + 1] = hex[in[i] & 15];
  }
  out[2 * len] = '\0';
}

void kiln_aws_sha256_hex(const void *data, size_t len, char out[65])
{
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(data, len, md);
  to_hex(md, sizeof(md), out);
}

static void hmac_sha256(const void *key, size_t key_len, const char *msg, unsigned char out[32])
{
  unsigned int out_len = 32;
  HMAC(EVP_sha256(), key, (int)key_len, (const unsigned char *)msg, strlen(msg), out, &out_len);
}

/* Remove "." and ".." segments and empty segments, keeping a trailing slash (RFC 3986 style as the
 * SigV4 suite expects). */
static kiln_err normalize_path(const char *path, struct kiln_buf *out)
{
  size_t len = strlen(path);
  const char **segs = calloc(len + 1, sizeof(*segs));
  size_t *lens = calloc(len + 1, sizeof(*lens));
  size_t n = 0;
  kiln_err rc = KILN_E_NOMEM;
  if (!segs || !lens)
    goto out;
  for (size_t i = 0; i < len;) {
    while (i < len && path[i] == '/')
      i++;
    size_t start = i;
    while (i < len && path[i] != '/')
      i++;
    size_t seg_len = i - start;
    if (seg_len == 0 || (seg_len == 1 && path[start] == '.'))
      continue;
    if (seg_len == 2 && path[start] == '.' && path[start + 1] == '.') {
      if (n > 0)
        n--;
      continue;
    }
    segs[n] = path + start;
    lens[n++] = seg_len;
  }
  rc = kiln_buf_putc(out, '/');
  for (size_t i = 0; i < n && rc == KILN_OK; i++) {
    rc = kiln_buf_append(out, segs[i], lens[i]);
    if (rc == KILN_OK && i + 1 < n)
      rc = kiln_buf_putc(out, '/');
  }
  /* A trailing slash (or a trailing "." / ".." segment that names a directory) stays. */
  if (rc == KILN_OK && n > 0 && len > 0 && path[len - 1] == '/')
    rc = kiln_buf_putc(out, '/');
out:
  free(segs);
  free(lens);
  return rc;
}

struct sorted_pair {
  char *name; /* canonical form (lower-cased header name or encoded query name) */
  char *value;
};

static int compare_pairs(const void *a, const void *b)
{
  const struct sorted_pair *x = a, *y = b;
  int c = strcmp(x->name, y->name);
  return c ? c : strcmp(x->value, y->value);
}

static void free_pairs(struct sorted_pair *p, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    free(p[i].name);
    free(p[i].value);
  }
  free(p);
}

/* Trim and collapse runs of whitespace (including folded line breaks) to one space. */
static char *canonical_header_value(const char *v)
{
  size_t len = strlen(v);
  char *out = malloc(len + 1);
  size_t n = 0;
  int pending_space = 0;
  if (!out)
    return NULL;
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)v[i];
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
      pending_space = n > 0;
      continue;
    }
    if (pending_space)
      out[n++] = ' ';
    pending_space = 0;
    out[n++] = (char)c;
  }
  out[n] = '\0';
  return out;
}

/* Canonical headers block and signed header list; duplicate names join their values with ",". */
static kiln_err canonical_headers(const struct kiln_aws_pair *h, size_t n, struct kiln_buf *block,
                                  struct kiln_buf *signed_names)
{
  struct sorted_pair *p = calloc(n ? n : 1, sizeof(*p));
  kiln_err rc = KILN_E_NOMEM;
  if (!p)
    return KILN_E_NOMEM;
  for (size_t i = 0; i < n; i++) {
    p[i].name = strdup(h[i].name);
    p[i].value = canonical_header_value(h[i].value);
    if (!p[i].name || !p[i].value)
      goto out;
    for (char *c = p[i].name; *c; c++)
      *c = (char)tolower((unsigned char)*c);
  }
  /* Stable order by name only: duplicates keep the order they were given in. */
  for (size_t i = 1; i < n; i++) {
    struct sorted_pair key = p[i];
    size_t j = i;
    while (j > 0 && strcmp(p[j - 1].name, key.name) > 0) {
      p[j] = p[j - 1];
      j--;
    }
    p[j] = key;
  }
  rc = KILN_OK;
  for (size_t i = 0; i < n && rc == KILN_OK; i++) {
    int same_as_previous = i > 0 && strcmp(p[i - 1].name, p[i].name) == 0;
    if (same_as_previous) {
      block->len--; /* replace the previous line's '\n' with a comma */
      rc = kiln_buf_printf(block, ",%s\n", p[i].value);
      continue;
    }
    rc = kiln_buf_printf(block, "%s:%s\n", p[i].name, p[i].value);
    if (rc == KILN_OK)
      rc = kiln_buf_printf(signed_names, "%s%s", signed_names->len ? ";" : "", p[i].name);
  }
out:
  free_pairs(p, n);
  return rc;
}

static kiln_err canonical_query(const struct kiln_aws_pair *q, size_t n, struct kiln_buf *out)
{
  struct sorted_pair *p = calloc(n ? n : 1, sizeof(*p));
  kiln_err rc = KILN_E_NOMEM;
  if (!p)
    return KILN_E_NOMEM;
  for (size_t i = 0; i < n; i++) {
    struct kiln_buf name = KILN_BUF_INIT, value = KILN_BUF_INIT;
    const char *v = q[i].value ? q[i].value : "";
    if (kiln_aws_uri_encode(&name, q[i].name, strlen(q[i].name), 0) != KILN_OK ||
        kiln_aws_uri_encode(&value, v, strlen(v), 0) != KILN_OK) {
      kiln_buf_free(&name);
      kiln_buf_free(&value);
      goto out;
    }
    p[i].name = kiln_buf_detach(&name);
    p[i].value = kiln_buf_detach(&value);
    if (!p[i].name || !p[i].value)
      goto out;
  }
  if (n > 1)
    qsort(p, n, sizeof(*p), compare_pairs);
  rc = KILN_OK;
  for (size_t i = 0; i < n && rc == KILN_OK; i++)
    rc = kiln_buf_printf(out, "%s%s=%s", i ? "&" : "", p[i].name, p[i].value);
out:
  free_pairs(p, n);
  return rc;
}

static kiln_err canonical_uri(const char *path, int normalize, struct kiln_buf *out)
{
  struct kiln_buf normalized = KILN_BUF_INIT;
  const char *src = path && *path ? path : "/";
  kiln_err rc = KILN_OK;
  if (normalize) {
    rc = normalize_path(src, &normalized);
    src = kiln_buf_str(&normalized);
  }
  if (rc == KILN_OK)
    rc = kiln_aws_uri_encode(out, src, strlen(src), 1);
  kiln_buf_free(&normalized);
  return rc;
}

/* The derived signing key for date/region/service. */
static void signing_key(const char *secret, const char *date8, const char *region,
                        const char *service, unsigned char key[32])
{
  size_t secret_len = strlen(secret);
  char *k = malloc(secret_len + 5);
  unsigned char a[32], b[32], c[32];
  if (!k) {
    memset(key, 0, 32);
    return;
  }
  memcpy(k, "AWS4", 4);
  memcpy(k + 4, secret, secret_len + 1);
  hmac_sha256(k, secret_len + 4, date8, a);
  OPENSSL_cleanse(k, secret_len + 4);
  free(k);
  hmac_sha256(a, 32, region, b);
  hmac_sha256(b, 32, service, c);
  hmac_sha256(c, 32, "aws4_request", key);
  OPENSSL_cleanse(a, 32);
  OPENSSL_cleanse(b, 32);
  OPENSSL_cleanse(c, 32);
}

/* Fill canonical request, string to sign and signature from the prepared parts. */
static kiln_err finish_signature(const char *method, const struct kiln_buf *uri,
                                 const struct kiln_buf *query, const struct kiln_buf *headers,
                                 const struct kiln_buf *signed_names, const char *payload_hash,
                                 const struct kiln_sigv4_params *p,
                                 const struct kiln_aws_credentials *creds,
                                 struct kiln_sigv4_result *out)
{
  struct kiln_buf cr = KILN_BUF_INIT, sts = KILN_BUF_INIT;
  char cr_hash[65], date8[9];
  unsigned char key[32], sig[32];
  unsigned int sig_len = sizeof(sig);
  if (kiln_buf_printf(&cr, "%s\n%s\n%s\n%s\n%s\n%s", method, kiln_buf_str(uri), kiln_buf_str(query),
                      kiln_buf_str(headers), kiln_buf_str(signed_names), payload_hash) != KILN_OK)
    goto oom;
  kiln_aws_sha256_hex(cr.data, cr.len, cr_hash);
  memcpy(date8, out->amz_date, 8);
  date8[8] = '\0';
  if (kiln_buf_printf(&sts, SIGV4_ALGORITHM "\n%s\n%s/%s/%s/aws4_request\n%s", out->amz_date, date8,
                      p->region, p->service, cr_hash) != KILN_OK)
    goto oom;
  signing_key(creds->secret_access_key, date8, p->region, p->service, key);
  HMAC(EVP_sha256(), key, sizeof(key), (const unsigned char *)sts.data, sts.len, sig, &sig_len);
  OPENSSL_cleanse(key, sizeof(key));
  to_hex(sig, sizeof(sig), out->signature);
  out->canonical_request = kiln_buf_detach(&cr);
  out->string_to_sign = kiln_buf_detach(&sts);
  return KILN_OK;
oom:
  kiln_buf_free(&cr);
  kiln_buf_free(&sts);
  return KILN_E_NOMEM;
}

static kiln_err check_inputs(const struct kiln_sigv4_request *req,
                             const struct kiln_sigv4_params *p,
                             const struct kiln_aws_credentials *creds, struct kiln_error *err)
{
  if (!creds || !creds->access_key_id || !creds->secret_access_key)
    return kiln_error_set(err, KILN_E_AUTH, "cannot sign the request: no AWS credentials");
  if (!p->region || !*p->region || !p->service || !*p->service)
    return kiln_error_set(err, KILN_E_INVALID, "cannot sign the request: no region or service");
  if (!req->method || !req->payload_hash)
    return kiln_error_set(err, KILN_E_INTERNAL, "sigv4: request without method or payload hash");
  return KILN_OK;
}

static kiln_err add_result_header(struct kiln_sigv4_result *out, const char *name,
                                  const char *value)
{
  char *copy = strdup(value);
  if (!copy)
    return KILN_E_NOMEM;
  out->add_headers[out->nadd_headers].name = name;
  out->add_headers[out->nadd_headers++].value = copy;
  return KILN_OK;
}

kiln_err kiln_sigv4_sign(const struct kiln_sigv4_request *req, const struct kiln_sigv4_params *p,
                         const struct kiln_aws_credentials *creds, struct kiln_sigv4_result *out,
                         struct kiln_error *err)
{
  struct kiln_buf uri = KILN_BUF_INIT, query = KILN_BUF_INIT, headers = KILN_BUF_INIT,
                  names = KILN_BUF_INIT, auth = KILN_BUF_INIT;
  struct kiln_aws_pair *all = NULL;
  size_t nall = 0;
  int sign_token = creds && creds->session_token && !p->omit_session_token;
  kiln_err rc;

  memset(out, 0, sizeof(*out));
  if ((rc = check_inputs(req, p, creds, err)) != KILN_OK)
    return rc;
  kiln_aws_amz_date(p->when, out->amz_date);
  all = calloc(req->nheaders + 3, sizeof(*all));
  if (!all)
    goto oom;
  for (size_t i = 0; i < req->nheaders; i++)
    all[nall++] = req->headers[i];
  all[nall++] = (struct kiln_aws_pair){"x-amz-date", out->amz_date};
  if (p->add_content_sha256)
    all[nall++] = (struct kiln_aws_pair){"x-amz-content-sha256", req->payload_hash};
  if (sign_token)
    all[nall++] = (struct kiln_aws_pair){"x-amz-security-token", creds->session_token};
  if (canonical_uri(req->path, p->normalize_path, &uri) != KILN_OK ||
      canonical_query(req->query, req->nquery, &query) != KILN_OK ||
      canonical_headers(all, nall, &headers, &names) != KILN_OK)
    goto oom;
  if (finish_signature(req->method, &uri, &query, &headers, &names, req->payload_hash, p, creds,
                       out) != KILN_OK)
    goto oom;
  {
    char date8[9];
    memcpy(date8, out->amz_date, 8);
    date8[8] = '\0';
    if (kiln_buf_printf(&auth,
                        SIGV4_ALGORITHM " Credential=%s/%s/%s/%s/aws4_request, SignedHeaders=%s, "
                                        "Signature=%s",
                        creds->access_key_id, date8, p->region, p->service, kiln_buf_str(&names),
                        out->signature) != KILN_OK)
      goto oom;
  }
  if (add_result_header(out, "x-amz-date", out->amz_date) != KILN_OK ||
      (p->add_content_sha256 &&
       add_result_header(out, "x-amz-content-sha256", req->payload_hash) != KILN_OK) ||
      (creds->session_token &&
       add_result_header(out, "x-amz-security-token", creds->session_token) != KILN_OK) ||
      add_result_header(out, "authorization", kiln_buf_str(&auth)) != KILN_OK)
    goto oom;
  rc = KILN_OK;
  goto out;
oom:
  kiln_sigv4_result_clear(out);
  rc = kiln_error_set(err, KILN_E_NOMEM, "out of memory while signing a request");
out:
  free(all);
  kiln_buf_free(&uri);
  kiln_buf_free(&query);
  kiln_buf_free(&headers);
  kiln_buf_free(&names);
  kiln_buf_free(&auth);
  return rc;
}

kiln_err kiln_sigv4_presign(const struct kiln_sigv4_request *req, const struct kiln_sigv4_params *p,
                            const struct kiln_aws_credentials *creds, struct kiln_sigv4_result *out,
                            struct kiln_error *err)
{
  struct kiln_buf uri = KILN_BUF_INIT, query = KILN_BUF_INIT, headers = KILN_BUF_INIT,
                  names = KILN_BUF_INIT, final_query = KILN_BUF_INIT, scope = KILN_BUF_INIT;
  struct kiln_aws_pair *q = NULL;
  size_t nq = 0;
  char expires[24], date8[9];
  int sign_token = creds && creds->session_token && !p->omit_session_token;
  kiln_err rc;

  memset(out, 0, sizeof(*out));
  if ((rc = check_inputs(req, p, creds, err)) != KILN_OK)
    return rc;
  kiln_aws_amz_date(p->when, out->amz_date);
  memcpy(date8, out->amz_date, 8);
  date8[8] = '\0';
  snprintf(expires, sizeof(expires), "%ld", p->expires_seconds > 0 ? p->expires_seconds : 3600);
  if (canonical_headers(req->headers, req->nheaders, &headers, &names) != KILN_OK ||
      kiln_buf_printf(&scope, "%s/%s/%s/%s/aws4_request", creds->access_key_id, date8, p->region,
                      p->service) != KILN_OK)
    goto oom;
  q = calloc(req->nquery + 7, sizeof(*q));
  if (!q)
    goto oom;
  for (size_t i = 0; i < req->nquery; i++)
    q[nq++] = req->query[i];
  q[nq++] = (struct kiln_aws_pair){"X-Amz-Algorithm", SIGV4_ALGORITHM};
  q[nq++] = (struct kiln_aws_pair){"X-Amz-Credential", kiln_buf_str(&scope)};
  q[nq++] = (struct kiln_aws_pair){"X-Amz-Date", out->amz_date};
  q[nq++] = (struct kiln_aws_pair){"X-Amz-Expires", expires};
  if (sign_token)
    q[nq++] = (struct kiln_aws_pair){"X-Amz-Security-Token", creds->session_token};
  q[nq++] = (struct kiln_aws_pair){"X-Amz-SignedHeaders", kiln_buf_str(&names)};
  if (canonical_uri(req->path, p->normalize_path, &uri) != KILN_OK ||
      canonical_query(q, nq, &query) != KILN_OK)
    goto oom;
  if (finish_signature(req->method, &uri, &query, &headers, &names, req->payload_hash, p, creds,
                       out) != KILN_OK)
    goto oom;
  if (kiln_buf_printf(&final_query, "%s&X-Amz-Signature=%s", kiln_buf_str(&query),
                      out->signature) != KILN_OK)
    goto oom;
  if (creds->session_token && !sign_token) {
    if (kiln_buf_puts(&final_query, "&X-Amz-Security-Token=") != KILN_OK ||
        kiln_aws_uri_encode(&final_query, creds->session_token, strlen(creds->session_token), 0) !=
            KILN_OK)
      goto oom;
  }
  out->query = kiln_buf_detach(&final_query);
  rc = KILN_OK;
  goto out;
oom:
  kiln_sigv4_result_clear(out);
  rc = kiln_error_set(err, KILN_E_NOMEM, "out of memory while presigning a URL");
out:
  free(q);
  kiln_buf_free(&uri);
  kiln_buf_free(&query);
  kiln_buf_free(&headers);
  kiln_buf_free(&names);
  kiln_buf_free(&final_query);
  kiln_buf_free(&scope);
  return rc;
}
