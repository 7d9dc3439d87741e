/* `kiln verify`: prove an EIF is what this app directory builds (rebuild from kiln.lock in a fresh
 * cache, or the step cache with --reuse-cache, and compare bytes and PCRs, naming the first
 * differing section and the toolchains when they differ), or that its PCRs equal an expected set
 * (--pcrs FILE); with --attestation, that a live enclave runs it (verify_attestation.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kiln/eif.h>
#include <kiln/eif_diff.h>

#include "cli.h"
#include "verify_attestation.h"
#include "util/buf.h"
#include "util/fs.h"
#include "util/hash.h"
#include "util/json.h"

static int compare_pcrs(struct kiln_cli *cli, const struct kiln_eif_pcrs *got, const cJSON *want,
                        cJSON *report)
{
  const cJSON *m = cJSON_GetObjectItemCaseSensitive(want, "Measurements");
  if (cJSON_IsObject(m))
    want = m;
  static const char *const keys[] = {"PCR0", "PCR1", "PCR2", "PCR8"};
  const char *values[] = {got->pcr0, got->pcr1, got->pcr2, got->pcr8};
  int mismatches = 0, compared = 0;
  for (int i = 0; i < 4; i++) {
    const cJSON *w = cJSON_GetObjectItemCaseSensitive(want, keys[i]);
    if (!cJSON_IsString(w))
      continue;
    compared++;
    int same = strcmp(w->valuestring, values[i]) == 0;
    cJSON *entry = cJSON_AddObjectToObject(report, keys[i]);
    cJSON_AddStringToObject(entry, "expected", w->valuestring);
    cJSON_AddStringToObject(entry, "actual", values[i]);
    cJSON_AddBoolToObject(entry, "match", same);
    if (!same) {
      mismatches++;
      if (!cli->json)
        fprintf(stderr, "%s differs:\n  expected %s\n  actual   %s\n", keys[i], w->valuestring,
                values[i]);
    }
  }
  return compared == 0 ? -1 : mismatches;
}

/* The fresh cache of a verify run: <cache>/verify/run-XXXXXX, made the process's cache through
 * KILN_CACHE_DIR; sha256-pinned downloads stay shared through KILN_DOWNLOAD_DIR, and nothing else
 * (not a shared unpacked toolchain, KILN_TOOLCHAIN_DIR). */
static char *fresh_cache(struct kiln_cli *cli, struct kiln_error *e)
{
  struct kiln *k0 = kiln_cli_open(cli);
  if (!k0) {
    kiln_error_set(e, KILN_E_IO, "cannot open kiln");
    return NULL;
  }
  char *parent = kiln_path_join(kiln_cache_dir(k0), "verify");
  char *downloads = kiln_path_join(kiln_cache_dir(k0), "downloads");
  char *dir = NULL;
  kiln_free(k0);
  kiln_err rc = parent && downloads ? kiln_mkdir_p(parent, 0755, e) : KILN_E_NOMEM;
  if (!rc)
    rc = kiln_mkdtemp_in(parent, "run-", &dir, e);
  if (!rc) {
    const char *dl = getenv("KILN_DOWNLOAD_DIR");
    if (!dl || !*dl)
      setenv("KILN_DOWNLOAD_DIR", downloads, 1);
    setenv("KILN_CACHE_DIR", dir, 1);
    unsetenv("KILN_TOOLCHAIN_DIR"); /* the toolchain is unpacked again from verified .debs */
  }
  free(parent);
  free(downloads);
  return rc ? NULL : dir;
}

/* stages.<stage>.<field>[.<sub>] of a kiln.lock document, or NULL. */
static const cJSON *lock_item(const cJSON *lock, const char *stage, const char *field,
                              const char *sub)
{
  const cJSON *st = cJSON_GetObjectItemCaseSensitive(lock, "stages");
  const cJSON *v =
      cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(st, stage), field);
  return sub ? cJSON_GetObjectItemCaseSensitive(v, sub) : v;
}

/* Why the PCRs may differ: the toolchain of the build that wrote kiln.lock before this run
 * (what built FILE, as far as kiln.lock knows) against the rebuild's. */
