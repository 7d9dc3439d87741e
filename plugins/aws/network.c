/* The deployment's network, found by tag and created when missing: VPC (or the user's), one public
 * subnet per availability zone (up to 3), internet gateway, route table, security group with the
 * app's ingress ports. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "byoc.h"
#include "util/buf.h"

void kiln_network_clear(struct kiln_network *n)
{
  free(n->vpc_id);
  for (size_t i = 0; i < n->nsubnets; i++)
    free(n->subnet_ids[i]);
  free(n->igw_id);
  free(n->route_table_id);
  for (size_t i = 0; i < n->nassociations; i++)
    free(n->associations[i]);
  free(n->sg_id);
  memset(n, 0, sizeof(*n));
}

static char *dup_text(const char *s)
{
  return s ? strdup(s) : NULL;
}

/* Describe<what> filtered by the deployment tag (plus an optional extra filter); the answer. */
static kiln_err describe_tagged(struct kiln_awsenv *env, const char *action, const char *filter,
                                const char *value, struct kiln_xml **out, struct kiln_error *err)
{
  struct kiln_aws_params p = {0};
  int n = 1;
  kiln_err rc = kiln_awsenv_tag_filter(env, &p, &n);
  if (rc == KILN_OK && filter) {
    char key[48];
    snprintf(key, sizeof(key), "Filter.%d.Name", n);
    rc = kiln_aws_params_add(&p, key, filter);
    snprintf(key, sizeof(key), "Filter.%d.Value.1", n);
    if (rc == KILN_OK)
      rc = kiln_aws_params_add(&p, key, value);
  }
  if (rc != KILN_OK)
    rc = kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  else
    rc = kiln_awsenv_read(env, "ec2", action, &p, out, err);
  kiln_aws_params_clear(&p);
  return rc;
}

static kiln_err find_vpc(struct kiln_awsenv *env, struct kiln_network *net, struct kiln_error *err)
{
  struct kiln_xml *doc = NULL;
  kiln_err rc;
  if (env->dep.vpc_id) { /* the user's VPC: it must exist */
    struct kiln_aws_params p = {0};
    struct kiln_aws_error_info info;
    kiln_aws_params_add(&p, "VpcId.1", env->dep.vpc_id);
    rc = kiln_aws_query(env->c, "ec2", "DescribeVpcs", &p, &doc, &info, err);
    kiln_aws_params_clear(&p);
    if (rc != KILN_OK && strstr(info.code, "NotFound"))
      return kiln_error_set(err, KILN_E_NOT_FOUND,
                            "VPC %s (from %s) does not exist in region %s: fix VPC_ID, or unset it "
                            "to let kiln create a VPC",
                            env->dep.vpc_id, "VPC_ID / /aws/vpc_id",
                            env->dep.region ? env->dep.region : "?");
    if (rc == KILN_OK) {
      net->vpc_id = strdup(env->dep.vpc_id);
      net->vpc_reused = 1;
    }
    kiln_xml_free(doc);
    return rc;
  }
  rc = describe_tagged(env, "DescribeVpcs", NULL, NULL, &doc, err);
  if (rc == KILN_OK)
    net->vpc_id = dup_text(kiln_awsenv_first(kiln_xml_find(doc, "vpcSet"), "vpcId"));
  kiln_xml_free(doc);
  return rc;
}

