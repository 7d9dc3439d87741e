/* The running side of a deployment: the launch template (a new version only when the instance
 * type, AMI or user data changed), the Auto Scaling group (created, or moved to the new version
 * with a rolling instance refresh) and the Elastic IP on a serving instance. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rollout.h"
#include "util/buf.h"

#define AL2023_PARAMETER "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
/* The arm64 AMI for Graviton parents (kiln.json /arch "aarch64"). */
#define AL2023_PARAMETER_ARM64                                                                     \
  "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64"

const char *const kiln_release_pcr_names[KILN_RELEASE_PCRS] = {"PCR0", "PCR1", "PCR2", "PCR8"};
const char *const kiln_release_pcr_tags[KILN_RELEASE_PCRS] = {"kiln:pcr0", "kiln:pcr1", "kiln:pcr2",
                                                              "kiln:pcr8"};

void kiln_fleet_clear(struct kiln_fleet *f)
{
  for (int i = 0; i < KILN_RELEASE_PCRS; i++)
    free(f->pcrs[i]);
  free(f->lt_id);
  free(f->lt_user_data);
  free(f->eif_key);
  free(f->eif_sha256);
  free(f->lt_instance_type);
  free(f->lt_image_id);
  free(f->asg_lt_version);
  for (size_t i = 0; i < f->ninstances; i++)
    free(f->instance_ids[i]);
  free(f->eip_allocation);
  free(f->eip_address);
  free(f->eip_instance);
  free(f->refresh_status);
  free(f->refresh_id);
  free(f->previous_lt_version);
  free(f->asg_health_type);
  for (size_t i = 0; i < f->ntarget_groups; i++)
    free(f->target_groups[i]);
  kiln_fleet_clear_members(f);
  memset(f, 0, sizeof(*f));
}

kiln_err kiln_fleet_find(struct kiln_awsenv *env, struct kiln_fleet *f, struct kiln_error *err)
{
  memset(f, 0, sizeof(*f));
  kiln_err rc = kiln_fleet_find_template(env, f, err);
  if (rc == KILN_OK)
    rc = kiln_fleet_find_group(env, f, err);
  if (rc == KILN_OK)
    rc = kiln_fleet_find_address(env, f, err);
  return rc;
}

kiln_err kiln_fleet_latest_ami(struct kiln_awsenv *env, char **ami, struct kiln_error *err)
{
  cJSON *body = cJSON_CreateObject(), *out = NULL;
  const cJSON *arch = cJSON_GetObjectItemCaseSensitive(env->config, "arch");
  const char *parameter = cJSON_IsString(arch) && strcmp(arch->valuestring, "aarch64") == 0
                              ? AL2023_PARAMETER_ARM64
                              : AL2023_PARAMETER;
  cJSON_AddStringToObject(body, "Name", parameter);
  kiln_err rc = kiln_aws_json(env->c, "ssm", "AmazonSSM.GetParameter", body, &out, NULL, err);
  cJSON_Delete(body);
  if (rc != KILN_OK)
    return kiln_error_prefix(err, "finding the latest Amazon Linux 2023 AMI (pin one with "
                                  "/aws/ami in kiln.json)");
  const cJSON *v =
      cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(out, "Parameter"), "Value");
  if (!cJSON_IsString(v))
    rc = kiln_error_set(err, KILN_E_REMOTE, "SSM GetParameter %s: no value", parameter);
  else if (!(*ami = strdup(v->valuestring)))
    rc = kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  cJSON_Delete(out);
  return rc;
}

