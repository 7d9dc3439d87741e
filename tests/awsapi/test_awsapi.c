/* Unit tests of the AWS client's offline parts: XML parsing and its limits, AWS error documents,
 * the retry classification, endpoints and S3 addressing, CRC32C and S3's checksum texts, part
 * sizes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "checksum.h"
#include "client_internal.h"
#include "s3.h"
#include "upload.h"
#include "xml.h"

static void test_xml(void)
{
  struct kiln_xml *doc = NULL;
  struct kiln_error e = KILN_ERROR_INIT;
  CHECK_CASE("xml: namespaces dropped, paths, siblings");
  const char *list = "<?xml version=\"1.0\"?><ListPartsResult xmlns=\"http://s3\">"
                     "<Part><PartNumber>1</PartNumber><ETag>&quot;a&quot;</ETag></Part>"
                     "<Part><PartNumber>2</PartNumber></Part><IsTruncated>false</IsTruncated>"
                     "</ListPartsResult>";
  CHECK_INT(KILN_OK, kiln_xml_parse(list, strlen(list), "test", &doc, &e));
  CHECK_STR("ListPartsResult", doc ? doc->name : NULL);
  const struct kiln_xml *p = kiln_xml_child(doc, "Part");
  CHECK_STR("\"a\"", kiln_xml_text(p, "ETag"));
  CHECK_STR("2", kiln_xml_text(kiln_xml_next_same(p), "PartNumber"));
  CHECK(kiln_xml_next_same(kiln_xml_next_same(p)) == NULL);
  CHECK_STR("false", kiln_xml_text(doc, "IsTruncated"));
  CHECK(kiln_xml_text(doc, "Part/Missing") == NULL);
  kiln_xml_free(doc);

  CHECK_CASE("xml: malformed document names what and where");
  const char *bad = "<a>\n<b></a>";
  CHECK_INT(KILN_E_REMOTE, kiln_xml_parse(bad, strlen(bad), "S3 ListParts response", &doc, &e));
  CHECK_CONTAINS("S3 ListParts response is not well-formed XML (line 2", kiln_error_msg(&e));
  CHECK(doc == NULL);
  kiln_error_clear(&e);

  CHECK_CASE("xml: empty and truncated");
  CHECK_INT(KILN_E_REMOTE, kiln_xml_parse("", 0, "empty answer", &doc, &e));
  kiln_error_clear(&e);
  CHECK_INT(KILN_E_REMOTE, kiln_xml_parse("<a><b>", 6, "cut answer", &doc, &e));
  kiln_error_clear(&e);

  CHECK_CASE("xml: nesting limit");
  char deep[2000] = "";
  for (int i = 0; i < 100; i++)
    strcat(deep, "<a>");
  for (int i = 0; i < 100; i++)
    strcat(deep, "</a>");
  CHECK_INT(KILN_E_REMOTE, kiln_xml_parse(deep, strlen(deep), "deep", &doc, &e));
  CHECK_CONTAINS("nested too deeply", kiln_error_msg(&e));
  kiln_error_clear(&e);

  CHECK_CASE("xml: entity expansion bomb refused");
  const char *bomb = "<!DOCTYPE a [<!ENTITY x \"xxxxxxxxxxxxxxxx\"><!ENTITY y "
                     "\"&x;&x;&x;&x;&x;&x;&x;&x;&x;&x;&x;&x;&x;&x;&x;&x;\"><!ENTITY z "
                     "\"&y;&y;&y;&y;&y;&y;&y;&y;&y;&y;&y;&y;&y;&y;&y;&y;\"><!ENTITY w "
                     "\"&z;&z;&z;&z;&z;&z;&z;&z;&z;&z;&z;&z;&z;&z;&z;&z;\"><!ENTITY v "
                     "\"&w;&w;&w;&w;&w;&w;&w;&w;&w;&w;&w;&w;&w;&w;&w;&w;\"><!ENTITY u "
                     "\"&v;&v;&v;&v;&v;&v;&v;&v;&v;&v;&v;&v;&v;&v;&v;&v;\">]><a>&u;&u;&u;&u;</a>";
  CHECK_INT(KILN_E_REMOTE, kiln_xml_parse(bomb, strlen(bomb), "bomb", &doc, &e));
  kiln_error_clear(&e);

  CHECK_CASE("xml: escaping");
  struct kiln_buf b = KILN_BUF_INIT;
  kiln_xml_escape(&b, "a<b>&\"c'");
  CHECK_STR("a&lt;b&gt;&amp;&quot;c&apos;", kiln_buf_str(&b));
  kiln_buf_free(&b);
}

static struct kiln_aws_response response_of(const char *body)
{
  struct kiln_aws_response r;
  memset(&r, 0, sizeof(r));
  if (body)
    kiln_buf_puts(&r.body, body);
  return r;
}

static void test_errors(void)
{
  struct kiln_aws_error_info info;
  struct kiln_error e = KILN_ERROR_INIT;
  CHECK_CASE("error: S3 document");
  struct kiln_aws_response r =
      response_of("<?xml version=\"1.0\"?><Error><Code>SignatureDoesNotMatch</Code><Message>The "
                  "request signature we calculated does not match</Message><RequestId>R123"
                  "</RequestId></Error>");
  kiln_aws_error_parse("s3", "PutObject", 403, &r, &info);
  CHECK_STR("SignatureDoesNotMatch", info.code);
  CHECK_STR("R123", info.request_id);
  CHECK_INT(KILN_E_AUTH, kiln_aws_error_report(&info, &e));
  CHECK_STR("S3 PutObject: HTTP 403 SignatureDoesNotMatch: The request signature we calculated "
            "does not match (request id R123)",
            kiln_error_msg(&e));
  kiln_error_clear(&e);
  kiln_aws_response_clear(&r);

  CHECK_CASE("error: Query (IAM/STS) document");
  r = response_of("<ErrorResponse><Error><Type>Sender</Type><Code>EntityAlreadyExists</Code>"
                  "<Message>Role exists</Message></Error><RequestId>Q9</RequestId>"
                  "</ErrorResponse>");
  kiln_aws_error_parse("iam", "CreateRole", 409, &r, &info);
  CHECK_STR("EntityAlreadyExists", info.code);
  CHECK_STR("Q9", info.request_id);
  kiln_aws_response_clear(&r);

  CHECK_CASE("error: EC2 document");
  r = response_of("<Response><Errors><Error><Code>VcpuLimitExceeded</Code><Message>You have "
                  "requested more vCPU capacity</Message></Error></Errors><RequestID>E7"
                  "</RequestID></Response>");
  kiln_aws_error_parse("ec2", "RunInstances", 400, &r, &info);
  CHECK_STR("VcpuLimitExceeded", info.code);
  CHECK_STR("E7", info.request_id);
  CHECK_INT(KILN_E_REMOTE, kiln_aws_error_report(&info, &e));
  CHECK_CONTAINS("EC2 RunInstances: HTTP 400 VcpuLimitExceeded", kiln_error_msg(&e));
  kiln_error_clear(&e);
  kiln_aws_response_clear(&r);

  CHECK_CASE("error: JSON document");
  r = response_of("{\"__type\":\"com.amazonaws.ssm#ParameterNotFound\",\"message\":\"no such\"}");
  kiln_aws_error_parse("ssm", "GetParameter", 400, &r, &info);
  CHECK_STR("ParameterNotFound", info.code);
  CHECK_STR("no such", info.message);
  kiln_aws_response_clear(&r);

  CHECK_CASE("error: HEAD without body, malformed body");
  r = response_of(NULL);
  kiln_aws_error_parse("s3", "HeadObject", 404, &r, &info);
  CHECK_STR("NotFound", info.code);
  CHECK_INT(KILN_E_NOT_FOUND, kiln_aws_error_report(&info, &e));
  kiln_error_clear(&e);
  r = response_of("<Error><Code>Broken");
  kiln_aws_error_parse("s3", "PutObject", 500, &r, &info);
  CHECK_STR("InternalError", info.code);
  kiln_aws_response_clear(&r);

  CHECK_CASE("error: 200 with an error body (CompleteMultipartUpload)");
  r = response_of("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>InternalError</Code>"
                  "</Error>");
  CHECK(kiln_aws_error_in_ok_body(&r));
  kiln_aws_response_clear(&r);
  r = response_of("<CompleteMultipartUploadResult><ETag>x</ETag></CompleteMultipartUploadResult>");
  CHECK(!kiln_aws_error_in_ok_body(&r));
  kiln_aws_response_clear(&r);
  r = response_of("<Errors/>");
  CHECK(!kiln_aws_error_in_ok_body(&r));
  kiln_aws_response_clear(&r);

  CHECK_CASE("retry classification");
  CHECK(kiln_aws_retryable(503, "SlowDown"));
  CHECK(kiln_aws_retryable(400, "Throttling"));
  CHECK(kiln_aws_retryable(400, "RequestLimitExceeded"));
  CHECK(kiln_aws_retryable(502, ""));
  CHECK(kiln_aws_retryable(200, "InternalError"));
  CHECK(!kiln_aws_retryable(403, "SignatureDoesNotMatch"));
  CHECK(!kiln_aws_retryable(404, "NoSuchBucket"));
  CHECK(!kiln_aws_retryable(400, "VcpuLimitExceeded"));
}

static kiln_err target_of(struct kiln_aws_client *c, const char *service, const char *bucket,
                          const char *path, struct kiln_aws_target *t)
{
  struct kiln_aws_request r = KILN_AWS_REQUEST_INIT;
  struct kiln_error e = KILN_ERROR_INIT;
  r.service = service;
  r.bucket = bucket;
  r.path = path;
  kiln_err rc = kiln_aws_target_resolve(c, &r, t, &e);
  kiln_error_clear(&e);
  return rc;
}

static void test_endpoints(void)
{
  struct kiln_aws_client *c = NULL;
  struct kiln_aws_target t;
  struct kiln_error e = KILN_ERROR_INIT;
  setenv("HOME", "/nonexistent-kiln-test-home", 1);
  unsetenv("AWS_ENDPOINT_URL");
  unsetenv("AWS_ENDPOINT_URL_S3");
  unsetenv("AWS_PROFILE");
  setenv("AWS_CONFIG_FILE", "/nonexistent-kiln-test-home/config", 1);
  setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent-kiln-test-home/credentials", 1);
  setenv("AWS_REGION", "eu-west-1", 1);
  CHECK_CASE("endpoints: client");
  CHECK_INT(KILN_OK, kiln_aws_client_new(NULL, &c, &e));
  if (!c)
    return;
  CHECK_STR("eu-west-1", kiln_aws_client_region(c));

  CHECK_CASE("endpoints: S3 virtual-hosted by default");
  CHECK_INT(KILN_OK, target_of(c, "s3", "my-bucket", "/a b/c.eif", &t));
  CHECK_STR("https://my-bucket.s3.eu-west-1.amazonaws.com/a%20b/c.eif", t.url);
  CHECK_STR("my-bucket.s3.eu-west-1.amazonaws.com", t.host);
  CHECK_STR("/a b/c.eif", t.sign_path);
  kiln_aws_target_clear(&t);

  CHECK_CASE("endpoints: dotted bucket over TLS is path-style");
  CHECK_INT(KILN_OK, target_of(c, "s3", "my.bucket", "/k", &t));
  CHECK_STR("https://s3.eu-west-1.amazonaws.com/my.bucket/k", t.url);
  kiln_aws_target_clear(&t);

  CHECK_CASE("endpoints: IAM is global and signed for us-east-1");
  CHECK_INT(KILN_OK, target_of(c, "iam", NULL, NULL, &t));
  CHECK_STR("https://iam.amazonaws.com/", t.url);
  CHECK_STR("us-east-1", t.signing_region);
  kiln_aws_target_clear(&t);

  CHECK_CASE("endpoints: AWS_ENDPOINT_URL on loopback is path-style with the port");
  setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566/", 1);
  CHECK_INT(KILN_OK, target_of(c, "s3", "bkt", "/x", &t));
  CHECK_STR("http://127.0.0.1:4566/bkt/x", t.url);
  CHECK_STR("127.0.0.1:4566", t.host);
  CHECK_STR("/bkt/x", t.sign_path);
  kiln_aws_target_clear(&t);
  CHECK_INT(KILN_OK, target_of(c, "ec2", NULL, NULL, &t));
  CHECK_STR("http://127.0.0.1:4566/", t.url);
  kiln_aws_target_clear(&t);

  CHECK_CASE("endpoints: AWS_ENDPOINT_URL_<SERVICE> wins over AWS_ENDPOINT_URL");
  setenv("AWS_ENDPOINT_URL_AUTO_SCALING", "http://[::1]:9000", 1);
  CHECK_INT(KILN_OK, target_of(c, "autoscaling", NULL, NULL, &t));
  CHECK_STR("http://[::1]:9000/", t.url);
  kiln_aws_target_clear(&t);
  unsetenv("AWS_ENDPOINT_URL_AUTO_SCALING");

  CHECK_CASE("endpoints: a URL without scheme is refused");
  setenv("AWS_ENDPOINT_URL", "127.0.0.1:4566", 1);
  struct kiln_aws_request r = KILN_AWS_REQUEST_INIT;
  r.service = "s3";
  r.bucket = "bkt";
  CHECK_INT(KILN_E_INVALID, kiln_aws_target_resolve(c, &r, &t, &e));
  CHECK_CONTAINS("has no scheme", kiln_error_msg(&e));
  kiln_error_clear(&e);
  unsetenv("AWS_ENDPOINT_URL");
  kiln_aws_client_free(c);

  CHECK_CASE("endpoints: no region anywhere");
  unsetenv("AWS_REGION");
  unsetenv("AWS_DEFAULT_REGION");
  CHECK_INT(KILN_OK, kiln_aws_client_new(NULL, &c, &e));
  CHECK_INT(KILN_E_INVALID, kiln_aws_target_resolve(c, &r, &t, &e));
  CHECK_CONTAINS("no AWS region", kiln_error_msg(&e));
  kiln_error_clear(&e);
  kiln_aws_client_free(c);

  CHECK_CASE("endpoints: bad AWS_MAX_ATTEMPTS");
  setenv("AWS_MAX_ATTEMPTS", "many", 1);
  CHECK_INT(KILN_E_INVALID, kiln_aws_client_new(NULL, &c, &e));
  CHECK_CONTAINS("AWS_MAX_ATTEMPTS", kiln_error_msg(&e));
  kiln_error_clear(&e);
  unsetenv("AWS_MAX_ATTEMPTS");
}

static void test_checksums(void)
{
  CHECK_CASE("crc32c known answer");
  CHECK_INT(0xE3069283u, kiln_crc32c(0, "123456789", 9));
  CHECK_INT(0, kiln_crc32c(0, "", 0));
  CHECK_CASE("crc32c streaming equals one pass");
  char buf[10000];
  for (size_t i = 0; i < sizeof(buf); i++)
    buf[i] = (char)(i * 7 + 3);
  uint32_t one = kiln_crc32c(0, buf, sizeof(buf));
  uint32_t two = kiln_crc32c(kiln_crc32c(0, buf, 4097), buf + 4097, sizeof(buf) - 4097);
  CHECK_INT(one, two);
  CHECK_CASE("crc32c base64 round trip");
  char b64[9];
  uint32_t back = 0;
  kiln_crc32c_base64(0xE3069283u, b64);
  CHECK_STR("4waSgw==", b64);
  CHECK_INT(0, kiln_s3_crc32c_decode(b64, &back));
  CHECK_INT(0xE3069283u, back);
  CHECK_INT(-1, kiln_s3_crc32c_decode("abc", &back));
  CHECK_CASE("composite checksum");
  uint32_t parts[2] = {0xE3069283u, 0x00000000u};
  char comp[32];
  kiln_s3_composite_crc32c(parts, 2, comp, sizeof(comp));
  unsigned char be[8] = {0xE3, 0x06, 0x92, 0x83, 0, 0, 0, 0};
  char want[16];
  kiln_crc32c_base64(kiln_crc32c(0, be, 8), want);
  strcat(want, "-2");
  CHECK_STR(want, comp);
}

static void test_part_sizes(void)
{
  struct kiln_error e = KILN_ERROR_INIT;
  uint64_t ps = 0;
  const uint64_t mib = 1ull << 20;
  CHECK_CASE("part size: default 16 MiB");
  CHECK_INT(KILN_OK, kiln_s3_part_size(1ull << 30, 0, &ps, &e));
  CHECK_INT(16 * mib, ps);
  CHECK_CASE("part size: raised to stay within 10,000 parts");
  CHECK_INT(KILN_OK, kiln_s3_part_size(200ull << 30, 0, &ps, &e));
  CHECK((200ull << 30) / ps <= 10000);
  CHECK_INT(0, ps % mib);
  CHECK_CASE("part size: below 5 MiB refused");
  CHECK_INT(KILN_E_INVALID, kiln_s3_part_size(1ull << 30, 4 * mib, &ps, &e));
  CHECK_CONTAINS("minimum of 5 MiB", kiln_error_msg(&e));
  kiln_error_clear(&e);
  CHECK_CASE("part size: too many parts refused with the smallest size that works");
  CHECK_INT(KILN_E_INVALID, kiln_s3_part_size(100ull << 30, 5 * mib, &ps, &e));
  CHECK_CONTAINS("use at least 11 MiB", kiln_error_msg(&e));
  kiln_error_clear(&e);
  CHECK_CASE("content key");
  char *key = kiln_s3_content_key("team/", "app", "abc");
  CHECK_STR("team/eifs/app/abc.eif", key);
  free(key);
}

int main(void)
{
  test_xml();
  test_errors();
  test_endpoints();
  test_checksums();
  test_part_sizes();
  return check_done();
}
