/* kiln status: the deployment as AWS sees it, found by tag. */
#include "aws_cli.h"

int kiln_cmd_status(struct kiln_cli *cli)
{
  return kiln_aws_cli_simple(cli, "status", NULL, 0);
}
