/* A JSON-schema subset validator for kiln.json sections and stage options (no Debian C library
 * implements JSON Schema; the subset kiln needs is documented in docs/artifacts.md). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "util/json.h"

static const char *type_of(const cJSON *v)
{
  if (cJSON_IsObject(v))
    return "object";
  if (cJSON_IsArray(v))
    return "array";
  if (cJSON_IsString(v))
    return "string";
  if (cJSON_IsBool(v))
    return "boolean";
  if (cJSON_IsNull(v))
    return "null";
  if (cJSON_IsNumber(v)) {
    double d = v->valuedouble;
    return (d == floor(d) && fabs(d) < 9007199254740992.0) ? "integer" : "number";
  }
  return "invalid";
}

static int type_matches(const char *want, const cJSON *v)
{
  const char *have = type_of(v);
  if (strcmp(want, have) == 0)
    return 1;
  return strcmp(want, "number") == 0 && strcmp(have, "integer") == 0;
}

static const char *article(const char *type)
{
  return strchr("aeiou", type[0]) ? "an" : "a";
}

/* pointer + "/" + escaped token, in a buffer the caller frees */
static char *child_pointer(const char *pointer, const char *token)
{
  struct kiln_buf b = KILN_BUF_INIT;
  kiln_buf_puts(&b, pointer);
  kiln_buf_putc(&b, '/');
  for (const char *p = token; *p; p++) {
    if (*p == '~')
      kiln_buf_puts(&b, "~0");
    else if (*p == '/')
      kiln_buf_puts(&b, "~1");
    else
      kiln_buf_putc(&b, *p);
  }
  return kiln_buf_detach(&b);
}

static kiln_err fail(struct kiln_error *err, const char *file, const char *pointer, const char *fmt,
                     ...) KILN_PRINTF(4, 5);

static kiln_err fail(struct kiln_error *err, const char *file, const char *pointer, const char *fmt,
                     ...)
{
  va_list ap;
  va_start(ap, fmt);
  kiln_error_vset(err, KILN_E_INVALID, fmt, ap);
  va_end(ap);
  return kiln_error_prefix(err, "%s: %s", file, pointer[0] ? pointer : "(top level)");
}

static kiln_err check_type(const cJSON *schema, const cJSON *v, const char *file,
                           const char *pointer, struct kiln_error *err)
{
  const cJSON *type = cJSON_GetObjectItemCaseSensitive(schema, "type");
  if (!type)
    return KILN_OK;
  if (cJSON_IsString(type)) {
    if (type_matches(type->valuestring, v))
      return KILN_OK;
    char want[64];
    snprintf(want, sizeof want, "%s %s", article(type->valuestring), type->valuestring);
    return fail(err, file, pointer, "must be %s, not %s", want, type_of(v));
  }
  struct kiln_buf list = KILN_BUF_INIT;
  const cJSON *t;
  cJSON_ArrayForEach(t, type)
  {
    if (cJSON_IsString(t) && type_matches(t->valuestring, v)) {
      kiln_buf_free(&list);
      return KILN_OK;
    }
    if (list.len)
      kiln_buf_puts(&list, " or ");
    kiln_buf_puts(&list, cJSON_IsString(t) ? t->valuestring : "?");
  }
  kiln_err rc = fail(err, file, pointer, "must be %s, not %s", kiln_buf_str(&list), type_of(v));
  kiln_buf_free(&list);
  return rc;
}

static kiln_err check_enum(const cJSON *schema, const cJSON *v, const char *file,
                           const char *pointer, struct kiln_error *err)
{
  const cJSON *en = cJSON_GetObjectItemCaseSensitive(schema, "enum");
  if (!cJSON_IsArray(en))
    return KILN_OK;
  struct kiln_buf list = KILN_BUF_INIT;
  const cJSON *e;
  cJSON_ArrayForEach(e, en)
  {
    if (cJSON_Compare(e, v, 1)) {
      kiln_buf_free(&list);
      return KILN_OK;
    }
    char *s = cJSON_PrintUnformatted(e);
    if (list.len)
      kiln_buf_puts(&list, ", ");
    kiln_buf_puts(&list, s ? s : "?");
    free(s);
  }
  kiln_err rc = fail(err, file, pointer, "must be one of %s", kiln_buf_str(&list));
  kiln_buf_free(&list);
  return rc;
}

