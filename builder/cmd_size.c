/* `kiln size`: the cheapest Nitro Enclave-capable instance for an enclave's CPUs and memory. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void print_human(const cJSON *m)
{
  const cJSON *enclave = cJSON_GetObjectItem(m, "enclave");
  const cJSON *cat = cJSON_GetObjectItem(m, "catalogue");
  printf("%s  (%d vCPUs, %d MiB, %s, $%g/hour on-demand in %s as of %s)\n",
         cJSON_GetObjectItem(m, "instance_type")->valuestring,
         cJSON_GetObjectItem(m, "vcpus")->valueint, cJSON_GetObjectItem(m, "memory_mib")->valueint,
         cJSON_GetObjectItem(m, "arch")->valuestring,
         cJSON_GetObjectItem(m, "price_per_hour_usd")->valuedouble,
         cJSON_IsString(cJSON_GetObjectItem(cat, "region"))
             ? cJSON_GetObjectItem(cat, "region")->valuestring
             : "?",
         cJSON_GetObjectItem(cat, "as_of")->valuestring);
  printf("enclave: %d CPUs, %d MiB\n", cJSON_GetObjectItem(enclave, "cpus")->valueint,
         cJSON_GetObjectItem(enclave, "memory_mib")->valueint);
  printf("/etc/nitro_enclaves/allocator.yaml:\n  memory_mib: %d\n  cpu_count: %d\n",
         cJSON_GetObjectItem(enclave, "memory_mib")->valueint,
         cJSON_GetObjectItem(enclave, "cpus")->valueint);
  const cJSON *d = cJSON_GetObjectItem(m, "deployment");
  if (cJSON_IsObject(d))
    printf("deployment: %d instance(s) (/aws/count) = $%g/hour on-demand as of %s\n",
           cJSON_GetObjectItem(d, "count")->valueint,
           cJSON_GetObjectItem(d, "price_per_hour_usd")->valuedouble,
           cJSON_GetObjectItem(cat, "as_of")->valuestring);
  const cJSON *r = cJSON_GetObjectItem(m, "runner_up");
  if (cJSON_IsObject(r))
    printf("runner-up: %s ($%g/hour)\n", cJSON_GetObjectItem(r, "instance_type")->valuestring,
           cJSON_GetObjectItem(r, "price_per_hour_usd")->valuedouble);
  const cJSON *n;
  cJSON_ArrayForEach(n, cJSON_GetObjectItem(m, "notes")) printf("note: %s\n", n->valuestring);
}

/* An EIF's header names its architecture (flags bit 0 = aarch64): kiln.json /arch must agree, or
 * follows it. Files without the EIF magic are sized by their length only, as before. */
static int eif_arch_check(struct kiln_cli *cli, struct kiln *k, const char *file)
{
  unsigned char head[8];
  FILE *f = fopen(file, "rb");
  size_t n = f ? fread(head, 1, sizeof head, f) : 0;
  if (f)
    fclose(f);
  if (n != sizeof head || memcmp(head, ".eif", 4) != 0)
    return 0;
  const char *eif_arch = (head[7] & 1) ? "aarch64" : "x86_64";
  const cJSON *set = cJSON_GetObjectItemCaseSensitive(kiln_config(k), "arch");
  if (cJSON_IsString(set) && strcmp(set->valuestring, eif_arch) != 0)
    return kiln_cli_fail_msg(cli, KILN_E_INVALID,
                             "--eif %s is an %s EIF but kiln.json /arch is %s: size an EIF built "
                             "for %s, or change /arch",
                             file, eif_arch, set->valuestring, set->valuestring);
  kiln_err rc = cJSON_IsString(set) ? KILN_OK : kiln_set_arch(k, eif_arch);
  return rc ? kiln_cli_fail(cli, k, rc) : 0;
}

/* The deployment's instances (kiln.json /aws/count, default 1) at the catalogue's price. */
static void add_deployment_cost(cJSON *m, const cJSON *config)
{
  const cJSON *count =
      cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(config, "aws"), "count");
  const cJSON *price = cJSON_GetObjectItem(m, "price_per_hour_usd");
  int n = cJSON_IsNumber(count) ? count->valueint : 1;
  if (!cJSON_IsNumber(price))
    return;
  cJSON *d = cJSON_AddObjectToObject(m, "deployment");
  cJSON_AddNumberToObject(d, "count", n);
  cJSON_AddNumberToObject(d, "price_per_hour_usd", n * price->valuedouble);
}

int kiln_cmd_size(struct kiln_cli *cli)
{
  int code = 0;
  struct kiln *k = kiln_cli_open_app(cli, 0, &code);
  if (!k)
    return code;
  struct kiln_pipeline *p = NULL;
  const char *stages[] = {"size", NULL};
  kiln_err rc = KILN_OK;
  if ((code = kiln_cli_pipeline(cli, k, stages, &p)))
    goto out;
  for (int i = 1; i < cli->argc && !code; i++) {
    const char *a = cli->argv[i];
    const char *v = i + 1 < cli->argc ? cli->argv[i + 1] : NULL;
    char num[32];
    static const char *const with_value[] = {"--cpus",      "--memory", "--family", "--arch",
                                             "--catalogue", "--eif",    NULL};
    int known = 0;
    for (int j = 0; with_value[j]; j++)
      known |= strcmp(a, with_value[j]) == 0;
    if (known && !v) {
      code = kiln_cli_usage(cli, "%s needs a value", a);
    } else if (strcmp(a, "--cpus") == 0) {
      char *end = NULL;
      long n = strtol(v, &end, 10);
      if (!*v || *end || n < 1 || n > 1024)
        code = kiln_cli_usage(cli, "--cpus takes a whole number from 1 to 1024, got \"%s\"", v);
      else
        rc = kiln_pipeline_set(p, "size", "cpus", v);
      i++;
    } else if (strcmp(a, "--memory") == 0) {
      long long mib = 0;
      if (kiln_cli_parse_mib(v, &mib) != 0)
        code = kiln_cli_usage(cli, "--memory takes a size like 512M, 14G or 2048 (MiB), got \"%s\"",
                              v);
      snprintf(num, sizeof num, "%lld", mib);
      if (!code)
        rc = kiln_pipeline_set(p, "size", "memory_mib", num);
      i++;
    } else if (strcmp(a, "--family") == 0 || strcmp(a, "--arch") == 0 ||
               strcmp(a, "--catalogue") == 0) {
      code = kiln_cli_set_string(cli, k, p, "size", a + 2, v);
      i++;
    } else if (strcmp(a, "--eif") == 0) {
      code = eif_arch_check(cli, k, v);
      if (!code)
        code = kiln_cli_add_input(cli, k, p, "--eif", "eif", v);
      i++;
    } else {
      code = kiln_cli_usage(cli, "unexpected argument \"%s\"", a);
    }
    if (rc && !code)
      code = kiln_cli_fail(cli, k, rc);
  }
  if (code)
    goto out;
  const struct kiln_artifact *sizing = NULL;
  if ((code = kiln_cli_run_pipeline(cli, k, p, "sizing", &sizing)))
    goto out;
  cJSON *doc = cJSON_Duplicate(sizing->meta, 1);
  add_deployment_cost(doc, kiln_config(k));
  if (cli->json)
    kiln_cli_print_json(doc);
  else {
    print_human(doc);
    cJSON_Delete(doc);
  }
out:
  kiln_pipeline_free(p);
  kiln_free(k);
  return code;
}
