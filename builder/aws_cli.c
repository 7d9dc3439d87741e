/* Shared pieces of the AWS commands: their pipelines, common options, plan and deployment output.
 */
#include "aws_cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <kiln/eif.h>

#include "util/error.h"
#include "util/fs.h"
#include "util/hash.h"

int kiln_aws_cli_set(struct kiln_cli *cli, struct kiln *k, struct kiln_pipeline *p, const char *key,
                     const char *json_value)
{
  kiln_err rc = kiln_pipeline_set(p, "aws", key, json_value);
  return rc ? kiln_cli_fail(cli, k, rc) : 0;
}

static int set_string(struct kiln_cli *cli, struct kiln *k, struct kiln_pipeline *p,
                      const char *key, const char *value)
{
  return kiln_cli_set_string(cli, k, p, "aws", key, value);
}

int kiln_aws_cli_option(struct kiln_cli *cli, struct kiln *k, struct kiln_pipeline *p,
                        struct kiln_aws_cli *a, int *i, int *taken)
{
  const char *arg = cli->argv[*i];
  const char *v = *i + 1 < cli->argc ? cli->argv[*i + 1] : NULL;
  *taken = strcmp(arg, "--region") == 0 || strcmp(arg, "--profile") == 0 ||
           strcmp(arg, "--set") == 0 || (a->deploy_pipeline && strcmp(arg, "--eif") == 0);
  if (!*taken)
    return 0;
  if (!v)
    return kiln_cli_usage(cli, "%s needs a value", arg);
  (*i)++;
  if (strcmp(arg, "--set") == 0)
    return kiln_cli_apply_set(cli, k, p, NULL, v);
  if (strcmp(arg, "--eif") == 0) {
    a->eif_file = v;
    return 0;
  }
  /* The aws stage's region option comes after AWS_REGION (it is kiln.json's too), and the s3
   * stage reads kiln.json's aws section, not these options: the command line is the most
   * explicit setting, so --region and --profile also go where every AWS client looks first. */
  if (setenv(strcmp(arg, "--region") == 0 ? "AWS_REGION" : "AWS_PROFILE", v, 1) != 0)
    return kiln_cli_fail_msg(cli, KILN_E_NOMEM, "cannot set %s", arg);
  return set_string(cli, k, p, arg + 2, v);
}

/* kiln.json "eif": "FILE" (a prebuilt EIF, relative to the app directory). */
static const char *config_eif(struct kiln *k)
{
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(kiln_config(k), "eif");
  return cJSON_IsString(v) && *v->valuestring ? v->valuestring : NULL;
}

int kiln_aws_cli_pipeline(struct kiln_cli *cli, struct kiln *k, struct kiln_aws_cli *a,
                          struct kiln_pipeline **out)
{
  static const char *const build[] = {"image", "kernel", "eif", "size", "s3", "aws", NULL};
  static const char *const prebuilt[] = {"size", "s3", "aws", NULL};
  static const char *const aws_only[] = {"aws", NULL};
  const char *const *stages = aws_only;
  for (int i = 1; a->deploy_pipeline && i + 1 < cli->argc; i++)
    if (strcmp(cli->argv[i], "--eif") == 0)
      a->eif_file = cli->argv[i + 1];
  if (a->deploy_pipeline && !a->eif_file && config_eif(k)) {
    char *abs = kiln_path_absolute(kiln_app_dir(k), config_eif(k));
    a->eif_file = a->eif_storage = abs;
  }
  if (a->deploy_pipeline)
    stages = a->eif_file ? prebuilt : build;
  int code = kiln_cli_pipeline(cli, k, stages, out);
  if (!code && a->action) {
    char quoted[64];
    snprintf(quoted, sizeof(quoted), "\"%s\"", a->action);
    code = kiln_aws_cli_set(cli, k, *out, "action", quoted);
  }
  return code;
}

