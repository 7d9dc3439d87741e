/* The deployment's AWS resources as a registration table (like libarchive's format tables): each
 * resource kind is one module (res_<kind>.c) exporting one struct kiln_aws_resource, and
 * resources.c lists them once, in dependency order. setup and plan walk the table forwards (find,
 * then ensure), status finds and reports every resource, teardown finds forwards and deletes
 * backwards. Adding a resource kind = one new res_<kind>.c + one line in the table. */
#ifndef KILN_AWS_RESOURCE_H
#define KILN_AWS_RESOURCE_H

#include "byoc.h"

enum kiln_walk_mode { KILN_WALK_SETUP, KILN_WALK_STATUS, KILN_WALK_TEARDOWN };

/* What one walk over the table shares: each resource's find fills its part, and the resources
 * after it read it (subnets need the VPC, the launch template the security group...). */
struct kiln_walk {
  struct kiln_awsenv *env;
  const cJSON *opts; /* the aws stage's options */
  enum kiln_walk_mode mode;
  struct kiln_network net;
  struct kiln_iam iam;
  struct kiln_fleet fleet;
  struct kiln_lb lb;
  struct kiln_scale scale; /* setup: from the options (count, load balancer, health checks) */
  int bucket_exists;
  cJSON *bucket_uploads; /* status: the bucket's incomplete multipart uploads */
  cJSON *measurements;   /* status: the deployed EIF's PCRs (from its S3 object) */
  char *role_arn;        /* the CI deploy role, when it exists */
  int iam_visible;       /* status with the scoped deploy credentials: IAM unreadable */
  /* setup */
  int ports[KILN_MAX_PORTS];
  size_t nports;
  struct kiln_ci_trust trust;
  const char *placeholder_type; /* an enclave-capable type for the first template version */
  char *credentials_file;       /* absolute, or NULL */
  /* teardown */
  int delete_bucket;
  /* resources without a field above keep their state here, keyed by their table index */
  void *state[32];
};

/* Flags of a resource kind. */
#define KILN_RES_IAM 0x1u /* read through IAM: skipped when IAM is unreadable (status) */

struct kiln_aws_resource {
  const char *name; /* short name, e.g. "vpc", "launch-template" */
  unsigned flags;
  /* Find the deployment's resource by its tag or name (read only); fill the walk's state. */
  kiln_err (*find)(struct kiln_walk *w, struct kiln_error *err);
  /* setup/plan: create or converge what find did not find or found different (env->dry_run in a
   * plan: announce only). */
  kiln_err (*ensure)(struct kiln_walk *w, struct kiln_error *err);
  /* Whether find found any of it (status says "no resource" when none did). */
  int (*exists)(const struct kiln_walk *w);
  /* Add the resource's fields to the setup/status document (no API calls; optional). */
  void (*fields)(const struct kiln_walk *w, cJSON *meta);
  /* teardown: delete what find found (only what carries the deployment tag). */
  kiln_err (*teardown)(struct kiln_walk *w, struct kiln_error *err);
  /* Free what find/ensure kept in the walk (optional). */
  void (*clear)(struct kiln_walk *w);
  /* The deploy policy statements this kind needs (a JSON array template using the policy values,
   * {{bucket}}, {{tag_key}}...), appended to share/policies/deploy-policy.json.tmpl's statements
   * for the deploy user and the CI role; NULL when the base policy covers it. */
  const char *policy;
};

/* Every resource kind, in dependency order (NULL-terminated). */
extern const struct kiln_aws_resource *const kiln_aws_resources[];
extern const struct kiln_aws_resource kiln_res_bucket, kiln_res_vpc, kiln_res_subnets,
    kiln_res_routes, kiln_res_security_group, kiln_res_instance_role, kiln_res_deploy_user,
    kiln_res_ci_role, kiln_res_launch_template, kiln_res_target_groups, kiln_res_asg,
    kiln_res_lb_attachment, kiln_res_nlb, kiln_res_eip, kiln_res_log_group, kiln_res_instances;

/* ELB Tags.member.N for the deployment tag, kiln:managed and Name. */
kiln_err kiln_lb_tags(struct kiln_awsenv *env, struct kiln_aws_params *p, const char *name);
/* Delete the deployment's target groups not serving a wanted port (all when nports is 0),
 * retried while ELB still reports them in use. */
KILN_MUST_CHECK kiln_err kiln_lb_prune_target_groups(struct kiln_walk *w, const int *ports,
                                                     size_t nports, struct kiln_error *err);

/* Index of a resource in the table (for w->state), or -1. */
int kiln_aws_resource_index(const struct kiln_aws_resource *r);

void kiln_walk_init(struct kiln_walk *w, struct kiln_awsenv *env, const cJSON *opts,
                    enum kiln_walk_mode mode);
void kiln_walk_clear(struct kiln_walk *w);
/* setup (a plan with env->dry_run): every resource found, then ensured, in table order. */
KILN_MUST_CHECK kiln_err kiln_walk_setup(struct kiln_walk *w, struct kiln_error *err);
/* status: every resource found (IAM ones skipped when IAM is unreadable); an error naming the
 * deployment when none exists. */
KILN_MUST_CHECK kiln_err kiln_walk_status(struct kiln_walk *w, struct kiln_error *err);
/* teardown: every resource found, then deleted in reverse table order. */
KILN_MUST_CHECK kiln_err kiln_walk_teardown(struct kiln_walk *w, struct kiln_error *err);
/* Each resource's fields added to meta (after a setup or status walk). */
void kiln_walk_fields(const struct kiln_walk *w, cJSON *meta);

/* Label a field of the deployment document for people: `kiln setup/status/deploy` print the
 * labelled fields in the order they were labelled ("display": [{"field", "label"}]). */
void kiln_doc_label(cJSON *meta, const char *field, const char *label);
/* JSON helpers the modules share. */
void kiln_json_add_string(cJSON *o, const char *key, const char *value);
cJSON *kiln_json_string_array(char *const *items, size_t n);

#endif
