/* libFuzzer target for AWS XML responses and error documents: any bytes go through the expat DOM
 * builder and every lookup the AWS code makes on it (paths, first/next siblings, deep find, the
 * S3 CRC32C decoder), and as a response body through the error-document parser and report (XML
 * and JSON errors, errors inside 200 bodies). The XML escaper must round-trip every parsed text.
 * Errors are fine; crashes, leaks, undefined behaviour and a failed round trip are not. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "client_internal.h"
#include "s3.h"
#include "util/buf.h"
#include "xml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Names and paths the S3, STS, EC2 and Auto Scaling response readers look up. */
static const char *const lookups[] = {"UploadId",
                                      "Part",
                                      "PartNumber",
                                      "ETag",
                                      "Size",
                                      "ChecksumCRC32C",
                                      "IsTruncated",
                                      "NextPartNumberMarker",
                                      "NextKeyMarker",
                                      "NextUploadIdMarker",
                                      "Upload",
                                      "Key",
                                      "Initiated",
                                      "Error",
                                      "Code",
                                      "Message",
                                      "RequestId",
                                      "RequestID",
                                      "Credentials",
                                      "AccessKeyId",
                                      "SecretAccessKey",
                                      "SessionToken",
                                      "Expiration",
                                      "GetCallerIdentityResult",
                                      "Account",
                                      "LaunchTemplate/Version",
                                      "enclaveOptions/enabled",
                                      "member",
                                      "item",
                                      "instanceId",
                                      "vpcSet",
                                      "ListPartsResult/Part",
                                      "ErrorResponse/Error/Code",
                                      "Response/Errors/Error/Message",
                                      "",
                                      NULL};

static void check_escape_round_trip(const char *text)
{
  struct kiln_buf doc = KILN_BUF_INIT;
  struct kiln_error err = KILN_ERROR_INIT;
  struct kiln_xml *x = NULL;
  if (kiln_buf_puts(&doc, "<v>") == KILN_OK && kiln_xml_escape(&doc, text) == KILN_OK &&
      kiln_buf_puts(&doc, "</v>") == KILN_OK &&
      kiln_xml_parse(doc.data, doc.len, "round trip", &x, &err) == KILN_OK &&
      strcmp(x->text, text) != 0)
    abort(); /* escaping then parsing must give the text back */
  kiln_xml_free(x);
  kiln_error_clear(&err);
  kiln_buf_free(&doc);
}

static void walk(const struct kiln_xml *x, int depth)
{
  for (; x; x = x->next) {
    if (depth < 4)
      check_escape_round_trip(x->text);
    for (int i = 0; lookups[i]; i++) {
      const struct kiln_xml *found = kiln_xml_path(x, lookups[i]);
      for (int n = 0; found && n < 64; n++)
        found = kiln_xml_next_same(found);
      (void)kiln_xml_text(x, lookups[i]);
      (void)kiln_xml_child(x, lookups[i]);
    }
    const char *crc = kiln_xml_text(x, "ChecksumCRC32C");
    uint32_t value;
    if (crc)
      (void)kiln_s3_crc32c_decode(crc, &value);
    walk(x->child, depth + 1);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  struct kiln_xml *doc = NULL;
  struct kiln_error err = KILN_ERROR_INIT;
  if (kiln_xml_parse((const char *)data, size, "fuzz response", &doc, &err) == KILN_OK) {
    (void)kiln_xml_find(doc, "Error");
    walk(doc, 0);
  }
  kiln_xml_free(doc);
  kiln_error_clear(&err);

  struct kiln_aws_response resp;
  memset(&resp, 0, sizeof resp);
  if (kiln_buf_append(&resp.body, data, size) != KILN_OK)
    return 0;
  static const long statuses[] = {0, 200, 400, 403, 404, 500, 503};
  struct kiln_aws_error_info info;
  kiln_aws_error_parse("s3", "ListParts", statuses[size % 7], &resp, &info);
  (void)kiln_aws_error_in_ok_body(&resp);
  (void)kiln_aws_retryable(info.http_status, info.code);
  (void)kiln_aws_error_report(&info, &err);
  kiln_error_clear(&err);
  kiln_aws_response_clear(&resp);
  return 0;
}