int kiln_aws_cli_add_eif(struct kiln_cli *cli, struct kiln *k, struct kiln_pipeline *p,
                         const char *file)
{
  struct kiln_error err = KILN_ERROR_INIT;
  struct kiln_eif_info info;
  char sha[KILN_SHA256_HEX_LEN + 1];
  uint64_t size = 0;
  memset(&info, 0, sizeof(info));
  kiln_err rc = kiln_eif_read(file, 1, KILN_EIF_SHA384, &info, &err);
  if (rc == KILN_OK)
    rc = kiln_sha256_file(file, sha, &size, &err);
  if (rc != KILN_OK) {
    int code = kiln_cli_fail_msg(cli, rc, "--eif %s: %s", file, kiln_error_msg(&err));
    kiln_error_clear(&err);
    kiln_eif_info_clear(&info);
    return code;
  }
  /* The EIF's header says its architecture; kiln.json /arch must agree, or follows it. */
  const char *eif_arch = (info.flags & 1) ? "aarch64" : "x86_64";
  const cJSON *set_arch = cJSON_GetObjectItemCaseSensitive(kiln_config(k), "arch");
  if (cJSON_IsString(set_arch) && strcmp(set_arch->valuestring, eif_arch) != 0) {
    kiln_eif_info_clear(&info);
    return kiln_cli_fail_msg(cli, KILN_E_INVALID,
                             "--eif %s is an %s EIF but kiln.json /arch is %s: deploy an EIF "
                             "built for %s (`kiln build --arch %s`) or change /arch",
                             file, eif_arch, set_arch->valuestring, set_arch->valuestring,
                             set_arch->valuestring);
  }
  if (!cJSON_IsString(set_arch) && (rc = kiln_set_arch(k, eif_arch))) {
    kiln_eif_info_clear(&info);
    return kiln_cli_fail(cli, k, rc);
  }
  const char *base = strrchr(file, '/') ? strrchr(file, '/') + 1 : file;
  size_t n = strlen(base);
  char *name = strndup(base, n > 4 && strcmp(base + n - 4, ".eif") == 0 ? n - 4 : n);
  cJSON *meta = cJSON_CreateObject();
  cJSON_AddStringToObject(meta, "name", name ? name : "enclave");
  cJSON_AddStringToObject(meta, "file", "image.eif");
  cJSON_AddNumberToObject(meta, "size", (double)size);
  cJSON_AddStringToObject(meta, "sha256", sha);
  cJSON_AddStringToObject(meta, "arch", eif_arch);
  cJSON_AddBoolToObject(meta, "signed", info.has_signature);
  cJSON_AddItemToObject(meta, "measurements", (cJSON *)kiln_eif_pcrs_json(&info.pcrs));
  free(name);
  kiln_eif_info_clear(&info);
  const char *files[] = {"image.eif", file, NULL};
  rc = kiln_pipeline_add_input(p, "eif", files, meta);
  return rc ? kiln_cli_fail(cli, k, rc) : 0;
}

int kiln_aws_cli_args(struct kiln_cli *cli, struct kiln *k, struct kiln_pipeline *p,
                      struct kiln_aws_cli *a, const char *skip)
{
  int code = 0;
  for (int i = 1; i < cli->argc && !code; i++) {
    if (skip && strcmp(cli->argv[i], skip) == 0) {
      i++;
      continue;
    }
    int taken = 0;
    code = kiln_aws_cli_option(cli, k, p, a, &i, &taken);
    if (!code && !taken)
      code = kiln_cli_usage(cli, "unexpected argument \"%s\"", cli->argv[i]);
  }
  if (!code && a->eif_file)
    code = kiln_aws_cli_add_eif(cli, k, p, a->eif_file);
  return code;
}

void kiln_aws_cli_print_result(struct kiln_cli *cli, const cJSON *meta)
{
  const cJSON *policy = cJSON_GetObjectItemCaseSensitive(meta, "policy");
  const cJSON *action = cJSON_GetObjectItemCaseSensitive(meta, "action");
  if (cli->json) {
    kiln_cli_print_json(cJSON_Duplicate(meta, 1));
  } else if (policy && cJSON_IsString(action) && strcmp(action->valuestring, "policy") == 0) {
    char *text = cJSON_Print(policy);
    printf("%s\n", text ? text : "");
    free(text);
  } else {
    kiln_aws_cli_print_deployment(meta);
  }
}

