/* The one adapter from a stage's host services (log, redact, cancel, progress) to the AWS client's
 * and the S3 upload engine's hooks, so every stage wires them the same way. */
#ifndef KILN_AWSAPI_HOST_HOOKS_H
#define KILN_AWSAPI_HOST_HOOKS_H

#include <stdint.h>

#include <kiln/plugin.h>

#include "client.h"

/* The stage callback's context and host; lives as long as the client it is wired into. */
struct kiln_aws_host {
  struct kiln_stage_ctx *ctx;
  const struct kiln_host *host;
};

/* Point the client options' log/redact/cancelled hooks at the host (hook_ctx = h). */
void kiln_aws_host_hooks(struct kiln_aws_host *h, struct kiln_aws_client_options *o);
/* A progress callback (ctx = struct kiln_aws_host *) drawing the host's progress line. */
void kiln_aws_host_progress(void *h, uint64_t done, uint64_t total);

#endif
