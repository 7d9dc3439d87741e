/* What the AWS commands (setup, deploy, plan, status, update-policy, teardown) share: their
 * pipelines (the aws stage with an action, after the build stages or a prebuilt EIF), common
 * options, and printing a plan or a deployment. */
#ifndef KILN_BUILDER_AWS_CLI_H
#define KILN_BUILDER_AWS_CLI_H

#include "cli.h"

struct kiln_aws_cli {
  const char *action;   /* aws stage action */
  int deploy_pipeline;  /* build (or --eif) + size + s3 + aws */
  const char *eif_file; /* --eif, or kiln.json "eif" when a string */
  char *eif_storage;    /* owned copy behind eif_file (free it) */
};

/* Parse the options every AWS command takes (--region, --profile, --set STAGE.KEY=VALUE,
 * --eif FILE when deploy_pipeline) after the pipeline exists. *taken: 1 when argv[*i] was one
 * (*i advanced past its value), else 0. Returns 0 or an exit code, like every CLI helper. */
int kiln_aws_cli_option(struct kiln_cli *cli, struct kiln *k, struct kiln_pipeline *p,
                        struct kiln_aws_cli *a, int *i, int *taken);
/* Create the command's pipeline. */
int kiln_aws_cli_pipeline(struct kiln_cli *cli, struct kiln *k, struct kiln_aws_cli *a,
                          struct kiln_pipeline **out);
/* Add the prebuilt EIF (--eif or kiln.json "eif") as the pipeline's input. */
int kiln_aws_cli_add_eif(struct kiln_cli *cli, struct kiln *k, struct kiln_pipeline *p,
                         const char *file);
/* Set the aws stage's option key to a JSON value text. */
int kiln_aws_cli_set(struct kiln_cli *cli, struct kiln *k, struct kiln_pipeline *p, const char *key,
                     const char *json_value);
/* A flag of a simple AWS command that sets an aws stage option: "--delete-bucket" ->
 * delete_bucket=true, or "--credentials-file FILE" -> credentials_file="FILE". */
struct kiln_aws_flag {
  const char *flag;
  const char *option;
  int takes_value;
};
/* Run the aws stage alone with this action and flags; print the deployment document (or JSON).
 * confirm: ask before changing anything (teardown): --yes, or "y" on a terminal. */
int kiln_aws_cli_simple(struct kiln_cli *cli, const char *action, const struct kiln_aws_flag *flags,
                        int confirm);

/* Unless code is already an exit code, run the pipeline and print its deployment; then free
 * k, p and a's storage. Returns the exit code. */
int kiln_aws_cli_finish(struct kiln_cli *cli, struct kiln *k, struct kiln_pipeline *p,
                        struct kiln_aws_cli *a, int code);

/* Apply every argument (common options; skip names a flag with a value the command handles
 * itself) and add the prebuilt EIF when there is one. Returns 0 or an exit code. */
int kiln_aws_cli_args(struct kiln_cli *cli, struct kiln *k, struct kiln_pipeline *p,
                      struct kiln_aws_cli *a, const char *skip);
/* Print the aws stage's result: JSON with --json, the policy for `setup --print-policy`, else the
 * deployment for people. */
void kiln_aws_cli_print_result(struct kiln_cli *cli, const cJSON *meta);

/* Print a plan result: each step's status and actions. */
void kiln_aws_cli_print_plan(const cJSON *result);
/* Print a deployment document for people (ids, EIF, instances, EIP, PCRs). */
void kiln_aws_cli_print_deployment(const cJSON *m);

#endif
