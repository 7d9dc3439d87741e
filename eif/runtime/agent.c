/* kiln-agent: the in-enclave side of kiln's runtime, started by kiln-init before the app. It
 * serves ingress (vsock -> the app on 127.0.0.1, waiting while the app starts), the egress proxy
 * for the app (127.0.0.1:3128 -> the parent over vsock, checked against the measured egress
 * list), the app's log records (pipes from kiln-init -> the parent on vsock 7701, a bounded ring
 * while nobody listens), and the attestation endpoint on vsock 7702. Configuration: the measured
 * /kiln-agent.conf of the bootstrap ramdisk (see rt_config.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rt_attest_server.h"
#include "rt_config.h"
#include "rt_console.h"
#include "rt_ingress.h"
#include "rt_logs.h"
#include "rt_loop.h"
#include "rt_pair.h"
#include "rt_proxy.h"

#define PARENT_CID 3
#define LOG_RING_BYTES (1u << 20)
#define CONSOLE_QUEUE_BYTES (64u << 10) /* about 6 s of a 115200-baud serial console */

static volatile sig_atomic_t stop_requested;
static struct rt_log_sender *logs;
static int console_fd = -1;        /* --console, until the loop's console queue owns it */
static struct rt_console *console; /* whole lines, written as the console takes them */

static void on_signal(int sig)
{
  (void)sig;
  stop_requested = 1;
}

/* The agent's own lines: on the console and, as records of source "agent", to the parent. */
static void agent_log(void *arg, const char *line)
{
  (void)arg;
  rt_console_line(console, "kiln-agent: ", line, strlen(line));
  if (logs)
    rt_log_sender_record(logs, "agent", line, strlen(line));
}

static void usage(FILE *out)
{
  fprintf(
      out,
      "Usage: kiln-agent [-c FILE] [-e DIRECTIVE]... [--log-fds OUT,ERR,INIT] [--console PATH]\n"
      "                  [--nsm-device PATH] [--parent-cid N]\n"
      "The enclave side of kiln's runtime (started by kiln-init). Directives as in\n"
      "/kiln-agent.conf: ingress, allow, deny, egress-listen, egress-parent, logs-parent,\n"
      "attestation-listen, ingress-wait. The kernel command line's kiln.parent_cid=N\n"
      "(tests only) replaces the parent CID 3.\n");
}

/* kiln.parent_cid=N on the kernel command line, or 0. */
static uint32_t cmdline_parent_cid(void)
{
  char buf[4096];
  int fd = open("/proc/cmdline", O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return 0;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0)
    return 0;
  buf[n] = '\0';
  const char *p = strstr(buf, "kiln.parent_cid=");
  return p ? (uint32_t)strtoul(p + 16, NULL, 10) : 0;
}

struct agent_args {
  const char *log_fds, *nsm_device;
  uint32_t parent_cid;
};

static int parse_args(int argc, char **argv, struct rt_config *cfg, struct agent_args *a)
{
  char why[600];
  for (int i = 1; i < argc; i++) {
    const char *opt = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(opt, "-h") == 0 || strcmp(opt, "--help") == 0) {
      usage(stdout);
      exit(0);
    }
    if (!val) {
      fprintf(stderr, "kiln-agent: %s needs a value\n", opt);
      return -1;
    }
    i++;
    if (strcmp(opt, "-c") == 0 && rt_config_file(cfg, val, why, sizeof why) != 0) {
      fprintf(stderr, "kiln-agent: %s\n", why);
      return -1;
    } else if (strcmp(opt, "-e") == 0 && rt_config_line(cfg, val, why, sizeof why) != 0) {
      fprintf(stderr, "kiln-agent: -e: %s\n", why);
      return -1;
    } else if (strcmp(opt, "--log-fds") == 0) {
      a->log_fds = val;
    } else if (strcmp(opt, "--console") == 0) {
      console_fd = open(val, O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    } else if (strcmp(opt, "--nsm-device") == 0) {
      a->nsm_device = val;
    } else if (strcmp(opt, "--parent-cid") == 0) {
      a->parent_cid = (uint32_t)strtoul(val, NULL, 10);
    } else if (strcmp(opt, "-c") != 0 && strcmp(opt, "-e") != 0) {
      fprintf(stderr, "kiln-agent: unknown option %s\n", opt);
      usage(stderr);
      return -1;
    }
  }
  return 0;
}

