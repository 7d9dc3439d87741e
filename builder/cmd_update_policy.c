/* kiln update-policy: re-render the scoped deploy policy and update it in place. */
#include "aws_cli.h"

int kiln_cmd_update_policy(struct kiln_cli *cli)
{
  return kiln_aws_cli_simple(cli, "update-policy", NULL, 0);
}
