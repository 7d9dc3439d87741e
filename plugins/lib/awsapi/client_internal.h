/* What the client's modules (client.c, endpoint.c, transfer.c, aws_error.c) share: the client's
 * state and the helpers they call on each other. Not for users of the library. */
#ifndef KILN_AWS_CLIENT_INTERNAL_H
#define KILN_AWS_CLIENT_INTERNAL_H

#include <stdint.h>

#include <curl/curl.h>

#include "client.h"
#include "profile.h"

struct kiln_aws_client {
  struct kiln_aws_client_options opt;
  struct kiln_aws_profile profile;
  char *region;
  int max_attempts;
  double retry_base_s; /* 1 s, the SDKs' base delay */
  int retry_tokens;    /* the standard mode's retry quota */
  long clock_skew;     /* seconds to add to the local clock */
  struct kiln_aws_credentials creds;
  int have_creds;
  int creds_fixed; /* set by kiln_aws_client_set_credentials: never refreshed */
  int resolving;   /* credential resolution in progress (its own STS calls sign with... none) */
  CURLM *multi;    /* kept across calls so connections are reused */
  CURLSH *share;
  uint64_t jitter_state; /* the retry jitter's own random sequence (atomic counter) */
};

/* Where a request goes: the full URL, the Host header value, the path to sign. */
struct kiln_aws_target {
  char *url;
  char *host;
  char *sign_path; /* unencoded path as signed (path-style S3 includes "/bucket") */
  char *signing_region;
  int s3; /* S3 rules: no path normalisation, x-amz-content-sha256 */
};
KILN_MUST_CHECK kiln_err kiln_aws_target_resolve(struct kiln_aws_client *c,
                                                 const struct kiln_aws_request *req,
                                                 struct kiln_aws_target *t, struct kiln_error *err);
void kiln_aws_target_clear(struct kiln_aws_target *t);

/* Fill info from an error answer (XML of S3/Query/EC2, JSON, or only the status for HEAD). */
void kiln_aws_error_parse(const char *service, const char *operation, long status,
                          const struct kiln_aws_response *resp, struct kiln_aws_error_info *info);
/* An S3 200 answer whose body is an <Error> document (CompleteMultipartUpload, CopyObject). */
int kiln_aws_error_in_ok_body(const struct kiln_aws_response *resp);
/* The kiln_err for an AWS error and the message "S3 UploadPart: HTTP 403 Code: msg (request id
 * X)". */
kiln_err kiln_aws_error_report(const struct kiln_aws_error_info *info, struct kiln_error *err);
/* A pretty service name for messages: "S3", "EC2", "IAM", "STS", "Auto Scaling", "SSM". */
const char *kiln_aws_service_title(const char *service);

/* kiln_aws_query, optionally unsigned (STS AssumeRoleWithWebIdentity). */
KILN_MUST_CHECK kiln_err kiln_aws_query_signed(struct kiln_aws_client *c, const char *service,
                                               const char *action,
                                               const struct kiln_aws_params *params, int sign,
                                               struct kiln_xml **out,
                                               struct kiln_aws_error_info *info,
                                               struct kiln_error *err);

/* Make sure credentials are present and fresh (refresh 5 minutes before expiry). */
KILN_MUST_CHECK kiln_err kiln_aws_client_ensure_credentials(struct kiln_aws_client *c,
                                                            struct kiln_error *err);

#endif
