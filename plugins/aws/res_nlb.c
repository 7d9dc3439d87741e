/* Resource kind "nlb": the deployment's Network Load Balancer (nlb mode) across its subnets, one
 * TCP listener per public port forwarding to that port's target group (TCP pass-through: TLS ends
 * inside the enclave), and optionally one Elastic IP per subnet as its static addresses. In eip
 * mode the load balancer, its addresses and the target groups are deleted, so switching modes
 * converges. Named after the deployment id; a load balancer of that name without the deployment
 * tag is refused, never used. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "resource.h"

#define NLB_ADDRESS_SUFFIX "-nlb"

static kiln_err describe_lb(struct kiln_walk *w, int *foreign, struct kiln_error *err)
{
  struct kiln_awsenv *env = w->env;
  struct kiln_aws_params p = {0};
  struct kiln_xml *doc = NULL;
  struct kiln_aws_error_info info;
  kiln_aws_params_add(&p, "Names.member.1", env->names.asg);
  kiln_err rc =
      kiln_aws_query(env->c, "elasticloadbalancing", "DescribeLoadBalancers", &p, &doc, &info, err);
  kiln_aws_params_clear(&p);
  if (rc != KILN_OK && strcmp(info.code, "LoadBalancerNotFound") == 0) {
    kiln_error_clear(err);
    return KILN_OK;
  }
  if (rc != KILN_OK)
    return rc;
  const struct kiln_xml *lb = kiln_awsenv_items(doc, "LoadBalancers");
  if (lb) {
    w->lb.arn = kiln_awsenv_dup(kiln_xml_text(lb, "LoadBalancerArn"));
    w->lb.dns_name = kiln_awsenv_dup(kiln_xml_text(lb, "DNSName"));
    w->lb.lb_state = kiln_awsenv_dup(kiln_xml_text(lb, "State/Code"));
    for (const struct kiln_xml *z = kiln_awsenv_items(lb, "AvailabilityZones"); z;
         z = kiln_xml_next_same(z)) {
      w->lb.nzones++;
      const struct kiln_xml *a = kiln_awsenv_items(z, "LoadBalancerAddresses");
      w->lb.lb_has_static |= a && kiln_xml_text(a, "AllocationId") != NULL;
    }
  }
  kiln_xml_free(doc);
  if (!w->lb.arn)
    return KILN_OK;
  /* ours only with the deployment tag */
  kiln_aws_params_add(&p, "ResourceArns.member.1", w->lb.arn);
  rc = kiln_awsenv_read(env, "elasticloadbalancing", "DescribeTags", &p, &doc, err);
  kiln_aws_params_clear(&p);
  int ours = 0;
  for (const struct kiln_xml *t = rc == KILN_OK ? kiln_awsenv_items(doc, "Tags") : NULL; t;
       t = kiln_xml_next_same(t)) {
    const char *k = kiln_xml_text(t, "Key"), *v = kiln_xml_text(t, "Value");
    ours |= k && v && strcmp(k, env->dep.tag_key) == 0 && strcmp(v, env->dep.id) == 0;
  }
  kiln_xml_free(doc);
  *foreign = rc == KILN_OK && !ours;
  return rc;
}

static kiln_err describe_listeners(struct kiln_walk *w, struct kiln_error *err)
{
  struct kiln_aws_params p = {0};
  struct kiln_xml *doc = NULL;
  kiln_aws_params_add(&p, "LoadBalancerArn", w->lb.arn);
  kiln_err rc =
      kiln_awsenv_read(w->env, "elasticloadbalancing", "DescribeListeners", &p, &doc, err);
  kiln_aws_params_clear(&p);
  for (const struct kiln_xml *l = rc == KILN_OK ? kiln_awsenv_items(doc, "Listeners") : NULL;
       l && w->lb.nlisteners < KILN_MAX_PORTS * 2; l = kiln_xml_next_same(l)) {
    const char *port = kiln_xml_text(l, "Port");
    const struct kiln_xml *action = kiln_awsenv_items(l, "DefaultActions");
    size_t i = w->lb.nlisteners++;
    w->lb.listener_arns[i] = kiln_awsenv_dup(kiln_xml_text(l, "ListenerArn"));
    w->lb.listener_ports[i] = port ? atoi(port) : 0;
    w->lb.listener_targets[i] =
        kiln_awsenv_dup(action ? kiln_xml_text(action, "TargetGroupArn") : NULL);
  }
  kiln_xml_free(doc);
  return rc;
}

