/* kiln teardown: delete everything carrying the deployment tag. */
#include "aws_cli.h"

static const char usage[] =
    "Usage: kiln teardown [--yes] [--delete-bucket] [--region REGION] [--profile NAME] [--json]\n"
    "\n"
    "Delete every resource tagged with the deployment id, in dependency order: Auto Scaling\n"
    "group and instances, launch template, Elastic IP, security group, subnets, route table,\n"
    "internet gateway, the VPC (not one given by VPC_ID), the instance role and profile and\n"
    "the deploy user. The bucket and its EIFs stay unless --delete-bucket. Resources without\n"
    "the tag are never touched. Safe to run again. Asks first on a terminal; elsewhere it needs\n"
    "--yes.\n"
    "\n"
    "Example:\n"
    "  kiln teardown --yes --delete-bucket\n";

int kiln_cmd_teardown(struct kiln_cli *cli)
{
  static const struct kiln_aws_flag flags[] = {{"--delete-bucket", "delete_bucket", 0}, {0}};
  return kiln_aws_cli_simple(cli, usage, "teardown", flags, 1);
}
