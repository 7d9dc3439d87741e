/* kiln-init: PID 1 of a kiln enclave. Mounts the early filesystems, loads the kernel modules of
 * the bootstrap ramdisk, signals readiness to the parent over vsock, switches into /rootfs and
 * runs the application from /cmd and /env, reaping every child, then powers off. Every step
 * prints one "kiln-init:" line on the console so an enclave's boot can be followed. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <grp.h>
#include <linux/vm_sockets.h>

#include "init.h"

#ifndef MODULE_INIT_COMPRESSED_FILE
#define MODULE_INIT_COMPRESSED_FILE 4
#endif

#define PARENT_CID 3
#define HEARTBEAT_PORT 9000
#define HEARTBEAT_BYTE 0xB7
#define MAX_LINES 4096

void say(const char *fmt, ...)
{
  /* One write per line, so nothing the app prints can land between the prefix and the text. */
  static const char prefix[] = "kiln-init: ";
  char line[1040];
  size_t room = sizeof line - (sizeof prefix - 1) - 1; /* text plus its NUL, then '\n' replaces it */
  memcpy(line, prefix, sizeof prefix - 1);
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line + sizeof prefix - 1, room, fmt, ap);
  va_end(ap);
  if (n < 0)
    return;
  size_t length = sizeof prefix - 1 + ((size_t)n < room ? (size_t)n : room - 1);
  line[length++] = '\n';
  (void)!write(STDOUT_FILENO, line, length);
  if (agent_log_fd() >= 0) /* the same line as a log record (dropped if the pipe is full) */
    (void)!write(agent_log_fd(), line, length);
}

/* Stop the enclave: on Nitro a reboot ends it; under qemu -no-reboot the VM exits. */
static void power_off(void)
{
  agent_stop();
  say("powering off");
  sync();
  reboot(RB_AUTOBOOT);
  for (;;)
    pause();
}

static void fatal(const char *what) __attribute__((noreturn));
static void fatal(const char *what)
{
  say("FATAL: %s", what);
  power_off();
  _exit(1);
}

static int mount_fs(const char *source, const char *target, const char *type, unsigned long flags,
                    const char *data)
{
  mkdir(target, 0755);
  if (mount(source, target, type, flags, data) != 0 && errno != EBUSY) {
    say("mount %s on %s failed: %s", type, target, strerror(errno));
    return -1;
  }
  return 0;
}

/* Whole small file into a NUL-terminated buffer; NULL when missing. */
static char *read_text(const char *path, size_t *len)
{
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return NULL;
  size_t cap = 4096, n = 0;
  char *buf = malloc(cap);
  for (;;) {
    if (!buf)
      break;
    if (n + 1 >= cap) {
      char *grown = cap < (64u << 20) ? realloc(buf, cap * 2) : NULL;
      if (!grown) {
        free(buf);
        buf = NULL;
        break;
      }
      buf = grown;
      cap *= 2;
    }
    ssize_t r = read(fd, buf + n, cap - n - 1);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      break;
    n += (size_t)r;
  }
  close(fd);
  if (buf)
    buf[n] = '\0';
  if (len)
    *len = n;
  return buf;
}

/* Split text into lines (one entry per line, as nitro-cli writes /cmd and /env). */
static char **split_lines(char *text, int *count)
{
  char **lines = calloc(MAX_LINES + 1, sizeof *lines);
  int n = 0;
  for (char *p = text; lines && p && *p && n < MAX_LINES;) {
    char *nl = strchr(p, '\n');
    if (nl)
      *nl = '\0';
    lines[n++] = p;
    p = nl ? nl + 1 : NULL;
  }
  *count = n;
  return lines;
}

static int cmdline_has(const char *cmdline, const char *word)
{
  size_t n = strlen(word);
  for (const char *p = cmdline; p && *p;) {
    while (*p == ' ' || *p == '\n')
      p++;
    if (strncmp(p, word, n) == 0 && (p[n] == ' ' || p[n] == '\n' || p[n] == '\0'))
      return 1;
    p = strchr(p, ' ');
  }
  return 0;
}

