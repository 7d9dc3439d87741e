/* `kiln plugins`: list the loaded plugins, their versions and stages. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static void print_kinds(const char *label, const cJSON *list)
{
  if (cJSON_GetArraySize(list) == 0)
    return;
  printf("      %s:", label);
  const cJSON *k;
  cJSON_ArrayForEach(k, list) printf(" %s", k->valuestring);
  printf("\n");
}

int kiln_cmd_plugins(struct kiln_cli *cli)
{
  if (cli->argc > 1)
    return kiln_cli_usage(cli, "unexpected argument \"%s\"", cli->argv[1]);
  int code = 0;
  struct kiln *k = kiln_cli_open_app(cli, 0, &code);
  if (!k)
    return code;
  cJSON *plugins = kiln_plugins_describe(k);
  if (cli->json) {
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "kiln_version", kiln_version());
    cJSON_AddItemToObject(doc, "plugins", plugins);
    kiln_cli_print_json(doc);
    kiln_free(k);
    return KILN_EXIT_OK;
  }
  if (cJSON_GetArraySize(plugins) == 0)
    printf("No plugins found. Plugins are searched in --plugin-path, $KILN_PLUGIN_PATH, "
           "<app>/.kiln/plugins and %s/plugins.\n",
           kiln_lib_dir(k));
  const cJSON *p;
  cJSON_ArrayForEach(p, plugins)
  {
    printf("%s %s (%s)  %s\n", cJSON_GetObjectItem(p, "name")->valuestring,
           cJSON_GetObjectItem(p, "version")->valuestring,
           cJSON_GetObjectItem(p, "license")->valuestring,
           cJSON_GetObjectItem(p, "path")->valuestring);
    const cJSON *s;
    cJSON_ArrayForEach(s, cJSON_GetObjectItem(p, "stages"))
    {
      printf("  stage %-10s %s\n", cJSON_GetObjectItem(s, "name")->valuestring,
             cJSON_GetObjectItem(s, "summary")->valuestring);
      print_kinds("consumes", cJSON_GetObjectItem(s, "consumes"));
      print_kinds("accepts", cJSON_GetObjectItem(s, "accepts"));
      print_kinds("produces", cJSON_GetObjectItem(s, "produces"));
    }
  }
  cJSON_Delete(plugins);
  kiln_free(k);
  return KILN_EXIT_OK;
}
