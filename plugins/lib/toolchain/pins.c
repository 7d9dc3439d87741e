/* The .pins file of the pinned toolchain: one package a line ("package version pool-path size
 * sha256", "#" comments), parsed strictly, and its form in kiln.lock. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "toolchain.h"
#include "util/fs.h"
#include "util/hash.h"

#define PINS_MAX_BYTES (1u << 20)

static int is_sha256_hex(const char *s)
{
  size_t n = strspn(s, "0123456789abcdef");
  return n == 64 && s[n] == '\0';
}

static kiln_err parse_line(char *line, const char *path, int lineno, struct kiln_pin *pin,
                           struct kiln_error *err)
{
  char *save = NULL, *f[6] = {0};
  int n = 0;
  for (char *t = strtok_r(line, " \t", &save); t && n < 6; t = strtok_r(NULL, " \t", &save))
    f[n++] = t;
  char *end = NULL;
  long long size = n == 5 ? strtoll(f[3], &end, 10) : 0;
  if (n != 5 || !end || *end || size <= 0 || !is_sha256_hex(f[4]) || strchr(f[2], '?') ||
      strstr(f[2], "..") || f[2][0] == '/')
    return kiln_error_set(err, KILN_E_INVALID,
                          "%s:%d: expected \"package version pool-path size sha256\"", path,
                          lineno);
  pin->package = strdup(f[0]);
  pin->version = strdup(f[1]);
  pin->path = strdup(f[2]);
  pin->size = size;
  memcpy(pin->sha256, f[4], 65);
  return pin->package && pin->version && pin->path ? KILN_OK : KILN_E_NOMEM;
}

kiln_err kiln_pins_load(const char *path, struct kiln_pins *out, struct kiln_error *err)
{
  memset(out, 0, sizeof *out);
  char *text = NULL;
  size_t len = 0;
  kiln_err rc = kiln_read_file(path, PINS_MAX_BYTES, &text, &len, err);
  if (rc)
    return rc;
  kiln_sha256_hex(text, len, out->file_sha256);
  int lineno = 0;
  char *save = NULL;
  for (char *l = strtok_r(text, "\n", &save); l && !rc; l = strtok_r(NULL, "\n", &save)) {
    lineno++;
    while (*l == ' ' || *l == '\t')
      l++;
    if (!*l || *l == '#')
      continue;
    struct kiln_pin *grown = realloc(out->items, (out->count + 1) * sizeof *grown);
    if (!grown) {
      rc = KILN_E_NOMEM;
      break;
    }
    out->items = grown;
    memset(&out->items[out->count], 0, sizeof *grown);
    rc = parse_line(l, path, lineno, &out->items[out->count++], err);
  }
  free(text);
  if (!rc && out->count == 0)
    rc = kiln_error_set(err, KILN_E_INVALID, "%s pins no packages", path);
  if (rc)
    kiln_pins_free(out);
  return rc;
}

void kiln_pins_free(struct kiln_pins *p)
{
  for (size_t i = 0; i < p->count; i++) {
    free(p->items[i].package);
    free(p->items[i].version);
    free(p->items[i].path);
  }
  free(p->items);
  p->items = NULL;
  p->count = 0;
}

cJSON *kiln_pins_to_json(const struct kiln_pins *p)
{
  cJSON *list = cJSON_CreateArray();
  for (size_t i = 0; list && i < p->count; i++) {
    cJSON *o = cJSON_CreateObject();
    const char *slash = strrchr(p->items[i].path, '/');
    cJSON_AddStringToObject(o, "package", p->items[i].package);
    cJSON_AddStringToObject(o, "version", p->items[i].version);
    cJSON_AddStringToObject(o, "file", slash ? slash + 1 : p->items[i].path);
    cJSON_AddStringToObject(o, "sha256", p->items[i].sha256);
    cJSON_AddItemToArray(list, o);
  }
  return list;
}
