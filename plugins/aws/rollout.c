/* Rolling a new launch template version out to the Auto Scaling group without dropping
 * capacity: an instance refresh with MinHealthyPercentage 100 (new instances first), a warm-up,
 * AWS's auto-rollback; kiln waits and shows instances healthy / total, and rolls back itself
 * where AWS did not (a refresh that failed without rolling back, or ran past the timeout).
 * kiln rollback uses the same pieces. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "rollout.h"

#define POLL_SECONDS 10

/* A refresh to template version `version`, new instances before old ones go. */
kiln_err kiln_rollout_start(struct kiln_awsenv *env, const struct kiln_fleet *f,
                            const struct kiln_scale *s, const char *version, int auto_rollback,
                            char **refresh_id, struct kiln_error *err)
{
  struct kiln_aws_params p = {0};
  struct kiln_xml *doc = NULL;
  *refresh_id = NULL;
  kiln_awsenv_announce(env, "update", env->names.asg,
                       "instance refresh to version %s: MinHealthyPercentage 100, warm-up %d s%s",
                       version, s->warmup_seconds, auto_rollback ? ", auto-rollback" : "");
  kiln_aws_params_add(&p, "AutoScalingGroupName", env->names.asg);
  kiln_aws_params_add(&p, "Strategy", "Rolling");
  kiln_aws_params_add(&p, "DesiredConfiguration.LaunchTemplate.LaunchTemplateId",
                      f->lt_id ? f->lt_id : "(new)");
  kiln_aws_params_add(&p, "DesiredConfiguration.LaunchTemplate.Version", version);
  kiln_aws_params_add(&p, "Preferences.MinHealthyPercentage", "100");
  kiln_aws_params_add(&p, "Preferences.MaxHealthyPercentage", "200");
  kiln_aws_params_addf(&p, "Preferences.InstanceWarmup", "%d", s->warmup_seconds);
  kiln_aws_params_add(&p, "Preferences.SkipMatching", "false");
  kiln_aws_params_add(&p, "Preferences.AutoRollback", auto_rollback ? "true" : "false");
  kiln_err rc = kiln_awsenv_mutate(env, "autoscaling", "StartInstanceRefresh", &p, env->names.asg,
                                   NULL, &doc, err);
  kiln_aws_params_clear(&p);
  if (rc != KILN_OK && strstr(kiln_error_msg(err), "InstanceRefreshInProgress"))
    return kiln_error_prefix(err,
                             "another instance refresh of %s is running: wait for it (`kiln "
                             "status`) or roll it back with `kiln rollback`",
                             env->names.asg);
  if (rc == KILN_OK && !env->dry_run) {
    *refresh_id = kiln_awsenv_dup(kiln_awsenv_first(doc, "InstanceRefreshId"));
    if (!*refresh_id)
      rc = kiln_error_set(err, KILN_E_REMOTE, "StartInstanceRefresh: the answer has no id");
  }
  kiln_xml_free(doc);
  return rc;
}

struct refresh_state {
  char status[32];
  char reason[256];
  int percent;
};

static kiln_err refresh_state(struct kiln_awsenv *env, const char *id, struct refresh_state *st,
                              struct kiln_error *err)
{
  struct kiln_aws_params p = {0};
  struct kiln_xml *doc = NULL;
  kiln_aws_params_add(&p, "AutoScalingGroupName", env->names.asg);
  kiln_aws_params_add(&p, "InstanceRefreshIds.member.1", id);
  kiln_err rc = kiln_awsenv_read(env, "autoscaling", "DescribeInstanceRefreshes", &p, &doc, err);
  kiln_aws_params_clear(&p);
  memset(st, 0, sizeof(*st));
  const struct kiln_xml *r = rc == KILN_OK ? kiln_awsenv_items(doc, "InstanceRefreshes") : NULL;
  if (rc == KILN_OK && !r)
    rc = kiln_error_set(err, KILN_E_REMOTE, "instance refresh %s of %s is not listed", id,
                        env->names.asg);
  if (r) {
    const char *status = kiln_xml_text(r, "Status"), *reason = kiln_xml_text(r, "StatusReason");
    const char *pct = kiln_xml_text(r, "PercentageComplete");
    snprintf(st->status, sizeof(st->status), "%s", status ? status : "?");
    snprintf(st->reason, sizeof(st->reason), "%s", reason ? reason : "");
    st->percent = pct ? atoi(pct) : 0;
  }
  kiln_xml_free(doc);
  return rc;
}

