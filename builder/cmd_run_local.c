/* `kiln run-local`: boot the app's EIF on this machine under qemu, without Nitro hardware: the
 * console streamed, the app's exit status returned, kiln-host beside it where vsock exists. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "runlocal.h"
#include "util/fs.h"

struct run_local_args {
  const char *eif, *qemu;
  long long cpus, memory_mib, timeout_s;
};

static int parse_number(struct kiln_cli *cli, const char *opt, const char *text, long long max,
                        long long *out)
{
  char *end = NULL;
  long long v = strtoll(text, &end, 10);
  if (end == text || *end || v < 1 || v > max)
    return kiln_cli_usage(cli, "%s takes a whole number from 1 to %lld, got \"%s\"", opt, max,
                          text);
  *out = v;
  return 0;
}

static int parse_args(struct kiln_cli *cli, struct run_local_args *a)
{
  for (int i = 1; i < cli->argc; i++) {
    const char *o = cli->argv[i];
    int has_value = i + 1 < cli->argc;
    int code = 0;
    if (!strcmp(o, "--eif") && has_value)
      a->eif = cli->argv[++i];
    else if (!strcmp(o, "--qemu") && has_value)
      a->qemu = cli->argv[++i];
    else if (!strcmp(o, "--cpus") && has_value)
      code = parse_number(cli, o, cli->argv[++i], 256, &a->cpus);
    else if (!strcmp(o, "--timeout") && has_value)
      code = parse_number(cli, o, cli->argv[++i], 7 * 24 * 3600, &a->timeout_s);
    else if (!strcmp(o, "--memory") && has_value) {
      if (kiln_cli_parse_mib(cli->argv[++i], &a->memory_mib) != 0 || a->memory_mib < 64)
        code = kiln_cli_usage(cli, "--memory takes a size of at least 64M (512M, 2G), got \"%s\"",
                              cli->argv[i]);
    } else if (o[0] == '-' && !has_value &&
               (!strcmp(o, "--eif") || !strcmp(o, "--qemu") || !strcmp(o, "--cpus") ||
                !strcmp(o, "--timeout") || !strcmp(o, "--memory")))
      code = kiln_cli_usage(cli, "%s needs a value", o);
    else
      code = kiln_cli_usage(cli, "unexpected argument \"%s\"", o);
    if (code)
      return code;
  }
  return 0;
}

/* CPUs and memory: the options, else kiln.json /enclave, else 2 CPUs and 512 MiB. */
static void enclave_size(const cJSON *config, struct run_local_args *a)
{
  const cJSON *enclave = cJSON_GetObjectItemCaseSensitive(config, "enclave");
  const cJSON *cpus = cJSON_GetObjectItemCaseSensitive(enclave, "cpus");
  const cJSON *mem = cJSON_GetObjectItemCaseSensitive(enclave, "memory_mib");
  if (!a->cpus)
    a->cpus = cJSON_IsNumber(cpus) && cpus->valuedouble >= 1 ? (long long)cpus->valuedouble : 2;
  if (!a->memory_mib)
    a->memory_mib =
        cJSON_IsNumber(mem) && mem->valuedouble >= 64 ? (long long)mem->valuedouble : 512;
}

/* The app's EIF, built (or found current in the cache) like `kiln build` and exported to
 * <app>/<name>.eif. *path is owned by the caller. */
static int app_eif(struct kiln_cli *cli, struct kiln *k, char **path)
{
  struct kiln_pipeline *p = NULL;
  const struct kiln_artifact *eif = NULL;
  int code = kiln_cli_pipeline(cli, k, kiln_cli_build_stages, &p);
  code = code ? code : kiln_cli_run_pipeline(cli, k, p, "eif", &eif);
  if (!code) {
    struct kiln_buf dest = KILN_BUF_INIT;
    kiln_buf_printf(&dest, "%s/%s.eif", kiln_app_dir(k), kiln_app_name(k));
    kiln_err rc = kiln_artifact_export(k, eif, "image.eif", kiln_buf_str(&dest));
    if (rc)
      code = kiln_cli_fail(cli, k, rc);
    else
      *path = kiln_buf_detach(&dest);
    kiln_buf_free(&dest);
  }
  kiln_pipeline_free(p);
  return code;
}

/* Ports, and kiln-host started when the VM gets a vsock device; *vsock is cleared when the
 * parent side cannot run. Says once what is missing. */
static int start_parent_side(struct kiln_cli *cli, struct kiln *k, const char *work_dir,
                             const struct runlocal_port *ports, size_t nports, int *vsock,
                             pid_t *host)
{
  char *kiln_host = kiln_path_join(kiln_lib_dir(k), "kiln-host");
  if (*vsock && (!kiln_host || access(kiln_host, X_OK) != 0)) {
    kiln_log(k, KILN_LOG_WARN,
             "kiln-host is not built (expected at %s): running console-only, without ports, "
             "egress or log records",
             kiln_host ? kiln_host : "<lib>/kiln-host");
    *vsock = 0;
  } else if (!*vsock) {
    kiln_log(k, KILN_LOG_WARN,
             "/dev/vhost-vsock is not available on this machine (`sudo modprobe vhost_vsock`): "
             "running console-only%s, without egress or log records",
             nports ? ", the app's ports are not forwarded" : "");
  }
  int code = 0;
  if (*vsock) {
    struct kiln_buf conf = KILN_BUF_INIT;
    struct kiln_error err = KILN_ERROR_INIT;
    kiln_err rc = runlocal_host_config(kiln_config(k), &conf, &err);
    rc = rc ? rc : runlocal_host_start(kiln_host, work_dir, kiln_buf_str(&conf), host, &err);
    if (rc)
      code = kiln_cli_fail_msg(cli, rc, "%s", kiln_error_msg(&err));
    for (size_t i = 0; !rc && i < nports; i++)
      kiln_log(k, KILN_LOG_INFO, "port %u on 127.0.0.1 -> the enclave's port %u",
               ports[i].public_port, ports[i].app_port);
    kiln_error_clear(&err);
    kiln_buf_free(&conf);
  }
  free(kiln_host);
  return code;
}

