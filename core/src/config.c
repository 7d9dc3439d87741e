/* kiln.json: loading, top-level validation against share/kiln.schema.json, stage sections. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "util/fs.h"
#include "util/json.h"

#define KILN_CONFIG_MAX (1u << 20)

static kiln_err load_schema(struct kiln *k, cJSON **out)
{
  char *path = kiln_path_join(k->share_dir, "kiln.schema.json");
  if (!path)
    return kiln_set_error(k, KILN_E_NOMEM, "out of memory");
  struct kiln_error e = KILN_ERROR_INIT;
  kiln_err rc = kiln_json_read_file(path, KILN_CONFIG_MAX, out, &e);
  if (rc)
    kiln_set_error(k, KILN_E_INTERNAL,
                   "cannot read kiln's configuration schema (%s); reinstall kiln or set "
                   "KILN_SHARE_DIR",
                   kiln_error_msg(&e));
  kiln_error_clear(&e);
  free(path);
  return rc;
}

kiln_err kiln_config_load(struct kiln *k, int required)
{
  char *path = kiln_path_join(k->app_dir, "kiln.json");
  if (!path)
    return kiln_set_error(k, KILN_E_NOMEM, "out of memory");
  if (!kiln_path_exists(path)) {
    free(path);
    if (required)
      return kiln_set_error(k, KILN_E_NOT_FOUND,
                            "no kiln.json in %s: run `kiln init` there to write one, or point -C "
                            "at your application directory",
                            k->app_dir);
    return KILN_OK;
  }
  struct kiln_error e = KILN_ERROR_INIT;
  cJSON *doc = NULL, *schema = NULL;
  kiln_err rc = kiln_json_read_file(path, KILN_CONFIG_MAX, &doc, &e);
  if (rc) {
    kiln_take_error(k, &e);
    goto out;
  }
  if (!cJSON_IsObject(doc)) {
    rc = kiln_set_error(k, KILN_E_INVALID, "%s: the top level must be a JSON object", path);
    goto out;
  }
  if ((rc = load_schema(k, &schema)))
    goto out;
  if ((rc = kiln_schema_validate(schema, doc, path, "", &e))) {
    kiln_take_error(k, &e);
    goto out;
  }
  cJSON_Delete(k->config);
  k->config = doc;
  doc = NULL;
  free(k->config_path);
  k->config_path = path;
  path = NULL;
out:
  cJSON_Delete(doc);
  cJSON_Delete(schema);
  free(path);
  return rc;
}

const cJSON *kiln_config(const struct kiln *k)
{
  return k->config;
}

const char *kiln_app_name(const struct kiln *k)
{
  struct kiln *mk = (struct kiln *)k;
  if (mk->app_name)
    return mk->app_name;
  const cJSON *name = cJSON_GetObjectItemCaseSensitive(k->config, "name");
  if (cJSON_IsString(name) && name->valuestring[0]) {
    mk->app_name = strdup(name->valuestring);
  } else {
    const char *slash = strrchr(k->app_dir, '/');
    const char *base = (slash && slash[1]) ? slash + 1 : "app";
    mk->app_name = strdup(base);
    /* Keep only characters that are safe in file names and resource names. */
    for (char *p = mk->app_name; p && *p; p++)
      if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '_' || *p == '.'))
        *p = '-';
  }
  return mk->app_name ? mk->app_name : "app";
}

const char *kiln_arch(const struct kiln *k)
{
  const cJSON *arch = cJSON_GetObjectItemCaseSensitive(k->config, "arch");
  return cJSON_IsString(arch) ? arch->valuestring : "x86_64";
}

kiln_err kiln_set_arch(struct kiln *k, const char *arch)
{
  if (strcmp(arch, "x86_64") != 0 && strcmp(arch, "aarch64") != 0)
    return kiln_set_error(k, KILN_E_INVALID,
                          "--arch \"%s\": Nitro Enclaves run x86_64 or aarch64 (Graviton)", arch);
  cJSON *value = cJSON_CreateString(arch);
  if (!value)
    return kiln_set_error(k, KILN_E_NOMEM, "out of memory");
  if (cJSON_GetObjectItemCaseSensitive(k->config, "arch"))
    cJSON_ReplaceItemInObjectCaseSensitive(k->config, "arch", value);
  else
    cJSON_AddItemToObject(k->config, "arch", value);
  return KILN_OK;
}

kiln_err kiln_config_check_sections(struct kiln *k)
{
  if (!k->config_path)
    return KILN_OK;
  cJSON *schema = NULL;
  kiln_err rc = load_schema(k, &schema);
  if (rc)
    return rc;
  const cJSON *props = cJSON_GetObjectItemCaseSensitive(schema, "properties");
  const cJSON *member;
  cJSON_ArrayForEach(member, k->config)
  {
    if (cJSON_GetObjectItemCaseSensitive(props, member->string) ||
        kiln_stage_find(k, member->string))
      continue;
    struct kiln_buf known = KILN_BUF_INIT;
    kiln_json_keys(props, &known);
    rc = kiln_set_error(k, KILN_E_INVALID,
                        "%s: /%s: unknown key (known keys: %s, or the name of a loaded stage; "
                        "`kiln plugins` lists them)",
                        k->config_path, member->string, kiln_buf_str(&known));
    kiln_buf_free(&known);
    break;
  }
  cJSON_Delete(schema);
  return rc;
}

cJSON *kiln_config_stage_section(const struct kiln *k, const struct kiln_stage *stage)
{
  const cJSON *section = cJSON_GetObjectItemCaseSensitive(k->config, stage->name);
  if (cJSON_IsObject(section))
    return cJSON_Duplicate(section, 1);
  cJSON *obj = cJSON_CreateObject();
  /* "image": "SOURCE" is shorthand for {"source": "SOURCE"} (any stage with a source option). */
  if (obj && cJSON_IsString(section))
    cJSON_AddStringToObject(obj, "source", section->valuestring);
  return obj;
}
