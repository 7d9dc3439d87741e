/* What every BYOC operation works with: the AWS client, the deployment's identity and names, the
 * account, and how effects are announced (plan) or counted (mutating calls). Plus the small
 * helpers all resource modules share: tag filters, TagSpecifications, checked Query calls. */
#ifndef KILN_AWS_ENV_H
#define KILN_AWS_ENV_H

#include "client.h"
#include "deploy.h"

struct kiln_awsenv {
  struct kiln_aws_client *c;
  struct kiln_deployment dep;
  struct kiln_deployment_names names;
  char *account_id;
  const char *share_dir;
  const char *app_dir;
  const cJSON *config; /* the whole kiln.json */
  int dry_run;         /* plan: never call a mutating API */
  unsigned mutations;  /* mutating calls made (or that would be made in a plan) */
  /* Report one effect: action "create", "update", "delete", "nothing". */
  void (*announce)(void *ctx, const char *action, const char *resource, const char *detail);
  void *announce_ctx;
};

/* Fill env from kiln.json/environment (deployment id required unless allow_no_id) and ask STS for
 * the account. The client must already exist. */
KILN_MUST_CHECK kiln_err kiln_awsenv_init(struct kiln_awsenv *env, int allow_no_id,
                                          struct kiln_error *err);
/* env->names for deployment `id` (the bucket from /aws/bucket when set). */
KILN_MUST_CHECK kiln_err kiln_awsenv_name_resources(struct kiln_awsenv *env, const char *id,
                                                    struct kiln_error *err);
void kiln_awsenv_clear(struct kiln_awsenv *env);
void kiln_awsenv_announce(struct kiln_awsenv *env, const char *action, const char *resource,
                          const char *fmt, ...) KILN_PRINTF(4, 5);

/* A mutating Query call: in a dry run only announced (returns KILN_OK with *out NULL). The message
 * of a failure names the resource. "Already exists" codes listed in ok_codes (NULL-terminated)
 * count as success with *out NULL. */
KILN_MUST_CHECK kiln_err kiln_awsenv_mutate(struct kiln_awsenv *env, const char *service,
                                            const char *action, const struct kiln_aws_params *p,
                                            const char *resource, const char *const *ok_codes,
                                            struct kiln_xml **out, struct kiln_error *err);
/* A read-only Query call. */
KILN_MUST_CHECK kiln_err kiln_awsenv_read(struct kiln_awsenv *env, const char *service,
                                          const char *action, const struct kiln_aws_params *p,
                                          struct kiln_xml **out, struct kiln_error *err);

/* Filter.N.Name=tag:<key> / Filter.N.Value.1=<id> (EC2 Describe*), N from *n (incremented). */
kiln_err kiln_awsenv_tag_filter(struct kiln_awsenv *env, struct kiln_aws_params *p, int *n);
/* TagSpecification.N for a resource type with the deployment tag, kiln:managed and Name. */
kiln_err kiln_awsenv_tag_spec(struct kiln_awsenv *env, struct kiln_aws_params *p, int n,
                              const char *resource_type, const char *name);
/* Text of the first element named `name` in an EC2 answer (e.g. "vpcId"), or NULL. */
const char *kiln_awsenv_first(const struct kiln_xml *doc, const char *name);
/* Every element named item_name directly under the element named list_name, e.g. the
 * <item>s of <vpcSet>. Iterate with kiln_xml_next_same. */
const struct kiln_xml *kiln_awsenv_items(const struct kiln_xml *doc, const char *list_name);

/* strdup, NULL for NULL. */
char *kiln_awsenv_dup(const char *s);
/* Describe<what> (EC2) filtered by the deployment tag, plus filter=value when filter is set. */
KILN_MUST_CHECK kiln_err kiln_awsenv_describe_tagged(struct kiln_awsenv *env, const char *action,
                                                     const char *filter, const char *value,
                                                     struct kiln_xml **out, struct kiln_error *err);
/* The id a create call returned in field (placeholder in a dry run); frees doc. */
KILN_MUST_CHECK kiln_err kiln_awsenv_take_id(struct kiln_awsenv *env, struct kiln_xml *doc,
                                             const char *field, const char *placeholder, char **out,
                                             struct kiln_error *err);
/* Error codes that mean a resource is gone already (a deletion then succeeds). */
extern const char *const kiln_awsenv_gone[];
/* Delete one resource: action with key=id, announced as what. */
KILN_MUST_CHECK kiln_err kiln_awsenv_delete(struct kiln_awsenv *env, const char *service,
                                            const char *action, const char *key, const char *id,
                                            const char *what, struct kiln_error *err);
/* The same for EC2, retried while DependencyViolation says instances are still shutting down. */
KILN_MUST_CHECK kiln_err kiln_awsenv_delete_waiting(struct kiln_awsenv *env, const char *action,
                                                    const char *key, const char *id,
                                                    const char *what, struct kiln_error *err);

#endif
