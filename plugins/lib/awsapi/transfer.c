/* The transfer engine: requests signed and sent over one curl multi handle, several at a time,
 * each retried on its own under the SDKs' standard mode (full-jitter backoff, retry quota,
 * clock-skew fix, credential refresh), bodies streamed from memory or with pread from a file. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "client_internal.h"

#define RETRY_QUOTA_MAX 500
#define RETRY_COST 5
#define RETRY_TIMEOUT_COST 10
#define RETRY_MAX_DELAY_S 20.0
#define DEFAULT_MAX_RESPONSE (16u << 20)

struct slot {
  int busy;
  int running;
  double retry_at; /* monotonic seconds; > 0 while waiting for a retry */
  struct kiln_aws_request req;
  void *tag;
  int attempt;
  int spent_tokens;
  CURL *easy;
  struct curl_slist *headers;
  struct kiln_aws_target target;
  struct kiln_sigv4_result sig;
  struct kiln_aws_response resp;
  size_t max_response;
  int too_big;
  int read_errno; /* pread failed */
  int short_file; /* the file ended before body_len bytes */
  uint64_t read_pos;
  char payload_hash[65];
  char errbuf[CURL_ERROR_SIZE];
};

static double now_monotonic(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void kiln_aws_response_clear(struct kiln_aws_response *r)
{
  if (!r)
    return;
  kiln_buf_free(&r->body);
  for (size_t i = 0; i < r->nheaders; i++) {
    free((char *)r->headers[i].name);
    free((char *)r->headers[i].value);
  }
  free(r->headers);
  memset(r, 0, sizeof(*r));
}

const char *kiln_aws_response_header(const struct kiln_aws_response *r, const char *name)
{
  for (size_t i = 0; r && i < r->nheaders; i++)
    if (strcmp(r->headers[i].name, name) == 0)
      return r->headers[i].value;
  return NULL;
}

static size_t on_body(char *data, size_t size, size_t n, void *user)
{
  struct slot *s = user;
  size_t len = size * n;
  if (s->resp.body.len + len > s->max_response) {
    s->too_big = 1;
    return 0;
  }
  return kiln_buf_append(&s->resp.body, data, len) == KILN_OK ? len : 0;
}

static size_t on_header(char *data, size_t size, size_t n, void *user)
{
  struct slot *s = user;
  size_t len = size * n;
  if (len >= 5 && strncmp(data, "HTTP/", 5) == 0) { /* a new response (after 100 Continue) */
    struct kiln_buf keep = s->resp.body;
    memset(&s->resp.body, 0, sizeof(s->resp.body));
    kiln_aws_response_clear(&s->resp);
    s->resp.body = keep;
    return len;
  }
  const char *colon = memchr(data, ':', len);
  if (!colon)
    return len;
  size_t name_len = (size_t)(colon - data);
  const char *v = colon + 1;
  const char *end = data + len;
  while (v < end && (*v == ' ' || *v == '\t'))
    v++;
  while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
    end--;
  struct kiln_aws_pair *grown =
      realloc(s->resp.headers, (s->resp.nheaders + 1) * sizeof(*s->resp.headers));
  if (!grown)
    return 0;
  s->resp.headers = grown;
  char *name = strndup(data, name_len);
  char *value = strndup(v, (size_t)(end - v));
  if (!name || !value) {
    free(name);
    free(value);
    return 0;
  }
  for (char *p = name; *p; p++)
    *p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
  grown[s->resp.nheaders].name = name;
  grown[s->resp.nheaders++].value = value;
  return len;
}

static size_t on_read(char *buf, size_t size, size_t n, void *user)
{
  struct slot *s = user;
  uint64_t left = s->req.body_len - s->read_pos;
  size_t want = size * n < left ? size * n : (size_t)left;
  if (want == 0)
    return 0;
  if (s->req.body_fd < 0 || s->req.body) {
    memcpy(buf, (const char *)s->req.body + s->read_pos, want);
    s->read_pos += want;
    return want;
  }
  ssize_t got;
  do {
    got = pread(s->req.body_fd, buf, want, s->req.body_offset + (off_t)s->read_pos);
  } while (got < 0 && errno == EINTR);
  if (got < 0) {
    s->read_errno = errno;
    return CURL_READFUNC_ABORT;
  }
  if (got == 0) {
    s->short_file = 1;
    return CURL_READFUNC_ABORT;
  }
  s->read_pos += (uint64_t)got;
  return (size_t)got;
}

static int body_is_file(const struct kiln_aws_request *r)
{
  return r->body_fd >= 0 && !r->body && r->body_len > 0;
}

static void slot_reset_attempt(struct slot *s)
{
  if (s->easy && s->running)
    s->running = 0;
  curl_slist_free_all(s->headers);
  s->headers = NULL;
  kiln_sigv4_result_clear(&s->sig);
  kiln_aws_response_clear(&s->resp);
  s->too_big = s->read_errno = s->short_file = 0;
  s->read_pos = 0;
  s->errbuf[0] = '\0';
}

static void slot_release(struct kiln_aws_client *c, struct slot *s)
{
  if (s->easy) {
    if (s->running)
      curl_multi_remove_handle(c->multi, s->easy);
    curl_easy_cleanup(s->easy);
  }
  s->running = 0;
  slot_reset_attempt(s);
  kiln_aws_target_clear(&s->target);
  memset(s, 0, sizeof(*s));
}

static kiln_err add_header(struct slot *s, const char *name, const char *value)
{
  size_t len = strlen(name) + strlen(value) + 3;
  char *line = malloc(len);
  if (!line)
    return KILN_E_NOMEM;
  /* "Name;" sends an empty header; "Name:" would remove it */
  if (*value)
    snprintf(line, len, "%s: %s", name, value);
  else
    snprintf(line, len, "%s;", name);
  struct curl_slist *l = curl_slist_append(s->headers, line);
  free(line);
  if (!l)
    return KILN_E_NOMEM;
  s->headers = l;
  return KILN_OK;
}

/* Sign the request for this attempt and hand it to the multi handle. */
static kiln_err slot_start(struct kiln_aws_client *c, struct slot *s, struct kiln_error *err)
{
  const struct kiln_aws_request *r = &s->req;
  kiln_err rc;
  slot_reset_attempt(s);
  s->attempt++;
  if (!r->unsigned_request && (rc = kiln_aws_client_ensure_credentials(c, err)) != KILN_OK)
    return rc;
  struct kiln_aws_pair *signed_headers = calloc(r->nheaders + 1, sizeof(*signed_headers));
  if (!signed_headers)
    return kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  signed_headers[0] = (struct kiln_aws_pair){"host", s->target.host};
  for (size_t i = 0; i < r->nheaders; i++)
    signed_headers[i + 1] = r->headers[i];
  if (!r->unsigned_request) {
    struct kiln_sigv4_request sreq = {r->method,      s->target.sign_path, r->query,
                                      r->nquery,      signed_headers,      r->nheaders + 1,
                                      s->payload_hash};
    struct kiln_sigv4_params p = {.region = s->target.signing_region,
                                  .service = r->service,
                                  .when = time(NULL) + c->clock_skew,
                                  .normalize_path = !s->target.s3,
                                  .add_content_sha256 = s->target.s3};
    if ((rc = kiln_sigv4_sign(&sreq, &p, &c->creds, &s->sig, err)) != KILN_OK) {
      free(signed_headers);
      return rc;
    }
  }
  rc = KILN_OK;
  for (size_t i = 0; i < r->nheaders + 1 && rc == KILN_OK; i++)
    rc = add_header(s, i == 0 ? "Host" : signed_headers[i].name, signed_headers[i].value);
  for (size_t i = 0; i < s->sig.nadd_headers && rc == KILN_OK; i++)
    rc = add_header(s, s->sig.add_headers[i].name, s->sig.add_headers[i].value);
  free(signed_headers);
  if (rc == KILN_OK) {
    /* "Expect:" removes curl's own 100-continue wait: one round trip less per part. */
    struct curl_slist *l = curl_slist_append(s->headers, "Expect:");
    rc = l ? KILN_OK : KILN_E_NOMEM;
    if (l)
      s->headers = l;
  }
  if (rc != KILN_OK)
    return kiln_error_set(err, KILN_E_NOMEM, "out of memory");

  if (!s->easy && !(s->easy = curl_easy_init()))
    return kiln_error_set(err, KILN_E_NOMEM, "cannot create a curl handle");
  CURL *e = s->easy;
  curl_easy_reset(e);
  curl_easy_setopt(e, CURLOPT_URL, s->target.url);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, s->headers);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, s);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, s);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, s->errbuf);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_PRIVATE, s);
  curl_easy_setopt(e, CURLOPT_USERAGENT, "kiln/" KILN_AWSAPI_VERSION);
  curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
  long connect_ms = r->url ? 1000 : (c->opt.connect_timeout_ms ? c->opt.connect_timeout_ms : 10000);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
  if (r->url)
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 5000L);
  curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME,
                   c->opt.stall_timeout_s > 0 ? c->opt.stall_timeout_s : 60L);
  int has_body = r->body_len > 0;
  if (strcmp(r->method, "HEAD") == 0) {
    curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
  } else if (strcmp(r->method, "GET") == 0 && !has_body) {
    curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
  } else if (has_body || strcmp(r->method, "PUT") == 0 || strcmp(r->method, "POST") == 0) {
    curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
    /* large reads and sends: fewer callbacks and system calls per part */
    curl_easy_setopt(e, CURLOPT_UPLOAD_BUFFERSIZE, 2L * 1024 * 1024);
    curl_easy_setopt(e, CURLOPT_READFUNCTION, on_read);
    curl_easy_setopt(e, CURLOPT_READDATA, s);
    curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, (curl_off_t)r->body_len);
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, r->method);
  } else {
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, r->method);
  }
  if (curl_multi_add_handle(c->multi, e) != CURLM_OK)
    return kiln_error_set(err, KILN_E_INTERNAL, "cannot start a transfer");
  s->running = 1;
  s->retry_at = 0;
  return KILN_OK;
}