void kiln_aws_cli_print_plan(const cJSON *result)
{
  const cJSON *step;
  int changes = 0;
  cJSON_ArrayForEach(step, cJSON_GetObjectItemCaseSensitive(result, "steps"))
  {
    const cJSON *stage = cJSON_GetObjectItemCaseSensitive(step, "stage");
    const cJSON *status = cJSON_GetObjectItemCaseSensitive(step, "status");
    printf("%s (%s)\n", cJSON_IsString(stage) ? stage->valuestring : "?",
           cJSON_IsString(status) ? status->valuestring : "?");
    const cJSON *act;
    cJSON_ArrayForEach(act, cJSON_GetObjectItemCaseSensitive(step, "actions"))
    {
      const char *action = cJSON_GetObjectItemCaseSensitive(act, "action")->valuestring;
      const cJSON *detail = cJSON_GetObjectItemCaseSensitive(act, "detail");
      changes += strcmp(action, "nothing") != 0 && strcmp(action, "call") != 0;
      printf("  %-8s %s%s%s\n", action,
             cJSON_GetObjectItemCaseSensitive(act, "resource")->valuestring,
             cJSON_IsString(detail) ? ": " : "", cJSON_IsString(detail) ? detail->valuestring : "");
    }
  }
  if (changes == 0)
    printf("nothing to do: the deployment is up to date\n");
  else
    printf("%d change(s)\n", changes);
}

static void print_field(const cJSON *m, const char *key, const char *label)
{
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(m, key);
  if (cJSON_IsString(v))
    printf("%-22s %s\n", label, v->valuestring);
  else if (cJSON_IsNumber(v))
    printf("%-22s %g\n", label, v->valuedouble);
  else if (cJSON_IsArray(v) && cJSON_GetArraySize(v) > 0) {
    printf("%-22s", label);
    const cJSON *item;
    cJSON_ArrayForEach(item, v) printf(" %s", cJSON_IsString(item) ? item->valuestring : "?");
    printf("\n");
  }
}

void kiln_aws_cli_print_deployment(const cJSON *m)
{
  /* the aws stage says which fields people see, and how they are called, in "display" */
  const cJSON *d;
  cJSON_ArrayForEach(d, cJSON_GetObjectItemCaseSensitive(m, "display"))
  {
    const char *field = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(d, "field"));
    const char *label = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(d, "label"));
    if (field && label)
      print_field(m, field, label);
  }
  const cJSON *pcrs = cJSON_GetObjectItemCaseSensitive(m, "measurements");
  static const char *const keys[] = {"PCR0", "PCR1", "PCR2", "PCR8"};
  for (size_t i = 0; i < 4; i++)
    print_field(pcrs, keys[i], keys[i]);
  const cJSON *uploads = cJSON_GetObjectItemCaseSensitive(m, "incomplete_uploads");
  const cJSON *u;
  cJSON_ArrayForEach(u, uploads)
  {
    printf("incomplete upload     %s (%s, started %s)\n",
           cJSON_GetObjectItemCaseSensitive(u, "key")->valuestring,
           cJSON_GetObjectItemCaseSensitive(u, "upload_id")->valuestring,
           cJSON_IsString(cJSON_GetObjectItemCaseSensitive(u, "initiated"))
               ? cJSON_GetObjectItemCaseSensitive(u, "initiated")->valuestring
               : "?");
  }
}

static int confirmed(struct kiln_cli *cli, int yes)
{
  if (yes)
    return 1;
  if (!isatty(STDIN_FILENO) || cli->json)
    return 0;
  fprintf(stderr, "Delete every AWS resource tagged with this app's deployment id? [y/N] ");
  char answer[16] = "";
  if (!fgets(answer, sizeof(answer), stdin))
    return 0;
  return answer[0] == 'y' || answer[0] == 'Y';
}

