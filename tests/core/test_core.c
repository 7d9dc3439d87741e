/* Unit tests of libkiln: schema validation, canonical JSON, the plugin loader, kiln.json loading,
 * the pipeline's cache and the lockfile. Run as `test_core CASE`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <kiln/kiln.h>

#include "check.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/json.h"

/* libkiln internals under test (core/src/internal.h is private; declared here on purpose). */
kiln_err kiln_schema_validate(const cJSON *schema, cJSON *value, const char *file,
                              const char *pointer, struct kiln_error *err);

static char *make_temp_dir(void)
{
  char tmpl[] = "/tmp/kiln-test-XXXXXX";
  char *d = mkdtemp(tmpl);
  return d ? strdup(d) : NULL;
}

static void write_file(const char *dir, const char *name, const char *text)
{
  char *p = kiln_path_join(dir, name);
  FILE *f = fopen(p, "w");
  if (f) {
    fputs(text, f);
    fclose(f);
  }
  free(p);
}

static struct kiln *open_kiln(const char *app, const char *cache)
{
  struct kiln_settings s;
  memset(&s, 0, sizeof s);
  s.struct_size = sizeof s;
  s.app_dir = app;
  s.cache_dir = cache;
  s.verbosity = -1;
  struct kiln *k = NULL;
  kiln_err rc = kiln_new(&k, &s);
  CHECK_INT(KILN_OK, rc);
  return k;
}

static void remove_tree(char *dir)
{
  struct kiln_error e = KILN_ERROR_INIT;
  kiln_rm_rf_quiet(dir);
  kiln_error_clear(&e);
  free(dir);
}

static int test_schema(void)
{
  static const char schema_text[] =
      "{\"type\":\"object\",\"additionalProperties\":false,\"required\":[\"name\"],"
      "\"properties\":{\"name\":{\"type\":\"string\",\"minLength\":1},"
      "\"enclave\":{\"type\":\"object\",\"properties\":{\"memory_mib\":{\"type\":\"integer\","
      "\"minimum\":64},\"mode\":{\"enum\":[\"a\",\"b\"]},\"cpus\":{\"type\":\"integer\","
      "\"default\":2}}},\"ports\":{\"type\":\"array\",\"items\":{\"type\":\"integer\","
      "\"maximum\":65535}}}}";
  struct {
    const char *name, *doc, *error; /* error NULL = valid */
  } cases[] = {
      {"valid document", "{\"name\":\"x\",\"enclave\":{\"memory_mib\":128}}", NULL},
      {"missing required key", "{}", "/name: is required"},
      {"unknown key", "{\"name\":\"x\",\"bogus\":1}", "/bogus: unknown key"},
      {"wrong type", "{\"name\":5}", "/name: must be a string, not integer"},
      {"below minimum", "{\"name\":\"x\",\"enclave\":{\"memory_mib\":12}}",
       "/enclave/memory_mib: must be an integer >= 64"},
      {"fraction for integer", "{\"name\":\"x\",\"enclave\":{\"memory_mib\":64.5}}",
       "/enclave/memory_mib: must be an integer, not number"},
      {"enum", "{\"name\":\"x\",\"enclave\":{\"mode\":\"c\"}}",
       "/enclave/mode: must be one of \"a\", \"b\""},
      {"array item", "{\"name\":\"x\",\"ports\":[443,70000]}",
       "/ports/1: must be an integer <= 65535"},
      {"empty string", "{\"name\":\"\"}", "/name: must not be empty"},
  };
  cJSON *schema = cJSON_Parse(schema_text);
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    CHECK_CASE(cases[i].name);
    cJSON *doc = cJSON_Parse(cases[i].doc);
    struct kiln_error e = KILN_ERROR_INIT;
    kiln_err rc = kiln_schema_validate(schema, doc, "kiln.json", "", &e);
    if (cases[i].error) {
      CHECK_INT(KILN_E_INVALID, rc);
      CHECK_CONTAINS(cases[i].error, kiln_error_msg(&e));
      CHECK_CONTAINS("kiln.json: ", kiln_error_msg(&e));
    } else {
      CHECK_INT(KILN_OK, rc);
      /* defaults are filled in */
      const cJSON *cpus = kiln_json_pointer(doc, "/enclave/cpus");
      CHECK(cJSON_IsNumber(cpus) && cpus->valueint == 2);
    }
    kiln_error_clear(&e);
    cJSON_Delete(doc);
  }
  cJSON_Delete(schema);
  return check_done();
}

