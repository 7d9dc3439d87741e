/* {{name}} templates for policies and user data, with escaping fit for where values land. */
#include <stdlib.h>
#include <string.h>

#include "deploy.h"
#include "util/buf.h"
#include "util/fs.h"
#include "util/json.h"

static int shell_safe(const char *s)
{
  for (; *s; s++)
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
          strchr("._/:@+=- ", *s)))
      return 0;
  return 1;
}

/* The text of a value: strings as they are, numbers without a fraction when whole. */
static kiln_err value_text(const cJSON *v, struct kiln_buf *out)
{
  if (cJSON_IsString(v))
    return kiln_buf_puts(out, v->valuestring);
  if (cJSON_IsNumber(v))
    return kiln_json_canonical(v, out);
  if (cJSON_IsBool(v))
    return kiln_buf_puts(out, cJSON_IsTrue(v) ? "true" : "false");
  return KILN_E_INVALID;
}

kiln_err kiln_template_render(const char *name, const char *text, const cJSON *values,
                              int json_strings, char **out, struct kiln_error *err)
{
  *out = NULL;
  struct kiln_buf b = KILN_BUF_INIT, value = KILN_BUF_INIT;
  kiln_err rc = KILN_OK;
  const char *p = text;
  while (!rc) {
    const char *open = strstr(p, "{{");
    if (!open) {
      rc = kiln_buf_puts(&b, p);
      break;
    }
    const char *close = strstr(open + 2, "}}");
    if (!close) {
      rc = kiln_error_set(err, KILN_E_INTERNAL, "template %s: unclosed {{", name);
      break;
    }
    kiln_buf_append(&b, p, (size_t)(open - p));
    char key[64];
    size_t klen = (size_t)(close - open - 2);
    if (klen == 0 || klen >= sizeof key) {
      rc = kiln_error_set(err, KILN_E_INTERNAL, "template %s: bad placeholder", name);
      break;
    }
    memcpy(key, open + 2, klen);
    key[klen] = '\0';
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(values, key);
    kiln_buf_reset(&value);
    if (!v || value_text(v, &value) != KILN_OK) {
      rc = kiln_error_set(err, KILN_E_INTERNAL, "template %s: no value for {{%s}}", name, key);
      break;
    }
    if (json_strings) {
      /* Inside a JSON string: quote, then drop the surrounding quotes the quoting added. */
      struct kiln_buf q = KILN_BUF_INIT;
      kiln_json_quote(kiln_buf_str(&value), &q);
      kiln_buf_append(&b, q.data + 1, q.len - 2);
      kiln_buf_free(&q);
    } else if (!shell_safe(kiln_buf_str(&value))) {
      rc = kiln_error_set(err, KILN_E_INVALID,
                          "template %s: the value of {{%s}} (\"%s\") has characters that are not "
                          "safe in a shell script",
                          name, key, kiln_buf_str(&value));
      break;
    } else {
      kiln_buf_puts(&b, kiln_buf_str(&value));
    }
    p = close + 2;
  }
  kiln_buf_free(&value);
  if (rc) {
    kiln_buf_free(&b);
    return rc;
  }
  *out = kiln_buf_detach(&b);
  return *out ? KILN_OK : kiln_error_set(err, KILN_E_NOMEM, "out of memory");
}

kiln_err kiln_template_render_file(const char *share_dir, const char *relative, const cJSON *values,
                                   char **out, struct kiln_error *err)
{
  *out = NULL;
  char *path = kiln_path_join(share_dir, relative);
  char *text = NULL;
  if (!path)
    return kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  kiln_err rc = kiln_read_file(path, 1u << 20, &text, NULL, err);
  size_t n = strlen(relative);
  int is_json = n > 10 && strcmp(relative + n - 10, ".json.tmpl") == 0;
  if (!rc)
    rc = kiln_template_render(relative, text, values, is_json, out, err);
  if (!rc && is_json) {
    cJSON *doc = cJSON_Parse(*out);
    if (!doc) {
      rc = kiln_error_set(err, KILN_E_INTERNAL, "template %s does not render to valid JSON", path);
      free(*out);
      *out = NULL;
    }
    cJSON_Delete(doc);
  }
  free(text);
  free(path);
  return rc;
}