static void defaults(struct rt_config *cfg)
{
  char why[200];
  if (!cfg->has_egress_listen)
    rt_config_line(cfg, "egress-listen tcp:127.0.0.1:3128", why, sizeof why);
  if (!cfg->has_egress_parent)
    rt_config_line(cfg, "egress-parent vsock:3:7700", why, sizeof why);
  if (!cfg->has_logs_parent)
    rt_config_line(cfg, "logs-parent vsock:3:7701", why, sizeof why);
  if (!cfg->has_attestation_listen)
    rt_config_line(cfg, "attestation-listen vsock:any:7702", why, sizeof why);
}

static void start_logs(struct rt_loop *loop, struct rt_config *cfg, const char *log_fds)
{
  if (console_fd >= 0) {
    console = rt_console_start(loop, console_fd, CONSOLE_QUEUE_BYTES);
    if (console)
      console_fd = -1; /* the queue closes it */
  }
  logs = rt_log_sender_start(loop, &cfg->logs_parent, LOG_RING_BYTES, console);
  if (!logs || !log_fds)
    return;
  static const char *const sources[] = {"stdout", "stderr", "init"};
  char copy[64];
  snprintf(copy, sizeof copy, "%s", log_fds);
  char *save = NULL;
  int i = 0;
  for (char *t = strtok_r(copy, ",", &save); t && i < 3; t = strtok_r(NULL, ",", &save), i++)
    if (rt_log_sender_add_source(loop, logs, atoi(t), sources[i], i < 2) != 0)
      rt_logf(agent_log, NULL, "log source %s (fd %s) cannot be read: %s", sources[i], t,
              strerror(errno));
}

static int start_services(struct rt_loop *loop, struct rt_config *cfg, const char *nsm)
{
  char text[80];
  if (rt_ingress_start_config(loop, cfg, RT_PP_EXPECT, agent_log, NULL) != 0)
    return -1;
  int efd = rt_endpoint_listen(&cfg->egress_listen, 1024);
  struct rt_proxy_config pc = {.mode = RT_PROXY_VIA_PARENT,
                               .policy = &cfg->egress,
                               .parent = cfg->egress_parent,
                               .log = agent_log};
  rt_endpoint_format(&cfg->egress_listen, text, sizeof text);
  if (efd < 0 || !rt_proxy_start(loop, efd, &pc)) {
    rt_logf(agent_log, NULL, "egress: cannot listen on %s: %s", text, strerror(errno));
    return -1;
  }
  rt_logf(agent_log, NULL, "egress proxy on %s: %zu allow and %zu deny entries", text,
          cfg->egress.nallow, cfg->egress.ndeny);
  int afd = rt_endpoint_listen(&cfg->attestation_listen, 64);
  rt_endpoint_format(&cfg->attestation_listen, text, sizeof text);
  if (afd < 0 || !rt_attest_server_start(loop, afd, nsm, agent_log, NULL)) {
    rt_logf(agent_log, NULL, "attestation: cannot listen on %s: %s", text, strerror(errno));
    return -1;
  }
  rt_logf(agent_log, NULL, "attestation endpoint on %s", text);
  return 0;
}

int main(int argc, char **argv)
{
  struct rt_config cfg;
  struct agent_args a = {.nsm_device = "/dev/nsm"};
  rt_config_init(&cfg);
  if (parse_args(argc, argv, &cfg, &a) != 0) {
    rt_config_free(&cfg);
    return 2;
  }
  defaults(&cfg);
  uint32_t cid = a.parent_cid ? a.parent_cid : cmdline_parent_cid();
  if (cid && cid != PARENT_CID)
    rt_config_set_parent_cid(&cfg, cid);
  signal(SIGPIPE, SIG_IGN);
  struct sigaction sa = {.sa_handler = on_signal};
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  struct rt_loop *loop = rt_loop_new();
  int rc = -1;
  if (loop) {
    start_logs(loop, &cfg, a.log_fds);
    if (cid && cid != PARENT_CID)
      rt_logf(agent_log, NULL, "parent CID %u (kiln.parent_cid: tests only)", cid);
    if (start_services(loop, &cfg, a.nsm_device) == 0 && rt_pair_watch_idle(loop) == 0)
      rc = rt_loop_run(loop, &stop_requested);
  }
  if (!loop) {
    rt_config_free(&cfg);
    return 1;
  }
  if (logs) /* the last lines (the app's exit status) still go to the parent */
    rt_loop_drain(loop, 2000, rt_log_sender_idle, logs);
  rt_pair_close_all(loop);
  logs = NULL;
  console = NULL;
  rt_loop_free(loop);
  rt_config_free(&cfg);
  if (console_fd >= 0)
    close(console_fd);
  return rc ? 1 : 0;
}
