/* Ingress listeners (see rt_ingress.h). */
#define _GNU_SOURCE
#include "rt_ingress.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "rt_config.h"
#include "rt_logs.h"
#include "rt_pair.h"
#include "rt_proxyv2.h"

#define RETRY_MS 200
#define PP_WAIT_MS 5000

enum ing_state { PP_READ, WAIT_RETRY, CONNECTING };

struct rt_ingress {
  struct rt_watch watch;
  struct rt_ingress_config cfg;
  int listen_fd;
  size_t pending;
  struct ing_conn *conns;
  uint64_t last_not_listening_log;
  char listen_text[80], target_text[80];
};

struct ing_conn {
  struct rt_watch client_watch, target_watch;
  struct rt_ingress *in;
  int client_fd, target_fd;
  enum ing_state state;
  bool dead;
  uint64_t give_up, retry_at, pp_deadline;
  uint8_t head[RT_PROXYV2_MAX];
  size_t head_len;
  struct ing_conn *prev, *next;
};

static void conn_end(struct rt_loop *loop, struct ing_conn *c)
{
  if (c->dead)
    return;
  c->dead = true;
  int fds[2] = {c->client_fd, c->target_fd};
  for (int i = 0; i < 2; i++)
    if (fds[i] >= 0) {
      rt_loop_del(loop, fds[i]);
      close(fds[i]);
    }
  if (c->prev)
    c->prev->next = c->next;
  else
    c->in->conns = c->next;
  if (c->next)
    c->next->prev = c->prev;
  c->in->pending--;
  rt_loop_defer_free(loop, c, free);
}

static void target_ready(struct rt_loop *loop, struct rt_watch *w, uint32_t events);

/* A relayed connection ended; failures are worth a line (a reset is an ordinary client's way to
 * end, so only other errors are logged). */
static void pair_closed(void *arg, const struct rt_pair_stats *st)
{
  struct rt_ingress *in = arg;
  if (st->error)
    rt_logf(in->cfg.log, in->cfg.log_arg,
            "ingress %s: connection ended after %llu bytes in, %llu out: %s", in->listen_text,
            (unsigned long long)st->a_to_b, (unsigned long long)st->b_to_a, strerror(st->error));
}

static void try_connect(struct rt_loop *loop, struct ing_conn *c)
{
  int in_progress = 0;
  c->target_fd = rt_endpoint_connect(&c->in->cfg.target, &in_progress);
  if (c->target_fd < 0) {
    c->state = WAIT_RETRY; /* e.g. vsock ECONNRESET when nothing listens yet */
    c->retry_at = rt_now_ms() + RETRY_MS;
    return;
  }
  c->state = CONNECTING;
  c->target_watch.ready = target_ready;
  if (rt_loop_add(loop, c->target_fd, EPOLLOUT, &c->target_watch) != 0)
    conn_end(loop, c);
}

static void connected(struct rt_loop *loop, struct ing_conn *c)
{
  struct rt_ingress *in = c->in;
  uint8_t header[RT_PROXYV2_MAX];
  size_t hlen = 0;
  if (in->cfg.pp == RT_PP_ADD) {
    struct sockaddr_storage src, dst;
    socklen_t sl = sizeof src, dl = sizeof dst;
    if (getpeername(c->client_fd, (struct sockaddr *)&src, &sl) != 0 ||
        getsockname(c->client_fd, (struct sockaddr *)&dst, &dl) != 0)
      src.ss_family = dst.ss_family = AF_UNSPEC;
    hlen = rt_proxyv2_build(header, (struct sockaddr *)&src, (struct sockaddr *)&dst);
  } else if (in->cfg.pp == RT_PP_EXPECT) {
    memcpy(header, c->head, c->head_len); /* checked header plus any bytes read after it */
    hlen = c->head_len;
  }
  int client = c->client_fd, target = c->target_fd;
  rt_loop_del(loop, client);
  rt_loop_del(loop, target);
  c->client_fd = c->target_fd = -1;
  struct rt_pair_opts opts = {.idle_ms = in->cfg.idle_ms, .on_close = pair_closed, .arg = in};
  (void)rt_pair_start(loop, client, target, header, hlen, NULL, 0, &opts);
  conn_end(loop, c);
}

static void target_ready(struct rt_loop *loop, struct rt_watch *w, uint32_t events)
{
  struct ing_conn *c = (struct ing_conn *)((char *)w - offsetof(struct ing_conn, target_watch));
  (void)events;
  if (c->dead || c->state != CONNECTING)
    return;
  int err = rt_connect_result(c->target_fd);
  if (err == 0) {
    connected(loop, c);
    return;
  }
  rt_loop_del(loop, c->target_fd);
  close(c->target_fd);
  c->target_fd = -1;
  uint64_t now = rt_now_ms();
  if (now - c->in->last_not_listening_log > 10000) {
    c->in->last_not_listening_log = now;
    rt_logf(c->in->cfg.log, c->in->cfg.log_arg,
            "ingress %s: nothing listens on %s yet (%s); retrying for up to %u s",
            c->in->listen_text, c->in->target_text, strerror(err),
            c->in->cfg.connect_wait_ms / 1000);
  }
  c->state = WAIT_RETRY;
  c->retry_at = now + RETRY_MS;
}

