/* The AWS client shared by the s3 and aws stages: region, endpoints and addressing, credentials
 * (refreshed before they expire), SigV4 signing, HTTP over libcurl with connection reuse, the
 * SDKs' "standard" retry mode, clock-skew correction, parallel transfers on one curl multi
 * handle, and AWS errors as {service, operation, status, code, message, request id}. */
#ifndef KILN_AWS_CLIENT_H
#define KILN_AWS_CLIENT_H

#include <stdint.h>
#include <sys/types.h>

#include <cjson/cJSON.h>

#include "sigv4.h"
#include "util/buf.h"
#include "xml.h"

struct kiln_aws_client;

/* What AWS said when a request failed (empty strings when unknown). */
struct kiln_aws_error_info {
  char service[24];
  char operation[64];
  long http_status; /* 0: no HTTP answer (connection failure) */
  char code[96];
  char message[512];
  char request_id[96];
};

struct kiln_aws_client_options {
  const char *profile;     /* NULL: $AWS_PROFILE, else "default" */
  const char *region;      /* used when neither the environment nor the profile names one */
  int s3_path_style;       /* 1 force path-style, 0 automatic (IP/localhost endpoints: path) */
  int max_attempts;        /* 0: $AWS_MAX_ATTEMPTS, profile max_attempts, else 3 */
  long connect_timeout_ms; /* 0: 10 s */
  long stall_timeout_s;    /* abort a transfer moving < 1 byte/s for this long; 0: 60 s */
  /* Host hooks (all optional): log a line (level = enum kiln_log_level), register a secret that
   * must never be shown, ask whether the user cancelled. */
  void (*log)(void *ctx, int level, const char *msg);
  void (*redact)(void *ctx, const char *secret);
  int (*cancelled)(void *ctx);
  void *hook_ctx;
};

KILN_MUST_CHECK kiln_err kiln_aws_client_new(const struct kiln_aws_client_options *o,
                                             struct kiln_aws_client **out, struct kiln_error *err);
void kiln_aws_client_free(struct kiln_aws_client *c);
/* NULL when no region is configured anywhere. */
const char *kiln_aws_client_region(const struct kiln_aws_client *c);
const struct kiln_aws_profile *kiln_aws_client_profile(const struct kiln_aws_client *c);
/* Resolve (or refresh) credentials now; the copy is optional. Commands call this first so a
 * missing-credentials error comes before any work. */
KILN_MUST_CHECK kiln_err kiln_aws_client_credentials(struct kiln_aws_client *c,
                                                     struct kiln_aws_credentials *copy,
                                                     struct kiln_error *err);
/* Use these credentials instead of the chain (tests, scoped credentials from setup). */
KILN_MUST_CHECK kiln_err kiln_aws_client_set_credentials(struct kiln_aws_client *c,
                                                         const struct kiln_aws_credentials *creds,
                                                         struct kiln_error *err);
/* The endpoint base URL for a service ("s3", "ec2", ...), no trailing slash; caller frees. */
char *kiln_aws_service_endpoint(struct kiln_aws_client *c, const char *service);
/* Seconds added to the local clock when signing (learned from RequestTimeTooSkewed). */
long kiln_aws_client_clock_skew(const struct kiln_aws_client *c);
void kiln_aws_client_log(struct kiln_aws_client *c, int level, const char *fmt, ...)
    KILN_PRINTF(3, 4);

/* One request. The body is in memory (body/body_len) or read with pread from a file
 * (body_fd >= 0, body_offset, body_len), never both. */
struct kiln_aws_request {
  const char *service;   /* signing name, endpoint id: s3 ec2 iam sts autoscaling ssm logs */
  const char *operation; /* for errors and logs: "UploadPart" */
  const char *method;
  const char *bucket; /* S3: the bucket; the client picks virtual-hosted or path-style */
  const char *path;   /* unencoded ("/" when NULL); for S3 "/KEY" */
  const struct kiln_aws_pair *query;
  size_t nquery;
  const struct kiln_aws_pair *headers; /* extra headers (Content-Type, x-amz-checksum-...) */
  size_t nheaders;
  const void *body;
  size_t body_len;
  int body_fd; /* -1 (or 0 with body_len 0) when the body is in memory */
  off_t body_offset;
  /* NULL: SHA-256 of the in-memory body; file bodies are sent UNSIGNED-PAYLOAD */
  const char *payload_hash;
  const char *url;      /* full URL: skip endpoint resolution (IMDS, container credentials) */
  int unsigned_request; /* send without a signature (AssumeRoleWithWebIdentity, IMDS) */
  int no_retry;         /* one attempt only */
  size_t max_response;  /* response body limit; 0: 16 MiB */
};
#define KILN_AWS_REQUEST_INIT                                                                      \
  {                                                                                                \
    .body_fd = -1                                                                                  \
  }

