/* `kiln diff A.eif B.eif`: why two EIFs differ: the first differing section and, for ramdisks,
 * the paths whose content, mode, owner, type or link target differ (kiln_eif_diff). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <kiln/eif_diff.h>

#include "cli.h"

#define DIFF_MAX_PATHS 1000

static const char *type_name(uint32_t mode)
{
  switch (mode & S_IFMT) {
  case S_IFREG: return "file";
  case S_IFDIR: return "directory";
  case S_IFLNK: return "symlink";
  case S_IFIFO: return "fifo";
  case S_IFCHR: return "char device";
  case S_IFBLK: return "block device";
  }
  return "other";
}

static cJSON *entry_json(const struct kiln_eif_diff_entry *e)
{
  if (!e->present)
    return cJSON_CreateNull();
  cJSON *o = cJSON_CreateObject();
  char mode[8];
  snprintf(mode, sizeof(mode), "%04o", (unsigned)(e->mode & 07777));
  cJSON_AddStringToObject(o, "type", type_name(e->mode));
  cJSON_AddStringToObject(o, "mode", mode);
  cJSON_AddNumberToObject(o, "uid", e->uid);
  cJSON_AddNumberToObject(o, "gid", e->gid);
  if (S_ISREG(e->mode)) {
    cJSON_AddNumberToObject(o, "size", (double)e->size);
    cJSON_AddStringToObject(o, "sha256", e->sha256);
  }
  if (e->link)
    cJSON_AddStringToObject(o, "link", e->link);
  return o;
}

static cJSON *what_json(unsigned what)
{
  cJSON *a = cJSON_CreateArray();
  for (unsigned bit = 1; bit <= KILN_EIF_DIFF_LINK; bit <<= 1)
    if (what & bit)
      cJSON_AddItemToArray(a, cJSON_CreateString(kiln_eif_diff_what_name(bit)));
  return a;
}

static cJSON *diff_json(const char *a, const char *b, const struct kiln_eif_diff *d)
{
  cJSON *doc = cJSON_CreateObject();
  cJSON_AddStringToObject(doc, "a", a);
  cJSON_AddStringToObject(doc, "b", b);
  cJSON_AddBoolToObject(doc, "identical", d->identical);
  cJSON_AddBoolToObject(doc, "header_same", d->header_same);
  if (d->first >= 0) {
    cJSON *f = cJSON_AddObjectToObject(doc, "first_difference");
    cJSON_AddNumberToObject(f, "section", d->first);
    cJSON_AddStringToObject(f, "name", d->sections[d->first].name);
  } else {
    cJSON_AddNullToObject(doc, "first_difference");
  }
  cJSON *secs = cJSON_AddArrayToObject(doc, "sections");
  for (size_t i = 0; i < d->nsections; i++) {
    const struct kiln_eif_diff_section *s = &d->sections[i];
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "index", s->index);
    cJSON_AddStringToObject(o, "name", s->name);
    cJSON_AddBoolToObject(o, "same", s->same);
    const struct kiln_eif_diff_section_side *sides[] = {&s->a, &s->b};
    for (int k = 0; k < 2; k++) {
      cJSON *side = sides[k]->present ? cJSON_CreateObject() : cJSON_CreateNull();
      if (sides[k]->present) {
        cJSON_AddNumberToObject(side, "size", (double)sides[k]->size);
        cJSON_AddStringToObject(side, "sha256", sides[k]->sha256);
      }
      cJSON_AddItemToObject(o, k ? "b" : "a", side);
    }
    cJSON_AddItemToArray(secs, o);
  }
  cJSON *rds = cJSON_AddArrayToObject(doc, "ramdisks");
  for (size_t r = 0; r < d->nramdisks; r++) {
    const struct kiln_eif_diff_ramdisk *rd = &d->ramdisks[r];
    cJSON *o = cJSON_CreateObject(), *paths = cJSON_AddArrayToObject(o, "paths");
    cJSON_AddNumberToObject(o, "section", rd->section);
    cJSON_AddStringToObject(o, "name", rd->name);
    cJSON_AddNumberToObject(o, "differing_paths", (double)rd->total);
    for (size_t i = 0; i < rd->npaths; i++) {
      cJSON *p = cJSON_CreateObject();
      cJSON_AddStringToObject(p, "path", rd->paths[i].path);
      cJSON_AddItemToObject(p, "differences", what_json(rd->paths[i].what));
      cJSON_AddItemToObject(p, "a", entry_json(&rd->paths[i].a));
      cJSON_AddItemToObject(p, "b", entry_json(&rd->paths[i].b));
      cJSON_AddItemToArray(paths, p);
    }
    cJSON_AddItemToArray(rds, o);
  }
  return doc;
}

static void print_side(const char *label, const struct kiln_eif_diff_entry *e)
{
  if (!e->present) {
    printf("      %s: absent\n", label);
    return;
  }
  printf("      %s: %s %04o %u:%u", label, type_name(e->mode), (unsigned)(e->mode & 07777), e->uid,
         e->gid);
  if (S_ISREG(e->mode))
    printf(" %llu bytes sha256:%.16s", (unsigned long long)e->size, e->sha256);
  if (e->link)
    printf(" -> %s", e->link);
  printf("\n");
}

static void print_text(const char *a, const char *b, const struct kiln_eif_diff *d)
{
  if (d->identical) {
    printf("%s and %s are identical\n", a, b);
    return;
  }
  if (!d->header_same)
    printf("headers differ (flags, default memory/CPUs or section count)\n");
  if (d->first >= 0) {
    const struct kiln_eif_diff_section *s = &d->sections[d->first];
    printf("first difference: section %u (%s): A %llu bytes sha256:%.16s, B %llu bytes "
           "sha256:%.16s\n",
           s->index, s->name, (unsigned long long)s->a.size, s->a.present ? s->a.sha256 : "-",
           (unsigned long long)s->b.size, s->b.present ? s->b.sha256 : "-");
  }
  for (size_t i = 0; i < d->nsections; i++)
    if (!d->sections[i].same && (int)i != d->first)
      printf("section %zu (%s) differs too\n", i, d->sections[i].name);
  for (size_t r = 0; r < d->nramdisks; r++) {
    const struct kiln_eif_diff_ramdisk *rd = &d->ramdisks[r];
    printf("%s (section %u): %zu path%s differ%s\n", rd->name, rd->section, rd->total,
           rd->total == 1 ? "" : "s", rd->total == 1 ? "s" : "");
    for (size_t i = 0; i < rd->npaths; i++) {
      const struct kiln_eif_diff_path *p = &rd->paths[i];
      printf("  %s:", p->path);
      for (unsigned bit = 1; bit <= KILN_EIF_DIFF_LINK; bit <<= 1)
        if (p->what & bit)
          printf(" %s", kiln_eif_diff_what_name(bit));
      printf("\n");
      print_side("A", &p->a);
      print_side("B", &p->b);
    }
    if (rd->npaths < rd->total)
      printf("  ... %zu more (--max-paths)\n", rd->total - rd->npaths);
  }
}

int kiln_cmd_diff(struct kiln_cli *cli)
{
  const char *files[2] = {NULL, NULL};
  long max = DIFF_MAX_PATHS;
  int nfiles = 0;
  for (int i = 1; i < cli->argc; i++) {
    char *end = NULL;
    if (strcmp(cli->argv[i], "--max-paths") == 0 && i + 1 < cli->argc) {
      max = strtol(cli->argv[++i], &end, 10);
      if (*end || max < 1)
        return kiln_cli_usage(cli, "--max-paths needs a positive number, not \"%s\"", cli->argv[i]);
    } else if (cli->argv[i][0] != '-' && nfiles < 2) {
      files[nfiles++] = cli->argv[i];
    } else {
      return kiln_cli_usage(cli, "unexpected argument \"%s\"", cli->argv[i]);
    }
  }
  if (nfiles != 2)
    return kiln_cli_usage(cli, "name the two EIF files to compare");
  struct kiln_eif_diff d;
  struct kiln_error e = KILN_ERROR_INIT;
  if (kiln_eif_diff(files[0], files[1], (size_t)max, &d, &e) != KILN_OK) {
    int code = kiln_cli_fail_msg(cli, e.code, "%s", kiln_error_msg(&e));
    kiln_error_clear(&e);
    return code;
  }
  if (cli->json)
    kiln_cli_print_json(diff_json(files[0], files[1], &d));
  else
    print_text(files[0], files[1], &d);
  int code = d.identical ? KILN_EXIT_OK : KILN_EXIT_FAILURE;
  kiln_eif_diff_clear(&d);
  return code;
}
