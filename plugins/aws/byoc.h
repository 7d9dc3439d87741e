/* The BYOC resources of a deployment as values the actions share: the network, IAM and fleet
 * states that the resource modules (res_*.c, listed in resources.c) find and converge one kind
 * each, and what deploy (fleet.c) and update-policy (iam.c, ci_role.c) do with them. */
#ifndef KILN_AWS_BYOC_H
#define KILN_AWS_BYOC_H

#include <stddef.h>

#include "awsenv.h"

#define KILN_MAX_SUBNETS 3
#define KILN_MAX_PORTS 16
#define KILN_MAX_INSTANCES 16
/* A release's PCRs, recorded with it: the measurements' names and the instance tag keys the
 * launch template gives them (with kiln:eif-key and kiln:eif-sha256), so status reads what a
 * version runs from the version itself. */
#define KILN_RELEASE_PCRS 4
extern const char *const kiln_release_pcr_names[KILN_RELEASE_PCRS];
extern const char *const kiln_release_pcr_tags[KILN_RELEASE_PCRS];
#define KILN_TAG_EIF_KEY "kiln:eif-key"
#define KILN_TAG_EIF_SHA256 "kiln:eif-sha256"

struct kiln_network {
  char *vpc_id;
  int vpc_reused; /* the user's VPC (VPC_ID): never created or deleted by kiln */
  char *subnet_ids[KILN_MAX_SUBNETS];
  char subnet_azs[KILN_MAX_SUBNETS][32];
  int subnet_public[KILN_MAX_SUBNETS]; /* MapPublicIpOnLaunch */
  int subnet_associated[KILN_MAX_SUBNETS];
  size_t nsubnets;
  char *igw_id;
  int igw_attached;
  char *route_table_id;
  int default_route;
  char *associations[KILN_MAX_SUBNETS * 2]; /* the route table's subnet association ids */
  size_t nassociations;
  char *sg_id;
  int ports[KILN_MAX_PORTS]; /* ingress ports open now */
  size_t nports;
};
KILN_MUST_CHECK kiln_err kiln_network_find(struct kiln_awsenv *env, struct kiln_network *net,
                                           struct kiln_error *err);
/* The parts of kiln_network_find, each in its resource module (after the VPC's, each does
 * nothing without net->vpc_id). */
KILN_MUST_CHECK kiln_err kiln_network_find_vpc(struct kiln_awsenv *env, struct kiln_network *net,
                                               struct kiln_error *err);
KILN_MUST_CHECK kiln_err kiln_network_find_subnets(struct kiln_awsenv *env,
                                                   struct kiln_network *net,
                                                   struct kiln_error *err);
KILN_MUST_CHECK kiln_err kiln_network_find_routes(struct kiln_awsenv *env, struct kiln_network *net,
                                                  struct kiln_error *err);
KILN_MUST_CHECK kiln_err kiln_network_find_sg(struct kiln_awsenv *env, struct kiln_network *net,
                                              struct kiln_error *err);
void kiln_network_clear(struct kiln_network *n);

/* The EIF bucket: private, public access blocked, versioned, encrypted, incomplete multipart
 * uploads aborted after a day, tagged, policy limited to the account. */
KILN_MUST_CHECK kiln_err kiln_bucket_ensure(struct kiln_awsenv *env, struct kiln_error *err);
KILN_MUST_CHECK kiln_err kiln_bucket_exists(struct kiln_awsenv *env, int *exists,
                                            struct kiln_error *err);
/* The value of the bucket's deployment tag in `owner` (size n; empty when untagged). */
KILN_MUST_CHECK kiln_err kiln_bucket_tag(struct kiln_awsenv *env, char *owner, size_t n,
                                         struct kiln_error *err);

struct kiln_iam {
  int instance_role;
  int instance_role_policy;
  char *instance_policy; /* the instance role's policy now (JSON text), NULL when none */
  int instance_profile;
  int profile_has_role;
  int deploy_user;
  char *deploy_policy; /* the policy attached now (JSON text), NULL when none */
  int deploy_keys;     /* access keys the deploy user has */
};
KILN_MUST_CHECK kiln_err kiln_iam_find(struct kiln_awsenv *env, struct kiln_iam *iam,
                                       struct kiln_error *err);
/* The largest Auto Scaling group the deploy policy lets UpdateAutoScalingGroup ask for
 * (autoscaling:MaxSize): deploy sets MaxSize to twice the instance count, at most 16. */
