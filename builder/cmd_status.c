/* kiln status: the deployment as AWS sees it, found by tag, and its instances one by one. */
#include "aws_cli.h"
#include "status_fleet.h"

int kiln_cmd_status(struct kiln_cli *cli)
{
  int code = 0;
  struct kiln *k = kiln_cli_open_app(cli, 0, &code);
  if (!k)
    return code;
  struct kiln_aws_cli a = {.action = "status"};
  struct kiln_pipeline *p = NULL;
  const struct kiln_artifact *d = NULL;
  if (!(code = kiln_aws_cli_pipeline(cli, k, &a, &p)))
    code = kiln_aws_cli_args(cli, k, p, &a, NULL);
  if (!code)
    code = kiln_cli_run_pipeline(cli, k, p, "deployment", &d);
  if (!code) {
    kiln_aws_cli_print_result(cli, d->meta);
    if (!cli->json)
      kiln_status_fleet_print(d->meta);
  }
  kiln_pipeline_free(p);
  kiln_free(k);
  return code;
}
