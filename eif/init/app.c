/* The application's process as `docker run` starts it: the environment Docker adds (PATH when the
 * image has none, HOME of the user from /etc/passwd or "/", HOSTNAME), the egress proxy variables,
 * supplementary groups from /etc/group, umask 0022, a high file-descriptor limit and stdin from
 * /dev/null. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "init.h"

#define MAX_GROUPS 64
#define NOFILE_LIMIT 1048576
#define PROXY_URL "http://127.0.0.1:3128"

static int has_var(char **env, int n, const char *name)
{
  size_t len = strlen(name);
  for (int i = 0; i < n; i++)
    if (strncmp(env[i], name, len) == 0 && env[i][len] == '=')
      return 1;
  return 0;
}

/* Field `index` (0-based) of a ':'-separated line, copied into out. */
static void field(const char *line, int index, char *out, size_t size)
{
  const char *p = line;
  for (int i = 0; i < index && p; i++) {
    p = strchr(p, ':');
    if (p)
      p++;
  }
  size_t n = p ? strcspn(p, ":\n") : 0;
  if (n >= size)
    n = size - 1;
  memcpy(out, p ? p : "", n);
  out[n] = '\0';
}

/* The /etc/passwd line of uid: name and home directory; 0 when found. */
static int passwd_entry(int uid, char *name, size_t nsize, char *home, size_t hsize)
{
  FILE *f = fopen("/etc/passwd", "re");
  if (!f)
    return -1;
  char line[1024], id[32];
  int found = -1;
  while (found && fgets(line, sizeof line, f)) {
    field(line, 2, id, sizeof id);
    if (id[0] && strspn(id, "0123456789") == strlen(id) && atoi(id) == uid) {
      field(line, 0, name, nsize);
      field(line, 5, home, hsize);
      found = 0;
    }
  }
  fclose(f);
  return found;
}

static char *var(const char *name, const char *value)
{
  size_t n = strlen(name) + strlen(value) + 2;
  char *s = malloc(n);
  if (s)
    snprintf(s, n, "%s=%s", name, value);
  return s;
}

char **app_environment(char **env, int n, int uid, int with_proxy)
{
  char **out = calloc((size_t)n + 16, sizeof *out);
  if (!out)
    return env;
  int k = 0;
  if (!has_var(env, n, "PATH"))
    out[k++] = var("PATH", DEFAULT_PATH);
  if (!has_var(env, n, "HOSTNAME")) {
    struct utsname u;
    out[k++] = var("HOSTNAME", uname(&u) == 0 ? u.nodename : "localhost");
  }
  for (int i = 0; i < n; i++)
    out[k++] = env[i];
  if (!has_var(env, n, "HOME")) {
    char name[256], home[512];
    out[k++] =
        var("HOME",
            passwd_entry(uid, name, sizeof name, home, sizeof home) == 0 && home[0] ? home : "/");
  }
  if (with_proxy) {
    static const char *const proxies[] = {"HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"};
    for (size_t i = 0; i < 4; i++)
      if (!has_var(env, n, proxies[i]))
        out[k++] = var(proxies[i], PROXY_URL);
    if (!has_var(env, n, "NO_PROXY"))
      out[k++] = var("NO_PROXY", "localhost,127.0.0.1");
    if (!has_var(env, n, "no_proxy"))
      out[k++] = var("no_proxy", "localhost,127.0.0.1");
  }
  out[k] = NULL;
  return out;
}

/* Groups listing the user's name as a member (as Docker reads /etc/group), plus gid. */
static int member_groups(const char *user, int gid, gid_t *groups)
{
  int n = 0;
  groups[n++] = (gid_t)gid;
  FILE *f = user[0] ? fopen("/etc/group", "re") : NULL;
  if (!f)
    return n;
  char line[4096], members[3500], id[32];
  while (n < MAX_GROUPS && fgets(line, sizeof line, f)) {
    field(line, 2, id, sizeof id);
    field(line, 3, members, sizeof members);
    if (!id[0] || strspn(id, "0123456789") != strlen(id))
      continue;
    char *save = NULL;
    for (char *m = strtok_r(members, ",", &save); m; m = strtok_r(NULL, ",", &save))
      if (strcmp(m, user) == 0 && atoi(id) != gid) {
        groups[n++] = (gid_t)atoi(id);
        break;
      }
  }
  fclose(f);
  return n;
}

int app_become_user(int uid, int gid)
{
  umask(0022);
  struct rlimit nofile = {NOFILE_LIMIT, NOFILE_LIMIT};
  setrlimit(RLIMIT_NOFILE, &nofile);
  int devnull = open("/dev/null", O_RDONLY);
  if (devnull >= 0 && devnull != 0) {
    dup2(devnull, 0);
    close(devnull);
  }
  char name[256] = "", home[512];
  if (passwd_entry(uid, name, sizeof name, home, sizeof home) != 0)
    name[0] = '\0';
  gid_t groups[MAX_GROUPS];
  int n = member_groups(name, gid, groups);
  if (setgroups((size_t)n, groups) != 0 || setgid((gid_t)gid) != 0 || setuid((uid_t)uid) != 0)
    return -1;
  return 0;
}

void app_set_hostname(void)
{
  struct utsname u;
  if (uname(&u) == 0 && strcmp(u.nodename, "(none)") != 0 && u.nodename[0])
    return;
  /* An enclave has no network name; "localhost" resolves with any image's /etc/hosts. */
  if (sethostname("localhost", 9) != 0)
    say("setting the hostname failed: %s", strerror(errno));
}