#define KILN_POLICY_MAX_GROUP_SIZE (2 * KILN_MAX_INSTANCES)
/* What the deploy policy names besides the deployment's names: its network, launch template and
 * pinned AMI. A missing VPC, subnet, security group or launch template refuses the render (no
 * silent "*"), except in a preview (print-policy before setup, a plan), which shows
 * placeholders. */
struct kiln_policy_scope {
  const char *vpc_id;
  char *const *subnet_ids;
  size_t nsubnets;
  const char *sg_id;
  const char *launch_template_id;
  const char *pinned_ami; /* /aws/ami, or NULL: Amazon's images only */
  int preview;
};
/* The scope of the deployment's network and launch template as found (opts: the aws stage's
 * options, for /aws/ami). */
void kiln_policy_scope_of(struct kiln_policy_scope *s, const struct kiln_network *net,
                          const char *lt_id, const cJSON *opts, int preview);
/* Render the deploy policy for this deployment (caller frees). */
KILN_MUST_CHECK kiln_err kiln_iam_render_policy(struct kiln_awsenv *env,
                                                const struct kiln_policy_scope *scope,
                                                char **policy, struct kiln_error *err);
/* Instance role + profile (and its policy converged), deploy user + policy; a new access key
 * written 0600 to credentials_file when the file does not exist yet (NULL: no key). */
KILN_MUST_CHECK kiln_err kiln_iam_ensure(struct kiln_awsenv *env, struct kiln_iam *iam,
                                         const struct kiln_policy_scope *scope,
                                         const char *credentials_file, struct kiln_error *err);
void kiln_iam_clear(struct kiln_iam *iam);

/* How many instances run and how traffic reaches them: kiln.json /aws/count, max_count,
 * load_balancer, health_path, health_port, static_addresses, warmup_seconds,
 * rollout_timeout_seconds, checked together. */
struct kiln_scale {
  int count;               /* 0 = parked */
  int max_count;           /* the group's MaxSize */
  int nlb;                 /* load_balancer "nlb" */
  const char *health_path; /* NULL: TCP health checks */
  int health_port;
  int static_addresses;
  int warmup_seconds;
  int rollout_timeout_seconds;
};
/* From the stage options; ingress: the public ports of /enclave/ports (without the attestation
 * port). Errors name the kiln.json field and what to do. */
KILN_MUST_CHECK kiln_err kiln_scale_from_options(const cJSON *opts, const int *ingress,
                                                 size_t ningress, struct kiln_scale *s,
                                                 struct kiln_error *err);

/* What to run: from the sizing, s3-object and eif artifacts. */
struct kiln_release {
  const char *instance_type;
  int cpus;
  long long memory_mib;
  const char *eif_key;
  const char *eif_sha256;
  const char *ami; /* NULL: latest Amazon Linux 2023 from SSM */
  int ports[KILN_MAX_PORTS];
  size_t nports;
  int count; /* instances (default 1; 0 = parked) */
  int debug;
  const char *kiln_host_key, *kiln_host_sha256; /* kiln-host in the bucket */
  char *host_conf;                              /* kiln-host's configuration (owned) */
  const char *pcrs[KILN_RELEASE_PCRS]; /* PCR0, PCR1, PCR2, PCR8 of the EIF (NULL: unknown) */
  struct kiln_scale scale;
};

/* One instance of the group as status and the rollout see it. */
struct kiln_member {
  char *id;
  char *lt_version; /* the launch template version it was launched from */
  char *lifecycle;  /* InService, Pending, Terminating... */
  char *health;     /* the group's view: Healthy / Unhealthy */
  char *zone;
  char *eif_sha256;    /* from its kiln:eif-sha256 tag */
  char *target_health; /* nlb: healthy, initial, unhealthy, unused... (worst over the target groups)
                        */
};

