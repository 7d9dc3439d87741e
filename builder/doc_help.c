/* --help text and `kiln help --json`, printed from the command and option table. */
#include <cjson/cJSON.h>
#include <string.h>

#include "command_doc.h"

enum { HELP_WIDTH = 100, OPTION_COLUMN = 30 };

/* "-o, --output FILE" */
static int option_label(char *buf, size_t size, const struct kiln_cli_option *o)
{
  return snprintf(buf, size, "%s%s%s%s%s", o->alias ? o->alias : "", o->alias ? ", " : "", o->name,
                  o->value ? " " : "", o->value ? o->value : "");
}

/* Print text from column indent, wrapped at HELP_WIDTH; the first line continues at column at. */
static void print_wrapped(FILE *out, const char *text, int at, int indent)
{
  int col = at;
  while (*text) {
    size_t word = strcspn(text, " ");
    if (col > indent && col + 1 + (int)word > HELP_WIDTH) {
      fprintf(out, "\n%*s", indent, "");
      col = indent;
    } else if (col > indent) {
      fputc(' ', out);
      col++;
    }
    fwrite(text, 1, word, out);
    col += (int)word;
    text += word;
    while (*text == ' ')
      text++;
  }
  fputc('\n', out);
}

static void print_options(FILE *out, const struct kiln_cli_option *o)
{
  for (; o->name; o++) {
    char label[128];
    int n = option_label(label, sizeof label, o);
    fprintf(out, "  %s", label);
    if (n + 2 >= OPTION_COLUMN - 1) {
      fprintf(out, "\n%*s", OPTION_COLUMN, "");
    } else {
      fprintf(out, "%*s", OPTION_COLUMN - 2 - n, "");
    }
    print_wrapped(out, o->help, OPTION_COLUMN, OPTION_COLUMN);
  }
}

void kiln_cli_doc_print_globals(FILE *out)
{
  print_options(out, kiln_cli_global_options);
}

void kiln_cli_doc_print_help(FILE *out, const struct kiln_cli_command_info *cmd,
                             const struct kiln_cli_doc *doc)
{
  int has_options = doc->options[0].name != NULL;
  fprintf(out, "Usage: kiln %s%s%s%s\n\n%s.\n\n%s", cmd->name, doc->args ? " " : "",
          doc->args ? doc->args : "", has_options ? " [OPTIONS]" : "", cmd->summary, doc->text);
  if (has_options) {
    fprintf(out, "\nOptions:\n");
    print_options(out, doc->options);
  }
  fprintf(out, "\nGlobal options (before the command, or after it unless the command has an option "
               "of that name):\n");
  print_options(out, kiln_cli_global_options);
}

static cJSON *options_json(const struct kiln_cli_option *o)
{
  cJSON *list = cJSON_CreateArray();
  for (; o->name; o++) {
    cJSON *item = cJSON_CreateObject();
    cJSON_AddStringToObject(item, "name", o->name);
    if (o->alias)
      cJSON_AddStringToObject(item, "alias", o->alias);
    if (o->value)
      cJSON_AddStringToObject(item, "value", o->value);
    cJSON_AddStringToObject(item, "help", o->help);
    if (o->complete)
      cJSON_AddStringToObject(item, "complete", o->complete);
    cJSON_AddItemToArray(list, item);
  }
  return list;
}

cJSON *kiln_cli_doc_json(const struct kiln_cli_command_info *cmds, size_t n)
{
  cJSON *doc = cJSON_CreateObject();
  cJSON *list = cJSON_AddArrayToObject(doc, "commands");
  for (size_t i = 0; i < n; i++) {
    const struct kiln_cli_doc *d = kiln_cli_doc_find(cmds[i].name);
    cJSON *c = cJSON_CreateObject();
    cJSON_AddStringToObject(c, "name", cmds[i].name);
    cJSON_AddStringToObject(c, "summary", cmds[i].summary);
    cJSON_AddBoolToObject(c, "built", cmds[i].built);
    cJSON_AddBoolToObject(c, "documented", d != NULL);
    if (d && d->args)
      cJSON_AddStringToObject(c, "args", d->args);
    if (d)
      cJSON_AddItemToObject(c, "options", options_json(d->options));
    cJSON_AddItemToArray(list, c);
  }
  cJSON_AddItemToObject(doc, "global_options", options_json(kiln_cli_global_options));
  return doc;
}