kiln_err kiln_network_find(struct kiln_awsenv *env, struct kiln_network *net,
                           struct kiln_error *err)
{
  struct kiln_xml *doc = NULL;
  memset(net, 0, sizeof(*net));
  kiln_err rc = find_vpc(env, net, err);
  if (rc != KILN_OK || !net->vpc_id)
    return rc;
  if ((rc = describe_tagged(env, "DescribeSubnets", "vpc-id", net->vpc_id, &doc, err)) != KILN_OK)
    return rc;
  for (const struct kiln_xml *it = kiln_awsenv_items(doc, "subnetSet");
       it && net->nsubnets < KILN_MAX_SUBNETS; it = kiln_xml_next_same(it)) {
    const char *id = kiln_xml_text(it, "subnetId");
    const char *az = kiln_xml_text(it, "availabilityZone");
    if (id) {
      net->subnet_ids[net->nsubnets] = strdup(id);
      snprintf(net->subnet_azs[net->nsubnets], sizeof(net->subnet_azs[0]), "%s", az ? az : "");
      const char *map = kiln_xml_text(it, "mapPublicIpOnLaunch");
      net->subnet_public[net->nsubnets] = map && strcmp(map, "true") == 0;
      net->nsubnets++;
    }
  }
  kiln_xml_free(doc);
  if ((rc = describe_tagged(env, "DescribeInternetGateways", NULL, NULL, &doc, err)) != KILN_OK)
    return rc;
  net->igw_id = dup_text(kiln_awsenv_first(doc, "internetGatewayId"));
  const struct kiln_xml *att = kiln_awsenv_items(doc, "attachmentSet");
  net->igw_attached =
      att && kiln_xml_text(att, "vpcId") && strcmp(kiln_xml_text(att, "vpcId"), net->vpc_id) == 0;
  kiln_xml_free(doc);
  if ((rc = describe_tagged(env, "DescribeRouteTables", "vpc-id", net->vpc_id, &doc, err)) !=
      KILN_OK)
    return rc;
  net->route_table_id = dup_text(kiln_awsenv_first(doc, "routeTableId"));
  for (const struct kiln_xml *r = kiln_awsenv_items(doc, "routeSet"); r;
       r = kiln_xml_next_same(r)) {
    const char *dest = kiln_xml_text(r, "destinationCidrBlock");
    if (dest && strcmp(dest, "0.0.0.0/0") == 0 && kiln_xml_text(r, "gatewayId"))
      net->default_route = 1;
  }
  for (const struct kiln_xml *a = kiln_awsenv_items(doc, "associationSet"); a;
       a = kiln_xml_next_same(a)) {
    const char *sid = kiln_xml_text(a, "subnetId");
    const char *assoc = kiln_xml_text(a, "routeTableAssociationId");
    const char *main_table = kiln_xml_text(a, "main");
    if (sid && assoc && !(main_table && strcmp(main_table, "true") == 0) &&
        net->nassociations < KILN_MAX_SUBNETS * 2)
      net->associations[net->nassociations++] = strdup(assoc);
    for (size_t i = 0; sid && i < net->nsubnets; i++)
      if (strcmp(sid, net->subnet_ids[i]) == 0)
        net->subnet_associated[i] = 1;
  }
  kiln_xml_free(doc);
  if ((rc = describe_tagged(env, "DescribeSecurityGroups", "vpc-id", net->vpc_id, &doc, err)) !=
      KILN_OK)
    return rc;
  net->sg_id = dup_text(kiln_awsenv_first(doc, "groupId"));
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

/* The id a create call returned (or a placeholder in a plan). */
static kiln_err take_id(struct kiln_awsenv *env, struct kiln_xml *doc, const char *field,
                        const char *placeholder, char **out, struct kiln_error *err)
{
  const char *id = env->dry_run ? placeholder : kiln_awsenv_first(doc, field);
  *out = id ? strdup(id) : NULL;
  kiln_xml_free(doc);
  if (!id)
    return kiln_error_set(err, KILN_E_REMOTE, "EC2: the answer has no %s", field);
  return *out ? KILN_OK : kiln_error_set(err, KILN_E_NOMEM, "out of memory");
}

static kiln_err ensure_vpc(struct kiln_awsenv *env, struct kiln_network *net,
                           struct kiln_error *err)
{
  struct kiln_aws_params p = {0};
  struct kiln_xml *doc = NULL;
  kiln_err rc;
  if (net->vpc_id) {
    kiln_awsenv_announce(env, "nothing", net->vpc_id, "VPC %s",
                         net->vpc_reused ? "given by VPC_ID (kept)" : "exists");
    return KILN_OK;
  }
  kiln_awsenv_announce(env, "create", "VPC", "10.0.0.0/16 tagged %s=%s", env->dep.tag_key,
                       env->dep.id);
  kiln_aws_params_add(&p, "CidrBlock", "10.0.0.0/16");
  kiln_awsenv_tag_spec(env, &p, 1, "vpc", env->names.asg);
  rc = kiln_awsenv_mutate(env, "ec2", "CreateVpc", &p, "creating the VPC", NULL, &doc, err);
  kiln_aws_params_clear(&p);
  if (rc == KILN_OK)
    rc = take_id(env, doc, "vpcId", "vpc-(new)", &net->vpc_id, err);
  if (rc != KILN_OK)
    return rc;
  kiln_aws_params_add(&p, "VpcId", net->vpc_id);
  kiln_aws_params_add(&p, "EnableDnsHostnames.Value", "true");
  rc = kiln_awsenv_mutate(env, "ec2", "ModifyVpcAttribute", &p, net->vpc_id, NULL, NULL, err);
  kiln_aws_params_clear(&p);
  return rc;
}

static kiln_err make_subnet_public(struct kiln_awsenv *env, struct kiln_network *net, size_t i,
                                   struct kiln_error *err)
{
  struct kiln_aws_params p = {0};
  if (net->subnet_public[i])
    return KILN_OK;
  kiln_awsenv_announce(env, "update", net->subnet_ids[i], "public IPs on launch");
  kiln_aws_params_add(&p, "SubnetId", net->subnet_ids[i]);
  kiln_aws_params_add(&p, "MapPublicIpOnLaunch.Value", "true");
  kiln_err rc = kiln_awsenv_mutate(env, "ec2", "ModifySubnetAttribute", &p, net->subnet_ids[i],
                                   NULL, NULL, err);
  kiln_aws_params_clear(&p);
  net->subnet_public[i] = rc == KILN_OK;
  return rc;
}

/* One public subnet in each of the region's first zones (up to KILN_MAX_SUBNETS); a setup
 * interrupted halfway gets the missing ones. A reused VPC's tagged subnets are the user's. */
static kiln_err ensure_subnets(struct kiln_awsenv *env, struct kiln_network *net,
                               struct kiln_error *err)
{
  struct kiln_xml *doc = NULL;
  kiln_err rc;
  if (net->vpc_reused) {
    if (net->nsubnets > 0) {
      kiln_awsenv_announce(env, "nothing", "subnets", "%zu tagged subnet(s) in %s", net->nsubnets,
                           net->vpc_id);
      return KILN_OK;
    }
    return kiln_error_set(err, KILN_E_NOT_FOUND,
                          "VPC %s has no subnet tagged %s=%s: tag the public subnets kiln may use "
                          "(or let kiln create its own VPC)",
                          net->vpc_id, env->dep.tag_key, env->dep.id);
  }
  struct kiln_aws_params az = {0};
  kiln_aws_params_add(&az, "Filter.1.Name", "state");
  kiln_aws_params_add(&az, "Filter.1.Value.1", "available");
  rc = kiln_awsenv_read(env, "ec2", "DescribeAvailabilityZones", &az, &doc, err);
  kiln_aws_params_clear(&az);
  if (rc != KILN_OK)
    return rc;
  char zones[KILN_MAX_SUBNETS][32];
  size_t nz = 0;
  for (const struct kiln_xml *it = kiln_awsenv_items(doc, "availabilityZoneInfo");
       it && nz < KILN_MAX_SUBNETS; it = kiln_xml_next_same(it)) {
    const char *zone = kiln_xml_text(it, "zoneName");
    if (zone)
      snprintf(zones[nz++], sizeof(zones[0]), "%s", zone);
  }
  kiln_xml_free(doc);
  if (nz == 0)
    return kiln_error_set(err, KILN_E_REMOTE, "EC2 lists no available zone in %s",
                          env->dep.region ? env->dep.region : "this region");
  size_t existing = net->nsubnets;
  for (size_t i = 0; i < existing && rc == KILN_OK; i++)
    rc = make_subnet_public(env, net, i, err);
  for (size_t i = 0; i < nz && rc == KILN_OK && net->nsubnets < KILN_MAX_SUBNETS; i++) {
    int have = 0;
    for (size_t j = 0; j < existing; j++)
      have |= strcmp(net->subnet_azs[j], zones[i]) == 0;
    if (have)
      continue;
    struct kiln_aws_params p = {0};
    char cidr[32], name[160];
    snprintf(cidr, sizeof(cidr), "10.0.%zu.0/24", i * 16);
    snprintf(name, sizeof(name), "%s-%s", env->names.asg, zones[i]);
    kiln_awsenv_announce(env, "create", "subnet", "%s in %s", cidr, zones[i]);
    kiln_aws_params_add(&p, "VpcId", net->vpc_id);
    kiln_aws_params_add(&p, "CidrBlock", cidr);
    kiln_aws_params_add(&p, "AvailabilityZone", zones[i]);
    kiln_awsenv_tag_spec(env, &p, 1, "subnet", name);
    rc = kiln_awsenv_mutate(env, "ec2", "CreateSubnet", &p, "creating a subnet", NULL, &doc, err);
    kiln_aws_params_clear(&p);
    if (rc == KILN_OK)
      rc = take_id(env, doc, "subnetId", "subnet-(new)", &net->subnet_ids[net->nsubnets], err);
    if (rc != KILN_OK)
      break;
    memcpy(net->subnet_azs[net->nsubnets], zones[i], sizeof(net->subnet_azs[0]));
    net->nsubnets++;
    rc = make_subnet_public(env, net, net->nsubnets - 1, err);
  }
  if (rc == KILN_OK && existing == net->nsubnets)
    kiln_awsenv_announce(env, "nothing", "subnets", "%zu subnet(s) exist", net->nsubnets);
  return rc;
}

static kiln_err ensure_gateway_and_routes(struct kiln_awsenv *env, struct kiln_network *net,
                                          struct kiln_error *err)
{
  struct kiln_aws_params p = {0};
  struct kiln_xml *doc = NULL;
  kiln_err rc = KILN_OK;
  static const char *const already[] = {"Resource.AlreadyAssociated", "RouteAlreadyExists", NULL};
  if (net->vpc_reused)
    return KILN_OK; /* the user's VPC keeps its own routing */
  if (!net->igw_id) {
    kiln_awsenv_announce(env, "create", "internet gateway", "for %s", net->vpc_id);
    kiln_awsenv_tag_spec(env, &p, 1, "internet-gateway", env->names.asg);
    rc = kiln_awsenv_mutate(env, "ec2", "CreateInternetGateway", &p,
                            "creating the internet gateway", NULL, &doc, err);
    kiln_aws_params_clear(&p);
    if (rc == KILN_OK)
      rc = take_id(env, doc, "internetGatewayId", "igw-(new)", &net->igw_id, err);
  }
  if (rc == KILN_OK && !net->igw_attached) {
    kiln_awsenv_announce(env, "update", net->igw_id, "attach to %s", net->vpc_id);
    kiln_aws_params_add(&p, "InternetGatewayId", net->igw_id);
    kiln_aws_params_add(&p, "VpcId", net->vpc_id);
    rc = kiln_awsenv_mutate(env, "ec2", "AttachInternetGateway", &p, net->igw_id, already, NULL,
                            err);
    kiln_aws_params_clear(&p);
    net->igw_attached = rc == KILN_OK;
  }
  if (rc == KILN_OK && !net->route_table_id) {
    kiln_awsenv_announce(env, "create", "route table", "for %s", net->vpc_id);
    kiln_aws_params_add(&p, "VpcId", net->vpc_id);
    kiln_awsenv_tag_spec(env, &p, 1, "route-table", env->names.asg);
    rc = kiln_awsenv_mutate(env, "ec2", "CreateRouteTable", &p, "creating the route table", NULL,
                            &doc, err);
    kiln_aws_params_clear(&p);
    if (rc == KILN_OK)
      rc = take_id(env, doc, "routeTableId", "rtb-(new)", &net->route_table_id, err);
  }
  if (rc == KILN_OK && !net->default_route) {
    kiln_awsenv_announce(env, "update", net->route_table_id, "route 0.0.0.0/0 via %s", net->igw_id);
    kiln_aws_params_add(&p, "RouteTableId", net->route_table_id);
    kiln_aws_params_add(&p, "DestinationCidrBlock", "0.0.0.0/0");
    kiln_aws_params_add(&p, "GatewayId", net->igw_id);
    rc = kiln_awsenv_mutate(env, "ec2", "CreateRoute", &p, net->route_table_id, already, NULL, err);
    kiln_aws_params_clear(&p);
    net->default_route = rc == KILN_OK;
  }
  for (size_t i = 0; i < net->nsubnets && rc == KILN_OK; i++) {
    if (net->subnet_associated[i])
      continue;
    kiln_awsenv_announce(env, "update", net->route_table_id, "associate %s", net->subnet_ids[i]);
    kiln_aws_params_add(&p, "RouteTableId", net->route_table_id);
    kiln_aws_params_add(&p, "SubnetId", net->subnet_ids[i]);
    rc = kiln_awsenv_mutate(env, "ec2", "AssociateRouteTable", &p, net->route_table_id, already,
                            NULL, err);
    kiln_aws_params_clear(&p);
    net->subnet_associated[i] = rc == KILN_OK;
  }
  return rc;
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
      rc = take_id(env, doc, "groupId", "sg-(new)", &net->sg_id, err);
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

kiln_err kiln_network_ensure(struct kiln_awsenv *env, struct kiln_network *net, const int *ports,
                             size_t nports, struct kiln_error *err)
{
  kiln_err rc = ensure_vpc(env, net, err);
  if (rc == KILN_OK)
    rc = ensure_subnets(env, net, err);
  if (rc == KILN_OK)
    rc = ensure_gateway_and_routes(env, net, err);
  if (rc == KILN_OK)
    rc = ensure_security_group(env, net, ports, nports, err);
  return rc;
}
