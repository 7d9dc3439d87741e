/* The AWS client's lifecycle and settings (profile, region, retries), credentials kept fresh and
 * registered as secrets, and the Query and JSON protocol calls built on kiln_aws_send. */
#include <stdarg.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "client_internal.h"
#include "credentials.h"

#define REFRESH_BEFORE_EXPIRY_S 300

static int parse_attempts(const char *s)
{
  char *end = NULL;
  long v = s && *s ? strtol(s, &end, 10) : 0;
  return end && *end == '\0' && v >= 1 && v <= 20 ? (int)v : 0;
}

/* libcurl's global init is not thread-safe and must run once per process, not once per client. */
static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_result = CURLE_FAILED_INIT;

static void init_curl(void)
{
  curl_init_result = curl_global_init(CURL_GLOBAL_DEFAULT);
}

kiln_err kiln_aws_client_new(const struct kiln_aws_client_options *o, struct kiln_aws_client **out,
                             struct kiln_error *err)
{
  static const struct kiln_aws_client_options defaults = {0};
  struct kiln_aws_client *c = calloc(1, sizeof(*c));
  kiln_err rc;
  *out = NULL;
  if (!c)
    return kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  c->opt = o ? *o : defaults;
  c->retry_base_s = 1.0;
  c->retry_tokens = 500;
  /* each client its own jitter sequence; the process's random() is left alone */
  c->jitter_state = ((uint64_t)time(NULL) << 20) ^ (uint64_t)getpid() ^ (uint64_t)(uintptr_t)c;
  pthread_once(&curl_once, init_curl);
  if (curl_init_result != CURLE_OK) {
    rc = kiln_error_set(err, KILN_E_INTERNAL, "libcurl could not be initialised");
    goto fail;
  }
  if ((rc = kiln_aws_profile_load(c->opt.profile, &c->profile, err)) != KILN_OK)
    goto fail;
  const char *region = getenv("AWS_REGION");
  if (!region || !*region)
    region = getenv("AWS_DEFAULT_REGION");
  if (!region || !*region)
    region = c->profile.region;
  if (!region || !*region)
    region = c->opt.region;
  if (region && *region && !(c->region = strdup(region))) {
    rc = kiln_error_set(err, KILN_E_NOMEM, "out of memory");
    goto fail;
  }
  c->max_attempts = c->opt.max_attempts;
  if (c->max_attempts <= 0) {
    const char *env = getenv("AWS_MAX_ATTEMPTS");
    c->max_attempts = parse_attempts(env);
    if (!c->max_attempts && env && *env) {
      rc = kiln_error_set(err, KILN_E_INVALID,
                          "AWS_MAX_ATTEMPTS=\"%s\" is not a number from 1 to 20", env);
      goto fail;
    }
  }
  if (c->max_attempts <= 0)
    c->max_attempts = parse_attempts(c->profile.max_attempts);
  if (c->max_attempts <= 0)
    c->max_attempts = 3;
  if (!(c->multi = curl_multi_init())) {
    rc = kiln_error_set(err, KILN_E_NOMEM, "cannot create a curl multi handle");
    goto fail;
  }
  curl_multi_setopt(c->multi, CURLMOPT_MAX_HOST_CONNECTIONS, 64L);
  *out = c;
  return KILN_OK;
fail:
  kiln_aws_client_free(c);
  return rc;
}

void kiln_aws_client_free(struct kiln_aws_client *c)
{
  if (!c)
    return;
  if (c->multi)
    curl_multi_cleanup(c->multi);
  kiln_aws_credentials_clear(&c->creds);
  kiln_aws_profile_clear(&c->profile);
  free(c->region);
  free(c);
}

const char *kiln_aws_client_region(const struct kiln_aws_client *c)
{
  return c->region;
}

const struct kiln_aws_profile *kiln_aws_client_profile(const struct kiln_aws_client *c)
{
  return &c->profile;
}

long kiln_aws_client_clock_skew(const struct kiln_aws_client *c)
{
  return c->clock_skew;
}

void kiln_aws_client_log(struct kiln_aws_client *c, int level, const char *fmt, ...)
{
  char line[1024];
  va_list ap;
  if (!c->opt.log)
    return;
  va_start(ap, fmt);
  vsnprintf(line, sizeof(line), fmt, ap);
  va_end(ap);
  c->opt.log(c->opt.hook_ctx, level, line);
}

static void register_secrets(struct kiln_aws_client *c)
{
  if (!c->opt.redact)
    return;
  if (c->creds.secret_access_key)
    c->opt.redact(c->opt.hook_ctx, c->creds.secret_access_key);
  if (c->creds.session_token)
    c->opt.redact(c->opt.hook_ctx, c->creds.session_token);
}

