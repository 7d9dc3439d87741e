/* Enclave sizing: the instance catalogue and the rules that pick the cheapest fitting type. */
#ifndef KILN_SIZING_H
#define KILN_SIZING_H

#include <stdint.h>

#include <cjson/cJSON.h>

#include "util/error.h"

struct kiln_instance_type {
  char *name;
  char *family;
  char *arch; /* "x86_64" or "aarch64" */
  int vcpus;
  int64_t memory_mib;
  int threads_per_core;
  double price_per_hour;
  int enclave_support;
};

struct kiln_catalogue {
  struct kiln_instance_type *types;
  size_t count;
  char *source;
  char *as_of;
  char *region;
  int64_t reserve_memory_mib; /* kept by the parent instance */
};

/* Load and validate a catalogue file (share/instance-types.json format). */
KILN_MUST_CHECK kiln_err kiln_catalogue_load(const char *path, struct kiln_catalogue **out,
                                             struct kiln_error *err);
void kiln_catalogue_free(struct kiln_catalogue *c);

struct kiln_sizing_request {
  int cpus;             /* enclave vCPUs wanted */
  int64_t memory_mib;   /* enclave memory wanted */
  const char *families; /* comma-separated family filter, or NULL */
  const char *arch;     /* "x86_64" (default) or "aarch64" */
  int64_t eif_size;     /* bytes of the EIF to run, or 0 when unknown */
};

struct kiln_sizing_result {
  const struct kiln_instance_type *best;      /* borrowed from the catalogue */
  const struct kiln_instance_type *runner_up; /* or NULL */
  int enclave_cpus;
  int64_t enclave_memory_mib;
  cJSON *notes; /* array of strings explaining adjustments; owned */
};

/* Apply the rules: the parent keeps one core (2 vCPUs with SMT) and reserve_memory_mib; enclave
 * CPUs are whole cores; types with fewer than 4 vCPUs or without enclave support are skipped;
 * memory is raised to 4x the EIF size (nitro-cli E26). The cheapest fitting type wins. */
KILN_MUST_CHECK kiln_err kiln_sizing_choose(const struct kiln_catalogue *c,
                                            const struct kiln_sizing_request *req,
                                            struct kiln_sizing_result *out, struct kiln_error *err);
void kiln_sizing_result_clear(struct kiln_sizing_result *r);
/* The result as the sizing artifact's JSON (see docs/artifacts.md); caller frees. */
cJSON *kiln_sizing_to_json(const struct kiln_catalogue *c, const struct kiln_sizing_result *r);

#endif
