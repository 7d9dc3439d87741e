/* The CI deploy role: `kiln setup --github-repo OWNER/REPO --github-environment NAME` (or
 * --github-ref REF; --gitlab-project with --gitlab-ref) creates a role that only that repository's
 * OIDC tokens of that environment or ref can assume (every ref only with --ci-any-ref), carrying
 * the same tag-scoped policy as the deploy user, so a CI job deploys with no stored AWS keys. The
 * account's OIDC provider for the issuer is created when missing and left in place by teardown
 * (other roles may trust it). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "byoc.h"
#include "iam.h"
#include "util/buf.h"

#define CI_POLICY_NAME "kiln-deploy"
#define GITHUB_ISSUER "token.actions.githubusercontent.com"

static const char *const gone[] = {"NoSuchEntity", NULL};

void kiln_ci_trust_clear(struct kiln_ci_trust *t)
{
  free(t->host);
  free(t->subject);
  memset(t, 0, sizeof(*t));
}

/* OWNER/REPO or GROUP/SUB/PROJECT: letters, digits, '-', '_', '.', at least one '/', no empty
 * part. No wildcard can slip into the trust policy's StringLike. */
static int valid_path(const char *s, int nested)
{
  int slashes = 0;
  size_t part = 0;
  for (const char *c = s; *c; c++) {
    if (*c == '/') {
      if (part == 0)
        return 0;
      slashes++;
      part = 0;
    } else if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
               *c == '-' || *c == '_' || *c == '.') {
      part++;
    } else {
      return 0;
    }
  }
  return part > 0 && slashes >= 1 && (nested || slashes == 1) && strlen(s) <= 255;
}

static const char *string_option(const cJSON *opts, const char *name)
{
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(opts, name);
  return cJSON_IsString(v) && v->valuestring[0] ? v->valuestring : NULL;
}

/* A ref, ref type or environment name inside the token's sub: letters, digits, - _ . / and no
 * wildcard, so the trust names exactly one. */
static int valid_name(const char *s, int slashes)
{
  if (!*s || strlen(s) > 255)
    return 0;
  for (const char *c = s; *c; c++)
    if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
          *c == '-' || *c == '_' || *c == '.' || (slashes && *c == '/')))
      return 0;
  return 1;
}

/* The GitHub token's sub narrowed to one ref (repo:O/R:ref:refs/heads/main) or environment
 * (repo:O/R:environment:NAME); every ref (repo:O/R:*) only when asked for. */
static kiln_err github_subject(const cJSON *opts, const char *repo, struct kiln_buf *subject,
                               struct kiln_error *err)
{
  const char *ref = string_option(opts, "github_ref");
  const char *environment = string_option(opts, "github_environment");
  int any = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(opts, "ci_any_ref"));
  if ((ref != NULL) + (environment != NULL) + any > 1)
    return kiln_error_set(err, KILN_E_INVALID,
                          "--github-ref, --github-environment and --ci-any-ref each choose the "
                          "tokens the deploy role trusts: give one");
  if (ref && (strncmp(ref, "refs/", 5) != 0 || !valid_name(ref, 1)))
    return kiln_error_set(err, KILN_E_INVALID,
                          "--github-ref \"%s\": give a full ref such as refs/heads/main or "
                          "refs/tags/v1 (letters, digits, - _ . /; no wildcard)",
                          ref);
  if (environment && !valid_name(environment, 0))
    return kiln_error_set(err, KILN_E_INVALID,
                          "--github-environment \"%s\": give the environment's name (letters, "
                          "digits, - _ .)",
                          environment);
  if (ref)
    return kiln_buf_printf(subject, "repo:%s:ref:%s", repo, ref);
  if (environment)
    return kiln_buf_printf(subject, "repo:%s:environment:%s", repo, environment);
  if (any)
    return kiln_buf_printf(subject, "repo:%s:*", repo);
  return kiln_error_set(err, KILN_E_INVALID,
                        "--github-repo %s: say which of its tokens may deploy: --github-ref "
                        "refs/heads/main (one branch) or --github-environment NAME (a protected "
                        "environment), or --ci-any-ref to trust every branch, tag and pull "
                        "request of the repository",
                        repo);
}