static int test_canonical_json(void)
{
  CHECK_CASE("keys sorted, compact, stable numbers");
  cJSON *a = cJSON_Parse("{\"b\":1,\"a\":{\"z\":[1,2.5,\"x\"],\"c\":null},\"p\":0.384}");
  cJSON *b = cJSON_Parse("{\"a\":{\"c\":null,\"z\":[1,2.5,\"x\"]},\"p\":0.384,\"b\":1}");
  struct kiln_buf x = KILN_BUF_INIT, y = KILN_BUF_INIT;
  kiln_json_canonical(a, &x);
  kiln_json_canonical(b, &y);
  CHECK_STR("{\"a\":{\"c\":null,\"z\":[1,2.5,\"x\"]},\"b\":1,\"p\":0.384}", kiln_buf_str(&x));
  CHECK_STR(kiln_buf_str(&x), kiln_buf_str(&y));
  CHECK_CASE("escaping");
  kiln_buf_reset(&x);
  kiln_json_quote("a\"b\\c\n\x01", &x);
  CHECK_STR("\"a\\\"b\\\\c\\n\\u0001\"", kiln_buf_str(&x));
  CHECK_CASE("parse error has line and column");
  struct kiln_error e = KILN_ERROR_INIT;
  cJSON *bad = NULL;
  CHECK_INT(KILN_E_INVALID,
            kiln_json_parse("{\n  \"a\": 1,\n  oops\n}", 20, "kiln.json", &bad, &e));
  CHECK_CONTAINS("kiln.json:3:", kiln_error_msg(&e));
  kiln_error_clear(&e);
  kiln_buf_free(&x);
  kiln_buf_free(&y);
  cJSON_Delete(a);
  cJSON_Delete(b);
  return check_done();
}

static int test_loader(void)
{
  struct {
    const char *variant;
    kiln_err rc;
    const char *message;
  } cases[] = {
      {"good", KILN_OK, NULL},
      {"bad_abi", KILN_E_PLUGIN, "was built for kiln plugin ABI 99"},
      {"small", KILN_E_PLUGIN, "descriptor too small"},
      {"null_entry", KILN_E_PLUGIN, "refused to work with this kiln"},
      {"no_entry", KILN_E_PLUGIN, "does not export kiln_plugin_entry"},
      {"not_elf", KILN_E_PLUGIN, "is not an ELF shared object"},
  };
  char *app = make_temp_dir(), *cache = make_temp_dir();
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    CHECK_CASE(cases[i].variant);
    struct kiln *k = open_kiln(app, cache);
    char path[1024];
    snprintf(path, sizeof path, "%s/%s/%s.so", KILN_FIXTURE_DIR, cases[i].variant,
             cases[i].variant);
    kiln_err rc = kiln_plugin_load_file(k, path);
    CHECK_INT(cases[i].rc, rc);
    if (cases[i].message) {
      CHECK_CONTAINS(cases[i].message, kiln_errmsg(k));
      CHECK_CONTAINS(path, kiln_errmsg(k)); /* the message names the file */
    } else {
      CHECK(kiln_stage_find(k, "produce") != NULL);
      CHECK(kiln_stage_find(k, "consume") != NULL);
    }
    kiln_free(k);
  }
  CHECK_CASE("duplicate stage name");
  struct kiln *k = open_kiln(app, cache);
  CHECK_INT(KILN_OK, kiln_plugin_load_file(k, KILN_FIXTURE_DIR "/good/good.so"));
  CHECK_INT(KILN_E_PLUGIN, kiln_plugin_load_file(k, KILN_FIXTURE_DIR "/dup/dup.so"));
  CHECK_CONTAINS("stage name \"produce\" is already provided by", kiln_errmsg(k));
  CHECK_CONTAINS("dup.so", kiln_errmsg(k));
  CHECK_CASE("missing file");
  CHECK_INT(KILN_E_NOT_FOUND, kiln_plugin_load_file(k, KILN_FIXTURE_DIR "/nope.so"));
  CHECK_CONTAINS("nope.so", kiln_errmsg(k));
  CHECK_CASE("describe lists stages with kinds");
  cJSON *d = kiln_plugins_describe(k);
  char *text = cJSON_PrintUnformatted(d);
  CHECK_CONTAINS("\"name\":\"consume\"", text);
  CHECK_CONTAINS("\"consumes\":[\"note\"]", text);
  free(text);
  cJSON_Delete(d);
  kiln_free(k);
  remove_tree(app);
  remove_tree(cache);
  return check_done();
}

