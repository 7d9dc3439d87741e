/* Resource kind "subnets": one public subnet per availability zone (up to KILN_MAX_SUBNETS) in
 * the VPC, found by tag; in the user's VPC, the subnets the user tagged. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resource.h"

kiln_err kiln_network_find_subnets(struct kiln_awsenv *env, struct kiln_network *net,
                                   struct kiln_error *err)
{
  struct kiln_xml *doc = NULL;
  kiln_err rc;
  if (!net->vpc_id)
    return KILN_OK;
  if ((rc = kiln_awsenv_describe_tagged(env, "DescribeSubnets", "vpc-id", net->vpc_id, &doc,
                                        err)) != KILN_OK)
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
  return KILN_OK;
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
      rc = kiln_awsenv_take_id(env, doc, "subnetId", "subnet-(new)",
                               &net->subnet_ids[net->nsubnets], err);
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

static kiln_err subnets_find(struct kiln_walk *w, struct kiln_error *err)
{
  return kiln_network_find_subnets(w->env, &w->net, err);
}

static kiln_err subnets_ensure(struct kiln_walk *w, struct kiln_error *err)
{
  return ensure_subnets(w->env, &w->net, err);
}

static int subnets_exist(const struct kiln_walk *w)
{
  return w->net.nsubnets > 0;
}

static void subnets_fields(const struct kiln_walk *w, cJSON *meta)
{
  cJSON_AddItemToObject(meta, "subnet_ids",
                        kiln_json_string_array(w->net.subnet_ids, w->net.nsubnets));
  kiln_doc_label(meta, "subnet_ids", "subnets");
}

static kiln_err subnets_teardown(struct kiln_walk *w, struct kiln_error *err)
{
  kiln_err rc = KILN_OK;
  for (size_t i = 0; i < w->net.nsubnets && rc == KILN_OK; i++)
    rc = kiln_awsenv_delete_waiting(w->env, "DeleteSubnet", "SubnetId", w->net.subnet_ids[i],
                                    "subnet", err);
  return rc;
}

const struct kiln_aws_resource kiln_res_subnets = {
    .name = "subnets",
    .find = subnets_find,
    .ensure = subnets_ensure,
    .exists = subnets_exist,
    .fields = subnets_fields,
    .teardown = subnets_teardown,
};
