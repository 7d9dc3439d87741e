/* The command and option table of the CLI: --help, `kiln help --json`, the man page (kiln.1) and
 * the bash/zsh completions are all printed from it, and main.c uses it to tell a command's own
 * options from the global ones. */
#ifndef KILN_BUILDER_COMMAND_DOC_H
#define KILN_BUILDER_COMMAND_DOC_H

#include <stdio.h>

/* One option as users see it. */
struct kiln_cli_option {
  const char *name;     /* "--kernel" (or "-o" when the option has no long form) */
  const char *alias;    /* another spelling ("-o" for "--output"), or NULL */
  const char *value;    /* placeholder of its value ("FILE"), NULL for a switch */
  const char *help;     /* one sentence */
  const char *complete; /* "file", "dir", space-separated words, or NULL */
};

/* One command's documentation; the command list itself (names, summaries) is in main.c. */
struct kiln_cli_doc {
  const char *name;
  const char *args;                      /* positional arguments ("FILE.eif"), or NULL */
  const char *text;                      /* what it does, then examples; '\n'-separated lines */
  const struct kiln_cli_option *options; /* terminated by {NULL} */
};

/* A command of the CLI as the table's printers need it (main.c holds the list). */
struct kiln_cli_command_info {
  const char *name;
  const char *summary;
  int built; /* 0: named by the design, not part of this build */
};

/* The options every command accepts (before the command, or after it when the command has no
 * option of the same name). */
extern const struct kiln_cli_option kiln_cli_global_options[];

/* The documentation of command name, or NULL. */
const struct kiln_cli_doc *kiln_cli_doc_find(const char *name);

/* The option of doc that arg spells ("--name", "-o", or "--name=value", then *inline_value is
 * set); NULL when doc has none. */
const struct kiln_cli_option *kiln_cli_doc_option(const struct kiln_cli_doc *doc, const char *arg,
                                                  int *inline_value);

/* `kiln NAME --help`: usage, summary, text, options and the global options. */
void kiln_cli_doc_print_help(FILE *out, const struct kiln_cli_command_info *cmd,
                             const struct kiln_cli_doc *doc);
/* The global options' lines of the overview (`kiln help`). */
void kiln_cli_doc_print_globals(FILE *out);
/* The man page kiln.1 (roff), one section per command. */
void kiln_cli_doc_print_man(FILE *out, const struct kiln_cli_command_info *cmds, size_t n,
                            const char *version);
/* The completion script for shell "bash" or "zsh"; returns -1 for another shell. */
int kiln_cli_doc_print_completion(FILE *out, const char *shell,
                                  const struct kiln_cli_command_info *cmds, size_t n);
/* The whole table as JSON (`kiln help --json`); the caller owns the result. */
struct cJSON *kiln_cli_doc_json(const struct kiln_cli_command_info *cmds, size_t n);

#endif