static kiln_err describe_static_addresses(struct kiln_walk *w, struct kiln_error *err)
{
  struct kiln_aws_params p = {0};
  struct kiln_xml *doc = NULL;
  int n = 1;
  char name[64];
  snprintf(name, sizeof(name), "%s%s", w->env->names.asg, NLB_ADDRESS_SUFFIX);
  kiln_awsenv_tag_filter(w->env, &p, &n);
  kiln_aws_params_add(&p, "Filter.2.Name", "tag:Name");
  kiln_aws_params_add(&p, "Filter.2.Value.1", name);
  kiln_err rc = kiln_awsenv_read(w->env, "ec2", "DescribeAddresses", &p, &doc, err);
  kiln_aws_params_clear(&p);
  for (const struct kiln_xml *a = rc == KILN_OK ? kiln_awsenv_items(doc, "addressesSet") : NULL;
       a && w->lb.nstatic < KILN_MAX_SUBNETS; a = kiln_xml_next_same(a)) {
    w->lb.static_allocations[w->lb.nstatic] = kiln_awsenv_dup(kiln_xml_text(a, "allocationId"));
    w->lb.static_ips[w->lb.nstatic++] = kiln_awsenv_dup(kiln_xml_text(a, "publicIp"));
  }
  kiln_xml_free(doc);
  return rc;
}

static kiln_err nlb_find(struct kiln_walk *w, struct kiln_error *err)
{
  int foreign = 0;
  kiln_err rc = describe_lb(w, &foreign, err);
  if (rc == KILN_E_AUTH && w->mode == KILN_WALK_STATUS) { /* said by res_target_groups.c */
    kiln_error_clear(err);
    return KILN_OK;
  }
  if (rc == KILN_OK && foreign) { /* someone else's: never touched, refused by ensure */
    w->state[kiln_aws_resource_index(&kiln_res_nlb)] = (void *)1;
    free(w->lb.arn);
    w->lb.arn = NULL;
  }
  if (rc == KILN_OK && w->lb.arn)
    rc = describe_listeners(w, err);
  if (rc == KILN_OK)
    rc = describe_static_addresses(w, err);
  /* the load balancer's own addresses are allocated just before it is created with them, and
   * released only with it: their existence says how it was made, also where ELB's answer does
   * not list them */
  if (rc == KILN_OK && w->lb.arn && w->lb.nstatic)
    w->lb.lb_has_static = 1;
  return rc;
}

/* AWS's quota codes, named with what to do. */
static kiln_err lb_error(struct kiln_awsenv *env, const char *what, struct kiln_error *err)
{
  static const char *const quotas[] = {"TooManyLoadBalancers", "TooManyTargetGroups",
                                       "TooManyListeners",     "TooManyTargets",
                                       "AddressLimitExceeded", NULL};
  for (size_t i = 0; quotas[i]; i++)
    if (strstr(kiln_error_msg(err), quotas[i]))
      return kiln_error_prefix(err,
                               "%s: the account's %s quota in %s is reached (%s); delete unused "
                               "ones or request an increase in Service Quotas",
                               what, quotas[i], env->dep.region ? env->dep.region : "this region",
                               quotas[i]);
  return KILN_E_REMOTE;
}

static kiln_err release_static(struct kiln_walk *w, struct kiln_error *err)
{
  kiln_err rc = KILN_OK;
  for (size_t i = 0; i < w->lb.nstatic && rc == KILN_OK; i++) {
    for (int attempt = 0; attempt < 30; attempt++) { /* in use until the NLB is gone */
      rc = kiln_awsenv_delete(w->env, "ec2", "ReleaseAddress", "AllocationId",
                              w->lb.static_allocations[i], "load balancer Elastic IP", err);
      if (rc == KILN_OK || !strstr(kiln_error_msg(err), "InUse"))
        break;
      kiln_error_clear(err);
      w->env->mutations--;
      sleep(2);
    }
  }
  for (size_t i = 0; rc == KILN_OK && i < w->lb.nstatic; i++) {
    free(w->lb.static_allocations[i]);
    free(w->lb.static_ips[i]);
  }
  if (rc == KILN_OK)
    w->lb.nstatic = 0;
  return rc;
}