/* Prepare a newly taken request: target and payload hash (once for all attempts). */
static kiln_err slot_prepare(struct kiln_aws_client *c, struct slot *s, struct kiln_error *err)
{
  kiln_err rc = kiln_aws_target_resolve(c, &s->req, &s->target, err);
  if (rc != KILN_OK)
    return rc;
  if (!s->req.method)
    s->req.method = "GET";
  if (!s->req.operation)
    s->req.operation = s->req.method;
  s->max_response = s->req.max_response ? s->req.max_response : DEFAULT_MAX_RESPONSE;
  if (s->req.payload_hash)
    snprintf(s->payload_hash, sizeof(s->payload_hash), "%s", s->req.payload_hash);
  else if (body_is_file(&s->req))
    snprintf(s->payload_hash, sizeof(s->payload_hash), "%s", KILN_SIGV4_UNSIGNED_PAYLOAD);
  else
    kiln_aws_sha256_hex(s->req.body ? s->req.body : "", s->req.body_len, s->payload_hash);
  return KILN_OK;
}

static double jitter_delay(struct kiln_aws_client *c, int attempt)
{
  double cap = c->retry_base_s * pow(2.0, attempt - 1);
  if (cap > RETRY_MAX_DELAY_S)
    cap = RETRY_MAX_DELAY_S;
  /* splitmix64 over the client's own counter: thread-safe, no process-wide state */
  uint64_t x = __atomic_add_fetch(&c->jitter_state, 0x9E3779B97F4A7C15ull, __ATOMIC_RELAXED);
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  x ^= x >> 31;
  return cap * ((double)(x >> 11) / 9007199254740992.0);
}

