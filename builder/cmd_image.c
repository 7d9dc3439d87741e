/* `kiln image`: run the image stage alone and write the enclave root filesystem (newc cpio). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static int set_string(struct kiln_cli *cli, struct kiln *k, struct kiln_pipeline *p,
                      const char *key, const char *value)
{
  cJSON *s = cJSON_CreateString(value);
  char *quoted = s ? cJSON_PrintUnformatted(s) : NULL;
  kiln_err rc = quoted ? kiln_pipeline_set(p, "image", key, quoted) : KILN_E_NOMEM;
  free(quoted);
  cJSON_Delete(s);
  return rc ? kiln_cli_fail(cli, k, rc) : 0;
}

static void print_human(const cJSON *m, const char *out)
{
  const cJSON *it;
  const char *digest = cJSON_GetStringValue(cJSON_GetObjectItem(m, "image_digest"));
  printf("image:   %s\n", digest && digest[0] ? digest : "(a directory: no digest)");
  printf("argv:   ");
  cJSON_ArrayForEach(it, cJSON_GetObjectItem(m, "argv")) printf(" %s", it->valuestring);
  printf("\nenv:\n");
  cJSON_ArrayForEach(it, cJSON_GetObjectItem(m, "env")) printf("  %s\n", it->valuestring);
  printf("workdir: %s  user: %s\n", cJSON_GetStringValue(cJSON_GetObjectItem(m, "workdir")),
         cJSON_GetStringValue(cJSON_GetObjectItem(m, "user")));
  printf("wrote %s: %.0f entries, %.0f bytes (%s)\n", out,
         cJSON_GetNumberValue(cJSON_GetObjectItem(m, "files")),
         cJSON_GetNumberValue(cJSON_GetObjectItem(m, "bytes")),
         cJSON_GetStringValue(cJSON_GetObjectItem(m, "platform")));
}

int kiln_cmd_image(struct kiln_cli *cli)
{
  int code = 0;
  const char *out = "rootfs.cpio";
  struct kiln *k = kiln_cli_open_app(cli, 0, &code);
  if (!k)
    return code;
  struct kiln_pipeline *p = NULL;
  cJSON *insecure = cJSON_CreateArray();
  const char *stages[] = {"image", NULL};
  kiln_err rc = KILN_OK;
  if ((code = kiln_cli_pipeline(cli, k, stages, &p)))
    goto out;
  int have_source = 0;
  for (int i = 1; i < cli->argc && !code; i++) {
    const char *a = cli->argv[i];
    const char *v = i + 1 < cli->argc ? cli->argv[i + 1] : NULL;
    int takes_value = strcmp(a, "-o") == 0 || strcmp(a, "--output") == 0 ||
                      strcmp(a, "--platform") == 0 || strcmp(a, "--cmd-mode") == 0 ||
                      strcmp(a, "--set") == 0 || strcmp(a, "--insecure-registry") == 0;
    if (takes_value && !v) {
      code = kiln_cli_usage(cli, "%s needs a value", a);
    } else if (strcmp(a, "-o") == 0 || strcmp(a, "--output") == 0) {
      out = v;
      i++;
    } else if (strcmp(a, "--platform") == 0) {
      code = set_string(cli, k, p, "platform", v);
      i++;
    } else if (strcmp(a, "--cmd-mode") == 0) {
      if (strcmp(v, "docker") != 0 && strcmp(v, "nitro-cli") != 0)
        code = kiln_cli_usage(cli, "--cmd-mode takes docker or nitro-cli, got \"%s\"", v);
      else
        code = set_string(cli, k, p, "cmd_mode", v);
      i++;
    } else if (strcmp(a, "--insecure-registry") == 0) {
      cJSON_AddItemToArray(insecure, cJSON_CreateString(v));
      i++;
    } else if (strcmp(a, "--set") == 0) {
      code = kiln_cli_apply_set(cli, k, p, "image", v);
      i++;
    } else if (a[0] == '-') {
      code = kiln_cli_usage(cli, "unknown option \"%s\"", a);
    } else if (have_source) {
      code = kiln_cli_usage(cli, "one SOURCE only (got \"%s\" too)", a);
    } else {
      have_source = 1;
      code = set_string(cli, k, p, "source", a);
    }
  }
  if (!code && cJSON_GetArraySize(insecure) > 0) {
    char *list = cJSON_PrintUnformatted(insecure);
    rc = list ? kiln_pipeline_set(p, "image", "insecure_registries", list) : KILN_E_NOMEM;
    free(list);
    if (rc)
      code = kiln_cli_fail(cli, k, rc);
  }
  if (code)
    goto out;
  const struct kiln_artifact *rootfs = NULL;
  if ((code = kiln_cli_run_pipeline(cli, k, p, "rootfs", &rootfs)))
    goto out;
  if ((rc = kiln_artifact_export(k, rootfs, "rootfs.cpio", out))) {
    code = kiln_cli_fail(cli, k, rc);
    goto out;
  }
  if (cli->json) {
    cJSON *doc = cJSON_Duplicate(rootfs->meta, 1);
    cJSON_AddStringToObject(doc, "output", out);
    kiln_cli_print_json(doc);
  } else {
    print_human(rootfs->meta, out);
  }
out:
  cJSON_Delete(insecure);
  kiln_pipeline_free(p);
  kiln_free(k);
  return code;
}