/* LaunchTemplateData.* for this release; its instances are tagged with the EIF and its PCRs. */
void kiln_fleet_template_data(struct kiln_awsenv *env, const struct kiln_network *net,
                              const struct kiln_release *r, const char *ami, const char *user_data,
                              struct kiln_aws_params *p)
{
  const char *tags[3 + 2 + KILN_RELEASE_PCRS][2] = {
      {env->dep.tag_key, env->dep.id}, {"kiln:managed", "true"}, {"Name", env->names.asg}};
  int ntags = 3;
  if (r->eif_key && r->eif_sha256) {
    tags[ntags][0] = KILN_TAG_EIF_KEY;
    tags[ntags++][1] = r->eif_key;
    tags[ntags][0] = KILN_TAG_EIF_SHA256;
    tags[ntags++][1] = r->eif_sha256;
  }
  for (int i = 0; i < KILN_RELEASE_PCRS; i++)
    if (r->pcrs[i]) {
      tags[ntags][0] = kiln_release_pcr_tags[i];
      tags[ntags++][1] = r->pcrs[i];
    }
  kiln_aws_params_add(p, "LaunchTemplateData.ImageId", ami);
  kiln_aws_params_add(p, "LaunchTemplateData.InstanceType", r->instance_type);
  kiln_aws_params_add(p, "LaunchTemplateData.IamInstanceProfile.Name", env->names.instance_role);
  kiln_aws_params_add(p, "LaunchTemplateData.SecurityGroupId.1", net->sg_id);
  kiln_aws_params_add(p, "LaunchTemplateData.UserData", user_data);
  kiln_aws_params_add(p, "LaunchTemplateData.EnclaveOptions.Enabled", "true");
  kiln_aws_params_add(p, "LaunchTemplateData.MetadataOptions.HttpTokens", "required");
  static const char *const types[] = {"instance", "volume"};
  for (int t = 0; t < 2; t++) {
    char key[96];
    snprintf(key, sizeof(key), "LaunchTemplateData.TagSpecification.%d.ResourceType", t + 1);
    kiln_aws_params_add(p, key, types[t]);
    for (int i = 0; i < (t == 0 ? ntags : 3); i++) {
      snprintf(key, sizeof(key), "LaunchTemplateData.TagSpecification.%d.Tag.%d.Key", t + 1, i + 1);
      kiln_aws_params_add(p, key, tags[i][0]);
      snprintf(key, sizeof(key), "LaunchTemplateData.TagSpecification.%d.Tag.%d.Value", t + 1,
               i + 1);
      kiln_aws_params_add(p, key, tags[i][1]);
    }
  }
}

/* Make the template's newest version describe this release; *version gets its number. */
static kiln_err ensure_template(struct kiln_awsenv *env, const struct kiln_network *net,
                                const struct kiln_release *r, struct kiln_fleet *f, long *version,
                                struct kiln_error *err)
{
  char *ami = NULL, *script = NULL, *user_data = NULL;
  struct kiln_aws_params p = {0};
  struct kiln_xml *doc = NULL;
  kiln_err rc = r->ami ? ((ami = strdup(r->ami)) ? KILN_OK : KILN_E_NOMEM)
                       : kiln_fleet_latest_ami(env, &ami, err);
  struct kiln_userdata_params up = {.deployment_id = env->dep.id,
                                    .region = env->dep.region,
                                    .bucket = env->names.bucket,
                                    .eif_key = r->eif_key,
                                    .eif_sha256 = r->eif_sha256,
                                    .cpu_count = r->cpus,
                                    .memory_mib = r->memory_mib,
                                    .kiln_host_key = r->kiln_host_key,
                                    .kiln_host_sha256 = r->kiln_host_sha256,
                                    .host_conf = r->host_conf,
                                    .debug = r->debug};
  if (rc == KILN_OK)
    rc = kiln_userdata_render(env->share_dir, &up, &script, &user_data, err);
  if (rc != KILN_OK)
    goto out;
  int same = f->lt_id && f->lt_user_data && strcmp(f->lt_user_data, user_data) == 0 &&
             f->lt_instance_type && strcmp(f->lt_instance_type, r->instance_type) == 0 &&
             f->lt_image_id && strcmp(f->lt_image_id, ami) == 0 && f->lt_enclave;
  if (same) {
    kiln_awsenv_announce(env, "nothing", env->names.launch_template,
                         "version %ld runs this EIF on %s", f->lt_latest, r->instance_type);
    *version = f->lt_latest;
    goto out;
  }
  kiln_fleet_template_data(env, net, r, ami, user_data, &p);
  if (!f->lt_id) {
    kiln_awsenv_announce(env, "create", env->names.launch_template,
                         "launch template: %s, %s, enclave %d CPUs / %lld MiB", r->instance_type,
                         ami, r->cpus, r->memory_mib);
    kiln_aws_params_add(&p, "LaunchTemplateName", env->names.launch_template);
    kiln_awsenv_tag_spec(env, &p, 1, "launch-template", env->names.launch_template);
    rc = kiln_awsenv_mutate(env, "ec2", "CreateLaunchTemplate", &p, env->names.launch_template,
                            NULL, &doc, err);
    if (rc == KILN_OK && !env->dry_run)
      f->lt_id = kiln_awsenv_dup(kiln_awsenv_first(doc, "launchTemplateId"));
    *version = 1;
  } else {
    kiln_awsenv_announce(env, "update", env->names.launch_template,
                         "new version %ld: %s, %s, EIF %.12s…", f->lt_latest + 1, r->instance_type,
                         ami, r->eif_sha256);
    kiln_aws_params_add(&p, "LaunchTemplateId", f->lt_id);
    rc = kiln_awsenv_mutate(env, "ec2", "CreateLaunchTemplateVersion", &p,
                            env->names.launch_template, NULL, &doc, err);
    const char *num = doc ? kiln_awsenv_first(doc, "versionNumber") : NULL;
    *version = num ? atol(num) : f->lt_latest + 1;
    if (rc == KILN_OK) {
      struct kiln_aws_params m = {0};
      kiln_aws_params_add(&m, "LaunchTemplateId", f->lt_id);
      kiln_aws_params_addf(&m, "SetDefaultVersion", "%ld", *version);
      rc = kiln_awsenv_mutate(env, "ec2", "ModifyLaunchTemplate", &m, env->names.launch_template,
                              NULL, NULL, err);
      kiln_aws_params_clear(&m);
    }
  }
  kiln_xml_free(doc);
  if (rc == KILN_OK) {
    f->lt_latest = *version;
    free(f->lt_user_data);
    f->lt_user_data = strdup(user_data);
  }
out:
  kiln_aws_params_clear(&p);
  free(ami);
  free(script);
  free(user_data);
  return rc;
}

