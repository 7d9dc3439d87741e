/* Resource kind "security-group": the instances' security group in the VPC, with the app's TCP
 * ingress ports open to the world (ports only added, never removed here). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resource.h"

kiln_err kiln_network_find_sg(struct kiln_awsenv *env, struct kiln_network *net,
                              struct kiln_error *err)
{
  struct kiln_xml *doc = NULL;
  kiln_err rc;
  if (!net->vpc_id)
    return KILN_OK;
  if ((rc = kiln_awsenv_describe_tagged(env, "DescribeSecurityGroups", "vpc-id", net->vpc_id, &doc,
                                        err)) != KILN_OK)
    return rc;
  net->sg_id = kiln_awsenv_dup(kiln_awsenv_first(doc, "groupId"));
  for (const struct kiln_xml *perm = kiln_awsenv_items(doc, "ipPermissions");
       perm && net->nports < KILN_MAX_PORTS; perm = kiln_xml_next_same(perm)) {
    const char *from = kiln_xml_text(perm, "fromPort");
    if (from)
      net->ports[net->nports++] = atoi(from);
  }
  kiln_xml_free(doc);
  return KILN_OK;
}

static int has_port(const struct kiln_network *net, int port)
{
  for (size_t i = 0; i < net->nports; i++)
    if (net->ports[i] == port)
      return 1;
  return 0;
}

static kiln_err ensure_security_group(struct kiln_awsenv *env, struct kiln_network *net,
                                      const int *ports, size_t nports, struct kiln_error *err)
{
  struct kiln_aws_params p = {0};
  struct kiln_xml *doc = NULL;
  kiln_err rc = KILN_OK;
  static const char *const duplicate[] = {"InvalidPermission.Duplicate", NULL};
  if (!net->sg_id) {
    kiln_awsenv_announce(env, "create", "security group", "%s in %s", env->names.security_group,
                         net->vpc_id);
    kiln_aws_params_add(&p, "GroupName", env->names.security_group);
    kiln_aws_params_add(&p, "GroupDescription", "kiln deployment (enclave parent instances)");
    kiln_aws_params_add(&p, "VpcId", net->vpc_id);
    kiln_awsenv_tag_spec(env, &p, 1, "security-group", env->names.security_group);
    rc = kiln_awsenv_mutate(env, "ec2", "CreateSecurityGroup", &p, "creating the security group",
                            NULL, &doc, err);
    kiln_aws_params_clear(&p);
    if (rc == KILN_OK)
      rc = kiln_awsenv_take_id(env, doc, "groupId", "sg-(new)", &net->sg_id, err);
  }
  for (size_t i = 0; i < nports && rc == KILN_OK; i++) {
    if (has_port(net, ports[i]))
      continue;
    char port[16];
    snprintf(port, sizeof(port), "%d", ports[i]);
    kiln_awsenv_announce(env, "update", net->sg_id, "allow tcp/%d from anywhere", ports[i]);
    kiln_aws_params_add(&p, "GroupId", net->sg_id);
    kiln_aws_params_add(&p, "IpPermissions.1.IpProtocol", "tcp");
    kiln_aws_params_add(&p, "IpPermissions.1.FromPort", port);
    kiln_aws_params_add(&p, "IpPermissions.1.ToPort", port);
    kiln_aws_params_add(&p, "IpPermissions.1.IpRanges.1.CidrIp", "0.0.0.0/0");
    rc = kiln_awsenv_mutate(env, "ec2", "AuthorizeSecurityGroupIngress", &p, net->sg_id, duplicate,
                            NULL, err);
    kiln_aws_params_clear(&p);
    if (rc == KILN_OK && net->nports < KILN_MAX_PORTS)
      net->ports[net->nports++] = ports[i];
  }
  return rc;
}

static kiln_err sg_find(struct kiln_walk *w, struct kiln_error *err)
{
  return kiln_network_find_sg(w->env, &w->net, err);
}

static kiln_err sg_ensure(struct kiln_walk *w, struct kiln_error *err)
{
  return ensure_security_group(w->env, &w->net, w->ports, w->nports, err);
}

static int sg_exists(const struct kiln_walk *w)
{
  return w->net.sg_id != NULL;
}

static void sg_fields(const struct kiln_walk *w, cJSON *meta)
{
  kiln_json_add_string(meta, "security_group_id", w->net.sg_id);
  kiln_doc_label(meta, "security_group_id", "security group");
}

static kiln_err sg_teardown(struct kiln_walk *w, struct kiln_error *err)
{
  if (!w->net.sg_id)
    return KILN_OK;
  return kiln_awsenv_delete_waiting(w->env, "DeleteSecurityGroup", "GroupId", w->net.sg_id,
                                    "security group", err);
}

const struct kiln_aws_resource kiln_res_security_group = {
    .name = "security-group",
    .find = sg_find,
    .ensure = sg_ensure,
    .exists = sg_exists,
    .fields = sg_fields,
    .teardown = sg_teardown,
};
