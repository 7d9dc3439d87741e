/* kiln CLI entry point: global options, the command list, help and version. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "command_doc.h"

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
  X(logs, "logs", "Show the enclave's output from CloudWatch Logs (--follow to keep reading)")     \
  X(rollback, "rollback", "Return the instances to an earlier release (launch template version)")  \
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

/* help and version are built in; they are documented in the table like every command. */
static const struct kiln_cli_command_info builtins[] = {
    {"help", "Show how to use kiln or one command (--man, --completion bash|zsh, --json)", 1},
    {"version", "Print kiln's version", 1}};

/* The command list as the table's printers take it; the caller frees the result. */
static struct kiln_cli_command_info *command_infos(size_t *n)
{
  size_t ncommands = sizeof commands / sizeof *commands - 1;
  size_t nbuiltins = sizeof builtins / sizeof *builtins;
  struct kiln_cli_command_info *infos = calloc(ncommands + nbuiltins, sizeof *infos);
  if (!infos)
    return NULL;
  for (size_t i = 0; i < ncommands; i++)
    infos[i] = (struct kiln_cli_command_info){commands[i].name, commands[i].summary, 1};
  memcpy(infos + ncommands, builtins, sizeof builtins);
  *n = ncommands + nbuiltins;
  return infos;
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
  for (size_t i = 0; i < sizeof builtins / sizeof *builtins; i++)
    fprintf(out, "  %-14s %s\n", builtins[i].name, builtins[i].summary);
  fprintf(out, "\nGlobal options (before the command, or after it unless the command has an "
               "option of that name):\n");
  kiln_cli_doc_print_globals(out);
  fprintf(out, "\n"
               "Examples:\n"
               "  kiln init                         write kiln.json for the app in this directory\n"
               "  kiln build                        build ./<name>.eif and print PCR0/1/2\n"
               "  kiln size --cpus 6 --memory 30G   cheapest instance for a 6-CPU, 30 GiB enclave\n"
               "  kiln plugins --json               stages available to pipelines, as JSON\n"
               "  kiln help COMMAND                 how one command works\n"
               "\n"
               "Exit status: 0 success, 1 failure, 2 usage error, 130 interrupted.\n");
}

/* When argv[*i] is a global option, apply it (consuming its value) and return 1; 0 when it is
 * not one; -1 after printing a usage error. */
static int take_global_option(struct kiln_cli *cli, int argc, char **argv, int *i, int *version,
                              int *help)
{
  const char *a = argv[*i];
  if (strcmp(a, "--json") == 0) {
    cli->json = 1;
  } else if (strcmp(a, "-q") == 0 || strcmp(a, "--quiet") == 0) {
    cli->verbosity = -1;
  } else if (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0) {
    cli->verbosity = cli->verbosity < 0 ? 1 : cli->verbosity + 1;
  } else if (strcmp(a, "-vv") == 0) {
    cli->verbosity = 2;
  } else if (strcmp(a, "--no-cache") == 0) {
    cli->no_cache = 1;
  } else if (strcmp(a, "--version") == 0) {
    *version = 1;
  } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
    *help = 1;
  } else if (strcmp(a, "-C") == 0 || strcmp(a, "--plugin-path") == 0) {
    if (*i + 1 >= argc) {
      fprintf(stderr, "kiln: %s needs a value\n", a);
      return -1;
    }
    if (a[1] == 'C')
      cli->app_dir = argv[++*i];
    else
      cli->plugin_path = argv[++*i];
  } else if (strncmp(a, "--plugin-path=", 14) == 0) {
    cli->plugin_path = a + 14;
  } else if (strncmp(a, "-C", 2) == 0 && a[2]) {
    cli->app_dir = a + 2;
  } else {
    return 0;
  }
  return 1;
}

/* After the command (argv[from - 1]): keep the command's own options with their values, take
 * global options the command does not have, keep everything after "--". Compacts argv in place;
 * returns -1 after printing a usage error. */
static int take_trailing_globals(struct kiln_cli *cli, const struct kiln_cli_doc *doc, int *argc,
                                 char **argv, int from, int *version, int *help)
{
  int out = from;
  for (int i = from; i < *argc; i++) {
    int inline_value = 0;
    const struct kiln_cli_option *own = kiln_cli_doc_option(doc, argv[i], &inline_value);
    if (strcmp(argv[i], "--") == 0) {
      while (i < *argc)
        argv[out++] = argv[i++];
      break;
    }
    if (own) {
      argv[out++] = argv[i];
      if (own->value && !inline_value && i + 1 < *argc)
        argv[out++] = argv[++i];
      continue;
    }
    int r = take_global_option(cli, *argc, argv, &i, version, help);
    if (r < 0)
      return -1;
    if (r == 0)
      argv[out++] = argv[i];
  }
  *argc = out;
  argv[out] = NULL;
  return 0;
}