/* A new Auto Scaling group of n instances (0 at setup) from the template's version ver. */
kiln_err kiln_fleet_create_group(struct kiln_awsenv *env, struct kiln_fleet *f, const char *ver,
                                 int n, const char *zones, struct kiln_error *err)
{
  struct kiln_aws_params p = {0};
  kiln_awsenv_announce(env, "create", env->names.asg,
                       "Auto Scaling group: %d instance(s) from version %s", n, ver);
  kiln_aws_params_add(&p, "AutoScalingGroupName", env->names.asg);
  kiln_aws_params_add(&p, "LaunchTemplate.LaunchTemplateId", f->lt_id ? f->lt_id : "(new)");
  kiln_aws_params_add(&p, "LaunchTemplate.Version", ver);
  kiln_aws_params_addf(&p, "MinSize", "%d", n);
  kiln_aws_params_addf(&p, "MaxSize", "%d", n > 1 ? n * 2 : 2);
  kiln_aws_params_addf(&p, "DesiredCapacity", "%d", n);
  kiln_aws_params_add(&p, "VPCZoneIdentifier", zones);
  const char *tags[2][2] = {{env->dep.tag_key, env->dep.id}, {"kiln:managed", "true"}};
  for (int i = 0; i < 2; i++) {
    char key[64];
    snprintf(key, sizeof(key), "Tags.member.%d.Key", i + 1);
    kiln_aws_params_add(&p, key, tags[i][0]);
    snprintf(key, sizeof(key), "Tags.member.%d.Value", i + 1);
    kiln_aws_params_add(&p, key, tags[i][1]);
    snprintf(key, sizeof(key), "Tags.member.%d.PropagateAtLaunch", i + 1);
    kiln_aws_params_add(&p, key, "true");
  }
  static const char *const exists[] = {"AlreadyExists", NULL};
  kiln_err rc = kiln_awsenv_mutate(env, "autoscaling", "CreateAutoScalingGroup", &p, env->names.asg,
                                   exists, NULL, err);
  kiln_aws_params_clear(&p);
  if (rc == KILN_OK) {
    f->asg_exists = 1;
    free(f->asg_health_type);
    f->asg_health_type = strdup("EC2"); /* Auto Scaling's default */
    f->asg_desired = n;
    f->asg_max = n > 1 ? n * 2 : 2;
  }
  return rc;
}

