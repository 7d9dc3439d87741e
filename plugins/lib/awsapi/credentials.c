/* The credential chain in the AWS CLI's order: environment (with AWS_ROLE_ARN beside the keys,
 * that role assumed with them: kiln's deploy credentials file), the profile (static keys, role_arn
 * via STS AssumeRole, web_identity_token_file, credential_process), web identity from the
 * environment, container credentials, EC2 instance metadata (IMDSv2). */
#include "credentials.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "client_internal.h"
#include "credentials_sources.h"
#include "util/buf.h"
#include "util/fs.h"

#define MAX_ROLE_CHAIN 5
/* IAM is eventually consistent: a new access key, or a new role's trust, can be refused for some
 * seconds after it was made. Deploy credentials younger than this (KILN_CREDENTIALS_CREATED, the
 * epoch second `kiln setup` wrote them) are retried on a refusal until they are this old. */
#define IAM_SETTLE_SECONDS 90

time_t kiln_aws_parse_iso8601(const char *s)
{
  struct tm tm;
  int y, mo, d, h, mi, sec;
  memset(&tm, 0, sizeof(tm));
  if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d", &y, &mo, &d, &h, &mi, &sec) != 6)
    return (time_t)-1;
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
    return (time_t)-1;
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = sec;
  time_t t = timegm(&tm);
  /* an explicit offset (+hh:mm / -hh:mm) after the seconds and optional fraction */
  const char *p = s + 19;
  if (*p == '.')
    for (p++; *p >= '0' && *p <= '9'; p++)
      ;
  int oh = 0, om = 0;
  if ((*p == '+' || *p == '-') && sscanf(p + 1, "%2d:%2d", &oh, &om) == 2)
    t -= (*p == '+' ? 1 : -1) * (oh * 3600 + om * 60);
  return t;
}

static kiln_err take_string(const cJSON *doc, const char *a, const char *b, char **out)
{
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(doc, a);
  if (!cJSON_IsString(v) && b)
    v = cJSON_GetObjectItemCaseSensitive(doc, b);
  *out = NULL;
  if (!cJSON_IsString(v) || !*v->valuestring)
    return KILN_E_NOT_FOUND;
  return (*out = strdup(v->valuestring)) ? KILN_OK : KILN_E_NOMEM;
}

kiln_err kiln_aws_credentials_from_json(const char *json, const char *source,
                                        struct kiln_aws_credentials *out, struct kiln_error *err)
{
  memset(out, 0, sizeof(*out));
  cJSON *doc = json ? cJSON_Parse(json) : NULL;
  if (!doc)
    return kiln_error_set(err, KILN_E_AUTH, "%s: the credentials are not JSON", source);
  const cJSON *version = cJSON_GetObjectItemCaseSensitive(doc, "Version");
  kiln_err rc = KILN_OK;
  if (version && !(cJSON_IsNumber(version) && version->valueint == 1))
    rc = kiln_error_set(err, KILN_E_AUTH, "%s: credentials \"Version\" must be 1", source);
  if (rc == KILN_OK &&
      (take_string(doc, "AccessKeyId", NULL, &out->access_key_id) != KILN_OK ||
       take_string(doc, "SecretAccessKey", NULL, &out->secret_access_key) != KILN_OK))
    rc = kiln_error_set(err, KILN_E_AUTH, "%s: the answer lacks AccessKeyId or SecretAccessKey",
                        source);
  if (rc == KILN_OK)
    take_string(doc, "Token", "SessionToken", &out->session_token);
  char *expiration = NULL;
  if (rc == KILN_OK && take_string(doc, "Expiration", NULL, &expiration) == KILN_OK) {
    out->expires = kiln_aws_parse_iso8601(expiration);
    if (out->expires == (time_t)-1)
      rc = kiln_error_set(err, KILN_E_AUTH, "%s: Expiration \"%s\" is not an ISO 8601 time", source,
                          expiration);
  }
  free(expiration);
  cJSON_Delete(doc);
  if (rc != KILN_OK)
    kiln_aws_credentials_clear(out);
  else
    snprintf(out->source, sizeof(out->source), "%s", source);
  return rc;
}

static kiln_err static_keys(const char *id, const char *secret, const char *token,
                            const char *source, struct kiln_aws_credentials *out,
                            struct kiln_error *err)
{
  memset(out, 0, sizeof(*out));
  out->access_key_id = strdup(id);
  out->secret_access_key = strdup(secret);
  out->session_token = token && *token ? strdup(token) : NULL;
  snprintf(out->source, sizeof(out->source), "%s", source);
  if (!out->access_key_id || !out->secret_access_key || (token && *token && !out->session_token)) {
    kiln_aws_credentials_clear(out);
    return kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  }
  return KILN_OK;
}

