/* SigV4 against the AWS signing test suite (v4 cases, header and query signing) and the five S3
 * worked examples from the S3 API Reference: canonical request, string to sign and signature. */
#define _XOPEN_SOURCE 700
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "check.h"
#include "sigv4.h"
#include "util/buf.h"
#include "util/fs.h"

#define MAX_PAIRS 32

/* A request parsed from the suite's request.txt. */
struct suite_request {
  char *method;
  char *path;
  struct kiln_aws_pair query[MAX_PAIRS];
  size_t nquery;
  struct kiln_aws_pair headers[MAX_PAIRS];
  size_t nheaders;
  char *body;
  size_t body_len;
};

static void suite_request_clear(struct suite_request *r)
{
  free(r->method);
  free(r->path);
  for (size_t i = 0; i < r->nquery; i++) {
    free((char *)r->query[i].name);
    free((char *)r->query[i].value);
  }
  for (size_t i = 0; i < r->nheaders; i++) {
    free((char *)r->headers[i].name);
    free((char *)r->headers[i].value);
  }
  free(r->body);
  memset(r, 0, sizeof(*r));
}

/* The file's text (caller frees), or NULL. */
static char *read_text(const char *dir, const char *name)
{
  char *path = kiln_path_join(dir, name);
  char *text = NULL;
  size_t len = 0;
  struct kiln_error e = KILN_ERROR_INIT;
  kiln_err rc = kiln_read_file(path, 1 << 20, &text, &len, &e);
  kiln_error_clear(&e);
  free(path);
  if (rc != KILN_OK) {
    free(text);
    return NULL;
  }
  return text;
}

static int parse_request(const char *text, struct suite_request *r)
{
  memset(r, 0, sizeof(*r));
  const char *eol = strchr(text, '\n');
  const char *line_end = eol ? eol : text + strlen(text);
  const char *sp = memchr(text, ' ', (size_t)(line_end - text));
  const char *proto = NULL;
  for (const char *p = line_end - 1; p > text; p--)
    if (strncmp(p, " HTTP/", 6) == 0) {
      proto = p;
      break;
    }
  if (!sp || !proto)
    return -1;
  r->method = strndup(text, (size_t)(sp - text));
  const char *target = sp + 1;
  const char *qmark = memchr(target, '?', (size_t)(proto - target));
  r->path = strndup(target, (size_t)((qmark ? qmark : proto) - target));
  if (qmark) {
    const char *q = qmark + 1;
    while (q < proto) {
      const char *amp = memchr(q, '&', (size_t)(proto - q));
      const char *end = amp ? amp : proto;
      const char *eq = memchr(q, '=', (size_t)(end - q));
      const char *name_end = eq ? eq : end;
      r->query[r->nquery].name = kiln_aws_uri_decode(q, (size_t)(name_end - q));
      r->query[r->nquery].value =
          eq ? kiln_aws_uri_decode(eq + 1, (size_t)(end - eq - 1)) : strdup("");
      r->nquery++;
      q = end + 1;
    }
  }
  const char *p = eol ? eol + 1 : line_end;
  while (*p && *p != '\n') {
    const char *nl = strchr(p, '\n');
    size_t len = nl ? (size_t)(nl - p) : strlen(p);
    if (*p == ' ' || *p == '\t') { /* folded continuation of the previous header */
      struct kiln_aws_pair *h = &r->headers[r->nheaders - 1];
      size_t old = strlen(h->value);
      char *v = malloc(old + len + 2);
      memcpy(v, h->value, old);
      v[old] = '\n';
      memcpy(v + old + 1, p, len);
      v[old + 1 + len] = '\0';
      free((char *)h->value);
      h->value = v;
    } else {
      const char *colon = memchr(p, ':', len);
      if (!colon)
        return -1;
      r->headers[r->nheaders].name = strndup(p, (size_t)(colon - p));
      r->headers[r->nheaders].value = strndup(colon + 1, len - (size_t)(colon + 1 - p));
      r->nheaders++;
    }
    p = nl ? nl + 1 : p + len;
  }
  if (*p == '\n') {
    r->body = strdup(p + 1);
    r->body_len = strlen(r->body);
  }
  return 0;
}