/* The group's sizes: MinSize = DesiredCapacity = count, MaxSize = max_count. */
static kiln_err resize_group(struct kiln_awsenv *env, const struct kiln_scale *s,
                             const struct kiln_fleet *f, const char *version,
                             struct kiln_error *err)
{
  struct kiln_aws_params p = {0};
  if (s->count == 0)
    kiln_awsenv_announce(env, "update", env->names.asg, "park: %d -> 0 instances", f->asg_desired);
  else
    kiln_awsenv_announce(env, "update", env->names.asg, "%d -> %d instance(s) (at most %d)%s%s",
                         f->asg_desired, s->count, s->max_count, version ? ", version " : "",
                         version ? version : "");
  kiln_aws_params_add(&p, "AutoScalingGroupName", env->names.asg);
  /* Always a numbered version, also when only the sizes change: the deploy policy allows
   * UpdateAutoScalingGroup only with autoscaling:LaunchTemplateVersionSpecified = true. */
  const char *numbered = version ? version : f->asg_lt_version;
  if (numbered && strspn(numbered, "0123456789") == strlen(numbered) && *numbered) {
    kiln_aws_params_add(&p, "LaunchTemplate.LaunchTemplateId", f->lt_id ? f->lt_id : "(new)");
    kiln_aws_params_add(&p, "LaunchTemplate.Version", numbered);
  }
  kiln_aws_params_addf(&p, "MinSize", "%d", s->count);
  kiln_aws_params_addf(&p, "MaxSize", "%d", s->max_count);
  kiln_aws_params_addf(&p, "DesiredCapacity", "%d", s->count);
  kiln_err rc = kiln_awsenv_mutate(env, "autoscaling", "UpdateAutoScalingGroup", &p, env->names.asg,
                                   NULL, NULL, err);
  kiln_aws_params_clear(&p);
  return rc;
}

/* Sizes first (new instances come from the running version), then a health-gated refresh to
 * the new version; a group without instances moves to the version directly. */
static kiln_err ensure_group(struct kiln_awsenv *env, const struct kiln_network *net,
                             const struct kiln_release *r, struct kiln_fleet *f, long version,
                             struct kiln_error *err)
{
  const struct kiln_scale *s = &r->scale;
  struct kiln_buf zones = KILN_BUF_INIT;
  char ver[24];
  kiln_err rc = KILN_OK;
  snprintf(ver, sizeof(ver), "%ld", version);
  for (size_t i = 0; i < net->nsubnets; i++)
    kiln_buf_printf(&zones, "%s%s", i ? "," : "", net->subnet_ids[i]);
  int new_version = !f->asg_lt_version || strcmp(f->asg_lt_version, ver) != 0;
  int resized = f->asg_desired != s->count || (f->asg_max && f->asg_max != s->max_count);
  if (!f->asg_exists) {
    rc = kiln_fleet_create_group(env, f, ver, s->count, kiln_buf_str(&zones), err);
  } else if (new_version && (f->ninstances == 0 || s->count == 0)) {
    rc = resize_group(env, s, f, ver, err);
  } else if (new_version || resized) {
    char *previous = kiln_awsenv_dup(f->asg_lt_version);
    if (resized)
      rc = resize_group(env, s, f, NULL, err);
    if (rc == KILN_OK && new_version)
      rc = kiln_rollout_deploy(env, f, s, ver, previous, err);
    else if (rc == KILN_OK && !env->dry_run && s->count > 0)
      rc = kiln_rollout_wait_healthy(env, f, s->count, s->rollout_timeout_seconds, err);
    free(previous);
  } else {
    kiln_awsenv_announce(env, "nothing", env->names.asg, "runs version %s with %d instance(s)", ver,
                         s->count);
  }
  kiln_buf_free(&zones);
  return rc;
}

static int in_group(const struct kiln_fleet *f, const char *instance)
{
  for (size_t i = 0; instance && i < f->ninstances; i++)
    if (strcmp(f->instance_ids[i], instance) == 0)
      return 1;
  return 0;
}

