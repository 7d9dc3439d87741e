/* kiln teardown: every resource carrying the deployment tag, deleted in dependency order (group and
 * instances, template, addresses, security group, subnets, routes, gateway, VPC, then IAM and, if
 * asked, the bucket), waiting where AWS needs time; safe to run again. Untagged resources are
 * never touched: IAM entities and the bucket are checked for the tag before deletion. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "byoc.h"
#include "s3.h"
#include "util/buf.h"

static const char *const gone[] = {"NoSuchEntity",
                                   "InvalidGroup.NotFound",
                                   "InvalidSubnetID.NotFound",
                                   "InvalidVpcID.NotFound",
                                   "InvalidRouteTableID.NotFound",
                                   "InvalidInternetGatewayID.NotFound",
                                   "InvalidAllocationID.NotFound",
                                   "InvalidAssociationID.NotFound",
                                   "InvalidLaunchTemplateName.NotFoundException",
                                   "Gateway.NotAttached",
                                   "NoSuchBucket",
                                   NULL};

static kiln_err delete_one(struct kiln_awsenv *env, const char *service, const char *action,
                           const char *key, const char *id, const char *what,
                           struct kiln_error *err)
{
  struct kiln_aws_params p = {0};
  kiln_awsenv_announce(env, "delete", id, "%s", what);
  kiln_aws_params_add(&p, key, id);
  kiln_err rc = kiln_awsenv_mutate(env, service, action, &p, id, gone, NULL, err);
  kiln_aws_params_clear(&p);
  return rc;
}

/* Retry a deletion that fails with DependencyViolation while instances shut down. */
static kiln_err delete_waiting(struct kiln_awsenv *env, const char *action, const char *key,
                               const char *id, const char *what, struct kiln_error *err)
{
  kiln_err rc = KILN_OK;
  for (int attempt = 0; attempt < 40; attempt++) {
    rc = delete_one(env, "ec2", action, key, id, what, err);
    if (rc == KILN_OK || !strstr(kiln_error_msg(err), "DependencyViolation"))
      return rc;
    kiln_error_clear(err);
    env->mutations--; /* count the deletion once */
    kiln_aws_client_log(env->c, KILN_LOG_INFO, "%s is still in use; waiting", id);
    sleep(attempt < 5 ? 2 : 5);
  }
  return kiln_error_set(err, KILN_E_REMOTE, "%s %s is still in use after 3 minutes", what, id);
}

static kiln_err tagged_ids(struct kiln_awsenv *env, const char *action, const char *set,
                           const char *field, char ***ids, size_t *n, struct kiln_error *err)
{
  struct kiln_aws_params p = {0};
  struct kiln_xml *doc = NULL;
  int fn = 1;
  *ids = NULL;
  *n = 0;
  kiln_awsenv_tag_filter(env, &p, &fn);
  if (strcmp(action, "DescribeInstances") == 0) {
    kiln_aws_params_add(&p, "Filter.2.Name", "instance-state-name");
    kiln_aws_params_add(&p, "Filter.2.Value.1", "pending");
    kiln_aws_params_add(&p, "Filter.2.Value.2", "running");
    kiln_aws_params_add(&p, "Filter.2.Value.3", "stopping");
    kiln_aws_params_add(&p, "Filter.2.Value.4", "stopped");
  }
  kiln_err rc = kiln_awsenv_read(env, "ec2", action, &p, &doc, err);
  kiln_aws_params_clear(&p);
  if (rc != KILN_OK)
    return rc;
  const struct kiln_xml *list = kiln_xml_find(doc, set);
  size_t cap = 0;
  /* instances sit one level deeper: reservationSet/item/instancesSet/item */
  for (const struct kiln_xml *it = list ? list->child : NULL; it; it = it->next) {
    const struct kiln_xml *inner =
        strcmp(action, "DescribeInstances") == 0 ? kiln_awsenv_items(it, "instancesSet") : it;
    for (; inner; inner = inner == it ? NULL : kiln_xml_next_same(inner)) {
      const char *id = kiln_xml_text(inner, field);
      if (!id)
        continue;
      if (*n == cap) {
        cap = cap ? cap * 2 : 8;
        char **grown = realloc(*ids, cap * sizeof(*grown));
        if (!grown)
          break;
        *ids = grown;
      }
      (*ids)[(*n)++] = strdup(id);
    }
  }
  kiln_xml_free(doc);
  return KILN_OK;
}

static void free_ids(char **ids, size_t n)
{
  for (size_t i = 0; i < n; i++)
    free(ids[i]);
  free(ids);
}

