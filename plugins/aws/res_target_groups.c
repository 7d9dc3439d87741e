/* Resource kind "target-groups" (nlb mode): one target group of instance targets per public
 * port, TCP, with the health check on the health port (TCP, or HTTP with /aws/health_path).
 * Found by the deployment tag; the Auto Scaling group registers its instances (nothing is
 * registered by hand). Target groups for ports no longer served are deleted by res_nlb.c after
 * their listeners. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "resource.h"
#include "util/hash.h"

#define ELB_TAG_BATCH 20 /* DescribeTags takes at most 20 ARNs */

void kiln_lb_target_group_name(const char *id, int port, char *name, size_t n)
{
  snprintf(name, n, "%s-%d", id, port);
  if (strlen(name) <= 32)
    return;
  char digest[KILN_SHA256_HEX_LEN + 1];
  kiln_sha256_hex(id, strlen(id), digest);
  char suffix[24];
  int len = snprintf(suffix, sizeof(suffix), "-%.6s-%d", digest, port);
  snprintf(name, n, "%.*s%s", 32 - len, id, suffix);
  size_t cut = (size_t)(32 - len);
  while (cut > 0 && name[cut - 1] == '-') { /* no "--" in a target group name */
    memmove(name + cut - 1, name + cut, strlen(name + cut) + 1);
    cut--;
  }
}

kiln_err kiln_lb_tags(struct kiln_awsenv *env, struct kiln_aws_params *p, const char *name)
{
  const char *tags[3][2] = {
      {env->dep.tag_key, env->dep.id}, {"kiln:managed", "true"}, {"Name", name}};
  kiln_err rc = KILN_OK;
  for (int i = 0; i < 3 && rc == KILN_OK; i++) {
    char key[48];
    snprintf(key, sizeof(key), "Tags.member.%d.Key", i + 1);
    rc = kiln_aws_params_add(p, key, tags[i][0]);
    snprintf(key, sizeof(key), "Tags.member.%d.Value", i + 1);
    if (rc == KILN_OK)
      rc = kiln_aws_params_add(p, key, tags[i][1]);
  }
  return rc;
}

void kiln_lb_clear(struct kiln_lb *lb)
{
  for (size_t i = 0; i < lb->ntgs; i++) {
    free(lb->tgs[i].arn);
    free(lb->tgs[i].name);
    free(lb->tgs[i].health_protocol);
    free(lb->tgs[i].health_path);
  }
  free(lb->arn);
  free(lb->dns_name);
  free(lb->lb_state);
  for (size_t i = 0; i < lb->nlisteners; i++) {
    free(lb->listener_arns[i]);
    free(lb->listener_targets[i]);
  }
  for (size_t i = 0; i < lb->nstatic; i++) {
    free(lb->static_allocations[i]);
    free(lb->static_ips[i]);
  }
  memset(lb, 0, sizeof(*lb));
}

/* Which of the ARNs carry the deployment tag (ELB DescribeTags, 20 at a time). */
static kiln_err tagged_arns(struct kiln_awsenv *env, char **arns, size_t n, int *tagged,
                            struct kiln_error *err)
{
  kiln_err rc = KILN_OK;
  for (size_t start = 0; start < n && rc == KILN_OK; start += ELB_TAG_BATCH) {
    struct kiln_aws_params p = {0};
    struct kiln_xml *doc = NULL;
    for (size_t i = start; i < n && i < start + ELB_TAG_BATCH; i++) {
      char key[40];
      snprintf(key, sizeof(key), "ResourceArns.member.%zu", i - start + 1);
      kiln_aws_params_add(&p, key, arns[i]);
    }
    rc = kiln_awsenv_read(env, "elasticloadbalancing", "DescribeTags", &p, &doc, err);
    kiln_aws_params_clear(&p);
    const struct kiln_xml *d = rc == KILN_OK ? kiln_awsenv_items(doc, "TagDescriptions") : NULL;
    for (; d; d = kiln_xml_next_same(d)) {
      const char *arn = kiln_xml_text(d, "ResourceArn");
      int ours = 0;
      for (const struct kiln_xml *t = kiln_awsenv_items(d, "Tags"); t; t = kiln_xml_next_same(t)) {
        const char *k = kiln_xml_text(t, "Key"), *v = kiln_xml_text(t, "Value");
        ours |= k && v && strcmp(k, env->dep.tag_key) == 0 && strcmp(v, env->dep.id) == 0;
      }
      for (size_t i = start; arn && i < n && i < start + ELB_TAG_BATCH; i++)
        if (strcmp(arns[i], arn) == 0)
          tagged[i] = ours;
    }
    kiln_xml_free(doc);
  }
  return rc;
}

