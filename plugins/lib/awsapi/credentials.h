/* The credential chain, in the AWS CLI's order: environment, shared profile (static keys,
 * credential_process, role_arn + source_profile/credential_source via STS AssumeRole,
 * web_identity_token_file), web identity from the environment, container credentials, EC2
 * instance metadata (IMDSv2). Expiring credentials are refreshed by the client. */
#ifndef KILN_AWS_CREDENTIALS_H
#define KILN_AWS_CREDENTIALS_H

#include "profile.h"
#include "sigv4.h"

struct kiln_aws_client;

/* Resolve credentials for the client's profile. Every source that was tried and why it did not
 * apply is kept so the "no credentials" message can list them. Network sources (STS, container,
 * IMDS) use the client's HTTP settings. */
KILN_MUST_CHECK kiln_err kiln_aws_credentials_resolve(struct kiln_aws_client *client,
                                                      const struct kiln_aws_profile *profile,
                                                      struct kiln_aws_credentials *out,
                                                      struct kiln_error *err);

/* Parse the JSON that credential_process programs, container endpoints and IMDS return
 * (AccessKeyId, SecretAccessKey, Token or SessionToken, Expiration in ISO 8601). */
KILN_MUST_CHECK kiln_err kiln_aws_credentials_from_json(const char *json, const char *source,
                                                        struct kiln_aws_credentials *out,
                                                        struct kiln_error *err);

/* "2026-11-24T12:00:00Z" (fractional seconds and +00:00 accepted) to time_t; -1 when malformed. */
time_t kiln_aws_parse_iso8601(const char *s);

#endif