static kiln_err teardown_compute(struct kiln_awsenv *env, struct kiln_error *err)
{
  struct kiln_fleet f;
  kiln_err rc = kiln_fleet_find(env, &f, err);
  if (rc == KILN_OK && f.asg_exists) {
    struct kiln_aws_params p = {0};
    kiln_awsenv_announce(env, "delete", env->names.asg, "Auto Scaling group and its instances");
    kiln_aws_params_add(&p, "AutoScalingGroupName", env->names.asg);
    kiln_aws_params_add(&p, "ForceDelete", "true");
    static const char *const missing[] = {"ValidationError", NULL};
    rc = kiln_awsenv_mutate(env, "autoscaling", "DeleteAutoScalingGroup", &p, env->names.asg,
                            missing, NULL, err);
    kiln_aws_params_clear(&p);
  }
  char **ids = NULL;
  size_t n = 0;
  if (rc == KILN_OK)
    rc = tagged_ids(env, "DescribeInstances", "reservationSet", "instanceId", &ids, &n, err);
  if (rc == KILN_OK && n > 0) {
    struct kiln_aws_params p = {0};
    for (size_t i = 0; i < n; i++) {
      char key[32];
      snprintf(key, sizeof(key), "InstanceId.%zu", i + 1);
      kiln_aws_params_add(&p, key, ids[i]);
      kiln_awsenv_announce(env, "delete", ids[i], "terminate instance");
    }
    rc = kiln_awsenv_mutate(env, "ec2", "TerminateInstances", &p, "terminating instances", gone,
                            NULL, err);
    kiln_aws_params_clear(&p);
  }
  free_ids(ids, n);
  if (rc == KILN_OK && f.lt_id)
    rc = delete_one(env, "ec2", "DeleteLaunchTemplate", "LaunchTemplateId", f.lt_id,
                    "launch template", err);
  if (rc == KILN_OK && f.eip_allocation) {
    if (f.eip_instance) {
      struct kiln_aws_params p = {0};
      kiln_aws_params_add(&p, "PublicIp", f.eip_address ? f.eip_address : "");
      rc = kiln_awsenv_mutate(env, "ec2", "DisassociateAddress", &p, "the Elastic IP", gone, NULL,
                              err);
      kiln_aws_params_clear(&p);
    }
    if (rc == KILN_OK)
      rc = delete_one(env, "ec2", "ReleaseAddress", "AllocationId", f.eip_allocation, "Elastic IP",
                      err);
  }
  kiln_fleet_clear(&f);
  return rc;
}

static kiln_err teardown_network(struct kiln_awsenv *env, struct kiln_error *err)
{
  struct kiln_network net;
  char *reused = env->dep.vpc_id;
  env->dep.vpc_id = NULL; /* only the tagged VPC is kiln's */
  kiln_err rc = kiln_network_find(env, &net, err);
  env->dep.vpc_id = reused;
  if (rc != KILN_OK)
    return rc;
  if (!net.vpc_id && reused) { /* the user's VPC: delete only our tagged pieces inside it */
    net.vpc_id = strdup(reused);
    net.vpc_reused = 1;
    kiln_network_clear(&net);
    rc = kiln_network_find(env, &net, err);
    if (rc != KILN_OK)
      return rc;
  }
  for (size_t i = 0; i < net.nassociations && rc == KILN_OK; i++) {
    struct kiln_aws_params p = {0};
    kiln_aws_params_add(&p, "AssociationId", net.associations[i]);
    rc = kiln_awsenv_mutate(env, "ec2", "DisassociateRouteTable", &p, net.associations[i], gone,
                            NULL, err);
    kiln_aws_params_clear(&p);
  }
  if (rc == KILN_OK && net.sg_id)
    rc = delete_waiting(env, "DeleteSecurityGroup", "GroupId", net.sg_id, "security group", err);
  for (size_t i = 0; i < net.nsubnets && rc == KILN_OK; i++)
    rc = delete_waiting(env, "DeleteSubnet", "SubnetId", net.subnet_ids[i], "subnet", err);
  if (rc == KILN_OK && net.route_table_id)
    rc = delete_waiting(env, "DeleteRouteTable", "RouteTableId", net.route_table_id, "route table",
                        err);
  if (rc == KILN_OK && net.igw_id && net.igw_attached && net.vpc_id) {
    struct kiln_aws_params p = {0};
    kiln_aws_params_add(&p, "InternetGatewayId", net.igw_id);
    kiln_aws_params_add(&p, "VpcId", net.vpc_id);
    rc = kiln_awsenv_mutate(env, "ec2", "DetachInternetGateway", &p, net.igw_id, gone, NULL, err);
    kiln_aws_params_clear(&p);
  }
  if (rc == KILN_OK && net.igw_id)
    rc = delete_one(env, "ec2", "DeleteInternetGateway", "InternetGatewayId", net.igw_id,
                    "internet gateway", err);
  if (rc == KILN_OK && net.vpc_id && !net.vpc_reused)
    rc = delete_waiting(env, "DeleteVpc", "VpcId", net.vpc_id, "VPC", err);
  kiln_network_clear(&net);
  return rc;
}

