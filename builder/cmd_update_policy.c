/* kiln update-policy: re-render the scoped deploy policy and update it in place. */
#include "aws_cli.h"

static const char usage[] =
    "Usage: kiln update-policy [--region REGION] [--profile NAME] [--json]\n"
    "\n"
    "Render the deploy user's tag-scoped policy from share/policies for the existing deployment\n"
    "(DEPLOYMENT_ID / VPC_ID from the environment, .env or kiln.json), show the difference to\n"
    "the attached one, and replace it when it differs. Needs IAM rights (like setup).\n";

int kiln_cmd_update_policy(struct kiln_cli *cli)
{
  return kiln_aws_cli_simple(cli, usage, "update-policy", NULL, 0);
}
