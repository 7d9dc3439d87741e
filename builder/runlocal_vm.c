/* `kiln run-local`'s VM: the EIF taken apart (kernel, cmdline, the ramdisks back to back as Nitro
 * loads them), booted in qemu's microvm, the serial console streamed line by line and the app's
 * exit status read from kiln-init's last line. The VM is stopped with SIGTERM (qemu powers the
 * guest off and exits) on Ctrl-C, --timeout, a kernel panic, or when it lingers after power-off. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <kiln/eif.h>
#include <kiln/kiln.h>

#include "runlocal.h"
#include "util/fs.h"

#define STDERR_TAIL_MAX 8192
#define CONSOLE_LINE_MAX 65536   /* a longer run without a newline is passed on in pieces */
#define LINGER_AFTER_EXIT_S 10.0 /* kiln-init said the app exited; the VM should be gone soon */
#define KILL_GRACE_S 5.0         /* SIGTERM, then SIGKILL */
#define SILENT_HINT_S 60.0       /* no kiln-init line yet: say how to see the kernel's messages */

kiln_err runlocal_find_qemu(const char *path, char **out, struct kiln_error *err)
{
  static const char hint[] = "install it with `sudo apt-get install qemu-system-x86` (Debian, "
                             "Ubuntu) or give its path with --qemu PATH";
  if (path) {
    if (access(path, X_OK) != 0)
      return kiln_error_set(err, KILN_E_NOT_FOUND, "qemu: %s is not an executable file (%s); %s",
                            path, strerror(errno), hint);
    *out = strdup(path);
    return *out ? KILN_OK : kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  }
  const char *env = getenv("PATH");
  char *dirs = strdup(env && *env ? env : "/usr/local/bin:/usr/bin:/bin");
  if (!dirs)
    return kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  char *save = NULL;
  for (char *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
    char *candidate = kiln_path_join(*d ? d : ".", "qemu-system-x86_64");
    if (candidate && access(candidate, X_OK) == 0) {
      free(dirs);
      *out = candidate;
      return KILN_OK;
    }
    free(candidate);
  }
  free(dirs);
  return kiln_error_set(err, KILN_E_NOT_FOUND,
                        "qemu-system-x86_64 is not installed (not found in $PATH); %s", hint);
}

int runlocal_vhost_vsock_usable(void)
{
  int fd = open("/dev/vhost-vsock", O_RDWR | O_CLOEXEC);
  if (fd < 0)
    return 0;
  close(fd);
  return 1;
}

static int kvm_usable(void)
{
  int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (fd < 0)
    return 0;
  close(fd);
  return 1;
}

static double now_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* What qemu is given, taken from the EIF. */
struct boot_files {
  char *kernel, *initrd, *cmdline;
  int stock_virtio_mmio; /* the bootstrap ramdisk loads Debian's virtio_mmio module */
};

static void boot_files_free(struct boot_files *f)
{
  free(f->kernel);
  free(f->initrd);
  free(f->cmdline);
}

/* Append file src to the open fd out. */
static kiln_err append_file(int out, const char *src, struct kiln_error *err)
{
  int in = open(src, O_RDONLY | O_CLOEXEC);
  if (in < 0)
    return kiln_error_set(err, KILN_E_IO, "cannot read %s: %s", src, strerror(errno));
  char buf[1 << 16];
  ssize_t n;
  kiln_err rc = KILN_OK;
  while (!rc && (n = read(in, buf, sizeof buf)) != 0) {
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 || write(out, buf, (size_t)n) != n)
      rc = kiln_error_set(err, KILN_E_IO, "cannot write the initrd: %s", strerror(errno));
  }
  close(in);
  return rc;
}

/* Debian's stock virtio_mmio module cannot take devices from the command line (no
 * VIRTIO_MMIO_CMDLINE_DEVICES), so with it the devices must be described by ACPI. Only the
 * debian-cloud kernel source puts that module in the bootstrap ramdisk; the compiled kernel
 * (debian-build) has the driver built in with command-line discovery, like AWS's. */
