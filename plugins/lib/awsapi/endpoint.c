/* Where a request goes: endpoint per service (environment, profile, AWS defaults), S3 path-style or
 * virtual-hosted addressing, the request URL with its encoded path and query, the Host header. */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "client_internal.h"
#include "util/buf.h"

/* Service ids as the SDKs spell them in AWS_ENDPOINT_URL_<ID> and in [services] sections. */
static const struct {
  const char *service;
  const char *env_id;
  const char *config_id;
  const char *title;
} services[] = {
    {"s3", "S3", "s3", "S3"},
    {"ec2", "EC2", "ec2", "EC2"},
    {"iam", "IAM", "iam", "IAM"},
    {"sts", "STS", "sts", "STS"},
    {"autoscaling", "AUTO_SCALING", "auto_scaling", "Auto Scaling"},
    {"ssm", "SSM", "ssm", "SSM"},
    {"logs", "CLOUDWATCH_LOGS", "cloudwatch_logs", "CloudWatch Logs"},
    {"elasticloadbalancing", "ELASTIC_LOAD_BALANCING_V2", "elastic_load_balancing_v2",
     "Elastic Load Balancing"},
};

const char *kiln_aws_service_title(const char *service)
{
  for (size_t i = 0; i < sizeof(services) / sizeof(services[0]); i++)
    if (strcmp(services[i].service, service) == 0)
      return services[i].title;
  return service;
}

static char *strip_slash(char *url)
{
  size_t n = url ? strlen(url) : 0;
  while (n > 0 && url[n - 1] == '/')
    url[--n] = '\0';
  return url;
}

char *kiln_aws_service_endpoint(struct kiln_aws_client *c, const char *service)
{
  const char *env_id = NULL, *config_id = service;
  for (size_t i = 0; i < sizeof(services) / sizeof(services[0]); i++)
    if (strcmp(services[i].service, service) == 0) {
      env_id = services[i].env_id;
      config_id = services[i].config_id;
    }
  if (env_id) {
    char name[64];
    snprintf(name, sizeof(name), "AWS_ENDPOINT_URL_%s", env_id);
    const char *v = getenv(name);
    if (v && *v)
      return strip_slash(strdup(v));
  }
  const char *global = getenv("AWS_ENDPOINT_URL");
  if (global && *global)
    return strip_slash(strdup(global));
  char *from_services = kiln_aws_profile_service_endpoint(&c->profile, config_id);
  if (from_services)
    return strip_slash(from_services);
  if (c->profile.endpoint_url && *c->profile.endpoint_url)
    return strip_slash(strdup(c->profile.endpoint_url));
  struct kiln_buf b = KILN_BUF_INIT;
  const char *region = c->region ? c->region : "us-east-1";
  if (strcmp(service, "iam") == 0)
    kiln_buf_puts(&b, "https://iam.amazonaws.com");
  else
    kiln_buf_printf(&b, "https://%s.%s.amazonaws.com", service, region);
  return kiln_buf_detach(&b);
}

void kiln_aws_target_clear(struct kiln_aws_target *t)
{
  free(t->url);
  free(t->host);
  free(t->sign_path);
  free(t->signing_region);
  memset(t, 0, sizeof(*t));
}

static int host_is_ip_or_localhost(const char *host)
{
  unsigned char addr[16];
  char bare[64];
  size_t n = strlen(host);
  if (strcmp(host, "localhost") == 0 || (n > 10 && strcmp(host + n - 10, ".localhost") == 0))
    return 1;
  if (host[0] == '[' && n < sizeof(bare) + 2) { /* [::1] */
    memcpy(bare, host + 1, n - 2);
    bare[n - 2] = '\0';
    return inet_pton(AF_INET6, bare, addr) == 1;
  }
  return inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1;
}

/* Split "scheme://host[:port][/prefix]" into its parts (all owned by the caller). */
static kiln_err split_url(const char *url, char **scheme, char **hostport, char **host,
                          char **prefix, struct kiln_error *err)
{
  const char *sep = strstr(url, "://");
  if (!sep || sep == url)
    return kiln_error_set(err, KILN_E_INVALID,
                          "endpoint URL \"%s\" has no scheme: write it as http://HOST:PORT or "
                          "https://HOST",
                          url);
  const char *h = sep + 3;
  const char *slash = strchr(h, '/');
  size_t hp_len = slash ? (size_t)(slash - h) : strlen(h);
  if (hp_len == 0)
    return kiln_error_set(err, KILN_E_INVALID, "endpoint URL \"%s\" has no host", url);
  *scheme = strndup(url, (size_t)(sep - url));
  *hostport = strndup(h, hp_len);
  *prefix = strdup(slash ? slash : "");
  /* host without port: "[v6]:port" or "name:port" */
  const char *end = *hostport + hp_len;
  if ((*hostport)[0] == '[') {
    const char *close = strchr(*hostport, ']');
    end = close ? close + 1 : end;
  } else {
    const char *colon = strchr(*hostport, ':');
    end = colon ? colon : end;
  }
  *host = strndup(*hostport, (size_t)(end - *hostport));
  if (!*scheme || !*hostport || !*prefix || !*host)
    return kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  for (char *p = *scheme; *p; p++)
    *p = (char)tolower((unsigned char)*p);
  if (strcmp(*scheme, "http") != 0 && strcmp(*scheme, "https") != 0)
    return kiln_error_set(err, KILN_E_INVALID,
                          "endpoint URL \"%s\": only http and https are supported", url);
  return KILN_OK;
}

