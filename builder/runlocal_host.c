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

#include <kiln/enclave_runtime.h>

#include "runlocal.h"
#include "util/fs.h"

/* The ports as kiln's enclave runtime reads them (the same checks and messages as the build and
 * the deploy). */
kiln_err runlocal_ports(const cJSON *config, struct runlocal_port **out, size_t *count,
                        struct kiln_error *err)
{
  struct kiln_enclave_runtime rt;
  *out = NULL;
  *count = 0;
  kiln_err rc = kiln_enclave_runtime_load(config, &rt, err);
  if (rc)
    return rc;
  struct runlocal_port *ports = calloc(rt.nports + 1, sizeof *ports);
  if (!ports)
    rc = kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  for (size_t i = 0; ports && i < rt.nports; i++)
    ports[i] = (struct runlocal_port){rt.ports[i].pub, rt.ports[i].app};
  if (!rc) {
    *out = ports;
    *count = rt.nports;
  }
  kiln_enclave_runtime_free(&rt);
  return rc;
}

kiln_err runlocal_host_config(const cJSON *config, struct kiln_buf *out, struct kiln_error *err)
{
  struct kiln_enclave_runtime rt;
  kiln_err rc = kiln_enclave_runtime_load(config, &rt, err);
  if (rc)
    return rc;
  char *text = kiln_enclave_host_conf(&rt, RUNLOCAL_GUEST_CID, "127.0.0.1", NULL);
  kiln_enclave_runtime_free(&rt);
  if (!text)
    return kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  kiln_buf_puts(out, "# kiln run-local: the parent side of the enclave under qemu\n");
  kiln_buf_puts(out, text);
  free(text);
  return KILN_OK;
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