/* STS Credentials element to credentials. */
static kiln_err from_sts(const struct kiln_xml *doc, const char *source,
                         struct kiln_aws_credentials *out, struct kiln_error *err)
{
  const struct kiln_xml *c = kiln_xml_find((struct kiln_xml *)doc, "Credentials");
  const char *id = kiln_xml_text(c, "AccessKeyId"), *secret = kiln_xml_text(c, "SecretAccessKey");
  if (!id || !secret)
    return kiln_error_set(err, KILN_E_REMOTE, "%s: the STS answer has no credentials", source);
  kiln_err rc = static_keys(id, secret, kiln_xml_text(c, "SessionToken"), source, out, err);
  if (rc == KILN_OK && kiln_xml_text(c, "Expiration"))
    out->expires = kiln_aws_parse_iso8601(kiln_xml_text(c, "Expiration"));
  if (out->expires == (time_t)-1)
    out->expires = 0;
  return rc;
}

static void session_name(const char *configured, char *out, size_t size)
{
  if (configured && *configured)
    snprintf(out, size, "%s", configured);
  else
    snprintf(out, size, "kiln-%ld", (long)time(NULL));
}

/* When the credentials were made (KILN_CREDENTIALS_CREATED, epoch seconds), or 0. */
static time_t credentials_created(void)
{
  const char *v = getenv("KILN_CREDENTIALS_CREATED");
  char *end = NULL;
  long long t = v && *v ? strtoll(v, &end, 10) : 0;
  return end && *end == '\0' && t > 0 ? (time_t)t : 0;
}

/* Wait before asking STS again when credentials made `created` are still settling (seconds to
 * wait, 0 when they are old enough that a refusal is final, or the user cancelled). */
static unsigned settle_wait(struct kiln_aws_client *c, time_t created, unsigned attempt)
{
  time_t now = time(NULL);
  if (!created || now >= created + IAM_SETTLE_SECONDS || now < created - 300)
    return 0;
  if (c->opt.cancelled && c->opt.cancelled(c->opt.hook_ctx))
    return 0;
  unsigned wait = attempt < 3 ? 1u << attempt : 8; /* 1 2 4 8 8 ... */
  time_t left = created + IAM_SETTLE_SECONDS - now;
  return wait < (unsigned)left ? wait : (unsigned)left;
}

/* STS AssumeRole signed with the source credentials (on a client of the same settings);
 * created: when the source keys were made (0: unknown), see IAM_SETTLE_SECONDS. */
static kiln_err assume_role(struct kiln_aws_client *c, const struct kiln_aws_credentials *source,
                            const char *role_arn, const char *session, const char *external_id,
                            time_t created, struct kiln_aws_credentials *out,
                            struct kiln_error *err)
{
  struct kiln_aws_client *sts = NULL;
  struct kiln_aws_params p = {0};
  struct kiln_xml *doc = NULL;
  char name[64], label[80];
  session_name(session, name, sizeof(name));
  kiln_err rc = kiln_aws_client_new(&c->opt, &sts, err);
  if (rc == KILN_OK)
    rc = kiln_aws_client_set_credentials(sts, source, err);
  kiln_aws_params_add(&p, "RoleArn", role_arn);
  kiln_aws_params_add(&p, "RoleSessionName", name);
  if (external_id)
    kiln_aws_params_add(&p, "ExternalId", external_id);
  for (unsigned attempt = 0; rc == KILN_OK; attempt++) {
    struct kiln_aws_error_info info = {0};
    kiln_xml_free(doc);
    doc = NULL;
    rc = kiln_aws_query(sts, "sts", "AssumeRole", &p, &doc, &info, err);
    unsigned wait = rc == KILN_E_AUTH ? settle_wait(c, created, attempt) : 0;
    if (!wait)
      break;
    kiln_aws_client_log(c, KILN_LOG_INFO,
                        "STS refused the deploy credentials made %lds ago (%s): IAM takes a few "
                        "seconds to know new keys and roles; asking again in %us",
                        (long)(time(NULL) - created), info.code[0] ? info.code : "AccessDenied",
                        wait);
    kiln_error_clear(err);
    rc = KILN_OK;
    for (unsigned s = 0; s < wait && !(c->opt.cancelled && c->opt.cancelled(c->opt.hook_ctx)); s++)
      sleep(1);
  }
  snprintf(label, sizeof(label), "assumed role (%.40s)", source->source);
  if (rc == KILN_OK)
    rc = from_sts(doc, label, out, err);
  else
    kiln_error_prefix(err, "assuming role %s", role_arn);
  kiln_xml_free(doc);
  kiln_aws_params_clear(&p);
  kiln_aws_client_free(sts);
  return rc;
}