/* Does the IAM role/user carry the deployment tag? */
kiln_err kiln_iam_tagged(struct kiln_awsenv *env, const char *action, const char *key,
                         const char *name, int *tagged, struct kiln_error *err)
{
  struct kiln_aws_params p = {0};
  struct kiln_xml *doc = NULL;
  kiln_aws_params_add(&p, key, name);
  kiln_err rc = kiln_awsenv_read(env, "iam", action, &p, &doc, err);
  kiln_aws_params_clear(&p);
  *tagged = 0;
  for (const struct kiln_xml *t = rc == KILN_OK ? kiln_awsenv_items(doc, "Tags") : NULL; t;
       t = kiln_xml_next_same(t))
    *tagged |= kiln_xml_text(t, "Key") && !strcmp(kiln_xml_text(t, "Key"), env->dep.tag_key) &&
               kiln_xml_text(t, "Value") && !strcmp(kiln_xml_text(t, "Value"), env->dep.id);
  kiln_xml_free(doc);
  return rc;
}

static kiln_err teardown_iam(struct kiln_awsenv *env, struct kiln_error *err)
{
  struct kiln_iam iam;
  struct kiln_aws_params p = {0};
  int tagged = 0;
  kiln_err rc = kiln_iam_find(env, &iam, err);
  if (rc == KILN_OK && iam.instance_profile && iam.profile_has_role) {
    kiln_aws_params_add(&p, "InstanceProfileName", env->names.instance_role);
    kiln_aws_params_add(&p, "RoleName", env->names.instance_role);
    rc = kiln_awsenv_mutate(env, "iam", "RemoveRoleFromInstanceProfile", &p,
                            env->names.instance_role, gone, NULL, err);
    kiln_aws_params_clear(&p);
  }
  if (rc == KILN_OK && iam.instance_profile)
    rc = delete_one(env, "iam", "DeleteInstanceProfile", "InstanceProfileName",
                    env->names.instance_role, "instance profile", err);
  if (rc == KILN_OK && iam.instance_role)
    rc = kiln_iam_tagged(env, "ListRoleTags", "RoleName", env->names.instance_role, &tagged, err);
  if (rc == KILN_OK && iam.instance_role && !tagged)
    kiln_aws_client_log(env->c, KILN_LOG_WARN, "role %s lacks the tag %s=%s: left alone",
                        env->names.instance_role, env->dep.tag_key, env->dep.id);
  if (rc == KILN_OK && iam.instance_role && tagged) {
    if (iam.instance_role_policy) {
      kiln_aws_params_add(&p, "RoleName", env->names.instance_role);
      kiln_aws_params_add(&p, "PolicyName", "kiln-read-eifs");
      rc = kiln_awsenv_mutate(env, "iam", "DeleteRolePolicy", &p, env->names.instance_role, gone,
                              NULL, err);
      kiln_aws_params_clear(&p);
    }
    if (rc == KILN_OK)
      rc = delete_one(env, "iam", "DeleteRole", "RoleName", env->names.instance_role,
                      "instance role", err);
  }
  if (rc == KILN_OK && iam.deploy_user)
    rc = kiln_iam_tagged(env, "ListUserTags", "UserName", env->names.deploy_role, &tagged, err);
  if (rc == KILN_OK && iam.deploy_user && tagged) {
    struct kiln_xml *doc = NULL;
    kiln_aws_params_add(&p, "UserName", env->names.deploy_role);
    rc = kiln_awsenv_read(env, "iam", "ListAccessKeys", &p, &doc, err);
    kiln_aws_params_clear(&p);
    for (const struct kiln_xml *k = rc == KILN_OK ? kiln_awsenv_items(doc, "AccessKeyMetadata")
                                                  : NULL;
         k && rc == KILN_OK; k = kiln_xml_next_same(k)) {
      kiln_aws_params_add(&p, "UserName", env->names.deploy_role);
      kiln_aws_params_add(&p, "AccessKeyId", kiln_xml_text(k, "AccessKeyId"));
      rc = kiln_awsenv_mutate(env, "iam", "DeleteAccessKey", &p, env->names.deploy_role, gone, NULL,
                              err);
      kiln_aws_params_clear(&p);
    }
    kiln_xml_free(doc);
    if (rc == KILN_OK && iam.deploy_policy) {
      kiln_aws_params_add(&p, "UserName", env->names.deploy_role);
      kiln_aws_params_add(&p, "PolicyName", "kiln-deploy");
      rc = kiln_awsenv_mutate(env, "iam", "DeleteUserPolicy", &p, env->names.deploy_role, gone,
                              NULL, err);
      kiln_aws_params_clear(&p);
    }
    if (rc == KILN_OK)
      rc = delete_one(env, "iam", "DeleteUser", "UserName", env->names.deploy_role, "deploy user",
                      err);
  }
  if (rc == KILN_OK)
    rc = kiln_ci_role_delete(env, err);
  kiln_iam_clear(&iam);
  return rc;
}

