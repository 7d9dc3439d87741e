/* The AWS CLI's shared config and credentials files (INI with nested sub-sections), read into one
 * profile's settings. */
#include "profile.h"

#include <ctype.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/fs.h"

#define INI_MAX_BYTES (1u << 20)

void kiln_aws_profile_clear(struct kiln_aws_profile *p)
{
  char **fields[] = {&p->name,
                     &p->region,
                     &p->aws_access_key_id,
                     &p->aws_secret_access_key,
                     &p->aws_session_token,
                     &p->credential_process,
                     &p->role_arn,
                     &p->source_profile,
                     &p->credential_source,
                     &p->role_session_name,
                     &p->external_id,
                     &p->web_identity_token_file,
                     &p->endpoint_url,
                     &p->services,
                     &p->max_attempts,
                     &p->s3_addressing_style};
  for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
    free(*fields[i]);
    *fields[i] = NULL;
  }
  p->found = 0;
}

static char *trim(char *s)
{
  while (isspace((unsigned char)*s))
    s++;
  size_t n = strlen(s);
  while (n > 0 && isspace((unsigned char)s[n - 1]))
    s[--n] = '\0';
  return s;
}

/* One parsed INI entry handed to a callback: section, optional parent key of a nested block
 * ("s3" for "s3 =\n  addressing_style = path"), key and value. */
typedef kiln_err (*ini_entry_fn)(void *ctx, const char *section, const char *parent,
                                 const char *key, const char *value);

static kiln_err ini_parse(const char *path, ini_entry_fn fn, void *ctx, struct kiln_error *err)
{
  char *text = NULL;
  size_t len = 0;
  struct kiln_error read_err = KILN_ERROR_INIT;
  if (!path || !kiln_path_exists(path))
    return KILN_OK;
  kiln_err rc = kiln_read_file(path, INI_MAX_BYTES, &text, &len, &read_err);
  if (rc != KILN_OK) {
    rc = kiln_error_set(err, rc, "%s", kiln_error_msg(&read_err));
    kiln_error_clear(&read_err);
    return rc;
  }
  char *section = NULL, *parent = NULL;
  int line_no = 0;
  char *cursor = text;
  while (rc == KILN_OK && cursor && *cursor) {
    char *line = cursor;
    char *nl = strchr(cursor, '\n');
    if (nl)
      *nl = '\0';
    cursor = nl ? nl + 1 : NULL;
    line_no++;
    int indented = *line == ' ' || *line == '\t';
    char *t = trim(line);
    if (*t == '\0' || *t == '#' || *t == ';')
      continue;
    if (*t == '[') {
      char *close = strchr(t, ']');
      if (!close) {
        rc =
            kiln_error_set(err, KILN_E_INVALID, "%s:%d: section header without ']'", path, line_no);
        break;
      }
      *close = '\0';
      free(section);
      section = strdup(trim(t + 1));
      free(parent);
      parent = NULL;
      continue;
    }
    char *eq = strchr(t, '=');
    if (!eq || !section) {
      rc = kiln_error_set(err, KILN_E_INVALID, "%s:%d: expected \"key = value\"%s", path, line_no,
                          section ? "" : " inside a [section]");
      break;
    }
    *eq = '\0';
    char *key = trim(t), *value = trim(eq + 1);
    if (!indented) {
      free(parent);
      parent = *value == '\0' ? strdup(key) : NULL; /* "s3 =" opens a nested block */
      if (*value == '\0')
        continue;
      rc = fn(ctx, section, NULL, key, value);
    } else {
      rc = fn(ctx, section, parent, key, value);
    }
  }
  free(section);
  free(parent);
  free(text);
  return rc;
}

struct profile_reader {
  struct kiln_aws_profile *p;
  const char *want_section; /* "default", "profile NAME" or "NAME" */
  const char *alt_section;  /* also accepted (e.g. "NAME" in the config file for default) */
  int override;             /* values replace earlier ones (credentials file) */
};

static kiln_err set_field(char **field, const char *value, int override)
{
  if (*field && !override)
    return KILN_OK;
  char *copy = strdup(value);
  if (!copy)
    return KILN_E_NOMEM;
  free(*field);
  *field = copy;
  return KILN_OK;
}