/* GitLab's sub: project_path:G/P:ref_type:branch:ref:main; every ref only when asked for. */
static kiln_err gitlab_subject(const cJSON *opts, const char *project, struct kiln_buf *subject,
                               struct kiln_error *err)
{
  const char *ref = string_option(opts, "gitlab_ref");
  const char *ref_type = string_option(opts, "gitlab_ref_type");
  int any = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(opts, "ci_any_ref"));
  if (ref && any)
    return kiln_error_set(err, KILN_E_INVALID,
                          "--gitlab-ref and --ci-any-ref each choose the tokens the deploy role "
                          "trusts: give one");
  if (ref_type && (!ref || (strcmp(ref_type, "branch") != 0 && strcmp(ref_type, "tag") != 0)))
    return kiln_error_set(err, KILN_E_INVALID,
                          "--gitlab-ref-type \"%s\": give branch or tag, with --gitlab-ref",
                          ref_type);
  if (ref && !valid_name(ref, 1))
    return kiln_error_set(err, KILN_E_INVALID,
                          "--gitlab-ref \"%s\": give a branch or tag name such as main "
                          "(letters, digits, - _ . /; no wildcard)",
                          ref);
  if (ref)
    return kiln_buf_printf(subject, "project_path:%s:ref_type:%s:ref:%s", project,
                           ref_type ? ref_type : "branch", ref);
  if (any)
    return kiln_buf_printf(subject, "project_path:%s:*", project);
  return kiln_error_set(err, KILN_E_INVALID,
                        "--gitlab-project %s: say which of its tokens may deploy: --gitlab-ref "
                        "main (with --gitlab-ref-type tag for a tag), or --ci-any-ref to trust "
                        "every branch and tag of the project",
                        project);
}

kiln_err kiln_ci_trust_from_options(const cJSON *opts, struct kiln_ci_trust *t,
                                    struct kiln_error *err)
{
  const char *github = string_option(opts, "github_repo");
  const char *gitlab = string_option(opts, "gitlab_project");
  const char *gitlab_url = string_option(opts, "gitlab_url");
  struct kiln_buf subject = KILN_BUF_INIT;
  kiln_err rc = KILN_OK;
  memset(t, 0, sizeof(*t));
  if (github && gitlab)
    return kiln_error_set(err, KILN_E_INVALID,
                          "github_repo and gitlab_project are both set: the deploy role trusts "
                          "one CI system; keep one");
  if (!github && (string_option(opts, "github_ref") || string_option(opts, "github_environment")))
    return kiln_error_set(err, KILN_E_INVALID,
                          "--github-ref/--github-environment narrow the CI role of --github-repo: "
                          "give --github-repo OWNER/REPO too");
  if (!gitlab && (string_option(opts, "gitlab_ref") || string_option(opts, "gitlab_ref_type")))
    return kiln_error_set(err, KILN_E_INVALID,
                          "--gitlab-ref/--gitlab-ref-type narrow the CI role of --gitlab-project: "
                          "give --gitlab-project GROUP/PROJECT too");
  if (github) {
    if (!valid_path(github, 0))
      return kiln_error_set(err, KILN_E_INVALID,
                            "github_repo \"%s\": give OWNER/REPO (letters, digits, - _ .)", github);
    if ((rc = github_subject(opts, github, &subject, err)) != KILN_OK) {
      kiln_buf_free(&subject);
      return rc;
    }
    t->host = strdup(GITHUB_ISSUER);
  } else if (gitlab) {
    if (!valid_path(gitlab, 1))
      return kiln_error_set(err, KILN_E_INVALID,
                            "gitlab_project \"%s\": give GROUP/PROJECT (letters, digits, - _ .)",
                            gitlab);
    const char *host = gitlab_url ? gitlab_url : "https://gitlab.com";
    if (strncmp(host, "https://", 8) != 0 || !host[8] || strpbrk(host + 8, "/*?\"\\ "))
      return kiln_error_set(err, KILN_E_INVALID,
                            "gitlab_url \"%s\": give the instance's https:// address without a "
                            "path, e.g. https://gitlab.example.com",
                            host);
    if ((rc = gitlab_subject(opts, gitlab, &subject, err)) != KILN_OK) {
      kiln_buf_free(&subject);
      return rc;
    }
    t->host = strdup(host + 8);
  } else {
    return KILN_OK;
  }
  t->subject = kiln_buf_detach(&subject);
  if (!t->host || !t->subject) {
    kiln_ci_trust_clear(t);
    return kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  }
  return KILN_OK;
}

