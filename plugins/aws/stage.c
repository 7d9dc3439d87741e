/* The aws stage: the BYOC deployment in the user's account. One stage, five actions chosen by the
 * command (option "action"): setup (network, bucket, IAM, scoped deploy credentials), deploy
 * (launch template version, Auto Scaling group, instance refresh, Elastic IP for the uploaded EIF),
 * status, update-policy and teardown. plan() runs the same resolution without mutating calls. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kiln/enclave_runtime.h>
#include <kiln/plugin.h>

#include "iam.h"
#include "resource.h"
#include "rollout.h"
#include "host_hooks.h"
#include "logs.h"
#include "resource.h"
#include "s3.h"
#include "util/buf.h"
#include "util/fs.h"
#include "util/hash.h"
#include "util/json.h"

/* The options schema: options.schema.json, compiled in by kiln_embed_text (CMakeLists.txt). */
extern const char options_schema[];

struct stage_env {
  struct kiln_stage_ctx *ctx;
  const struct kiln_host *host;
  int plan;
  struct kiln_aws_host hooks; /* the same ctx and host, as the AWS client's hooks */
};

static void hook_announce(void *p, const char *action, const char *resource, const char *detail)
{
  struct stage_env *s = p;
  if (s->plan)
    s->host->plan_action(s->ctx, action, resource, detail);
  else if (strcmp(action, "nothing") != 0)
    s->host->log(s->ctx, KILN_LOG_INFO, "%s %s: %s", action, resource, detail);
  else
    s->host->log(s->ctx, KILN_LOG_DEBUG, "up to date: %s: %s", resource, detail);
}

static const char *string_at(const cJSON *o, const char *key)
{
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  return cJSON_IsString(v) && *v->valuestring ? v->valuestring : NULL;
}

static const char *action_of(const cJSON *opts)
{
  const char *a = string_at(opts, "action"); /* the schema's default: deploy */
  return a ? a : "";
}

/* The public ports to open (ingress ports, and the attestation port when set) from kiln.json's
 * enclave settings (/enclave/ports, else /aws/ports); with host_conf, kiln-host's configuration. */
static kiln_err runtime_of(struct stage_env *s, int *ports, size_t *nports, size_t *ningress,
                           char **host_conf, struct kiln_error *err)
{
  struct kiln_enclave_runtime rt;
  kiln_err rc = kiln_enclave_runtime_load(s->host->config(s->ctx), &rt, err);
  if (rc)
    return rc;
  *nports = 0;
  for (size_t i = 0; i < rt.nports && *nports < KILN_MAX_PORTS; i++)
    ports[(*nports)++] = rt.ports[i].pub;
  *ningress = *nports;
  if (rt.attestation_port && *nports < KILN_MAX_PORTS)
    ports[(*nports)++] = rt.attestation_port;
  if (rt.nports + (rt.attestation_port != 0) > KILN_MAX_PORTS)
    rc = kiln_error_set(err, KILN_E_INVALID, "/enclave/ports: at most %d public ports",
                        KILN_MAX_PORTS);
  if (!rc && host_conf &&
      !(*host_conf = kiln_enclave_host_conf(&rt, KILN_ENCLAVE_CID, "0.0.0.0", KILN_HOST_LOG_FILE)))
    rc = kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  kiln_enclave_runtime_free(&rt);
  return rc;
}

/* kiln-host in the bucket: from the s3 stage's object, or (plan) derived from the binary. */
static kiln_err kiln_host_of(struct stage_env *s, const struct kiln_artifact *object,
                             struct kiln_release *r, char **derived, struct kiln_error *err)
{
  const cJSON *kh = object ? cJSON_GetObjectItemCaseSensitive(object->meta, "kiln_host") : NULL;
  r->kiln_host_key = string_at(kh, "key");
  r->kiln_host_sha256 = string_at(kh, "sha256");
  if (r->kiln_host_key || !s->plan)
    return r->kiln_host_key && r->kiln_host_sha256
               ? KILN_OK
               : kiln_error_set(err, KILN_E_INVALID,
                                "the s3 stage did not upload kiln-host (an s3 stage from an "
                                "older kiln?): run `kiln deploy` with this kiln's plugins");
  static char sha[KILN_SHA256_HEX_LEN + 1];
  const cJSON *arch = cJSON_GetObjectItemCaseSensitive(s->host->config(s->ctx), "arch");
  int aarch64 = cJSON_IsString(arch) && strcmp(arch->valuestring, "aarch64") == 0;
  char *path =
      kiln_path_join(s->host->lib_dir(s->ctx), aarch64 ? "aarch64/kiln-host" : "kiln-host");
  kiln_err rc = path ? kiln_sha256_file(path, sha, NULL, err) : KILN_E_NOMEM;
  free(path);
  if (rc && aarch64 && (rc == KILN_E_NOT_FOUND || rc == KILN_E_IO))
    kiln_error_prefix(err, "kiln-host for aarch64 (the Graviton parent's side) is missing: build "
                           "kiln with c-ares for arm64 (libc-ares-dev:arm64) installed");
  if (rc)
    return rc;
  r->kiln_host_sha256 = sha;
  r->kiln_host_key = *derived = kiln_s3_kiln_host_key(sha);
  return *derived ? KILN_OK : kiln_error_set(err, KILN_E_NOMEM, "out of memory");
}