static int loads_stock_virtio_mmio(const char *bootstrap)
{
  char *data = NULL;
  size_t len = 0;
  struct kiln_error e = KILN_ERROR_INIT;
  if (kiln_read_file(bootstrap, (size_t)256 << 20, &data, &len, &e)) {
    kiln_error_clear(&e);
    return 0;
  }
  static const char name[] = "modules/virtio_mmio.ko";
  int found = memmem(data, len, name, sizeof name - 1) != NULL;
  free(data);
  return found;
}

static kiln_err prepare_boot(const struct runlocal_vm_opts *o, struct boot_files *f,
                             struct kiln_error *err)
{
  memset(f, 0, sizeof *f);
  char *dir = kiln_path_join(o->work_dir, "eif");
  f->initrd = kiln_path_join(o->work_dir, "initrd");
  if (!dir || !f->initrd) {
    free(dir);
    return kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  }
  struct kiln_eif_build b;
  char **strings = NULL;
  kiln_err rc = kiln_mkdir_p(dir, 0700, err);
  rc = rc ? rc : kiln_eif_unpack(o->eif, dir, &b, &strings, err);
  free(dir);
  if (rc)
    return rc;
  int out = open(f->initrd, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (out < 0)
    rc = kiln_error_set(err, KILN_E_IO, "cannot write %s: %s", f->initrd, strerror(errno));
  for (size_t i = 0; !rc && i < b.nramdisks; i++) /* back to back, as Nitro places them */
    rc = append_file(out, b.ramdisks[i], err);
  if (out >= 0 && close(out) != 0 && !rc)
    rc = kiln_error_set(err, KILN_E_IO, "cannot write %s", f->initrd);
  if (!rc) {
    f->stock_virtio_mmio = loads_stock_virtio_mmio(b.ramdisks[0]);
    f->kernel = strdup(b.kernel);
    f->cmdline = strdup(b.cmdline);
    if (!f->kernel || !f->cmdline)
      rc = kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  }
  for (size_t i = 0; i < KILN_EIF_MAX_SECTIONS + 4; i++)
    free(strings[i]);
  free(strings);
  return rc;
}

/* State of one qemu run while its console is read. */
struct boot {
  const struct runlocal_vm_opts *o;
  struct runlocal_result *r;
  FILE *console; /* where console lines go */
  pid_t pid;
  int kvm;
  struct kiln_buf line, stderr_tail;
  int saw_init;       /* kiln-init has spoken: the kernel booted */
  int kvm_failed;     /* qemu reported a KVM failure before the kernel booted */
  double result_at;   /* when kiln-init's last line arrived (0: not yet) */
  double stopping_at; /* when SIGTERM was sent (0: not yet) */
  int killed;         /* SIGKILL sent */
  int hinted;         /* the "still booting" hint was given */
};

static void stop_vm(struct boot *s)
{
  if (s->stopping_at == 0) {
    s->stopping_at = now_s();
    kill(s->pid, SIGTERM);
  }
}

static void console_line(struct boot *s, char *line)
{
  size_t n = strlen(line);
  while (n && (line[n - 1] == '\r' || line[n - 1] == '\n'))
    line[--n] = '\0';
  fprintf(s->console, "%s\n", line);
  fflush(s->console);
  s->r->console_lines++;
  static const char init[] = "kiln-init: ";
  const char *panic = strstr(line, "Kernel panic - not syncing");
  if (panic && !s->r->fatal.len) {
    kiln_buf_printf(&s->r->fatal, "the enclave kernel panicked: %s", panic);
    stop_vm(s);
  }
  if (strncmp(line, init, sizeof init - 1) != 0)
    return;
  s->saw_init = 1;
  const char *msg = line + sizeof init - 1;
  int v = 0;
  if (sscanf(msg, "application exited with status %d", &v) == 1)
    s->r->exit_status = v;
  else if (sscanf(msg, "application was killed by signal %d", &v) == 1)
    s->r->exit_status = 128 + v;
  else if (strncmp(msg, "FATAL: ", 7) == 0) {
    s->r->exit_status = 1;
    kiln_buf_reset(&s->r->fatal);
    kiln_buf_printf(&s->r->fatal, "kiln-init: %s", msg + 7);
  } else
    return;
  s->result_at = now_s();
}

/* Read what is there; 0 at end of file. Complete lines of the console are handled at once. */
static int read_console(struct boot *s, int fd)
{
  char buf[4096];
  ssize_t n = read(fd, buf, sizeof buf);
  if (n < 0)
    return errno == EINTR || errno == EAGAIN ? 1 : 0;
  if (n == 0) {
    if (s->line.len)
      console_line(s, s->line.data);
    kiln_buf_reset(&s->line);
    return 0;
  }
  for (ssize_t i = 0; i < n; i++) {
    if (buf[i] != '\n' && s->line.len < CONSOLE_LINE_MAX) {
      kiln_buf_putc(&s->line, buf[i]);
      continue;
    }
    if (buf[i] != '\n')
      i--; /* this byte starts the next piece */
    console_line(s, s->line.len ? s->line.data : (char[]){""});
    kiln_buf_reset(&s->line);
  }
  return 1;
}

static int read_stderr(struct boot *s, int fd)
{
  char buf[4096];
  ssize_t n = read(fd, buf, sizeof buf);
  if (n < 0)
    return errno == EINTR || errno == EAGAIN ? 1 : 0;
  if (n == 0)
    return 0;
  if (s->o->verbose)
    (void)!write(STDERR_FILENO, buf, (size_t)n);
  kiln_buf_append(&s->stderr_tail, buf, (size_t)n);
  if (s->kvm && !s->saw_init && strstr(kiln_buf_str(&s->stderr_tail), "KVM internal error")) {
    s->kvm_failed = 1;
    stop_vm(s);
  }
  if (s->stderr_tail.len > STDERR_TAIL_MAX) {
    size_t drop = s->stderr_tail.len - STDERR_TAIL_MAX / 2;
    memmove(s->stderr_tail.data, s->stderr_tail.data + drop, s->stderr_tail.len - drop + 1);
    s->stderr_tail.len -= drop;
  }
  return 1;
}

/* The checks made between reads: Ctrl-C, --timeout, a VM lingering after power-off, SIGKILL. */
static void check_deadlines(struct boot *s, double started)
{
  double t = now_s();
  if (kiln_cancelled() && !s->stopping_at) {
    s->r->interrupted = 1;
    stop_vm(s);
  }
  if (s->o->timeout_s > 0 && t - started > (double)s->o->timeout_s && !s->stopping_at) {
    s->r->timed_out = 1;
    stop_vm(s);
  }
  if (!s->saw_init && !s->hinted && !s->stopping_at && t - started > SILENT_HINT_S) {
    s->hinted = 1;
    fprintf(stderr,
            "kiln run-local: no word from kiln-init after %.0f s; the kernel may be stuck (run "
            "with -v to see its messages, --timeout to give up)\n",
            SILENT_HINT_S);
  }
  if (s->result_at && t - s->result_at > LINGER_AFTER_EXIT_S)
    stop_vm(s);
  if (s->stopping_at && !s->killed && t - s->stopping_at > KILL_GRACE_S) {
    kill(s->pid, SIGKILL);
    s->killed = 1;
  }
}

/* microvm is the Nitro-like machine (Firecracker-style, no PCI, no firmware): without ACPI
 * (acpi=off) qemu announces its virtio-mmio devices only on the kernel command line, exactly as
 * the Nitro hypervisor does, and the compiled enclave kernel (debian-build) finds them there. The
 * stock Debian module of debian-cloud cannot read that announcement, so when a vsock device must
 * be found with it, ACPI stays on and describes the device instead. Without devices both kernels
 * boot the same way. (q35 is not an option for vsock: the EIF's cmdline says pci=off.) Measured
 * with qemu 7.2: under TCG the Debian kernel stalls at TSC calibration on microvm with ACPI (the
 * timer is routed through the IO-APIC), so that combination relies on KVM's clock; hosts with
 * /dev/vhost-vsock normally have KVM. Without ACPI it boots under TCG and KVM alike. */
static const char *machine_for(const struct runlocal_vm_opts *o, const struct boot_files *f)
{
  return o->vsock && f->stock_virtio_mmio ? "microvm" : "microvm,acpi=off";
}

static kiln_err build_argv(const struct runlocal_vm_opts *o, const struct boot_files *f, int kvm,
                           struct kiln_buf *append, char **argv, char *smp, char *mem, char *dev)
{
  /* reboot=t: kiln-init's final reboot becomes a triple fault, which -no-reboot turns into
   * qemu's exit (microvm resets instead of exiting on the EIF's reboot=k). quiet: the console is
   * the app's and kiln-init's lines (kernel errors still show); -v keeps the kernel's messages.
   * Under vhost-vsock this machine is CID 2 (VMADDR_CID_HOST), not Nitro's parent CID 3, so the
   * in-enclave agent is told where kiln-host listens with kiln.parent_cid. */
  if (kiln_buf_printf(append, "%s console=ttyS0 kiln.heartbeat=off reboot=t%s%s", f->cmdline,
                      o->vsock ? " kiln.parent_cid=2" : "", o->verbose ? "" : " quiet"))
    return KILN_E_NOMEM;
  snprintf(smp, 32, "%lld", o->cpus);
  snprintf(mem, 32, "%lldM", o->memory_mib);
  snprintf(dev, 64, "vhost-vsock-device,guest-cid=%u", RUNLOCAL_GUEST_CID);
  int n = 0;
  argv[n++] = (char *)o->qemu;
  argv[n++] = "-M";
  argv[n++] = (char *)machine_for(o, f);
  if (kvm)
    argv[n++] = "-enable-kvm";
  argv[n++] = "-smp";
  argv[n++] = smp;
  argv[n++] = "-m";
  argv[n++] = mem;
  argv[n++] = "-nographic";
  argv[n++] = "-no-reboot";
  argv[n++] = "-kernel";
  argv[n++] = f->kernel;
  argv[n++] = "-initrd";
  argv[n++] = f->initrd;
  argv[n++] = "-append";
  argv[n++] = append->data;
  if (o->vsock) {
    argv[n++] = "-device";
    argv[n++] = dev;
  }
  argv[n] = NULL;
  return KILN_OK;
}

/* Start qemu in its own process group (a terminal's Ctrl-C reaches kiln, which powers the VM off;
 * qemu never gets the terminal), stdin /dev/null, console and stderr on pipes. */
static kiln_err spawn_qemu(char **argv, pid_t *pid, int *out_fd, int *err_fd,
                           struct kiln_error *err)
{
  int out[2], er[2];
  if (pipe2(out, O_CLOEXEC) != 0)
    return kiln_error_set(err, KILN_E_IO, "pipe: %s", strerror(errno));
  if (pipe2(er, O_CLOEXEC) != 0) {
    close(out[0]);
    close(out[1]);
    return kiln_error_set(err, KILN_E_IO, "pipe: %s", strerror(errno));
  }
  pid_t child = fork();
  if (child == 0) {
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGTERM); /* even if kiln is killed outright, no VM is left behind */
    int null = open("/dev/null", O_RDONLY);
    if (null < 0 || dup2(null, STDIN_FILENO) < 0 || dup2(out[1], STDOUT_FILENO) < 0 ||
        dup2(er[1], STDERR_FILENO) < 0)
      _exit(127);
    execv(argv[0], argv);
    dprintf(STDERR_FILENO, "cannot run %s: %s\n", argv[0], strerror(errno));
    _exit(127);
  }
  close(out[1]);
  close(er[1]);
  if (child < 0) {
    close(out[0]);
    close(er[0]);
    return kiln_error_set(err, KILN_E_IO, "cannot start qemu: %s", strerror(errno));
  }
  *pid = child;
  *out_fd = out[0];
  *err_fd = er[0];
  return KILN_OK;
}

