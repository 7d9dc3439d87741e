/* kiln setup: the one-time, broad-rights creation of the deployment's isolated environment. */
#include "aws_cli.h"

int kiln_cmd_setup(struct kiln_cli *cli)
{
  static const struct kiln_aws_flag flags[] = {{"--credentials-file", "credentials_file", 1},
                                               {"--github-repo", "github_repo", 1},
                                               {"--github-ref", "github_ref", 1},
                                               {"--github-environment", "github_environment", 1},
                                               {"--gitlab-project", "gitlab_project", 1},
                                               {"--gitlab-ref", "gitlab_ref", 1},
                                               {"--gitlab-ref-type", "gitlab_ref_type", 1},
                                               {"--gitlab-url", "gitlab_url", 1},
                                               {"--ci-any-ref", "ci_any_ref", 0},
                                               {"--print-policy", "=\"policy\"", 0},
                                               {0}};
  return kiln_aws_cli_simple(cli, "setup", flags, 0);
}
