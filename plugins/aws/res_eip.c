/* Resource kind "eip": the deployment's Elastic IP, associated with a serving instance once
 * deploy has started one. */
#include <stdlib.h>
#include <string.h>

#include "resource.h"

kiln_err kiln_fleet_find_address(struct kiln_awsenv *env, struct kiln_fleet *f,
                                 struct kiln_error *err)
{
  struct kiln_aws_params p = {0};
  struct kiln_xml *doc = NULL;
  int n = 1;
  kiln_awsenv_tag_filter(env, &p, &n);
  kiln_aws_params_add(&p, "Filter.2.Name", "tag:Name"); /* not the load balancer's (res_nlb.c) */
  kiln_aws_params_add(&p, "Filter.2.Value.1", env->names.asg);
  kiln_err rc = kiln_awsenv_read(env, "ec2", "DescribeAddresses", &p, &doc, err);
  kiln_aws_params_clear(&p);
  if (rc == KILN_OK) {
    const struct kiln_xml *a = kiln_awsenv_items(doc, "addressesSet");
    if (a) {
      f->eip_allocation = kiln_awsenv_dup(kiln_xml_text(a, "allocationId"));
      f->eip_address = kiln_awsenv_dup(kiln_xml_text(a, "publicIp"));
      const char *inst = kiln_xml_text(a, "instanceId");
      f->eip_instance = inst && *inst ? strdup(inst) : NULL;
    }
  }
  kiln_xml_free(doc);
  return rc;
}

static kiln_err eip_find(struct kiln_walk *w, struct kiln_error *err)
{
  return kiln_fleet_find_address(w->env, &w->fleet, err);
}

static kiln_err eip_teardown(struct kiln_walk *w, struct kiln_error *err);

static kiln_err eip_ensure(struct kiln_walk *w, struct kiln_error *err)
{
  if (w->scale.nlb) /* clients reach the load balancer: the single-instance address goes */
    return eip_teardown(w, err);
  return kiln_fleet_ensure_address(w->env, &w->fleet, err);
}

static int eip_exists(const struct kiln_walk *w)
{
  return w->fleet.eip_allocation != NULL;
}

static void eip_fields(const struct kiln_walk *w, cJSON *meta)
{
  kiln_json_add_string(meta, "eip", w->fleet.eip_address);
  kiln_json_add_string(meta, "eip_instance", w->fleet.eip_instance);
  kiln_doc_label(meta, "eip", "Elastic IP");
}

static kiln_err eip_teardown(struct kiln_walk *w, struct kiln_error *err)
{
  struct kiln_awsenv *env = w->env;
  struct kiln_fleet *f = &w->fleet;
  kiln_err rc = KILN_OK;
  if (rc == KILN_OK && f->eip_allocation) {
    if (f->eip_instance) {
      struct kiln_aws_params p = {0};
      kiln_aws_params_add(&p, "PublicIp", f->eip_address ? f->eip_address : "");
      rc = kiln_awsenv_mutate(env, "ec2", "DisassociateAddress", &p, "the Elastic IP",
                              kiln_awsenv_gone, NULL, err);
      kiln_aws_params_clear(&p);
    }
    if (rc == KILN_OK)
      rc = kiln_awsenv_delete(env, "ec2", "ReleaseAddress", "AllocationId", f->eip_allocation,
                              "Elastic IP", err);
    if (rc == KILN_OK) {
      free(f->eip_allocation);
      free(f->eip_address);
      free(f->eip_instance);
      f->eip_allocation = f->eip_address = f->eip_instance = NULL;
    }
  }
  return rc;
}

const struct kiln_aws_resource kiln_res_eip = {
    .name = "eip",
    .find = eip_find,
    .ensure = eip_ensure,
    .exists = eip_exists,
    .fields = eip_fields,
    .teardown = eip_teardown,
};