static kiln_err check_number(const cJSON *schema, const cJSON *v, const char *file,
                             const char *pointer, struct kiln_error *err)
{
  if (!cJSON_IsNumber(v))
    return KILN_OK;
  const cJSON *min = cJSON_GetObjectItemCaseSensitive(schema, "minimum");
  const cJSON *max = cJSON_GetObjectItemCaseSensitive(schema, "maximum");
  const cJSON *type = cJSON_GetObjectItemCaseSensitive(schema, "type");
  const char *what = (cJSON_IsString(type) && strcmp(type->valuestring, "integer") == 0)
                         ? "an integer"
                         : "a number";
  char bound[64];
  if (cJSON_IsNumber(min) && v->valuedouble < min->valuedouble) {
    snprintf(bound, sizeof bound, ">= %g", min->valuedouble);
    return fail(err, file, pointer, "must be %s %s", what, bound);
  }
  if (cJSON_IsNumber(max) && v->valuedouble > max->valuedouble) {
    snprintf(bound, sizeof bound, "<= %g", max->valuedouble);
    return fail(err, file, pointer, "must be %s %s", what, bound);
  }
  return KILN_OK;
}

static kiln_err validate(const cJSON *schema, cJSON *v, const char *file, const char *pointer,
                         struct kiln_error *err, int depth)
{
  if (depth > 64)
    return fail(err, file, pointer, "nested too deeply");
  if (!cJSON_IsObject(schema))
    return KILN_OK;
  kiln_err rc = check_type(schema, v, file, pointer, err);
  if (!rc)
    rc = check_enum(schema, v, file, pointer, err);
  if (!rc)
    rc = check_number(schema, v, file, pointer, err);
  if (rc)
    return rc;
  const cJSON *minlen = cJSON_GetObjectItemCaseSensitive(schema, "minLength");
  if (cJSON_IsString(v) && cJSON_IsNumber(minlen) &&
      strlen(v->valuestring) < (size_t)minlen->valuedouble)
    return minlen->valuedouble <= 1 ? fail(err, file, pointer, "must not be empty")
                                    : fail(err, file, pointer, "is too short");
  const cJSON *maxlen = cJSON_GetObjectItemCaseSensitive(schema, "maxLength");
  if (cJSON_IsString(v) && cJSON_IsNumber(maxlen) &&
      strlen(v->valuestring) > (size_t)maxlen->valuedouble)
    return fail(err, file, pointer, "is longer than %d characters", maxlen->valueint);
  const cJSON *maxitems = cJSON_GetObjectItemCaseSensitive(schema, "maxItems");
  if (cJSON_IsArray(v) && cJSON_IsNumber(maxitems) && cJSON_GetArraySize(v) > maxitems->valueint)
    return fail(err, file, pointer, "has more than %d items", maxitems->valueint);

  if (cJSON_IsArray(v)) {
    const cJSON *items = cJSON_GetObjectItemCaseSensitive(schema, "items");
    int i = 0;
    cJSON *item;
    cJSON_ArrayForEach(item, v)
    {
      char idx[24];
      snprintf(idx, sizeof idx, "%d", i++);
      char *cp = child_pointer(pointer, idx);
      rc = cp ? validate(items, item, file, cp, err, depth + 1) : KILN_E_NOMEM;
      free(cp);
      if (rc)
        return rc;
    }
    return KILN_OK;
  }
  if (!cJSON_IsObject(v))
    return KILN_OK;

