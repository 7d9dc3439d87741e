/* Shared pieces of the kiln CLI: opening the core, printing results, errors and usage. */
#include "cli.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/json.h"

const char *const kiln_cli_build_stages[] = {"image", "kernel", "eif", NULL};

struct kiln *kiln_cli_open(struct kiln_cli *cli)
{
  struct kiln_settings s;
  memset(&s, 0, sizeof s);
  s.struct_size = sizeof s;
  s.app_dir = cli->app_dir;
  s.plugin_path = cli->plugin_path;
  s.no_cache = cli->no_cache;
  s.verbosity = cli->verbosity;
  s.progress = cli->tty;
  s.color = cli->color;
  struct kiln *k = NULL;
  kiln_err rc = kiln_new(&k, &s);
  if (rc) {
    kiln_cli_fail(cli, k, rc);
    kiln_free(k);
    return NULL;
  }
  return k;
}

struct kiln *kiln_cli_open_app(struct kiln_cli *cli, int config_required, int *exit_code)
{
  struct kiln *k = kiln_cli_open(cli);
  if (!k) {
    *exit_code = KILN_EXIT_FAILURE;
    return NULL;
  }
  kiln_err rc = kiln_config_load(k, config_required);
  rc = rc ? rc : kiln_plugins_load(k);
  if (rc) {
    *exit_code = kiln_cli_fail(cli, k, rc);
    kiln_free(k);
    return NULL;
  }
  return k;
}

int kiln_cli_apply_set(struct kiln_cli *cli, struct kiln *k, struct kiln_pipeline *p,
                       const char *stage, const char *assignment)
{
  const char *eq = strchr(assignment, '=');
  if (!eq || eq == assignment)
    return kiln_cli_usage(cli, "--set takes %s=value, got \"%s\"", stage ? "key" : "stage.key",
                          assignment);
  char *key = strndup(assignment, (size_t)(eq - assignment));
  if (!key)
    return KILN_EXIT_FAILURE;
  char *name = key;
  char *dot = stage ? NULL : strchr(key, '.');
  if (!stage) {
    if (!dot || dot == key || !dot[1]) {
      free(key);
      return kiln_cli_usage(cli, "--set takes stage.key=value (e.g. kernel.source=...), got \"%s\"",
                            assignment);
    }
    *dot = '\0';
    stage = key;
    name = dot + 1;
  }
  kiln_err rc = kiln_pipeline_set(p, stage, name, eq + 1);
  free(key);
  return rc ? kiln_cli_usage(cli, "%s", kiln_errmsg(k)) : 0;
}

int kiln_cli_add_input(struct kiln_cli *cli, struct kiln *k, struct kiln_pipeline *p,
                       const char *option, const char *kind, const char *file)
{
  kiln_err rc = kiln_pipeline_add_input_file(p, kind, file);
  return rc ? kiln_cli_fail_msg(cli, rc, "%s %s", option, kiln_errmsg(k)) : 0;
}

int kiln_cli_set_string(struct kiln_cli *cli, struct kiln *k, struct kiln_pipeline *p,
                        const char *stage, const char *key, const char *value)
{
  cJSON *s = cJSON_CreateString(value);
  char *quoted = s ? cJSON_PrintUnformatted(s) : NULL;
  kiln_err rc = quoted ? kiln_pipeline_set(p, stage, key, quoted)
                       : kiln_fail(k, KILN_E_NOMEM, "out of memory");
  free(quoted);
  cJSON_Delete(s);
  return rc ? kiln_cli_fail(cli, k, rc) : 0;
}

int kiln_cli_pipeline(struct kiln_cli *cli, struct kiln *k, const char *const *stages,
                      struct kiln_pipeline **out)
{
  kiln_err rc = kiln_pipeline_new(k, stages, out);
  return rc ? kiln_cli_fail(cli, k, rc) : 0;
}

int kiln_cli_run_pipeline(struct kiln_cli *cli, struct kiln *k, struct kiln_pipeline *p,
                          const char *kind, const struct kiln_artifact **out)
{
  cJSON *result = NULL;
  kiln_err rc = kiln_pipeline_run(p, &result);
  cJSON_Delete(result);
  if (rc)
    return kiln_cli_fail(cli, k, rc);
  *out = kiln_pipeline_output(p, kind);
  if (!*out)
    return kiln_cli_fail_msg(cli, KILN_E_INTERNAL, "the pipeline produced no %s artifact", kind);
  return 0;
}

static int exit_code_for(kiln_err rc)
{
  return (rc == KILN_E_CANCELLED || kiln_cancelled()) ? KILN_EXIT_INTERRUPTED : KILN_EXIT_FAILURE;
}

static const char *error_code_name(kiln_err rc)
{
  switch (rc) {
  case KILN_E_INVALID: return "invalid";
  case KILN_E_NOT_FOUND: return "not_found";
  case KILN_E_IO: return "io";
  case KILN_E_NOMEM: return "resources";
  case KILN_E_NETWORK: return "network";
  case KILN_E_REMOTE: return "remote";
  case KILN_E_AUTH: return "auth";
  case KILN_E_UNSUPPORTED: return "unsupported";
  case KILN_E_CANCELLED: return "interrupted";
  case KILN_E_PLUGIN: return "plugin";
  default: return "internal";
  }
}