kiln_err kiln_fleet_ensure_address(struct kiln_awsenv *env, struct kiln_fleet *f,
                                   struct kiln_error *err)
{
  struct kiln_aws_params p = {0};
  struct kiln_xml *doc = NULL;
  kiln_err rc = KILN_OK;
  if (!f->eip_allocation) {
    kiln_awsenv_announce(env, "create", "Elastic IP", "tagged %s=%s", env->dep.tag_key,
                         env->dep.id);
    kiln_aws_params_add(&p, "Domain", "vpc");
    kiln_awsenv_tag_spec(env, &p, 1, "elastic-ip", env->names.asg);
    rc = kiln_awsenv_mutate(env, "ec2", "AllocateAddress", &p, "allocating the Elastic IP", NULL,
                            &doc, err);
    kiln_aws_params_clear(&p);
    if (rc == KILN_OK && !env->dry_run) {
      f->eip_allocation = kiln_awsenv_dup(kiln_awsenv_first(doc, "allocationId"));
      f->eip_address = kiln_awsenv_dup(kiln_awsenv_first(doc, "publicIp"));
    }
    kiln_xml_free(doc);
  }
  if (rc != KILN_OK || in_group(f, f->eip_instance))
    return rc;
  const char *target = f->ninstances ? f->instance_ids[0] : NULL;
  if (!target)
    return KILN_OK; /* associated by the deploy that starts the first instance */
  kiln_awsenv_announce(env, "update", f->eip_address ? f->eip_address : "Elastic IP",
                       "associate with %s", target);
  kiln_aws_params_add(&p, "AllocationId", f->eip_allocation ? f->eip_allocation : "(new)");
  kiln_aws_params_add(&p, "InstanceId", target);
  kiln_aws_params_add(&p, "AllowReassociation", "true");
  rc = kiln_awsenv_mutate(env, "ec2", "AssociateAddress", &p, "the Elastic IP", NULL, NULL, err);
  kiln_aws_params_clear(&p);
  if (rc == KILN_OK) {
    free(f->eip_instance);
    f->eip_instance = strdup(target);
  }
  return rc;
}

kiln_err kiln_fleet_deploy(struct kiln_awsenv *env, const struct kiln_network *net,
                           const struct kiln_release *r, struct kiln_fleet *f,
                           struct kiln_error *err)
{
  long version = 0;
  if (!net->sg_id || net->nsubnets == 0)
    return kiln_error_set(err, KILN_E_NOT_FOUND,
                          "deployment %s has no network in %s of account %s (no tagged subnets "
                          "or security group): run `kiln setup` first, or use credentials of the "
                          "account and region the deployment was set up in",
                          env->dep.id, env->dep.region ? env->dep.region : "this region",
                          env->account_id);
  /* setup creates the launch template and the group: deploy (with the scoped credentials, which
   * may not create them) only versions and updates them */
  if ((!f->lt_id || !f->asg_exists) && !env->dry_run)
    return kiln_error_set(err, KILN_E_NOT_FOUND,
                          "deployment %s has no %s %s: creating it needs setup's rights, not the "
                          "deploy credentials'; run `kiln setup` (it keeps what exists), then "
                          "deploy again",
                          env->dep.id, f->lt_id ? "Auto Scaling group" : "launch template",
                          f->lt_id ? env->names.asg : env->names.launch_template);
  if (r->scale.nlb && f->asg_exists && f->ntarget_groups == 0)
    return kiln_error_set(err, KILN_E_INVALID,
                          "kiln.json asks for a load balancer (/aws/load_balancer \"nlb\" or "
                          "/aws/count > 1) but deployment %s has none attached yet: run `kiln "
                          "setup` (with the account's admin credentials) first, then deploy",
                          env->dep.id);
  kiln_err rc = kiln_offerings_check_zones(env, net, r->instance_type, err);
  if (rc == KILN_OK)
    rc = ensure_template(env, net, r, f, &version, err);
  if (rc == KILN_OK)
    rc = ensure_group(env, net, r, f, version, err);
  if (rc == KILN_OK && !env->dry_run) /* the group's instances after create/refresh */
    rc = kiln_rollout_refresh_fleet(env, f, err);
  if (rc == KILN_OK && !r->scale.nlb)
    rc = kiln_fleet_ensure_address(env, f, err);
  return rc;
}
