/* Plugin loading: the search path, dlopen, and checks of the descriptor against the ABI. */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "util/fs.h"
#include "util/json.h"

static int valid_stage_name(const char *s)
{
  if (!s || !(*s >= 'a' && *s <= 'z'))
    return 0;
  for (; *s; s++)
    if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '-' || *s == '_'))
      return 0;
  return 1;
}

static kiln_err check_elf(struct kiln *k, const char *path)
{
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return kiln_set_error(k, errno == ENOENT ? KILN_E_NOT_FOUND : KILN_E_IO,
                          "plugin %s: cannot open: %s", path, strerror(errno));
  unsigned char magic[4] = {0};
  ssize_t n = read(fd, magic, sizeof magic);
  close(fd);
  if (n != 4 || memcmp(magic,
                       "\x7f"
                       "ELF",
                       4) != 0)
    return kiln_set_error(k, KILN_E_PLUGIN,
                          "plugin %s is not an ELF shared object; remove it from the plugin "
                          "path or rebuild it",
                          path);
  return KILN_OK;
}

const struct kiln_loaded_plugin *kiln_stage_plugin(const struct kiln *k, const char *stage)
{
  for (size_t i = 0; i < k->nplugins; i++) {
    const struct kiln_plugin *d = k->plugins[i].desc;
    for (const struct kiln_stage *const *s = d->stages; *s; s++)
      if (strcmp((*s)->name, stage) == 0)
        return &k->plugins[i];
  }
  return NULL;
}

const struct kiln_stage *kiln_stage_find(const struct kiln *k, const char *name)
{
  const struct kiln_loaded_plugin *p = kiln_stage_plugin(k, name);
  if (!p)
    return NULL;
  for (const struct kiln_stage *const *s = p->desc->stages; *s; s++)
    if (strcmp((*s)->name, name) == 0)
      return *s;
  return NULL;
}

static kiln_err check_kind_list(struct kiln *k, const char *path, const char *stage,
                                const char *what, const char *const *list)
{
  for (size_t i = 0; list && list[i]; i++)
    if (!valid_stage_name(list[i]))
      return kiln_set_error(k, KILN_E_PLUGIN,
                            "plugin %s: stage %s: %s artifact kind #%zu is not a valid name", path,
                            stage, what, i + 1);
  return KILN_OK;
}

static kiln_err check_stage(struct kiln *k, const char *path, const struct kiln_stage *s)
{
  if (s->struct_size < offsetof(struct kiln_stage, plan))
    return kiln_set_error(k, KILN_E_PLUGIN,
                          "plugin %s: a stage descriptor is too small (%u bytes): the plugin was "
                          "built against an incompatible kiln SDK; rebuild it",
                          path, s->struct_size);
  if (!valid_stage_name(s->name))
    return kiln_set_error(k, KILN_E_PLUGIN,
                          "plugin %s: stage name \"%s\" is invalid (lowercase letters, digits, "
                          "'-' and '_', starting with a letter)",
                          path, s->name ? s->name : "(null)");
  if (!s->run)
    return kiln_set_error(k, KILN_E_PLUGIN, "plugin %s: stage %s has no run callback", path,
                          s->name);
  kiln_err rc = check_kind_list(k, path, s->name, "consumed", s->consumes);
  rc = rc ? rc : check_kind_list(k, path, s->name, "accepted", s->accepts);
  rc = rc ? rc : check_kind_list(k, path, s->name, "produced", s->produces);
  if (rc)
    return rc;
  if (s->options_schema) {
    struct kiln_error e = KILN_ERROR_INIT;
    cJSON *schema = NULL;
    char where[512];
    snprintf(where, sizeof where, "plugin %s: stage %s", path, s->name);
    rc = kiln_json_parse(s->options_schema, strlen(s->options_schema), where, &schema, &e);
    if (!rc)
      rc = kiln_schema_check(schema, where, &e);
    cJSON_Delete(schema);
    if (rc) {
      kiln_take_error(k, &e);
      return KILN_E_PLUGIN;
    }
  }
  const struct kiln_loaded_plugin *other = kiln_stage_plugin(k, s->name);
  if (other)
    return kiln_set_error(k, KILN_E_PLUGIN,
                          "plugin %s: stage name \"%s\" is already provided by %s; remove one of "
                          "the two plugins",
                          path, s->name, other->path);
  return KILN_OK;
}

/* Load one file. skip_same_name: a plugin whose name is already loaded is skipped (earlier
 * search-path directories take precedence). */
