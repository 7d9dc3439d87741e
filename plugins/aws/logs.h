/* The aws stage's "logs" action (logs.c): reading the deployment's CloudWatch Logs group. */
#ifndef KILN_AWS_LOGS_H
#define KILN_AWS_LOGS_H

#include "awsenv.h"

/* FilterLogEvents on /kiln/<id> from opts logs_since_ms (ms since the epoch), only the stream
 * opts logs_instance when set, every page: meta gets "log_group" and "events": [{event_id,
 * timestamp, instance, message}] in the service's time order. Errors say what to do (no group
 * yet: `kiln setup`; not allowed: `kiln update-policy`). */
KILN_MUST_CHECK kiln_err kiln_logs_read(struct kiln_awsenv *env, const cJSON *opts, cJSON *meta,
                                        struct kiln_error *err);

#endif
