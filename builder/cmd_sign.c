/* `kiln sign`: sign an existing EIF (or re-sign it with another key), keeping PCR0/1/2. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kiln/eif.h>

#include "cli.h"
#include "eif_json.h"
#include "util/buf.h"
#include "util/fs.h"

int kiln_cmd_sign(struct kiln_cli *cli)
{
  const char *file = NULL, *key = NULL, *cert = NULL, *out = NULL;
  for (int i = 1; i < cli->argc; i++) {
    const char *a = cli->argv[i];
    if (strcmp(a, "--key") == 0 && i + 1 < cli->argc)
      key = cli->argv[++i];
    else if (strcmp(a, "--cert") == 0 && i + 1 < cli->argc)
      cert = cli->argv[++i];
    else if ((strcmp(a, "-o") == 0 || strcmp(a, "--output") == 0) && i + 1 < cli->argc)
      out = cli->argv[++i];
    else if (a[0] != '-' && !file)
      file = a;
    else
      return kiln_cli_usage(cli, "unexpected argument \"%s\"", a);
  }
  if (!file || !key || !cert)
    return kiln_cli_usage(cli, "give the EIF, --key and --cert");
  struct kiln_error e = KILN_ERROR_INIT;
  char *tmp = NULL, **strings = NULL;
  struct kiln_eif_build b;
  struct kiln_eif_pcrs pcrs;
  int code = 0;
  char dir_template[] = "/tmp/kiln-sign-XXXXXX";
  char *dir = mkdtemp(dir_template);
  if (!dir) {
    code = kiln_cli_fail_msg(cli, KILN_E_IO, "cannot create a temporary directory");
    goto done;
  }
  if (kiln_eif_unpack(file, dir, &b, &strings, &e) == KILN_OK) {
    b.signing_certificate = cert;
    b.private_key = key;
    kiln_eif_write(&b, out ? out : file, &pcrs, &e);
  }
  if (e.code) {
    code = kiln_cli_fail_msg(cli, e.code, "%s", kiln_error_msg(&e));
  } else {
    cJSON *doc = kiln_eif_measurements_json(&pcrs);
    kiln_cli_print_json_ordered(doc);
  }
  kiln_rm_rf_quiet(dir);
done:
  kiln_error_clear(&e);
  for (size_t i = 0; strings && i < KILN_EIF_MAX_SECTIONS + 4; i++)
    free(strings[i]);
  free(strings);
  free(tmp);
  return code;
}