/* Open the client and resolve the deployment (a new id for setup when none exists); hooks: where
 * the client's host hooks live (as long as the client). */
static kiln_err open_env(struct stage_env *s, struct kiln_awsenv *env, struct kiln_aws_host *hooks,
                         int allow_no_id, struct kiln_error *err)
{
  const cJSON *opts = s->host->options(s->ctx);
  struct kiln_aws_client_options o = {
      .profile = string_at(opts, "profile"),
      .region = string_at(opts, "region"),
      .s3_path_style = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(opts, "s3_path_style"))};
  kiln_aws_host_hooks(hooks, &o);
  memset(env, 0, sizeof(*env));
  env->config = s->host->config(s->ctx);
  env->app_dir = s->host->app_dir(s->ctx);
  env->share_dir = s->host->share_dir(s->ctx);
  env->dry_run = s->plan;
  env->announce = hook_announce;
  env->announce_ctx = s;
  kiln_err rc = kiln_aws_client_new(&o, &env->c, err);
  if (rc == KILN_OK)
    rc = kiln_aws_client_credentials(env->c, NULL, err);
  if (rc == KILN_OK && !kiln_aws_client_region(env->c))
    rc = kiln_error_set(err, KILN_E_INVALID,
                        "no AWS region: set AWS_REGION, \"region\" in the AWS profile, or "
                        "/aws/region in kiln.json");
  if (rc == KILN_OK)
    rc = kiln_awsenv_init(env, allow_no_id, err);
  return rc;
}

static void close_env(struct kiln_awsenv *env)
{
  kiln_awsenv_clear(env);
  kiln_aws_client_free(env->c);
  env->c = NULL;
}

/* setup without a deployment id: a new one. `kiln setup` records it in <app>/.env before the
 * real run (action "setup-check" hands it over), so only a plan or that action gets here. */
static kiln_err new_deployment_id(struct stage_env *s, struct kiln_awsenv *env,
                                  struct kiln_error *err)
{
  if (!s->plan && strcmp(action_of(s->host->options(s->ctx)), "setup-check") != 0)
    return kiln_error_set(err, KILN_E_INVALID,
                          "no deployment id: run `kiln setup` (it records a new id in .env), or "
                          "set /aws/deployment_id or DEPLOYMENT_ID");
  char *id = kiln_deployment_id_generate();
  if (!id)
    return kiln_error_set(err, KILN_E_INTERNAL, "no random bytes for a deployment id");
  env->dep.id = id;
  env->dep.id_source = "new";
  return kiln_awsenv_name_resources(env, id, err);
}

static cJSON *identity_json(const struct kiln_awsenv *env)
{
  static const char *const labels[][2] = {
      {"deployment_id", "deployment"},    {"region", "region"},
      {"account_id", "account"},          {"bucket", "bucket"},
      {"instance_role", "instance role"}, {"deploy_user", "deploy user"},
      {"asg_name", "Auto Scaling group"}};
  cJSON *m = cJSON_CreateObject();
  kiln_json_add_string(m, "deployment_id", env->dep.id);
  kiln_json_add_string(m, "region", env->dep.region);
  kiln_json_add_string(m, "account_id", env->account_id);
  kiln_json_add_string(m, "tag_key", env->dep.tag_key);
  kiln_json_add_string(m, "bucket", env->names.bucket);
  kiln_json_add_string(m, "asg_name", env->names.asg);
  kiln_json_add_string(m, "instance_role", env->names.instance_role);
  kiln_json_add_string(m, "deploy_user", env->names.deploy_user);
  for (size_t i = 0; i < sizeof(labels) / sizeof(labels[0]); i++)
    kiln_doc_label(m, labels[i][0], labels[i][1]);
  return m;
}