static int terminal(const char *status)
{
  static const char *const done[] = {"Successful",     "Failed", "Cancelled", "RollbackSuccessful",
                                     "RollbackFailed", "Baking", "scaled",    NULL};
  for (size_t i = 0; done[i]; i++)
    if (strcmp(status, done[i]) == 0)
      return 1;
  return 0;
}

/* Members healthy for traffic: in service, healthy for the group and (behind a load balancer)
 * healthy targets. */
static size_t healthy(const struct kiln_fleet *f)
{
  size_t n = 0;
  for (size_t i = 0; i < f->nmembers; i++) {
    const struct kiln_member *m = &f->members[i];
    int in_service = m->lifecycle && strcmp(m->lifecycle, "InService") == 0;
    int ok = m->health && strcmp(m->health, "Healthy") == 0;
    int target = !m->target_health || strcmp(m->target_health, "healthy") == 0;
    n += in_service && ok && target;
  }
  return n;
}

kiln_err kiln_rollout_refresh_fleet(struct kiln_awsenv *env, struct kiln_fleet *f,
                                    struct kiln_error *err)
{
  for (size_t i = 0; i < f->ninstances; i++)
    free(f->instance_ids[i]);
  f->ninstances = 0;
  kiln_fleet_clear_members(f);
  for (size_t i = 0; i < f->ntarget_groups; i++)
    free(f->target_groups[i]);
  f->ntarget_groups = 0;
  free(f->asg_lt_version);
  free(f->refresh_status);
  free(f->refresh_id);
  free(f->asg_health_type);
  f->asg_lt_version = f->refresh_status = f->refresh_id = f->asg_health_type = NULL;
  f->asg_exists = 0;
  kiln_err rc = kiln_fleet_find_group(env, f, err);
  if (rc == KILN_OK)
    rc = kiln_fleet_find_members(env, f, err);
  return rc;
}

static void progress(struct kiln_awsenv *env, const struct kiln_fleet *f,
                     const struct refresh_state *st, int desired, char *last, size_t n)
{
  char line[160];
  if (strcmp(st->status, "scaling") == 0 || strcmp(st->status, "scaled") == 0)
    snprintf(line, sizeof(line), "rollout: %zu/%d instance(s) healthy, %s", healthy(f), desired,
             st->status);
  else
    snprintf(line, sizeof(line), "rollout: %zu/%d instance(s) healthy, refresh %s %d%%", healthy(f),
             desired, st->status, st->percent);
  if (isatty(STDERR_FILENO)) { /* one line, redrawn */
    fprintf(stderr, "\r%-78s%s", line, terminal(st->status) ? "\n" : "");
    fflush(stderr);
  } else if (strcmp(line, last) != 0) {
    kiln_aws_client_log(env->c, KILN_LOG_INFO, "%s", line);
  }
  snprintf(last, n, "%s", line);
}

kiln_err kiln_rollout_wait(struct kiln_awsenv *env, struct kiln_fleet *f, const char *id,
                           int desired, int timeout_seconds, char *status, size_t status_size,
                           char *reason, size_t reason_size, struct kiln_error *err)
{
  struct refresh_state st;
  char last[160] = "";
  time_t deadline = time(NULL) + timeout_seconds;
  kiln_err rc;
  for (;;) {
    rc = refresh_state(env, id, &st, err);
    if (rc == KILN_OK)
      rc = kiln_rollout_refresh_fleet(env, f, err);
    if (rc != KILN_OK)
      return rc;
    progress(env, f, &st, desired, last, sizeof(last));
    if (terminal(st.status) || time(NULL) >= deadline)
      break;
    sleep(POLL_SECONDS);
  }
  snprintf(status, status_size, "%s", terminal(st.status) ? st.status : "TimedOut");
  snprintf(reason, reason_size, "%s", st.reason);
  return KILN_OK;
}