static void print_result(const struct runlocal_result *r, const char *eif, int vsock,
                         const struct runlocal_port *ports, size_t nports)
{
  cJSON *doc = cJSON_CreateObject();
  cJSON_AddNumberToObject(doc, "exit_status", r->exit_status);
  cJSON_AddNumberToObject(doc, "console_lines", (double)r->console_lines);
  cJSON_AddNumberToObject(doc, "seconds", (double)(long long)(r->seconds * 1000) / 1000);
  cJSON_AddBoolToObject(doc, "vsock", vsock);
  cJSON_AddStringToObject(doc, "eif", eif);
  cJSON_AddStringToObject(doc, "machine", r->machine ? r->machine : "");
  cJSON_AddStringToObject(doc, "accel", r->accel ? r->accel : "");
  cJSON *list = cJSON_AddArrayToObject(doc, "ports");
  for (size_t i = 0; i < nports; i++) {
    cJSON *p = cJSON_CreateObject();
    cJSON_AddNumberToObject(p, "public", ports[i].public_port);
    cJSON_AddNumberToObject(p, "app", ports[i].app_port);
    cJSON_AddItemToArray(list, p);
  }
  kiln_cli_print_json(doc);
}

/* The command's exit code for how the VM ended. */
static int finish(struct kiln_cli *cli, const struct runlocal_vm_opts *o,
                  const struct runlocal_result *r, const struct runlocal_port *ports, size_t nports)
{
  if (r->interrupted)
    return kiln_cli_fail_msg(cli, KILN_E_CANCELLED,
                             "interrupted: the enclave VM was powered off (%.1f s)", r->seconds);
  if (r->timed_out)
    return kiln_cli_fail_msg(cli, KILN_E_REMOTE,
                             "the enclave did not finish within %lld s (--timeout); the VM was "
                             "powered off",
                             o->timeout_s);
  if (r->fatal.len)
    return kiln_cli_fail_msg(cli, KILN_E_REMOTE, "%s", kiln_buf_str(&r->fatal));
  if (cli->json)
    print_result(r, o->eif, o->vsock, ports, nports);
  return r->exit_status;
}

int kiln_cmd_run_local(struct kiln_cli *cli)
{
  struct run_local_args a = {0};
  int code = parse_args(cli, &a);
  if (code)
    return code;
  struct kiln_error err = KILN_ERROR_INIT;
  char *qemu = NULL, *eif = NULL, *work = NULL;
  struct runlocal_port *ports = NULL;
  size_t nports = 0;
  pid_t host = 0;
  struct runlocal_result r = {0};
  struct kiln *k = NULL;
  kiln_err rc = runlocal_find_qemu(a.qemu, &qemu, &err);
  if (rc || !(k = kiln_cli_open_app(cli, a.eif ? 0 : 1, &code))) {
    code = rc ? kiln_cli_fail_msg(cli, rc, "%s", kiln_error_msg(&err)) : code;
    goto out;
  }
  if ((rc = runlocal_ports(kiln_config(k), &ports, &nports, &err))) {
    code = kiln_cli_fail_msg(cli, rc, "%s", kiln_error_msg(&err));
    goto out;
  }
  if (a.eif && !(eif = kiln_path_absolute(NULL, a.eif)))
    code = kiln_cli_fail_msg(cli, KILN_E_NOMEM, "out of memory");
  else if (!a.eif)
    code = app_eif(cli, k, &eif);
  if (code)
    goto out;
  enclave_size(kiln_config(k), &a);
  const char *tmp = getenv("TMPDIR");
  if ((rc = kiln_mkdtemp_in(tmp && *tmp ? tmp : "/tmp", "kiln-run-local-", &work, &err))) {
    code = kiln_cli_fail_msg(cli, rc, "%s", kiln_error_msg(&err));
    goto out;
  }
  struct runlocal_vm_opts o = {.qemu = qemu,
                               .eif = eif,
                               .work_dir = work,
                               .cpus = a.cpus,
                               .memory_mib = a.memory_mib,
                               .timeout_s = a.timeout_s,
                               .vsock = runlocal_vhost_vsock_usable(),
                               .verbose = cli->verbosity > 0,
                               .console_to_stderr = cli->json};
  if ((code = start_parent_side(cli, k, work, ports, nports, &o.vsock, &host)))
    goto out;
  kiln_log(k, KILN_LOG_INFO, "booting %s: %lld CPUs, %lld MiB", eif, o.cpus, o.memory_mib);
  if ((rc = runlocal_vm_run(&o, &r, &err)))
    code = kiln_cli_fail_msg(cli, rc, "%s", kiln_error_msg(&err));
  else
    code = finish(cli, &o, &r, ports, nports);
out:
  runlocal_host_stop(host);
  if (work && kiln_rm_rf(work, &err) != KILN_OK)
    fprintf(stderr, "kiln run-local: the temporary directory %s stays: %s\n", work,
            kiln_error_msg(&err));
  runlocal_result_free(&r);
  kiln_error_clear(&err);
  free(work);
  free(ports);
  free(eif);
  free(qemu);
  kiln_free(k);
  return code;
}