static int test_config(void)
{
  char *app = make_temp_dir(), *cache = make_temp_dir();
  struct {
    const char *name, *text, *error;
  } cases[] = {
      {"invalid JSON names line and column", "{\n \"name\": \"x\",\n}\n", "kiln.json:3:"},
      {"unknown top-level key", "{\"nmae\": \"x\"}", "/nmae: unknown key"},
      {"wrong type at pointer", "{\"enclave\": {\"memory_mib\": \"lots\"}}",
       "/enclave/memory_mib: must be an integer, not string"},
      {"not an object", "[1,2]", "the top level must be a JSON object"},
      {"unknown plugin file", "{\"plugins\": [\"./missing.so\"]}", "missing.so does not exist"},
      {"valid with stage section", "{\"name\": \"demo\", \"produce\": {\"text\": \"hi\"}}", NULL},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    CHECK_CASE(cases[i].name);
    write_file(app, "kiln.json", cases[i].text);
    struct kiln *k = open_kiln(app, cache);
    kiln_err rc = kiln_config_load(k, 1);
    if (!rc)
      rc = kiln_plugin_load_file(k, KILN_FIXTURE_DIR "/good/good.so");
    if (!rc)
      rc = kiln_plugins_load(k);
    if (cases[i].error) {
      CHECK(rc != KILN_OK);
      CHECK_CONTAINS(cases[i].error, kiln_errmsg(k));
    } else {
      CHECK_INT(KILN_OK, rc);
      CHECK_STR("demo", kiln_app_name(k));
    }
    kiln_free(k);
  }
  CHECK_CASE("missing kiln.json when required");
  char *p = kiln_path_join(app, "kiln.json");
  unlink(p);
  struct kiln *k = open_kiln(app, cache);
  CHECK_INT(KILN_E_NOT_FOUND, kiln_config_load(k, 1));
  CHECK_CONTAINS("no kiln.json in", kiln_errmsg(k));
  CHECK_CONTAINS("kiln init", kiln_errmsg(k));
  CHECK_INT(KILN_OK, kiln_config_load(k, 0));
  kiln_free(k);
  CHECK_CASE("unreadable kiln.json (a directory)");
  mkdir(p, 0755);
  k = open_kiln(app, cache);
  CHECK(kiln_config_load(k, 1) != KILN_OK);
  CHECK_CONTAINS("kiln.json", kiln_errmsg(k));
  kiln_free(k);
  rmdir(p);
  free(p);
  remove_tree(app);
  remove_tree(cache);
  return check_done();
}