#define PAGE_SIZE 100

static void free_target_group(struct kiln_target_group *tg)
{
  free(tg->arn);
  free(tg->name);
  free(tg->health_protocol);
  free(tg->health_path);
  memset(tg, 0, sizeof(*tg));
}

/* One page of the region's target groups: ours (by tag) kept in lb. */
static kiln_err keep_tagged(struct kiln_awsenv *env, struct kiln_lb *lb,
                            struct kiln_target_group *page, size_t n, struct kiln_error *err)
{
  char *arns[PAGE_SIZE];
  int tagged[PAGE_SIZE] = {0};
  for (size_t i = 0; i < n; i++)
    arns[i] = page[i].arn;
  kiln_err rc = n ? tagged_arns(env, arns, n, tagged, err) : KILN_OK;
  for (size_t i = 0; i < n; i++) {
    if (rc == KILN_OK && tagged[i] && lb->ntgs < KILN_MAX_PORTS * 2)
      lb->tgs[lb->ntgs++] = page[i];
    else
      free_target_group(&page[i]);
  }
  return rc;
}

kiln_err kiln_lb_find_target_groups(struct kiln_awsenv *env, struct kiln_lb *lb,
                                    struct kiln_error *err)
{
  char *marker = NULL;
  kiln_err rc = KILN_OK;
  do { /* every target group of the region, page by page; ours carry the tag */
    struct kiln_target_group page[PAGE_SIZE];
    size_t n = 0;
    struct kiln_aws_params p = {0};
    struct kiln_xml *doc = NULL;
    memset(page, 0, sizeof(page));
    kiln_aws_params_addf(&p, "PageSize", "%d", PAGE_SIZE);
    if (marker)
      kiln_aws_params_add(&p, "Marker", marker);
    free(marker);
    marker = NULL;
    rc = kiln_awsenv_read(env, "elasticloadbalancing", "DescribeTargetGroups", &p, &doc, err);
    kiln_aws_params_clear(&p);
    if (rc != KILN_OK)
      break;
    for (const struct kiln_xml *g = kiln_awsenv_items(doc, "TargetGroups"); g && n < PAGE_SIZE;
         g = kiln_xml_next_same(g)) {
      const char *port = kiln_xml_text(g, "Port"), *hport = kiln_xml_text(g, "HealthCheckPort");
      page[n].arn = kiln_awsenv_dup(kiln_xml_text(g, "TargetGroupArn"));
      page[n].name = kiln_awsenv_dup(kiln_xml_text(g, "TargetGroupName"));
      page[n].port = port ? atoi(port) : 0;
      page[n].health_protocol = kiln_awsenv_dup(kiln_xml_text(g, "HealthCheckProtocol"));
      page[n].health_path = kiln_awsenv_dup(kiln_xml_text(g, "HealthCheckPath"));
      page[n].health_port = hport && strcmp(hport, "traffic-port") ? atoi(hport) : page[n].port;
      if (page[n].arn)
        n++;
      else
        free_target_group(&page[n]);
    }
    marker = kiln_awsenv_dup(kiln_awsenv_first(doc, "NextMarker"));
    kiln_xml_free(doc);
    rc = keep_tagged(env, lb, page, n, err);
  } while (rc == KILN_OK && marker);
  free(marker);
  return rc;
}

static struct kiln_target_group *for_port(struct kiln_lb *lb, int port)
{
  for (size_t i = 0; i < lb->ntgs; i++)
    if (lb->tgs[i].port == port)
      return &lb->tgs[i];
  return NULL;
}

