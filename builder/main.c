/* kiln CLI entry point: global options, the command table, help and version. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

/* Every command: one line each (function suffix, name, summary); kiln_cmd_<fn> lives in
 * builder/cmd_<fn>.c. */
#define KILN_COMMAND_LIST(X)                                                                       \
  X(build, "build", "Build the app's EIF (image -> kernel -> eif) and print its PCRs")             \
  X(describe, "describe", "Show an EIF's header, sections, PCRs and metadata")                     \
  X(verify, "verify", "Check an EIF or a live enclave (--attestation) against a rebuild")          \
  X(diff, "diff", "Show why two EIFs differ: first differing section, ramdisk paths")              \
  X(eif_build, "eif-build", "Assemble an EIF from kernel, cmdline and ramdisks (eif_build flags)") \
  X(sign, "sign", "Sign an EIF with a P-384 key and certificate (sets PCR8)")                      \
  X(image, "image", "Turn a container image into the enclave root filesystem (cpio)")              \
  X(size, "size", "Pick the cheapest Nitro Enclave-capable instance for CPUs and memory")          \
  X(upload, "upload", "Upload a file to S3: parallel, resumable, checksummed")                     \
  X(plan, "plan", "Show what deploy would do, without side effects")                               \
  X(setup, "setup", "Create the tag-scoped environment in your AWS account (once)")                \
  X(deploy, "deploy", "Build, size, upload and roll out the enclave to your account")              \
  X(status, "status", "Show the deployment's resources, instances and PCRs")                       \
  X(update_policy, "update-policy", "Re-render and update the scoped deploy policy")               \
  X(teardown, "teardown", "Delete every resource carrying the deployment tag")                     \
  X(run, "run", "Run any single stage with options (--set key=value)")                             \
  X(run_local, "run-local", "Boot the app's EIF here in qemu, without Nitro hardware")             \
  X(plugins, "plugins", "List the loaded plugins and their stages")                                \
  X(init, "init", "Write a kiln.json for the current directory")

#define DECLARE_COMMAND(fn, name, summary) int kiln_cmd_##fn(struct kiln_cli *cli);
KILN_COMMAND_LIST(DECLARE_COMMAND)

struct kiln_command {
  const char *name;
  kiln_command_fn fn;
  const char *summary;
};

#define COMMAND_ENTRY(fn, name, summary) {name, kiln_cmd_##fn, summary},
static const struct kiln_command commands[] = {KILN_COMMAND_LIST(COMMAND_ENTRY){NULL, NULL, NULL}};

static const struct kiln_command *find_command(const char *name)
{
  for (const struct kiln_command *c = commands; c->name; c++)
    if (strcmp(c->name, name) == 0)
      return c;
  return NULL;
}

static void print_usage(FILE *out)
{
  fprintf(out,
          "kiln %s: reproducible AWS Nitro Enclave images, deployed into your own AWS account.\n"
          "\n"
          "Usage: kiln [-C DIR] [--json] [-v|-q] [--no-cache] [--plugin-path P] COMMAND [ARGS]\n"
          "\n"
          "Commands:\n",
          kiln_version());
  for (const struct kiln_command *c = commands; c->name; c++)
    fprintf(out, "  %-14s %s\n", c->name, c->summary);
  fprintf(out,
          "\n"
          "Global options (also accepted after the command):\n"
          "  -C DIR            run as if started in the application directory DIR\n"
          "  --json            print exactly one JSON document on stdout (logs stay on stderr)\n"
          "  -v, -vv / -q      more / less logging\n"
          "  --no-cache        run every stage even when its result is cached\n"
          "  --plugin-path P   extra plugin directories or files, ':'-separated\n"
          "  --version         print kiln's version\n"
          "\n"
          "Examples:\n"
          "  kiln init                         write kiln.json for the app in this directory\n"
          "  kiln build                        build ./<name>.eif and print PCR0/1/2\n"
          "  kiln size --cpus 6 --memory 30G   cheapest instance for a 6-CPU, 30 GiB enclave\n"
          "  kiln plugins --json               stages available to pipelines, as JSON\n"
          "  kiln help COMMAND                 how one command works\n"
          "\n"
          "Exit status: 0 success, 1 failure, 2 usage error, 130 interrupted.\n");
}