static kiln_err delete_lb(struct kiln_walk *w, struct kiln_error *err)
{
  if (!w->lb.arn)
    return KILN_OK;
  struct kiln_aws_params p = {0};
  kiln_awsenv_announce(w->env, "delete", w->env->names.asg, "Network Load Balancer %s",
                       w->lb.dns_name ? w->lb.dns_name : "");
  kiln_aws_params_add(&p, "LoadBalancerArn", w->lb.arn);
  static const char *const gone[] = {"LoadBalancerNotFound", NULL};
  kiln_err rc = kiln_awsenv_mutate(w->env, "elasticloadbalancing", "DeleteLoadBalancer", &p,
                                   w->env->names.asg, gone, NULL, err);
  kiln_aws_params_clear(&p);
  if (rc == KILN_OK) {
    for (size_t i = 0; i < w->lb.nlisteners; i++) {
      free(w->lb.listener_arns[i]);
      free(w->lb.listener_targets[i]);
    }
    w->lb.nlisteners = 0;
    free(w->lb.arn);
    free(w->lb.dns_name);
    free(w->lb.lb_state);
    w->lb.arn = w->lb.dns_name = w->lb.lb_state = NULL;
    w->lb.lb_has_static = 0;
  }
  return rc;
}

static kiln_err allocate_static(struct kiln_walk *w, struct kiln_error *err)
{
  char name[64];
  kiln_err rc = KILN_OK;
  snprintf(name, sizeof(name), "%s%s", w->env->names.asg, NLB_ADDRESS_SUFFIX);
  while (w->lb.nstatic < w->net.nsubnets && rc == KILN_OK) {
    struct kiln_aws_params p = {0};
    struct kiln_xml *doc = NULL;
    kiln_awsenv_announce(w->env, "create", name, "Elastic IP for the load balancer in %s",
                         w->net.subnet_azs[w->lb.nstatic]);
    kiln_aws_params_add(&p, "Domain", "vpc");
    kiln_awsenv_tag_spec(w->env, &p, 1, "elastic-ip", name);
    rc = kiln_awsenv_mutate(w->env, "ec2", "AllocateAddress", &p, name, NULL, &doc, err);
    kiln_aws_params_clear(&p);
    if (rc == KILN_OK) {
      size_t i = w->lb.nstatic++;
      w->lb.static_allocations[i] = kiln_awsenv_dup(
          w->env->dry_run ? "(new address)" : kiln_awsenv_first(doc, "allocationId"));
      w->lb.static_ips[i] = kiln_awsenv_dup(kiln_awsenv_first(doc, "publicIp"));
    } else {
      rc = lb_error(w->env, name, err);
    }
    kiln_xml_free(doc);
  }
  return rc;
}

