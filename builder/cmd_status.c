/* kiln status: the deployment as AWS sees it, found by tag, its instances one by one and each
 * instance's attestation. */
#include <stdlib.h>
#include <string.h>

#include "aws_cli.h"
#include "status_attest.h"
#include "status_fleet.h"

int kiln_cmd_status(struct kiln_cli *cli)
{
  int code = 0;
  const char *root = NULL; /* --attestation-root: tests and forensics only */
  for (int i = 1; i < cli->argc; i++)
    if (strcmp(cli->argv[i], "--attestation-root") == 0 &&
        !(root = i + 1 < cli->argc ? cli->argv[i + 1] : NULL))
      return kiln_cli_usage(cli, "--attestation-root needs a value");
  struct kiln *k = kiln_cli_open_app(cli, 0, &code);
  if (!k)
    return code;
  struct kiln_aws_cli a = {.action = "status"};
  struct kiln_pipeline *p = NULL;
  const struct kiln_artifact *d = NULL;
  if (!(code = kiln_aws_cli_pipeline(cli, k, &a, &p)) &&
      !(code = kiln_aws_cli_args(cli, k, p, &a, "--attestation-root")) &&
      !(code = kiln_cli_run_pipeline(cli, k, p, "deployment", &d))) {
    cJSON *meta = cJSON_Duplicate(d->meta, 1);
    if (!(code = kiln_status_attest(cli, k, root, meta))) {
      kiln_aws_cli_print_result(cli, meta);
      if (!cli->json) {
        kiln_status_fleet_print(meta);
        kiln_status_attest_print(meta);
      }
    }
    cJSON_Delete(meta);
  }
  free(a.eif_storage);
  kiln_pipeline_free(p);
  kiln_free(k);
  return code;
}
