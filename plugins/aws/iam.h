/* What the IAM resource modules share (iam.c): tags, optional reads, policy templates, and the
 * per-kind find/ensure functions kiln_iam_find/kiln_iam_ensure compose. */
#ifndef KILN_AWS_IAM_H
#define KILN_AWS_IAM_H

#include "byoc.h"

#define INSTANCE_POLICY_NAME "kiln-read-eifs"
#define DEPLOY_POLICY_NAME "kiln-deploy"
/* The deploy user's own inline policy: sts:AssumeRole of the deploy role only. */
#define DEPLOY_USER_POLICY_NAME "kiln-assume-deploy-role"

/* Tags.member.1/2: the deployment tag and kiln:managed. */
kiln_err kiln_iam_add_tags(struct kiln_awsenv *env, struct kiln_aws_params *p);
/* A read call where NoSuchEntity means "absent": *found 0, KILN_OK. */
KILN_MUST_CHECK kiln_err kiln_iam_get(struct kiln_awsenv *env, const char *action,
                                      const char *name_key, const char *name, const char *extra_key,
                                      const char *extra, struct kiln_xml **doc, int *found,
                                      struct kiln_error *err);
/* Whether two policy documents (JSON text, either may be NULL) are the same JSON value. */
int kiln_iam_same_document(const char *have, const char *want);
/* Render a share/ policy template with the deployment's values (caller frees *out); refused
 * without the account id. */
KILN_MUST_CHECK kiln_err kiln_iam_render(struct kiln_awsenv *env, const char *tmpl, char **out,
                                         struct kiln_error *err);
/* The same with more values (the CI role's trust: OIDC provider, host, subject). */
KILN_MUST_CHECK kiln_err kiln_iam_render_with(struct kiln_awsenv *env, const char *tmpl,
                                              const cJSON *extra, char **out,
                                              struct kiln_error *err);
KILN_MUST_CHECK kiln_err kiln_iam_find_instance_role(struct kiln_awsenv *env, struct kiln_iam *iam,
                                                     struct kiln_error *err);
KILN_MUST_CHECK kiln_err kiln_iam_ensure_instance_role(struct kiln_awsenv *env,
                                                       struct kiln_iam *iam,
                                                       struct kiln_error *err);
KILN_MUST_CHECK kiln_err kiln_iam_find_deploy_user(struct kiln_awsenv *env, struct kiln_iam *iam,
                                                   struct kiln_error *err);
KILN_MUST_CHECK kiln_err kiln_iam_ensure_deploy_user(struct kiln_awsenv *env, struct kiln_iam *iam,
                                                     const struct kiln_policy_scope *scope,
                                                     const char *credentials_file,
                                                     struct kiln_error *err);

#endif