static time_t parse_timestamp(const char *iso)
{
  struct tm tm = {0};
  if (!strptime(iso, "%Y-%m-%dT%H:%M:%SZ", &tm))
    return (time_t)-1;
  return timegm(&tm);
}

/* The Authorization value from a signed request's text. */
static char *authorization_of(const char *signed_request)
{
  const char *a = strstr(signed_request, "\nAuthorization:");
  if (!a)
    return NULL;
  a += strlen("\nAuthorization:");
  const char *end = strchr(a, '\n');
  return end ? strndup(a, (size_t)(end - a)) : strdup(a);
}

static char *trimmed(char *s)
{
  if (!s)
    return s;
  size_t n = strlen(s);
  while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r'))
    s[--n] = '\0';
  return s;
}

static void check_suite_case(const char *suite_dir, const char *name)
{
  char *dir = kiln_path_join(suite_dir, name);
  char *context_text = read_text(dir, "context.json");
  char *request_text = read_text(dir, "request.txt");
  cJSON *ctx = context_text ? cJSON_Parse(context_text) : NULL;
  struct suite_request r;
  CHECK_CASE(name);
  CHECK(ctx != NULL);
  CHECK(request_text && parse_request(request_text, &r) == 0);
  if (!ctx || !request_text) {
    free(dir);
    free(context_text);
    free(request_text);
    cJSON_Delete(ctx);
    return;
  }
  const cJSON *c = cJSON_GetObjectItem(ctx, "credentials");
  const cJSON *token = cJSON_GetObjectItem(c, "token");
  struct kiln_aws_credentials creds = {
      .access_key_id = cJSON_GetObjectItem(c, "access_key_id")->valuestring,
      .secret_access_key = cJSON_GetObjectItem(c, "secret_access_key")->valuestring,
      .session_token = token ? token->valuestring : NULL,
  };
  struct kiln_sigv4_params params = {
      .region = cJSON_GetObjectItem(ctx, "region")->valuestring,
      .service = cJSON_GetObjectItem(ctx, "service")->valuestring,
      .when = parse_timestamp(cJSON_GetObjectItem(ctx, "timestamp")->valuestring),
      .normalize_path = cJSON_IsTrue(cJSON_GetObjectItem(ctx, "normalize")),
      .add_content_sha256 = cJSON_IsTrue(cJSON_GetObjectItem(ctx, "sign_body")),
      .omit_session_token = cJSON_IsTrue(cJSON_GetObjectItem(ctx, "omit_session_token")),
      .expires_seconds = cJSON_GetObjectItem(ctx, "expiration_in_seconds")->valueint,
  };
  char payload_hash[65];
  kiln_aws_sha256_hex(r.body ? r.body : "", r.body_len, payload_hash);
  struct kiln_sigv4_request req = {r.method,  r.path,     r.query,     r.nquery,
                                   r.headers, r.nheaders, payload_hash};
  struct kiln_sigv4_result res;
  struct kiln_error e = KILN_ERROR_INIT;

  CHECK_INT(KILN_OK, kiln_sigv4_sign(&req, &params, &creds, &res, &e));
  char *want_cr = trimmed(read_text(dir, "header-canonical-request.txt"));
  char *want_sts = trimmed(read_text(dir, "header-string-to-sign.txt"));
  char *want_sig = trimmed(read_text(dir, "header-signature.txt"));
  char *want_signed = read_text(dir, "header-signed-request.txt");
  char *want_auth = want_signed ? authorization_of(want_signed) : NULL;
  CHECK_STR(want_cr, res.canonical_request);
  CHECK_STR(want_sts, res.string_to_sign);
  CHECK_STR(want_sig, res.signature);
  const char *auth = NULL;
  for (size_t i = 0; i < res.nadd_headers; i++)
    if (strcmp(res.add_headers[i].name, "authorization") == 0)
      auth = res.add_headers[i].value;
  CHECK_STR(want_auth, auth);
  kiln_sigv4_result_clear(&res);
  free(want_cr);
  free(want_sts);
  free(want_sig);
  free(want_signed);
  free(want_auth);

  CHECK_INT(KILN_OK, kiln_sigv4_presign(&req, &params, &creds, &res, &e));
  want_cr = trimmed(read_text(dir, "query-canonical-request.txt"));
  want_sts = trimmed(read_text(dir, "query-string-to-sign.txt"));
  want_sig = trimmed(read_text(dir, "query-signature.txt"));
  CHECK_STR(want_cr, res.canonical_request);
  CHECK_STR(want_sts, res.string_to_sign);
  CHECK_STR(want_sig, res.signature);
  CHECK(res.query && strstr(res.query, want_sig ? want_sig : "?") != NULL);
  kiln_sigv4_result_clear(&res);
  free(want_cr);
  free(want_sts);
  free(want_sig);

  kiln_error_clear(&e);
  suite_request_clear(&r);
  cJSON_Delete(ctx);
  free(context_text);
  free(request_text);
  free(dir);
}