static kiln_err create_lb(struct kiln_walk *w, struct kiln_error *err)
{
  struct kiln_awsenv *env = w->env;
  struct kiln_aws_params p = {0};
  struct kiln_xml *doc = NULL;
  kiln_awsenv_announce(env, "create", env->names.asg,
                       "Network Load Balancer across %zu zones%s, internet-facing", w->net.nsubnets,
                       w->scale.static_addresses ? " with one Elastic IP each" : "");
  kiln_aws_params_add(&p, "Name", env->names.asg);
  kiln_aws_params_add(&p, "Type", "network");
  kiln_aws_params_add(&p, "Scheme", "internet-facing");
  for (size_t i = 0; i < w->net.nsubnets; i++) {
    char key[64];
    snprintf(key, sizeof(key), "SubnetMappings.member.%zu.SubnetId", i + 1);
    kiln_aws_params_add(&p, key, w->net.subnet_ids[i]);
    if (w->scale.static_addresses && i < w->lb.nstatic) {
      snprintf(key, sizeof(key), "SubnetMappings.member.%zu.AllocationId", i + 1);
      kiln_aws_params_add(&p, key, w->lb.static_allocations[i]);
    }
  }
  kiln_lb_tags(env, &p, env->names.asg);
  kiln_err rc = kiln_awsenv_mutate(env, "elasticloadbalancing", "CreateLoadBalancer", &p,
                                   env->names.asg, NULL, &doc, err);
  kiln_aws_params_clear(&p);
  if (rc != KILN_OK && strstr(kiln_error_msg(err), "DuplicateLoadBalancerName")) {
    kiln_error_clear(err);
    rc = kiln_error_set(err, KILN_E_INVALID,
                        "load balancer name %s is taken by a load balancer without this "
                        "deployment's tag: delete or rename it, or use another deployment id",
                        env->names.asg);
  } else if (rc != KILN_OK) {
    rc = lb_error(env, "load balancer", err);
  }
  if (rc == KILN_OK) {
    const struct kiln_xml *lb = kiln_awsenv_items(doc, "LoadBalancers");
    free(w->lb.arn);
    free(w->lb.dns_name);
    w->lb.arn = kiln_awsenv_dup(env->dry_run ? "(new load balancer)"
                                             : (lb ? kiln_xml_text(lb, "LoadBalancerArn") : NULL));
    w->lb.dns_name = kiln_awsenv_dup(lb ? kiln_xml_text(lb, "DNSName") : NULL);
    w->lb.lb_has_static = w->scale.static_addresses;
    w->lb.nzones = w->net.nsubnets;
    if (!w->lb.arn)
      rc = kiln_error_set(err, KILN_E_REMOTE, "CreateLoadBalancer: the answer has no ARN");
  }
  kiln_xml_free(doc);
  return rc;
}

static const char *target_for(const struct kiln_walk *w, int port)
{
  for (size_t i = 0; i < w->lb.ntgs; i++)
    if (w->lb.tgs[i].port == port && w->lb.tgs[i].arn)
      return w->lb.tgs[i].arn;
  return "(new target group)";
}

static kiln_err ensure_listeners(struct kiln_walk *w, struct kiln_error *err)
{
  struct kiln_awsenv *env = w->env;
  kiln_err rc = KILN_OK;
  for (size_t i = 0; i < w->nports && rc == KILN_OK; i++) {
    const char *tg = target_for(w, w->ports[i]);
    size_t j = 0;
    while (j < w->lb.nlisteners && w->lb.listener_ports[j] != w->ports[i])
      j++;
    struct kiln_aws_params p = {0};
    if (j == w->lb.nlisteners) {
      kiln_awsenv_announce(env, "create", env->names.asg, "TCP listener on %d -> target group",
                           w->ports[i]);
      kiln_aws_params_add(&p, "LoadBalancerArn", w->lb.arn);
      kiln_aws_params_add(&p, "Protocol", "TCP");
      kiln_aws_params_addf(&p, "Port", "%d", w->ports[i]);
      kiln_aws_params_add(&p, "DefaultActions.member.1.Type", "forward");
      kiln_aws_params_add(&p, "DefaultActions.member.1.TargetGroupArn", tg);
      kiln_lb_tags(env, &p, env->names.asg);
      rc = kiln_awsenv_mutate(env, "elasticloadbalancing", "CreateListener", &p, env->names.asg,
                              NULL, NULL, err);
      if (rc != KILN_OK)
        rc = lb_error(env, "listener", err);
    } else if (!w->lb.listener_targets[j] || strcmp(w->lb.listener_targets[j], tg) != 0) {
      kiln_awsenv_announce(env, "update", env->names.asg, "listener on %d -> its target group",
                           w->ports[i]);
      kiln_aws_params_add(&p, "ListenerArn", w->lb.listener_arns[j]);
      kiln_aws_params_add(&p, "DefaultActions.member.1.Type", "forward");
      kiln_aws_params_add(&p, "DefaultActions.member.1.TargetGroupArn", tg);
      rc = kiln_awsenv_mutate(env, "elasticloadbalancing", "ModifyListener", &p, env->names.asg,
                              NULL, NULL, err);
    } else {
      kiln_awsenv_announce(env, "nothing", env->names.asg, "TCP listener on %d", w->ports[i]);
    }
    kiln_aws_params_clear(&p);
  }
  for (size_t j = 0; j < w->lb.nlisteners && rc == KILN_OK; j++) {
    int wanted = 0;
    for (size_t i = 0; i < w->nports; i++)
      wanted |= w->ports[i] == w->lb.listener_ports[j];
    if (!wanted)
      rc = kiln_awsenv_delete(env, "elasticloadbalancing", "DeleteListener", "ListenerArn",
                              w->lb.listener_arns[j], "listener", err);
  }
  return rc;
}