/* setup: a new deployment id goes into <app>/.env before anything is created (the aws stage's
 * "setup-check" action makes it, after setup's checks), so an interrupted setup resumes with the
 * same id. */
static int record_new_deployment_id(struct kiln_cli *cli, struct kiln *k, struct kiln_pipeline *p)
{
  const struct kiln_artifact *d = NULL;
  int code = kiln_aws_cli_set(cli, k, p, "action", "\"setup-check\"");
  if (!code)
    code = kiln_cli_run_pipeline(cli, k, p, "deployment", &d);
  const char *id =
      code ? NULL
           : cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(d->meta, "new_deployment_id"));
  if (id) {
    char *dotenv = kiln_path_join(kiln_app_dir(k), ".env");
    FILE *f = dotenv ? fopen(dotenv, "a") : NULL;
    int written = f && fprintf(f, "DEPLOYMENT_ID=%s\n", id) > 0;
    if (f && fclose(f) != 0)
      written = 0;
    if (!written)
      code = kiln_cli_fail_msg(cli, KILN_E_IO, "cannot record the deployment id in %s: %s",
                               dotenv ? dotenv : ".env", strerror(errno));
    else
      kiln_log(k, KILN_LOG_INFO, "new deployment id %s (recorded in %s)", id, dotenv);
    free(dotenv);
  }
  return code ? code : kiln_aws_cli_set(cli, k, p, "action", "\"setup\"");
}

int kiln_aws_cli_simple(struct kiln_cli *cli, const char *action, const struct kiln_aws_flag *flags,
                        int confirm)
{
  int code = 0, yes = 0, switched = 0;
  struct kiln *k = kiln_cli_open_app(cli, 0, &code);
  if (!k)
    return code;
  struct kiln_aws_cli a = {.action = action};
  struct kiln_pipeline *p = NULL;
  if ((code = kiln_aws_cli_pipeline(cli, k, &a, &p)))
    goto out;
  for (int i = 1; i < cli->argc && !code; i++) {
    const char *arg = cli->argv[i];
    const struct kiln_aws_flag *f = flags;
    while (f && f->flag && strcmp(f->flag, arg) != 0)
      f++;
    if (confirm && strcmp(arg, "--yes") == 0) {
      yes = 1;
    } else if (f && f->flag && f->takes_value) {
      if (i + 1 >= cli->argc)
        code = kiln_cli_usage(cli, "%s needs a value", arg);
      else
        code = set_string(cli, k, p, f->option, cli->argv[++i]);
    } else if (f && f->flag) {
      code = f->option[0] == '=' ? 0 : kiln_aws_cli_set(cli, k, p, f->option, "true");
      if (f->option[0] == '=') /* "=action": the flag switches the action */
        code = kiln_aws_cli_set(cli, k, p, "action", f->option + 1);
      switched |= f->option[0] == '=';
    } else {
      int taken = 0;
      code = kiln_aws_cli_option(cli, k, p, &a, &i, &taken);
      if (!code && !taken)
        code = kiln_cli_usage(cli, "unexpected argument \"%s\"", arg);
    }
  }
  if (!code && confirm && !confirmed(cli, yes))
    code = kiln_cli_usage(cli, "refusing to %s without confirmation: add --yes", action);
  if (!code && strcmp(action, "setup") == 0 && !switched)
    code = record_new_deployment_id(cli, k, p);
out:
  return kiln_aws_cli_finish(cli, k, p, &a, code);
}

int kiln_aws_cli_finish(struct kiln_cli *cli, struct kiln *k, struct kiln_pipeline *p,
                        struct kiln_aws_cli *a, int code)
{
  const struct kiln_artifact *d = NULL;
  if (!code)
    code = kiln_cli_run_pipeline(cli, k, p, "deployment", &d);
  if (!code)
    kiln_aws_cli_print_result(cli, d->meta);
  free(a->eif_storage);
  kiln_pipeline_free(p);
  kiln_free(k);
  return code;
}