static void health_params(const struct kiln_scale *s, struct kiln_aws_params *p)
{
  kiln_aws_params_add(p, "HealthCheckProtocol", s->health_path ? "HTTP" : "TCP");
  kiln_aws_params_addf(p, "HealthCheckPort", "%d", s->health_port);
  if (s->health_path)
    kiln_aws_params_add(p, "HealthCheckPath", s->health_path);
  kiln_aws_params_add(p, "HealthCheckIntervalSeconds", "10");
  kiln_aws_params_add(p, "HealthyThresholdCount", "3");
  kiln_aws_params_add(p, "UnhealthyThresholdCount", "3");
}

static int health_differs(const struct kiln_target_group *tg, const struct kiln_scale *s)
{
  const char *want = s->health_path ? "HTTP" : "TCP";
  if (!tg->health_protocol || strcmp(tg->health_protocol, want) != 0 ||
      tg->health_port != s->health_port)
    return 1;
  return s->health_path && (!tg->health_path || strcmp(tg->health_path, s->health_path) != 0);
}

static kiln_err create_target_group(struct kiln_walk *w, int port, struct kiln_error *err)
{
  struct kiln_awsenv *env = w->env;
  struct kiln_aws_params p = {0};
  struct kiln_xml *doc = NULL;
  char name[40];
  kiln_lb_target_group_name(env->dep.id, port, name, sizeof(name));
  kiln_awsenv_announce(env, "create", name,
                       "target group: TCP %d, instance targets, %s health check", port,
                       w->scale.health_path ? "HTTP" : "TCP");
  kiln_aws_params_add(&p, "Name", name);
  kiln_aws_params_add(&p, "Protocol", "TCP");
  kiln_aws_params_addf(&p, "Port", "%d", port);
  kiln_aws_params_add(&p, "VpcId", w->net.vpc_id ? w->net.vpc_id : "(new)");
  kiln_aws_params_add(&p, "TargetType", "instance");
  health_params(&w->scale, &p);
  kiln_lb_tags(env, &p, name);
  struct kiln_aws_error_info info;
  kiln_err rc = KILN_OK;
  env->mutations++;
  if (!env->dry_run)
    rc = kiln_aws_query(env->c, "elasticloadbalancing", "CreateTargetGroup", &p, &doc, &info, err);
  kiln_aws_params_clear(&p);
  if (rc != KILN_OK && strcmp(info.code, "DuplicateTargetGroupName") == 0) {
    kiln_error_clear(err);
    rc = kiln_error_set(err, KILN_E_INVALID,
                        "target group name %s is taken by a target group without this "
                        "deployment's tag (%s=%s): delete or rename it, or use another "
                        "deployment id",
                        name, env->dep.tag_key, env->dep.id);
  } else if (rc != KILN_OK) {
    rc = kiln_error_prefix(err, "target group %s", name);
  }
  if (rc == KILN_OK && w->lb.ntgs < KILN_MAX_PORTS * 2) {
    struct kiln_target_group *tg = &w->lb.tgs[w->lb.ntgs++];
    const char *arn =
        env->dry_run ? "(new target group)" : kiln_awsenv_first(doc, "TargetGroupArn");
    tg->arn = kiln_awsenv_dup(arn ? arn : "(unknown)");
    tg->name = strdup(name);
    tg->port = port;
    tg->health_protocol = strdup(w->scale.health_path ? "HTTP" : "TCP");
    tg->health_path = kiln_awsenv_dup(w->scale.health_path);
    tg->health_port = w->scale.health_port;
  }
  kiln_xml_free(doc);
  return rc;
}

static kiln_err tg_find(struct kiln_walk *w, struct kiln_error *err)
{
  kiln_err rc = kiln_lb_find_target_groups(w->env, &w->lb, err);
  if (rc == KILN_E_AUTH && w->mode == KILN_WALK_STATUS) { /* credentials from before the NLB */
    kiln_aws_client_log(w->env->c, KILN_LOG_INFO,
                        "the load balancer is not readable with these credentials: run `kiln "
                        "update-policy` (the deploy policy gained the Rollout statements)");
    kiln_error_clear(err);
    rc = KILN_OK;
  }
  return rc;
}

