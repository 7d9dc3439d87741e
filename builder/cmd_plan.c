/* kiln plan: what `kiln deploy` (or setup/teardown with --action) would change, without changing
 * anything: every AWS effect listed as create, update, delete or nothing, with its reason. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws_cli.h"

int kiln_cmd_plan(struct kiln_cli *cli)
{
  const char *action = "deploy";
  for (int i = 1; i + 1 < cli->argc; i++)
    if (strcmp(cli->argv[i], "--action") == 0)
      action = cli->argv[i + 1];
  if (strcmp(action, "deploy") && strcmp(action, "setup") && strcmp(action, "teardown"))
    return kiln_cli_usage(cli, "--action takes deploy, setup or teardown, not \"%s\"", action);
  int code = 0;
  struct kiln *k = kiln_cli_open_app(cli, 0, &code);
  if (!k)
    return code;
  struct kiln_aws_cli a = {.action = action, .deploy_pipeline = strcmp(action, "deploy") == 0};
  struct kiln_pipeline *p = NULL;
  cJSON *result = NULL;
  if ((code = kiln_aws_cli_pipeline(cli, k, &a, &p)))
    goto out;
  code = kiln_aws_cli_args(cli, k, p, &a, "--action");
  if (code)
    goto out;
  kiln_err rc = kiln_pipeline_plan(p, &result);
  if (rc) {
    code = kiln_cli_fail(cli, k, rc);
    goto out;
  }
  if (cli->json) {
    kiln_cli_print_json(result);
    result = NULL;
  } else {
    kiln_aws_cli_print_plan(result);
  }
out:
  cJSON_Delete(result);
  free(a.eif_storage);
  kiln_pipeline_free(p);
  kiln_free(k);
  return code;
}