kiln_err kiln_rollout_wait_healthy(struct kiln_awsenv *env, struct kiln_fleet *f, int desired,
                                   int timeout_seconds, struct kiln_error *err)
{
  struct refresh_state st = {.status = "scaling", .percent = 0};
  char last[160] = "";
  time_t deadline = time(NULL) + timeout_seconds;
  for (;;) {
    kiln_err rc = kiln_rollout_refresh_fleet(env, f, err);
    if (rc != KILN_OK)
      return rc;
    size_t ok = healthy(f);
    int done = ok >= (size_t)desired && f->nmembers == (size_t)desired;
    st.percent = desired ? (int)(100 * ok / (size_t)desired) : 100;
    snprintf(st.status, sizeof(st.status), "%s", done ? "scaled" : "scaling");
    progress(env, f, &st, desired, last, sizeof(last));
    if (done)
      return KILN_OK;
    if (time(NULL) >= deadline)
      return kiln_error_set(err, KILN_E_REMOTE,
                            "%s: %zu of %d instance(s) healthy after %d s: see `kiln status` for "
                            "each instance's health",
                            env->names.asg, ok, desired, timeout_seconds);
    sleep(POLL_SECONDS);
  }
}

kiln_err kiln_rollout_set_default(struct kiln_awsenv *env, const struct kiln_fleet *f,
                                  const char *version, struct kiln_error *err)
{
  struct kiln_aws_params p = {0};
  kiln_awsenv_announce(env, "update", env->names.launch_template, "default version %s", version);
  kiln_aws_params_add(&p, "LaunchTemplateId", f->lt_id ? f->lt_id : "(new)");
  kiln_aws_params_add(&p, "SetDefaultVersion", version);
  kiln_err rc = kiln_awsenv_mutate(env, "ec2", "ModifyLaunchTemplate", &p,
                                   env->names.launch_template, NULL, NULL, err);
  kiln_aws_params_clear(&p);
  return rc;
}

/* Move the group to `version` with a refresh (or directly when it runs no instance) and wait. */
static kiln_err move_to(struct kiln_awsenv *env, struct kiln_fleet *f, const struct kiln_scale *s,
                        const char *version, char *status, size_t n, char *reason, size_t rn,
                        struct kiln_error *err)
{
  kiln_err rc = kiln_rollout_set_default(env, f, version, err);
  if (rc == KILN_OK && f->ninstances == 0) {
    struct kiln_aws_params p = {0};
    kiln_awsenv_announce(env, "update", env->names.asg, "launch template version %s", version);
    kiln_aws_params_add(&p, "AutoScalingGroupName", env->names.asg);
    kiln_aws_params_add(&p, "LaunchTemplate.LaunchTemplateId", f->lt_id ? f->lt_id : "(new)");
    kiln_aws_params_add(&p, "LaunchTemplate.Version", version);
    rc = kiln_awsenv_mutate(env, "autoscaling", "UpdateAutoScalingGroup", &p, env->names.asg, NULL,
                            NULL, err);
    kiln_aws_params_clear(&p);
    snprintf(status, n, "Successful");
    return rc;
  }
  char *id = NULL;
  if (rc == KILN_OK)
    rc = kiln_rollout_start(env, f, s, version, 0, &id, err);
  if (rc == KILN_OK && !env->dry_run)
    rc = kiln_rollout_wait(env, f, id, f->asg_desired, s->rollout_timeout_seconds, status, n,
                           reason, rn, err);
  else if (rc == KILN_OK)
    snprintf(status, n, "Successful");
  free(id);
  return rc;
}

