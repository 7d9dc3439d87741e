/* The BYOC operations' shared runtime: identity + account, announced/counted mutations, tag
 * filters and TagSpecifications for EC2, and small answer helpers. */
#include "awsenv.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/buf.h"

kiln_err kiln_awsenv_init(struct kiln_awsenv *env, int allow_no_id, struct kiln_error *err)
{
  struct kiln_xml *doc = NULL;
  kiln_err rc = kiln_deployment_resolve(env->config, env->app_dir, &env->dep, err);
  if (rc != KILN_OK)
    return rc;
  if (!env->dep.id && !allow_no_id)
    return kiln_error_set(err, KILN_E_INVALID,
                          "no deployment id: run `kiln setup` first (it writes DEPLOYMENT_ID to "
                          "the app's .env), or set /aws/deployment_id in kiln.json or "
                          "$KILN_DEPLOYMENT_ID");
  rc = kiln_aws_query(env->c, "sts", "GetCallerIdentity", NULL, &doc, NULL, err);
  if (rc != KILN_OK)
    return kiln_error_prefix(err, "finding the AWS account of these credentials");
  const char *account = kiln_xml_text(kiln_xml_find(doc, "GetCallerIdentityResult"), "Account");
  if (!account || !*account)
    rc = kiln_error_set(err, KILN_E_REMOTE, "STS GetCallerIdentity: the answer has no Account");
  else if (!(env->account_id = strdup(account)))
    rc = kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  kiln_xml_free(doc);
  if (rc == KILN_OK && !env->dep.region && kiln_aws_client_region(env->c))
    env->dep.region = strdup(kiln_aws_client_region(env->c));
  if (rc == KILN_OK && env->dep.id)
    rc = kiln_awsenv_name_resources(env, env->dep.id, err);
  return rc;
}

kiln_err kiln_awsenv_name_resources(struct kiln_awsenv *env, const char *id, struct kiln_error *err)
{
  kiln_deployment_names_clear(&env->names);
  kiln_err rc = kiln_deployment_names_make(id, env->account_id, &env->names, err);
  if (rc == KILN_OK && env->dep.bucket) {
    free(env->names.bucket);
    if (!(env->names.bucket = strdup(env->dep.bucket)))
      rc = kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  }
  return rc;
}

void kiln_awsenv_clear(struct kiln_awsenv *env)
{
  kiln_deployment_clear(&env->dep);
  kiln_deployment_names_clear(&env->names);
  free(env->account_id);
  env->account_id = NULL;
}