static char *role_name(struct kiln_awsenv *env)
{
  struct kiln_buf b = KILN_BUF_INIT;
  kiln_buf_printf(&b, "%s-ci", env->names.deploy_user);
  return kiln_buf_detach(&b);
}

/* A read where NoSuchEntity means absent (*doc NULL). */
static kiln_err read_optional(struct kiln_awsenv *env, const char *action,
                              const struct kiln_aws_params *p, struct kiln_xml **doc,
                              struct kiln_error *err)
{
  struct kiln_aws_error_info info;
  *doc = NULL;
  kiln_err rc = kiln_aws_query(env->c, "iam", action, p, doc, &info, err);
  if (rc != KILN_OK && strcmp(info.code, "NoSuchEntity") == 0) {
    kiln_error_clear(err);
    *doc = NULL;
    return KILN_OK;
  }
  return rc;
}

static int same_json(const cJSON *have, const char *want_text)
{
  cJSON *want = cJSON_Parse(want_text);
  int same = have && want && cJSON_Compare(have, want, 1);
  cJSON_Delete(want);
  return same;
}

static kiln_err ensure_provider(struct kiln_awsenv *env, const struct kiln_ci_trust *t,
                                const char *provider_arn, struct kiln_error *err)
{
  struct kiln_aws_params p = {0};
  struct kiln_xml *doc = NULL;
  kiln_aws_params_add(&p, "OpenIDConnectProviderArn", provider_arn);
  kiln_err rc = read_optional(env, "GetOpenIDConnectProvider", &p, &doc, err);
  kiln_aws_params_clear(&p);
  if (rc != KILN_OK)
    return rc;
  if (doc) {
    int has_audience = 0;
    for (const struct kiln_xml *m = kiln_awsenv_items(doc, "ClientIDList"); m;
         m = kiln_xml_next_same(m))
      has_audience |= m->text && strcmp(m->text, "sts.amazonaws.com") == 0;
    kiln_xml_free(doc);
    if (has_audience) {
      kiln_awsenv_announce(env, "nothing", provider_arn, "OIDC provider exists");
      return KILN_OK;
    }
    kiln_awsenv_announce(env, "update", provider_arn, "add the audience sts.amazonaws.com");
    kiln_aws_params_add(&p, "OpenIDConnectProviderArn", provider_arn);
    kiln_aws_params_add(&p, "ClientID", "sts.amazonaws.com");
    rc = kiln_awsenv_mutate(env, "iam", "AddClientIDToOpenIDConnectProvider", &p, provider_arn,
                            NULL, NULL, err);
    kiln_aws_params_clear(&p);
    return rc;
  }
  struct kiln_buf url = KILN_BUF_INIT;
  kiln_buf_printf(&url, "https://%s", t->host);
  kiln_awsenv_announce(env, "create", provider_arn,
                       "OIDC provider for %s (audience "
                       "sts.amazonaws.com)",
                       kiln_buf_str(&url));
  kiln_aws_params_add(&p, "Url", kiln_buf_str(&url));
  kiln_aws_params_add(&p, "ClientIDList.member.1", "sts.amazonaws.com");
  kiln_aws_params_add(&p, "Tags.member.1.Key", "kiln:managed");
  kiln_aws_params_add(&p, "Tags.member.1.Value", "true");
  static const char *const exists[] = {"EntityAlreadyExists", NULL};
  rc = kiln_awsenv_mutate(env, "iam", "CreateOpenIDConnectProvider", &p, provider_arn, exists, NULL,
                          err);
  kiln_aws_params_clear(&p);
  kiln_buf_free(&url);
  return rc;
}