static kiln_err web_identity(struct kiln_aws_client *c, const char *token_file,
                             const char *role_arn, const char *session, const char *source,
                             struct kiln_aws_credentials *out, struct kiln_error *err)
{
  char *token = NULL;
  size_t len = 0;
  struct kiln_aws_params p = {0};
  struct kiln_xml *doc = NULL;
  char name[64];
  kiln_err rc = kiln_read_file(token_file, 1u << 16, &token, &len, err);
  if (rc != KILN_OK)
    return kiln_error_prefix(err, "web identity token file");
  while (len > 0 && (token[len - 1] == '\n' || token[len - 1] == '\r'))
    token[--len] = '\0';
  if (c->opt.redact)
    c->opt.redact(c->opt.hook_ctx, token);
  session_name(session, name, sizeof(name));
  kiln_aws_params_add(&p, "RoleArn", role_arn);
  kiln_aws_params_add(&p, "RoleSessionName", name);
  kiln_aws_params_add(&p, "WebIdentityToken", token);
  rc = kiln_aws_query_signed(c, "sts", "AssumeRoleWithWebIdentity", &p, 0, &doc, NULL, err);
  if (rc == KILN_OK)
    rc = from_sts(doc, source, out, err);
  else
    kiln_error_prefix(err, "web identity for role %s", role_arn);
  kiln_xml_free(doc);
  kiln_aws_params_clear(&p);
  free(token);
  return rc;
}

/* A profile's credentials; depth guards against source_profile loops. */
static kiln_err from_profile(struct kiln_aws_client *c, const struct kiln_aws_profile *p, int depth,
                             struct kiln_aws_credentials *out, struct kiln_error *err)
{
  char label[48];
  snprintf(label, sizeof(label), "profile %s", p->name ? p->name : "default");
  if (depth > MAX_ROLE_CHAIN)
    return kiln_error_set(err, KILN_E_INVALID,
                          "profile %s: source_profile chain longer than %d (a loop?)", p->name,
                          MAX_ROLE_CHAIN);
  if (p->role_arn && p->web_identity_token_file)
    return web_identity(c, p->web_identity_token_file, p->role_arn, p->role_session_name, label,
                        out, err);
  if (p->role_arn) {
    struct kiln_aws_credentials source;
    kiln_err rc;
    memset(&source, 0, sizeof(source));
    if (p->source_profile && strcmp(p->source_profile, p->name) == 0 && p->aws_access_key_id &&
        p->aws_secret_access_key) {
      rc = static_keys(p->aws_access_key_id, p->aws_secret_access_key, p->aws_session_token, label,
                       &source, err);
    } else if (p->source_profile) {
      struct kiln_aws_profile sp;
      rc = kiln_aws_profile_load(p->source_profile, &sp, err);
      if (rc == KILN_OK && !sp.found)
        rc = kiln_error_set(err, KILN_E_INVALID,
                            "profile %s: source_profile \"%s\" is in neither AWS file", p->name,
                            p->source_profile);
      if (rc == KILN_OK)
        rc = from_profile(c, &sp, depth + 1, &source, err);
      kiln_aws_profile_clear(&sp);
    } else if (p->credential_source) {
      rc = kiln_aws_credentials_from_source(c, p->credential_source, &source, err);
    } else {
      rc = kiln_error_set(err, KILN_E_INVALID,
                          "profile %s: role_arn needs source_profile, credential_source or "
                          "web_identity_token_file",
                          p->name);
    }
    if (rc == KILN_OK)
      rc = assume_role(c, &source, p->role_arn, p->role_session_name, p->external_id, 0, out, err);
    kiln_aws_credentials_clear(&source);
    return rc;
  }
  if (p->aws_access_key_id || p->aws_secret_access_key) {
    if (!p->aws_access_key_id || !p->aws_secret_access_key)
      return kiln_error_set(err, KILN_E_INVALID, "profile %s has %s but not %s", p->name,
                            p->aws_access_key_id ? "aws_access_key_id" : "aws_secret_access_key",
                            p->aws_access_key_id ? "aws_secret_access_key" : "aws_access_key_id");
    return static_keys(p->aws_access_key_id, p->aws_secret_access_key, p->aws_session_token, label,
                       out, err);
  }
  if (p->credential_process)
    return kiln_aws_credentials_from_process(p->credential_process, label, out, err);
  return KILN_E_NOT_FOUND;
}