struct kiln_aws_response {
  long status;
  struct kiln_buf body;
  struct kiln_aws_pair *headers; /* names lower case; owned */
  size_t nheaders;
};
void kiln_aws_response_clear(struct kiln_aws_response *r);
/* Value of a response header (name lower case), or NULL. */
const char *kiln_aws_response_header(const struct kiln_aws_response *r, const char *name);

/* Send with retries. Success: a 2xx answer without an error body. Failure codes: KILN_E_AUTH
 * (401/403, bad or expired credentials), KILN_E_NOT_FOUND (404), KILN_E_REMOTE (other AWS
 * errors), KILN_E_NETWORK (no answer), KILN_E_CANCELLED. info (optional) gets the AWS error; the
 * message reads "S3 UploadPart: HTTP 403 SignatureDoesNotMatch: <message> (request id <id>)". */
KILN_MUST_CHECK kiln_err kiln_aws_send(struct kiln_aws_client *c,
                                       const struct kiln_aws_request *req,
                                       struct kiln_aws_response *resp,
                                       struct kiln_aws_error_info *info, struct kiln_error *err);

/* Many requests, up to max_in_flight at once on one curl multi handle, each retried on its own.
 * next() fills the next request to start (it and what it points to must stay valid until done()
 * for that tag) and returns 1, or 0 when there is nothing more to start now. done() is called
 * once per request with its final result; returning anything but KILN_OK stops the batch
 * (requests in flight are dropped). sent() reports body bytes as they go (optional). */
struct kiln_aws_batch_ops {
  int (*next)(void *ctx, struct kiln_aws_request *req, void **tag);
  kiln_err (*done)(void *ctx, void *tag, kiln_err result, struct kiln_aws_response *resp,
                   const struct kiln_aws_error_info *info, struct kiln_error *err);
  void (*sent)(void *ctx, uint64_t bytes);
};
KILN_MUST_CHECK kiln_err kiln_aws_batch_run(struct kiln_aws_client *c, unsigned max_in_flight,
                                            const struct kiln_aws_batch_ops *ops, void *ctx,
                                            struct kiln_error *err);

/* A growable list of owned name/value pairs (Query protocol parameters). An add that fails sets
 * the sticky flag failed and later adds do nothing, so a list is built with unchecked adds and
 * checked once: kiln_aws_query refuses a failed list (nothing half-built is ever sent). */
struct kiln_aws_params {
  struct kiln_aws_pair *items;
  size_t len, cap;
  int failed;
};
kiln_err kiln_aws_params_add(struct kiln_aws_params *p, const char *name, const char *value);
kiln_err kiln_aws_params_addf(struct kiln_aws_params *p, const char *name, const char *fmt, ...)
    KILN_PRINTF(3, 4);
void kiln_aws_params_clear(struct kiln_aws_params *p);

/* Query protocol (EC2, Auto Scaling, IAM, STS): POST Action/Version + params form-encoded; the
 * XML answer on success (caller frees). */
KILN_MUST_CHECK kiln_err kiln_aws_query(struct kiln_aws_client *c, const char *service,
                                        const char *action, const struct kiln_aws_params *params,
                                        struct kiln_xml **out, struct kiln_aws_error_info *info,
                                        struct kiln_error *err);
/* JSON protocol 1.1 (SSM, CloudWatch Logs): X-Amz-Target = target, body JSON; the parsed answer
 * (an empty object for an empty body; caller frees). */
KILN_MUST_CHECK kiln_err kiln_aws_json(struct kiln_aws_client *c, const char *service,
                                       const char *target, const cJSON *body, cJSON **out,
                                       struct kiln_aws_error_info *info, struct kiln_error *err);

/* Is this AWS error worth another attempt under the standard retry mode? */
int kiln_aws_retryable(long http_status, const char *code);

#endif
