/* What a process knows about how it was started, one "PROCINFO key value" line each: uid, gid,
 * supplementary groups, working directory, argv, environment (sorted), umask, the file
 * descriptor limits and what stdin is. The runtime's parity test runs it under `docker run` and
 * as an enclave app and compares. Static, no dependencies. */
#define _GNU_SOURCE
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

extern char **environ;

static int compare(const void *a, const void *b)
{
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static int compare_gid(const void *a, const void *b)
{
  gid_t x = *(const gid_t *)a, y = *(const gid_t *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
  printf("PROCINFO uid %d\nPROCINFO gid %d\n", (int)getuid(), (int)getgid());
  gid_t groups[256];
  int n = getgroups(256, groups);
  qsort(groups, n > 0 ? (size_t)n : 0, sizeof *groups, compare_gid);
  printf("PROCINFO groups");
  for (int i = 0; i < n; i++)
    printf(" %d", (int)groups[i]);
  char cwd[4096];
  printf("\nPROCINFO cwd %s\n", getcwd(cwd, sizeof cwd) ? cwd : "?");
  for (int i = 0; i < argc; i++)
    printf("PROCINFO argv[%d] %s\n", i, argv[i]);
  size_t count = 0;
  while (environ[count])
    count++;
  qsort(environ, count, sizeof *environ, compare);
  for (size_t i = 0; i < count; i++)
    printf("PROCINFO env %s\n", environ[i]);
  mode_t m = umask(0);
  struct rlimit r;
  getrlimit(RLIMIT_NOFILE, &r);
  printf("PROCINFO umask %04o\nPROCINFO nofile %llu %llu\n", (unsigned)m,
         (unsigned long long)r.rlim_cur, (unsigned long long)r.rlim_max);
  struct stat st;
  if (fstat(0, &st) == 0 && S_ISCHR(st.st_mode))
    printf("PROCINFO stdin char %u:%u\n", major(st.st_rdev), minor(st.st_rdev));
  else
    printf("PROCINFO stdin other\n");
  printf("PROCINFO end\n");
  return 0;
}
