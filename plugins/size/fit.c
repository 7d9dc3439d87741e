/* The sizing rules: which catalogue types can host an enclave, and the cheapest of them. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sizing.h"

#define MIB (1024 * 1024)

static int family_selected(const char *families, const char *family)
{
  if (!families || !*families)
    return 1;
  size_t len = strlen(family);
  for (const char *p = families; *p;) {
    const char *end = strchr(p, ',');
    size_t n = end ? (size_t)(end - p) : strlen(p);
    if (n == len && strncmp(p, family, n) == 0)
      return 1;
    if (!end)
      break;
    p = end + 1;
  }
  return 0;
}

static void note(cJSON *notes, const char *fmt, ...) KILN_PRINTF(2, 3);

static void note(cJSON *notes, const char *fmt, ...)
{
  char text[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(text, sizeof text, fmt, ap);
  va_end(ap);
  cJSON_AddItemToArray(notes, cJSON_CreateString(text));
}

/* 1 when a beats b: cheaper, then fewer vCPUs, then less memory, then by name. */
static int better(const struct kiln_instance_type *a, const struct kiln_instance_type *b)
{
  if (!b)
    return 1;
  if (a->price_per_hour != b->price_per_hour)
    return a->price_per_hour < b->price_per_hour;
  if (a->vcpus != b->vcpus)
    return a->vcpus < b->vcpus;
  if (a->memory_mib != b->memory_mib)
    return a->memory_mib < b->memory_mib;
  return strcmp(a->name, b->name) < 0;
}

kiln_err kiln_sizing_choose(const struct kiln_catalogue *c, const struct kiln_sizing_request *req,
                            struct kiln_sizing_result *out, struct kiln_error *err)
{
  memset(out, 0, sizeof *out);
  const char *arch = req->arch && *req->arch ? req->arch : "x86_64";
  if (req->cpus < 1)
    return kiln_error_set(err, KILN_E_INVALID, "enclave CPUs must be at least 1");
  if (req->memory_mib < 64)
    return kiln_error_set(err, KILN_E_INVALID, "enclave memory must be at least 64 MiB");
  out->notes = cJSON_CreateArray();
  if (!out->notes)
    return kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  int64_t memory = req->memory_mib;
  if (req->eif_size > 0) {
    int64_t eif_mib = (req->eif_size + MIB - 1) / MIB;
    int64_t need = eif_mib * 4;
    if (memory < need) {
      note(out->notes,
           "enclave memory raised from %lld to %lld MiB: nitro-cli needs at least 4x the EIF "
           "size (error E26)",
           (long long)memory, (long long)need);
      memory = need;
    }
  }
  const struct kiln_instance_type *largest = NULL;
  int cpus_used = req->cpus;
  for (size_t i = 0; i < c->count; i++) {
    const struct kiln_instance_type *t = &c->types[i];
    if (strcmp(t->arch, arch) != 0 || !family_selected(req->families, t->family))
      continue;
    if (!t->enclave_support || t->vcpus < 4)
      continue;
    if (!largest || t->vcpus > largest->vcpus ||
        (t->vcpus == largest->vcpus && t->memory_mib > largest->memory_mib))
      largest = t;
    /* Enclave CPUs are whole cores; the parent keeps CPU 0's core. */
    int tpc = t->threads_per_core;
    int cpus = (req->cpus + tpc - 1) / tpc * tpc;
    if (cpus > t->vcpus - tpc || memory > t->memory_mib - c->reserve_memory_mib)
      continue;
    if (better(t, out->best)) {
      out->runner_up = out->best;
      out->best = t;
      cpus_used = cpus;
    } else if (better(t, out->runner_up)) {
      out->runner_up = t;
    }
  }
  for (size_t i = 0; !largest && i < c->count; i++)
    if (strcmp(c->types[i].arch, arch) != 0 && family_selected(req->families, c->types[i].family) &&
        req->families && *req->families)
      return kiln_error_set(err, KILN_E_INVALID,
                            "/size/family: %s is an %s family, but the EIF is %s; pick an %s "
                            "family (%s), or build the EIF for %s",
                            c->types[i].family, c->types[i].arch, arch, arch,
                            strcmp(arch, "aarch64") == 0 ? "Graviton: m6g, m7g, c6g, c7g, r6g"
                                                         : "e.g. m5, m6i, c6i, m6a",
                            c->types[i].arch);
  if (!largest)
    return kiln_error_set(err, KILN_E_INVALID,
                          "no Nitro Enclave-capable %s instance type in the catalogue matches "
                          "family \"%s\"; check --family/--arch",
                          arch, req->families ? req->families : "");
  if (!out->best)
    return kiln_error_set(err, KILN_E_INVALID,
                          "no %s instance type in the catalogue fits an enclave of %d CPUs and "
                          "%lld MiB (the parent keeps one core and %lld MiB); the largest is %s "
                          "(%d vCPUs, %lld MiB): ask for less, or widen --family",
                          arch, req->cpus, (long long)memory, (long long)c->reserve_memory_mib,
                          largest->name, largest->vcpus, (long long)largest->memory_mib);
  if (cpus_used != req->cpus)
    note(out->notes,
         "enclave CPUs rounded up from %lld to %lld: enclaves get whole cores (2 vCPUs each on "
         "x86 with SMT)",
         (long long)req->cpus, (long long)cpus_used);
  out->enclave_cpus = cpus_used;
  out->enclave_memory_mib = memory;
  return KILN_OK;
}

void kiln_sizing_result_clear(struct kiln_sizing_result *r)
{
  cJSON_Delete(r->notes);
  memset(r, 0, sizeof *r);
}

static cJSON *type_json(const struct kiln_instance_type *t)
{
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "instance_type", t->name);
  cJSON_AddStringToObject(o, "family", t->family);
  cJSON_AddStringToObject(o, "arch", t->arch);
  cJSON_AddNumberToObject(o, "vcpus", t->vcpus);
  cJSON_AddNumberToObject(o, "memory_mib", (double)t->memory_mib);
  cJSON_AddNumberToObject(o, "price_per_hour_usd", t->price_per_hour);
  return o;
}

cJSON *kiln_sizing_to_json(const struct kiln_catalogue *c, const struct kiln_sizing_result *r)
{
  cJSON *o = type_json(r->best);
  cJSON *enclave = cJSON_AddObjectToObject(o, "enclave");
  cJSON_AddNumberToObject(enclave, "cpus", r->enclave_cpus);
  cJSON_AddNumberToObject(enclave, "memory_mib", (double)r->enclave_memory_mib);
  cJSON *alloc = cJSON_AddObjectToObject(o, "allocator");
  cJSON_AddNumberToObject(alloc, "cpu_count", r->enclave_cpus);
  cJSON_AddNumberToObject(alloc, "memory_mib", (double)r->enclave_memory_mib);
  cJSON_AddItemToObject(o, "runner_up",
                        r->runner_up ? type_json(r->runner_up) : cJSON_CreateNull());
  cJSON_AddItemToObject(o, "notes", cJSON_Duplicate(r->notes, 1));
  cJSON *cat = cJSON_AddObjectToObject(o, "catalogue");
  cJSON_AddStringToObject(cat, "source", c->source);
  cJSON_AddStringToObject(cat, "as_of", c->as_of);
  if (c->region)
    cJSON_AddStringToObject(cat, "region", c->region);
  return o;
}
