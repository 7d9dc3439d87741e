/* Private pipeline structures shared by pipeline.c (construction) and pipeline_run.c (execution).
 */
#ifndef KILN_CORE_PIPELINE_H
#define KILN_CORE_PIPELINE_H

#include "stage_ctx.h"

struct kiln_step {
  const struct kiln_stage *stage;
  const struct kiln_loaded_plugin *plugin;
  cJSON *options; /* merged, not yet validated */
  char *origin;   /* where the options come from, for messages: "kiln.json /image" */
};

struct kiln_pipeline {
  struct kiln *k;
  struct kiln_step *steps;
  size_t nsteps;
  struct kiln_stored_artifact **artifacts; /* pipeline inputs and outputs so far, newest last */
  size_t nartifacts;
};

static inline int has_field(const struct kiln_stage *s, size_t offset, size_t size)
{
  return s->struct_size >= offset + size;
}
#define STAGE_FN(s, field)                                                                         \
  (has_field((s), offsetof(struct kiln_stage, field), sizeof((s)->field)) ? (s)->field : NULL)
#define STAGE_FLAGS(s)                                                                             \
  (has_field((s), offsetof(struct kiln_stage, flags), sizeof((s)->flags)) ? (s)->flags : 0u)

KILN_MUST_CHECK kiln_err kiln_pipeline_push_artifact(struct kiln_pipeline *p,
                                                     struct kiln_stored_artifact *a);

#endif