static kiln_err render_trust(struct kiln_awsenv *env, const struct kiln_ci_trust *t,
                             const char *provider_arn, char **out, struct kiln_error *err)
{
  cJSON *extra = cJSON_CreateObject();
  cJSON_AddStringToObject(extra, "oidc_provider_arn", provider_arn);
  cJSON_AddStringToObject(extra, "oidc_host", t->host);
  cJSON_AddStringToObject(extra, "oidc_subject", t->subject);
  kiln_err rc = kiln_iam_render_with(env, "policies/deploy-role-trust.json.tmpl", extra, out, err);
  cJSON_Delete(extra);
  return rc;
}

kiln_err kiln_ci_role_ensure(struct kiln_awsenv *env, const struct kiln_ci_trust *trust,
                             const struct kiln_policy_scope *scope, char **role_arn,
                             struct kiln_error *err)
{
  struct kiln_aws_params p = {0};
  struct kiln_xml *doc = NULL;
  struct kiln_buf provider = KILN_BUF_INIT;
  char *name = role_name(env), *trust_doc = NULL, *policy = NULL;
  cJSON *have_trust = NULL, *have_policy = NULL;
  int tagged = 0;
  *role_arn = NULL;
  kiln_aws_params_add(&p, "RoleName", name);
  kiln_err rc = read_optional(env, "GetRole", &p, &doc, err);
  kiln_aws_params_clear(&p);
  int exists = doc != NULL;
  if (rc == KILN_OK && exists) {
    *role_arn = kiln_awsenv_first(doc, "Arn") ? strdup(kiln_awsenv_first(doc, "Arn")) : NULL;
    have_trust = kiln_iam_document(doc, "AssumeRolePolicyDocument");
    rc = kiln_iam_tagged(env, "ListRoleTags", "RoleName", name, &tagged, err);
    if (rc == KILN_OK && !tagged)
      rc = kiln_error_set(err, KILN_E_REMOTE,
                          "IAM role %s exists without the tag %s=%s: kiln does not touch it; "
                          "delete or rename it, then run `kiln setup` again",
                          name, env->dep.tag_key, env->dep.id);
  }
  kiln_xml_free(doc);
  doc = NULL;
  if (rc != KILN_OK || (!exists && !trust))
    goto out;
  if (trust) {
    kiln_buf_printf(&provider, "arn:aws:iam::%s:oidc-provider/%s", env->account_id, trust->host);
    rc = ensure_provider(env, trust, kiln_buf_str(&provider), err);
    if (rc == KILN_OK)
      rc = render_trust(env, trust, kiln_buf_str(&provider), &trust_doc, err);
  }
  if (rc == KILN_OK && trust && !exists) {
    kiln_awsenv_announce(env, "create", name, "IAM role CI jobs of %s assume with their OIDC token",
                         trust->subject);
    kiln_aws_params_add(&p, "RoleName", name);
    kiln_aws_params_add(&p, "AssumeRolePolicyDocument", trust_doc);
    kiln_aws_params_add(&p, "Description", "kiln: CI deploys of one deployment (OIDC)");
    kiln_aws_params_add(&p, "Tags.member.1.Key", env->dep.tag_key);
    kiln_aws_params_add(&p, "Tags.member.1.Value", env->dep.id);
    kiln_aws_params_add(&p, "Tags.member.2.Key", "kiln:managed");
    kiln_aws_params_add(&p, "Tags.member.2.Value", "true");
    static const char *const already[] = {"EntityAlreadyExists", NULL};
    rc = kiln_awsenv_mutate(env, "iam", "CreateRole", &p, name, already, &doc, err);
    kiln_aws_params_clear(&p);
    if (rc == KILN_OK && doc && kiln_awsenv_first(doc, "Arn"))
      *role_arn = strdup(kiln_awsenv_first(doc, "Arn"));
    kiln_xml_free(doc);
    doc = NULL;
  } else if (rc == KILN_OK && trust && !same_json(have_trust, trust_doc)) {
    kiln_awsenv_announce(env, "update", name, "trust: OIDC tokens of %s", trust->subject);
    kiln_aws_params_add(&p, "RoleName", name);
    kiln_aws_params_add(&p, "PolicyDocument", trust_doc);
    rc = kiln_awsenv_mutate(env, "iam", "UpdateAssumeRolePolicy", &p, name, NULL, NULL, err);
    kiln_aws_params_clear(&p);
  }
  if (rc == KILN_OK && exists) {
    kiln_aws_params_add(&p, "RoleName", name);
    kiln_aws_params_add(&p, "PolicyName", CI_POLICY_NAME);
    rc = read_optional(env, "GetRolePolicy", &p, &doc, err);
    kiln_aws_params_clear(&p);
    have_policy = kiln_iam_document(doc, "PolicyDocument");
    kiln_xml_free(doc);
    doc = NULL;
  }
  if (rc == KILN_OK)
    rc = kiln_iam_render_policy(env, scope, &policy, err);
  if (rc == KILN_OK && !same_json(have_policy, policy)) {
    kiln_awsenv_announce(env, have_policy ? "update" : "create", name,
                         "inline policy " CI_POLICY_NAME " (tag-scoped deploy rights)");
    kiln_aws_params_add(&p, "RoleName", name);
    kiln_aws_params_add(&p, "PolicyName", CI_POLICY_NAME);
    kiln_aws_params_add(&p, "PolicyDocument", policy);
    rc = kiln_awsenv_mutate(env, "iam", "PutRolePolicy", &p, name, NULL, NULL, err);
    kiln_aws_params_clear(&p);
  }
  if (rc == KILN_OK && !*role_arn) {
    struct kiln_buf arn = KILN_BUF_INIT;
    kiln_buf_printf(&arn, "arn:aws:iam::%s:role/%s", env->account_id, name);
    *role_arn = kiln_buf_detach(&arn);
  }
out:
  if (rc != KILN_OK) {
    free(*role_arn);
    *role_arn = NULL;
  }
  cJSON_Delete(have_trust);
  cJSON_Delete(have_policy);
  kiln_buf_free(&provider);
  free(trust_doc);
  free(policy);
  free(name);
  return rc;
}