static void learn_clock_skew(struct kiln_aws_client *c, const struct kiln_aws_response *resp)
{
  const char *date = kiln_aws_response_header(resp, "date");
  time_t server = date ? curl_getdate(date, NULL) : (time_t)-1;
  if (server != (time_t)-1) {
    c->clock_skew = (long)(server - time(NULL));
    kiln_aws_client_log(c, KILN_LOG_WARN,
                        "the local clock is %ld s off AWS's; signing with the server's time",
                        -c->clock_skew);
  }
}

/* What to do with a finished attempt: 0 success, 1 retry, -1 final failure (err set). */
static int slot_outcome(struct kiln_aws_client *c, struct slot *s, CURLcode result,
                        struct kiln_aws_error_info *info, struct kiln_error *err, int *timeout)
{
  const char *title = kiln_aws_service_title(s->req.service);
  long status = 0;
  *timeout = 0;
  memset(info, 0, sizeof(*info));
  if (s->read_errno) {
    kiln_error_set(err, KILN_E_IO, "%s %s: reading the request body failed: %s", title,
                   s->req.operation, strerror(s->read_errno));
    return -1;
  }
  if (s->short_file) {
    kiln_error_set(err, KILN_E_IO,
                   "%s %s: the file ended %llu bytes into a %zu-byte part: it changed during the "
                   "upload",
                   title, s->req.operation, (unsigned long long)s->read_pos, s->req.body_len);
    return -1;
  }
  if (s->too_big) {
    kiln_error_set(err, KILN_E_REMOTE, "%s %s: the answer is larger than %zu bytes", title,
                   s->req.operation, s->max_response);
    return -1;
  }
  if (result != CURLE_OK) {
    snprintf(info->service, sizeof(info->service), "%s", s->req.service);
    snprintf(info->operation, sizeof(info->operation), "%s", s->req.operation);
    snprintf(info->message, sizeof(info->message), "%s",
             s->errbuf[0] ? s->errbuf : curl_easy_strerror(result));
    *timeout = result == CURLE_OPERATION_TIMEDOUT;
    kiln_aws_error_report(info, err);
    return 1;
  }
  curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &status);
  s->resp.status = status;
  int error_body = status >= 200 && status < 300 && s->target.s3 &&
                   strcmp(s->req.method, "POST") == 0 && kiln_aws_error_in_ok_body(&s->resp);
  if (status >= 200 && status < 300 && !error_body)
    return 0;
  kiln_aws_error_parse(s->req.service, s->req.operation, status, &s->resp, info);
  kiln_aws_error_report(info, err);
  if (strcmp(info->code, "RequestTimeTooSkewed") == 0 ||
      (strcmp(info->code, "SignatureDoesNotMatch") == 0 && strstr(info->message, "expired"))) {
    learn_clock_skew(c, &s->resp);
    return 1;
  }
  if (!c->creds_fixed && !s->req.unsigned_request &&
      (strcmp(info->code, "ExpiredToken") == 0 ||
       strcmp(info->code, "ExpiredTokenException") == 0 ||
       strcmp(info->code, "RequestExpired") == 0) &&
      s->attempt == 1) {
    c->have_creds = 0; /* resolve again before the next attempt */
    return 1;
  }
  return kiln_aws_retryable(status, info->code) ? 1 : -1;
}

