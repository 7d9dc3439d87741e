/* Compiling kiln-init and kiln-agent at pipeline time: static, -Os, stripped, no build id, source
 * paths mapped away, in a clean environment with umask 022; kiln-init from every .c of
 * enclave-src/init, kiln-agent from agent.c and every rt_*.c of enclave-src/runtime. The result
 * is kept in the stage's state directory under a key of sources + toolchain + arch (made in a
 * temporary directory and renamed, so a failed build leaves nothing). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "programs.h"
#include "stage_toolchain.h"
#include "util/buf.h"
#include "util/fs.h"
#include "util/hash.h"

#define MAX_ARGS 64

static char *source_dir(struct kiln_stage_ctx *ctx, const struct kiln_host *host)
{
  return kiln_path_join(host->lib_dir(ctx), "enclave-src");
}

kiln_err eif_programs_identify(struct kiln_stage_ctx *ctx, const struct kiln_host *host,
                               const char *arch)
{
  char *src = source_dir(ctx, host);
  char hex[KILN_SHA256_HEX_LEN + 1];
  struct kiln_error err = KILN_ERROR_INIT;
  kiln_err rc = src ? kiln_sha256_tree(src, hex, &err) : KILN_E_NOMEM;
  if (rc)
    rc = host->fail(ctx, rc, "kiln's enclave program sources: %s (rebuild or reinstall kiln)",
                    kiln_error_msg(&err));
  else
    rc = host->cache_key_add(ctx, hex);
  if (!rc)
    rc = host->cache_key_add(ctx, arch);
  if (!rc)
    rc = kiln_stage_toolchain_identify(ctx, host, arch);
  kiln_error_clear(&err);
  free(src);
  return rc;
}

static int select_c(const struct dirent *e)
{
  size_t n = strlen(e->d_name);
  return n > 2 && strcmp(e->d_name + n - 2, ".c") == 0;
}

/* Run argv in dir with env; its output goes to the log on failure. */
static kiln_err run(char *const argv[], char *const env[], const char *dir, const char *what,
                    struct kiln_error *err)
{
  pid_t pid = fork();
  if (pid == 0) {
    if (chdir(dir) != 0)
      _exit(126);
    umask(022);
    execvpe(argv[0], argv, env);
    _exit(127);
  }
  int status = 0;
  while (pid > 0 && waitpid(pid, &status, 0) < 0 && errno == EINTR)
    ;
  if (pid < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
    return kiln_error_set(err, KILN_E_INVALID,
                          "compiling %s failed (%s exited with %d; its errors are above)", what,
                          argv[0], WIFEXITED(status) ? WEXITSTATUS(status) : -1);
  return KILN_OK;
}

/* One static program from the .c files of dir that keep() accepts. */
static kiln_err compile(const struct kiln_stage_toolchain *st, char *const env[], const char *dir,
                        int (*keep)(const char *), const char *out, const char *what,
                        struct kiln_error *err)
{
  struct dirent **names = NULL;
  int n = scandir(dir, &names, select_c, alphasort);
  if (n < 0)
    return kiln_error_set(err, KILN_E_NOT_FOUND, "%s: %s", dir, strerror(errno));
  char *argv[MAX_ARGS + 1] = {0};
  int a = 0;
  struct kiln_buf map = KILN_BUF_INIT, sysroot = KILN_BUF_INIT, cc = KILN_BUF_INIT;
  kiln_buf_printf(&map, "-ffile-prefix-map=%s=.", dir);
  if (st->pinned) {
    /* the target's compiler: the native or the aarch64 cross gcc, with the target's sysroot */
    kiln_buf_puts(&cc, st->tc.cc);
    kiln_buf_printf(&sysroot, "--sysroot=%s", st->tc.sysroot);
  } else {
    kiln_buf_puts(&cc, st->host_cc);
  }
  argv[a++] = cc.data;
  if (st->pinned)
    argv[a++] = sysroot.data;
  static const char *const flags[] = {"-std=c11", "-Os",        "-static",
                                      "-s",       "-Wall",      "-Wextra",
                                      "-Werror",  "-fno-ident", "-Wl,--build-id=none",
                                      "-o",       NULL};
  for (int i = 0; flags[i]; i++)
    argv[a++] = (char *)flags[i];
  argv[a++] = (char *)out;
  argv[a++] = map.data;
  for (int i = 0; i < n; i++) {
    if (a < MAX_ARGS && keep(names[i]->d_name))
      argv[a++] = names[i]->d_name;
  }
  kiln_err rc = a >= MAX_ARGS ? kiln_error_set(err, KILN_E_INVALID, "%s: too many sources", dir)
                              : run(argv, env, dir, what, err);
  for (int i = 0; i < n; i++)
    free(names[i]);
  free(names);
  kiln_buf_free(&map);
  kiln_buf_free(&sysroot);
  kiln_buf_free(&cc);
  return rc;
}

static int keep_all(const char *name)
{
  (void)name;
  return 1;
}

static int keep_agent(const char *name)
{
  return strcmp(name, "agent.c") == 0 || strncmp(name, "rt_", 3) == 0;
}

kiln_err eif_programs_build(struct kiln_stage_ctx *ctx, const struct kiln_host *host,
                            const char *arch, char **init, char **agent, struct kiln_error *err)
{
  *init = *agent = NULL;
  struct kiln_stage_toolchain st;
  struct kiln_buf key_text = KILN_BUF_INIT, dest = KILN_BUF_INIT, parent = KILN_BUF_INIT;
  char *src = source_dir(ctx, host), *tmp = NULL, *init_dir = NULL, *rt_dir = NULL;
  char **env = NULL;
  char tree[KILN_SHA256_HEX_LEN + 1], key[KILN_SHA256_HEX_LEN + 1];
  kiln_err rc = kiln_stage_toolchain_open(ctx, host, arch, &st, err);
  if (!rc)
    rc = src ? kiln_sha256_tree(src, tree, err) : KILN_E_NOMEM;
  if (rc) {
    kiln_stage_toolchain_close(&st);
    free(src);
    return rc;
  }
  char *host_id = st.pinned ? NULL : kiln_host_compiler_identity(st.host_cc);
  kiln_buf_printf(&key_text, "%s\n%s\n%s\n%s", tree, arch, st.pinned ? "pinned" : "host",
                  st.pinned ? st.tc.id : host_id);
  free(host_id);
  kiln_sha256_hex(key_text.data, key_text.len, key);
  kiln_buf_printf(&parent, "%s/programs", host->state_dir(ctx));
  kiln_buf_printf(&dest, "%s/%.24s", parent.data, key);
  if (!kiln_is_dir(dest.data)) {
    host->log(ctx, KILN_LOG_INFO, "compiling kiln-init and kiln-agent (%s, %s toolchain)", arch,
              st.pinned ? "pinned" : "host");
    env = kiln_toolchain_env(st.pinned ? &st.tc : NULL);
    init_dir = kiln_path_join(src, "init");
    rt_dir = kiln_path_join(src, "runtime");
    rc = env && init_dir && rt_dir ? kiln_mkdir_p(parent.data, 0755, err) : KILN_E_NOMEM;
    if (!rc)
      rc = kiln_mkdtemp_in(parent.data, ".build-", &tmp, err);
    char *init_out = tmp ? kiln_path_join(tmp, "kiln-init") : NULL;
    char *agent_out = tmp ? kiln_path_join(tmp, "kiln-agent") : NULL;
    if (!rc)
      rc = compile(&st, env, init_dir, keep_all, init_out, "kiln-init", err);
    if (!rc)
      rc = compile(&st, env, rt_dir, keep_agent, agent_out, "kiln-agent", err);
    if (!rc && rename(tmp, dest.data) != 0 && errno != EEXIST && errno != ENOTEMPTY)
      rc = kiln_error_set(err, KILN_E_IO, "cannot rename %s: %s", tmp, strerror(errno));
    if (tmp && kiln_path_exists(tmp))
      kiln_rm_rf_quiet(tmp);
    free(init_out);
    free(agent_out);
  }
  if (!rc) {
    *init = kiln_path_join(dest.data, "kiln-init");
    *agent = kiln_path_join(dest.data, "kiln-agent");
    if (!*init || !*agent)
      rc = KILN_E_NOMEM;
  }
  kiln_toolchain_env_free(env);
  kiln_stage_toolchain_close(&st);
  kiln_buf_free(&key_text);
  kiln_buf_free(&dest);
  kiln_buf_free(&parent);
  free(src);
  free(tmp);
  free(init_dir);
  free(rt_dir);
  return rc;
}