/* The mutating calls made (or a plan would make), last in the document. */
static void add_changes(cJSON *m, const struct kiln_awsenv *env)
{
  cJSON_AddNumberToObject(m, "changes", env->mutations);
  kiln_doc_label(m, "changes", "changes made");
}

/* The deploy document's network and fleet fields, as the resource kinds write them. */
static void release_fields(cJSON *m, const struct kiln_awsenv *env, const struct kiln_network *net,
                           const struct kiln_fleet *f)
{
  static const struct kiln_aws_resource *const kinds[] = {&kiln_res_vpc,
                                                          &kiln_res_subnets,
                                                          &kiln_res_security_group,
                                                          &kiln_res_launch_template,
                                                          &kiln_res_asg,
                                                          &kiln_res_eip,
                                                          NULL};
  struct kiln_walk w;
  kiln_walk_init(&w, (struct kiln_awsenv *)env, NULL, KILN_WALK_SETUP);
  w.net = *net;
  w.fleet = *f;
  for (size_t i = 0; kinds[i]; i++)
    kinds[i]->fields(&w, m);
}

static kiln_err emit(struct stage_env *s, cJSON *meta)
{
  const char *dir = NULL;
  struct kiln_buf text = KILN_BUF_INIT;
  struct kiln_error err = KILN_ERROR_INIT;
  kiln_err rc = s->host->output(s->ctx, "deployment", &dir);
  if (rc != KILN_OK) {
    cJSON_Delete(meta);
    return rc;
  }
  kiln_json_pretty(meta, &text);
  char *path = kiln_path_join(dir, "deployment.json");
  rc = path ? kiln_write_file_atomic(path, text.data, text.len, 0644, &err) : KILN_E_NOMEM;
  free(path);
  kiln_buf_free(&text);
  if (rc != KILN_OK) {
    cJSON_Delete(meta);
    rc = s->host->fail(s->ctx, rc, "%s", kiln_error_msg(&err));
    kiln_error_clear(&err);
    return rc;
  }
  return s->host->output_meta(s->ctx, "deployment", meta);
}

/* What setup refuses before anything exists: bad CI options, a region without enclave types. */
static kiln_err setup_checks(struct stage_env *s, struct kiln_awsenv *env, struct kiln_walk *w,
                             struct kiln_error *err)
{
  size_t ningress = 0;
  kiln_err rc = runtime_of(s, w->ports, &w->nports, &ningress, NULL, err);
  if (rc == KILN_OK)
    rc = kiln_scale_from_options(s->host->options(s->ctx), w->ports, ningress, &w->scale, err);
  if (rc == KILN_OK)
    rc = kiln_ci_trust_from_options(s->host->options(s->ctx), &w->trust, err);
  if (rc == KILN_OK)
    rc = kiln_offerings_enclave_type(env, &w->placeholder_type, err);
  return rc;
}

static kiln_err do_setup(struct stage_env *s, struct kiln_awsenv *env, cJSON **meta,
                         struct kiln_error *err)
{
  const cJSON *opts = s->host->options(s->ctx);
  struct kiln_walk w;
  kiln_walk_init(&w, env, opts, KILN_WALK_SETUP);
  /* before anything is created: are the ports and the scale valid, can this region run
   * enclaves at all? */
  kiln_err rc = setup_checks(s, env, &w, err);
  if (rc == KILN_OK && !env->dep.id)
    rc = new_deployment_id(s, env, err);
  if (rc == KILN_OK && string_at(opts, "credentials_file") &&
      !(w.credentials_file = kiln_path_absolute(env->app_dir, string_at(opts, "credentials_file"))))
    rc = kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  if (rc == KILN_OK)
    rc = kiln_walk_setup(&w, err);
  if (rc == KILN_OK) {
    *meta = identity_json(env);
    kiln_walk_fields(&w, *meta);
    add_changes(*meta, env);
  }
  kiln_walk_clear(&w);
  return rc;
}

