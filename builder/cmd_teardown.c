/* kiln teardown: delete everything carrying the deployment tag. */
#include "aws_cli.h"

int kiln_cmd_teardown(struct kiln_cli *cli)
{
  static const struct kiln_aws_flag flags[] = {{"--delete-bucket", "delete_bucket", 0}, {0}};
  return kiln_aws_cli_simple(cli, "teardown", flags, 1);
}
