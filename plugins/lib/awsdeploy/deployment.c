/* Deployment identity: where the id and VPC come from, id rules, and derived resource names. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "deploy.h"
#include "util/buf.h"
#include "util/fs.h"
#include "util/hash.h"

kiln_err kiln_dotenv_get(const char *path, const char *key, char **out, struct kiln_error *err)
{
  *out = NULL;
  if (!kiln_path_exists(path))
    return KILN_OK;
  char *text = NULL;
  kiln_err rc = kiln_read_file(path, 1u << 20, &text, NULL, err);
  if (rc)
    return rc;
  size_t klen = strlen(key);
  char *save = NULL;
  for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
    while (isspace((unsigned char)*line))
      line++;
    if (strncmp(line, "export ", 7) == 0)
      line += 7;
    if (*line == '#' || strncmp(line, key, klen) != 0 || line[klen] != '=')
      continue;
    char *v = line + klen + 1;
    size_t n = strlen(v);
    while (n && isspace((unsigned char)v[n - 1]))
      v[--n] = '\0';
    if (n >= 2 && (v[0] == '"' || v[0] == '\'') && v[n - 1] == v[0]) {
      v[n - 1] = '\0';
      v++;
    }
    free(*out);
    *out = strdup(v); /* the last assignment wins, as in a shell */
  }
  free(text);
  return KILN_OK;
}

kiln_err kiln_deployment_id_check(const char *id, const char *source, struct kiln_error *err)
{
  size_t n = strlen(id);
  if (n == 0 || n > KILN_DEPLOYMENT_ID_MAX)
    return kiln_error_set(err, KILN_E_INVALID,
                          "%s: deployment id \"%s\" must be 1 to %d characters long", source, id,
                          KILN_DEPLOYMENT_ID_MAX);
  for (size_t i = 0; i < n; i++) {
    char c = id[i];
    int ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (c == '-' && i > 0 && i < n - 1);
    if (!ok)
      return kiln_error_set(err, KILN_E_INVALID,
                            "%s: deployment id \"%s\" has '%c' at position %zu; use lowercase "
                            "letters, digits and inner hyphens (it names S3 buckets, IAM roles "
                            "and tags)",
                            source, id, c, i + 1);
  }
  return KILN_OK;
}

char *kiln_deployment_id_generate(void)
{
  unsigned char r[5];
  if (RAND_bytes(r, sizeof r) != 1)
    return NULL;
  char hex[11];
  kiln_hex_encode(r, sizeof r, hex);
  struct kiln_buf b = KILN_BUF_INIT;
  kiln_buf_printf(&b, "kiln-%s", hex);
  return kiln_buf_detach(&b);
}

static const char *config_string(const cJSON *config, const char *key)
{
  const cJSON *v =
      cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(config, "aws"), key);
  return cJSON_IsString(v) && v->valuestring[0] ? v->valuestring : NULL;
}

/* First of kiln.json /aws/<key>, the environment variables, and the .env file. env_names are
 * "$NAME": the variable NAME, and the text *source names. */
static kiln_err resolve_one(const cJSON *config, const char *key, const char *const *env_names,
                            const char *dotenv_key, const char *dotenv, char **out,
                            const char **source, struct kiln_error *err)
{
  const char *v = config_string(config, key);
  if (v) {
    if (source)
      *source = key[0] == 'd' ? "kiln.json /aws/deployment_id" : "kiln.json /aws/vpc_id";
    *out = strdup(v);
    return *out ? KILN_OK : KILN_E_NOMEM;
  }
  for (int i = 0; env_names[i]; i++) {
    v = getenv(env_names[i] + 1);
    if (v && *v) {
      if (source)
        *source = env_names[i];
      *out = strdup(v);
      return *out ? KILN_OK : KILN_E_NOMEM;
    }
  }
  kiln_err rc = kiln_dotenv_get(dotenv, dotenv_key, out, err);
  if (!rc && *out && source)
    *source = dotenv_key[0] == 'D' ? ".env DEPLOYMENT_ID" : ".env VPC_ID";
  return rc;
}

kiln_err kiln_deployment_resolve(const cJSON *config, const char *app_dir,
                                 struct kiln_deployment *out, struct kiln_error *err)
{
  memset(out, 0, sizeof *out);
  char *dotenv = kiln_path_join(app_dir, ".env");
  if (!dotenv)
    return kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  static const char *const id_env[] = {"$KILN_DEPLOYMENT_ID", "$DEPLOYMENT_ID", NULL};
  static const char *const vpc_env[] = {"$VPC_ID", NULL};
  kiln_err rc = resolve_one(config, "deployment_id", id_env, "DEPLOYMENT_ID", dotenv, &out->id,
                            &out->id_source, err);
  if (!rc)
    rc = resolve_one(config, "vpc_id", vpc_env, "VPC_ID", dotenv, &out->vpc_id, NULL, err);
  if (!rc && out->id)
    rc = kiln_deployment_id_check(out->id, out->id_source, err);
  const char *tag = config_string(config, "tag_key");
  const char *region = config_string(config, "region");
  const char *bucket = config_string(config, "bucket");
  if (!rc && bucket && !(out->bucket = strdup(bucket)))
    rc = KILN_E_NOMEM;
  if (!rc && !(out->tag_key = strdup(tag ? tag : KILN_DEFAULT_TAG_KEY)))
    rc = KILN_E_NOMEM;
  if (!rc && region && !(out->region = strdup(region)))
    rc = KILN_E_NOMEM;
  if (rc == KILN_E_NOMEM)
    kiln_error_set(err, rc, "out of memory");
  free(dotenv);
  if (rc)
    kiln_deployment_clear(out);
  return rc;
}

void kiln_deployment_clear(struct kiln_deployment *d)
{
  free(d->id);
  free(d->vpc_id);
  free(d->tag_key);
  free(d->region);
  free(d->bucket);
  memset(d, 0, sizeof *d);
}

/* "kiln-<id><suffix>" */
static char *name_of(const char *id, const char *suffix)
{
  struct kiln_buf b = KILN_BUF_INIT;
  /* generated ids already start with "kiln-": no "kiln-kiln-" */
  kiln_buf_printf(&b, "%s%s%s", strncmp(id, "kiln-", 5) == 0 ? "" : "kiln-", id, suffix);
  return kiln_buf_detach(&b);
}

kiln_err kiln_deployment_names_make(const char *id, const char *account_id,
                                    struct kiln_deployment_names *out, struct kiln_error *err)
{
  memset(out, 0, sizeof *out);
  kiln_err rc = kiln_deployment_id_check(id, "deployment", err);
  if (rc)
    return rc;
  struct kiln_buf bucket_suffix = KILN_BUF_INIT;
  kiln_buf_printf(&bucket_suffix, "-%s", account_id ? account_id : "eifs");
  out->bucket = name_of(id, kiln_buf_str(&bucket_suffix));
  kiln_buf_free(&bucket_suffix);
  out->asg = name_of(id, "");
  out->launch_template = name_of(id, "");
  out->security_group = name_of(id, "");
  out->instance_role = name_of(id, "-instance");
  out->deploy_user = name_of(id, "-deploy");
  if (!out->bucket || !out->asg || !out->launch_template || !out->security_group ||
      !out->instance_role || !out->deploy_user) {
    kiln_deployment_names_clear(out);
    return kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  }
  return KILN_OK;
}

void kiln_deployment_names_clear(struct kiln_deployment_names *n)
{
  free(n->bucket);
  free(n->asg);
  free(n->launch_template);
  free(n->security_group);
  free(n->instance_role);
  free(n->deploy_user);
  memset(n, 0, sizeof *n);
}