kiln_err kiln_aws_credentials_resolve(struct kiln_aws_client *client,
                                      const struct kiln_aws_profile *profile,
                                      struct kiln_aws_credentials *out, struct kiln_error *err)
{
  struct kiln_buf tried = KILN_BUF_INIT;
  kiln_err rc;
  memset(out, 0, sizeof(*out));
  const char *id = getenv("AWS_ACCESS_KEY_ID"), *secret = getenv("AWS_SECRET_ACCESS_KEY");
  if ((id && *id) || (secret && *secret)) {
    if (!(id && *id) || !(secret && *secret))
      return kiln_error_set(err, KILN_E_INVALID, "%s is set but %s is not: set both, or neither",
                            id && *id ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY",
                            id && *id ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID");
    rc = static_keys(id, secret, getenv("AWS_SESSION_TOKEN"), "environment", out, err);
    /* keys that may only assume a role (the deploy credentials `kiln setup` writes): with
     * AWS_ROLE_ARN and no web identity token, that role is assumed with them */
    const char *role = getenv("AWS_ROLE_ARN"), *token_file = getenv("AWS_WEB_IDENTITY_TOKEN_FILE");
    if (rc == KILN_OK && role && *role && !(token_file && *token_file)) {
      struct kiln_aws_credentials source = *out;
      memset(out, 0, sizeof(*out));
      rc = assume_role(client, &source, role, getenv("AWS_ROLE_SESSION_NAME"), NULL,
                       credentials_created(), out, err);
      kiln_aws_credentials_clear(&source);
    }
    return rc;
  }
  kiln_buf_puts(&tried, "environment (AWS_ACCESS_KEY_ID unset)");
  if (profile && profile->found) {
    rc = from_profile(client, profile, 0, out, err);
    if (rc != KILN_E_NOT_FOUND) {
      kiln_buf_free(&tried);
      return rc;
    }
    kiln_buf_printf(&tried, ", profile \"%s\" (no keys, role or process)", profile->name);
  } else {
    const char *config = getenv("AWS_CONFIG_FILE"), *shared = getenv("AWS_SHARED_CREDENTIALS_FILE");
    if (!config || !*config)
      config = "~/.aws/config";
    if (!shared || !*shared)
      shared = "~/.aws/credentials";
    kiln_buf_printf(&tried, ", profile \"%s\" (not in %s or %s)",
                    profile && profile->name ? profile->name : "default", config, shared);
    const char *named = getenv("AWS_PROFILE");
    if (named && *named) {
      kiln_buf_free(&tried);
      return kiln_error_set(err, KILN_E_INVALID,
                            "AWS_PROFILE=%s names a profile that is in neither %s nor %s", named,
                            config, shared);
    }
  }
  const char *token_file = getenv("AWS_WEB_IDENTITY_TOKEN_FILE");
  const char *role = getenv("AWS_ROLE_ARN");
  if (token_file && *token_file) {
    kiln_buf_free(&tried);
    if (!role || !*role)
      return kiln_error_set(err, KILN_E_INVALID,
                            "AWS_WEB_IDENTITY_TOKEN_FILE is set but AWS_ROLE_ARN is not");
    return web_identity(client, token_file, role, getenv("AWS_ROLE_SESSION_NAME"), "web identity",
                        out, err);
  }
  kiln_buf_puts(&tried, ", web identity (AWS_WEB_IDENTITY_TOKEN_FILE unset)");
  rc = kiln_aws_credentials_from_container(client, out, err);
  if (rc != KILN_E_NOT_FOUND) {
    kiln_buf_free(&tried);
    return rc;
  }
  kiln_buf_puts(&tried, ", container (AWS_CONTAINER_CREDENTIALS_*_URI unset)");
  struct kiln_error imds_err = KILN_ERROR_INIT;
  rc = kiln_aws_credentials_from_imds(client, out, &imds_err);
  if (rc == KILN_OK) {
    kiln_buf_free(&tried);
    return rc;
  }
  kiln_buf_printf(&tried, ", instance metadata (%s)", kiln_error_msg(&imds_err));
  kiln_error_clear(&imds_err);
  rc = kiln_error_set(err, KILN_E_AUTH,
                      "no AWS credentials: tried %s. Set AWS_ACCESS_KEY_ID and "
                      "AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or run where a role is available",
                      kiln_buf_str(&tried));
  kiln_buf_free(&tried);
  return rc;
}