struct batch {
  struct kiln_aws_client *c;
  const struct kiln_aws_batch_ops *ops;
  void *ctx;
  struct slot *slots;
  unsigned nslots;
  int exhausted; /* next() said nothing more */
};

/* A request is over: tell the caller. Returns what done() returned. */
static kiln_err finish(struct batch *b, struct slot *s, kiln_err result,
                       const struct kiln_aws_error_info *info, struct kiln_error *err)
{
  if (result == KILN_OK && b->ops->sent && s->req.body_len)
    b->ops->sent(b->ctx, s->req.body_len);
  kiln_err rc = b->ops->done(b->ctx, s->tag, result, &s->resp, info, err);
  slot_release(b->c, s);
  return rc;
}

static kiln_err handle_done(struct batch *b, struct slot *s, CURLcode result,
                            struct kiln_error *err)
{
  struct kiln_aws_client *c = b->c;
  struct kiln_aws_error_info info;
  struct kiln_error attempt_err = KILN_ERROR_INIT;
  int timeout = 0;
  double elapsed = 0;
  curl_easy_getinfo(s->easy, CURLINFO_TOTAL_TIME, &elapsed);
  curl_multi_remove_handle(c->multi, s->easy);
  s->running = 0;
  int outcome = slot_outcome(c, s, result, &info, &attempt_err, &timeout);
  kiln_aws_client_log(c, KILN_LOG_DEBUG, "aws: %s %s %s -> %ld (%.3f s, attempt %d)",
                      kiln_aws_service_title(s->req.service), s->req.operation, s->req.method,
                      s->resp.status, elapsed, s->attempt);
  if (outcome == 0) {
    int refund = s->spent_tokens ? s->spent_tokens : 1;
    c->retry_tokens =
        c->retry_tokens + refund > RETRY_QUOTA_MAX ? RETRY_QUOTA_MAX : c->retry_tokens + refund;
    kiln_error_clear(&attempt_err);
    return finish(b, s, KILN_OK, NULL, err);
  }
  int cost = timeout ? RETRY_TIMEOUT_COST : RETRY_COST;
  if (outcome == 1 && !s->req.no_retry && s->attempt < c->max_attempts && c->retry_tokens >= cost) {
    c->retry_tokens -= cost;
    s->spent_tokens += cost;
    double delay = jitter_delay(c, s->attempt);
    kiln_aws_client_log(c, KILN_LOG_INFO, "retrying in %.1f s (attempt %d of %d): %s", delay,
                        s->attempt + 1, c->max_attempts, kiln_error_msg(&attempt_err));
    s->retry_at = now_monotonic() + delay;
    kiln_error_clear(&attempt_err);
    return KILN_OK;
  }
  if (outcome == 1 && s->attempt > 1)
    kiln_error_prefix(&attempt_err, "after %d attempts", s->attempt);
  else if (outcome == 1 && c->retry_tokens < cost)
    kiln_error_prefix(&attempt_err, "retry quota used up");
  kiln_err code = attempt_err.code ? attempt_err.code : KILN_E_REMOTE;
  kiln_error_set(err, code, "%s", kiln_error_msg(&attempt_err));
  kiln_error_clear(&attempt_err);
  return finish(b, s, code, info.service[0] ? &info : NULL, err);
}