/* Empty (every version, every incomplete upload) and delete the bucket. */
static kiln_err teardown_bucket(struct kiln_awsenv *env, struct kiln_error *err)
{
  int exists = 0;
  char owner[128];
  kiln_err rc = kiln_bucket_exists(env, &exists, err);
  if (rc != KILN_OK || !exists || (rc = kiln_bucket_tag(env, owner, sizeof owner, err)))
    return rc;
  if (strcmp(owner, env->dep.id) != 0) {
    kiln_awsenv_announce(env, "nothing", env->names.bucket,
                         "left alone: it does not carry the tag %s=%s", env->dep.tag_key,
                         env->dep.id);
    return KILN_OK;
  }
  kiln_awsenv_announce(env, "delete", env->names.bucket, "bucket with every object version");
  env->mutations++;
  if (env->dry_run)
    return KILN_OK;
  struct kiln_s3_upload_entry *uploads = NULL;
  size_t nup = 0;
  rc = kiln_s3_list_uploads(env->c, env->names.bucket, NULL, &uploads, &nup, err);
  for (size_t i = 0; i < nup && rc == KILN_OK; i++)
    rc = kiln_s3_abort_multipart(env->c, env->names.bucket, uploads[i].key, uploads[i].upload_id,
                                 err);
  kiln_s3_upload_entries_free(uploads, nup);
  for (int round = 0; rc == KILN_OK && round < 1000; round++) {
    struct kiln_aws_pair q[] = {{"versions", ""}};
    struct kiln_aws_request r = KILN_AWS_REQUEST_INIT;
    struct kiln_aws_response resp;
    struct kiln_xml *doc = NULL;
    r.service = "s3";
    r.operation = "ListObjectVersions";
    r.method = "GET";
    r.bucket = env->names.bucket;
    r.query = q;
    r.nquery = 1;
    rc = kiln_aws_send(env->c, &r, &resp, NULL, err);
    if (rc == KILN_OK)
      rc = kiln_xml_parse(resp.body.data, resp.body.len, "S3 ListObjectVersions response", &doc,
                          err);
    kiln_aws_response_clear(&resp);
    size_t deleted = 0;
    for (const struct kiln_xml *v = doc ? doc->child : NULL; v && rc == KILN_OK; v = v->next) {
      if (strcmp(v->name, "Version") != 0 && strcmp(v->name, "DeleteMarker") != 0)
        continue;
      struct kiln_buf path = KILN_BUF_INIT;
      kiln_buf_printf(&path, "/%s", kiln_xml_text(v, "Key") ? kiln_xml_text(v, "Key") : "");
      struct kiln_aws_pair vq[] = {{"versionId", kiln_xml_text(v, "VersionId")}};
      struct kiln_aws_request d = KILN_AWS_REQUEST_INIT;
      d.service = "s3";
      d.operation = "DeleteObject";
      d.method = "DELETE";
      d.bucket = env->names.bucket;
      d.path = kiln_buf_str(&path);
      d.query = vq;
      d.nquery = vq[0].value ? 1 : 0;
      rc = kiln_aws_send(env->c, &d, &resp, NULL, err);
      kiln_aws_response_clear(&resp);
      kiln_buf_free(&path);
      deleted++;
    }
    kiln_xml_free(doc);
    if (deleted == 0)
      break;
  }
  if (rc == KILN_OK) {
    struct kiln_aws_request r = KILN_AWS_REQUEST_INIT;
    struct kiln_aws_response resp;
    struct kiln_aws_error_info info;
    r.service = "s3";
    r.operation = "DeleteBucket";
    r.method = "DELETE";
    r.bucket = env->names.bucket;
    rc = kiln_aws_send(env->c, &r, &resp, &info, err);
    kiln_aws_response_clear(&resp);
    if (rc == KILN_E_NOT_FOUND) {
      kiln_error_clear(err);
      rc = KILN_OK;
    }
  }
  return rc;
}

kiln_err kiln_teardown(struct kiln_awsenv *env, int delete_bucket, struct kiln_error *err)
{
  kiln_err rc = teardown_compute(env, err);
  if (rc == KILN_OK)
    rc = teardown_network(env, err);
  if (rc == KILN_OK)
    rc = teardown_iam(env, err);
  if (rc == KILN_OK && delete_bucket)
    rc = teardown_bucket(env, err);
  else if (rc == KILN_OK)
    kiln_awsenv_announce(env, "nothing", env->names.bucket,
                         "bucket kept (its EIFs too): add --delete-bucket to remove it");
  return rc;
}