/* Remove global options from argv[from..] in place; returns -1 after printing a usage error. */
static int take_global_options(struct kiln_cli *cli, int *argc, char **argv, int from, int *version)
{
  int out = from;
  int passthrough = 0;
  for (int i = from; i < *argc; i++) {
    char *a = argv[i];
    if (passthrough) {
      argv[out++] = a;
      continue;
    }
    if (strcmp(a, "--") == 0) {
      passthrough = 1;
      argv[out++] = a;
    } else if (strcmp(a, "--json") == 0) {
      cli->json = 1;
    } else if (strcmp(a, "-q") == 0 || strcmp(a, "--quiet") == 0) {
      cli->verbosity = -1;
    } else if (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0) {
      cli->verbosity = cli->verbosity < 0 ? 1 : cli->verbosity + 1;
    } else if (strcmp(a, "-vv") == 0) {
      cli->verbosity = 2;
    } else if (strcmp(a, "--no-cache") == 0) {
      cli->no_cache = 1;
    } else if (strcmp(a, "--version") == 0 && version) {
      *version = 1;
    } else if (strcmp(a, "-C") == 0 || strcmp(a, "--plugin-path") == 0) {
      if (i + 1 >= *argc) {
        fprintf(stderr, "kiln: %s needs a value\n", a);
        return -1;
      }
      if (a[1] == 'C')
        cli->app_dir = argv[++i];
      else
        cli->plugin_path = argv[++i];
    } else if (strncmp(a, "--plugin-path=", 14) == 0) {
      cli->plugin_path = a + 14;
    } else if (strncmp(a, "-C", 2) == 0 && a[2]) {
      cli->app_dir = a + 2;
    } else {
      argv[out++] = a;
    }
  }
  *argc = out;
  argv[out] = NULL;
  return 0;
}

static int run_help(struct kiln_cli *cli)
{
  if (cli->argc < 2) {
    print_usage(stdout);
    return KILN_EXIT_OK;
  }
  const struct kiln_command *c = find_command(cli->argv[1]);
  if (!c) {
    fprintf(stderr, "kiln help: no command named \"%s\"; `kiln help` lists them\n", cli->argv[1]);
    return KILN_EXIT_USAGE;
  }
  char *argv[] = {(char *)c->name, "--help", NULL};
  struct kiln_cli sub = *cli;
  sub.argc = 2;
  sub.argv = argv;
  return c->fn(&sub);
}

int main(int argc, char **argv)
{
  struct kiln_cli cli;
  memset(&cli, 0, sizeof cli);
  cli.tty = isatty(STDERR_FILENO);
  const char *no_color = getenv("NO_COLOR");
  cli.color = cli.tty && !(no_color && *no_color);

  int version = 0;
  if (take_global_options(&cli, &argc, argv, 1, &version) != 0)
    return KILN_EXIT_USAGE;
  if (version) {
    if (cli.json) {
      cJSON *doc = cJSON_CreateObject();
      cJSON_AddStringToObject(doc, "version", kiln_version());
      kiln_cli_print_json(doc);
    } else {
      printf("kiln %s\n", kiln_version());
    }
    return KILN_EXIT_OK;
  }
  if (argc < 2) {
    print_usage(stderr);
    return KILN_EXIT_USAGE;
  }
  const char *name = argv[1];
  cli.argc = argc - 1;
  cli.argv = argv + 1;
  if (strcmp(name, "help") == 0 || strcmp(name, "-h") == 0 || strcmp(name, "--help") == 0)
    return run_help(&cli);
  const struct kiln_command *c = find_command(name);
  if (!c) {
    fprintf(stderr, "kiln: unknown command \"%s\"; `kiln help` lists the commands\n", name);
    return KILN_EXIT_USAGE;
  }
  /* "as if started in DIR", like git -C and make -C: paths on the command line are relative to it
   */
  if (cli.app_dir) {
    if (chdir(cli.app_dir) != 0) {
      fprintf(stderr, "kiln: -C %s: %s; give an existing application directory\n", cli.app_dir,
              strerror(errno));
      return KILN_EXIT_USAGE;
    }
    cli.app_dir = ".";
  }
  kiln_cancel_install_handlers();
  return c->fn(&cli);
}