/* RT_PP_EXPECT: read the PROXY v2 header before connecting. */
static void client_ready(struct rt_loop *loop, struct rt_watch *w, uint32_t events)
{
  struct ing_conn *c = (struct ing_conn *)w;
  (void)events;
  if (c->dead || c->state != PP_READ)
    return;
  ssize_t n = recv(c->client_fd, c->head + c->head_len, sizeof c->head - c->head_len, 0);
  if (n < 0 && (errno == EAGAIN || errno == EINTR))
    return;
  if (n <= 0) {
    conn_end(loop, c);
    return;
  }
  c->head_len += (size_t)n;
  long ok = rt_proxyv2_check(c->head, c->head_len);
  if (ok < 0 || (ok == 0 && c->head_len == sizeof c->head)) {
    rt_logf(c->in->cfg.log, c->in->cfg.log_arg,
            "ingress %s: the connection does not start with a PROXY v2 header; closed",
            c->in->listen_text);
    conn_end(loop, c);
    return;
  }
  if (ok == 0)
    return;
  rt_loop_del(loop, c->client_fd);
  try_connect(loop, c);
}

static void accept_ready(struct rt_loop *loop, struct rt_watch *w, uint32_t events)
{
  struct rt_ingress *in = (struct rt_ingress *)w;
  (void)events;
  for (int i = 0; i < 64; i++) {
    int fd = accept4(in->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0)
      return;
    struct ing_conn *c = calloc(1, sizeof *c);
    if (!c || in->pending + rt_pair_count() >= in->cfg.max_connections) {
      close(fd);
      free(c);
      continue;
    }
    c->in = in;
    c->client_fd = fd;
    c->target_fd = -1;
    c->give_up = rt_now_ms() + in->cfg.connect_wait_ms;
    c->next = in->conns;
    if (in->conns)
      in->conns->prev = c;
    in->conns = c;
    in->pending++;
    if (in->cfg.pp == RT_PP_EXPECT) {
      c->state = PP_READ;
      c->pp_deadline = rt_now_ms() + PP_WAIT_MS;
      c->client_watch.ready = client_ready;
      if (rt_loop_add(loop, fd, EPOLLIN, &c->client_watch) != 0)
        conn_end(loop, c);
    } else {
      try_connect(loop, c);
    }
  }
}

static void tick(struct rt_loop *loop, void *arg, uint64_t now)
{
  struct rt_ingress *in = arg;
  for (struct ing_conn *c = in->conns, *next; c; c = next) {
    next = c->next;
    if (c->state == PP_READ && now >= c->pp_deadline) {
      rt_logf(in->cfg.log, in->cfg.log_arg, "ingress %s: no PROXY v2 header within %u s; closed",
              in->listen_text, PP_WAIT_MS / 1000);
      conn_end(loop, c);
    } else if (c->state != PP_READ && now >= c->give_up) {
      rt_logf(in->cfg.log, in->cfg.log_arg,
              "ingress %s: nothing listened on %s within %u s; connection closed", in->listen_text,
              in->target_text, in->cfg.connect_wait_ms / 1000);
      conn_end(loop, c);
    } else if (c->state == WAIT_RETRY && now >= c->retry_at) {
      try_connect(loop, c);
    }
  }
}

static void ingress_free(struct rt_loop *loop, void *arg)
{
  struct rt_ingress *in = arg;
  while (in->conns)
    conn_end(loop, in->conns);
  rt_loop_del(loop, in->listen_fd);
  close(in->listen_fd);
  free(in);
}

struct rt_ingress *rt_ingress_start(struct rt_loop *loop, const struct rt_ingress_config *cfg)
{
  struct rt_ingress *in = calloc(1, sizeof *in);
  if (!in)
    return NULL;
  in->cfg = *cfg;
  if (!in->cfg.connect_wait_ms)
    in->cfg.connect_wait_ms = 30000;
  if (!in->cfg.idle_ms)
    in->cfg.idle_ms = 600000;
  if (!in->cfg.max_connections)
    in->cfg.max_connections = 4096;
  rt_endpoint_format(&cfg->listen, in->listen_text, sizeof in->listen_text);
  rt_endpoint_format(&cfg->target, in->target_text, sizeof in->target_text);
  in->listen_fd = rt_endpoint_listen(&cfg->listen, 1024);
  in->watch.ready = accept_ready;
  if (in->listen_fd < 0 || rt_loop_add(loop, in->listen_fd, EPOLLIN, &in->watch) != 0 ||
      rt_loop_every(loop, tick, in) != 0 || rt_loop_on_free(loop, ingress_free, in) != 0) {
    int e = errno;
    if (in->listen_fd >= 0)
      close(in->listen_fd);
    free(in);
    errno = e;
    return NULL;
  }
  return in;
}

size_t rt_ingress_pending(const struct rt_ingress *in)
{
  return in->pending;
}

int rt_ingress_start_config(struct rt_loop *loop, const struct rt_config *cfg, enum rt_pp_mode pp,
                            void (*log)(void *, const char *), void *log_arg)
{
  for (size_t i = 0; i < cfg->ningress; i++) {
    struct rt_ingress_config ic = {.listen = cfg->ingress[i].listen,
                                   .target = cfg->ingress[i].target,
                                   .pp = cfg->ingress[i].proxy_protocol ? pp : RT_PP_NONE,
                                   .connect_wait_ms = cfg->ingress_wait_s * 1000u,
                                   .log = log,
                                   .log_arg = log_arg};
    char text[80], target[80];
    rt_endpoint_format(&ic.listen, text, sizeof text);
    rt_endpoint_format(&ic.target, target, sizeof target);
    if (!rt_ingress_start(loop, &ic)) {
      rt_logf(log, log_arg, "ingress: cannot listen on %s: %s", text, strerror(errno));
      return -1;
    }
    rt_logf(log, log_arg, "ingress %s -> %s%s", text, target, ic.pp ? " (PROXY v2)" : "");
  }
  return 0;
}