static int s3_use_path_style(struct kiln_aws_client *c, const char *scheme, const char *host,
                             const char *bucket)
{
  if (c->opt.s3_path_style > 0)
    return 1;
  if (c->profile.s3_addressing_style && strcmp(c->profile.s3_addressing_style, "path") == 0)
    return 1;
  if (c->profile.s3_addressing_style && strcmp(c->profile.s3_addressing_style, "virtual") == 0)
    return 0;
  if (host_is_ip_or_localhost(host))
    return 1;
  /* Dotted bucket names do not match the wildcard certificate over TLS; upper case is not DNS. */
  for (const char *p = bucket; *p; p++)
    if ((*p == '.' && strcmp(scheme, "https") == 0) || isupper((unsigned char)*p) || *p == '_')
      return 1;
  return 0;
}

kiln_err kiln_aws_target_resolve(struct kiln_aws_client *c, const struct kiln_aws_request *req,
                                 struct kiln_aws_target *t, struct kiln_error *err)
{
  char *base = NULL, *scheme = NULL, *hostport = NULL, *host = NULL, *prefix = NULL;
  struct kiln_buf url = KILN_BUF_INIT, sign_path = KILN_BUF_INIT, authority = KILN_BUF_INIT;
  const char *path = req->path && *req->path ? req->path : "/";
  kiln_err rc;

  memset(t, 0, sizeof(*t));
  t->s3 = strcmp(req->service, "s3") == 0;
  base = req->url ? strdup(req->url) : kiln_aws_service_endpoint(c, req->service);
  if (!base)
    return kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  if (req->url) { /* a complete URL: IMDS, container credentials */
    if ((rc = split_url(base, &scheme, &hostport, &host, &prefix, err)) != KILN_OK)
      goto out;
    t->url = base;
    base = NULL;
    t->host = hostport;
    hostport = NULL;
    t->sign_path = strdup("/");
    t->signing_region = strdup(c->region ? c->region : "us-east-1");
    rc = t->sign_path && t->signing_region ? KILN_OK
                                           : kiln_error_set(err, KILN_E_NOMEM, "out of memory");
    goto out;
  }
  if ((rc = split_url(base, &scheme, &hostport, &host, &prefix, err)) != KILN_OK)
    goto out;
  if (!c->region && strcmp(req->service, "iam") != 0 && strcmp(req->service, "sts") != 0) {
    rc = kiln_error_set(err, KILN_E_INVALID,
                        "no AWS region: set AWS_REGION, \"region\" in the AWS profile, or "
                        "/aws/region in kiln.json");
    goto out;
  }
  rc = KILN_E_NOMEM;
  if (kiln_buf_puts(&authority, hostport) != KILN_OK)
    goto out;
  if (kiln_buf_puts(&sign_path, prefix) != KILN_OK)
    goto out;
  if (t->s3 && req->bucket && *req->bucket) {
    if (s3_use_path_style(c, scheme, host, req->bucket)) {
      if (kiln_buf_printf(&sign_path, "/%s", req->bucket) != KILN_OK)
        goto out;
    } else {
      kiln_buf_reset(&authority);
      if (kiln_buf_printf(&authority, "%s.%s", req->bucket, hostport) != KILN_OK)
        goto out;
    }
  }
  /* Join without doubling the slash between a prefix/bucket and the path. */
  if (sign_path.len > 0 && strcmp(path, "/") == 0 && !(t->s3 && req->bucket)) {
    /* an endpoint prefix alone */
  } else if (kiln_buf_puts(&sign_path, path) != KILN_OK) {
    goto out;
  }
  if (sign_path.len == 0 && kiln_buf_putc(&sign_path, '/') != KILN_OK)
    goto out;
  if (kiln_buf_printf(&url, "%s://%s", scheme, kiln_buf_str(&authority)) != KILN_OK ||
      kiln_aws_uri_encode(&url, sign_path.data, sign_path.len, 1) != KILN_OK)
    goto out;
  for (size_t i = 0; i < req->nquery; i++) {
    const char *v = req->query[i].value ? req->query[i].value : "";
    if (kiln_buf_putc(&url, i ? '&' : '?') != KILN_OK ||
        kiln_aws_uri_encode(&url, req->query[i].name, strlen(req->query[i].name), 0) != KILN_OK ||
        kiln_buf_putc(&url, '=') != KILN_OK ||
        kiln_aws_uri_encode(&url, v, strlen(v), 0) != KILN_OK)
      goto out;
  }
  t->url = kiln_buf_detach(&url);
  t->host = kiln_buf_detach(&authority);
  t->sign_path = kiln_buf_detach(&sign_path);
  t->signing_region =
      strdup(strcmp(req->service, "iam") == 0 || !c->region ? "us-east-1" : c->region);
  if (t->url && t->host && t->sign_path && t->signing_region)
    rc = KILN_OK;
out:
  if (rc == KILN_E_NOMEM && (!err || !err->msg))
    kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  if (rc != KILN_OK)
    kiln_aws_target_clear(t);
  free(base);
  free(scheme);
  free(hostport);
  free(host);
  free(prefix);
  kiln_buf_free(&url);
  kiln_buf_free(&sign_path);
  kiln_buf_free(&authority);
  return rc;
}