/* AWS's rollback of a refresh still running; waits for it. */
static kiln_err aws_rollback(struct kiln_awsenv *env, struct kiln_fleet *f, const char *id,
                             const struct kiln_scale *s, char *status, size_t n, char *reason,
                             size_t rn, struct kiln_error *err)
{
  struct kiln_aws_params p = {0};
  kiln_awsenv_announce(env, "update", env->names.asg, "roll back instance refresh %s", id);
  kiln_aws_params_add(&p, "AutoScalingGroupName", env->names.asg);
  kiln_err rc = kiln_awsenv_mutate(env, "autoscaling", "RollbackInstanceRefresh", &p,
                                   env->names.asg, NULL, NULL, err);
  kiln_aws_params_clear(&p);
  if (rc == KILN_OK && !env->dry_run)
    rc = kiln_rollout_wait(env, f, id, f->asg_desired, s->rollout_timeout_seconds, status, n,
                           reason, rn, err);
  return rc;
}

kiln_err kiln_rollout_deploy(struct kiln_awsenv *env, struct kiln_fleet *f,
                             const struct kiln_scale *s, const char *version, const char *previous,
                             struct kiln_error *err)
{
  char *id = NULL;
  char status[32] = "", reason[256] = "";
  kiln_err rc = kiln_rollout_start(env, f, s, version, 1, &id, err);
  if (rc != KILN_OK || env->dry_run) {
    free(id);
    return rc;
  }
  rc = kiln_rollout_wait(env, f, id, s->count, s->rollout_timeout_seconds, status, sizeof(status),
                         reason, sizeof(reason), err);
  if (rc == KILN_OK && strcmp(status, "TimedOut") == 0) {
    kiln_aws_client_log(env->c, KILN_LOG_WARN,
                        "instance refresh to version %s still not done after %d s: rolling back",
                        version, s->rollout_timeout_seconds);
    rc = aws_rollback(env, f, id, s, status, sizeof(status), reason, sizeof(reason), err);
    if (rc == KILN_OK && strcmp(status, "RollbackSuccessful") == 0 && previous)
      rc = kiln_rollout_set_default(env, f, previous, err);
    if (rc == KILN_OK)
      rc = kiln_error_set(err, KILN_E_REMOTE,
                          "the instances of version %s did not pass the load balancer's health "
                          "checks within %d s; the refresh was rolled back (%s) to version %s",
                          version, s->rollout_timeout_seconds, status,
                          previous ? previous : "(previous)");
  } else if (rc == KILN_OK && strcmp(status, "RollbackSuccessful") == 0) {
    if (previous)
      rc = kiln_rollout_set_default(env, f, previous, err);
    if (rc == KILN_OK)
      rc = kiln_error_set(err, KILN_E_REMOTE,
                          "instance refresh to version %s failed (%s); AWS rolled %s back to "
                          "version %s: fix the EIF and deploy again",
                          version, *reason ? reason : "health checks failed", env->names.asg,
                          previous ? previous : "(previous)");
  } else if (rc == KILN_OK && strcmp(status, "Successful") != 0 && strcmp(status, "Baking") != 0) {
    char own[32] = "", own_reason[256] = "";
    if (previous) {
      kiln_aws_client_log(env->c, KILN_LOG_WARN,
                          "instance refresh to version %s ended %s without a rollback: kiln "
                          "returns %s to version %s",
                          version, status, env->names.asg, previous);
      rc = move_to(env, f, s, previous, own, sizeof(own), own_reason, sizeof(own_reason), err);
    }
    if (rc == KILN_OK)
      rc = kiln_error_set(
          err, KILN_E_REMOTE, "instance refresh to version %s ended %s (%s); %s%s%s", version,
          status, *reason ? reason : "no reason given",
          previous ? "kiln rolled back to version "
                   : "no earlier version to roll "
                     "back to",
          previous ? previous : "",
          previous && strcmp(own, "Successful") != 0 ? " (that refresh did not succeed either)"
                                                     : "");
  }
  free(id);
  return rc;
}

