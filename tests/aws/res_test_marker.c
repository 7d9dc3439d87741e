/* A test-only resource kind, built only into the tests' copy of the aws plugin: an SSM parameter
 * /kiln/<deployment id>/test-marker tagged with the deployment. It proves that a resource kind is
 * one file plus one table line (resources.c): with nothing else changed it shows up in plan,
 * setup, status and teardown (tests/aws/test_byoc.py, case test_resource). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resource.h"

extern const struct kiln_aws_resource kiln_res_test_marker;

struct marker {
  char name[160];
  int exists;
};

static struct marker *marker_of(struct kiln_walk *w)
{
  int i = kiln_aws_resource_index(&kiln_res_test_marker);
  if (i < 0 || (size_t)i >= sizeof(w->state) / sizeof(w->state[0]))
    return NULL;
  if (!w->state[i] && (w->state[i] = calloc(1, sizeof(struct marker))))
    snprintf(((struct marker *)w->state[i])->name, sizeof(((struct marker *)w->state[i])->name),
             "/kiln/%s/test-marker", w->env->dep.id ? w->env->dep.id : "none");
  return w->state[i];
}

static const struct marker *marker_in(const struct kiln_walk *w)
{
  int i = kiln_aws_resource_index(&kiln_res_test_marker);
  return i < 0 ? NULL : w->state[i];
}

/* One SSM call; ParameterNotFound is *missing = 1 and no error. */
static kiln_err ssm(struct kiln_walk *w, const char *target, cJSON *body, int *missing,
                    struct kiln_error *err)
{
  struct kiln_aws_error_info info;
  cJSON *out = NULL;
  kiln_err rc = kiln_aws_json(w->env->c, "ssm", target, body, &out, &info, err);
  cJSON_Delete(body);
  cJSON_Delete(out);
  if (missing)
    *missing = rc != KILN_OK && strcmp(info.code, "ParameterNotFound") == 0;
  if (missing && *missing) {
    kiln_error_clear(err);
    return KILN_OK;
  }
  return rc;
}

static cJSON *named(const struct marker *m)
{
  cJSON *body = cJSON_CreateObject();
  cJSON_AddStringToObject(body, "Name", m->name);
  return body;
}

static kiln_err marker_find(struct kiln_walk *w, struct kiln_error *err)
{
  struct marker *m = marker_of(w);
  int missing = 0;
  if (!m)
    return kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  if (!w->env->dep.id)
    return KILN_OK;
  kiln_err rc = ssm(w, "AmazonSSM.GetParameter", named(m), &missing, err);
  m->exists = rc == KILN_OK && !missing;
  return rc;
}

static kiln_err marker_ensure(struct kiln_walk *w, struct kiln_error *err)
{
  struct marker *m = marker_of(w);
  if (!m)
    return kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  if (m->exists) {
    kiln_awsenv_announce(w->env, "nothing", m->name, "test marker exists");
    return KILN_OK;
  }
  snprintf(m->name, sizeof(m->name), "/kiln/%s/test-marker", w->env->dep.id);
  kiln_awsenv_announce(w->env, "create", m->name, "test marker (SSM parameter)");
  w->env->mutations++;
  if (w->env->dry_run)
    return KILN_OK;
  cJSON *body = named(m);
  cJSON_AddStringToObject(body, "Value", "kiln");
  cJSON_AddStringToObject(body, "Type", "String");
  cJSON *tag = cJSON_CreateObject();
  cJSON_AddStringToObject(tag, "Key", w->env->dep.tag_key);
  cJSON_AddStringToObject(tag, "Value", w->env->dep.id);
  cJSON_AddItemToArray(cJSON_AddArrayToObject(body, "Tags"), tag);
  kiln_err rc = ssm(w, "AmazonSSM.PutParameter", body, NULL, err);
  m->exists = rc == KILN_OK;
  return rc;
}

static int marker_exists(const struct kiln_walk *w)
{
  const struct marker *m = marker_in(w);
  return m && m->exists;
}

static void marker_fields(const struct kiln_walk *w, cJSON *meta)
{
  const struct marker *m = marker_in(w);
  if (m && m->exists)
    cJSON_AddStringToObject(meta, "test_marker", m->name);
  kiln_doc_label(meta, "test_marker", "test marker");
}

static kiln_err marker_teardown(struct kiln_walk *w, struct kiln_error *err)
{
  struct marker *m = marker_of(w);
  if (!m || !m->exists)
    return KILN_OK;
  kiln_awsenv_announce(w->env, "delete", m->name, "test marker");
  w->env->mutations++;
  return w->env->dry_run ? KILN_OK : ssm(w, "AmazonSSM.DeleteParameter", named(m), NULL, err);
}

static void marker_clear(struct kiln_walk *w)
{
  int i = kiln_aws_resource_index(&kiln_res_test_marker);
  if (i >= 0) {
    free(w->state[i]);
    w->state[i] = NULL;
  }
}

const struct kiln_aws_resource kiln_res_test_marker = {
    .name = "test-marker",
    .find = marker_find,
    .ensure = marker_ensure,
    .exists = marker_exists,
    .fields = marker_fields,
    .teardown = marker_teardown,
    .clear = marker_clear,
    .policy = "[{\"Sid\": \"ReadTheTestMarker\", \"Effect\": \"Allow\", "
              "\"Action\": \"ssm:GetParameter\", "
              "\"Resource\": \"arn:aws:ssm:{{region}}:{{account_id}}:parameter/kiln/"
              "{{deployment_id}}/test-marker\"}]",
};