static kiln_err load_file(struct kiln *k, const char *file, int skip_same_name)
{
  char *path = realpath(file, NULL);
  if (!path)
    return kiln_set_error(k, KILN_E_NOT_FOUND, "plugin %s: %s", file, strerror(errno));
  for (size_t i = 0; i < k->nplugins; i++)
    if (strcmp(k->plugins[i].path, path) == 0) {
      free(path);
      return KILN_OK;
    }
  kiln_err rc = check_elf(k, path);
  if (rc) {
    free(path);
    return rc;
  }
  void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    const char *why = dlerror();
    rc = kiln_set_error(k, KILN_E_PLUGIN, "plugin %s cannot be loaded: %s", path,
                        why ? why : "unknown dlopen error");
    free(path);
    return rc;
  }
  kiln_plugin_entry_fn entry = NULL;
  *(void **)&entry = dlsym(h, KILN_PLUGIN_ENTRY_SYMBOL);
  const struct kiln_plugin *d = entry ? entry(KILN_ABI_VERSION) : NULL;
  if (!entry) {
    rc = kiln_set_error(
        k, KILN_E_PLUGIN,
        "plugin %s does not export " KILN_PLUGIN_ENTRY_SYMBOL ": it is not a kiln plugin", path);
  } else if (!d) {
    rc = kiln_set_error(k, KILN_E_PLUGIN,
                        "plugin %s refused to work with this kiln (ABI %u); rebuild it against "
                        "this kiln's SDK",
                        path, KILN_ABI_VERSION);
  } else if (d->abi_version != KILN_ABI_VERSION) {
    rc = kiln_set_error(k, KILN_E_PLUGIN,
                        "plugin %s was built for kiln plugin ABI %u, this kiln has ABI %u; "
                        "rebuild it against this kiln's SDK",
                        path, d->abi_version, KILN_ABI_VERSION);
  } else if (d->struct_size < offsetof(struct kiln_plugin, stages) + sizeof d->stages) {
    rc = kiln_set_error(k, KILN_E_PLUGIN,
                        "plugin %s: descriptor too small (%u bytes); rebuild it against this "
                        "kiln's SDK",
                        path, d->struct_size);
  } else if (!d->name || !d->version || !d->stages) {
    rc = kiln_set_error(k, KILN_E_PLUGIN, "plugin %s: descriptor lacks a name, version or stages",
                        path);
  }
  if (rc) {
    dlclose(h);
    free(path);
    return rc;
  }
  for (size_t i = 0; i < k->nplugins; i++) {
    if (strcmp(k->plugins[i].desc->name, d->name) == 0) {
      if (skip_same_name) {
        kiln_log(k, KILN_LOG_DEBUG, "plugin %s: skipped, %s already provides plugin %s", path,
                 k->plugins[i].path, d->name);
        dlclose(h);
        free(path);
        return KILN_OK;
      }
      rc =
          kiln_set_error(k, KILN_E_PLUGIN, "plugin %s: a plugin named %s is already loaded from %s",
                         path, d->name, k->plugins[i].path);
      dlclose(h);
      free(path);
      return rc;
    }
  }
  for (const struct kiln_stage *const *s = d->stages; *s && !rc; s++)
    rc = check_stage(k, path, *s);
  if (!rc) {
    struct kiln_loaded_plugin *n = realloc(k->plugins, (k->nplugins + 1) * sizeof *n);
    if (!n) {
      rc = kiln_set_error(k, KILN_E_NOMEM, "out of memory");
    } else {
      k->plugins = n;
      k->plugins[k->nplugins++] = (struct kiln_loaded_plugin){path, h, d};
      kiln_log(k, KILN_LOG_DEBUG, "loaded plugin %s %s from %s", d->name, d->version, path);
      return KILN_OK;
    }
  }
  dlclose(h);
  free(path);
  return rc;
}

kiln_err kiln_plugin_load_file(struct kiln *k, const char *path)
{
  return load_file(k, path, 0);
}