/* "virtio_mmio.device=4K@0xd0000000:5 ..." -> "device=4K@0xd0000000:5" for module virtio_mmio. */
static void module_params(const char *cmdline, const char *module, char *out, size_t size)
{
  size_t len = strlen(module), used = 0;
  out[0] = '\0';
  for (const char *p = cmdline; p && *p;) {
    while (*p == ' ' || *p == '\n')
      p++;
    const char *end = p + strcspn(p, " \n");
    if (strncmp(p, module, len) == 0 && p[len] == '.' && end > p + len + 1) {
      size_t n = (size_t)(end - p - len - 1);
      if (used + n + 2 < size) {
        memcpy(out + used, p + len + 1, n);
        used += n;
        out[used++] = ' ';
        out[used] = '\0';
      }
    }
    p = *end ? end : NULL;
  }
}

/* virtio_mmio.ko.xz -> virtio_mmio (the kernel treats '-' and '_' alike; we use '_'). */
static void module_name(const char *file, char *out, size_t size)
{
  snprintf(out, size, "%s", file);
  char *dot = strstr(out, ".ko");
  if (dot)
    *dot = '\0';
  for (char *p = out; *p; p++)
    if (*p == '-')
      *p = '_';
}

static int is_compressed(int fd)
{
  unsigned char m[6] = {0};
  ssize_t n = pread(fd, m, sizeof m, 0);
  if (n >= 6 && memcmp(m,
                       "\xfd"
                       "7zXZ\0",
                       6) == 0)
    return 1;
  if (n >= 2 && m[0] == 0x1f && m[1] == 0x8b)
    return 1;
  return n >= 4 && memcmp(m, "\x28\xb5\x2f\xfd", 4) == 0;
}

static void load_module(const char *path, const char *file, const char *cmdline)
{
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) {
      say("module %s: not present, skipped (built into the kernel?)", file);
      return;
    }
    say("module %s: cannot open: %s", file, strerror(errno));
    fatal("a kernel module of the bootstrap ramdisk cannot be read");
  }
  char name[256], params[2048];
  module_name(file, name, sizeof name);
  module_params(cmdline, name, params, sizeof params);
  int flags = is_compressed(fd) ? MODULE_INIT_COMPRESSED_FILE : 0;
  if (syscall(SYS_finit_module, fd, params, flags) != 0 && errno != EEXIST) {
    say("module %s: loading failed: %s", file, strerror(errno));
    close(fd);
    fatal("a kernel module of the bootstrap ramdisk does not load into this kernel");
  }
  close(fd);
  say("module %s loaded%s%s", file, params[0] ? " with " : "", params);
}

static void load_modules(const char *cmdline)
{
  char *order = read_text("/modules.order", NULL);
  if (order) {
    int n = 0;
    char **lines = split_lines(order, &n);
    for (int i = 0; lines && i < n; i++) {
      if (!lines[i][0])
        continue;
      char path[512];
      snprintf(path, sizeof path, "/modules/%s", lines[i]);
      load_module(path, lines[i], cmdline);
    }
    free(lines);
    free(order);
  }
  /* nitro-cli's layout: nsm.ko at the root; skipped when absent (NSM built in). */
  if (access("/nsm.ko", F_OK) == 0)
    load_module("/nsm.ko", "nsm.ko", cmdline);
  unlink("/nsm.ko");
}

/* One console line naming the virtio devices the kernel found and their drivers (on Nitro: the
 * vsock and NSM devices announced on the command line). */
static void list_virtio(void)
{
  char line[512] = "";
  size_t used = 0;
  for (int i = 0; i < 16; i++) {
    char path[128], id[32] = "", driver[256] = "";
    snprintf(path, sizeof path, "/sys/bus/virtio/devices/virtio%d/device", i);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
      continue;
    ssize_t n = read(fd, id, sizeof id - 1);
    close(fd);
    id[n > 0 ? n : 0] = '\0';
    id[strcspn(id, "\n")] = '\0';
    snprintf(path, sizeof path, "/sys/bus/virtio/devices/virtio%d/driver", i);
    char target[256];
    ssize_t t = readlink(path, target, sizeof target - 1);
    if (t > 0) {
      target[t] = '\0';
      const char *slash = strrchr(target, '/');
      snprintf(driver, sizeof driver, "%s", slash ? slash + 1 : target);
    }
    int w = snprintf(line + used, sizeof line - used, " virtio%d(device %s, driver %s)", i, id,
                     driver[0] ? driver : "none");
    if (w > 0 && (size_t)w < sizeof line - used)
      used += (size_t)w;
  }
  say("virtio devices:%s", used ? line : " none");
}

