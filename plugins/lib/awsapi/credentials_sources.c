/* credential_process, container credentials, IMDSv2 and credential_source. */
#include "credentials_sources.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "client_internal.h"
#include "util/buf.h"
#include "util/fs.h"

#define PROCESS_MAX_OUTPUT (64u << 10)
#define PROCESS_TIMEOUT_MS 60000
#define CONTAINER_HOST "http://169.254.170.2"
#define IMDS_DEFAULT "http://169.254.169.254"

static int pipe_cloexec(int fds[2])
{
  if (pipe(fds) != 0)
    return -1;
  fcntl(fds[0], F_SETFD, FD_CLOEXEC);
  fcntl(fds[1], F_SETFD, FD_CLOEXEC);
  return 0;
}

static long elapsed_ms(const struct timespec *start)
{
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return (now.tv_sec - start->tv_sec) * 1000 + (now.tv_nsec - start->tv_nsec) / 1000000;
}

/* Read both pipes until EOF, the size limit or the timeout. */
static int drain(int out_fd, int err_fd, struct kiln_buf *out, struct kiln_buf *errs,
                 const struct timespec *start)
{
  struct pollfd fds[2] = {{out_fd, POLLIN, 0}, {err_fd, POLLIN, 0}};
  int open_fds = 2;
  char buf[4096];
  while (open_fds > 0) {
    long left = PROCESS_TIMEOUT_MS - elapsed_ms(start);
    if (left <= 0)
      return -1;
    if (poll(fds, 2, (int)left) < 0 && errno != EINTR)
      return -2;
    for (int i = 0; i < 2; i++) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
        continue;
      ssize_t n = read(fds[i].fd, buf, sizeof(buf));
      if (n <= 0) {
        fds[i].fd = -1;
        open_fds--;
        continue;
      }
      struct kiln_buf *dst = i == 0 ? out : errs;
      if (dst->len + (size_t)n > PROCESS_MAX_OUTPUT)
        return -3;
      kiln_buf_append(dst, buf, (size_t)n);
    }
  }
  return 0;
}

static const char *last_line(struct kiln_buf *b)
{
  while (b->len > 0 && (b->data[b->len - 1] == '\n' || b->data[b->len - 1] == '\r'))
    b->data[--b->len] = '\0';
  const char *s = kiln_buf_str(b);
  const char *nl = strrchr(s, '\n');
  return nl ? nl + 1 : s;
}

kiln_err kiln_aws_credentials_from_process(const char *command, const char *source,
                                           struct kiln_aws_credentials *out, struct kiln_error *err)
{
  int out_pipe[2], err_pipe[2];
  struct kiln_buf stdout_text = KILN_BUF_INIT, stderr_text = KILN_BUF_INIT;
  struct timespec start;
  kiln_err rc = KILN_OK;
  memset(out, 0, sizeof(*out));
  if (pipe_cloexec(out_pipe) != 0)
    return kiln_error_set(err, KILN_E_IO, "credential_process: pipe: %s", strerror(errno));
  if (pipe_cloexec(err_pipe) != 0) {
    close(out_pipe[0]);
    close(out_pipe[1]);
    return kiln_error_set(err, KILN_E_IO, "credential_process: pipe: %s", strerror(errno));
  }
  clock_gettime(CLOCK_MONOTONIC, &start);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(out_pipe[1], STDOUT_FILENO);
    dup2(err_pipe[1], STDERR_FILENO);
    int null = open("/dev/null", O_RDONLY);
    if (null >= 0)
      dup2(null, STDIN_FILENO);
    execl("/bin/sh", "sh", "-c", command, (char *)NULL);
    _exit(127);
  }
  close(out_pipe[1]);
  close(err_pipe[1]);
  if (pid < 0) {
    close(out_pipe[0]);
    close(err_pipe[0]);
    return kiln_error_set(err, KILN_E_IO, "credential_process: fork: %s", strerror(errno));
  }
  int drained = drain(out_pipe[0], err_pipe[0], &stdout_text, &stderr_text, &start);
  close(out_pipe[0]);
  close(err_pipe[0]);
  if (drained != 0)
    kill(pid, SIGKILL);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
    ;
  if (drained == -1)
    rc =
        kiln_error_set(err, KILN_E_AUTH, "%s: credential_process \"%s\" did not finish within %d s",
                       source, command, PROCESS_TIMEOUT_MS / 1000);
  else if (drained != 0)
    rc = kiln_error_set(err, KILN_E_AUTH, "%s: credential_process \"%s\" wrote more than %u bytes",
                        source, command, PROCESS_MAX_OUTPUT);
  else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    rc = kiln_error_set(err, KILN_E_AUTH, "%s: credential_process \"%s\" failed (exit %d): %s",
                        source, command, WIFEXITED(status) ? WEXITSTATUS(status) : -1,
                        last_line(&stderr_text));
  else
    rc = kiln_aws_credentials_from_json(kiln_buf_str(&stdout_text), source, out, err);
  if (rc == KILN_OK)
    snprintf(out->source, sizeof(out->source), "%s (process)", source);
  kiln_buf_free(&stdout_text);
  kiln_buf_free(&stderr_text);
  return rc;
}