static kiln_err on_profile_entry(void *ctx, const char *section, const char *parent,
                                 const char *key, const char *value)
{
  struct profile_reader *r = ctx;
  struct kiln_aws_profile *p = r->p;
  if (strcmp(section, r->want_section) != 0 &&
      !(r->alt_section && strcmp(section, r->alt_section) == 0))
    return KILN_OK;
  p->found = 1;
  if (parent) {
    if (strcmp(parent, "s3") == 0 && strcmp(key, "addressing_style") == 0)
      return set_field(&p->s3_addressing_style, value, r->override);
    return KILN_OK;
  }
  static const struct {
    const char *key;
    size_t offset;
  } keys[] = {
      {"region", offsetof(struct kiln_aws_profile, region)},
      {"aws_access_key_id", offsetof(struct kiln_aws_profile, aws_access_key_id)},
      {"aws_secret_access_key", offsetof(struct kiln_aws_profile, aws_secret_access_key)},
      {"aws_session_token", offsetof(struct kiln_aws_profile, aws_session_token)},
      {"credential_process", offsetof(struct kiln_aws_profile, credential_process)},
      {"role_arn", offsetof(struct kiln_aws_profile, role_arn)},
      {"source_profile", offsetof(struct kiln_aws_profile, source_profile)},
      {"credential_source", offsetof(struct kiln_aws_profile, credential_source)},
      {"role_session_name", offsetof(struct kiln_aws_profile, role_session_name)},
      {"external_id", offsetof(struct kiln_aws_profile, external_id)},
      {"web_identity_token_file", offsetof(struct kiln_aws_profile, web_identity_token_file)},
      {"endpoint_url", offsetof(struct kiln_aws_profile, endpoint_url)},
      {"services", offsetof(struct kiln_aws_profile, services)},
      {"max_attempts", offsetof(struct kiln_aws_profile, max_attempts)},
  };
  for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
    if (strcmp(key, keys[i].key) == 0)
      return set_field((char **)((char *)p + keys[i].offset), value, r->override);
  return KILN_OK;
}

static char *home_file(const char *env, const char *name)
{
  const char *v = getenv(env);
  if (v && *v)
    return strdup(v);
  const char *home = getenv("HOME");
  if (!home || !*home)
    return NULL;
  struct kiln_buf b = KILN_BUF_INIT;
  kiln_buf_printf(&b, "%s/.aws/%s", home, name);
  return kiln_buf_detach(&b);
}

kiln_err kiln_aws_profile_load(const char *name, struct kiln_aws_profile *out,
                               struct kiln_error *err)
{
  memset(out, 0, sizeof(*out));
  if (!name || !*name)
    name = getenv("AWS_PROFILE");
  if (!name || !*name)
    name = "default";
  char *config = home_file("AWS_CONFIG_FILE", "config");
  char *credentials = home_file("AWS_SHARED_CREDENTIALS_FILE", "credentials");
  struct kiln_buf section = KILN_BUF_INIT;
  kiln_buf_printf(&section, "profile %s", name);
  kiln_err rc = KILN_OK;
  if (!(out->name = strdup(name)))
    rc = kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  /* credentials file first (its keys win), then the config file fills the rest */
  struct profile_reader creds = {out, name, NULL, 0};
  struct profile_reader conf = {out, kiln_buf_str(&section),
                                strcmp(name, "default") == 0 ? "default" : NULL, 0};
  if (rc == KILN_OK)
    rc = ini_parse(credentials, on_profile_entry, &creds, err);
  if (rc == KILN_OK)
    rc = ini_parse(config, on_profile_entry, &conf, err);
  free(config);
  free(credentials);
  kiln_buf_free(&section);
  if (rc != KILN_OK)
    kiln_aws_profile_clear(out);
  return rc;
}

struct services_reader {
  const char *section; /* "services NAME" */
  const char *service;
  char *found;
};

static kiln_err on_services_entry(void *ctx, const char *section, const char *parent,
                                  const char *key, const char *value)
{
  struct services_reader *r = ctx;
  if (strcmp(section, r->section) == 0 && parent && strcmp(parent, r->service) == 0 &&
      strcmp(key, "endpoint_url") == 0 && !r->found)
    r->found = strdup(value);
  return KILN_OK;
}

char *kiln_aws_profile_service_endpoint(const struct kiln_aws_profile *p, const char *service)
{
  if (!p || !p->services)
    return NULL;
  char *config = home_file("AWS_CONFIG_FILE", "config");
  struct kiln_buf section = KILN_BUF_INIT;
  struct kiln_error ignored = KILN_ERROR_INIT;
  kiln_buf_printf(&section, "services %s", p->services);
  struct services_reader r = {kiln_buf_str(&section), service, NULL};
  ini_parse(config, on_services_entry, &r, &ignored);
  kiln_error_clear(&ignored);
  kiln_buf_free(&section);
  free(config);
  return r.found;
}
