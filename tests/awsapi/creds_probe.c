/* Test helper: resolve AWS credentials the way kiln does and print where they came from as JSON
 * ({"source", "access_key_id", "has_session_token", "expires"}; never the secret), or the error on
 * stderr with exit 1. An argument N asks N times (expiring credentials are fetched again). */
#include <stdio.h>
#include <stdlib.h>

#include <cjson/cJSON.h>

#include "client.h"

/* The client's log lines (retries, settling credentials) go to stderr for the test to read. */
static void log_line(void *ctx, int level, const char *msg)
{
  (void)ctx;
  fprintf(stderr, "log %d: %s\n", level, msg);
}

int main(int argc, char **argv)
{
  int times = argc > 1 ? atoi(argv[1]) : 1; /* resolve this often: refreshes show at the source */
  struct kiln_aws_client *c = NULL;
  struct kiln_aws_credentials creds = {0};
  struct kiln_error err = KILN_ERROR_INIT;
  struct kiln_aws_client_options opt = {.log = log_line};
  kiln_err rc = kiln_aws_client_new(&opt, &c, &err);
  for (int i = 0; i < times && rc == KILN_OK; i++) {
    kiln_aws_credentials_clear(&creds);
    rc = kiln_aws_client_credentials(c, &creds, &err);
  }
  if (rc != KILN_OK) {
    fprintf(stderr, "%s\n", kiln_error_msg(&err));
    kiln_error_clear(&err);
    kiln_aws_client_free(c);
    return 1;
  }
  cJSON *doc = cJSON_CreateObject();
  cJSON_AddStringToObject(doc, "source", creds.source);
  cJSON_AddStringToObject(doc, "access_key_id", creds.access_key_id);
  cJSON_AddBoolToObject(doc, "has_session_token", creds.session_token != NULL);
  cJSON_AddNumberToObject(doc, "expires", (double)creds.expires);
  char *text = cJSON_PrintUnformatted(doc);
  printf("%s\n", text);
  cJSON_free(text);
  cJSON_Delete(doc);
  kiln_aws_credentials_clear(&creds);
  kiln_aws_client_free(c);
  return 0;
}
