/* The EIF metadata section: eif_build's JSON (key order, compact form, escaping) made
 * deterministic: the build time comes from the caller, never from the clock. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "kiln/eif.h"
#include "util/buf.h"
#include "util/fs.h"
#include "util/json.h"

static kiln_err add_field(struct kiln_buf *b, const char *key, const char *value, int last)
{
  kiln_json_quote(key, b);
  kiln_buf_putc(b, ':');
  kiln_json_quote(value, b);
  return last ? KILN_OK : kiln_buf_putc(b, ',');
}

/* A JSON value re-serialized the way serde_json does for eif_build: compact, sorted keys. */
static kiln_err add_value(struct kiln_buf *b, const char *what, const char *json,
                          struct kiln_error *err)
{
  if (!json)
    return kiln_buf_puts(b, "null");
  cJSON *v = NULL;
  kiln_err rc = kiln_json_parse(json, strlen(json), what, &v, err);
  if (!rc)
    rc = kiln_json_canonical(v, b);
  cJSON_Delete(v);
  return rc;
}

kiln_err kiln_eif_metadata_json(const struct kiln_eif_metadata *m, const char *kernel_path,
                                char **out, struct kiln_error *err)
{
  *out = NULL;
  char when[40];
  time_t t = (time_t)m->build_time;
  struct tm tm;
  if (!gmtime_r(&t, &tm) || strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S+00:00", &tm) == 0)
    return kiln_error_set(err, KILN_E_INVALID, "build time %lld is out of range",
                          (long long)m->build_time);
  const char *slash = kernel_path ? strrchr(kernel_path, '/') : NULL;
  const char *kernel_name = slash ? slash + 1 : kernel_path ? kernel_path : "kernel";
  struct kiln_buf b = KILN_BUF_INIT;
  kiln_buf_putc(&b, '{');
  add_field(&b, "ImageName", m->image_name ? m->image_name : kernel_name, 0);
  add_field(&b, "ImageVersion", m->image_version ? m->image_version : "1.0", 0);
  kiln_buf_puts(&b, "\"BuildMetadata\":{");
  add_field(&b, "BuildTime", when, 0);
  add_field(&b, "BuildTool", m->build_tool ? m->build_tool : "kiln", 0);
  add_field(&b, "BuildToolVersion", m->build_tool_version ? m->build_tool_version : "0.1.0", 0);
  add_field(&b, "OperatingSystem", m->operating_system ? m->operating_system : "OS", 0);
  add_field(&b, "KernelVersion", m->kernel_version ? m->kernel_version : "kernel", 1);
  kiln_buf_puts(&b, "},\"DockerInfo\":");
  kiln_err rc = add_value(&b, "docker info", m->docker_info_json, err);
  kiln_buf_puts(&b, ",\"CustomMetadata\":");
  rc = rc ? rc : add_value(&b, "--metadata", m->custom_json, err);
  kiln_buf_putc(&b, '}');
  if (rc) {
    kiln_buf_free(&b);
    return rc;
  }
  *out = kiln_buf_detach(&b);
  return *out ? KILN_OK : kiln_error_set(err, KILN_E_NOMEM, "out of memory");
}

kiln_err kiln_eif_kernel_config_words(const char *config_path, char **os, char **version,
                                      struct kiln_error *err)
{
  *os = *version = NULL;
  char *text = NULL;
  kiln_err rc = kiln_read_file(config_path, 16u << 20, &text, NULL, err);
  if (rc)
    return rc;
  /* The third line, split on ' ', '/' and '-'; words 2 and 4 (counting from 1). */
  char *line = text;
  for (int i = 0; i < 2 && line; i++) {
    line = strchr(line, '\n');
    if (line)
      line++;
  }
  char *words[4] = {NULL, NULL, NULL, NULL};
  if (line) {
    char *end = strchr(line, '\n');
    if (end)
      *end = '\0';
    int n = 0;
    char *start = line;
    for (char *p = line;; p++) {
      if (*p == ' ' || *p == '/' || *p == '-' || *p == '\0') {
        int done = *p == '\0';
        *p = '\0';
        if (n < 4)
          words[n++] = start;
        start = p + 1;
        if (done)
          break;
      }
    }
  }
  *os = strdup(words[1] ? words[1] : "Unknown");
  *version = strdup(words[3] ? words[3] : "Unknown");
  free(text);
  if (!*os || !*version) {
    free(*os);
    free(*version);
    *os = *version = NULL;
    return kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  }
  return KILN_OK;
}