static kiln_err tg_ensure(struct kiln_walk *w, struct kiln_error *err)
{
  kiln_err rc = KILN_OK;
  if (!w->scale.nlb)
    return KILN_OK; /* eip mode: res_nlb.c deletes them after the listeners */
  for (size_t i = 0; i < w->nports && rc == KILN_OK; i++) {
    struct kiln_target_group *tg = for_port(&w->lb, w->ports[i]);
    if (!tg) {
      rc = create_target_group(w, w->ports[i], err);
    } else if (health_differs(tg, &w->scale)) {
      struct kiln_aws_params p = {0};
      kiln_awsenv_announce(w->env, "update", tg->name, "health check %s on port %d%s%s",
                           w->scale.health_path ? "HTTP" : "TCP", w->scale.health_port,
                           w->scale.health_path ? " " : "",
                           w->scale.health_path ? w->scale.health_path : "");
      kiln_aws_params_add(&p, "TargetGroupArn", tg->arn);
      health_params(&w->scale, &p);
      rc = kiln_awsenv_mutate(w->env, "elasticloadbalancing", "ModifyTargetGroup", &p, tg->name,
                              NULL, NULL, err);
      kiln_aws_params_clear(&p);
    } else {
      kiln_awsenv_announce(w->env, "nothing", tg->name, "TCP %d, %s health check on %d", tg->port,
                           tg->health_protocol, tg->health_port);
    }
  }
  return rc;
}

static int tg_exists(const struct kiln_walk *w)
{
  return w->lb.ntgs > 0;
}

static void tg_fields(const struct kiln_walk *w, cJSON *meta)
{
  if (w->lb.ntgs == 0)
    return;
  cJSON *a = cJSON_AddArrayToObject(meta, "target_groups");
  for (size_t i = 0; i < w->lb.ntgs; i++) {
    const struct kiln_target_group *tg = &w->lb.tgs[i];
    cJSON *o = cJSON_CreateObject();
    kiln_json_add_string(o, "name", tg->name);
    kiln_json_add_string(o, "arn", tg->arn);
    cJSON_AddNumberToObject(o, "port", tg->port);
    kiln_json_add_string(o, "health_check", tg->health_protocol);
    kiln_json_add_string(o, "health_path", tg->health_path);
    cJSON_AddNumberToObject(o, "health_port", tg->health_port);
    cJSON_AddItemToArray(a, o);
  }
}

kiln_err kiln_lb_prune_target_groups(struct kiln_walk *w, const int *ports, size_t nports,
                                     struct kiln_error *err)
{
  kiln_err rc = KILN_OK;
  for (size_t i = 0; i < w->lb.ntgs && rc == KILN_OK; i++) {
    struct kiln_target_group *tg = &w->lb.tgs[i];
    int wanted = 0;
    for (size_t j = 0; j < nports; j++)
      wanted |= ports[j] == tg->port;
    if (wanted || !tg->arn)
      continue;
    for (int attempt = 0; attempt < 30; attempt++) { /* in use until its listener is gone */
      rc = kiln_awsenv_delete(w->env, "elasticloadbalancing", "DeleteTargetGroup", "TargetGroupArn",
                              tg->arn, "target group", err);
      if (rc == KILN_OK || !strstr(kiln_error_msg(err), "ResourceInUse"))
        break;
      kiln_error_clear(err);
      w->env->mutations--;
      sleep(2);
    }
    if (rc == KILN_OK) {
      free(tg->arn);
      tg->arn = NULL;
    }
  }
  return rc;
}

static kiln_err tg_teardown(struct kiln_walk *w, struct kiln_error *err)
{
  return kiln_lb_prune_target_groups(w, NULL, 0, err);
}

static void tg_clear(struct kiln_walk *w)
{
  kiln_lb_clear(&w->lb);
}

const struct kiln_aws_resource kiln_res_target_groups = {
    .name = "target-groups",
    .find = tg_find,
    .ensure = tg_ensure,
    .exists = tg_exists,
    .fields = tg_fields,
    .teardown = tg_teardown,
    .clear = tg_clear,
};
