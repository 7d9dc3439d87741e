/* What update-policy changes in the deploy policy, statement by statement (matched by Sid, else
 * by position): shown before the policy is replaced and returned in --json. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "byoc.h"
#include "util/buf.h"

static const cJSON *statements_of(const cJSON *policy)
{
  const cJSON *s = cJSON_GetObjectItemCaseSensitive(policy, "Statement");
  return cJSON_IsArray(s) ? s : NULL;
}

/* The statement's Sid, or "#<position>" without one. */
static void name_of(const cJSON *statement, int index, char *out, size_t n)
{
  const cJSON *sid = cJSON_GetObjectItemCaseSensitive(statement, "Sid");
  if (cJSON_IsString(sid) && sid->valuestring[0])
    snprintf(out, n, "%s", sid->valuestring);
  else
    snprintf(out, n, "#%d", index + 1);
}

static const cJSON *find_statement(const cJSON *policy, const char *name)
{
  char have[160];
  int i = 0;
  const cJSON *st;
  cJSON_ArrayForEach(st, statements_of(policy))
  {
    name_of(st, i++, have, sizeof have);
    if (strcmp(have, name) == 0)
      return st;
  }
  return NULL;
}

static void add_change(cJSON *changes, const char *change, const char *name, const cJSON *old,
                       const cJSON *now)
{
  cJSON *c = cJSON_CreateObject();
  cJSON_AddStringToObject(c, "change", change);
  cJSON_AddStringToObject(c, "statement", name);
  if (old)
    cJSON_AddItemToObject(c, "old", cJSON_Duplicate(old, 1));
  if (now)
    cJSON_AddItemToObject(c, "new", cJSON_Duplicate(now, 1));
  cJSON_AddItemToArray(changes, c);
}

cJSON *kiln_policy_diff(const cJSON *old, const cJSON *now)
{
  cJSON *changes = cJSON_CreateArray();
  char name[160];
  int i = 0;
  const cJSON *st;
  if (!changes)
    return NULL;
  cJSON_ArrayForEach(st, statements_of(old))
  {
    name_of(st, i++, name, sizeof name);
    const cJSON *other = find_statement(now, name);
    if (!other)
      add_change(changes, "removed", name, st, NULL);
    else if (!cJSON_Compare(st, other, 1))
      add_change(changes, "changed", name, st, other);
  }
  i = 0;
  cJSON_ArrayForEach(st, statements_of(now))
  {
    name_of(st, i++, name, sizeof name);
    if (!find_statement(old, name))
      add_change(changes, "added", name, NULL, st);
  }
  return changes;
}

char *kiln_policy_diff_text(const cJSON *changes)
{
  struct kiln_buf b = KILN_BUF_INIT;
  const cJSON *c;
  cJSON_ArrayForEach(c, changes)
  {
    const char *change = cJSON_GetObjectItemCaseSensitive(c, "change")->valuestring;
    const char *name = cJSON_GetObjectItemCaseSensitive(c, "statement")->valuestring;
    char *old = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(c, "old"));
    char *now = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(c, "new"));
    kiln_buf_printf(&b, "  %s statement %s\n", change, name);
    if (old)
      kiln_buf_printf(&b, "    - %s\n", old);
    if (now)
      kiln_buf_printf(&b, "    + %s\n", now);
    free(old);
    free(now);
  }
  return kiln_buf_detach(&b);
}
