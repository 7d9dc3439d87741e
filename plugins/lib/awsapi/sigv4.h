/* AWS Signature Version 4: canonical request, string to sign, signature, Authorization header and
 * presigned URLs. Pure functions of their inputs (no clock, no network) so the AWS test suite and
 * the S3 documentation examples check every step. */
#ifndef KILN_AWS_SIGV4_H
#define KILN_AWS_SIGV4_H

#include <stddef.h>
#include <time.h>

#include "util/error.h"

#define KILN_SIGV4_UNSIGNED_PAYLOAD "UNSIGNED-PAYLOAD"
#define KILN_SHA256_EMPTY "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* A set of credentials. Strings are owned by whoever filled the struct; session_token may be
 * NULL; expires is 0 for credentials that do not expire. */
struct kiln_aws_credentials {
  char *access_key_id;
  char *secret_access_key;
  char *session_token;
  time_t expires;
  char source[48]; /* where they came from: "environment", "profile dev", "imds", ... */
};
void kiln_aws_credentials_clear(struct kiln_aws_credentials *c);
KILN_MUST_CHECK kiln_err kiln_aws_credentials_copy(struct kiln_aws_credentials *dst,
                                                   const struct kiln_aws_credentials *src);

/* One name/value pair; both unencoded (raw bytes). */
struct kiln_aws_pair {
  const char *name;
  const char *value;
};

struct kiln_sigv4_request {
  const char *method;
  const char *path; /* unencoded, starting with '/' */
  const struct kiln_aws_pair *query;
  size_t nquery;
  const struct kiln_aws_pair *headers; /* must include host; names in any case */
  size_t nheaders;
  const char *payload_hash; /* hex SHA-256 of the body, or KILN_SIGV4_UNSIGNED_PAYLOAD */
};

struct kiln_sigv4_params {
  const char *region;
  const char *service;
  time_t when;
  int normalize_path;     /* every service but S3: remove "." and ".." segments and "//" */
  int add_content_sha256; /* add and sign x-amz-content-sha256 (S3 requires it) */
  int omit_session_token; /* sign without x-amz-security-token, append it afterwards */
  long expires_seconds;   /* presigned URLs only */
};

/* Every step's result, owned by the caller (kiln_sigv4_result_clear). For header signing,
 * add_headers are the headers the request must carry in addition to its own (x-amz-date,
 * x-amz-content-sha256, x-amz-security-token, authorization). For presigning, query is the full
 * encoded query string of the presigned URL. */
struct kiln_sigv4_result {
  char *canonical_request;
  char *string_to_sign;
  char signature[65];
  char amz_date[17];
  struct kiln_aws_pair add_headers[4]; /* values owned; names are literals */
  size_t nadd_headers;
  char *query;
};
void kiln_sigv4_result_clear(struct kiln_sigv4_result *r);

KILN_MUST_CHECK kiln_err kiln_sigv4_sign(const struct kiln_sigv4_request *req,
                                         const struct kiln_sigv4_params *p,
                                         const struct kiln_aws_credentials *creds,
                                         struct kiln_sigv4_result *out, struct kiln_error *err);
KILN_MUST_CHECK kiln_err kiln_sigv4_presign(const struct kiln_sigv4_request *req,
                                            const struct kiln_sigv4_params *p,
                                            const struct kiln_aws_credentials *creds,
                                            struct kiln_sigv4_result *out, struct kiln_error *err);

/* URI-encode per SigV4: unreserved characters (A-Z a-z 0-9 - _ . ~) kept, everything else %XX
 * upper case; '/' kept when keep_slash. Appends to a kiln_buf. */
struct kiln_buf;
kiln_err kiln_aws_uri_encode(struct kiln_buf *out, const char *s, size_t len, int keep_slash);
/* Decode %XX escapes (and nothing else) into a new string. NULL on a bad escape or OOM. */
char *kiln_aws_uri_decode(const char *s, size_t len);
/* "YYYYMMDDTHHMMSSZ" for t (UTC) into out[17]. */
void kiln_aws_amz_date(time_t t, char out[17]);
/* Hex SHA-256 of data into out[65]. */
void kiln_aws_sha256_hex(const void *data, size_t len, char out[65]);

#endif