  const cJSON *props = cJSON_GetObjectItemCaseSensitive(schema, "properties");
  const cJSON *required = cJSON_GetObjectItemCaseSensitive(schema, "required");
  const cJSON *additional = cJSON_GetObjectItemCaseSensitive(schema, "additionalProperties");
  const cJSON *r;
  cJSON_ArrayForEach(r, required)
  {
    if (cJSON_IsString(r) && !cJSON_GetObjectItemCaseSensitive(v, r->valuestring)) {
      char *cp = child_pointer(pointer, r->valuestring);
      rc = fail(err, file, cp ? cp : pointer, "is required");
      free(cp);
      return rc;
    }
  }
  cJSON *member;
  cJSON_ArrayForEach(member, v)
  {
    const cJSON *sub = props ? cJSON_GetObjectItemCaseSensitive(props, member->string) : NULL;
    char *cp = child_pointer(pointer, member->string);
    if (!cp)
      return KILN_E_NOMEM;
    if (!sub && cJSON_IsFalse(additional)) {
      struct kiln_buf known = KILN_BUF_INIT;
      kiln_json_keys(props, &known);
      rc = fail(err, file, cp, "unknown key (known keys: %s)", kiln_buf_str(&known));
      kiln_buf_free(&known);
    } else {
      rc = validate(sub ? sub : additional, member, file, cp, err, depth + 1);
    }
    free(cp);
    if (rc)
      return rc;
  }
  /* Fill defaults of absent properties, so stages see every documented option. */
  const cJSON *p;
  cJSON_ArrayForEach(p, props)
  {
    const cJSON *def = cJSON_GetObjectItemCaseSensitive(p, "default");
    if (def && !cJSON_GetObjectItemCaseSensitive(v, p->string)) {
      cJSON *copy = cJSON_Duplicate(def, 1);
      if (!copy || !cJSON_AddItemToObject(v, p->string, copy)) {
        cJSON_Delete(copy);
        return KILN_E_NOMEM;
      }
    }
  }
  return KILN_OK;
}

kiln_err kiln_schema_validate(const cJSON *schema, cJSON *value, const char *file,
                              const char *pointer, struct kiln_error *err)
{
  return validate(schema, value, file, pointer ? pointer : "", err, 0);
}

static kiln_err check_keywords(const cJSON *schema, const char *where, struct kiln_error *err,
                               int depth)
{
  static const char *const known[] = {
      "type",      "properties",  "required", "additionalProperties",
      "items",     "enum",        "minimum",  "maximum",
      "minLength", "description", "default",  "title",
      "examples",  "$schema",     "$id",      "maxLength",
      "maxItems",  NULL};
  if (depth > 32)
    return kiln_error_set(err, KILN_E_PLUGIN, "%s: options schema nested too deeply", where);
  if (!cJSON_IsObject(schema))
    return cJSON_IsBool(schema) ? KILN_OK
                                : kiln_error_set(err, KILN_E_PLUGIN,
                                                 "%s: options schema must be a JSON object", where);
  const cJSON *member;
  cJSON_ArrayForEach(member, schema)
  {
    int ok = 0;
    for (int i = 0; known[i]; i++)
      ok |= strcmp(known[i], member->string) == 0;
    if (!ok)
      return kiln_error_set(err, KILN_E_PLUGIN,
                            "%s: options schema uses \"%s\", which kiln's validator does not "
                            "support (see docs/artifacts.md)",
                            where, member->string);
  }
  const cJSON *props = cJSON_GetObjectItemCaseSensitive(schema, "properties");
  const cJSON *p;
  cJSON_ArrayForEach(p, props)
  {
    kiln_err rc = check_keywords(p, where, err, depth + 1);
    if (rc)
      return rc;
  }
  const cJSON *items = cJSON_GetObjectItemCaseSensitive(schema, "items");
  if (items)
    return check_keywords(items, where, err, depth + 1);
  const cJSON *additional = cJSON_GetObjectItemCaseSensitive(schema, "additionalProperties");
  if (cJSON_IsObject(additional))
    return check_keywords(additional, where, err, depth + 1);
  return KILN_OK;
}

kiln_err kiln_schema_check(const cJSON *schema, const char *where, struct kiln_error *err)
{
  return check_keywords(schema, where, err, 0);
}