struct kiln_fleet {
  char *lt_id;
  long lt_latest; /* newest version number */
  long lt_default;
  char *lt_user_data; /* of the newest version */
  char *eif_key;      /* the EIF that version runs (from its instance tags) */
  char *eif_sha256;
  char *pcrs[KILN_RELEASE_PCRS];
  char *lt_instance_type;
  char *lt_image_id;
  int lt_enclave;
  int asg_exists;
  char *asg_lt_version; /* the version the ASG launches */
  int asg_desired;
  char *instance_ids[KILN_MAX_INSTANCES];
  size_t ninstances;
  char *eip_allocation;
  char *eip_address;
  char *eip_instance;
  char *refresh_status;
  char *refresh_id;
  char *previous_lt_version; /* the version before the running one, from the newest refresh */
  char *asg_health_type;     /* EC2 or ELB */
  int asg_grace;
  int asg_max;
  char *target_groups[KILN_MAX_PORTS * 2]; /* ARNs attached to the group */
  size_t ntarget_groups;
  struct kiln_member members[KILN_MAX_INSTANCES];
  size_t nmembers;
};

/* The load balancer side of a deployment (nlb mode): its target groups (one per public port),
 * the Network Load Balancer and its listeners, and its static addresses. Found by name and the
 * deployment tag. */
struct kiln_target_group {
  char *arn;
  char *name;
  int port;
  char *health_protocol; /* TCP or HTTP */
  char *health_path;
  int health_port;
};
struct kiln_lb {
  struct kiln_target_group tgs[KILN_MAX_PORTS * 2];
  size_t ntgs;
  char *arn;
  char *dns_name;
  char *lb_state;
  size_t nzones;
  char *listener_arns[KILN_MAX_PORTS * 2];
  int listener_ports[KILN_MAX_PORTS * 2];
  char *listener_targets[KILN_MAX_PORTS * 2];
  size_t nlisteners;
  char *static_allocations[KILN_MAX_SUBNETS]; /* the NLB's Elastic IPs (tag Name <asg>-nlb) */
  char *static_ips[KILN_MAX_SUBNETS];
  size_t nstatic;
  int lb_has_static; /* the NLB's zones carry Elastic IPs */
};
void kiln_lb_clear(struct kiln_lb *lb);
/* Target group name for a port: <id>-<port>, or a shortened id with a digest when longer than
 * ELB's 32 characters (buffer of 33). */
void kiln_lb_target_group_name(const char *id, int port, char *name, size_t n);
/* The deployment's target groups (tag), load balancer (name, its tag checked) and listeners. */
KILN_MUST_CHECK kiln_err kiln_lb_find_target_groups(struct kiln_awsenv *env, struct kiln_lb *lb,
                                                    struct kiln_error *err);
/* The group's members with their EIF (instance tags) and target health (when the group has
 * target groups); replaces f->members. */
KILN_MUST_CHECK kiln_err kiln_fleet_find_members(struct kiln_awsenv *env, struct kiln_fleet *f,
                                                 struct kiln_error *err);
void kiln_fleet_clear_members(struct kiln_fleet *f);
/* The members' state for people and for the deployment document. */
cJSON *kiln_fleet_members_json(const struct kiln_fleet *f);
/* Return the group to launch template version `to` (NULL: the one before the running one):
 * the template's default version, the group's version and an instance refresh, waited for. */
KILN_MUST_CHECK kiln_err kiln_fleet_rollback(struct kiln_awsenv *env, struct kiln_fleet *f,
                                             const struct kiln_scale *scale, const char *to,
                                             struct kiln_error *err);
KILN_MUST_CHECK kiln_err kiln_fleet_find(struct kiln_awsenv *env, struct kiln_fleet *f,
                                         struct kiln_error *err);
/* The policy document in element `element` of an IAM answer (IAM URL-encodes it), parsed; NULL
 * when absent. */
cJSON *kiln_iam_document(const struct kiln_xml *doc, const char *element);
/* Whether IAM entity `name` carries the deployment tag (action ListRoleTags/ListUserTags, key
 * RoleName/UserName). */
KILN_MUST_CHECK kiln_err kiln_iam_tagged(struct kiln_awsenv *env, const char *action,
                                         const char *key, const char *name, int *tagged,
                                         struct kiln_error *err);

/* The deploy role CI systems assume with their OIDC token (no stored keys): trusted for one
 * GitHub repository or GitLab project, with the same tag-scoped policy as the deploy user. */
struct kiln_ci_trust {
  char *host;    /* OIDC issuer host: token.actions.githubusercontent.com, gitlab.com */
  char *subject; /* the token's sub: repo:OWNER/REPO:ref:REF | :environment:NAME (| :* only with
                    ci_any_ref), project_path:GROUP/PROJECT:ref_type:TYPE:ref:REF (| :*) */
};
/* From the stage options github_repo (+ github_ref | github_environment | ci_any_ref) /
 * gitlab_project (+ gitlab_ref [gitlab_ref_type] | ci_any_ref, gitlab_url); host NULL when neither.
 * A repository without a narrowing option is refused (every ref only when asked for). */
