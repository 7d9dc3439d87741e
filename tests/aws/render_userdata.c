/* Test driver: the user data kiln deploys for an app directory's kiln.json, printed to stdout
 * (the runtime settings -> kiln-host's configuration -> the rendered script), so a test can run
 * it with stub commands. Usage: render_userdata SHARE_DIR KILN_JSON EIF_SHA256 HOST_SHA256 */
#include <stdio.h>
#include <stdlib.h>

#include <kiln/enclave_runtime.h>

#include "deploy.h"
#include "util/fs.h"

int main(int argc, char **argv)
{
  if (argc != 5) {
    fprintf(stderr, "usage: render_userdata SHARE_DIR KILN_JSON EIF_SHA256 HOST_SHA256\n");
    return 2;
  }
  struct kiln_error err = KILN_ERROR_INIT;
  char *text = NULL, *script = NULL, key[128];
  if (kiln_read_file(argv[2], 1 << 20, &text, NULL, &err) != KILN_OK) {
    fprintf(stderr, "%s\n", kiln_error_msg(&err));
    return 1;
  }
  cJSON *config = cJSON_Parse(text);
  struct kiln_enclave_runtime rt;
  if (kiln_enclave_runtime_load(config, &rt, &err) != KILN_OK) {
    fprintf(stderr, "%s\n", kiln_error_msg(&err));
    return 1;
  }
  char *conf = kiln_enclave_host_conf(&rt, KILN_ENCLAVE_CID, "0.0.0.0", KILN_HOST_LOG_FILE);
  snprintf(key, sizeof key, "kiln-host/%s", argv[4]);
  struct kiln_userdata_params p = {.deployment_id = "kiln-test",
                                   .region = "us-east-1",
                                   .bucket = "kiln-test-123456789012",
                                   .eif_key = "eifs/app/app.eif",
                                   .eif_sha256 = argv[3],
                                   .cpu_count = 2,
                                   .memory_mib = 2048,
                                   .kiln_host_key = key,
                                   .kiln_host_sha256 = argv[4],
                                   .host_conf = conf};
  int rc = kiln_userdata_render(argv[1], &p, &script, NULL, &err);
  if (rc == KILN_OK)
    fputs(script, stdout);
  else
    fprintf(stderr, "%s\n", kiln_error_msg(&err));
  free(script);
  free(conf);
  free(text);
  kiln_enclave_runtime_free(&rt);
  cJSON_Delete(config);
  kiln_error_clear(&err);
  return rc == KILN_OK ? 0 : 1;
}