static void explain_toolchain(struct kiln_cli *cli, const cJSON *before, const cJSON *after,
                              cJSON *doc)
{
  static const char *const stages[] = {"kernel", "eif"};
  for (int i = 0; i < 2; i++) {
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(
        lock_item(before, stages[i], "resolved", NULL), "toolchain");
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(lock_item(after, stages[i], "resolved", NULL),
                                                      "toolchain");
    const cJSON *kb = cJSON_GetObjectItemCaseSensitive(b, "kind");
    if (!cJSON_IsString(kb))
      continue;
    cJSON *t = cJSON_AddObjectToObject(doc, stages[i]);
    cJSON_AddItemToObject(t, "built_with", a ? cJSON_Duplicate(a, 0) : cJSON_CreateNull());
    cJSON_AddItemToObject(t, "rebuilt_with", cJSON_Duplicate(b, 0));
    if (cli->json)
      continue;
    const cJSON *ka = cJSON_GetObjectItemCaseSensitive(a, "kind");
    const cJSON *ca = cJSON_GetObjectItemCaseSensitive(a, "compiler");
    const cJSON *cb = cJSON_GetObjectItemCaseSensitive(b, "compiler");
    if (strcmp(kb->valuestring, "host") == 0)
      fprintf(stderr,
              "  %s: the rebuild used this host's compiler (%s): PCRs then depend on the "
              "compiler, binutils and libc; set \"toolchain\": \"pinned\" in kiln.json for the "
              "same PCRs on any host\n",
              stages[i], cJSON_IsString(cb) ? cb->valuestring : "?");
    if (cJSON_IsString(ka) && strcmp(ka->valuestring, kb->valuestring) != 0)
      fprintf(stderr, "  %s: built with the %s toolchain%s%s%s, rebuilt with the %s one\n",
              stages[i], ka->valuestring, cJSON_IsString(ca) ? " (" : "",
              cJSON_IsString(ca) ? ca->valuestring : "", cJSON_IsString(ca) ? ")" : "",
              kb->valuestring);
  }
}

/* The first differing EIF section and, in ramdisks, the differing paths (init, kiln-agent,
 * the app's files): what to look at when bytes differ. */
static void explain_sections(struct kiln_cli *cli, const char *file, const char *rebuilt,
                             cJSON *doc)
{
  struct kiln_eif_diff d;
  struct kiln_error e = KILN_ERROR_INIT;
  memset(&d, 0, sizeof d);
  if (kiln_eif_diff(file, rebuilt, 10, &d, &e) != KILN_OK) {
    if (!cli->json)
      fprintf(stderr, "  (cannot compare the sections: %s)\n", kiln_error_msg(&e));
    kiln_error_clear(&e);
    return;
  }
  if (d.first >= 0 && (size_t)d.first < d.nsections) {
    const struct kiln_eif_diff_section *sec = &d.sections[d.first];
    const char *artifact = strcmp(sec->name, "kernel") == 0                ? "kernel"
                           : strcmp(sec->name, "application ramdisk") == 0 ? "rootfs"
                           : strcmp(sec->name, "bootstrap ramdisk") == 0   ? "init"
                                                                           : sec->name;
    cJSON_AddStringToObject(doc, "first_differing_section", sec->name);
    cJSON_AddStringToObject(doc, "first_differing_artifact", artifact);
    if (!cli->json)
      fprintf(stderr, "  first differing EIF section: %s (section %u, the %s)\n", sec->name,
              sec->index, artifact);
  } else if (!d.header_same) {
    cJSON_AddStringToObject(doc, "first_differing_section", "header");
    if (!cli->json)
      fprintf(stderr, "  the EIF headers differ (flags, memory, CPUs or section count)\n");
  }
  cJSON *paths = cJSON_AddArrayToObject(doc, "differing_paths");
  for (size_t r = 0; r < d.nramdisks; r++)
    for (size_t i = 0; i < d.ramdisks[r].npaths; i++) {
      struct kiln_buf line = KILN_BUF_INIT;
      kiln_buf_printf(&line, "%s: /%s", d.ramdisks[r].name, d.ramdisks[r].paths[i].path);
      cJSON_AddItemToArray(paths, cJSON_CreateString(kiln_buf_str(&line)));
      if (!cli->json)
        fprintf(stderr, "    differs: %s\n", kiln_buf_str(&line));
      kiln_buf_free(&line);
    }
  kiln_eif_diff_clear(&d);
}

