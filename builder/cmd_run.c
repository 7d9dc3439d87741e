/* `kiln run STAGE`: run any single stage with options from kiln.json and --set. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* --input KIND=FILE */
static int add_input(struct kiln_cli *cli, struct kiln *k, struct kiln_pipeline *p,
                     const char *assignment)
{
  const char *eq = strchr(assignment, '=');
  if (!eq || eq == assignment || !eq[1])
    return kiln_cli_usage(cli, "--input takes KIND=FILE (e.g. eif=app.eif), got \"%s\"",
                          assignment);
  char *kind = strndup(assignment, (size_t)(eq - assignment));
  if (!kind)
    return kiln_cli_fail_msg(cli, KILN_E_NOMEM, "out of memory");
  int code = kiln_cli_add_input(cli, k, p, "--input", kind, eq + 1);
  free(kind);
  return code;
}

static void print_outputs(const cJSON *result)
{
  const cJSON *step;
  cJSON_ArrayForEach(step, cJSON_GetObjectItem(result, "steps"))
  {
    int cached = cJSON_IsTrue(cJSON_GetObjectItem(step, "cached"));
    printf("%s: %s\n", cJSON_GetObjectItem(step, "stage")->valuestring, cached ? "cached" : "done");
    const cJSON *o;
    cJSON_ArrayForEach(o, cJSON_GetObjectItem(step, "outputs"))
    {
      printf("  %s %s\n    %s\n", cJSON_GetObjectItem(o, "kind")->valuestring,
             cJSON_GetObjectItem(o, "digest")->valuestring,
             cJSON_GetObjectItem(o, "path")->valuestring);
    }
  }
}

int kiln_cmd_run(struct kiln_cli *cli)
{
  if (cli->argc < 2)
    return kiln_cli_usage(cli, "name the stage to run (`kiln plugins` lists them)");
  if (cli->argv[1][0] == '-')
    return kiln_cli_usage(cli, "name the stage to run before its options, got \"%s\"",
                          cli->argv[1]);
  const char *stage = cli->argv[1];
  int code = 0;
  struct kiln *k = kiln_cli_open_app(cli, 0, &code);
  if (!k)
    return code;
  struct kiln_pipeline *p = NULL;
  const char *stages[] = {stage, NULL};
  kiln_err rc = KILN_OK;
  if ((code = kiln_cli_pipeline(cli, k, stages, &p)))
    goto out;
  for (int i = 2; i < cli->argc; i++) {
    const char *a = cli->argv[i];
    if (strcmp(a, "--set") == 0 && i + 1 < cli->argc)
      code = kiln_cli_apply_set(cli, k, p, stage, cli->argv[++i]);
    else if (strncmp(a, "--set=", 6) == 0)
      code = kiln_cli_apply_set(cli, k, p, stage, a + 6);
    else if (strcmp(a, "--input") == 0 && i + 1 < cli->argc)
      code = add_input(cli, k, p, cli->argv[++i]);
    else if (strncmp(a, "--input=", 8) == 0)
      code = add_input(cli, k, p, a + 8);
    else
      code = kiln_cli_usage(cli, "unexpected argument \"%s\"", a);
    if (code)
      goto out;
  }
  cJSON *result = NULL;
  rc = kiln_pipeline_run(p, &result);
  if (rc) {
    code = kiln_cli_fail(cli, k, rc);
    goto out;
  }
  if (cli->json)
    kiln_cli_print_json(result);
  else {
    print_outputs(result);
    cJSON_Delete(result);
  }
out:
  kiln_pipeline_free(p);
  kiln_free(k);
  return code;
}
