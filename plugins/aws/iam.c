/* What the IAM resource kinds (res_instance_role.c, res_deploy_user.c) share, and the deployment's
 * IAM read and converged as one value for update-policy. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iam.h"
#include "resource.h"
#include "sigv4.h"
#include "util/buf.h"
#include "util/fs.h"
#include "util/json.h"

void kiln_iam_clear(struct kiln_iam *iam)
{
  free(iam->deploy_policy);
  free(iam->instance_policy);
  memset(iam, 0, sizeof(*iam));
}

kiln_err kiln_iam_add_tags(struct kiln_awsenv *env, struct kiln_aws_params *p)
{
  kiln_err rc = kiln_aws_params_add(p, "Tags.member.1.Key", env->dep.tag_key);
  if (rc == KILN_OK)
    rc = kiln_aws_params_add(p, "Tags.member.1.Value", env->dep.id);
  if (rc == KILN_OK)
    rc = kiln_aws_params_add(p, "Tags.member.2.Key", "kiln:managed");
  if (rc == KILN_OK)
    rc = kiln_aws_params_add(p, "Tags.member.2.Value", "true");
  return rc;
}

/* A read call where NoSuchEntity means "absent": *found 0, KILN_OK. */
kiln_err kiln_iam_get(struct kiln_awsenv *env, const char *action, const char *name_key,
                      const char *name, const char *extra_key, const char *extra,
                      struct kiln_xml **doc, int *found, struct kiln_error *err)
{
  struct kiln_aws_params p = {0};
  struct kiln_aws_error_info info;
  kiln_aws_params_add(&p, name_key, name);
  if (extra_key)
    kiln_aws_params_add(&p, extra_key, extra);
  kiln_err rc = kiln_aws_query(env->c, "iam", action, &p, doc, &info, err);
  kiln_aws_params_clear(&p);
  *found = rc == KILN_OK;
  if (rc != KILN_OK && strcmp(info.code, "NoSuchEntity") == 0) {
    kiln_error_clear(err);
    return KILN_OK;
  }
  return rc;
}

cJSON *kiln_iam_document(const struct kiln_xml *doc, const char *element)
{
  const char *encoded = doc ? kiln_awsenv_first(doc, element) : NULL;
  char *text = encoded ? kiln_aws_uri_decode(encoded, strlen(encoded)) : NULL;
  cJSON *json = text ? cJSON_Parse(text) : NULL;
  if (!json && encoded)
    json = cJSON_Parse(encoded);
  free(text);
  return json;
}

/* A value the policy must name: refused when missing (no silent "*"), or in a preview a
 * placeholder saying what setup creates. */
static kiln_err require(struct kiln_awsenv *env, const struct kiln_policy_scope *s,
                        const char *value, const char *what, struct kiln_error *err)
{
  if ((value && *value) || s->preview)
    return KILN_OK;
  return kiln_error_set(err, KILN_E_NOT_FOUND,
                        "deployment %s has no %s in region %s of account %s: the deploy policy "
                        "names it and kiln does not render a policy without it; run `kiln setup` "
                        "(or use the deployment's region)",
                        env->dep.id, what, env->dep.region ? env->dep.region : "(default)",
                        env->account_id);
}

static const char *or_pending(const char *value, const char *placeholder)
{
  return value && *value ? value : placeholder;
}

/* "m5.*", "c6i.*"...: the families of the sizing catalogue's enclave-capable types. */
static kiln_err catalogue_patterns(const char *share_dir, cJSON *out, struct kiln_error *err)
{
  char *path = kiln_path_join(share_dir, "instance-types.json"), *text = NULL;
  kiln_err rc = path ? kiln_read_file(path, 1u << 22, &text, NULL, err) : KILN_E_NOMEM;
  cJSON *doc = rc == KILN_OK ? cJSON_Parse(text) : NULL;
  const cJSON *types = cJSON_GetObjectItemCaseSensitive(doc, "instance_types"), *t;
  if (rc == KILN_OK && !cJSON_IsArray(types))
    rc = kiln_error_set(err, KILN_E_INVALID, "%s: no instance_types list", path);
  cJSON_ArrayForEach(t, (rc == KILN_OK ? types : NULL))
  {
    const cJSON *family = cJSON_GetObjectItemCaseSensitive(t, "family");
    if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(t, "enclave_support")) ||
        !cJSON_IsString(family) ||
        strspn(family->valuestring, "abcdefghijklmnopqrstuvwxyz0123456789-") !=
            strlen(family->valuestring))
      continue;
    char pattern[64];
    snprintf(pattern, sizeof pattern, "%s.*", family->valuestring);
    int seen = 0;
    const cJSON *have;
    cJSON_ArrayForEach(have, out) seen |= strcmp(have->valuestring, pattern) == 0;
    if (!seen)
      cJSON_AddItemToArray(out, cJSON_CreateString(pattern));
  }
  if (rc == KILN_OK && cJSON_GetArraySize(out) == 0)
    rc = kiln_error_set(err, KILN_E_INVALID, "%s: no enclave-capable instance type", path);
  cJSON_Delete(doc);
  free(text);
  free(path);
  return rc;
}