KILN_MUST_CHECK kiln_err kiln_ci_trust_from_options(const cJSON *opts, struct kiln_ci_trust *t,
                                                    struct kiln_error *err);
void kiln_ci_trust_clear(struct kiln_ci_trust *t);
/* Create or converge the role (trust NULL: only refresh an existing role's policy); *role_arn
 * is the role's ARN when it exists (caller frees). */
KILN_MUST_CHECK kiln_err kiln_ci_role_ensure(struct kiln_awsenv *env,
                                             const struct kiln_ci_trust *trust,
                                             const struct kiln_policy_scope *scope, char **role_arn,
                                             struct kiln_error *err);
/* The role's ARN when it exists (*role_arn NULL otherwise; caller frees). Read only. */
KILN_MUST_CHECK kiln_err kiln_ci_role_arn(struct kiln_awsenv *env, char **role_arn,
                                          struct kiln_error *err);
/* Teardown: delete the role when it exists and carries the deployment tag (the account's OIDC
 * provider stays: other roles may trust it). */
KILN_MUST_CHECK kiln_err kiln_ci_role_delete(struct kiln_awsenv *env, struct kiln_error *err);

/* The statements update-policy adds, removes or changes, as [{change, statement, old, new}]
 * (statements matched by Sid, else by position), and as lines for the terminal (caller frees). */
cJSON *kiln_policy_diff(const cJSON *old, const cJSON *now);
char *kiln_policy_diff_text(const cJSON *changes);
/* A Nitro Enclave-capable type the region offers (error naming the region when none). */
KILN_MUST_CHECK kiln_err kiln_offerings_enclave_type(struct kiln_awsenv *env, const char **type,
                                                     struct kiln_error *err);
/* Error unless one of the network's subnet zones offers `type`. */
KILN_MUST_CHECK kiln_err kiln_offerings_check_zones(struct kiln_awsenv *env,
                                                    const struct kiln_network *net,
                                                    const char *type, struct kiln_error *err);
/* The parts of kiln_fleet_find, each in its resource module (res_launch_template.c, res_asg.c,
 * res_eip.c). */
KILN_MUST_CHECK kiln_err kiln_fleet_find_template(struct kiln_awsenv *env, struct kiln_fleet *f,
                                                  struct kiln_error *err);
KILN_MUST_CHECK kiln_err kiln_fleet_find_group(struct kiln_awsenv *env, struct kiln_fleet *f,
                                               struct kiln_error *err);
KILN_MUST_CHECK kiln_err kiln_fleet_find_address(struct kiln_awsenv *env, struct kiln_fleet *f,
                                                 struct kiln_error *err);
/* The latest Amazon Linux 2023 AMI (SSM), caller frees. */
KILN_MUST_CHECK kiln_err kiln_fleet_latest_ami(struct kiln_awsenv *env, char **ami,
                                               struct kiln_error *err);
/* LaunchTemplateData.* for a release (only instance_type is read for setup's placeholder). */
void kiln_fleet_template_data(struct kiln_awsenv *env, const struct kiln_network *net,
                              const struct kiln_release *r, const char *ami, const char *user_data,
                              struct kiln_aws_params *p);
/* A new Auto Scaling group of n instances (0 at setup) from template version ver in the subnets
 * zones (comma-separated). */
KILN_MUST_CHECK kiln_err kiln_fleet_create_group(struct kiln_awsenv *env, struct kiln_fleet *f,
                                                 const char *ver, int n, const char *zones,
                                                 struct kiln_error *err);
/* The Elastic IP: allocated when missing, associated with a serving instance when there is one. */
KILN_MUST_CHECK kiln_err kiln_fleet_ensure_address(struct kiln_awsenv *env, struct kiln_fleet *f,
                                                   struct kiln_error *err);
KILN_MUST_CHECK kiln_err kiln_fleet_deploy(struct kiln_awsenv *env, const struct kiln_network *net,
                                           const struct kiln_release *r, struct kiln_fleet *f,
                                           struct kiln_error *err);
void kiln_fleet_clear(struct kiln_fleet *f);

#endif