/* Whether template version `version` runs a release (its instances carry the EIF tag). */
static kiln_err version_has_eif(struct kiln_awsenv *env, const struct kiln_fleet *f,
                                const char *version, int *exists, int *has_eif,
                                struct kiln_error *err)
{
  struct kiln_aws_params p = {0};
  struct kiln_xml *doc = NULL;
  struct kiln_aws_error_info info;
  *exists = *has_eif = 0;
  kiln_aws_params_add(&p, "LaunchTemplateId", f->lt_id);
  kiln_aws_params_add(&p, "LaunchTemplateVersion.1", version);
  kiln_err rc =
      kiln_aws_query(env->c, "ec2", "DescribeLaunchTemplateVersions", &p, &doc, &info, err);
  kiln_aws_params_clear(&p);
  if (rc != KILN_OK && strstr(info.code, "NotFound")) {
    kiln_error_clear(err);
    return KILN_OK;
  }
  const struct kiln_xml *v =
      rc == KILN_OK ? kiln_awsenv_items(doc, "launchTemplateVersionSet") : NULL;
  *exists = v != NULL;
  if (v) {
    const struct kiln_xml *specs = kiln_xml_find(v, "tagSpecificationSet");
    for (const struct kiln_xml *s = specs ? specs->child : NULL; s && !*has_eif; s = s->next)
      for (const struct kiln_xml *t = kiln_awsenv_items(s, "tagSet"); t; t = kiln_xml_next_same(t))
        *has_eif |=
            kiln_xml_text(t, "key") && strcmp(kiln_xml_text(t, "key"), KILN_TAG_EIF_SHA256) == 0;
  }
  kiln_xml_free(doc);
  return rc;
}

kiln_err kiln_fleet_rollback(struct kiln_awsenv *env, struct kiln_fleet *f,
                             const struct kiln_scale *s, const char *to, struct kiln_error *err)
{
  char target[24];
  if (!f->asg_exists || !f->lt_id || !f->asg_lt_version)
    return kiln_error_set(err, KILN_E_NOT_FOUND,
                          "deployment %s has no Auto Scaling group with a launch template in %s: "
                          "run `kiln setup` and `kiln deploy` first",
                          env->dep.id, env->dep.region ? env->dep.region : "this region");
  long running = atol(f->asg_lt_version);
  if (to)
    snprintf(target, sizeof(target), "%s", to);
  else
    snprintf(target, sizeof(target), "%ld", running - 1);
  int exists = 0, has_eif = 0;
  kiln_err rc =
      atol(target) >= 1 ? version_has_eif(env, f, target, &exists, &has_eif, err) : KILN_OK;
  if (rc != KILN_OK)
    return rc;
  if (!exists || !has_eif)
    return kiln_error_set(err, KILN_E_INVALID,
                          "%s version %s of launch template %s %s: name one that a deploy made "
                          "(`kiln status` shows the running version %ld)",
                          to ? "--to" : "the previous", target, env->names.launch_template,
                          !exists ? "does not exist" : "runs no release (setup's placeholder)",
                          running);
  if (atol(target) == running &&
      !(f->refresh_status && strcmp(f->refresh_status, "InProgress") == 0))
    return kiln_error_set(err, KILN_E_INVALID, "%s already runs version %s: nothing to roll back",
                          env->names.asg, target);
  char status[32] = "", reason[256] = "";
  if (f->refresh_status && f->refresh_id &&
      (strcmp(f->refresh_status, "InProgress") == 0 || strcmp(f->refresh_status, "Pending") == 0) &&
      !to) { /* a refresh still running: AWS rolls it back itself */
    rc =
        aws_rollback(env, f, f->refresh_id, s, status, sizeof(status), reason, sizeof(reason), err);
    if (rc == KILN_OK)
      rc = kiln_rollout_set_default(env, f, target, err);
  } else {
    rc = move_to(env, f, s, target, status, sizeof(status), reason, sizeof(reason), err);
  }
  if (rc == KILN_OK && !env->dry_run && strcmp(status, "Successful") != 0 &&
      strcmp(status, "RollbackSuccessful") != 0 && strcmp(status, "Baking") != 0)
    rc = kiln_error_set(err, KILN_E_REMOTE, "rolling %s back to version %s ended %s (%s)",
                        env->names.asg, target, status, *reason ? reason : "no reason given");
  return rc;
}