/* Run produce -> consume; returns the report artifact's digest (caller frees) and cached flags. */
static char *run_pipeline(const char *app, const char *cache, const char *text, int *cached_steps)
{
  struct kiln *k = open_kiln(app, cache);
  char *digest = NULL;
  CHECK_INT(KILN_OK, kiln_config_load(k, 0));
  CHECK_INT(KILN_OK, kiln_plugin_load_file(k, KILN_FIXTURE_DIR "/good/good.so"));
  struct kiln_pipeline *p = NULL;
  const char *stages[] = {"produce", "consume", NULL};
  CHECK_INT(KILN_OK, kiln_pipeline_new(k, stages, &p));
  if (text) {
    char quoted[256];
    snprintf(quoted, sizeof quoted, "\"%s\"", text);
    CHECK_INT(KILN_OK, kiln_pipeline_set(p, "produce", "text", quoted));
  }
  cJSON *result = NULL;
  kiln_err rc = kiln_pipeline_run(p, &result);
  CHECK_INT(KILN_OK, rc);
  if (rc)
    fprintf(stderr, "pipeline: %s\n", kiln_errmsg(k));
  *cached_steps = 0;
  const cJSON *step;
  cJSON_ArrayForEach(step, cJSON_GetObjectItem(result, "steps")) *cached_steps +=
      cJSON_IsTrue(cJSON_GetObjectItem(step, "cached"));
  const struct kiln_artifact *report = p ? kiln_pipeline_output(p, "report") : NULL;
  CHECK(report != NULL);
  if (report)
    digest = strdup(report->digest);
  cJSON_Delete(result);
  kiln_pipeline_free(p);
  kiln_free(k);
  return digest;
}

static int test_pipeline_cache(void)
{
  char *app = make_temp_dir(), *cache = make_temp_dir();
  write_file(app, "kiln.json", "{\"name\":\"demo\",\"produce\":{\"text\":\"first\"}}");
  int cached = -1;
  CHECK_CASE("first run executes every step");
  char *d1 = run_pipeline(app, cache, NULL, &cached);
  CHECK_INT(0, cached);
  CHECK_CASE("second run is all cache hits with the same outputs");
  char *d2 = run_pipeline(app, cache, NULL, &cached);
  CHECK_INT(2, cached);
  CHECK_STR(d1, d2);
  CHECK_CASE("changed options change the cache key");
  char *d3 = run_pipeline(app, cache, "second", &cached);
  CHECK_INT(0, cached);
  CHECK(d1 && d3 && strcmp(d1, d3) != 0);
  CHECK_CASE("identity added by identify() changes the key");
  setenv("FIXTURE_IDENTITY", "image@sha256:1234", 1);
  char *d4 = run_pipeline(app, cache, NULL, &cached);
  CHECK_INT(1, cached); /* produce re-ran; consume hit: the note it made is identical */
  unsetenv("FIXTURE_IDENTITY");
  CHECK_CASE("a kiln.json setting the stage declares in config_reads changes the key");
  write_file(app, "kiln.json",
             "{\"name\":\"demo\",\"produce\":{\"text\":\"first\"},\"enclave\":{\"cmd\":[\"/x\"]}}");
  free(run_pipeline(app, cache, NULL, &cached));
  CHECK_INT(1, cached); /* produce re-ran (its key changed); consume hit on the same note */
  free(run_pipeline(app, cache, NULL, &cached));
  CHECK_INT(2, cached);
  CHECK_CASE("missing input kind is a clear error");
  struct kiln *k = open_kiln(app, cache);
  CHECK_INT(KILN_OK, kiln_plugin_load_file(k, KILN_FIXTURE_DIR "/good/good.so"));
  struct kiln_pipeline *p = NULL;
  const char *only_consume[] = {"consume", NULL};
  CHECK_INT(KILN_OK, kiln_pipeline_new(k, only_consume, &p));
  cJSON *result = NULL;
  CHECK_INT(KILN_E_INVALID, kiln_pipeline_run(p, &result));
  CHECK_CONTAINS("needs a \"note\" artifact", kiln_errmsg(k));
  kiln_pipeline_free(p);
  CHECK_CASE("unknown stage");
  const char *unknown[] = {"nope", NULL};
  CHECK_INT(KILN_E_NOT_FOUND, kiln_pipeline_new(k, unknown, &p));
  CHECK_CONTAINS("unknown stage \"nope\"", kiln_errmsg(k));
  CHECK_CASE("invalid option names the pointer");
  const char *produce_only[] = {"produce", NULL};
  CHECK_INT(KILN_OK, kiln_pipeline_new(k, produce_only, &p));
  CHECK_INT(KILN_OK, kiln_pipeline_set(p, "produce", "count", "0"));
  CHECK_INT(KILN_E_INVALID, kiln_pipeline_run(p, &result));
  CHECK_CONTAINS("/produce/count: must be an integer >= 1", kiln_errmsg(k));
  kiln_pipeline_free(p);
  kiln_free(k);
  free(d1);
  free(d2);
  free(d3);
  free(d4);
  remove_tree(app);
  remove_tree(cache);
  return check_done();
}