/* The release to run, from the pipeline's sizing, s3-object and eif artifacts. */
static kiln_err release_of(struct stage_env *s, struct kiln_release *r, char **derived_key,
                           char **derived_host_key, struct kiln_error *err)
{
  const cJSON *opts = s->host->options(s->ctx);
  const struct kiln_artifact *sizing = s->host->input(s->ctx, "sizing");
  const struct kiln_artifact *object = s->host->input(s->ctx, "s3-object");
  const struct kiln_artifact *eif = s->host->input(s->ctx, "eif");
  memset(r, 0, sizeof(*r));
  *derived_key = *derived_host_key = NULL;
  if (!sizing)
    return kiln_error_set(err, KILN_E_INVALID,
                          "deploy needs the size stage's result (run it through `kiln deploy`)");
  const cJSON *enclave = cJSON_GetObjectItemCaseSensitive(sizing->meta, "enclave");
  r->instance_type = string_at(sizing->meta, "instance_type");
  const char *sized_arch = string_at(sizing->meta, "arch");
  const cJSON *want = cJSON_GetObjectItemCaseSensitive(s->host->config(s->ctx), "arch");
  const char *want_arch = cJSON_IsString(want) ? want->valuestring : "x86_64";
  if (sized_arch && strcmp(sized_arch, want_arch) != 0)
    return kiln_error_set(err, KILN_E_INVALID,
                          "the EIF was sized for %s (%s) but kiln.json /arch is %s: deploy an EIF "
                          "built for %s, or set /arch to %s",
                          sized_arch, r->instance_type ? r->instance_type : "?", want_arch,
                          want_arch, sized_arch);
  const cJSON *cpus = cJSON_GetObjectItemCaseSensitive(enclave, "cpus");
  const cJSON *mem = cJSON_GetObjectItemCaseSensitive(enclave, "memory_mib");
  r->cpus = cJSON_IsNumber(cpus) ? cpus->valueint : 0;
  r->memory_mib = cJSON_IsNumber(mem) ? (long long)mem->valuedouble : 0;
  if (object) {
    r->eif_key = string_at(object->meta, "key");
    r->eif_sha256 = string_at(object->meta, "sha256");
  } else if (eif && s->plan) { /* plan: the s3 stage has not run; its key is content-addressed */
    const char *name = string_at(eif->meta, "name");
    r->eif_sha256 = string_at(eif->meta, "sha256");
    if (r->eif_sha256)
      *derived_key = kiln_s3_content_key(NULL, name ? name : "enclave", r->eif_sha256);
    r->eif_key = *derived_key;
  }
  if (!r->instance_type || !r->eif_key || !r->eif_sha256)
    return kiln_error_set(err, KILN_E_INVALID,
                          "deploy needs the sized instance and the uploaded EIF (size and s3 "
                          "stages before aws)");
  size_t ningress = 0;
  kiln_err rc = runtime_of(s, r->ports, &r->nports, &ningress, &r->host_conf, err);
  if (rc == KILN_OK)
    rc = kiln_scale_from_options(opts, r->ports, ningress, &r->scale, err);
  if (rc == KILN_OK)
    rc = kiln_host_of(s, object, r, derived_host_key, err);
  if (rc)
    return rc;
  r->count = r->scale.count;
  r->ami = string_at(opts, "ami");
  r->debug = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(opts, "debug"));
  const cJSON *pcrs = eif ? cJSON_GetObjectItemCaseSensitive(eif->meta, "measurements") : NULL;
  for (int i = 0; i < KILN_RELEASE_PCRS; i++)
    r->pcrs[i] = string_at(pcrs, kiln_release_pcr_names[i]);
  return KILN_OK;
}

/* The deployment's hourly cost at the size catalogue's on-demand price: count x the type's
 * price, with the catalogue's date (a plan shows it; deploy records it). */
static double hourly_cost(struct stage_env *s, const struct kiln_release *r, char *text, size_t n)
{
  const struct kiln_artifact *sizing = s->host->input(s->ctx, "sizing");
  const cJSON *price =
      sizing ? cJSON_GetObjectItemCaseSensitive(sizing->meta, "price_per_hour_usd") : NULL;
  const cJSON *cat = sizing ? cJSON_GetObjectItemCaseSensitive(sizing->meta, "catalogue") : NULL;
  const char *as_of = string_at(cat, "as_of"), *region = string_at(cat, "region");
  if (!cJSON_IsNumber(price))
    return -1;
  double total = price->valuedouble * r->scale.count;
  snprintf(text, n, "%d x %s at $%.4f/hour = $%.4f/hour on demand (catalogue %s, as of %s)",
           r->scale.count, r->instance_type, price->valuedouble, total, region ? region : "prices",
           as_of ? as_of : "?");
  return total;
}

