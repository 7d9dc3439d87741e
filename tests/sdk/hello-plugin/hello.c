/* A third-party stage: reads the sizing artifact and writes a greeting naming the instance type. */
#include <stdio.h>
#include <string.h>

#include <kiln/plugin.h>

static kiln_err hello_run(struct kiln_stage_ctx *ctx, const struct kiln_host *host)
{
  const cJSON *greeting = cJSON_GetObjectItemCaseSensitive(host->options(ctx), "greeting");
  const struct kiln_artifact *sizing = host->input(ctx, "sizing");
  const cJSON *type = cJSON_GetObjectItemCaseSensitive(sizing->meta, "instance_type");
  const char *dir = NULL;
  kiln_err rc = host->output(ctx, "greeting", &dir);
  if (rc)
    return rc;
  char path[4096];
  snprintf(path, sizeof path, "%s/greeting.txt", dir);
  FILE *f = fopen(path, "w");
  if (!f)
    return host->fail(ctx, KILN_E_IO, "cannot write %s", path);
  fprintf(f, "%s, %s!\n", greeting->valuestring, cJSON_IsString(type) ? type->valuestring : "?");
  if (fclose(f) != 0)
    return host->fail(ctx, KILN_E_IO, "cannot write %s", path);
  host->log(ctx, KILN_LOG_INFO, "greeted %s", cJSON_IsString(type) ? type->valuestring : "?");
  return KILN_OK;
}

static const char *const consumes[] = {"sizing", NULL};
static const char *const produces[] = {"greeting", NULL};
static const struct kiln_stage hello = {
    .struct_size = sizeof(struct kiln_stage),
    .name = "hello",
    .summary = "Greet the chosen instance type (an example third-party stage)",
    .consumes = consumes,
    .produces = produces,
    .options_schema = "{\"type\":\"object\",\"additionalProperties\":false,\"properties\":"
                      "{\"greeting\":{\"type\":\"string\",\"default\":\"hello\"}}}",
    .run = hello_run,
};
static const struct kiln_stage *const stages[] = {&hello, NULL};
static const struct kiln_plugin plugin = {
    KILN_ABI_VERSION, sizeof(struct kiln_plugin), "hello", "1.0.0", "MIT", stages};

KILN_PLUGIN_EXPORT const struct kiln_plugin *kiln_plugin_entry(uint32_t host_abi_version)
{
  return host_abi_version == KILN_ABI_VERSION ? &plugin : NULL;
}