/* GET or PUT a local metadata URL, one attempt, short timeouts. */
static kiln_err local_call(struct kiln_aws_client *c, const char *method, const char *url,
                           const struct kiln_aws_pair *headers, size_t nheaders, const char *what,
                           char **body, struct kiln_error *err)
{
  struct kiln_aws_request r = KILN_AWS_REQUEST_INIT;
  struct kiln_aws_response resp;
  r.service = "metadata";
  r.operation = what;
  r.method = method;
  r.url = url;
  r.headers = headers;
  r.nheaders = nheaders;
  r.unsigned_request = 1;
  r.no_retry = 1;
  r.max_response = 1u << 16;
  if (strcmp(method, "PUT") == 0) {
    r.body = "";
    r.body_len = 0;
  }
  kiln_err rc = kiln_aws_send(c, &r, &resp, NULL, err);
  if (rc == KILN_OK)
    *body = kiln_buf_detach(&resp.body);
  if (rc == KILN_OK && !*body)
    *body = strdup("");
  kiln_aws_response_clear(&resp);
  return rc;
}

static int loopback_or_https(const char *url)
{
  if (strncmp(url, "https://", 8) == 0)
    return 1;
  static const char *const hosts[] = {"http://127.",  "http://localhost",      "http://[::1]",
                                      CONTAINER_HOST, "http://169.254.170.23", NULL};
  for (int i = 0; hosts[i]; i++)
    if (strncmp(url, hosts[i], strlen(hosts[i])) == 0)
      return 1;
  return 0;
}

