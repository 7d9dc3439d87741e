/* kiln deploy: build (cached when unchanged) or take a prebuilt EIF, size, upload, roll out. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws_cli.h"

static const char usage[] =
    "Usage: kiln deploy [--eif FILE] [--region REGION] [--profile NAME] [--set STAGE.KEY=VALUE]\n"
    "                   [--json]\n"
    "\n"
    "Build the app's EIF (cache hits when nothing changed), size the instance (memory at least\n"
    "4x the EIF, plus the host's reserve), upload the EIF to the deployment's bucket, write a new\n"
    "launch template version (Nitro Enclaves on, user data that fetches the EIF, checks its\n"
    "SHA-256 and runs it), point the Auto Scaling group at it with a rolling instance refresh,\n"
    "and keep the Elastic IP on a serving instance. Nothing changes when nothing differs.\n"
    "\n"
    "Run it with the scoped credentials `kiln setup` wrote; it is the whole CI job:\n"
    "  set -a; . ./kiln-deploy.env; set +a; kiln deploy --json\n"
    "\n"
    "Options:\n"
    "  --eif FILE        deploy this prebuilt EIF (or \"eif\": \"FILE\" in kiln.json)\n"
    "  --region REGION   when AWS_REGION and the profile name none\n"
    "  --profile NAME    AWS profile\n"
    "  --set S.K=V       override a stage option, e.g. --set aws.count=2\n"
    "  --json            the deployment (ids, EIF key and digest, PCRs, instances, EIP) as JSON\n"
    "\n"
    "See also: kiln plan (what deploy would change), kiln status, kiln teardown.\n";

int kiln_cmd_deploy(struct kiln_cli *cli)
{
  if (kiln_cli_wants_help(cli)) {
    fputs(usage, stdout);
    return KILN_EXIT_OK;
  }
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
