/* libFuzzer target for kiln.json loading and schema validation: any bytes are written as an
 * application's kiln.json and loaded by kiln_config_load (size limit, JSON parser with
 * line/column errors, top-level schema share/kiln.schema.json); a loaded file's stage sections
 * are then validated against every plugin's options.schema.json (defaults filled), and the input
 * itself, taken as a plugin's options schema, goes through the schema keyword check and validates
 * a fixed document. Errors are fine; crashes, leaks and undefined behaviour are not. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "util/fs.h"
#include "util/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const plugin_names[] = {"image", "kernel", "eif", "aws", "s3", "size", NULL};

struct fuzz_state {
  struct kiln *k;
  char *config_path;
  cJSON *plugin_schema[6];
  cJSON *sample; /* a document validated against the fuzzed schema */
};

static cJSON *read_json(const char *path)
{
  cJSON *doc = NULL;
  struct kiln_error err = KILN_ERROR_INIT;
  if (kiln_json_read_file(path, 1u << 20, &doc, &err) != KILN_OK) {
    fprintf(stderr, "fuzz_kiln_json: %s\n", kiln_error_msg(&err));
    abort();
  }
  return doc;
}

static struct fuzz_state *state(void)
{
  static struct fuzz_state s;
  if (s.k)
    return &s;
  char path[4096];
  setenv("KILN_SHARE_DIR", KILN_FUZZ_SOURCE_DIR "/share", 1);
  struct kiln_error err = KILN_ERROR_INIT;
  char *app = NULL;
  const char *tmp = getenv("TMPDIR");
  if (kiln_mkdtemp_in(tmp ? tmp : "/tmp", "kiln-fuzz-json-", &app, &err) != KILN_OK)
    abort();
  struct kiln_settings settings = {sizeof settings, app, NULL, app, 0, -1, 0, 0};
  if (kiln_new(&s.k, &settings) != KILN_OK)
    abort();
  s.config_path = kiln_path_join(app, "kiln.json");
  free(app);
  for (int i = 0; plugin_names[i]; i++) {
    snprintf(path, sizeof path, "%s/plugins/%s/options.schema.json", KILN_FUZZ_SOURCE_DIR,
             plugin_names[i]);
    s.plugin_schema[i] = read_json(path);
  }
  s.sample = read_json(KILN_FUZZ_SOURCE_DIR "/share/examples/hello/kiln.json");
  return &s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  struct fuzz_state *s = state();
  struct kiln_error err = KILN_ERROR_INIT;
  FILE *f = fopen(s->config_path, "wb"); /* no fsync: kiln_write_file_atomic is too slow here */
  if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0)
    abort();
  if (kiln_config_load(s->k, 1) == KILN_OK) {
    const cJSON *config = kiln_config(s->k);
    for (int i = 0; plugin_names[i]; i++) {
      cJSON *section =
          cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(config, plugin_names[i]), 1);
      if (section) {
        char pointer[32];
        snprintf(pointer, sizeof pointer, "/%s", plugin_names[i]);
        (void)kiln_schema_validate(s->plugin_schema[i], section, "kiln.json", pointer, &err);
        kiln_error_clear(&err);
      }
      cJSON_Delete(section);
    }
  }
  cJSON *schema = NULL;
  if (kiln_json_parse((const char *)data, size, "fuzz schema", &schema, &err) == KILN_OK &&
      kiln_schema_check(schema, "fuzz plugin", &err) == KILN_OK) {
    cJSON *copy = cJSON_Duplicate(s->sample, 1);
    (void)kiln_schema_validate(schema, copy, "sample.json", "", &err);
    cJSON_Delete(copy);
  }
  cJSON_Delete(schema);
  kiln_error_clear(&err);
  return 0;
}
