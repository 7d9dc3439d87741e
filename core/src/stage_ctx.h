/* The per-stage run context behind struct kiln_stage_ctx (shared by pipeline.c and host.c). */
#ifndef KILN_CORE_STAGE_CTX_H
#define KILN_CORE_STAGE_CTX_H

#include "internal.h"
#include "util/hash.h"

enum kiln_stage_mode { KILN_MODE_RUN, KILN_MODE_PLAN, KILN_MODE_UNDO, KILN_MODE_IDENTIFY };

struct kiln_stage_output {
  char *kind;
  char *root; /* staging root; the plugin writes into root/files */
  char *files;
  cJSON *meta;                     /* NULL until output_meta() */
  struct kiln_known_digest *known; /* digests handed over with output_digest() */
  size_t nknown;
};

struct kiln_stage_ctx {
  struct kiln *k;
  const struct kiln_stage *stage;
  const struct kiln_loaded_plugin *plugin;
  enum kiln_stage_mode mode;
  const cJSON *options;
  struct kiln_stored_artifact *const *inputs; /* visible artifacts, newest last (borrowed) */
  size_t ninputs;
  struct kiln_stage_output *outputs;
  size_t noutputs;
  char *temp_dir;         /* created on first use */
  char *state_dir;        /* created on first use */
  const cJSON *lock_prev; /* "resolved" object of the previous run, or NULL */
  cJSON *lock_resolved;   /* values recorded in this run */
  cJSON *plan;            /* planned actions (array), in plan mode */
  struct kiln_buf identity;
  int contract_violation;
  struct kiln_error err;
  char *log_prefix;
};

extern const struct kiln_host kiln_host_services;

KILN_MUST_CHECK kiln_err kiln_stage_ctx_init(struct kiln_stage_ctx *ctx, struct kiln *k,
                                             const struct kiln_stage *stage,
                                             const struct kiln_loaded_plugin *plugin,
                                             enum kiln_stage_mode mode);
/* Remove staging and temp directories; free everything the context owns. */
void kiln_stage_ctx_release(struct kiln_stage_ctx *ctx);

#endif