void kiln_awsenv_announce(struct kiln_awsenv *env, const char *action, const char *resource,
                          const char *fmt, ...)
{
  char detail[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(detail, sizeof(detail), fmt, ap);
  va_end(ap);
  if (env->announce)
    env->announce(env->announce_ctx, action, resource, detail);
}

static int code_in(const char *code, const char *const *codes)
{
  for (size_t i = 0; codes && codes[i]; i++)
    if (strcmp(code, codes[i]) == 0)
      return 1;
  return 0;
}

kiln_err kiln_awsenv_mutate(struct kiln_awsenv *env, const char *service, const char *action,
                            const struct kiln_aws_params *p, const char *resource,
                            const char *const *ok_codes, struct kiln_xml **out,
                            struct kiln_error *err)
{
  struct kiln_aws_error_info info;
  struct kiln_xml *doc = NULL;
  env->mutations++;
  if (out)
    *out = NULL;
  if (env->dry_run)
    return KILN_OK;
  kiln_err rc = kiln_aws_query(env->c, service, action, p, &doc, &info, err);
  if (rc != KILN_OK && info.code[0] && code_in(info.code, ok_codes)) {
    kiln_error_clear(err);
    return KILN_OK;
  }
  if (rc != KILN_OK)
    return kiln_error_prefix(err, "%s", resource);
  if (out)
    *out = doc;
  else
    kiln_xml_free(doc);
  return KILN_OK;
}

kiln_err kiln_awsenv_read(struct kiln_awsenv *env, const char *service, const char *action,
                          const struct kiln_aws_params *p, struct kiln_xml **out,
                          struct kiln_error *err)
{
  return kiln_aws_query(env->c, service, action, p, out, NULL, err);
}

kiln_err kiln_awsenv_tag_filter(struct kiln_awsenv *env, struct kiln_aws_params *p, int *n)
{
  char name[48], value[48];
  snprintf(name, sizeof(name), "Filter.%d.Name", *n);
  snprintf(value, sizeof(value), "Filter.%d.Value.1", *n);
  (*n)++;
  if (kiln_aws_params_addf(p, name, "tag:%s", env->dep.tag_key) != KILN_OK ||
      kiln_aws_params_add(p, value, env->dep.id) != KILN_OK)
    return KILN_E_NOMEM;
  return KILN_OK;
}

kiln_err kiln_awsenv_tag_spec(struct kiln_awsenv *env, struct kiln_aws_params *p, int n,
                              const char *resource_type, const char *name)
{
  char key[96];
  kiln_err rc;
  snprintf(key, sizeof(key), "TagSpecification.%d.ResourceType", n);
  rc = kiln_aws_params_add(p, key, resource_type);
  const char *tags[3][2] = {
      {env->dep.tag_key, env->dep.id}, {"kiln:managed", "true"}, {"Name", name}};
  for (int i = 0; i < 3 && rc == KILN_OK; i++) {
    snprintf(key, sizeof(key), "TagSpecification.%d.Tag.%d.Key", n, i + 1);
    rc = kiln_aws_params_add(p, key, tags[i][0]);
    snprintf(key, sizeof(key), "TagSpecification.%d.Tag.%d.Value", n, i + 1);
    if (rc == KILN_OK)
      rc = kiln_aws_params_add(p, key, tags[i][1]);
  }
  return rc;
}

const char *kiln_awsenv_first(const struct kiln_xml *doc, const char *name)
{
  const struct kiln_xml *x = kiln_xml_find(doc, name);
  return x && *x->text ? x->text : NULL;
}

const struct kiln_xml *kiln_awsenv_items(const struct kiln_xml *doc, const char *list_name)
{
  const struct kiln_xml *list = kiln_xml_find(doc, list_name);
  return list ? list->child : NULL;
}

char *kiln_awsenv_dup(const char *s)
{
  return s ? strdup(s) : NULL;
}

/* Describe<what> filtered by the deployment tag (plus an optional extra filter); the answer. */
kiln_err kiln_awsenv_describe_tagged(struct kiln_awsenv *env, const char *action,
                                     const char *filter, const char *value, struct kiln_xml **out,
                                     struct kiln_error *err)
{
  struct kiln_aws_params p = {0};
  int n = 1;
  kiln_err rc = kiln_awsenv_tag_filter(env, &p, &n);
  if (rc == KILN_OK && filter) {
    char key[48];
    snprintf(key, sizeof(key), "Filter.%d.Name", n);
    rc = kiln_aws_params_add(&p, key, filter);
    snprintf(key, sizeof(key), "Filter.%d.Value.1", n);
    if (rc == KILN_OK)
      rc = kiln_aws_params_add(&p, key, value);
  }
  if (rc != KILN_OK)
    rc = kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  else
    rc = kiln_awsenv_read(env, "ec2", action, &p, out, err);
  kiln_aws_params_clear(&p);
  return rc;
}

/* The id a create call returned (or a placeholder in a plan). */
kiln_err kiln_awsenv_take_id(struct kiln_awsenv *env, struct kiln_xml *doc, const char *field,
                             const char *placeholder, char **out, struct kiln_error *err)
{
  const char *id = env->dry_run ? placeholder : kiln_awsenv_first(doc, field);
  *out = id ? strdup(id) : NULL;
  kiln_xml_free(doc);
  if (!id)
    return kiln_error_set(err, KILN_E_REMOTE, "EC2: the answer has no %s", field);
  return *out ? KILN_OK : kiln_error_set(err, KILN_E_NOMEM, "out of memory");
}

/* Error codes that mean "already gone" to a deletion. */
const char *const kiln_awsenv_gone[] = {"NoSuchEntity",
                                        "InvalidGroup.NotFound",
                                        "InvalidSubnetID.NotFound",
                                        "InvalidVpcID.NotFound",
                                        "InvalidRouteTableID.NotFound",
                                        "InvalidInternetGatewayID.NotFound",
                                        "InvalidAllocationID.NotFound",
                                        "InvalidAssociationID.NotFound",
                                        "InvalidLaunchTemplateName.NotFoundException",
                                        "Gateway.NotAttached",
                                        "NoSuchBucket",
                                        NULL};

kiln_err kiln_awsenv_delete(struct kiln_awsenv *env, const char *service, const char *action,
                            const char *key, const char *id, const char *what,
                            struct kiln_error *err)
{
  struct kiln_aws_params p = {0};
  kiln_awsenv_announce(env, "delete", id, "%s", what);
  kiln_aws_params_add(&p, key, id);
  kiln_err rc = kiln_awsenv_mutate(env, service, action, &p, id, kiln_awsenv_gone, NULL, err);
  kiln_aws_params_clear(&p);
  return rc;
}

/* Retry a deletion that fails with DependencyViolation while instances shut down. */
kiln_err kiln_awsenv_delete_waiting(struct kiln_awsenv *env, const char *action, const char *key,
                                    const char *id, const char *what, struct kiln_error *err)
{
  kiln_err rc = KILN_OK;
  for (int attempt = 0; attempt < 40; attempt++) {
    rc = kiln_awsenv_delete(env, "ec2", action, key, id, what, err);
    if (rc == KILN_OK || !strstr(kiln_error_msg(err), "DependencyViolation"))
      return rc;
    kiln_error_clear(err);
    env->mutations--; /* count the deletion once */
    kiln_aws_client_log(env->c, KILN_LOG_INFO, "%s is still in use; waiting", id);
    sleep(attempt < 5 ? 2 : 5);
  }
  return kiln_error_set(err, KILN_E_REMOTE, "%s %s is still in use after 3 minutes", what, id);
}