static char *read_all(const char *dir, const char *name)
{
  char *p = kiln_path_join(dir, name), *text = NULL;
  struct kiln_error e = KILN_ERROR_INIT;
  CHECK_INT(KILN_OK, kiln_read_file(p, 1 << 20, &text, NULL, &e));
  kiln_error_clear(&e);
  free(p);
  return text;
}

static int test_lockfile(void)
{
  char *app = make_temp_dir(), *cache = make_temp_dir(), *cache2 = make_temp_dir();
  write_file(app, "kiln.json", "{\"name\":\"demo\",\"produce\":{\"text\":\"locked\"}}");
  int cached = 0;
  free(run_pipeline(app, cache, NULL, &cached));
  char *first = read_all(app, "kiln.lock");
  CHECK_CASE("lock records resolved values and outputs");
  CHECK(first != NULL);
  CHECK_CONTAINS("\"text\": \"locked\"", first);
  CHECK_CONTAINS("\"report\": \"sha256:", first);
  CHECK(!strstr(first, app)); /* no absolute path of the machine */
  CHECK_CASE("cache hit keeps the lock byte-identical");
  free(run_pipeline(app, cache, NULL, &cached));
  char *second = read_all(app, "kiln.lock");
  CHECK_STR(first, second);
  CHECK_CASE("a deleted lock is rebuilt from cache hits, resolved values included");
  char *lock_path = kiln_path_join(app, "kiln.lock");
  unlink(lock_path);
  free(lock_path);
  free(run_pipeline(app, cache, NULL, &cached));
  CHECK_INT(2, cached);
  char *rebuilt = read_all(app, "kiln.lock");
  CHECK_STR(first, rebuilt);
  free(rebuilt);
  CHECK_CASE("a fresh cache gives the same lock");
  char *lock = kiln_path_join(app, "kiln.lock");
  unlink(lock);
  free(run_pipeline(app, cache2, NULL, &cached));
  char *third = read_all(app, "kiln.lock");
  CHECK_STR(first, third);
  CHECK_CASE("damaged lock is a clear error");
  write_file(app, "kiln.lock", "{not json");
  struct kiln *k = open_kiln(app, cache);
  CHECK_INT(KILN_OK, kiln_plugin_load_file(k, KILN_FIXTURE_DIR "/good/good.so"));
  struct kiln_pipeline *p = NULL;
  const char *stages[] = {"produce", NULL};
  CHECK_INT(KILN_OK, kiln_pipeline_new(k, stages, &p));
  cJSON *result = NULL;
  CHECK_INT(KILN_E_INVALID, kiln_pipeline_run(p, &result));
  CHECK_CONTAINS("kiln.lock is damaged", kiln_errmsg(k));
  kiln_pipeline_free(p);
  kiln_free(k);
  free(lock);
  free(first);
  free(second);
  free(third);
  remove_tree(app);
  remove_tree(cache);
  remove_tree(cache2);
  return check_done();
}

int main(int argc, char **argv)
{
  static const struct {
    const char *name;
    int (*fn)(void);
  } tests[] = {{"schema", test_schema},
               {"canonical_json", test_canonical_json},
               {"loader", test_loader},
               {"config", test_config},
               {"pipeline_cache", test_pipeline_cache},
               {"lockfile", test_lockfile}};
  for (size_t i = 0; argc > 1 && i < sizeof tests / sizeof *tests; i++)
    if (strcmp(argv[1], tests[i].name) == 0)
      return tests[i].fn();
  fprintf(stderr, "usage: test_core CASE\n");
  return 2;
}