/* Why qemu ended without kiln-init's last line, with the end of its stderr. */
static kiln_err explain_exit(struct boot *s, int status, struct kiln_error *err)
{
  char how[64];
  if (WIFEXITED(status))
    snprintf(how, sizeof how, "exited with status %d", WEXITSTATUS(status));
  else
    snprintf(how, sizeof how, "was killed by signal %d",
             WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  const char *tail = kiln_buf_str(&s->stderr_tail);
  return kiln_error_set(err, KILN_E_REMOTE,
                        "qemu %s before kiln-init reported the application's exit%s%s%s", how,
                        *tail ? "; qemu said:\n" : " (see the console above)", tail,
                        *tail && tail[strlen(tail) - 1] == '\n' ? "" : (*tail ? "\n" : ""));
}

/* One qemu run, start to exit. *retry_tcg: KVM failed before the kernel booted. */
static kiln_err boot_once(const struct runlocal_vm_opts *o, const struct boot_files *f, int kvm,
                          struct runlocal_result *r, int *retry_tcg, struct kiln_error *err)
{
  struct boot s = {.o = o, .r = r, .kvm = kvm};
  s.console = o->console_to_stderr ? stderr : stdout;
  struct kiln_buf append = KILN_BUF_INIT;
  char *argv[24], smp[32], mem[32], dev[64];
  int out_fd = -1, err_fd = -1, status = 0;
  kiln_err rc = build_argv(o, f, kvm, &append, argv, smp, mem, dev);
  r->accel = kvm ? "kvm" : "tcg";
  r->machine = argv[2];
  double started = now_s();
  rc = rc ? kiln_error_set(err, rc, "out of memory")
          : spawn_qemu(argv, &s.pid, &out_fd, &err_fd, err);
  while (!rc && (out_fd >= 0 || err_fd >= 0)) {
    struct pollfd p[2] = {{.fd = out_fd, .events = POLLIN}, {.fd = err_fd, .events = POLLIN}};
    if (poll(p, 2, 200) > 0) {
      if (p[0].revents && !read_console(&s, out_fd)) {
        close(out_fd);
        out_fd = -1;
      }
      if (p[1].revents && !read_stderr(&s, err_fd)) {
        close(err_fd);
        err_fd = -1;
      }
    }
    check_deadlines(&s, started);
  }
  if (!rc) {
    while (waitpid(s.pid, &status, 0) < 0 && errno == EINTR)
      check_deadlines(&s, started);
    r->seconds = now_s() - started;
    *retry_tcg = kvm && !s.saw_init && !r->interrupted && !r->timed_out &&
                 (s.kvm_failed || !WIFEXITED(status) || WEXITSTATUS(status) != 0);
    if (!*retry_tcg && r->exit_status < 0 && !r->interrupted && !r->timed_out && !r->fatal.len)
      rc = explain_exit(&s, status, err);
  }
  kiln_buf_free(&append);
  kiln_buf_free(&s.line);
  kiln_buf_free(&s.stderr_tail);
  return rc;
}

kiln_err runlocal_vm_run(const struct runlocal_vm_opts *o, struct runlocal_result *r,
                         struct kiln_error *err)
{
  memset(r, 0, sizeof *r);
  r->exit_status = -1;
  struct boot_files f;
  kiln_err rc = prepare_boot(o, &f, err);
  int kvm = kvm_usable(), retry = 0;
  if (!rc)
    rc = boot_once(o, &f, kvm, r, &retry, err);
  if (!rc && retry) {
    fprintf(stderr, "kiln run-local: KVM (/dev/kvm) could not run the enclave on this machine "
                    "(nested virtualization?); booting again with qemu's emulator (TCG), which "
                    "is slower\n");
    struct runlocal_result again;
    memset(&again, 0, sizeof again);
    again.exit_status = -1;
    again.console_lines = r->console_lines;
    runlocal_result_free(r);
    *r = again;
    rc = boot_once(o, &f, 0, r, &retry, err);
  }
  boot_files_free(&f);
  return rc;
}

void runlocal_result_free(struct runlocal_result *r)
{
  kiln_buf_free(&r->fatal);
}
