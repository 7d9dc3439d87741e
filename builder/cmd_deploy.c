/* kiln deploy: build (cached when unchanged) or take a prebuilt EIF, size, upload, roll out. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws_cli.h"

int kiln_cmd_deploy(struct kiln_cli *cli)
{
  int code = 0;
  struct kiln *k = kiln_cli_open_app(cli, 0, &code);
  if (!k)
    return code;
  struct kiln_aws_cli a = {.action = "deploy", .deploy_pipeline = 1};
  struct kiln_pipeline *p = NULL;
  if ((code = kiln_aws_cli_pipeline(cli, k, &a, &p)))
    goto out;
  code = kiln_aws_cli_args(cli, k, p, &a, NULL);
out:
  return kiln_aws_cli_finish(cli, k, p, &a, code);
}