static kiln_err do_deploy(struct stage_env *s, struct kiln_awsenv *env, cJSON **meta,
                          struct kiln_error *err)
{
  struct kiln_network net;
  struct kiln_fleet fleet;
  struct kiln_release r;
  char *derived_key = NULL, *derived_host_key = NULL;
  memset(&net, 0, sizeof(net));
  memset(&fleet, 0, sizeof(fleet));
  kiln_err rc = release_of(s, &r, &derived_key, &derived_host_key, err);
  if (rc == KILN_OK && s->plan && !s->host->input(s->ctx, "sizing"))
    rc = KILN_OK;
  if (rc == KILN_OK)
    rc = kiln_network_find(env, &net, err);
  if (rc == KILN_OK)
    rc = kiln_fleet_find(env, &fleet, err);
  if (rc == KILN_OK)
    rc = kiln_fleet_deploy(env, &net, &r, &fleet, err);
  if (rc == KILN_OK) {
    const struct kiln_artifact *eif = s->host->input(s->ctx, "eif");
    *meta = identity_json(env);
    release_fields(*meta, env, &net, &fleet);
    size_t healthy = 0;
    for (size_t i = 0; i < fleet.nmembers; i++)
      healthy += fleet.members[i].lifecycle &&
                 strcmp(fleet.members[i].lifecycle, "InService") == 0 &&
                 (!fleet.members[i].target_health ||
                  strcmp(fleet.members[i].target_health, "healthy") == 0);
    cJSON_AddNumberToObject(*meta, "healthy_count", (double)healthy);
    char cost_text[256];
    double cost = hourly_cost(s, &r, cost_text, sizeof(cost_text));
    if (cost >= 0 && s->plan)
      s->host->plan_action(s->ctx, "call", "cost", cost_text);
    if (cost >= 0) {
      cJSON_AddNumberToObject(*meta, "hourly_cost_usd", cost);
      kiln_json_add_string(*meta, "hourly_cost", cost_text);
      kiln_doc_label(*meta, "hourly_cost", "hourly cost");
    }
    kiln_json_add_string(*meta, "eif_key", r.eif_key);
    kiln_json_add_string(*meta, "eif_sha256", r.eif_sha256);
    kiln_json_add_string(*meta, "instance_type", r.instance_type);
    kiln_doc_label(*meta, "instance_type", "instance type");
    kiln_doc_label(*meta, "eif_key", "EIF");
    kiln_doc_label(*meta, "eif_sha256", "EIF sha256");
    cJSON_AddNumberToObject(*meta, "enclave_cpus", r.cpus);
    cJSON_AddNumberToObject(*meta, "enclave_memory_mib", (double)r.memory_mib);
    if (eif)
      cJSON_AddItemToObject(
          *meta, "measurements",
          cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(eif->meta, "measurements"), 1));
    add_changes(*meta, env);
  }
  free(derived_key);
  free(derived_host_key);
  free(r.host_conf);
  kiln_fleet_clear(&fleet);
  kiln_network_clear(&net);
  return rc;
}

static kiln_err do_status(struct stage_env *s, struct kiln_awsenv *env, cJSON **meta,
                          struct kiln_error *err)
{
  struct kiln_walk w;
  kiln_walk_init(&w, env, s->host->options(s->ctx), KILN_WALK_STATUS);
  kiln_err rc = kiln_walk_status(&w, err);
  if (rc == KILN_OK) {
    *meta = identity_json(env);
    kiln_walk_fields(&w, *meta);
  }
  kiln_walk_clear(&w);
  return rc;
}

static kiln_err do_update_policy(struct stage_env *s, struct kiln_awsenv *env, cJSON **meta,
                                 struct kiln_error *err)
{
  struct kiln_network net;
  struct kiln_fleet fleet;
  struct kiln_iam iam;
  struct kiln_policy_scope scope;
  char *policy = NULL, *role_arn = NULL;
  cJSON *diff = NULL;
  memset(&iam, 0, sizeof(iam));
  memset(&fleet, 0, sizeof(fleet));
  kiln_err rc = kiln_network_find(env, &net, err);
  if (rc == KILN_OK)
    rc = kiln_fleet_find_template(env, &fleet, err);
  kiln_policy_scope_of(&scope, &net, fleet.lt_id, s->host->options(s->ctx), 0);
  if (rc == KILN_OK)
    rc = kiln_iam_find(env, &iam, err);
  if (rc == KILN_OK && !iam.deploy_user)
    rc = kiln_error_set(err, KILN_E_NOT_FOUND,
                        "deployment %s has no deploy user %s: run `kiln setup` first", env->dep.id,
                        env->names.deploy_user);
  if (rc == KILN_OK)
    rc = kiln_iam_render_policy(env, &scope, &policy, err);
  if (rc == KILN_OK) {
    cJSON *old = iam.deploy_policy ? cJSON_Parse(iam.deploy_policy) : NULL;
    cJSON *now = cJSON_Parse(policy);
    diff = kiln_policy_diff(old, now);
    char *text = kiln_policy_diff_text(diff);
    if (!old)
      s->host->log(s->ctx, KILN_LOG_INFO, "%s has no kiln-deploy policy: it will be attached",
                   env->names.deploy_user);
    else if (cJSON_GetArraySize(diff) > 0)
      s->host->log(s->ctx, KILN_LOG_INFO, "policy kiln-deploy of %s differs from kiln's:\n%s",
                   env->names.deploy_user, text ? text : "");
    else
      s->host->log(s->ctx, KILN_LOG_INFO, "policy kiln-deploy of %s is up to date",
                   env->names.deploy_user);
    cJSON_Delete(old);
    cJSON_Delete(now);
    free(text);
    rc = kiln_iam_ensure(env, &iam, &scope, NULL, err);
  }
  if (rc == KILN_OK) /* the CI deploy role, when setup made one, carries the same policy */
    rc = kiln_ci_role_ensure(env, NULL, &scope, &role_arn, err);
  if (rc == KILN_OK) {
    *meta = identity_json(env);
    kiln_json_add_string(*meta, "deploy_role_arn", role_arn);
    cJSON_AddItemToObject(*meta, "policy", cJSON_Parse(policy));
    cJSON_AddItemToObject(*meta, "policy_changes", diff ? diff : cJSON_CreateArray());
    diff = NULL;
    add_changes(*meta, env);
  }
  cJSON_Delete(diff);
  free(role_arn);
  free(policy);
  kiln_iam_clear(&iam);
  kiln_fleet_clear(&fleet);
  kiln_network_clear(&net);
  return rc;
}