static int report(struct kiln_cli *cli, kiln_err rc, const char *msg)
{
  /* "kiln size: size: ..." when the command is its stage's name: the stage's prefix goes */
  const char *command = cli->argv ? cli->argv[0] : "";
  size_t n = strlen(command);
  if (n && strncmp(msg, command, n) == 0 && strncmp(msg + n, ": ", 2) == 0)
    msg += n + 2;
  if (cli->json) {
    cJSON *doc = cJSON_CreateObject();
    cJSON *err = cJSON_AddObjectToObject(doc, "error");
    cJSON_AddStringToObject(err, "code", error_code_name(rc));
    cJSON_AddStringToObject(err, "message", msg);
    cJSON_AddStringToObject(doc, "command", cli->argv ? cli->argv[0] : "kiln");
    kiln_cli_print_json(doc);
  }
  if (cli->color)
    fprintf(stderr, "\033[31mkiln %s:\033[0m %s\n", cli->argv ? cli->argv[0] : "", msg);
  else
    fprintf(stderr, "kiln %s: %s\n", cli->argv ? cli->argv[0] : "", msg);
  return exit_code_for(rc);
}

int kiln_cli_fail(struct kiln_cli *cli, struct kiln *k, kiln_err rc)
{
  return report(cli, rc, kiln_errmsg(k));
}

int kiln_cli_fail_msg(struct kiln_cli *cli, kiln_err rc, const char *fmt, ...)
{
  struct kiln_buf b = KILN_BUF_INIT;
  va_list ap;
  va_start(ap, fmt);
  kiln_buf_vprintf(&b, fmt, ap);
  va_end(ap);
  int code = report(cli, rc, kiln_buf_str(&b));
  kiln_buf_free(&b);
  return code;
}

int kiln_cli_usage(struct kiln_cli *cli, const char *fmt, ...)
{
  struct kiln_buf b = KILN_BUF_INIT;
  va_list ap;
  va_start(ap, fmt);
  kiln_buf_vprintf(&b, fmt, ap);
  va_end(ap);
  const char *name = cli->argv ? cli->argv[0] : "";
  if (cli->json) {
    cJSON *doc = cJSON_CreateObject();
    cJSON *err = cJSON_AddObjectToObject(doc, "error");
    cJSON_AddStringToObject(err, "code", "usage");
    cJSON_AddStringToObject(err, "message", kiln_buf_str(&b));
    cJSON_AddStringToObject(doc, "command", name);
    kiln_cli_print_json(doc);
  }
  fprintf(stderr, "kiln %s: %s\n(`kiln help %s` shows how to use it)\n", name, kiln_buf_str(&b),
          name);
  kiln_buf_free(&b);
  return KILN_EXIT_USAGE;
}

static void print_json(cJSON *doc, kiln_err (*pretty)(const cJSON *, struct kiln_buf *))
{
  struct kiln_buf b = KILN_BUF_INIT;
  pretty(doc, &b);
  fwrite(kiln_buf_str(&b), 1, b.len, stdout);
  fflush(stdout);
  kiln_buf_free(&b);
  cJSON_Delete(doc);
}

void kiln_cli_print_json(cJSON *doc)
{
  print_json(doc, kiln_json_pretty);
}

void kiln_cli_print_json_ordered(cJSON *doc)
{
  print_json(doc, kiln_json_pretty_ordered);
}

int kiln_cli_wants_help(const struct kiln_cli *cli)
{
  for (int i = 1; i < cli->argc; i++) {
    if (strcmp(cli->argv[i], "--") == 0)
      return 0;
    if (strcmp(cli->argv[i], "-h") == 0 || strcmp(cli->argv[i], "--help") == 0)
      return 1;
  }
  return 0;
}

int kiln_cli_parse_mib(const char *text, long long *mib)
{
  char *end = NULL;
  double v = strtod(text, &end);
  if (end == text || v <= 0)
    return -1;
  while (*end == ' ')
    end++;
  char unit[8] = {0};
  for (size_t i = 0; end[i]; i++) {
    if (i >= sizeof unit - 1)
      return -1;
    unit[i] = (char)tolower((unsigned char)end[i]);
  }
  double factor;
  if (!unit[0] || !strcmp(unit, "m") || !strcmp(unit, "mi") || !strcmp(unit, "mib") ||
      !strcmp(unit, "mb"))
    factor = 1;
  else if (!strcmp(unit, "g") || !strcmp(unit, "gi") || !strcmp(unit, "gib") || !strcmp(unit, "gb"))
    factor = 1024;
  else if (!strcmp(unit, "t") || !strcmp(unit, "ti") || !strcmp(unit, "tib") || !strcmp(unit, "tb"))
    factor = 1024 * 1024;
  else
    return -1;
  double r = v * factor;
  if (r > 1e12 || r != (double)(long long)r)
    return -1;
  *mib = (long long)r;
  return 0;
}