static void heartbeat(void)
{
  int s = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0) {
    say("heartbeat: no vsock socket: %s", strerror(errno));
    fatal("cannot tell the parent instance that the enclave booted (vsock missing)");
  }
  struct sockaddr_vm addr;
  memset(&addr, 0, sizeof addr);
  addr.svm_family = AF_VSOCK;
  addr.svm_cid = PARENT_CID;
  addr.svm_port = HEARTBEAT_PORT;
  unsigned char b = HEARTBEAT_BYTE;
  if (connect(s, (struct sockaddr *)&addr, sizeof addr) != 0 || write(s, &b, 1) != 1 ||
      read(s, &b, 1) != 1 || b != HEARTBEAT_BYTE) {
    say("heartbeat to CID %d port %d failed: %s", PARENT_CID, HEARTBEAT_PORT, strerror(errno));
    close(s);
    fatal("the parent instance did not answer the boot heartbeat");
  }
  close(s);
  say("heartbeat acknowledged by the parent");
}

static void switch_root(void)
{
  if (mount("/rootfs", "/rootfs", NULL, MS_BIND | MS_REC, NULL) != 0 || chdir("/rootfs") != 0 ||
      mount(".", "/", NULL, MS_MOVE, NULL) != 0 || chroot(".") != 0 || chdir("/") != 0) {
    say("switch into /rootfs failed: %s", strerror(errno));
    fatal("the application ramdisk has no usable /rootfs");
  }
  say("switched root to /rootfs");
  mount_fs("dev", "/dev", "devtmpfs", MS_NOSUID | MS_NOEXEC, NULL);
  mount_fs("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
  mount_fs("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
  mount_fs("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755");
  mount_fs("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
  mount_fs("shm", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
  mount_fs("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666");
  mount_fs("cgroup2", "/sys/fs/cgroup", "cgroup2", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
  say("mounted /dev /proc /sys /run /tmp /dev/shm /dev/pts /sys/fs/cgroup");
}

static void loopback_up(void)
{
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "lo");
  if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) != 0 ||
      (ifr.ifr_flags |= IFF_UP, ioctl(s, SIOCSIFFLAGS, &ifr) != 0))
    say("bringing up lo failed: %s (continuing)", strerror(errno));
  else
    say("network interface lo is up");
  if (s >= 0)
    close(s);
}

/* argv[0] as an absolute path, resolved with PATH from the application's environment. */
static char *resolve(const char *cmd, char **envp)
{
  if (strchr(cmd, '/'))
    return access(cmd, X_OK) == 0 ? strdup(cmd) : NULL;
  const char *path = DEFAULT_PATH;
  for (char **e = envp; e && *e; e++)
    if (strncmp(*e, "PATH=", 5) == 0)
      path = *e + 5;
  char *copy = strdup(path), *save = NULL, *found = NULL;
  for (char *dir = strtok_r(copy, ":", &save); dir && !found; dir = strtok_r(NULL, ":", &save)) {
    char candidate[4096];
    snprintf(candidate, sizeof candidate, "%s/%s", *dir ? dir : ".", cmd);
    struct stat st;
    if (stat(candidate, &st) == 0 && S_ISREG(st.st_mode) && access(candidate, X_OK) == 0)
      found = strdup(candidate);
  }
  free(copy);
  return found;
}

struct run_config {
  char *workdir;
  int uid, gid;
};

/* /kiln-run (written by kiln's image stage): "workdir=/path" and "user=UID:GID" lines. */
static void read_run_config(struct run_config *rc)
{
  rc->workdir = NULL;
  rc->uid = rc->gid = 0;
  char *text = read_text("/kiln-run", NULL);
  if (!text)
    return;
  int n = 0;
  char **lines = split_lines(text, &n);
  for (int i = 0; lines && i < n; i++) {
    if (strncmp(lines[i], "workdir=", 8) == 0 && lines[i][8])
      rc->workdir = strdup(lines[i] + 8);
    else if (strncmp(lines[i], "user=", 5) == 0)
      sscanf(lines[i] + 5, "%d:%d", &rc->uid, &rc->gid);
  }
  free(lines);
  free(text);
}

int main(int argc, char **argv)
{
  (void)argc;
  (void)argv;
  sigset_t all;
  sigfillset(&all);
  sigprocmask(SIG_BLOCK, &all, NULL);
  mount_fs("dev", "/dev", "devtmpfs", MS_NOSUID | MS_NOEXEC, NULL);
  int console = open("/dev/console", O_RDWR | O_CLOEXEC);
  if (console >= 0) {
    dup2(console, 0);
    dup2(console, 1);
    dup2(console, 2);
    if (console > 2)
      close(console);
  }
  say("starting (pid %d)", (int)getpid());
  mount_fs("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
  char *cmdline = read_text("/proc/cmdline", NULL);
  if (!cmdline)
    cmdline = strdup("");
  mount_fs("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
  load_modules(cmdline);
  list_virtio();
  if (cmdline_has(cmdline, "kiln.heartbeat=off"))
    say("heartbeat skipped (kiln.heartbeat=off on the kernel command line)");
  else
    heartbeat();

  int ncmd = 0, nenv = 0;
  char *cmd_text = read_text("/cmd", NULL), *env_text = read_text("/env", NULL);
  char **cmd = cmd_text ? split_lines(cmd_text, &ncmd) : NULL;
  char **env = env_text ? split_lines(env_text, &nenv) : calloc(1, sizeof *env);
  if (!env_text)
    say("/env is missing: the application starts with an empty environment");
  if (!cmd || ncmd == 0 || !cmd[0][0])
    fatal("/cmd is missing or empty: the EIF has no command to run (rebuild it with kiln)");
  say("command: %s (%d argument%s), %d environment variable%s", cmd[0], ncmd - 1,
      ncmd == 2 ? "" : "s", nenv, nenv == 1 ? "" : "s");
  struct run_config run;
  read_run_config(&run);
  unlink("/cmd");
  unlink("/env");
  int with_agent = agent_start();
  switch_root();
  loopback_up();
  app_set_hostname();
  char **app_env = app_environment(env, nenv, run.uid, with_agent);

  char *exe = resolve(cmd[0], app_env);
  if (!exe) {
    say("\"%s\" is not an executable file in the image (PATH searched from /env)", cmd[0]);
    fatal("the application cannot be found");
  }
  pid_t app = fork();
  if (app < 0)
    fatal("fork failed");
  if (app == 0) {
    sigprocmask(SIG_UNBLOCK, &all, NULL);
    setsid();
    if (run.workdir && chdir(run.workdir) != 0)
      say("working directory %s: %s (staying in /)", run.workdir, strerror(errno));
    if (with_agent) { /* stdout and stderr become log records */
      dup2(agent_app_stdout(), STDOUT_FILENO);
      dup2(agent_app_stderr(), STDERR_FILENO);
    }
    if (app_become_user(run.uid, run.gid) != 0) {
      say("cannot switch to user %d:%d: %s", run.uid, run.gid, strerror(errno));
      _exit(126);
    }
    execve(exe, cmd, app_env);
    say("cannot run %s: %s", exe, strerror(errno));
    _exit(127);
  }
  say("started %s as pid %d (user %d:%d)", exe, (int)app, run.uid, run.gid);
  agent_forget_app_pipes();
  for (;;) {
    int status = 0;
    pid_t pid = wait(&status);
    if (pid < 0 && errno == EINTR)
      continue;
    if (pid < 0)
      break;
    if (agent_reaped(pid, status))
      continue;
    if (pid != app)
      continue; /* an orphan reparented to us: reaped */
    if (WIFEXITED(status))
      say("application exited with status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
      say("application was killed by signal %d", WTERMSIG(status));
    break;
  }
  power_off();
  return 0;
}