/* Rebuild as `kiln build` does (in a fresh cache unless reuse) and compare with FILE. */
static int rebuild_and_compare(struct kiln_cli *cli, int reuse, const char *file,
                               const struct kiln_eif_info *info, cJSON *doc, cJSON *pcrs,
                               int *mismatches)
{
  struct kiln_error e = KILN_ERROR_INIT;
  struct kiln *k = NULL;
  struct kiln_pipeline *p = NULL;
  cJSON *result = NULL, *lock_before = NULL, *lock_after = NULL;
  char *cache = NULL, *lock_path = NULL;
  int code = 0;
  if (!reuse && !(cache = fresh_cache(cli, &e))) {
    code = kiln_cli_fail_msg(cli, e.code ? e.code : KILN_E_IO, "a fresh cache for the rebuild: %s",
                             kiln_error_msg(&e));
    goto out;
  }
  cJSON_AddStringToObject(doc, "cache", reuse ? "reused" : "fresh");
  if (!cli->json && cli->verbosity >= 0)
    fprintf(stderr, "kiln verify: %s\n",
            reuse ? "rebuilding with this machine's step cache (--reuse-cache): cached steps "
                    "are not rebuilt"
                  : "rebuilding in a fresh cache (only sha256-pinned downloads are reused)");
  if (!(k = kiln_cli_open_app(cli, 1, &code)))
    goto out;
  lock_path = kiln_path_join(kiln_app_dir(k), "kiln.lock");
  if (lock_path && kiln_path_exists(lock_path) &&
      kiln_json_read_file(lock_path, 4u << 20, &lock_before, &e) != KILN_OK)
    kiln_error_clear(&e);
  if ((code = kiln_cli_pipeline(cli, k, kiln_cli_build_stages, &p)))
    goto out;
  kiln_err rc = kiln_pipeline_run(p, &result);
  if (rc) {
    code = kiln_cli_fail(cli, k, rc);
    goto out;
  }
  const struct kiln_artifact *eif = kiln_pipeline_output(p, "eif");
  if (!eif) {
    code = kiln_cli_fail_msg(cli, KILN_E_INTERNAL, "the pipeline produced no eif artifact");
    goto out;
  }
  int run = 0, cached = 0;
  const cJSON *step;
  cJSON_ArrayForEach(step, cJSON_GetObjectItemCaseSensitive(result, "steps"))
  {
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(step, "cached")))
      cached++;
    else
      run++;
  }
  cJSON *steps = cJSON_AddObjectToObject(doc, "steps");
  cJSON_AddNumberToObject(steps, "rebuilt", run);
  cJSON_AddNumberToObject(steps, "cached", cached);
  if (!cli->json && cli->verbosity > 0)
    fprintf(stderr, "kiln verify: %d step(s) rebuilt, %d from the cache\n", run, cached);
  char got[KILN_SHA256_HEX_LEN + 1];
  if (kiln_sha256_file(file, got, NULL, &e) != KILN_OK) {
    code = kiln_cli_fail_msg(cli, e.code, "%s", kiln_error_msg(&e));
    goto out;
  }
  const cJSON *want_sha = cJSON_GetObjectItemCaseSensitive(eif->meta, "sha256");
  int same = cJSON_IsString(want_sha) && strcmp(want_sha->valuestring, got) == 0;
  cJSON_AddStringToObject(doc, "rebuilt_sha256",
                          cJSON_IsString(want_sha) ? want_sha->valuestring : "");
  cJSON_AddStringToObject(doc, "sha256", got);
  cJSON_AddBoolToObject(doc, "bytes_match", same);
  if (!same) {
    (*mismatches)++;
    if (!cli->json)
      fprintf(stderr, "bytes differ: %s has sha256 %s, the rebuild has %s\n", file, got,
              cJSON_IsString(want_sha) ? want_sha->valuestring : "?");
    char *rebuilt = kiln_path_join(eif->path, "image.eif");
    if (rebuilt)
      explain_sections(cli, file, rebuilt, doc);
    free(rebuilt);
  }
  *mismatches += compare_pcrs(cli, &info->pcrs,
                              cJSON_GetObjectItemCaseSensitive(eif->meta, "measurements"), pcrs);
  if (lock_path && kiln_json_read_file(lock_path, 4u << 20, &lock_after, &e) != KILN_OK)
    kiln_error_clear(&e);
  if (*mismatches)
    explain_toolchain(cli, lock_before, lock_after, cJSON_AddObjectToObject(doc, "toolchain"));
