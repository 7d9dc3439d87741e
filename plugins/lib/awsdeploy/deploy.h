/* BYOC deployment model shared by the aws stage: deployment identity, resource names and tags,
 * the scoped IAM policy and the instance user data, all rendered from templates in share/. */
#ifndef KILN_AWS_DEPLOY_H
#define KILN_AWS_DEPLOY_H

#include <cjson/cJSON.h>

#include "util/error.h"

#define KILN_DEFAULT_TAG_KEY "caution:deployment-id"
#define KILN_DEPLOYMENT_ID_MAX 32

/* Where the deployment id and VPC id come from, highest precedence first: kiln.json
 * /aws/deployment_id, $KILN_DEPLOYMENT_ID, $DEPLOYMENT_ID, then DEPLOYMENT_ID in <app>/.env (and
 * /aws/vpc_id, $VPC_ID, VPC_ID in .env). Strings are owned; NULL when unset. */
struct kiln_deployment {
  char *id;
  const char *id_source; /* "kiln.json /aws/deployment_id", "$KILN_DEPLOYMENT_ID", ... */
  char *vpc_id;
  char *tag_key; /* /aws/tag_key or caution:deployment-id */
  char *region;
  char *bucket; /* /aws/bucket: the EIF bucket's name when not the derived one */
};

KILN_MUST_CHECK kiln_err kiln_deployment_resolve(const cJSON *config, const char *app_dir,
                                                 struct kiln_deployment *out,
                                                 struct kiln_error *err);
void kiln_deployment_clear(struct kiln_deployment *d);
/* 1..32 characters of [a-z0-9-], starting and ending with a letter or digit (used in bucket,
 * role and group names and as a tag value). The message says which character is wrong. */
KILN_MUST_CHECK kiln_err kiln_deployment_id_check(const char *id, const char *source,
                                                  struct kiln_error *err);
/* A new random id "kiln-<10 hex digits>" (caller frees). */
char *kiln_deployment_id_generate(void);
/* Read KEY from a dotenv file (KEY=VALUE lines, optional quotes, # comments); *out is NULL when
 * the file or the key is absent. */
KILN_MUST_CHECK kiln_err kiln_dotenv_get(const char *path, const char *key, char **out,
                                         struct kiln_error *err);

/* Names of the deployment's resources, derived from the id (and account for the bucket). */
struct kiln_deployment_names {
  char *bucket;          /* kiln-<id>-<account> (globally unique, DNS-safe) */
  char *asg;             /* kiln-<id> */
  char *launch_template; /* kiln-<id> */
  char *security_group;  /* kiln-<id> */
  char *instance_role;   /* kiln-<id>-instance (also the instance profile name) */
  char *deploy_user;     /* kiln-<id>-deploy: the scoped deploy IAM user */
};
KILN_MUST_CHECK kiln_err kiln_deployment_names_make(const char *id, const char *account_id,
                                                    struct kiln_deployment_names *out,
                                                    struct kiln_error *err);
void kiln_deployment_names_clear(struct kiln_deployment_names *n);

/* Replace every {{name}} in text with values[name] (strings or numbers). json_strings: the
 * placeholders stand inside JSON strings, so values are escaped for that; otherwise values must be
 * shell-safe words ([A-Za-z0-9._/:@+=-] and spaces). Unknown or missing names are errors naming
 * the template. The result is owned by the caller. */
KILN_MUST_CHECK kiln_err kiln_template_render(const char *name, const char *text,
                                              const cJSON *values, int json_strings, char **out,
                                              struct kiln_error *err);
/* Load share/<relative> and render it; JSON templates (*.json.tmpl) are checked to parse. */
KILN_MUST_CHECK kiln_err kiln_template_render_file(const char *share_dir, const char *relative,
                                                   const cJSON *values, char **out,
                                                   struct kiln_error *err);

/* The values every policy template uses ({{deployment_id}}, {{tag_key}}, {{bucket}}, {{region}},
 * {{account_id}}, {{asg_name}}, {{instance_role}}, {{vpc_id}}); caller frees. */
cJSON *kiln_policy_values(const struct kiln_deployment *d, const struct kiln_deployment_names *n,
                          const char *account_id, const char *vpc_id);

/* What the instance needs to run the enclave. */
struct kiln_userdata_params {
  const char *deployment_id;
  const char *region;
  const char *bucket;
  const char *eif_key;
  const char *eif_sha256; /* 64 hex digits */
  int cpu_count;
  long long memory_mib;
  const char *kiln_host_key;    /* kiln-host in the bucket (content-addressed) */
  const char *kiln_host_sha256; /* 64 hex digits */
  const char *host_conf;        /* kiln-host's configuration (kiln_enclave_host_conf) */
  int debug;
};
/* Render share/aws/userdata.sh.tmpl; *script is the shell text, *base64 (optional) the
 * LaunchTemplateData.UserData value. Both owned by the caller. */
KILN_MUST_CHECK kiln_err kiln_userdata_render(const char *share_dir,
                                              const struct kiln_userdata_params *p, char **script,
                                              char **base64, struct kiln_error *err);

#endif
