/* The rollout of a launch template version to the deployment's Auto Scaling group (rollout.c):
 * health-gated instance refreshes, waiting with progress, rollback. */
#ifndef KILN_AWS_ROLLOUT_H
#define KILN_AWS_ROLLOUT_H

#include "byoc.h"

/* StartInstanceRefresh to `version` (DesiredConfiguration) with MinHealthyPercentage 100,
 * MaxHealthyPercentage 200, the warm-up, and AWS's AutoRollback when auto_rollback; *refresh_id
 * owned by the caller (NULL in a plan). */
KILN_MUST_CHECK kiln_err kiln_rollout_start(struct kiln_awsenv *env, const struct kiln_fleet *f,
                                            const struct kiln_scale *s, const char *version,
                                            int auto_rollback, char **refresh_id,
                                            struct kiln_error *err);
/* Poll refresh `id` until it ends or timeout_seconds pass, showing instances healthy / desired;
 * status gets its final state ("TimedOut" when still running), reason AWS's reason. f is
 * re-read on each poll. */
KILN_MUST_CHECK kiln_err kiln_rollout_wait(struct kiln_awsenv *env, struct kiln_fleet *f,
                                           const char *id, int desired, int timeout_seconds,
                                           char *status, size_t status_size, char *reason,
                                           size_t reason_size, struct kiln_error *err);
/* Re-read the group, its members, their EIFs and target health into f. */
KILN_MUST_CHECK kiln_err kiln_rollout_refresh_fleet(struct kiln_awsenv *env, struct kiln_fleet *f,
                                                    struct kiln_error *err);
/* Wait until `desired` members are in service and healthy (a resize), showing progress. */
KILN_MUST_CHECK kiln_err kiln_rollout_wait_healthy(struct kiln_awsenv *env, struct kiln_fleet *f,
                                                   int desired, int timeout_seconds,
                                                   struct kiln_error *err);
/* The launch template's default version. */
KILN_MUST_CHECK kiln_err kiln_rollout_set_default(struct kiln_awsenv *env,
                                                  const struct kiln_fleet *f, const char *version,
                                                  struct kiln_error *err);
/* deploy: refresh the group to `version` with AWS's auto-rollback and wait; a failed refresh
 * ends at `previous` (AWS's rollback, or kiln's own refresh back) and is an error saying so. */
KILN_MUST_CHECK kiln_err kiln_rollout_deploy(struct kiln_awsenv *env, struct kiln_fleet *f,
                                             const struct kiln_scale *s, const char *version,
                                             const char *previous, struct kiln_error *err);

#endif