kiln_err kiln_aws_client_set_credentials(struct kiln_aws_client *c,
                                         const struct kiln_aws_credentials *creds,
                                         struct kiln_error *err)
{
  struct kiln_aws_credentials copy;
  if (kiln_aws_credentials_copy(&copy, creds) != KILN_OK)
    return kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  kiln_aws_credentials_clear(&c->creds);
  c->creds = copy;
  c->have_creds = 1;
  c->creds_fixed = 1;
  register_secrets(c);
  return KILN_OK;
}

kiln_err kiln_aws_client_ensure_credentials(struct kiln_aws_client *c, struct kiln_error *err)
{
  time_t now = time(NULL) + c->clock_skew;
  if (c->have_creds &&
      (c->creds_fixed || !c->creds.expires || c->creds.expires - now > REFRESH_BEFORE_EXPIRY_S))
    return KILN_OK;
  if (c->creds_fixed)
    return KILN_OK;
  if (c->resolving)
    return kiln_error_set(err, KILN_E_INTERNAL,
                          "credential resolution needs credentials to sign its own request");
  struct kiln_aws_credentials fresh;
  memset(&fresh, 0, sizeof(fresh));
  c->resolving = 1;
  kiln_err rc = kiln_aws_credentials_resolve(c, &c->profile, &fresh, err);
  c->resolving = 0;
  if (rc != KILN_OK)
    return rc;
  if (c->have_creds)
    kiln_aws_client_log(c, KILN_LOG_DEBUG, "aws: credentials from %s refreshed", fresh.source);
  kiln_aws_credentials_clear(&c->creds);
  c->creds = fresh;
  c->have_creds = 1;
  register_secrets(c);
  return KILN_OK;
}

kiln_err kiln_aws_client_credentials(struct kiln_aws_client *c, struct kiln_aws_credentials *copy,
                                     struct kiln_error *err)
{
  kiln_err rc = kiln_aws_client_ensure_credentials(c, err);
  if (rc != KILN_OK || !copy)
    return rc;
  if (kiln_aws_credentials_copy(copy, &c->creds) != KILN_OK)
    return kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  return KILN_OK;
}

kiln_err kiln_aws_params_add(struct kiln_aws_params *p, const char *name, const char *value)
{
  if (p->failed)
    return KILN_E_NOMEM;
  if (p->len == p->cap) {
    size_t cap = p->cap ? p->cap * 2 : 16;
    struct kiln_aws_pair *grown = realloc(p->items, cap * sizeof(*grown));
    if (!grown) {
      p->failed = 1;
      return KILN_E_NOMEM;
    }
    p->items = grown;
    p->cap = cap;
  }
  char *n = strdup(name), *v = strdup(value ? value : "");
  if (!n || !v) {
    free(n);
    free(v);
    p->failed = 1;
    return KILN_E_NOMEM;
  }
  p->items[p->len].name = n;
  p->items[p->len++].value = v;
  return KILN_OK;
}

kiln_err kiln_aws_params_addf(struct kiln_aws_params *p, const char *name, const char *fmt, ...)
{
  struct kiln_buf b = KILN_BUF_INIT;
  va_list ap;
  va_start(ap, fmt);
  kiln_err rc = kiln_buf_vprintf(&b, fmt, ap);
  va_end(ap);
  if (rc == KILN_OK)
    rc = kiln_aws_params_add(p, name, kiln_buf_str(&b));
  else
    p->failed = 1;
  kiln_buf_free(&b);
  return rc;
}

void kiln_aws_params_clear(struct kiln_aws_params *p)
{
  for (size_t i = 0; i < p->len; i++) {
    free((char *)p->items[i].name);
    free((char *)p->items[i].value);
  }
  free(p->items);
  memset(p, 0, sizeof(*p));
}

static const char *query_api_version(const char *service)
{
  if (strcmp(service, "ec2") == 0)
    return "2016-11-15";
  if (strcmp(service, "autoscaling") == 0)
    return "2011-01-01";
  if (strcmp(service, "elasticloadbalancing") == 0)
    return "2015-12-01";
  if (strcmp(service, "iam") == 0)
    return "2010-05-08";
  if (strcmp(service, "sts") == 0)
    return "2011-06-15";
  return NULL;
}

/* application/x-www-form-urlencoded as the AWS SDKs write it: spaces as '+', other reserved
 * bytes as %XX (servers that re-encode the form to check the signature expect exactly this). */