static void print_version(const struct kiln_cli *cli)
{
  if (cli->json) {
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "version", kiln_version());
    kiln_cli_print_json(doc);
  } else {
    printf("kiln %s\n", kiln_version());
  }
}

/* The table's help of command name, or its own (commands not in the table print their help). */
static int print_command_help(struct kiln_cli *cli, const char *name)
{
  const struct kiln_command *c = find_command(name);
  const struct kiln_cli_doc *doc = kiln_cli_doc_find(name);
  for (size_t i = 0; !c && doc && i < sizeof builtins / sizeof *builtins; i++)
    if (strcmp(builtins[i].name, name) == 0) {
      kiln_cli_doc_print_help(stdout, &builtins[i], doc);
      return KILN_EXIT_OK;
    }
  if (!c) {
    fprintf(stderr, "kiln help: no command named \"%s\"; `kiln help` lists them\n", name);
    return KILN_EXIT_USAGE;
  }
  if (doc) {
    struct kiln_cli_command_info info = {c->name, c->summary, 1};
    kiln_cli_doc_print_help(stdout, &info, doc);
    return KILN_EXIT_OK;
  }
  char *argv[] = {(char *)c->name, "--help", NULL};
  struct kiln_cli sub = *cli;
  sub.argc = 2;
  sub.argv = argv;
  return c->fn(&sub);
}

/* `kiln help [COMMAND | --man | --completion SHELL]`, and the whole table with --json. */
static int run_help(struct kiln_cli *cli)
{
  size_t n = 0;
  struct kiln_cli_command_info *infos = NULL;
  const char *what = cli->argc >= 2 ? cli->argv[1] : NULL;
  int code = KILN_EXIT_OK;
  if (what && cli->argc > (strcmp(what, "--completion") == 0 ? 3 : 2))
    return kiln_cli_usage(cli, "unexpected argument \"%s\"", cli->argv[cli->argc - 1]);
  if (what && strcmp(what, "--man") && strcmp(what, "--completion") && what[0] == '-')
    return kiln_cli_usage(cli, "unknown option \"%s\"", what);
  if (what && what[0] != '-')
    return print_command_help(cli, what);
  if (!(infos = command_infos(&n)))
    return KILN_EXIT_FAILURE;
  if (what && strcmp(what, "--man") == 0) {
    kiln_cli_doc_print_man(stdout, infos, n, kiln_version());
  } else if (what) {
    const char *shell = cli->argc > 2 ? cli->argv[2] : "";
    if (kiln_cli_doc_print_completion(stdout, shell, infos, n) != 0)
      code = kiln_cli_usage(cli, "--completion takes bash or zsh, got \"%s\"", shell);
  } else if (cli->json) {
    kiln_cli_print_json(kiln_cli_doc_json(infos, n));
  } else {
    print_usage(stdout);
  }
  free(infos);
  return code;
}

int main(int argc, char **argv)
{
  struct kiln_cli cli;
  memset(&cli, 0, sizeof cli);
  cli.tty = isatty(STDERR_FILENO);
  const char *no_color = getenv("NO_COLOR");
  cli.color = cli.tty && !(no_color && *no_color);

  /* Global options before the command. */
  int version = 0, help = 0, first = 1;
  for (; first < argc; first++) {
    int r = take_global_option(&cli, argc, argv, &first, &version, &help);
    if (r < 0)
      return KILN_EXIT_USAGE;
    if (r == 0)
      break;
  }
  if (version) {
    print_version(&cli);
    return KILN_EXIT_OK;
  }
  if (first >= argc) {
    print_usage(help ? stdout : stderr);
    return help ? KILN_EXIT_OK : KILN_EXIT_USAGE;
  }
  const char *name = argv[first];
  if (take_trailing_globals(&cli, kiln_cli_doc_find(name), &argc, argv, first + 1, &version,
                            &help) != 0)
    return KILN_EXIT_USAGE;
  cli.argc = argc - first;
  cli.argv = argv + first;
  if (help)
    return print_command_help(&cli, name);
  if (strcmp(name, "help") == 0)
    return run_help(&cli);
  if (version || strcmp(name, "version") == 0) {
    if (!version && cli.argc > 1)
      return kiln_cli_usage(&cli, "unexpected argument \"%s\"", cli.argv[1]);
    print_version(&cli);
    return KILN_EXIT_OK;
  }
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
