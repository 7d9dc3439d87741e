/* The instance catalogue (share/instance-types.json): loading and validation. */
#include <stdlib.h>
#include <string.h>

#include "sizing.h"
#include "util/json.h"

static char *dup_string(const cJSON *obj, const char *key)
{
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
  return cJSON_IsString(v) ? strdup(v->valuestring) : NULL;
}

void kiln_catalogue_free(struct kiln_catalogue *c)
{
  if (!c)
    return;
  for (size_t i = 0; i < c->count; i++) {
    free(c->types[i].name);
    free(c->types[i].family);
    free(c->types[i].arch);
  }
  free(c->types);
  free(c->source);
  free(c->as_of);
  free(c->region);
  free(c);
}

static kiln_err load_type(const cJSON *item, size_t index, const char *path,
                          struct kiln_instance_type *t, struct kiln_error *err)
{
  const cJSON *vcpus = cJSON_GetObjectItemCaseSensitive(item, "vcpus");
  const cJSON *mem = cJSON_GetObjectItemCaseSensitive(item, "memory_mib");
  const cJSON *price = cJSON_GetObjectItemCaseSensitive(item, "price_per_hour");
  const cJSON *tpc = cJSON_GetObjectItemCaseSensitive(item, "threads_per_core");
  const cJSON *support = cJSON_GetObjectItemCaseSensitive(item, "enclave_support");
  t->name = dup_string(item, "name");
  t->family = dup_string(item, "family");
  t->arch = dup_string(item, "arch");
  if (!t->name || !t->family || !t->arch || !cJSON_IsNumber(vcpus) || vcpus->valueint < 1 ||
      !cJSON_IsNumber(mem) || mem->valuedouble < 1 || !cJSON_IsNumber(price) ||
      price->valuedouble < 0 || !cJSON_IsNumber(tpc) || tpc->valueint < 1 || !cJSON_IsBool(support))
    return kiln_error_set(err, KILN_E_INVALID,
                          "%s: /instance_types/%zu: needs name, family, arch, vcpus >= 1, "
                          "memory_mib >= 1, price_per_hour >= 0, threads_per_core >= 1 and "
                          "enclave_support (boolean)",
                          path, index);
  if (strcmp(t->arch, "x86_64") != 0 && strcmp(t->arch, "aarch64") != 0)
    return kiln_error_set(err, KILN_E_INVALID,
                          "%s: /instance_types/%zu/arch: must be x86_64 or aarch64", path, index);
  t->vcpus = vcpus->valueint;
  t->memory_mib = (int64_t)mem->valuedouble;
  t->price_per_hour = price->valuedouble;
  t->threads_per_core = tpc->valueint;
  t->enclave_support = cJSON_IsTrue(support);
  return KILN_OK;
}

kiln_err kiln_catalogue_load(const char *path, struct kiln_catalogue **out, struct kiln_error *err)
{
  *out = NULL;
  cJSON *doc = NULL;
  kiln_err rc = kiln_json_read_file(path, 4u << 20, &doc, err);
  if (rc)
    return rc;
  struct kiln_catalogue *c = calloc(1, sizeof *c);
  const cJSON *types = cJSON_GetObjectItemCaseSensitive(doc, "instance_types");
  const cJSON *reserve = cJSON_GetObjectItemCaseSensitive(
      cJSON_GetObjectItemCaseSensitive(doc, "parent_reserve"), "memory_mib");
  if (!c) {
    rc = kiln_error_set(err, KILN_E_NOMEM, "out of memory");
    goto out;
  }
  if (!cJSON_IsArray(types) || cJSON_GetArraySize(types) == 0) {
    rc = kiln_error_set(err, KILN_E_INVALID, "%s: /instance_types must be a non-empty array", path);
    goto out;
  }
  c->source = dup_string(doc, "source");
  c->as_of = dup_string(doc, "as_of");
  c->region = dup_string(doc, "region");
  if (!c->source || !c->as_of) {
    rc = kiln_error_set(err, KILN_E_INVALID,
                        "%s: the catalogue must say where its prices come from (/source) and "
                        "when (/as_of)",
                        path);
    goto out;
  }
  c->reserve_memory_mib = cJSON_IsNumber(reserve) ? (int64_t)reserve->valuedouble : 2048;
  size_t n = (size_t)cJSON_GetArraySize(types);
  c->types = calloc(n, sizeof *c->types);
  if (!c->types) {
    rc = kiln_error_set(err, KILN_E_NOMEM, "out of memory");
    goto out;
  }
  const cJSON *item;
  cJSON_ArrayForEach(item, types)
  {
    rc = load_type(item, c->count, path, &c->types[c->count], err);
    c->count++;
    if (rc)
      goto out;
  }
out:
  cJSON_Delete(doc);
  if (rc)
    kiln_catalogue_free(c);
  else
    *out = c;
  return rc;
}