/* The deploy policy as setup would attach it (kiln setup --print-policy): nothing is changed. */
static kiln_err do_policy(struct stage_env *s, struct kiln_awsenv *env, cJSON **meta,
                          struct kiln_error *err)
{
  struct kiln_network net;
  struct kiln_fleet fleet;
  struct kiln_policy_scope scope;
  char *policy = NULL, *instance_policy = NULL, *bucket_policy = NULL;
  memset(&net, 0, sizeof(net));
  memset(&fleet, 0, sizeof(fleet));
  if (!env->dep.id) {
    s->host->log(s->ctx, KILN_LOG_INFO,
                 "no deployment yet: showing the policy for the "
                 "placeholder id \"your-deployment\"");
    env->dep.id = strdup("your-deployment");
    kiln_err rc = kiln_awsenv_name_resources(env, env->dep.id, err);
    if (rc != KILN_OK)
      return rc;
  }
  kiln_err rc = kiln_network_find(env, &net, err);
  if (rc == KILN_OK)
    rc = kiln_fleet_find_template(env, &fleet, err);
  /* a preview: what setup has not created yet shows as a placeholder (setup itself refuses) */
  kiln_policy_scope_of(&scope, &net, fleet.lt_id, s->host->options(s->ctx), 1);
  if (rc == KILN_OK && (!net.vpc_id || !net.sg_id || !net.nsubnets || !fleet.lt_id))
    s->host->log(s->ctx, KILN_LOG_INFO,
                 "deployment %s is not (fully) set up: the policy shows *-CREATED-BY-SETUP "
                 "placeholders for the VPC, subnets, security group or launch template",
                 env->dep.id);
  if (rc == KILN_OK)
    rc = kiln_iam_render_policy(env, &scope, &policy, err);
  if (rc == KILN_OK) /* and the instance role's and the bucket's, shown beside it (--json) */
    rc = kiln_iam_render(env, "policies/instance-role-policy.json.tmpl", &instance_policy, err);
  if (rc == KILN_OK)
    rc = kiln_iam_render(env, "policies/bucket-policy.json.tmpl", &bucket_policy, err);
  if (rc == KILN_OK) {
    *meta = identity_json(env);
    cJSON_AddItemToObject(*meta, "policy", cJSON_Parse(policy));
    cJSON_AddItemToObject(*meta, "instance_role_policy", cJSON_Parse(instance_policy));
    cJSON_AddItemToObject(*meta, "bucket_policy", cJSON_Parse(bucket_policy));
  }
  free(policy);
  free(instance_policy);
  free(bucket_policy);
  kiln_fleet_clear(&fleet);
  kiln_network_clear(&net);
  return rc;
}

static kiln_err do_teardown(struct stage_env *s, struct kiln_awsenv *env, cJSON **meta,
                            struct kiln_error *err)
{
  const cJSON *opts = s->host->options(s->ctx);
  struct kiln_walk w;
  kiln_walk_init(&w, env, opts, KILN_WALK_TEARDOWN);
  w.delete_bucket = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(opts, "delete_bucket"));
  kiln_err rc = kiln_walk_teardown(&w, err);
  if (rc == KILN_OK) {
    *meta = identity_json(env);
    cJSON_AddBoolToObject(*meta, "bucket_deleted", w.delete_bucket);
    add_changes(*meta, env);
  }
  kiln_walk_clear(&w);
  return rc;
}

