/* Resource kind "routes": the internet gateway attached to the VPC, the route table with the
 * default route through it, and its association with every subnet. The user's VPC keeps its own
 * routing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resource.h"

kiln_err kiln_network_find_routes(struct kiln_awsenv *env, struct kiln_network *net,
                                  struct kiln_error *err)
{
  struct kiln_xml *doc = NULL;
  kiln_err rc;
  if (!net->vpc_id)
    return KILN_OK;
  if ((rc = kiln_awsenv_describe_tagged(env, "DescribeInternetGateways", NULL, NULL, &doc, err)) !=
      KILN_OK)
    return rc;
  net->igw_id = kiln_awsenv_dup(kiln_awsenv_first(doc, "internetGatewayId"));
  const struct kiln_xml *att = kiln_awsenv_items(doc, "attachmentSet");
  net->igw_attached =
      att && kiln_xml_text(att, "vpcId") && strcmp(kiln_xml_text(att, "vpcId"), net->vpc_id) == 0;
  kiln_xml_free(doc);
  if ((rc = kiln_awsenv_describe_tagged(env, "DescribeRouteTables", "vpc-id", net->vpc_id, &doc,
                                        err)) != KILN_OK)
    return rc;
  net->route_table_id = kiln_awsenv_dup(kiln_awsenv_first(doc, "routeTableId"));
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
  return KILN_OK;
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
      rc = kiln_awsenv_take_id(env, doc, "internetGatewayId", "igw-(new)", &net->igw_id, err);
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
      rc = kiln_awsenv_take_id(env, doc, "routeTableId", "rtb-(new)", &net->route_table_id, err);
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

static kiln_err routes_find(struct kiln_walk *w, struct kiln_error *err)
{
  return kiln_network_find_routes(w->env, &w->net, err);
}

static kiln_err routes_ensure(struct kiln_walk *w, struct kiln_error *err)
{
  return ensure_gateway_and_routes(w->env, &w->net, err);
}

static int routes_exist(const struct kiln_walk *w)
{
  return w->net.igw_id || w->net.route_table_id;
}

static kiln_err routes_teardown(struct kiln_walk *w, struct kiln_error *err)
{
  struct kiln_awsenv *env = w->env;
  struct kiln_network *net = &w->net;
  kiln_err rc = KILN_OK;
  for (size_t i = 0; i < net->nassociations && rc == KILN_OK; i++) {
    struct kiln_aws_params p = {0};
    kiln_aws_params_add(&p, "AssociationId", net->associations[i]);
    rc = kiln_awsenv_mutate(env, "ec2", "DisassociateRouteTable", &p, net->associations[i],
                            kiln_awsenv_gone, NULL, err);
    kiln_aws_params_clear(&p);
  }
  if (rc == KILN_OK && net->route_table_id)
    rc = kiln_awsenv_delete_waiting(env, "DeleteRouteTable", "RouteTableId", net->route_table_id,
                                    "route table", err);
  if (rc == KILN_OK && net->igw_id && net->igw_attached && net->vpc_id) {
    struct kiln_aws_params p = {0};
    kiln_aws_params_add(&p, "InternetGatewayId", net->igw_id);
    kiln_aws_params_add(&p, "VpcId", net->vpc_id);
    rc = kiln_awsenv_mutate(env, "ec2", "DetachInternetGateway", &p, net->igw_id, kiln_awsenv_gone,
                            NULL, err);
    kiln_aws_params_clear(&p);
  }
  if (rc == KILN_OK && net->igw_id)
    rc = kiln_awsenv_delete(env, "ec2", "DeleteInternetGateway", "InternetGatewayId", net->igw_id,
                            "internet gateway", err);
  return rc;
}

const struct kiln_aws_resource kiln_res_routes = {
    .name = "routes",
    .find = routes_find,
    .ensure = routes_ensure,
    .exists = routes_exist,
    .teardown = routes_teardown,
};
