/* kiln status: the deployment as AWS sees it, found by tag. */
#include "aws_cli.h"

static const char usage[] =
    "Usage: kiln status [--region REGION] [--profile NAME] [--json]\n"
    "\n"
    "Show the deployment's resources found by their tag: network, bucket, roles, the launch\n"
    "template's newest version, the Auto Scaling group's instances and refresh, the Elastic IP,\n"
    "and incomplete multipart uploads in the bucket (left by interrupted uploads).\n";

int kiln_cmd_status(struct kiln_cli *cli)
{
  return kiln_aws_cli_simple(cli, usage, "status", NULL, 0);
}
