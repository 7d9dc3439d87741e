/* kiln setup: the one-time, broad-rights creation of the deployment's isolated environment. */
#include "aws_cli.h"

static const char usage[] =
    "Usage: kiln setup [--credentials-file FILE] [--github-repo OWNER/REPO]\n"
    "                  [--gitlab-project GROUP/PROJECT [--gitlab-url URL]] [--print-policy]\n"
    "                  [--region REGION] [--profile NAME] [--json]\n"
    "\n"
    "Create (or complete) the deployment's environment in your AWS account, every resource\n"
    "tagged caution:deployment-id=<id>: a VPC with one public subnet per zone (up to 3),\n"
    "internet gateway and routes, a security group with /aws/ports open, the EIF bucket\n"
    "(private, versioned, encrypted, incomplete uploads aborted), the instance role and\n"
    "profile, and a deploy user whose policy only reaches this deployment's resources.\n"
    "A new deployment id is written to the app's .env (DEPLOYMENT_ID=...). Running setup\n"
    "again changes nothing that is already right. Needs broad (admin-like) credentials once;\n"
    "`kiln deploy` then runs with the scoped ones.\n"
    "\n"
    "Options:\n"
    "  --credentials-file FILE   write the deploy user's new access key here (0600, KEY=VALUE\n"
    "                            lines); never printed. Existing files are left alone.\n"
    "  --github-repo OWNER/REPO  also a deploy role that only GitHub Actions of OWNER/REPO can\n"
    "                            assume with their OIDC token (no stored keys; the account's\n"
    "                            OIDC provider is created when missing); its ARN is printed\n"
    "  --gitlab-project G/P      the same for GitLab CI jobs of project G/P (--gitlab-url for\n"
    "                            a self-managed instance, default https://gitlab.com)\n"
    "  --print-policy            print the scoped deploy policy and change nothing\n"
    "  --region, --profile       AWS settings (else AWS_REGION / AWS_PROFILE / the profile)\n"
    "  --json                    the ids (deployment_id, VPC, subnets, bucket, roles) as JSON\n"
    "\n"
    "Examples:\n"
    "  kiln setup --credentials-file kiln-deploy.env\n"
    "  kiln setup --github-repo my-org/my-app     # then AWS_ROLE_ARN=<CI deploy role> in CI\n";

int kiln_cmd_setup(struct kiln_cli *cli)
{
  static const struct kiln_aws_flag flags[] = {
      {"--credentials-file", "credentials_file", 1}, {"--github-repo", "github_repo", 1},
      {"--gitlab-project", "gitlab_project", 1},     {"--gitlab-url", "gitlab_url", 1},
      {"--print-policy", "=\"policy\"", 0},          {0}};
  return kiln_aws_cli_simple(cli, usage, "setup", flags, 0);
}