/* `kiln logs`: the log group's events from a start time (logs.c); --follow runs it again. */
static kiln_err do_logs(struct stage_env *s, struct kiln_awsenv *env, cJSON **meta,
                        struct kiln_error *err)
{
  *meta = identity_json(env);
  return kiln_logs_read(env, s->host->options(s->ctx), *meta, err);
}

/* kiln rollback [--to VERSION]: the group back to an earlier launch template version. */
static kiln_err do_rollback(struct stage_env *s, struct kiln_awsenv *env, cJSON **meta,
                            struct kiln_error *err)
{
  const cJSON *opts = s->host->options(s->ctx);
  struct kiln_network net;
  struct kiln_fleet fleet;
  struct kiln_scale scale;
  int ports[KILN_MAX_PORTS];
  size_t nports = 0, ningress = 0;
  memset(&net, 0, sizeof(net));
  memset(&fleet, 0, sizeof(fleet));
  kiln_err rc = runtime_of(s, ports, &nports, &ningress, NULL, err);
  if (rc == KILN_OK)
    rc = kiln_scale_from_options(opts, ports, ningress, &scale, err);
  if (rc == KILN_OK)
    rc = kiln_network_find(env, &net, err);
  if (rc == KILN_OK)
    rc = kiln_fleet_find(env, &fleet, err);
  if (rc == KILN_OK)
    rc = kiln_fleet_rollback(env, &fleet, &scale, string_at(opts, "rollback_to"), err);
  if (rc == KILN_OK && !env->dry_run)
    rc = kiln_rollout_refresh_fleet(env, &fleet, err);
  if (rc == KILN_OK) {
    *meta = identity_json(env);
    release_fields(*meta, env, &net, &fleet);
    add_changes(*meta, env);
  }
  kiln_fleet_clear(&fleet);
  kiln_network_clear(&net);
  return rc;
}

/* `kiln setup` runs this first: setup's checks, then the deployment id, a new one when none is
 * set ("new_deployment_id"), which the CLI records in .env before the real setup creates
 * anything. */
static kiln_err do_setup_check(struct stage_env *s, struct kiln_awsenv *env, cJSON **meta,
                               struct kiln_error *err)
{
  struct kiln_walk w;
  kiln_walk_init(&w, env, s->host->options(s->ctx), KILN_WALK_SETUP);
  kiln_err rc = setup_checks(s, env, &w, err);
  int fresh = rc == KILN_OK && !env->dep.id;
  if (fresh)
    rc = new_deployment_id(s, env, err);
  if (rc == KILN_OK) {
    *meta = cJSON_CreateObject();
    kiln_json_add_string(*meta, "deployment_id", env->dep.id);
    if (fresh)
      kiln_json_add_string(*meta, "new_deployment_id", env->dep.id);
  }
  kiln_walk_clear(&w);
  return rc;
}

typedef kiln_err (*action_fn)(struct stage_env *s, struct kiln_awsenv *env, cJSON **meta,
                              struct kiln_error *err);

/* The stage's actions (option "action"). needs_id: the deployment must exist already (setup,
 * its checks and the policy preview make or show one). */
static const struct aws_action {
  const char *name;
  action_fn fn;
  int needs_id;
} actions[] = {
    {"deploy", do_deploy, 1},
    {"setup", do_setup, 0},
    {"setup-check", do_setup_check, 0},
    {"status", do_status, 1},
    {"update-policy", do_update_policy, 1},
    {"teardown", do_teardown, 1},
    {"policy", do_policy, 0},
    {"logs", do_logs, 1},
    {"rollback", do_rollback, 1},
    {NULL, NULL, 0},
};

/* `kiln logs --follow` reads the log group again every few seconds in one process: the session
 * of its first read (the client with its assumed-role credentials, which it refreshes itself, the
 * account and the deployment's names) serves the later reads, so a poll is one FilterLogEvents
 * call rather than AssumeRole, GetCallerIdentity and FilterLogEvents. Made for one profile and
 * region; closed when the plugin is unloaded. */
static struct {
  int open;
  char *key;                  /* "profile\nregion" of the options it was made with */
  struct kiln_aws_host hooks; /* pointed at each read's stage context */
  struct kiln_awsenv env;
} logs_session;

