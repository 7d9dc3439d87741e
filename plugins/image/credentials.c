/* Registry credentials the way the Docker CLI finds them: credential helpers
 * (`docker-credential-<name> get`, host on stdin, JSON on stdout) named by credHelpers/credsStore,
 * else the base64 `auth` of the matching `auths` entry in the Docker config file. */
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "registry.h"
#include "util/json.h"

#define CRED_MAX_OUTPUT (64u * 1024u)

extern char **environ;

/* Hub credentials are stored under several historical keys. */
static int key_matches(const char *key, const char *host)
{
  const char *bare = strstr(key, "://") ? strstr(key, "://") + 3 : key;
  size_t hl = strlen(host);
  if (strncmp(bare, host, hl) == 0 && (bare[hl] == '\0' || bare[hl] == '/'))
    return 1;
  if (strcmp(host, "docker.io") == 0)
    return strncmp(bare, "index.docker.io", 15) == 0 ||
           strncmp(bare, "registry-1.docker.io", 20) == 0;
  return 0;
}

static char *base64_pair(const char *user, const char *secret)
{
  struct kiln_buf pair = KILN_BUF_INIT;
  kiln_buf_printf(&pair, "%s:%s", user, secret);
  char *out = pair.data ? malloc(4 * ((pair.len + 2) / 3) + 1) : NULL;
  if (out)
    EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)pair.data, (int)pair.len);
  if (pair.data)
    memset(pair.data, 0, pair.len);
  kiln_buf_free(&pair);
  return out;
}

/* Run docker-credential-<helper> get; returns base64 user:secret or NULL. */
static char *run_helper(const char *helper, const char *host, img_warn_fn log, void *log_ctx)
{
  int in[2] = {-1, -1}, out[2] = {-1, -1};
  pid_t pid = -1;
  char *result = NULL;
  struct kiln_buf prog = KILN_BUF_INIT, text = KILN_BUF_INIT;
  posix_spawn_file_actions_t fa;
  int fa_ok = 0;
  cJSON *doc = NULL;
  kiln_buf_printf(&prog, "docker-credential-%s", helper);
  if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0 ||
      posix_spawn_file_actions_init(&fa) != 0)
    goto out;
  fa_ok = 1;
  posix_spawn_file_actions_adddup2(&fa, in[0], 0);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  char *argv[] = {prog.data, "get", NULL};
  if (posix_spawnp(&pid, prog.data, &fa, NULL, argv, environ) != 0) {
    pid = -1;
    if (log)
      log(log_ctx, "credential helper %s not found; pulling from %s anonymously", prog.data, host);
    goto out;
  }
  close(in[0]);
  close(out[1]);
  in[0] = out[1] = -1;
  void (*old)(int) = signal(SIGPIPE, SIG_IGN);
  ssize_t w = write(in[1], host, strlen(host));
  signal(SIGPIPE, old);
  close(in[1]);
  in[1] = -1;
  (void)w;
  char buf[4096];
  for (;;) {
    ssize_t n = read(out[0], buf, sizeof(buf));
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0 || text.len + (size_t)n > CRED_MAX_OUTPUT)
      break;
    kiln_buf_append(&text, buf, (size_t)n);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
    ;
  pid = -1;
  struct kiln_error err = KILN_ERROR_INIT;
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0 &&
      kiln_json_parse(kiln_buf_str(&text), text.len, prog.data, &doc, &err) == KILN_OK) {
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(doc, "Username");
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(doc, "Secret");
    if (cJSON_IsString(u) && cJSON_IsString(s))
      result = base64_pair(u->valuestring, s->valuestring);
  }
  kiln_error_clear(&err);
out:
  if (pid > 0)
    waitpid(pid, NULL, 0);
  for (int i = 0; i < 2; i++) {
    if (in[i] >= 0)
      close(in[i]);
    if (out[i] >= 0)
      close(out[i]);
  }
  if (fa_ok)
    posix_spawn_file_actions_destroy(&fa);
  if (text.data)
    memset(text.data, 0, text.len);
  kiln_buf_free(&text);
  kiln_buf_free(&prog);
  cJSON_Delete(doc);
  return result;
}

char *img_docker_credentials(const char *host, img_warn_fn log, void *log_ctx)
{
  const char *dir = getenv("DOCKER_CONFIG");
  const char *home = getenv("HOME");
  struct kiln_buf path = KILN_BUF_INIT;
  struct kiln_error err = KILN_ERROR_INIT;
  cJSON *cfg = NULL;
  char *auth = NULL;
  if (dir)
    kiln_buf_printf(&path, "%s/config.json", dir);
  else if (home)
    kiln_buf_printf(&path, "%s/.docker/config.json", home);
  if (!path.data || kiln_json_read_file(path.data, 1 << 20, &cfg, &err) != KILN_OK)
    goto out;
  const cJSON *e, *helper = NULL;
  cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(cfg, "credHelpers"))
  {
    if (!helper && cJSON_IsString(e) && key_matches(e->string, host))
      helper = e;
  }
  if (!helper && cJSON_IsString(cJSON_GetObjectItemCaseSensitive(cfg, "credsStore")))
    helper = cJSON_GetObjectItemCaseSensitive(cfg, "credsStore");
  if (helper && (auth = run_helper(helper->valuestring, host, log, log_ctx)))
    goto out;
  cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(cfg, "auths"))
  {
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(e, "auth");
    if (!auth && cJSON_IsString(a) && a->valuestring[0] && key_matches(e->string, host))
      auth = strdup(a->valuestring);
  }
out:
  cJSON_Delete(cfg);
  kiln_error_clear(&err);
  kiln_buf_free(&path);
  return auth;
}
