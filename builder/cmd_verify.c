/* `kiln verify`: prove an EIF is what this app directory builds (rebuild from kiln.lock and
 * compare bytes and PCRs), or that its PCRs equal an expected set (--pcrs FILE); with
 * --attestation, that a live enclave runs it (verify_attestation.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kiln/eif.h>

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

int kiln_cmd_verify(struct kiln_cli *cli)
{
  for (int i = 1; i < cli->argc; i++)
    if (strcmp(cli->argv[i], "--attestation") == 0)
      return kiln_verify_attestation(cli);
  const char *file = NULL, *pcrs_file = NULL;
  for (int i = 1; i < cli->argc; i++) {
    if (strcmp(cli->argv[i], "--pcrs") == 0 && i + 1 < cli->argc)
      pcrs_file = cli->argv[++i];
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
  struct kiln *k = NULL;
  struct kiln_pipeline *p = NULL;
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
  } else {
    /* Rebuild exactly as `kiln build` does and compare with the rebuilt artifact. */
    if (!(k = kiln_cli_open_app(cli, 1, &code)))
      goto out;
    const char *stages[] = {"image", "kernel", "eif", NULL};
    const struct kiln_artifact *eif = NULL;
    if ((code = kiln_cli_pipeline(cli, k, stages, &p)))
      goto out;
    if ((code = kiln_cli_run_pipeline(cli, k, p, "eif", &eif)))
      goto out;
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
      mismatches++;
      if (!cli->json)
        fprintf(stderr, "bytes differ: %s has sha256 %s, the rebuild has %s\n", file, got,
                cJSON_IsString(want_sha) ? want_sha->valuestring : "?");
    }
    mismatches += compare_pcrs(cli, &info.pcrs,
                               cJSON_GetObjectItemCaseSensitive(eif->meta, "measurements"), pcrs);
  }
  cJSON_AddBoolToObject(doc, "verified", mismatches == 0);
  if (cli->json) {
    kiln_cli_print_json(doc);
    doc = NULL;
  } else if (mismatches == 0) {
    printf("verified: %s matches %s\n", file,
           pcrs_file ? pcrs_file : "a rebuild from kiln.json and kiln.lock (bytes and PCRs)");
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
  kiln_pipeline_free(p);
  kiln_free(k);
  kiln_eif_info_clear(&info);
  return code;
}