/* The deployment's values every policy template may use; with a scope, also the deploy policy's
 * network, launch template, catalogue and image values (each refused when missing). */
static kiln_err policy_values(struct kiln_awsenv *env, const struct kiln_policy_scope *s,
                              cJSON **out, struct kiln_error *err)
{
  *out = NULL;
  if (!env->account_id || !*env->account_id)
    return kiln_error_set(err, KILN_E_AUTH,
                          "no AWS account id for these credentials: kiln does not render a policy "
                          "that would name any account (check the credentials with `aws sts "
                          "get-caller-identity`)");
  cJSON *v = kiln_policy_values(&env->dep, &env->names, env->account_id, s ? s->vpc_id : NULL);
  if (!v)
    return kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  if (!s) {
    *out = v;
    return KILN_OK;
  }
  const char *region = env->dep.region ? env->dep.region : "us-east-1";
  kiln_err rc = require(env, s, s->vpc_id, "VPC", err);
  if (rc == KILN_OK)
    rc = require(env, s, s->nsubnets ? s->subnet_ids[0] : NULL, "tagged subnet", err);
  if (rc == KILN_OK)
    rc = require(env, s, s->sg_id, "security group", err);
  if (rc == KILN_OK)
    rc = require(env, s, s->launch_template_id, "launch template", err);
  if (rc != KILN_OK) {
    cJSON_Delete(v);
    return rc;
  }
  cJSON_DeleteItemFromObjectCaseSensitive(v, "vpc_id");
  cJSON_AddStringToObject(v, "vpc_id", or_pending(s->vpc_id, "vpc-CREATED-BY-SETUP"));
  cJSON_AddStringToObject(v, "security_group_id", or_pending(s->sg_id, "sg-CREATED-BY-SETUP"));
  cJSON_AddStringToObject(v, "launch_template_id",
                          or_pending(s->launch_template_id, "lt-CREATED-BY-SETUP"));
  cJSON_AddNumberToObject(v, "max_size", KILN_POLICY_MAX_GROUP_SIZE);
  cJSON *ids = cJSON_AddArrayToObject(v, "subnet_ids");
  cJSON *arns = cJSON_AddArrayToObject(v, "subnet_arns");
  for (size_t i = 0; i < s->nsubnets || (i == 0 && s->nsubnets == 0); i++) {
    const char *subnet = s->nsubnets ? s->subnet_ids[i] : "subnet-CREATED-BY-SETUP";
    struct kiln_buf arn = KILN_BUF_INIT;
    kiln_buf_printf(&arn, "arn:aws:ec2:%s:%s:subnet/%s", region, env->account_id, subnet);
    cJSON_AddItemToArray(ids, cJSON_CreateString(subnet));
    cJSON_AddItemToArray(arns, cJSON_CreateString(kiln_buf_str(&arn)));
    kiln_buf_free(&arn);
  }
  cJSON *images = cJSON_AddArrayToObject(v, "pinned_image_arns");
  if (s->pinned_ami) {
    struct kiln_buf arn = KILN_BUF_INIT;
    kiln_buf_printf(&arn, "arn:aws:ec2:%s::image/%s", region, s->pinned_ami);
    cJSON_AddItemToArray(images, cJSON_CreateString(kiln_buf_str(&arn)));
    kiln_buf_free(&arn);
  }
  rc = catalogue_patterns(env->share_dir, cJSON_AddArrayToObject(v, "instance_type_patterns"), err);
  if (rc != KILN_OK)
    cJSON_Delete(v);
  else
    *out = v;
  return rc;
}

