/* The AWS CLI's shared configuration: ~/.aws/config and ~/.aws/credentials (INI files), the active
 * profile and the settings kiln reads from it (region, endpoints, retries, credentials). */
#ifndef KILN_AWS_PROFILE_H
#define KILN_AWS_PROFILE_H

#include "util/error.h"

/* One profile's settings, merged from both files (the credentials file wins for keys it has).
 * Every string is owned; NULL when absent. */
struct kiln_aws_profile {
  char *name;
  char *region;
  char *aws_access_key_id;
  char *aws_secret_access_key;
  char *aws_session_token;
  char *credential_process;
  char *role_arn;
  char *source_profile;
  char *credential_source; /* Environment, Ec2InstanceMetadata, EcsContainer */
  char *role_session_name;
  char *external_id;
  char *web_identity_token_file;
  char *endpoint_url;
  char *services; /* name of a [services NAME] section */
  char *max_attempts;
  char *s3_addressing_style; /* from the "s3 =" sub-section: path, virtual, auto */
  int found;                 /* 1 when either file had a section for this profile */
};

/* Load profile `name` (NULL: $AWS_PROFILE, else "default") from $AWS_CONFIG_FILE (default
 * ~/.aws/config, sections "[profile NAME]" or "[default]") and $AWS_SHARED_CREDENTIALS_FILE
 * (default ~/.aws/credentials, sections "[NAME]"). Missing files are not errors; a syntax error
 * names the file and line. */
KILN_MUST_CHECK kiln_err kiln_aws_profile_load(const char *name, struct kiln_aws_profile *out,
                                               struct kiln_error *err);
void kiln_aws_profile_clear(struct kiln_aws_profile *p);

/* The endpoint_url for service id `service` ("s3", "ec2", ...) from the [services NAME] section
 * named by the profile, or NULL (caller frees). */
char *kiln_aws_profile_service_endpoint(const struct kiln_aws_profile *p, const char *service);

#endif
