/* `kiln run-local`'s parent side: the ports and egress list of kiln.json turned into kiln-host's
 * configuration, and kiln-host started and stopped beside the VM, as on the parent instance. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "runlocal.h"
#include "util/fs.h"

static int reserved_port(unsigned p)
{
  return p == 9000 || (p >= 7700 && p <= 7709);
}

static int parse_port(const char *text, const char **end, unsigned *out)
{
  char *e = NULL;
  errno = 0;
  unsigned long v = strtoul(text, &e, 10);
  if (e == text || errno || v == 0 || v > 65535 || *text == '-' || *text == '+')
    return -1;
  *end = e;
  *out = (unsigned)v;
  return 0;
}

/* One entry: an integer P (P -> P) or "PUB:APP". */
static kiln_err port_entry(const cJSON *item, const char *where, struct runlocal_port *p,
                           struct kiln_error *err)
{
  if (cJSON_IsNumber(item)) {
    double v = item->valuedouble;
    if (v < 1 || v > 65535 || v != (double)(unsigned)v)
      return kiln_error_set(err, KILN_E_INVALID, "kiln.json %s: %g is not a port (1-65535)", where,
                            v);
    p->public_port = p->app_port = (unsigned)v;
  } else if (cJSON_IsString(item)) {
    const char *s = item->valuestring, *e = NULL;
    int ok = parse_port(s, &e, &p->public_port) == 0;
    p->app_port = p->public_port;
    if (ok && *e == ':')
      ok = parse_port(e + 1, &e, &p->app_port) == 0;
    if (!ok || *e)
      return kiln_error_set(err, KILN_E_INVALID,
                            "kiln.json %s: \"%s\" is not a port or \"PUBLIC:APP\" (1-65535)", where,
                            s);
  } else {
    return kiln_error_set(err, KILN_E_INVALID,
                          "kiln.json %s: give a port number or a \"PUBLIC:APP\" string", where);
  }
  if (reserved_port(p->public_port) || reserved_port(p->app_port))
    return kiln_error_set(err, KILN_E_INVALID,
                          "kiln.json %s: ports 9000 and 7700-7709 are reserved for the enclave "
                          "runtime (heartbeat, egress, logs, attestation); pick another port",
                          where);
  return KILN_OK;
}

kiln_err runlocal_ports(const cJSON *config, struct runlocal_port **out, size_t *count,
                        struct kiln_error *err)
{
  *out = NULL;
  *count = 0;
  const char *pointer = "/enclave/ports";
  const cJSON *list = cJSON_GetObjectItemCaseSensitive(
      cJSON_GetObjectItemCaseSensitive(config, "enclave"), "ports");
  if (!list) {
    pointer = "/aws/ports";
    list =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(config, "aws"), "ports");
  }
  if (!list)
    return KILN_OK;
  if (!cJSON_IsArray(list))
    return kiln_error_set(err, KILN_E_INVALID, "kiln.json %s: must be an array of ports", pointer);
  int n = cJSON_GetArraySize(list);
  struct runlocal_port *ports = calloc((size_t)n + 1, sizeof *ports);
  if (!ports)
    return kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  for (int i = 0; i < n; i++) {
    char where[64];
    snprintf(where, sizeof where, "%s/%d", pointer, i);
    kiln_err rc = port_entry(cJSON_GetArrayItem(list, i), where, &ports[i], err);
    for (int j = 0; !rc && j < i; j++)
      if (ports[j].public_port == ports[i].public_port)
        rc = kiln_error_set(err, KILN_E_INVALID,
                            "kiln.json %s: public port %u is listed twice (also %s/%d)", where,
                            ports[i].public_port, pointer, j);
    if (rc) {
      free(ports);
      return rc;
    }
  }
  *out = ports;
  *count = (size_t)n;
  return KILN_OK;
}

