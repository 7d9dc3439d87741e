/* Unit tests of the BYOC deployment model: deployment id sources and rules, resource names, the
 * scoped policy templates and the instance user data. Run as `test_deploy_model CASE SHARE_DIR`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "deploy.h"
#include "util/fs.h"

static const char *share_dir;

static char *temp_app(const char *dotenv)
{
  char tmpl[] = "/tmp/kiln-aws-XXXXXX";
  char *dir = strdup(mkdtemp(tmpl));
  if (dotenv) {
    char *p = kiln_path_join(dir, ".env");
    FILE *f = fopen(p, "w");
    fputs(dotenv, f);
    fclose(f);
    free(p);
  }
  return dir;
}

static void drop_app(char *dir)
{
  struct kiln_error e = KILN_ERROR_INIT;
  kiln_rm_rf_quiet(dir);
  kiln_error_clear(&e);
  free(dir);
}

static int test_id_rules(void)
{
  struct {
    const char *id, *error;
  } cases[] = {
      {"kiln-3f2a9c01be", NULL},
      {"prod", NULL},
      {"a", NULL},
      {"Prod", "has 'P' at position 1"},
      {"a_b", "has '_' at position 2"},
      {"-lead", "has '-' at position 1"},
      {"trail-", "has '-' at position 6"},
      {"", "must be 1 to 32"},
      {"0123456789abcdef0123456789abcdef0", "must be 1 to 32"},
      {"semi;colon", "has ';' at position 5"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    CHECK_CASE(cases[i].id);
    struct kiln_error e = KILN_ERROR_INIT;
    kiln_err rc = kiln_deployment_id_check(cases[i].id, "$DEPLOYMENT_ID", &e);
    CHECK_INT(cases[i].error ? KILN_E_INVALID : KILN_OK, rc);
    if (cases[i].error) {
      CHECK_CONTAINS(cases[i].error, kiln_error_msg(&e));
      CHECK_CONTAINS("$DEPLOYMENT_ID", kiln_error_msg(&e));
    }
    kiln_error_clear(&e);
  }
  CHECK_CASE("generated ids follow the rules and differ");
  char *a = kiln_deployment_id_generate(), *b = kiln_deployment_id_generate();
  struct kiln_error e = KILN_ERROR_INIT;
  CHECK_INT(KILN_OK, kiln_deployment_id_check(a, "generated", &e));
  CHECK(strcmp(a, b) != 0);
  free(a);
  free(b);
  return check_done();
}

static int test_sources(void)
{
  unsetenv("KILN_DEPLOYMENT_ID");
  unsetenv("DEPLOYMENT_ID");
  unsetenv("VPC_ID");
  char *app =
      temp_app("# seed-style .env\nexport DEPLOYMENT_ID=\"from-dotenv\"\nVPC_ID='vpc-0abc'\n");
  cJSON *empty = cJSON_CreateObject();
  cJSON *config =
      cJSON_Parse("{\"aws\":{\"deployment_id\":\"from-json\",\"region\":\"eu-west-1\"}}");
  struct kiln_deployment d;
  struct kiln_error e = KILN_ERROR_INIT;

  CHECK_CASE(".env is read (quotes, export, comments)");
  CHECK_INT(KILN_OK, kiln_deployment_resolve(empty, app, &d, &e));
  CHECK_STR("from-dotenv", d.id);
  CHECK_STR(".env DEPLOYMENT_ID", d.id_source);
  CHECK_STR("vpc-0abc", d.vpc_id);
  CHECK_STR(KILN_DEFAULT_TAG_KEY, d.tag_key);
  kiln_deployment_clear(&d);

  CHECK_CASE("DEPLOYMENT_ID beats .env, KILN_DEPLOYMENT_ID beats both");
  setenv("DEPLOYMENT_ID", "from-env", 1);
  CHECK_INT(KILN_OK, kiln_deployment_resolve(empty, app, &d, &e));
  CHECK_STR("from-env", d.id);
  kiln_deployment_clear(&d);
  setenv("KILN_DEPLOYMENT_ID", "from-kiln-env", 1);
  CHECK_INT(KILN_OK, kiln_deployment_resolve(empty, app, &d, &e));
  CHECK_STR("from-kiln-env", d.id);
  CHECK_STR("$KILN_DEPLOYMENT_ID", d.id_source);
  kiln_deployment_clear(&d);

  CHECK_CASE("kiln.json beats the environment");
  CHECK_INT(KILN_OK, kiln_deployment_resolve(config, app, &d, &e));
  CHECK_STR("from-json", d.id);
  CHECK_STR("eu-west-1", d.region);
  kiln_deployment_clear(&d);

  CHECK_CASE("an invalid id names its source");
  setenv("KILN_DEPLOYMENT_ID", "Bad_Id", 1);
  CHECK_INT(KILN_E_INVALID, kiln_deployment_resolve(empty, app, &d, &e));
  CHECK_CONTAINS("$KILN_DEPLOYMENT_ID", kiln_error_msg(&e));
  kiln_error_clear(&e);
  unsetenv("KILN_DEPLOYMENT_ID");
  unsetenv("DEPLOYMENT_ID");

  CHECK_CASE("no id anywhere is not an error (setup generates one)");
  char *bare = temp_app(NULL);
  CHECK_INT(KILN_OK, kiln_deployment_resolve(empty, bare, &d, &e));
  CHECK(d.id == NULL);
  kiln_deployment_clear(&d);
  drop_app(bare);
  cJSON_Delete(empty);
  cJSON_Delete(config);
  drop_app(app);
  return check_done();
}

static int test_names(void)
{
  struct kiln_deployment_names n;
  struct kiln_error e = KILN_ERROR_INIT;
  CHECK_CASE("names derive from the id");
  CHECK_INT(KILN_OK, kiln_deployment_names_make("prod", "123456789012", &n, &e));
  CHECK_STR("kiln-prod-123456789012", n.bucket);
  CHECK_STR("kiln-prod", n.asg);
  CHECK_STR("kiln-prod-instance", n.instance_role);
  kiln_deployment_names_clear(&n);
  CHECK_CASE("the longest id still gives a valid bucket name (<= 63 characters)");
  CHECK_INT(KILN_OK,
            kiln_deployment_names_make("abcdefghijabcdefghijabcdefghijab", "123456789012", &n, &e));
  CHECK(strlen(n.bucket) <= 63);
  kiln_deployment_names_clear(&n);
  CHECK_CASE("an invalid id gives no names");
  CHECK_INT(KILN_E_INVALID, kiln_deployment_names_make("UPPER", "123456789012", &n, &e));
  kiln_error_clear(&e);
  return check_done();
}

static int test_templates(void)
{
  struct kiln_error e = KILN_ERROR_INIT;
  char *out = NULL;
  cJSON *v = cJSON_Parse("{\"a\":\"x\\\"y\",\"n\":42,\"bad\":\"$(rm -rf /)\"}");
  CHECK_CASE("JSON values are escaped inside strings");
  CHECK_INT(KILN_OK, kiln_template_render("t", "{\"k\":\"{{a}}\",\"m\":{{n}}}", v, 1, &out, &e));
  CHECK_STR("{\"k\":\"x\\\"y\",\"m\":42}", out);
  free(out);
  CHECK_CASE("missing value is an error naming the placeholder");
  CHECK_INT(KILN_E_INTERNAL, kiln_template_render("t", "{{nope}}", v, 1, &out, &e));
  CHECK_CONTAINS("{{nope}}", kiln_error_msg(&e));
  CHECK_CASE("shell templates refuse unsafe values");
  CHECK_INT(KILN_E_INVALID, kiln_template_render("t", "echo {{bad}}", v, 0, &out, &e));
  CHECK_CONTAINS("not safe in a shell script", kiln_error_msg(&e));
  kiln_error_clear(&e);
  cJSON_Delete(v);

  CHECK_CASE("every policy template renders to valid JSON with the tag scoping");
  struct kiln_deployment d = {.id = strdup("prod"),
                              .id_source = "test",
                              .tag_key = strdup(KILN_DEFAULT_TAG_KEY),
                              .region = strdup("us-east-1")};
  struct kiln_deployment_names n;
  CHECK_INT(KILN_OK, kiln_deployment_names_make("prod", "123456789012", &n, &e));
  cJSON *values = kiln_policy_values(&d, &n, "123456789012", "vpc-0abc");
  cJSON_AddStringToObject(values, "oidc_provider_arn",
                          "arn:aws:iam::123456789012:oidc-provider/gitlab.com");
  cJSON_AddStringToObject(values, "oidc_host", "gitlab.com");
  cJSON_AddStringToObject(values, "oidc_subject", "project_path:group/app:*");
  /* the deploy policy takes list values and the deployment's network: the aws plugin renders it
   * (iam.c) and tests/policy checks it, rendered by kiln, with an IAM evaluator */
  const char *files[] = {
      "policies/instance-role-policy.json.tmpl", "policies/instance-role-trust.json.tmpl",
      "policies/bucket-policy.json.tmpl", "policies/deploy-role-trust.json.tmpl"};
  for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
    CHECK_INT(KILN_OK, kiln_template_render_file(share_dir, files[i], values, &out, &e));
    if (e.msg)
      fprintf(stderr, "%s\n", e.msg);
    CHECK(out && !strstr(out, "{{"));
    if (i == 0 && out) {
      CHECK_CONTAINS("\"aws:ResourceTag/caution:deployment-id\": \"prod\"", out);
      CHECK_CONTAINS("arn:aws:s3:::kiln-prod-123456789012/eifs/*", out);
      CHECK_CONTAINS("\"s3:ResourceAccount\": \"123456789012\"", out);
      CHECK_CONTAINS("autoScalingGroupName/kiln-prod", out);
    }
    if (i == 3 && out) {
      cJSON *trust = cJSON_Parse(out);
      CHECK(trust != NULL);
      CHECK_CONTAINS("\"gitlab.com:sub\": \"project_path:group/app:*\"", out);
      CHECK_CONTAINS("\"gitlab.com:aud\": \"sts.amazonaws.com\"", out);
      cJSON_Delete(trust);
    }
    free(out);
  }
  cJSON_Delete(values);
  kiln_deployment_names_clear(&n);
  kiln_deployment_clear(&d);
  return check_done();
}

