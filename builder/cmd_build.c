/* `kiln build`: image -> kernel -> eif for the app directory; writes <name>.eif and prints PCRs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "util/buf.h"
#include "util/fs.h"

int kiln_cmd_build(struct kiln_cli *cli)
{
  const char *output = NULL;
  int code = 0;
  struct kiln *k = kiln_cli_open_app(cli, 1, &code);
  if (!k)
    return code;
  struct kiln_pipeline *p = NULL;
  struct kiln_buf dest = KILN_BUF_INIT;
  kiln_err rc = KILN_OK;
  if ((code = kiln_cli_pipeline(cli, k, kiln_cli_build_stages, &p)))
    goto out;
  for (int i = 1; i < cli->argc && !code; i++) {
    const char *a = cli->argv[i];
    if ((strcmp(a, "-o") == 0 || strcmp(a, "--output") == 0) && i + 1 < cli->argc)
      output = cli->argv[++i];
    else if (strcmp(a, "--arch") == 0 && i + 1 < cli->argc)
      code = kiln_set_arch(k, cli->argv[++i]) ? kiln_cli_usage(cli, "%s", kiln_errmsg(k)) : 0;
    else if (strcmp(a, "--set") == 0 && i + 1 < cli->argc)
      code = kiln_cli_apply_set(cli, k, p, NULL, cli->argv[++i]);
    else
      code = kiln_cli_usage(cli, "unexpected argument \"%s\"", a);
  }
  if (code)
    goto out;
  const struct kiln_artifact *eif = NULL;
  if ((code = kiln_cli_run_pipeline(cli, k, p, "eif", &eif)))
    goto out;
  if (output) {
    char *abs = kiln_path_absolute(kiln_app_dir(k), output);
    kiln_buf_puts(&dest, abs ? abs : output);
    free(abs);
  } else {
    kiln_buf_printf(&dest, "%s/%s.eif", kiln_app_dir(k), kiln_app_name(k));
  }
  if ((rc = kiln_artifact_export(k, eif, "image.eif", kiln_buf_str(&dest)))) {
    code = kiln_cli_fail(cli, k, rc);
    goto out;
  }
  const cJSON *m = cJSON_GetObjectItemCaseSensitive(eif->meta, "measurements");
  if (cli->json) {
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "eif", kiln_buf_str(&dest));
    cJSON_AddItemToObject(
        doc, "sha256", cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(eif->meta, "sha256"), 1));
    cJSON_AddItemToObject(doc, "size",
                          cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(eif->meta, "size"), 1));
    cJSON_AddItemToObject(doc, "Measurements", cJSON_Duplicate(m, 1));
    kiln_cli_print_json(doc);
  } else {
    const cJSON *size = cJSON_GetObjectItemCaseSensitive(eif->meta, "size");
    printf("%s (%.1f MiB)\n", kiln_buf_str(&dest),
           cJSON_IsNumber(size) ? size->valuedouble / (1024 * 1024) : 0.0);
    static const char *const keys[] = {"PCR0", "PCR1", "PCR2", "PCR8"};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
      const cJSON *v = cJSON_GetObjectItemCaseSensitive(m, keys[i]);
      if (cJSON_IsString(v))
        printf("%s %s\n", keys[i], v->valuestring);
    }
  }
out:
  kiln_buf_free(&dest);
  kiln_pipeline_free(p);
  kiln_free(k);
  return code;
}