kiln_err kiln_aws_credentials_from_container(struct kiln_aws_client *c,
                                             struct kiln_aws_credentials *out,
                                             struct kiln_error *err)
{
  const char *rel = getenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
  const char *full = getenv("AWS_CONTAINER_CREDENTIALS_FULL_URI");
  struct kiln_buf url = KILN_BUF_INIT;
  char *token = NULL, *body = NULL;
  kiln_err rc = KILN_OK;
  memset(out, 0, sizeof(*out));
  if (rel && *rel)
    kiln_buf_printf(&url, "%s%s", CONTAINER_HOST, rel);
  else if (full && *full)
    kiln_buf_puts(&url, full);
  else
    return KILN_E_NOT_FOUND;
  if (!(rel && *rel) && !loopback_or_https(kiln_buf_str(&url))) {
    rc = kiln_error_set(err, KILN_E_INVALID,
                        "AWS_CONTAINER_CREDENTIALS_FULL_URI %s must use https or a loopback host",
                        kiln_buf_str(&url));
    goto out;
  }
  const char *token_file = getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
  const char *token_env = getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN");
  if (token_file && *token_file) {
    size_t len = 0;
    if ((rc = kiln_read_file(token_file, 1u << 16, &token, &len, err)) != KILN_OK) {
      kiln_error_prefix(err, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
      goto out;
    }
    while (len > 0 && (token[len - 1] == '\n' || token[len - 1] == '\r'))
      token[--len] = '\0';
  } else if (token_env && *token_env) {
    token = strdup(token_env);
  }
  if (token && c->opt.redact)
    c->opt.redact(c->opt.hook_ctx, token);
  struct kiln_aws_pair auth = {"authorization", token ? token : ""};
  rc = local_call(c, "GET", kiln_buf_str(&url), &auth, token ? 1 : 0, "container credentials",
                  &body, err);
  if (rc == KILN_OK)
    rc = kiln_aws_credentials_from_json(body, "container credentials", out, err);
  else
    kiln_error_prefix(err, "container credentials from %s", kiln_buf_str(&url));
out:
  kiln_buf_free(&url);
  free(token);
  free(body);
  return rc;
}

kiln_err kiln_aws_credentials_from_imds(struct kiln_aws_client *c, struct kiln_aws_credentials *out,
                                        struct kiln_error *err)
{
  const char *disabled = getenv("AWS_EC2_METADATA_DISABLED");
  const char *base = getenv("AWS_EC2_METADATA_SERVICE_ENDPOINT");
  struct kiln_buf url = KILN_BUF_INIT;
  char *token = NULL, *roles = NULL, *body = NULL;
  memset(out, 0, sizeof(*out));
  if (disabled && strcmp(disabled, "true") == 0)
    return kiln_error_set(err, KILN_E_NOT_FOUND, "AWS_EC2_METADATA_DISABLED=true");
  if (!base || !*base)
    base = IMDS_DEFAULT;
  size_t blen = strlen(base);
  while (blen > 0 && base[blen - 1] == '/')
    blen--;
  const struct kiln_aws_pair ttl = {"x-aws-ec2-metadata-token-ttl-seconds", "21600"};
  kiln_buf_printf(&url, "%.*s/latest/api/token", (int)blen, base);
  kiln_err rc = local_call(c, "PUT", kiln_buf_str(&url), &ttl, 1, "IMDS token", &token, err);
  if (rc != KILN_OK) {
    kiln_error_clear(err);
    rc = kiln_error_set(err, KILN_E_NOT_FOUND, "no answer from %.*s", (int)blen, base);
    goto out;
  }
  if (c->opt.redact)
    c->opt.redact(c->opt.hook_ctx, token);
  const struct kiln_aws_pair auth = {"x-aws-ec2-metadata-token", token};
  kiln_buf_reset(&url);
  kiln_buf_printf(&url, "%.*s/latest/meta-data/iam/security-credentials/", (int)blen, base);
  rc = local_call(c, "GET", kiln_buf_str(&url), &auth, 1, "IMDS role", &roles, err);
  if (rc != KILN_OK)
    goto out;
  char *nl = strpbrk(roles, "\r\n");
  if (nl)
    *nl = '\0';
  if (!*roles) {
    rc = kiln_error_set(err, KILN_E_NOT_FOUND, "the instance has no IAM role");
    goto out;
  }
  kiln_buf_reset(&url);
  kiln_buf_printf(&url, "%.*s/latest/meta-data/iam/security-credentials/%s", (int)blen, base,
                  roles);
  rc = local_call(c, "GET", kiln_buf_str(&url), &auth, 1, "IMDS credentials", &body, err);
  if (rc == KILN_OK)
    rc = kiln_aws_credentials_from_json(body, "instance metadata", out, err);
out:
  kiln_buf_free(&url);
  free(token);
  free(roles);
  free(body);
  return rc;
}

kiln_err kiln_aws_credentials_from_source(struct kiln_aws_client *c, const char *name,
                                          struct kiln_aws_credentials *out, struct kiln_error *err)
{
  if (strcmp(name, "Environment") == 0) {
    const char *id = getenv("AWS_ACCESS_KEY_ID"), *secret = getenv("AWS_SECRET_ACCESS_KEY");
    if (!id || !*id || !secret || !*secret)
      return kiln_error_set(err, KILN_E_AUTH,
                            "credential_source = Environment, but AWS_ACCESS_KEY_ID / "
                            "AWS_SECRET_ACCESS_KEY are not both set");
    struct kiln_aws_credentials env = {(char *)id, (char *)secret,
                                       (char *)getenv("AWS_SESSION_TOKEN"), 0, "environment"};
    return kiln_aws_credentials_copy(out, &env) == KILN_OK
               ? KILN_OK
               : kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  }
  if (strcmp(name, "Ec2InstanceMetadata") == 0)
    return kiln_aws_credentials_from_imds(c, out, err);
  if (strcmp(name, "EcsContainer") == 0) {
    kiln_err rc = kiln_aws_credentials_from_container(c, out, err);
    return rc == KILN_E_NOT_FOUND ? kiln_error_set(err, KILN_E_AUTH,
                                                   "credential_source = EcsContainer, but no "
                                                   "AWS_CONTAINER_CREDENTIALS_*_URI is set")
                                  : rc;
  }
  return kiln_error_set(err, KILN_E_INVALID,
                        "credential_source \"%s\" is not Environment, Ec2InstanceMetadata or "
                        "EcsContainer",
                        name);
}
