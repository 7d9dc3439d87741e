/* kiln rollback [--to VERSION]: return the deployment's instances to an earlier launch template
 * version (default: the one before the running version) with a health-gated instance refresh. */
#include <string.h>

#include "aws_cli.h"

int kiln_cmd_rollback(struct kiln_cli *cli)
{
  for (int i = 1; i < cli->argc; i++)
    if (strcmp(cli->argv[i], "--to") == 0 && i + 1 < cli->argc) {
      const char *v = cli->argv[i + 1];
      if (!*v || strspn(v, "0123456789") != strlen(v) || v[0] == '0' || strlen(v) > 9)
        return kiln_cli_usage(cli, "--to takes a launch template version number, got \"%s\"", v);
    }
  static const struct kiln_aws_flag flags[] = {{"--to", "rollback_to", 1}, {0}};
  return kiln_aws_cli_simple(cli, "rollback", flags, 0);
}