/* "{{[name]}}" with its quotes: the JSON strings of list value `name`, comma-separated. */
static kiln_err expand_lists(const char *name, const char *text, const cJSON *values, char **out,
                             struct kiln_error *err)
{
  struct kiln_buf b = KILN_BUF_INIT;
  const char *p = text, *open;
  kiln_err rc = KILN_OK;
  while (rc == KILN_OK && (open = strstr(p, "\"{{[")) != NULL) {
    const char *close = strstr(open, "]}}\"");
    char key[64];
    size_t klen = close ? (size_t)(close - open - 4) : 0;
    if (!close || klen == 0 || klen >= sizeof key) {
      rc = kiln_error_set(err, KILN_E_INTERNAL, "template %s: bad list placeholder", name);
      break;
    }
    memcpy(key, open + 4, klen);
    key[klen] = '\0';
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(values, key), *item;
    if (!cJSON_IsArray(list)) {
      rc = kiln_error_set(err, KILN_E_INTERNAL, "template %s: no list value for {{[%s]}}", name,
                          key);
      break;
    }
    kiln_buf_append(&b, p, (size_t)(open - p));
    int first = 1;
    cJSON_ArrayForEach(item, list)
    {
      if (!first)
        kiln_buf_puts(&b, ", ");
      kiln_json_quote(item->valuestring, &b);
      first = 0;
    }
    p = close + 4;
  }
  if (rc == KILN_OK)
    rc = kiln_buf_puts(&b, p);
  *out = rc == KILN_OK ? kiln_buf_detach(&b) : NULL;
  kiln_buf_free(&b);
  return rc == KILN_OK && !*out ? kiln_error_set(err, KILN_E_NOMEM, "out of memory") : rc;
}

/* Statements a list left without resources (the pinned image when none is pinned) are dropped. */
static void drop_empty_statements(cJSON *doc)
{
  cJSON *statements = cJSON_GetObjectItemCaseSensitive(doc, "Statement");
  cJSON *st = statements ? statements->child : NULL;
  while (st) {
    cJSON *next = st->next;
    const cJSON *res = cJSON_GetObjectItemCaseSensitive(st, "Resource");
    if (cJSON_IsArray(res) && cJSON_GetArraySize(res) == 0)
      cJSON_Delete(cJSON_DetachItemViaPointer(statements, st));
    st = next;
  }
}

/* Render policy template text (lists, then {{values}}) into a parsed document. */
static kiln_err render_text(const char *name, const char *text, const cJSON *values, cJSON **doc,
                            struct kiln_error *err)
{
  char *listed = NULL, *rendered = NULL;
  *doc = NULL;
  kiln_err rc = expand_lists(name, text, values, &listed, err);
  if (rc == KILN_OK)
    rc = kiln_template_render(name, listed, values, 1, &rendered, err);
  if (rc == KILN_OK && !(*doc = cJSON_Parse(rendered)))
    rc = kiln_error_set(err, KILN_E_INTERNAL, "policy template %s does not render to JSON", name);
  if (rc == KILN_OK)
    drop_empty_statements(*doc);
  free(listed);
  free(rendered);
  return rc;
}

static kiln_err render_file(struct kiln_awsenv *env, const char *tmpl, const cJSON *values,
                            cJSON **doc, struct kiln_error *err)
{
  char *path = kiln_path_join(env->share_dir, tmpl), *text = NULL;
  kiln_err rc = path ? kiln_read_file(path, 1u << 20, &text, NULL, err) : KILN_E_NOMEM;
  if (rc == KILN_OK)
    rc = render_text(tmpl, text, values, doc, err);
  free(text);
  free(path);
  return rc;
}

int kiln_iam_same_document(const char *have, const char *want)
{
  cJSON *a = have ? cJSON_Parse(have) : NULL, *b = want ? cJSON_Parse(want) : NULL;
  int same = a && b && cJSON_Compare(a, b, 1);
  cJSON_Delete(a);
  cJSON_Delete(b);
  return same;
}

kiln_err kiln_iam_render(struct kiln_awsenv *env, const char *tmpl, char **out,
                         struct kiln_error *err)
{
  return kiln_iam_render_with(env, tmpl, NULL, out, err);
}

kiln_err kiln_iam_render_with(struct kiln_awsenv *env, const char *tmpl, const cJSON *extra,
                              char **out, struct kiln_error *err)
{
  cJSON *values = NULL, *doc = NULL, *e;
  *out = NULL;
  kiln_err rc = policy_values(env, NULL, &values, err);
  cJSON_ArrayForEach(e, (rc == KILN_OK ? extra : NULL))
      cJSON_AddItemToObject(values, e->string, cJSON_Duplicate(e, 1));
  if (rc == KILN_OK)
    rc = render_file(env, tmpl, values, &doc, err);
  if (rc == KILN_OK && !(*out = cJSON_PrintUnformatted(doc)))
    rc = kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  cJSON_Delete(doc);
  cJSON_Delete(values);
  return rc;
}

