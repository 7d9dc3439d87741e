/* Shared declarations of kiln-init's parts: console lines, the in-enclave agent it starts and
 * supervises, and the application's process setup. */
#ifndef KILN_INIT_H
#define KILN_INIT_H

#include <sys/types.h>

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* One "kiln-init: ..." line on the console (and, once the agent runs, as a log record). */
void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* --- agent.c: kiln-agent, the enclave side of the runtime --- */

/* Start /kiln-agent with /kiln-agent.conf when the bootstrap ramdisk has them (before the switch
 * into /rootfs: the agent keeps its files open so it can be restarted later). 1 when started. */
int agent_start(void);
/* The app's stdout/stderr (pipe write ends) when the agent runs, else -1. */
int agent_app_stdout(void);
int agent_app_stderr(void);
/* After forking the app: init keeps no write end of the app's pipes. */
void agent_forget_app_pipes(void);
/* Called with every reaped pid: restarts the agent when it was the agent (1), else 0. */
int agent_reaped(pid_t pid, int status);
/* Before power-off: close init's log pipe and give the agent up to 3 s to send what it holds. */
void agent_stop(void);
/* init's log pipe write end (non-blocking) or -1, for say(). */
int agent_log_fd(void);

/* --- app.c: the application's process as `docker run` starts it --- */

/* Complete the environment the way Docker does (PATH, HOME from /etc/passwd, HOSTNAME) and add
 * the egress proxy variables when the agent runs, unless the image or kiln.json set them.
 * Returns a new NULL-terminated array (the strings of env are reused). */
char **app_environment(char **env, int n, int uid, int with_proxy);
/* In the child, as root: supplementary groups from /etc/group, gid, uid, umask 0022, file
 * descriptor limits, stdin from /dev/null. 0, or -1 with errno. */
int app_become_user(int uid, int gid);
/* The hostname the app sees (set once, before the app starts). */
void app_set_hostname(void);

#endif
