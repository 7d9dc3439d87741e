/* `kiln run-local` internals: booting an EIF in qemu (runlocal_vm.c) and the parent side
 * (kiln-host) configured from kiln.json (runlocal_host.c). */
#ifndef KILN_BUILDER_RUNLOCAL_H
#define KILN_BUILDER_RUNLOCAL_H

#include <stddef.h>
#include <sys/types.h>

#include <cjson/cJSON.h>

#include "util/buf.h"
#include "util/error.h"

/* The enclave's CID under qemu (Nitro hands out 16 and up; 3 is the parent, as on Nitro). */
#define RUNLOCAL_GUEST_CID 16u

/* What to boot and how. */
struct runlocal_vm_opts {
  const char *qemu;      /* resolved path of qemu-system-x86_64 */
  const char *eif;       /* the EIF to boot */
  const char *work_dir;  /* a private temporary directory (kernel, initrd, logs) */
  long long cpus;        /* -smp */
  long long memory_mib;  /* -m */
  long long timeout_s;   /* 0 = none */
  int vsock;             /* attach a vhost-vsock-device with RUNLOCAL_GUEST_CID */
  int verbose;           /* kernel messages and qemu's stderr too */
  int console_to_stderr; /* --json: stdout carries only the JSON document */
};

/* How the run ended. */
struct runlocal_result {
  int exit_status;       /* the app's (0..255, 128+signal), or -1 when unknown */
  long console_lines;    /* lines of console output streamed */
  double seconds;        /* from qemu's start to its end */
  int interrupted;       /* SIGINT/SIGTERM powered the VM off */
  int timed_out;         /* --timeout powered the VM off */
  const char *accel;     /* "kvm" or "tcg" (the one that ran the guest) */
  const char *machine;   /* qemu's -M value */
  struct kiln_buf fatal; /* kiln-init's FATAL message, or why the guest died */
};

/* Find qemu: path (--qemu) must be executable; NULL searches $PATH for qemu-system-x86_64. On
 * failure sets err with the package to install. *out is owned by the caller. */
kiln_err runlocal_find_qemu(const char *path, char **out, struct kiln_error *err);

/* 1 when /dev/vhost-vsock can be opened (the host kernel's vhost_vsock module is loaded). */
int runlocal_vhost_vsock_usable(void);

/* Unpack the EIF, boot it and stream the console until the VM is gone. The result is filled
 * even on failure (err then says what went wrong before or instead of kiln-init's last line). */
kiln_err runlocal_vm_run(const struct runlocal_vm_opts *o, struct runlocal_result *r,
                         struct kiln_error *err);
void runlocal_result_free(struct runlocal_result *r);

/* One ingress mapping of kiln.json /enclave/ports (or /aws/ports). */
struct runlocal_port {
  unsigned public_port, app_port;
};

/* Ports from the configuration (/enclave/ports, else /aws/ports): integers or "PUB:APP" strings,
 * 1..65535, never 9000 or 7700-7709, no duplicate public port. *out is owned by the caller. */
kiln_err runlocal_ports(const cJSON *config, struct runlocal_port **out, size_t *count,
                        struct kiln_error *err);

/* kiln-host's configuration for the guest: ingress 127.0.0.1:PUB -> vsock CID:APP for each port,
 * egress and logs listeners, the /enclave/egress allow/deny lists. */
kiln_err runlocal_host_config(const cJSON *config, struct kiln_buf *out, struct kiln_error *err);

/* Write conf into work_dir/host.conf and start kiln_host with it (its stdout, the app's log
 * records, goes to our stderr). *pid receives the process id. */
kiln_err runlocal_host_start(const char *kiln_host, const char *work_dir, const char *conf,
                             pid_t *pid, struct kiln_error *err);
/* Stop kiln-host (SIGTERM, then SIGKILL after a grace period) and reap it. */
void runlocal_host_stop(pid_t pid);

#endif