/* Append the statements of every resource kind that brings its own to the policy document. */
static kiln_err add_kind_statements(const cJSON *values, cJSON *doc, struct kiln_error *err)
{
  cJSON *statements = cJSON_GetObjectItemCaseSensitive(doc, "Statement");
  kiln_err rc =
      cJSON_IsArray(statements)
          ? KILN_OK
          : kiln_error_set(err, KILN_E_INTERNAL, "the deploy policy has no Statement list");
  for (int i = 0; rc == KILN_OK && kiln_aws_resources[i]; i++) {
    const struct kiln_aws_resource *r = kiln_aws_resources[i];
    cJSON *more = NULL;
    if (!r->policy)
      continue;
    char *wrapped = NULL;
    struct kiln_buf b = KILN_BUF_INIT;
    kiln_buf_printf(&b, "{\"Statement\": %s}", r->policy);
    wrapped = kiln_buf_detach(&b);
    rc = wrapped ? render_text(r->name, wrapped, values, &more, err) : KILN_E_NOMEM;
    cJSON *list = cJSON_GetObjectItemCaseSensitive(more, "Statement");
    if (rc == KILN_OK && !cJSON_IsArray(list))
      rc = kiln_error_set(err, KILN_E_INTERNAL,
                          "resource kind %s: its policy statements are not a JSON array", r->name);
    while (rc == KILN_OK && list->child)
      cJSON_AddItemToArray(statements, cJSON_DetachItemViaPointer(list, list->child));
    cJSON_Delete(more);
    free(wrapped);
  }
  return rc;
}

kiln_err kiln_iam_render_policy(struct kiln_awsenv *env, const struct kiln_policy_scope *scope,
                                char **policy, struct kiln_error *err)
{
  cJSON *values = NULL, *doc = NULL;
  *policy = NULL;
  kiln_err rc = policy_values(env, scope, &values, err);
  if (rc == KILN_OK)
    rc = render_file(env, "policies/deploy-policy.json.tmpl", values, &doc, err);
  if (rc == KILN_OK)
    rc = add_kind_statements(values, doc, err);
  if (rc == KILN_OK && !(*policy = cJSON_PrintUnformatted(doc)))
    rc = kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  cJSON_Delete(doc);
  cJSON_Delete(values);
  return rc;
}

void kiln_policy_scope_of(struct kiln_policy_scope *s, const struct kiln_network *net,
                          const char *lt_id, const cJSON *opts, int preview)
{
  const cJSON *ami = cJSON_GetObjectItemCaseSensitive(opts, "ami");
  memset(s, 0, sizeof(*s));
  s->vpc_id = net->vpc_id;
  s->subnet_ids = net->subnet_ids;
  s->nsubnets = net->nsubnets;
  s->sg_id = net->sg_id;
  s->launch_template_id = lt_id;
  s->pinned_ami = cJSON_IsString(ami) && ami->valuestring[0] ? ami->valuestring : NULL;
  s->preview = preview;
}

/* Does the IAM role/user carry the deployment tag? */
kiln_err kiln_iam_tagged(struct kiln_awsenv *env, const char *action, const char *key,
                         const char *name, int *tagged, struct kiln_error *err)
{
  struct kiln_aws_params p = {0};
  struct kiln_xml *doc = NULL;
  kiln_aws_params_add(&p, key, name);
  kiln_err rc = kiln_awsenv_read(env, "iam", action, &p, &doc, err);
  kiln_aws_params_clear(&p);
  *tagged = 0;
  for (const struct kiln_xml *t = rc == KILN_OK ? kiln_awsenv_items(doc, "Tags") : NULL; t;
       t = kiln_xml_next_same(t))
    *tagged |= kiln_xml_text(t, "Key") && !strcmp(kiln_xml_text(t, "Key"), env->dep.tag_key) &&
               kiln_xml_text(t, "Value") && !strcmp(kiln_xml_text(t, "Value"), env->dep.id);
  kiln_xml_free(doc);
  return rc;
}

kiln_err kiln_iam_find(struct kiln_awsenv *env, struct kiln_iam *iam, struct kiln_error *err)
{
  memset(iam, 0, sizeof(*iam));
  kiln_err rc = kiln_iam_find_instance_role(env, iam, err);
  return rc == KILN_OK ? kiln_iam_find_deploy_user(env, iam, err) : rc;
}

kiln_err kiln_iam_ensure(struct kiln_awsenv *env, struct kiln_iam *iam,
                         const struct kiln_policy_scope *scope, const char *credentials_file,
                         struct kiln_error *err)
{
  kiln_err rc = kiln_iam_ensure_instance_role(env, iam, err);
  return rc == KILN_OK ? kiln_iam_ensure_deploy_user(env, iam, scope, credentials_file, err) : rc;
}
