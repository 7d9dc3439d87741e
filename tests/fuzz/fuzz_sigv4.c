/* libFuzzer target for the SigV4 canonicaliser: the input is cut into a request (method, path,
 * query pairs, headers, payload hash), a region/service and signing flags, then signed and
 * presigned; the URI encoder must round-trip through the decoder. Errors are fine; crashes, leaks,
 * undefined behaviour and a failed round trip are not.
 * Input: byte 0 = flags, bytes 1-4 = time (LE), then '\n'-separated lines: method, path, region,
 * service, payload hash, then "name=value" query lines up to an empty line, then "name:value"
 * header lines. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sigv4.h"
#include "util/buf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_MAX_PAIRS 16

/* Next '\n'-terminated line of the NUL-free copy at *cursor (NULL at the end). */
static char *next_line(char **cursor)
{
  char *line = *cursor;
  if (!line)
    return NULL;
  char *nl = strchr(line, '\n');
  if (nl) {
    *nl = '\0';
    *cursor = nl + 1;
  } else {
    *cursor = NULL;
  }
  return line;
}

/* Split "name<sep>value" in place into a pair (value "" when sep is absent). */
static struct kiln_aws_pair split_pair(char *line, char sep)
{
  char *at = strchr(line, sep);
  if (at)
    *at++ = '\0';
  return (struct kiln_aws_pair){line, at ? at : ""};
}

static void check_uri_round_trip(const char *s, size_t len, int keep_slash)
{
  struct kiln_buf encoded = KILN_BUF_INIT;
  if (kiln_aws_uri_encode(&encoded, s, len, keep_slash) == KILN_OK) {
    char *decoded = kiln_aws_uri_decode(encoded.data ? encoded.data : "", encoded.len);
    if (!decoded || strlen(decoded) != strnlen(s, len) || memcmp(decoded, s, strlen(decoded)) != 0)
      abort(); /* the decoder must undo the encoder */
    free(decoded);
  }
  kiln_buf_free(&encoded);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size < 5 || size > 8192)
    return 0;
  uint8_t flags = data[0];
  time_t when = (time_t)((uint32_t)data[1] | (uint32_t)data[2] << 8 | (uint32_t)data[3] << 16 |
                         (uint32_t)data[4] << 24);
  char *text = malloc(size - 4);
  if (!text)
    return 0;
  memcpy(text, data + 5, size - 5);
  text[size - 5] = '\0';
  size_t text_len = strlen(text);
  check_uri_round_trip(text, text_len, flags & 1);
  free(kiln_aws_uri_decode(text, text_len));

  char *cursor = text;
  const char *method = next_line(&cursor), *path = next_line(&cursor);
  const char *region = next_line(&cursor), *service = next_line(&cursor);
  const char *payload = next_line(&cursor);
  struct kiln_aws_pair query[FUZZ_MAX_PAIRS], headers[FUZZ_MAX_PAIRS];
  size_t nquery = 0, nheaders = 0;
  char *line;
  while (nquery < FUZZ_MAX_PAIRS && (line = next_line(&cursor)) && *line)
    query[nquery++] = split_pair(line, '=');
  while (nheaders < FUZZ_MAX_PAIRS && (line = next_line(&cursor)))
    headers[nheaders++] = split_pair(line, ':');

  struct kiln_sigv4_request req = {method,
                                   path ? path : "/",
                                   query,
                                   nquery,
                                   headers,
                                   nheaders,
                                   payload && *payload ? payload : KILN_SIGV4_UNSIGNED_PAYLOAD};
  struct kiln_sigv4_params params = {
      region, service, when, flags & 2, flags & 4, flags & 8, (long)(flags >> 4) * 3600};
  char key_id[] = "AKIDEXAMPLE", secret[] = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
       token[] = "session-token";
  struct kiln_aws_credentials creds = {key_id, secret, flags & 0x80 ? token : NULL, 0, "fuzz"};
  struct kiln_sigv4_result result;
  struct kiln_error err = KILN_ERROR_INIT;
  memset(&result, 0, sizeof result);
  if (kiln_sigv4_sign(&req, &params, &creds, &result, &err) == KILN_OK &&
      strlen(result.signature) != 64)
    abort();
  kiln_sigv4_result_clear(&result);
  kiln_error_clear(&err);
  memset(&result, 0, sizeof result);
  if (kiln_sigv4_presign(&req, &params, &creds, &result, &err) == KILN_OK && !result.query)
    abort();
  kiln_sigv4_result_clear(&result);
  kiln_error_clear(&err);
  free(text);
  return 0;
}
