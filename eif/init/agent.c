/* kiln-init's handling of kiln-agent: started before the switch into /rootfs with three pipes
 * (the app's stdout, its stderr, init's own lines) it turns into log records, kept running
 * (restarted from the file descriptors init holds, at most 10 times a minute), and stopped last
 * so the final lines reach the parent. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "init.h"

#define AGENT_EXE "/kiln-agent"
#define AGENT_CONF "/kiln-agent.conf"
#define FIRST_HIGH_FD 10

static struct {
  int exe, conf; /* held for restarts after the switch into /rootfs */
  int out[2], err[2], log[2];
  pid_t pid;
  int restarts;
  time_t window;
} ag = {-1, -1, {-1, -1}, {-1, -1}, {-1, -1}, -1, 0, 0};

int agent_app_stdout(void)
{
  return ag.out[1];
}
int agent_app_stderr(void)
{
  return ag.err[1];
}
int agent_log_fd(void)
{
  return ag.log[1];
}

static int high_fd(int fd)
{
  if (fd < 0)
    return -1;
  int moved = fcntl(fd, F_DUPFD_CLOEXEC, FIRST_HIGH_FD);
  close(fd);
  return moved;
}

static int make_pipe(int p[2])
{
  if (pipe2(p, O_CLOEXEC) != 0)
    return -1;
  p[0] = high_fd(p[0]);
  p[1] = high_fd(p[1]);
  return p[0] >= 0 && p[1] >= 0 ? 0 : -1;
}

static pid_t spawn(void)
{
  pid_t pid = fork();
  if (pid != 0)
    return pid;
  sigset_t all;
  sigfillset(&all);
  sigprocmask(SIG_UNBLOCK, &all, NULL);
  setsid();
  int devnull = open("/dev/null", O_RDONLY);
  if (devnull >= 0)
    dup2(devnull, 0);
  if (dup2(ag.out[0], 3) < 0 || dup2(ag.err[0], 4) < 0 || dup2(ag.log[0], 5) < 0 ||
      dup2(ag.conf, 6) < 0)
    _exit(127);
  char *argv[] = {"kiln-agent", "-c",        "/proc/self/fd/6", "--log-fds",
                  "3,4,5",      "--console", "/dev/console",    NULL};
  char *envp[] = {NULL};
  fexecve(ag.exe, argv, envp);
  _exit(127);
}

int agent_start(void)
{
  if (access(AGENT_EXE, X_OK) != 0)
    return 0;
  ag.exe = high_fd(open(AGENT_EXE, O_RDONLY | O_CLOEXEC));
  ag.conf = high_fd(open(AGENT_CONF, O_RDONLY | O_CLOEXEC));
  if (ag.exe < 0 || ag.conf < 0 || make_pipe(ag.out) || make_pipe(ag.err) || make_pipe(ag.log)) {
    say("kiln-agent cannot be prepared: %s (no ports, egress or logs)", strerror(errno));
    return 0;
  }
  fcntl(ag.log[1], F_SETFL, O_NONBLOCK); /* init never waits for its own log lines */
  ag.pid = spawn();
  if (ag.pid < 0) {
    say("kiln-agent cannot be started: %s", strerror(errno));
    return 0;
  }
  ag.window = time(NULL);
  say("started kiln-agent as pid %d (ingress, egress proxy, logs, attestation)", (int)ag.pid);
  return 1;
}

void agent_forget_app_pipes(void)
{
  if (ag.out[1] >= 0)
    close(ag.out[1]);
  if (ag.err[1] >= 0)
    close(ag.err[1]);
  ag.out[1] = ag.err[1] = -1;
}

int agent_reaped(pid_t pid, int status)
{
  if (ag.pid < 0 || pid != ag.pid)
    return 0;
  ag.pid = -1;
  time_t now = time(NULL);
  if (now - ag.window > 60) {
    ag.window = now;
    ag.restarts = 0;
  }
  if (++ag.restarts > 10) {
    say("kiln-agent stopped %d times within a minute: not restarted (status %d)", ag.restarts,
        status);
    return 1;
  }
  say("kiln-agent ended (status %d); restarting it", status);
  struct timespec pause_time = {0, 300 * 1000 * 1000};
  nanosleep(&pause_time, NULL);
  ag.pid = spawn();
  return 1;
}

void agent_stop(void)
{
  if (ag.log[1] >= 0)
    close(ag.log[1]);
  ag.log[1] = -1;
  if (ag.pid < 0)
    return;
  kill(ag.pid, SIGTERM);
  for (int i = 0; i < 300; i++) {
    int status;
    if (waitpid(ag.pid, &status, WNOHANG) == ag.pid)
      return;
    struct timespec tick = {0, 10 * 1000 * 1000};
    nanosleep(&tick, NULL);
  }
  kill(ag.pid, SIGKILL);
  waitpid(ag.pid, NULL, 0);
}
