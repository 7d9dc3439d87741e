/* Shared pieces of the kiln CLI: global options, opening the core, printing results and errors. */
#ifndef KILN_BUILDER_CLI_H
#define KILN_BUILDER_CLI_H

#include <cjson/cJSON.h>

#include <kiln/kiln.h>

/* Exit codes of every command. */
enum { KILN_EXIT_OK = 0, KILN_EXIT_FAILURE = 1, KILN_EXIT_USAGE = 2, KILN_EXIT_INTERRUPTED = 130 };

struct kiln_cli {
  const char *app_dir;     /* -C DIR (NULL = cwd) */
  const char *plugin_path; /* --plugin-path */
  int json;                /* --json: exactly one JSON document on stdout */
  int verbosity;           /* -q = -1, -v = 1, -vv = 2 */
  int no_cache;            /* --no-cache */
  int tty;                 /* stderr is a terminal */
  int color;               /* colour allowed (TTY and no NO_COLOR) */
  int argc;                /* the command's arguments; argv[0] is the command name */
  char **argv;
};

/*
 * A command is `int kiln_cmd_<name>(struct kiln_cli *cli)` in builder/cmd_<name>.c ('-' in the
 * name becomes '_'), returning an exit code. The table in main.c lists every command. Its help,
 * arguments and options are documented in builder/command_doc.c, from which main.c prints --help
 * (a command missing there is called with --help and prints its own) and tells its options from
 * the global ones.
 */
typedef int (*kiln_command_fn)(struct kiln_cli *cli);

/* The stages `kiln build` runs (image -> kernel -> eif); commands that need the app's EIF run
 * the same pipeline, so they share its cache. */
extern const char *const kiln_cli_build_stages[];

/* Open the core with the CLI's settings; on failure prints the error and returns NULL. */
struct kiln *kiln_cli_open(struct kiln_cli *cli);
/* Open the core, read kiln.json (config_required: it must exist) and load plugins. On failure
 * prints the error, sets *exit_code and returns NULL. */
struct kiln *kiln_cli_open_app(struct kiln_cli *cli, int config_required, int *exit_code);
/* Apply "key=value" to a stage (or "stage.key=value" when stage is NULL); prints usage errors.
 * Returns 0, or an exit code. */
int kiln_cli_apply_set(struct kiln_cli *cli, struct kiln *k, struct kiln_pipeline *p,
                       const char *stage, const char *assignment);
/* Give FILE in place as the pipeline's input of kind (`kiln run --input KIND=FILE`, `kiln size
 * --eif`); on failure prints "<option> <message>" and returns the exit code, else 0. */
int kiln_cli_add_input(struct kiln_cli *cli, struct kiln *k, struct kiln_pipeline *p,
                       const char *option, const char *kind, const char *file);
/* Set a stage option to a string (never parsed as JSON); prints failures, returns 0 or the exit
 * code. */
int kiln_cli_set_string(struct kiln_cli *cli, struct kiln *k, struct kiln_pipeline *p,
                        const char *stage, const char *key, const char *value);
/* Create the pipeline of these stages; on failure prints the error and returns the exit code. */
int kiln_cli_pipeline(struct kiln_cli *cli, struct kiln *k, const char *const *stages,
                      struct kiln_pipeline **out);
/* Run the pipeline and return its newest artifact of kind in *out (result JSON freed). On failure
 * prints the error and returns the exit code; 0 on success. */
int kiln_cli_run_pipeline(struct kiln_cli *cli, struct kiln *k, struct kiln_pipeline *p,
                          const char *kind, const struct kiln_artifact **out);
/* Print the failure of rc (message from k, or msg when k is NULL) as text on stderr, or as a JSON
 * error document on stdout with --json; returns the exit code (1, or 130 when interrupted). */
int kiln_cli_fail(struct kiln_cli *cli, struct kiln *k, kiln_err rc);
/* Same with a message of the command's own. */
int kiln_cli_fail_msg(struct kiln_cli *cli, kiln_err rc, const char *fmt, ...) KILN_PRINTF(3, 4);
/* A usage error: "kiln NAME: <message>" and a hint to --help; returns 2. */
int kiln_cli_usage(struct kiln_cli *cli, const char *fmt, ...) KILN_PRINTF(2, 3);
/* Print a JSON document on stdout (pretty, sorted keys). Takes ownership of doc. */
void kiln_cli_print_json(cJSON *doc);
/* Same, keeping the document's key order (formats defined by other tools, e.g. nitro-cli). */
void kiln_cli_print_json_ordered(cJSON *doc);
/* 1 when argv has -h/--help before any "--". */
int kiln_cli_wants_help(const struct kiln_cli *cli);
/* Parse a size such as 512M, 14G, 14GiB, 2048 (MiB); returns 0 on success. */
int kiln_cli_parse_mib(const char *text, long long *mib);

#endif