out:
  kiln_error_clear(&e);
  cJSON_Delete(result);
  cJSON_Delete(lock_before);
  cJSON_Delete(lock_after);
  kiln_pipeline_free(p);
  kiln_free(k);
  if (cache)
    kiln_rm_rf_quiet(cache);
  free(cache);
  free(lock_path);
  return code;
}

int kiln_cmd_verify(struct kiln_cli *cli)
{
  for (int i = 1; i < cli->argc; i++)
    if (strcmp(cli->argv[i], "--attestation") == 0)
      return kiln_verify_attestation(cli);
  const char *file = NULL, *pcrs_file = NULL;
  int reuse_cache = 0;
  for (int i = 1; i < cli->argc; i++) {
    if (strcmp(cli->argv[i], "--pcrs") == 0 && i + 1 < cli->argc)
      pcrs_file = cli->argv[++i];
    else if (strcmp(cli->argv[i], "--reuse-cache") == 0)
      reuse_cache = 1;
    else if (cli->argv[i][0] != '-' && !file)
      file = cli->argv[i];
    else
      return kiln_cli_usage(cli, "unexpected argument \"%s\"", cli->argv[i]);
  }
  if (!file)
    return kiln_cli_usage(cli, "name the EIF to verify");
  struct kiln_eif_info info;
  struct kiln_error e = KILN_ERROR_INIT;
  if (kiln_eif_read(file, 1, KILN_EIF_SHA384, &info, &e) != KILN_OK) {
    int code = kiln_cli_fail_msg(cli, e.code, "%s", kiln_error_msg(&e));
    kiln_error_clear(&e);
    return code;
  }
  int code = 0;
  cJSON *doc = cJSON_CreateObject(), *expected = NULL;
  cJSON *pcrs = cJSON_AddObjectToObject(doc, "pcrs");
  cJSON_AddStringToObject(doc, "eif", file);
  int mismatches = 0;
  if (pcrs_file) {
    if (kiln_json_read_file(pcrs_file, 1u << 20, &expected, &e) != KILN_OK) {
      code = kiln_cli_fail_msg(cli, e.code, "%s", kiln_error_msg(&e));
      goto out;
    }
    mismatches = compare_pcrs(cli, &info.pcrs, expected, pcrs);
    if (mismatches < 0) {
      code =
          kiln_cli_fail_msg(cli, KILN_E_INVALID, "%s has no PCR0/PCR1/PCR2/PCR8 values", pcrs_file);
      goto out;
    }
  } else if ((code = rebuild_and_compare(cli, reuse_cache, file, &info, doc, pcrs, &mismatches))) {
    goto out;
  }
  cJSON_AddBoolToObject(doc, "verified", mismatches == 0);
  if (cli->json) {
    kiln_cli_print_json(doc);
    doc = NULL;
  } else if (mismatches == 0) {
    printf("verified: %s matches %s\n", file,
           pcrs_file     ? pcrs_file
           : reuse_cache ? "a rebuild from kiln.json and kiln.lock (bytes and PCRs; cached steps "
                           "reused with --reuse-cache)"
                         : "a rebuild from kiln.json and kiln.lock in a fresh cache (bytes and "
                           "PCRs)");
  }
  if (mismatches) {
    /* With --json the report above is the one document; the verdict goes to stderr. */
    fprintf(stderr, "kiln verify: %s does not match (%d difference%s)\n", file, mismatches,
            mismatches == 1 ? "" : "s");
    code = KILN_EXIT_FAILURE;
  }
out:
  kiln_error_clear(&e);
  cJSON_Delete(doc);
  cJSON_Delete(expected);
  kiln_eif_info_clear(&info);
  return code;
}
