/* AWS error answers: parsed from S3, Query and EC2 XML or JSON bodies (or just the status for
 * HEAD), classified for the standard retry mode, and reported as one message. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>

#include "client_internal.h"

static void copy_str(char *dst, size_t size, const char *src)
{
  if (!src)
    return;
  snprintf(dst, size, "%s", src);
  /* one line: the message goes into logs and terminals */
  for (char *p = dst; *p; p++)
    if (*p == '\n' || *p == '\r' || *p == '\t')
      *p = ' ';
}

static const char *status_code_name(long status)
{
  switch (status) {
  case 301: return "PermanentRedirect";
  case 400: return "BadRequest";
  case 403: return "Forbidden";
  case 404: return "NotFound";
  case 409: return "Conflict";
  case 412: return "PreconditionFailed";
  case 500: return "InternalError";
  case 503: return "ServiceUnavailable";
  default: return "";
  }
}

static int body_starts_with(const struct kiln_aws_response *r, char c)
{
  for (size_t i = 0; i < r->body.len; i++) {
    char b = r->body.data[i];
    if (b == ' ' || b == '\n' || b == '\r' || b == '\t')
      continue;
    return b == c;
  }
  return 0;
}

static void parse_xml_error(const struct kiln_aws_response *r, struct kiln_aws_error_info *info)
{
  struct kiln_xml *doc = NULL;
  struct kiln_error ignored = KILN_ERROR_INIT;
  if (kiln_xml_parse(r->body.data, r->body.len, "error", &doc, &ignored) != KILN_OK) {
    kiln_error_clear(&ignored);
    return;
  }
  /* S3: <Error>; Query: <ErrorResponse><Error>; EC2: <Response><Errors><Error> */
  const struct kiln_xml *e = strcmp(doc->name, "Error") == 0 ? doc : kiln_xml_find(doc, "Error");
  if (e) {
    copy_str(info->code, sizeof(info->code), kiln_xml_text(e, "Code"));
    copy_str(info->message, sizeof(info->message), kiln_xml_text(e, "Message"));
    copy_str(info->request_id, sizeof(info->request_id), kiln_xml_text(e, "RequestId"));
  }
  const struct kiln_xml *rid = kiln_xml_find(doc, "RequestId");
  if (!rid)
    rid = kiln_xml_find(doc, "RequestID");
  if (!info->request_id[0] && rid)
    copy_str(info->request_id, sizeof(info->request_id), rid->text);
  kiln_xml_free(doc);
}

static void parse_json_error(const struct kiln_aws_response *r, struct kiln_aws_error_info *info)
{
  cJSON *doc = cJSON_ParseWithLength(r->body.data, r->body.len);
  if (!doc)
    return;
  const cJSON *type = cJSON_GetObjectItemCaseSensitive(doc, "__type");
  const cJSON *msg = cJSON_GetObjectItemCaseSensitive(doc, "message");
  if (!cJSON_IsString(msg))
    msg = cJSON_GetObjectItemCaseSensitive(doc, "Message");
  if (cJSON_IsString(type)) {
    const char *hash = strrchr(type->valuestring, '#');
    copy_str(info->code, sizeof(info->code), hash ? hash + 1 : type->valuestring);
  }
  if (cJSON_IsString(msg))
    copy_str(info->message, sizeof(info->message), msg->valuestring);
  cJSON_Delete(doc);
}

void kiln_aws_error_parse(const char *service, const char *operation, long status,
                          const struct kiln_aws_response *resp, struct kiln_aws_error_info *info)
{
  memset(info, 0, sizeof(*info));
  copy_str(info->service, sizeof(info->service), service);
  copy_str(info->operation, sizeof(info->operation), operation);
  info->http_status = status;
  if (resp && resp->body.len > 0) {
    if (body_starts_with(resp, '<'))
      parse_xml_error(resp, info);
    else if (body_starts_with(resp, '{'))
      parse_json_error(resp, info);
  }
  if (resp && !info->request_id[0]) {
    const char *h = kiln_aws_response_header(resp, "x-amz-request-id");
    if (!h)
      h = kiln_aws_response_header(resp, "x-amzn-requestid");
    copy_str(info->request_id, sizeof(info->request_id), h);
  }
  if (!info->code[0])
    copy_str(info->code, sizeof(info->code), status_code_name(status));
}

int kiln_aws_error_in_ok_body(const struct kiln_aws_response *resp)
{
  if (!resp || resp->body.len == 0 || !body_starts_with(resp, '<'))
    return 0;
  const char *p = resp->body.data;
  const char *end = p + resp->body.len;
  /* skip an XML declaration, then look at the root element's name */
  while (p < end) {
    const char *lt = memchr(p, '<', (size_t)(end - p));
    if (!lt || lt + 1 >= end)
      return 0;
    if (lt[1] == '?' || lt[1] == '!') {
      const char *gt = memchr(lt, '>', (size_t)(end - lt));
      if (!gt)
        return 0;
      p = gt + 1;
      continue;
    }
    return (size_t)(end - lt) >= 7 && memcmp(lt + 1, "Error", 5) == 0 &&
           (lt[6] == '>' || lt[6] == ' ');
  }
  return 0;
}

int kiln_aws_retryable(long http_status, const char *code)
{
  static const char *const retry_codes[] = {"Throttling",
                                            "ThrottlingException",
                                            "ThrottledException",
                                            "RequestThrottledException",
                                            "TooManyRequestsException",
                                            "ProvisionedThroughputExceededException",
                                            "TransactionInProgressException",
                                            "RequestLimitExceeded",
                                            "BandwidthLimitExceeded",
                                            "LimitExceededException",
                                            "RequestThrottled",
                                            "SlowDown",
                                            "EC2ThrottledException",
                                            "RequestTimeout",
                                            "RequestTimeoutException",
                                            "PriorRequestNotComplete",
                                            "InternalError",
                                            "ServiceUnavailable",
                                            "RequestTimeTooSkewed"};
  if (code)
    for (size_t i = 0; i < sizeof(retry_codes) / sizeof(retry_codes[0]); i++)
      if (strcmp(code, retry_codes[i]) == 0)
        return 1;
  return http_status == 500 || http_status == 502 || http_status == 503 || http_status == 504;
}

kiln_err kiln_aws_error_report(const struct kiln_aws_error_info *info, struct kiln_error *err)
{
  kiln_err code;
  if (info->http_status == 0)
    code = KILN_E_NETWORK;
  else if (info->http_status == 401 || info->http_status == 403 ||
           strcmp(info->code, "ExpiredToken") == 0 ||
           strcmp(info->code, "InvalidClientTokenId") == 0)
    code = KILN_E_AUTH;
  else if (info->http_status == 404)
    code = KILN_E_NOT_FOUND;
  else
    code = KILN_E_REMOTE;
  const char *title = kiln_aws_service_title(info->service);
  if (info->http_status == 0)
    return kiln_error_set(err, code, "%s %s: no answer: %s", title, info->operation,
                          info->message[0] ? info->message : "connection failed");
  return kiln_error_set(err, code, "%s %s: HTTP %ld %s%s%s (request id %s)", title, info->operation,
                        info->http_status, info->code[0] ? info->code : "error",
                        info->message[0] ? ": " : "", info->message,
                        info->request_id[0] ? info->request_id : "none");
}