static kiln_err nlb_ensure(struct kiln_walk *w, struct kiln_error *err)
{
  struct kiln_awsenv *env = w->env;
  kiln_err rc = KILN_OK;
  if (!w->scale.nlb) { /* eip mode: nothing of the load balancer stays */
    rc = delete_lb(w, err);
    if (rc == KILN_OK)
      rc = release_static(w, err);
    if (rc == KILN_OK)
      rc = kiln_lb_prune_target_groups(w, NULL, 0, err);
    return rc;
  }
  if (w->state[kiln_aws_resource_index(&kiln_res_nlb)])
    return kiln_error_set(err, KILN_E_INVALID,
                          "load balancer name %s is taken by a load balancer without this "
                          "deployment's tag (%s=%s): delete or rename it, or use another "
                          "deployment id",
                          env->names.asg, env->dep.tag_key, env->dep.id);
  if (w->net.nsubnets < 2)
    return kiln_error_set(err, KILN_E_INVALID,
                          "a Network Load Balancer needs subnets in at least 2 availability zones; "
                          "deployment %s has %zu in %s: use a region with 2 or more zones, or "
                          "/aws/load_balancer \"eip\" with count 1",
                          env->dep.id, w->net.nsubnets, env->dep.region ? env->dep.region : "?");
  if (w->lb.arn && w->lb.lb_has_static != w->scale.static_addresses) {
    kiln_awsenv_announce(env, "delete", env->names.asg,
                         "replaced: static addresses are set when a load balancer is created");
    rc = delete_lb(w, err);
  }
  if (rc == KILN_OK && !w->scale.static_addresses && !w->lb.arn)
    rc = release_static(w, err);
  if (rc == KILN_OK && w->scale.static_addresses && !w->lb.arn)
    rc = allocate_static(w, err);
  if (rc == KILN_OK && !w->lb.arn)
    rc = create_lb(w, err);
  else if (rc == KILN_OK)
    kiln_awsenv_announce(env, "nothing", env->names.asg, "Network Load Balancer %s",
                         w->lb.dns_name ? w->lb.dns_name : "");
  if (rc == KILN_OK)
    rc = ensure_listeners(w, err);
  if (rc == KILN_OK)
    rc = kiln_lb_prune_target_groups(w, w->ports, w->nports, err);
  return rc;
}

static int nlb_exists(const struct kiln_walk *w)
{
  return w->lb.arn != NULL;
}

static void nlb_fields(const struct kiln_walk *w, cJSON *meta)
{
  if (!w->lb.arn)
    return;
  cJSON_AddStringToObject(meta, "load_balancer", "nlb");
  kiln_json_add_string(meta, "load_balancer_dns", w->lb.dns_name);
  kiln_json_add_string(meta, "load_balancer_arn", w->lb.arn);
  kiln_doc_label(meta, "load_balancer_dns", "load balancer");
  if (w->lb.nstatic) {
    cJSON_AddItemToObject(meta, "load_balancer_ips",
                          kiln_json_string_array(w->lb.static_ips, w->lb.nstatic));
    kiln_doc_label(meta, "load_balancer_ips", "load balancer IPs");
  }
}

static kiln_err nlb_teardown(struct kiln_walk *w, struct kiln_error *err)
{
  kiln_err rc = delete_lb(w, err);
  if (rc == KILN_OK)
    rc = release_static(w, err);
  return rc;
}

const struct kiln_aws_resource kiln_res_nlb = {
    .name = "nlb",
    .find = nlb_find,
    .ensure = nlb_ensure,
    .exists = nlb_exists,
    .fields = nlb_fields,
    .teardown = nlb_teardown,
};
