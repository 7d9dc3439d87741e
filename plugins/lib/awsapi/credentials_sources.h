/* Credential sources that run a program or ask a local HTTP endpoint: credential_process, container
 * credentials (ECS/EKS style), EC2 instance metadata (IMDSv2), and a profile's
 * credential_source. Used by the credential chain (credentials.c). */
#ifndef KILN_AWS_CREDENTIALS_SOURCES_H
#define KILN_AWS_CREDENTIALS_SOURCES_H

#include "credentials.h"

/* Run command with /bin/sh -c (stdout <= 64 KiB, 60 s at most) and parse its Version 1 JSON. */
KILN_MUST_CHECK kiln_err kiln_aws_credentials_from_process(const char *command, const char *source,
                                                           struct kiln_aws_credentials *out,
                                                           struct kiln_error *err);
/* KILN_E_NOT_FOUND when no AWS_CONTAINER_CREDENTIALS_*_URI is set. */
KILN_MUST_CHECK kiln_err kiln_aws_credentials_from_container(struct kiln_aws_client *c,
                                                             struct kiln_aws_credentials *out,
                                                             struct kiln_error *err);
KILN_MUST_CHECK kiln_err kiln_aws_credentials_from_imds(struct kiln_aws_client *c,
                                                        struct kiln_aws_credentials *out,
                                                        struct kiln_error *err);
/* credential_source = Environment | Ec2InstanceMetadata | EcsContainer */
KILN_MUST_CHECK kiln_err kiln_aws_credentials_from_source(struct kiln_aws_client *c,
                                                          const char *name,
                                                          struct kiln_aws_credentials *out,
                                                          struct kiln_error *err);

#endif