static int compare_strings(const void *a, const void *b)
{
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static kiln_err load_dir(struct kiln *k, const char *dir)
{
  DIR *d = opendir(dir);
  if (!d)
    return KILN_OK; /* a search-path directory that does not exist is simply empty */
  char **names = NULL;
  size_t n = 0;
  kiln_err rc = KILN_OK;
  for (struct dirent *e; (e = readdir(d));) {
    size_t len = strlen(e->d_name);
    if (len < 4 || strcmp(e->d_name + len - 3, ".so") != 0)
      continue;
    char **grown = realloc(names, (n + 1) * sizeof *names);
    if (!grown || !(grown[n] = kiln_path_join(dir, e->d_name))) {
      names = grown ? grown : names;
      rc = kiln_set_error(k, KILN_E_NOMEM, "out of memory");
      break;
    }
    names = grown;
    n++;
  }
  closedir(d);
  if (n > 1)
    qsort(names, n, sizeof *names, compare_strings);
  for (size_t i = 0; i < n && !rc; i++)
    rc = load_file(k, names[i], 1);
  for (size_t i = 0; i < n; i++)
    free(names[i]);
  free(names);
  return rc;
}

static kiln_err load_path_list(struct kiln *k, const char *list)
{
  if (!list || !*list)
    return KILN_OK;
  char *copy = strdup(list);
  if (!copy)
    return kiln_set_error(k, KILN_E_NOMEM, "out of memory");
  kiln_err rc = KILN_OK;
  char *save = NULL;
  for (char *dir = strtok_r(copy, ":", &save); dir && !rc; dir = strtok_r(NULL, ":", &save)) {
    char *abs = kiln_path_absolute(k->app_dir, dir);
    if (!abs) {
      rc = kiln_set_error(k, KILN_E_NOMEM, "out of memory");
      break;
    }
    if (kiln_path_exists(abs) && !kiln_is_dir(abs))
      rc = load_file(k, abs, 1);
    else
      rc = load_dir(k, abs);
    free(abs);
  }
  free(copy);
  return rc;
}

kiln_err kiln_plugins_load(struct kiln *k)
{
  kiln_err rc = load_path_list(k, k->plugin_path);
  rc = rc ? rc : load_path_list(k, getenv("KILN_PLUGIN_PATH"));
  if (!rc) {
    char *app_plugins = kiln_path_join(k->app_dir, ".kiln/plugins");
    rc = app_plugins ? load_dir(k, app_plugins) : KILN_E_NOMEM;
    free(app_plugins);
  }
  if (!rc) {
    char *installed = kiln_path_join(k->lib_dir, "plugins");
    rc = installed ? load_dir(k, installed) : KILN_E_NOMEM;
    free(installed);
  }
  const cJSON *listed = cJSON_GetObjectItemCaseSensitive(k->config, "plugins");
  const cJSON *item;
  cJSON_ArrayForEach(item, listed)
  {
    if (rc)
      break;
    char *abs = kiln_path_absolute(k->app_dir, item->valuestring);
    if (!abs)
      return kiln_set_error(k, KILN_E_NOMEM, "out of memory");
    rc = load_file(k, abs, 0);
    if (rc == KILN_E_NOT_FOUND)
      kiln_set_error(k, rc, "%s: /plugins: %s does not exist (paths are relative to %s)",
                     k->config_path, item->valuestring, k->app_dir);
    free(abs);
  }
  return rc ? rc : kiln_config_check_sections(k);
}

static cJSON *string_list(const char *const *list)
{
  cJSON *a = cJSON_CreateArray();
  for (size_t i = 0; a && list && list[i]; i++)
    cJSON_AddItemToArray(a, cJSON_CreateString(list[i]));
  return a;
}

cJSON *kiln_plugins_describe(const struct kiln *k)
{
  cJSON *all = cJSON_CreateArray();
  for (size_t i = 0; all && i < k->nplugins; i++) {
    const struct kiln_plugin *d = k->plugins[i].desc;
    cJSON *p = cJSON_CreateObject();
    cJSON_AddItemToArray(all, p);
    cJSON_AddStringToObject(p, "name", d->name);
    cJSON_AddStringToObject(p, "version", d->version);
    cJSON_AddStringToObject(p, "license", d->license ? d->license : "");
    cJSON_AddStringToObject(p, "path", k->plugins[i].path);
    cJSON *stages = cJSON_AddArrayToObject(p, "stages");
    for (const struct kiln_stage *const *s = d->stages; *s; s++) {
      cJSON *st = cJSON_CreateObject();
      cJSON_AddItemToArray(stages, st);
      cJSON_AddStringToObject(st, "name", (*s)->name);
      cJSON_AddStringToObject(st, "summary", (*s)->summary ? (*s)->summary : "");
      cJSON_AddItemToObject(st, "consumes", string_list((*s)->consumes));
      cJSON_AddItemToObject(st, "accepts", string_list((*s)->accepts));
      cJSON_AddItemToObject(st, "produces", string_list((*s)->produces));
      cJSON *schema = (*s)->options_schema ? cJSON_Parse((*s)->options_schema) : NULL;
      cJSON_AddItemToObject(st, "options_schema", schema ? schema : cJSON_CreateObject());
      cJSON_AddBoolToObject(st, "plan", (*s)->plan != NULL);
      cJSON_AddBoolToObject(st, "undo",
                            KILN_HAS_FIELD(*s, struct kiln_stage, undo) && (*s)->undo != NULL);
      cJSON_AddBoolToObject(
          st, "cached",
          !(KILN_HAS_FIELD(*s, struct kiln_stage, flags) && ((*s)->flags & KILN_STAGE_NO_CACHE)));
    }
  }
  return all;
}