/* Fill free slots from next(). */
static kiln_err fill_slots(struct batch *b, struct kiln_error *err)
{
  for (unsigned i = 0; i < b->nslots && !b->exhausted; i++) {
    struct slot *s = &b->slots[i];
    if (s->busy)
      continue;
    struct kiln_aws_request req = KILN_AWS_REQUEST_INIT;
    void *tag = NULL;
    if (!b->ops->next(b->ctx, &req, &tag)) {
      b->exhausted = 1;
      break;
    }
    memset(s, 0, sizeof(*s));
    s->busy = 1;
    s->req = req;
    s->tag = tag;
    kiln_err rc = slot_prepare(b->c, s, err);
    if (rc == KILN_OK)
      rc = slot_start(b->c, s, err);
    if (rc != KILN_OK) {
      kiln_err r = b->ops->done(b->ctx, tag, rc, &s->resp, NULL, err);
      slot_release(b->c, s);
      if (r != KILN_OK)
        return r;
    }
  }
  return KILN_OK;
}

kiln_err kiln_aws_batch_run(struct kiln_aws_client *c, unsigned max_in_flight,
                            const struct kiln_aws_batch_ops *ops, void *ctx, struct kiln_error *err)
{
  struct batch b = {c, ops, ctx, NULL, max_in_flight ? max_in_flight : 1, 0};
  kiln_err rc = KILN_OK;
  b.slots = calloc(b.nslots, sizeof(*b.slots));
  if (!b.slots)
    return kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  for (;;) {
    if (c->opt.cancelled && c->opt.cancelled(c->opt.hook_ctx)) {
      rc = kiln_error_set(err, KILN_E_CANCELLED, "cancelled");
      break;
    }
    if ((rc = fill_slots(&b, err)) != KILN_OK)
      break;
    int active = 0;
    double next_retry = 0, now = now_monotonic();
    for (unsigned i = 0; i < b.nslots && rc == KILN_OK; i++) {
      struct slot *s = &b.slots[i];
      if (!s->busy)
        continue;
      active++;
      if (!s->running && s->retry_at > 0) {
        if (s->retry_at <= now) {
          rc = slot_start(c, s, err);
          if (rc != KILN_OK)
            rc = finish(&b, s, rc, NULL, err);
        } else if (next_retry == 0 || s->retry_at < next_retry) {
          next_retry = s->retry_at;
        }
      }
    }
    if (rc != KILN_OK)
      break;
    if (active == 0 && b.exhausted)
      break;
    int still_running = 0;
    curl_multi_perform(c->multi, &still_running);
    int queued;
    CURLMsg *m;
    while (rc == KILN_OK && (m = curl_multi_info_read(c->multi, &queued))) {
      if (m->msg != CURLMSG_DONE)
        continue;
      struct slot *s = NULL;
      curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&s);
      rc = handle_done(&b, s, m->data.result, err);
    }
    if (rc != KILN_OK)
      break;
    int timeout_ms = 200;
    if (next_retry > 0) {
      double wait = (next_retry - now_monotonic()) * 1000.0;
      timeout_ms = wait < 0 ? 0 : wait < timeout_ms ? (int)wait : timeout_ms;
    }
    if (still_running)
      curl_multi_poll(c->multi, NULL, 0, timeout_ms, NULL);
    else if (timeout_ms > 0 && next_retry > 0)
      usleep((useconds_t)timeout_ms * 1000);
  }
  for (unsigned i = 0; i < b.nslots; i++)
    if (b.slots[i].busy)
      slot_release(c, &b.slots[i]);
  free(b.slots);
  return rc;
}