static int compare_names(const void *a, const void *b)
{
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static void run_suite(const char *suite_dir)
{
  DIR *d = opendir(suite_dir);
  char *names[128];
  size_t n = 0;
  CHECK_CASE("suite directory");
  CHECK(d != NULL);
  if (!d)
    return;
  struct dirent *ent;
  while ((ent = readdir(d)) && n < 128) {
    if (ent->d_name[0] == '.')
      continue;
    char *sub = kiln_path_join(suite_dir, ent->d_name);
    char *ctx = kiln_path_join(sub, "context.json");
    if (access(ctx, F_OK) == 0)
      names[n++] = strdup(ent->d_name);
    free(ctx);
    free(sub);
  }
  closedir(d);
  qsort(names, n, sizeof(*names), compare_names);
  CHECK_CASE("suite size");
  CHECK(n >= 38);
  for (size_t i = 0; i < n; i++) {
    check_suite_case(suite_dir, names[i]);
    free(names[i]);
  }
  printf("sigv4 suite: %zu cases\n", n);
}

/* The S3 worked examples, rebuilt as requests from the documentation's description. */
static void run_s3_examples(const char *path)
{
  char *text = NULL;
  size_t len = 0;
  struct kiln_error e = KILN_ERROR_INIT;
  CHECK_CASE("s3 examples file");
  CHECK_INT(KILN_OK, kiln_read_file(path, 1 << 20, &text, &len, &e));
  cJSON *doc = text ? cJSON_Parse(text) : NULL;
  CHECK(doc != NULL);
  if (!doc) {
    free(text);
    return;
  }
  struct kiln_aws_credentials creds = {
      .access_key_id = cJSON_GetObjectItem(doc, "access_key_id")->valuestring,
      .secret_access_key = cJSON_GetObjectItem(doc, "secret_access_key")->valuestring,
  };
  struct tm tm = {0};
  strptime(cJSON_GetObjectItem(doc, "amz_date")->valuestring, "%Y%m%dT%H%M%SZ", &tm);
  struct kiln_sigv4_params params = {.region = "us-east-1",
                                     .service = "s3",
                                     .when = timegm(&tm),
                                     .add_content_sha256 = 1,
                                     .expires_seconds = 86400};
  const char *body = cJSON_GetObjectItem(doc, "put_object_body")->valuestring;
  char body_hash[65];
  kiln_aws_sha256_hex(body, strlen(body), body_hash);
  const struct kiln_aws_pair host = {"Host", "examplebucket.s3.amazonaws.com"};
  struct kiln_aws_pair range_headers[] = {host, {"Range", "bytes=0-9"}};
  struct kiln_aws_pair put_headers[] = {host,
                                        {"Date", "Fri, 24 May 2013 00:00:00 GMT"},
                                        {"x-amz-storage-class", "REDUCED_REDUNDANCY"}};
  struct kiln_aws_pair lifecycle_query[] = {{"lifecycle", ""}};
  struct kiln_aws_pair list_query[] = {{"prefix", "J"}, {"max-keys", "2"}};
  struct {
    const char *name;
    struct kiln_sigv4_request req;
    int presign;
  } cases[] = {
      {"get-object-range", {"GET", "/test.txt", NULL, 0, range_headers, 2, KILN_SHA256_EMPTY}, 0},
      {"put-object", {"PUT", "/test$file.text", NULL, 0, put_headers, 3, body_hash}, 0},
      {"get-bucket-lifecycle", {"GET", "/", lifecycle_query, 1, &host, 1, KILN_SHA256_EMPTY}, 0},
      {"list-objects", {"GET", "/", list_query, 2, &host, 1, KILN_SHA256_EMPTY}, 0},
      {"presigned-get-object",
       {"GET", "/test.txt", NULL, 0, &host, 1, KILN_SIGV4_UNSIGNED_PAYLOAD},
       1},
  };
  const cJSON *want_cases = cJSON_GetObjectItem(doc, "cases");
  CHECK_INT(5, cJSON_GetArraySize(want_cases));
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    const cJSON *want = NULL, *w;
    cJSON_ArrayForEach(w, want_cases)
    {
      if (strcmp(cJSON_GetObjectItem(w, "name")->valuestring, cases[i].name) == 0)
        want = w;
    }
    CHECK_CASE(cases[i].name);
    CHECK(want != NULL);
    if (!want)
      continue;
    struct kiln_sigv4_result res;
    kiln_err rc = cases[i].presign ? kiln_sigv4_presign(&cases[i].req, &params, &creds, &res, &e)
                                   : kiln_sigv4_sign(&cases[i].req, &params, &creds, &res, &e);
    CHECK_INT(KILN_OK, rc);
    if (rc != KILN_OK)
      continue;
    CHECK_STR(cJSON_GetObjectItem(want, "canonical_request")->valuestring, res.canonical_request);
    CHECK_STR(cJSON_GetObjectItem(want, "string_to_sign")->valuestring, res.string_to_sign);
    CHECK_STR(cJSON_GetObjectItem(want, "signature")->valuestring, res.signature);
    kiln_sigv4_result_clear(&res);
  }
  kiln_error_clear(&e);
  cJSON_Delete(doc);
  free(text);
}