__attribute__((destructor)) static void logs_session_close(void)
{
  if (logs_session.open)
    close_env(&logs_session.env);
  free(logs_session.key);
  memset(&logs_session, 0, sizeof logs_session);
}

/* The session for this read: the open one when it was made for the same options, else a new one
 * (NULL and err set when that fails). */
static struct kiln_awsenv *logs_session_for(struct stage_env *s, struct kiln_error *err)
{
  const cJSON *opts = s->host->options(s->ctx);
  struct kiln_buf key = KILN_BUF_INIT;
  const char *profile = string_at(opts, "profile"), *region = string_at(opts, "region");
  kiln_buf_printf(&key, "%s\n%s", profile ? profile : "", region ? region : "");
  if (kiln_buf_status(&key)) {
    kiln_error_set(err, KILN_E_NOMEM, "out of memory");
    return NULL;
  }
  if (logs_session.open && strcmp(logs_session.key, key.data) == 0) {
    kiln_buf_free(&key);
    logs_session.hooks = s->hooks;
    logs_session.env.announce_ctx = s;
    return &logs_session.env;
  }
  logs_session_close();
  logs_session.hooks = s->hooks;
  kiln_err rc = open_env(s, &logs_session.env, &logs_session.hooks, 0, err);
  if (rc != KILN_OK) {
    close_env(&logs_session.env);
    kiln_buf_free(&key);
    return NULL;
  }
  logs_session.open = 1;
  logs_session.key = kiln_buf_detach(&key);
  return &logs_session.env;
}

static kiln_err aws_act(struct kiln_stage_ctx *ctx, const struct kiln_host *host, int plan)
{
  struct stage_env s = {ctx, host, plan, {ctx, host}};
  struct kiln_awsenv env;
  struct kiln_error err = KILN_ERROR_INIT;
  const char *action = action_of(host->options(ctx));
  const struct aws_action *a = actions;
  while (a->name && strcmp(a->name, action) != 0)
    a++;
  cJSON *meta = NULL;
  kiln_err rc = KILN_OK;
  struct kiln_awsenv *session = NULL; /* the logs session, when this run uses it */
  memset(&env, 0, sizeof(env));
  if (!a->name)
    rc = kiln_error_set(&err, KILN_E_INVALID, "unknown action \"%s\"", action);
  else if (a->fn == do_logs && !plan)
    rc = (session = logs_session_for(&s, &err)) ? KILN_OK : err.code;
  else
    rc = open_env(&s, &env, &s.hooks, !a->needs_id, &err);
  if (rc == KILN_OK)
    rc = a->fn(&s, session ? session : &env, &meta, &err);
  if (rc != KILN_OK) {
    cJSON_Delete(meta);
    rc = host->fail(ctx, rc, "%s: %s", action, kiln_error_msg(&err));
  } else if (plan) {
    if (env.mutations == 0)
      host->plan_action(ctx, "nothing", env.dep.id ? env.dep.id : "deployment",
                        "everything is up to date");
    cJSON_Delete(meta);
  } else {
    cJSON_AddStringToObject(meta, "action", action);
    rc = emit(&s, meta);
  }
  kiln_error_clear(&err);
  close_env(&env);
  return rc;
}

static kiln_err aws_run(struct kiln_stage_ctx *ctx, const struct kiln_host *host)
{
  return aws_act(ctx, host, 0);
}

static kiln_err aws_plan(struct kiln_stage_ctx *ctx, const struct kiln_host *host)
{
  return aws_act(ctx, host, 1);
}

static const char *const accepts[] = {"eif", "sizing", "s3-object", NULL};
static const char *const produces[] = {"deployment", NULL};

static const struct kiln_stage aws_stage = {
    .struct_size = sizeof(struct kiln_stage),
    .name = "aws",
    .summary = "Deploy into your own AWS account: setup, deploy, status, update-policy, teardown",
    .consumes = NULL,
    .accepts = accepts,
    .produces = produces,
    .options_schema = options_schema,
    .run = aws_run,
    .plan = aws_plan,
    .flags = KILN_STAGE_NO_CACHE,
};

static const struct kiln_stage *const stages[] = {&aws_stage, NULL};

static const struct kiln_plugin plugin = {
    .abi_version = KILN_ABI_VERSION,
    .struct_size = sizeof(struct kiln_plugin),
    .name = "aws",
    .version = "0.1.0",
    .license = "Apache-2.0",
    .stages = stages,
};

KILN_PLUGIN_EXPORT const struct kiln_plugin *kiln_plugin_entry(uint32_t host_abi_version)
{
  return host_abi_version == KILN_ABI_VERSION ? &plugin : NULL;
}
