/* The deployment's network as one value (VPC, subnets, gateway and routes, security group) for the
 * actions that read it whole (deploy, update-policy); each part is its resource kind's module. */
#include <stdlib.h>
#include <string.h>

#include "byoc.h"

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

kiln_err kiln_network_find(struct kiln_awsenv *env, struct kiln_network *net,
                           struct kiln_error *err)
{
  memset(net, 0, sizeof(*net));
  kiln_err rc = kiln_network_find_vpc(env, net, err);
  if (rc == KILN_OK)
    rc = kiln_network_find_subnets(env, net, err);
  if (rc == KILN_OK)
    rc = kiln_network_find_routes(env, net, err);
  if (rc == KILN_OK)
    rc = kiln_network_find_sg(env, net, err);
  return rc;
}