static int test_userdata(void)
{
  struct kiln_error e = KILN_ERROR_INIT;
  const char *sha = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
  struct kiln_userdata_params p = {
      .deployment_id = "prod",
      .region = "us-east-1",
      .bucket = "kiln-prod-123456789012",
      .eif_key = "eifs/hello/0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.eif",
      .eif_sha256 = sha,
      .cpu_count = 2,
      .memory_mib = 4096,
      .kiln_host_key = "kiln-host/fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210",
      .kiln_host_sha256 = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210",
      .host_conf = "enclave-cid 16\ningress tcp:0.0.0.0:443 vsock:16:8443\n",
  };
  char *script = NULL, *b64 = NULL;
  CHECK_CASE("user data sizes the allocator, checks the EIF and kiln-host, installs the units");
  CHECK_INT(KILN_OK, kiln_userdata_render(share_dir, &p, &script, &b64, &e));
  CHECK_CONTAINS("memory_mib: 4096\ncpu_count: 2", script);
  CHECK_CONTAINS("echo \"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef  "
                 "$root/opt/kiln/app.eif.part\" | sha256sum --check",
                 script);
  CHECK_CONTAINS("echo \"fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210  "
                 "$root/opt/kiln/kiln-host.part\" | sha256sum --check",
                 script);
  /* "enclave-cid 16\ningress tcp:0.0.0.0:443 vsock:16:8443\n" in base64 */
  CHECK_CONTAINS("ZW5jbGF2ZS1jaWQgMTYKaW5ncmVzcyB0Y3A6MC4wLjAuMDo0NDMgdnNvY2s6MTY6ODQ0Mwo=",
                 script);
  CHECK_CONTAINS("KILN_CPUS=2", script);
  CHECK_CONTAINS("systemctl enable --now nitro-enclaves-allocator.service kiln-host.service "
                 "kiln-enclave.service",
                 script);
  CHECK(!strstr(script, "--debug-mode") && !strstr(script, "socat"));
  CHECK(b64 && strlen(b64) % 4 == 0);
  free(script);
  free(b64);
  CHECK_CASE("a bad digest or a missing kiln-host is refused");
  p.kiln_host_sha256 = "nope";
  CHECK_INT(KILN_E_INVALID, kiln_userdata_render(share_dir, &p, &script, NULL, &e));
  CHECK_CONTAINS("kiln-host", kiln_error_msg(&e));
  p.kiln_host_sha256 = sha;
  p.eif_sha256 = "not-a-digest";
  CHECK_INT(KILN_E_INVALID, kiln_userdata_render(share_dir, &p, &script, NULL, &e));
  kiln_error_clear(&e);
  return check_done();
}

int main(int argc, char **argv)
{
  static const struct {
    const char *name;
    int (*fn)(void);
  } tests[] = {{"id_rules", test_id_rules},
               {"sources", test_sources},
               {"names", test_names},
               {"templates", test_templates},
               {"userdata", test_userdata}};
  if (argc < 3)
    return 2;
  share_dir = argv[2];
  for (size_t i = 0; i < sizeof tests / sizeof *tests; i++)
    if (strcmp(argv[1], tests[i].name) == 0)
      return tests[i].fn();
  return 2;
}