static kiln_err form_encode(struct kiln_buf *b, const char *s)
{
  size_t start = b->len;
  if (kiln_aws_uri_encode(b, s, strlen(s), 0) != KILN_OK)
    return KILN_E_NOMEM;
  char *w = b->data + start;
  for (const char *r = w; *r; r++) {
    if (r[0] == '%' && r[1] == '2' && r[2] == '0') {
      *w++ = '+';
      r += 2;
    } else {
      *w++ = *r;
    }
  }
  *w = '\0';
  b->len = (size_t)(w - b->data);
  return KILN_OK;
}

static kiln_err form_append(struct kiln_buf *b, const char *name, const char *value)
{
  if (b->len && kiln_buf_putc(b, '&') != KILN_OK)
    return KILN_E_NOMEM;
  if (form_encode(b, name) != KILN_OK || kiln_buf_putc(b, '=') != KILN_OK)
    return KILN_E_NOMEM;
  return form_encode(b, value);
}

kiln_err kiln_aws_query(struct kiln_aws_client *c, const char *service, const char *action,
                        const struct kiln_aws_params *params, struct kiln_xml **out,
                        struct kiln_aws_error_info *info, struct kiln_error *err)
{
  return kiln_aws_query_signed(c, service, action, params, 1, out, info, err);
}

kiln_err kiln_aws_query_signed(struct kiln_aws_client *c, const char *service, const char *action,
                               const struct kiln_aws_params *params, int sign,
                               struct kiln_xml **out, struct kiln_aws_error_info *info,
                               struct kiln_error *err)
{
  const char *version = query_api_version(service);
  struct kiln_buf body = KILN_BUF_INIT;
  struct kiln_aws_response resp;
  kiln_err rc;
  *out = NULL;
  if (!version)
    return kiln_error_set(err, KILN_E_INTERNAL, "no Query API version known for %s", service);
  if (params && params->failed)
    return kiln_error_set(err, KILN_E_NOMEM, "%s %s: out of memory building the request", service,
                          action);
  rc = form_append(&body, "Action", action);
  if (rc == KILN_OK)
    rc = form_append(&body, "Version", version);
  for (size_t i = 0; params && i < params->len && rc == KILN_OK; i++)
    rc = form_append(&body, params->items[i].name, params->items[i].value);
  if (rc != KILN_OK) {
    kiln_buf_free(&body);
    return kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  }
  const struct kiln_aws_pair headers[] = {
      {"content-type", "application/x-www-form-urlencoded; charset=utf-8"}};
  struct kiln_aws_request req = KILN_AWS_REQUEST_INIT;
  req.service = service;
  req.operation = action;
  req.method = "POST";
  req.headers = headers;
  req.nheaders = 1;
  req.body = body.data ? body.data : "";
  req.body_len = body.len;
  req.unsigned_request = !sign;
  rc = kiln_aws_send(c, &req, &resp, info, err);
  kiln_buf_free(&body);
  if (rc == KILN_OK) {
    char what[128];
    snprintf(what, sizeof(what), "%s %s response", kiln_aws_service_title(service), action);
    rc = kiln_xml_parse(resp.body.data, resp.body.len, what, out, err);
  }
  kiln_aws_response_clear(&resp);
  return rc;
}

kiln_err kiln_aws_json(struct kiln_aws_client *c, const char *service, const char *target,
                       const cJSON *body, cJSON **out, struct kiln_aws_error_info *info,
                       struct kiln_error *err)
{
  char *text = cJSON_PrintUnformatted(body);
  struct kiln_aws_response resp;
  const char *operation = strchr(target, '.') ? strchr(target, '.') + 1 : target;
  *out = NULL;
  if (!text)
    return kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  const struct kiln_aws_pair headers[] = {{"content-type", "application/x-amz-json-1.1"},
                                          {"x-amz-target", target}};
  struct kiln_aws_request req = KILN_AWS_REQUEST_INIT;
  req.service = service;
  req.operation = operation;
  req.method = "POST";
  req.headers = headers;
  req.nheaders = 2;
  req.body = text;
  req.body_len = strlen(text);
  kiln_err rc = kiln_aws_send(c, &req, &resp, info, err);
  free(text);
  if (rc == KILN_OK) { /* operations without output answer with an empty body */
    *out = resp.body.len == 0 ? cJSON_CreateObject()
                              : cJSON_ParseWithLength(resp.body.data, resp.body.len);
    if (!*out)
      rc = kiln_error_set(err, KILN_E_REMOTE, "%s %s: the answer is not JSON",
                          kiln_aws_service_title(service), operation);
  }
  kiln_aws_response_clear(&resp);
  return rc;
}
