/* The enclave's attestation endpoint (see rt_attest_server.h). */
#define _GNU_SOURCE
#include "rt_attest_server.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "rt_http.h"
#include "rt_nsm.h"
#include "rt_pair.h"

#define HEAD_MAX 4096
#define HEAD_WAIT_MS 5000

struct rt_attest_server {
  struct rt_watch watch;
  int listen_fd;
  char device[256];
  void (*log)(void *, const char *);
  void *log_arg;
  struct att_conn *conns;
};

struct att_conn {
  struct rt_watch watch;
  struct rt_attest_server *srv;
  int fd;
  uint64_t deadline;
  char head[HEAD_MAX];
  size_t used;
  struct att_conn *prev, *next;
};

static int hex_value(char c)
{
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/* Hex text of len chars into out (max bytes); the byte count or -1. */
static long unhex(const char *s, size_t len, uint8_t *out, size_t max)
{
  if (len % 2 || len / 2 > max)
    return -1;
  for (size_t i = 0; i < len; i += 2) {
    int hi = hex_value(s[i]), lo = hex_value(s[i + 1]);
    if (hi < 0 || lo < 0)
      return -1;
    out[i / 2] = (uint8_t)(hi << 4 | lo);
  }
  return (long)(len / 2);
}

/* A plain-text answer: the message, then what (may be empty), then a newline. */
static size_t text_answer(char *out, size_t size, int status, const char *message, const char *what)
{
  char body[400];
  int n = snprintf(body, sizeof body, "%s%s\n", message, what);
  return rt_http_response(out, size, status, "text/plain", body, n > 0 ? (size_t)n : 0);
}

size_t rt_attest_answer(const char *head, size_t head_len, const char *device, char *out,
                        size_t size)
{
  char line[HEAD_MAX];
  const char *eol = memchr(head, '\n', head_len);
  size_t n = eol ? (size_t)(eol - head) : head_len;
  if (n && head[n - 1] == '\r')
    n--;
  if (n >= sizeof line)
    return text_answer(out, size, 414, "request line too long", "");
  memcpy(line, head, n);
  line[n] = '\0';
  if (strncmp(line, "GET ", 4) != 0)
    return text_answer(out, size, 405, "only GET /attestation?nonce=<hex> is served", "");
  char *target = line + 4, *sp = strchr(target, ' ');
  if (!sp || strncmp(sp + 1, "HTTP/1.", 7) != 0)
    return text_answer(out, size, 400, "not an HTTP/1.x request", "");
  *sp = '\0';
  char *query = strchr(target, '?');
  if (query)
    *query++ = '\0';
  if (strcmp(target, "/attestation") != 0)
    return text_answer(out, size, 404, "only /attestation is served", "");
  uint8_t nonce[RT_NSM_NONCE_MAX], user[RT_NSM_USER_DATA_MAX];
  long nonce_len = -1, user_len = -1;
  for (char *save = NULL, *kv = query ? strtok_r(query, "&", &save) : NULL; kv;
       kv = strtok_r(NULL, "&", &save)) {
    char *eq = strchr(kv, '=');
    size_t vlen = eq ? strlen(eq + 1) : 0;
    if (eq && strncmp(kv, "nonce=", 6) == 0 && nonce_len < 0)
      nonce_len = unhex(eq + 1, vlen, nonce, sizeof nonce);
    else if (eq && strncmp(kv, "user_data=", 10) == 0 && user_len < 0)
      user_len = unhex(eq + 1, vlen, user, sizeof user);
    else
      return text_answer(out, size, 400, "unknown or repeated parameter: ", kv);
    if ((kv[0] == 'n' && nonce_len < 0) || (kv[0] == 'u' && user_len < 0))
      return text_answer(out, size, 400,
                         "nonce must be hex of at most 64 bytes, user_data at most 512 bytes", "");
  }
  if (nonce_len <= 0)
    return text_answer(out, size, 400, "a nonce is required: ?nonce=<hex>", "");
  static uint8_t doc[RT_NSM_RESPONSE_MAX];
  size_t doc_len = 0;
  char why[300];
  if (rt_nsm_attest(device, nonce, (size_t)nonce_len, user_len > 0 ? user : NULL,
                    user_len > 0 ? (size_t)user_len : 0, doc, sizeof doc, &doc_len, why,
                    sizeof why) != 0)
    return text_answer(out, size, 503, why, "");
  return rt_http_response(out, size, 200, "application/cbor", doc, doc_len);
}

static void conn_end(struct rt_loop *loop, struct att_conn *c, int answered)
{
  rt_loop_del(loop, c->fd);
  if (answered)
    rt_close_after_send(loop, c->fd);
  else
    close(c->fd);
  if (c->prev)
    c->prev->next = c->next;
  else
    c->srv->conns = c->next;
  if (c->next)
    c->next->prev = c->prev;
  c->fd = -1;
  rt_loop_defer_free(loop, c, free);
}

static void conn_ready(struct rt_loop *loop, struct rt_watch *w, uint32_t events)
{
  struct att_conn *c = (struct att_conn *)w;
  (void)events;
  if (c->fd < 0)
    return;
  ssize_t n = recv(c->fd, c->head + c->used, sizeof c->head - c->used, 0);
  if (n < 0 && (errno == EAGAIN || errno == EINTR))
    return;
  if (n <= 0) {
    conn_end(loop, c, 0);
    return;
  }
  c->used += (size_t)n;
  size_t len = rt_http_head_length(c->head, c->used);
  if (!len && c->used < sizeof c->head)
    return;
  static char out[RT_NSM_RESPONSE_MAX + 512];
  size_t olen = len ? rt_attest_answer(c->head, len, c->srv->device, out, sizeof out)
                    : text_answer(out, sizeof out, 431, "request head too large", "");
  int status = olen > 12 ? atoi(out + 9) : 0;
  if (c->srv->log && status != 200) {
    char line[200];
    snprintf(line, sizeof line, "attestation request answered %d", status);
    c->srv->log(c->srv->log_arg, line);
  }
  /* small answer, empty socket buffer: sent whole or the client is gone */
  size_t off = 0;
  for (int tries = 0; off < olen && tries < 1000; tries++) {
    ssize_t w2 = send(c->fd, out + off, olen - off, MSG_NOSIGNAL);
    if (w2 > 0)
      off += (size_t)w2;
    else if (w2 < 0 && errno != EAGAIN && errno != EINTR)
      break;
    else
      usleep(1000);
  }
  conn_end(loop, c, 1);
}

static void accept_ready(struct rt_loop *loop, struct rt_watch *w, uint32_t events)
{
  struct rt_attest_server *srv = (struct rt_attest_server *)w;
  (void)events;
  for (int i = 0; i < 32; i++) {
    int fd = accept4(srv->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0)
      return;
    struct att_conn *c = calloc(1, sizeof *c);
    if (!c) {
      close(fd);
      continue;
    }
    c->watch.ready = conn_ready;
    c->srv = srv;
    c->fd = fd;
    c->deadline = rt_now_ms() + HEAD_WAIT_MS;
    c->next = srv->conns;
    if (srv->conns)
      srv->conns->prev = c;
    srv->conns = c;
    if (rt_loop_add(loop, fd, EPOLLIN, &c->watch) != 0)
      conn_end(loop, c, 0);
  }
}

static void expire(struct rt_loop *loop, void *arg, uint64_t now)
{
  struct rt_attest_server *srv = arg;
  for (struct att_conn *c = srv->conns, *next; c; c = next) {
    next = c->next;
    if (now >= c->deadline)
      conn_end(loop, c, 0);
  }
}

static void server_free(struct rt_loop *loop, void *arg)
{
  struct rt_attest_server *srv = arg;
  while (srv->conns)
    conn_end(loop, srv->conns, 0);
  rt_loop_del(loop, srv->listen_fd);
  close(srv->listen_fd);
  free(srv);
}

struct rt_attest_server *rt_attest_server_start(struct rt_loop *loop, int listen_fd,
                                                const char *device,
                                                void (*log)(void *, const char *), void *log_arg)
{
  struct rt_attest_server *srv = calloc(1, sizeof *srv);
  if (!srv)
    return NULL;
  srv->listen_fd = listen_fd;
  snprintf(srv->device, sizeof srv->device, "%s", device);
  srv->log = log;
  srv->log_arg = log_arg;
  srv->watch.ready = accept_ready;
  if (rt_loop_add(loop, listen_fd, EPOLLIN, &srv->watch) != 0 ||
      rt_loop_every(loop, expire, srv) != 0 || rt_loop_on_free(loop, server_free, srv) != 0) {
    free(srv);
    return NULL;
  }
  return srv;
}