/* kiln_aws_send: a batch of one. */
struct single {
  const struct kiln_aws_request *req;
  int taken;
  kiln_err result;
  struct kiln_aws_response *resp;
  struct kiln_aws_error_info *info;
};

static int single_next(void *ctx, struct kiln_aws_request *req, void **tag)
{
  struct single *one = ctx;
  if (one->taken)
    return 0;
  one->taken = 1;
  *req = *one->req;
  *tag = one;
  return 1;
}

static kiln_err single_done(void *ctx, void *tag, kiln_err result, struct kiln_aws_response *resp,
                            const struct kiln_aws_error_info *info, struct kiln_error *err)
{
  struct single *one = ctx;
  (void)tag;
  (void)err;
  one->result = result;
  if (one->resp) {
    *one->resp = *resp;
    memset(resp, 0, sizeof(*resp));
  }
  if (one->info && info)
    *one->info = *info;
  return result;
}

kiln_err kiln_aws_send(struct kiln_aws_client *c, const struct kiln_aws_request *req,
                       struct kiln_aws_response *resp, struct kiln_aws_error_info *info,
                       struct kiln_error *err)
{
  static const struct kiln_aws_batch_ops ops = {single_next, single_done, NULL};
  struct single one = {req, 0, KILN_OK, resp, info};
  if (resp)
    memset(resp, 0, sizeof(*resp));
  if (info)
    memset(info, 0, sizeof(*info));
  kiln_err rc = kiln_aws_batch_run(c, 1, &ops, &one, err);
  return rc != KILN_OK ? rc : one.result;
}