/* The allow or deny list of /enclave/egress as kiln-host directives. */
static kiln_err egress_lines(const cJSON *egress, const char *key, struct kiln_buf *out,
                             struct kiln_error *err)
{
  const cJSON *list = cJSON_GetObjectItemCaseSensitive(egress, key);
  if (!list)
    return KILN_OK;
  if (!cJSON_IsArray(list))
    return kiln_error_set(err, KILN_E_INVALID,
                          "kiln.json /enclave/egress/%s: must be an array of \"host:port\" "
                          "strings",
                          key);
  int i = 0;
  const cJSON *e;
  cJSON_ArrayForEach(e, list)
  {
    if (!cJSON_IsString(e) || !e->valuestring[0] || strpbrk(e->valuestring, " \t\r\n#"))
      return kiln_error_set(err, KILN_E_INVALID,
                            "kiln.json /enclave/egress/%s/%d: give one \"host:port\" entry "
                            "without spaces (e.g. \"api.example.com:443\")",
                            key, i);
    kiln_buf_printf(out, "%s %s\n", key, e->valuestring);
    i++;
  }
  return KILN_OK;
}

kiln_err runlocal_host_config(const cJSON *config, const struct runlocal_port *ports, size_t n,
                              struct kiln_buf *out, struct kiln_error *err)
{
  kiln_buf_printf(out, "# kiln run-local: the parent side of the enclave under qemu\n");
  kiln_buf_printf(out, "enclave-cid %u\n", RUNLOCAL_GUEST_CID);
  for (size_t i = 0; i < n; i++)
    kiln_buf_printf(out, "ingress tcp:127.0.0.1:%u vsock:%u:%u\n", ports[i].public_port,
                    RUNLOCAL_GUEST_CID, ports[i].app_port);
  kiln_buf_puts(out, "egress-listen vsock:any:7700\nlogs-listen vsock:any:7701\n");
  const cJSON *egress = cJSON_GetObjectItemCaseSensitive(
      cJSON_GetObjectItemCaseSensitive(config, "enclave"), "egress");
  if (egress && !cJSON_IsObject(egress))
    return kiln_error_set(err, KILN_E_INVALID,
                          "kiln.json /enclave/egress: must be an object {\"allow\": [...], "
                          "\"deny\": [...]}");
  kiln_err rc = egress_lines(egress, "allow", out, err);
  return rc ? rc : egress_lines(egress, "deny", out, err);
}

kiln_err runlocal_host_start(const char *kiln_host, const char *work_dir, const char *conf,
                             pid_t *pid, struct kiln_error *err)
{
  char *path = kiln_path_join(work_dir, "host.conf");
  if (!path)
    return kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  kiln_err rc = kiln_write_file_atomic(path, conf, strlen(conf), 0600, err);
  if (rc) {
    free(path);
    return rc;
  }
  pid_t child = fork();
  if (child < 0) {
    free(path);
    return kiln_error_set(err, KILN_E_IO, "cannot start %s: %s", kiln_host, strerror(errno));
  }
  if (child == 0) {
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    setpgid(0, 0); /* the terminal's Ctrl-C reaches kiln, which stops kiln-host itself */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    int null = open("/dev/null", O_RDONLY);
    if (null >= 0)
      dup2(null, STDIN_FILENO);
    dup2(STDERR_FILENO, STDOUT_FILENO);
    execl(kiln_host, kiln_host, "-c", path, (char *)NULL);
    _exit(127);
  }
  free(path);
  *pid = child;
  /* A port already in use or a directive it refuses ends kiln-host at once (its message is on
   * stderr already): fail before the VM boots rather than run without the parent side. */
  nanosleep(&(struct timespec){0, 300 * 1000 * 1000}, NULL);
  int status = 0;
  if (waitpid(child, &status, WNOHANG) == child) {
    *pid = 0;
    return kiln_error_set(
        err, KILN_E_INVALID, "kiln-host (%s) stopped at once with status %d: see its message above",
        kiln_host, WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
  }
  return KILN_OK;
}

void runlocal_host_stop(pid_t pid)
{
  if (pid <= 0)
    return;
  kill(pid, SIGTERM);
  for (int i = 0; i < 50; i++) {
    if (waitpid(pid, NULL, WNOHANG) == pid)
      return;
    nanosleep(&(struct timespec){0, 100 * 1000 * 1000}, NULL);
  }
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
}
