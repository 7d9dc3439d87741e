/* Resource kind "vpc": the deployment's VPC, found by tag (or the user's, given by VPC_ID, which
 * kiln uses but never creates or deletes), created with DNS hostnames on. */
#include <stdlib.h>
#include <string.h>

#include "resource.h"

kiln_err kiln_network_find_vpc(struct kiln_awsenv *env, struct kiln_network *net,
                               struct kiln_error *err)
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
  rc = kiln_awsenv_describe_tagged(env, "DescribeVpcs", NULL, NULL, &doc, err);
  if (rc == KILN_OK)
    net->vpc_id = kiln_awsenv_dup(kiln_awsenv_first(kiln_xml_find(doc, "vpcSet"), "vpcId"));
  kiln_xml_free(doc);
  return rc;
}

static kiln_err vpc_find(struct kiln_walk *w, struct kiln_error *err)
{
  struct kiln_awsenv *env = w->env;
  if (w->mode != KILN_WALK_TEARDOWN)
    return kiln_network_find_vpc(env, &w->net, err);
  char *reused = env->dep.vpc_id;
  env->dep.vpc_id = NULL; /* only the tagged VPC is kiln's to delete */
  kiln_err rc = kiln_network_find_vpc(env, &w->net, err);
  env->dep.vpc_id = reused;
  if (rc == KILN_OK && !w->net.vpc_id && reused) { /* the user's: only our pieces inside it */
    if (!(w->net.vpc_id = strdup(reused)))
      return kiln_error_set(err, KILN_E_NOMEM, "out of memory");
    w->net.vpc_reused = 1;
  }
  return rc;
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
    rc = kiln_awsenv_take_id(env, doc, "vpcId", "vpc-(new)", &net->vpc_id, err);
  if (rc != KILN_OK)
    return rc;
  kiln_aws_params_add(&p, "VpcId", net->vpc_id);
  kiln_aws_params_add(&p, "EnableDnsHostnames.Value", "true");
  rc = kiln_awsenv_mutate(env, "ec2", "ModifyVpcAttribute", &p, net->vpc_id, NULL, NULL, err);
  kiln_aws_params_clear(&p);
  return rc;
}

static kiln_err vpc_ensure(struct kiln_walk *w, struct kiln_error *err)
{
  return ensure_vpc(w->env, &w->net, err);
}

static int vpc_exists(const struct kiln_walk *w)
{
  return w->net.vpc_id != NULL;
}

static void vpc_fields(const struct kiln_walk *w, cJSON *meta)
{
  kiln_json_add_string(meta, "vpc_id", w->net.vpc_id);
  kiln_doc_label(meta, "vpc_id", "VPC");
}

static kiln_err vpc_teardown(struct kiln_walk *w, struct kiln_error *err)
{
  if (!w->net.vpc_id || w->net.vpc_reused)
    return KILN_OK;
  return kiln_awsenv_delete_waiting(w->env, "DeleteVpc", "VpcId", w->net.vpc_id, "VPC", err);
}

const struct kiln_aws_resource kiln_res_vpc = {
    .name = "vpc",
    .find = vpc_find,
    .ensure = vpc_ensure,
    .exists = vpc_exists,
    .fields = vpc_fields,
    .teardown = vpc_teardown,
};
