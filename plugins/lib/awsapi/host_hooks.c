/* The stage host services as AWS client hooks (see host_hooks.h). */
#include "host_hooks.h"

static void hook_log(void *p, int level, const char *msg)
{
  struct kiln_aws_host *h = p;
  h->host->log(h->ctx, (enum kiln_log_level)level, "%s", msg);
}

static void hook_redact(void *p, const char *secret)
{
  struct kiln_aws_host *h = p;
  h->host->redact(h->ctx, secret);
}

static int hook_cancelled(void *p)
{
  struct kiln_aws_host *h = p;
  return h->host->cancelled(h->ctx);
}

void kiln_aws_host_hooks(struct kiln_aws_host *h, struct kiln_aws_client_options *o)
{
  o->log = hook_log;
  o->redact = hook_redact;
  o->cancelled = hook_cancelled;
  o->hook_ctx = h;
}

void kiln_aws_host_progress(void *p, uint64_t done, uint64_t total)
{
  struct kiln_aws_host *h = p;
  h->host->progress(h->ctx, done, total, "upload");
}