/* Encoding helpers and refusals. */
static void run_units(void)
{
  struct kiln_buf b = KILN_BUF_INIT;
  CHECK_CASE("uri encode");
  kiln_aws_uri_encode(&b, "a b/c~d=é", strlen("a b/c~d=é"), 1);
  CHECK_STR("a%20b/c~d%3D%C3%A9", kiln_buf_str(&b));
  kiln_buf_free(&b);
  CHECK_CASE("uri decode");
  char *d = kiln_aws_uri_decode("a%2Fb", 5);
  CHECK_STR("a/b", d);
  free(d);
  CHECK(kiln_aws_uri_decode("bad%2", 5) == NULL);
  CHECK(kiln_aws_uri_decode("bad%zz", 6) == NULL);
  CHECK_CASE("no credentials refused");
  struct kiln_aws_pair host = {"host", "h"};
  struct kiln_sigv4_request req = {"GET", "/", NULL, 0, &host, 1, KILN_SHA256_EMPTY};
  struct kiln_sigv4_params p = {.region = "us-east-1", .service = "s3", .when = 0};
  struct kiln_aws_credentials none = {0};
  struct kiln_sigv4_result res;
  struct kiln_error e = KILN_ERROR_INIT;
  CHECK_INT(KILN_E_AUTH, kiln_sigv4_sign(&req, &p, &none, &res, &e));
  CHECK_CONTAINS("no AWS credentials", kiln_error_msg(&e));
  kiln_error_clear(&e);
  CHECK_CASE("session token added after signing is not signed");
  struct kiln_aws_credentials tok = {"AK", "SK", "TOKEN", 0, ""};
  p.omit_session_token = 1;
  CHECK_INT(KILN_OK, kiln_sigv4_sign(&req, &p, &tok, &res, &e));
  CHECK(strstr(res.canonical_request, "x-amz-security-token") == NULL);
  int has_token = 0;
  for (size_t i = 0; i < res.nadd_headers; i++)
    has_token |= strcmp(res.add_headers[i].name, "x-amz-security-token") == 0;
  CHECK(has_token);
  kiln_sigv4_result_clear(&res);
}

int main(int argc, char **argv)
{
  if (argc != 3) {
    fprintf(stderr, "usage: test_sigv4 SUITE_DIR S3_EXAMPLES_JSON\n");
    return 2;
  }
  run_units();
  run_suite(argv[1]);
  run_s3_examples(argv[2]);
  return check_done();
}