kiln_err kiln_ci_role_arn(struct kiln_awsenv *env, char **role_arn, struct kiln_error *err)
{
  struct kiln_aws_params p = {0};
  struct kiln_xml *doc = NULL;
  char *name = role_name(env);
  *role_arn = NULL;
  kiln_aws_params_add(&p, "RoleName", name);
  kiln_err rc = read_optional(env, "GetRole", &p, &doc, err);
  kiln_aws_params_clear(&p);
  const char *arn = doc ? kiln_awsenv_first(doc, "Arn") : NULL;
  if (rc == KILN_OK && arn && !(*role_arn = strdup(arn)))
    rc = kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  kiln_xml_free(doc);
  free(name);
  return rc;
}

kiln_err kiln_ci_role_delete(struct kiln_awsenv *env, struct kiln_error *err)
{
  struct kiln_aws_params p = {0};
  struct kiln_xml *doc = NULL;
  char *name = role_name(env);
  int tagged = 0;
  kiln_aws_params_add(&p, "RoleName", name);
  kiln_err rc = read_optional(env, "GetRole", &p, &doc, err);
  kiln_aws_params_clear(&p);
  int exists = doc != NULL;
  kiln_xml_free(doc);
  if (rc == KILN_OK && exists)
    rc = kiln_iam_tagged(env, "ListRoleTags", "RoleName", name, &tagged, err);
  if (rc == KILN_OK && exists && !tagged)
    kiln_aws_client_log(env->c, KILN_LOG_WARN, "role %s lacks the tag %s=%s: left alone", name,
                        env->dep.tag_key, env->dep.id);
  if (rc == KILN_OK && exists && tagged) {
    kiln_awsenv_announce(env, "delete", name, "CI deploy role");
    kiln_aws_params_add(&p, "RoleName", name);
    kiln_aws_params_add(&p, "PolicyName", CI_POLICY_NAME);
    rc = kiln_awsenv_mutate(env, "iam", "DeleteRolePolicy", &p, name, gone, NULL, err);
    kiln_aws_params_clear(&p);
    if (rc == KILN_OK) {
      kiln_aws_params_add(&p, "RoleName", name);
      rc = kiln_awsenv_mutate(env, "iam", "DeleteRole", &p, name, gone, NULL, err);
      kiln_aws_params_clear(&p);
    }
  }
  free(name);
  return rc;
}
