/* The egress proxy state machine (see rt_proxy.h). */
#define _GNU_SOURCE
#include "rt_proxy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <linux/vm_sockets.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "rt_http.h"
#include "rt_logs.h"
#include "rt_pair.h"

enum state { READ_HEAD, RESOLVING, CONNECTING, READ_PARENT_HEAD };

struct rt_proxy {
  struct rt_watch watch;
  struct rt_proxy_config cfg;
  int listen_fd;
  size_t pending;
  struct rt_proxy_session *sessions;
};

struct rt_proxy_session {
  struct rt_watch client_watch, up_watch;
  struct rt_proxy *proxy;
  int client_fd, up_fd;
  enum state state;
  bool dead, resolving;
  uint64_t deadline;
  char head[RT_HTTP_MAX_HEAD];
  size_t head_used, head_len;
  char up_head[2048];
  size_t up_used;
  struct rt_proxy_request req;
  struct sockaddr_storage *addrs;
  size_t naddrs, next_addr;
  char refused[640]; /* why the last address was refused or failed */
  struct rt_proxy_session *prev, *next;
};

static void session_free(void *arg)
{
  struct rt_proxy_session *s = arg;
  rt_proxy_request_free(&s->req);
  free(s->addrs);
  free(s);
}

static void session_end(struct rt_loop *loop, struct rt_proxy_session *s)
{
  if (s->dead)
    return;
  s->dead = true;
  struct rt_proxy *p = s->proxy;
  if (s->client_fd >= 0) {
    rt_loop_del(loop, s->client_fd);
    close(s->client_fd);
  }
  if (s->up_fd >= 0) {
    rt_loop_del(loop, s->up_fd);
    close(s->up_fd);
  }
  s->client_fd = s->up_fd = -1;
  if (s->prev)
    s->prev->next = s->next;
  else
    p->sessions = s->next;
  if (s->next)
    s->next->prev = s->prev;
  p->pending--;
  if (!s->resolving) /* else the resolver's callback frees it */
    rt_loop_defer_free(loop, s, session_free);
}

/* Answer the client with an error and end the session. */
static void fail(struct rt_loop *loop, struct rt_proxy_session *s, int status, const char *why)
{
  char body[600], out[1024];
  int n = snprintf(body, sizeof body, "kiln egress: %s\n", why);
  size_t len = rt_http_response(out, sizeof out, status, "text/plain", body, n > 0 ? (size_t)n : 0);
  if (s->client_fd >= 0) {
    (void)!send(s->client_fd, out, len, MSG_NOSIGNAL | MSG_DONTWAIT);
    rt_loop_del(loop, s->client_fd);
    rt_close_after_send(loop, s->client_fd); /* the answer is not lost on vsock */
    s->client_fd = -1;
  }
  session_end(loop, s);
}

static void tunnel_closed(void *arg, const struct rt_pair_stats *st)
{
  (void)arg;
  (void)st;
}

/* The way out is open: hand both sockets to the splice core. */
static void start_tunnel(struct rt_loop *loop, struct rt_proxy_session *s, const char *to_client,
                         size_t to_client_len)
{
  struct rt_proxy *p = s->proxy;
  /* bytes the client sent after its head go on, behind the rewritten request if any */
  size_t extra = s->head_used - s->head_len;
  size_t to_up_len = s->req.forward_len + extra;
  char *to_up = to_up_len ? malloc(to_up_len) : NULL;
  if (to_up_len && !to_up) {
    fail(loop, s, 500, "out of memory");
    return;
  }
  if (s->req.forward_len)
    memcpy(to_up, s->req.forward, s->req.forward_len);
  if (extra)
    memcpy(to_up + s->req.forward_len, s->head + s->head_len, extra);
  int client = s->client_fd, up = s->up_fd;
  rt_loop_del(loop, client);
  rt_loop_del(loop, up);
  s->client_fd = s->up_fd = -1;
  rt_logf(p->cfg.log, p->cfg.log_arg, "egress opened to %s port %u", s->req.host, s->req.port);
  struct rt_pair_opts opts = {.idle_ms = p->cfg.idle_ms, .on_close = tunnel_closed};
  (void)rt_pair_start(loop, client, up, to_up, to_up_len, to_client, to_client_len, &opts);
  free(to_up);
  session_end(loop, s);
}

static const char established[] = "HTTP/1.1 200 Connection established\r\n\r\n";

static void up_ready(struct rt_loop *loop, struct rt_watch *w, uint32_t events);

static int watch_up(struct rt_loop *loop, struct rt_proxy_session *s, uint32_t ev)
{
  s->up_watch.ready = up_ready;
  return rt_loop_add(loop, s->up_fd, ev, &s->up_watch);
}

/* DIRECT: connect to the next address that the list allows. */
static void connect_next(struct rt_loop *loop, struct rt_proxy_session *s)
{
  struct rt_proxy *p = s->proxy;
  while (s->next_addr < s->naddrs) {
    struct sockaddr_storage *sa = &s->addrs[s->next_addr++];
    if (!rt_egress_check_addr(p->cfg.policy, (struct sockaddr *)sa, s->req.port, s->refused,
                              sizeof s->refused))
      continue;
    struct rt_endpoint ep = {.family = sa->ss_family};
    memcpy(&ep.addr, sa, sizeof *sa);
    if (sa->ss_family == AF_INET) {
      ((struct sockaddr_in *)&ep.addr)->sin_port = htons(s->req.port);
      ep.len = sizeof(struct sockaddr_in);
    } else {
      ((struct sockaddr_in6 *)&ep.addr)->sin6_port = htons(s->req.port);
      ep.len = sizeof(struct sockaddr_in6);
    }
    int in_progress = 0;
    s->up_fd = rt_endpoint_connect(&ep, &in_progress);
    if (s->up_fd < 0) {
      snprintf(s->refused, sizeof s->refused, "cannot connect to %s port %u: %s", s->req.host,
               s->req.port, strerror(errno));
      continue;
    }
    s->state = CONNECTING;
    if (watch_up(loop, s, EPOLLOUT) != 0) {
      fail(loop, s, 500, "cannot watch a socket");
      return;
    }
    return;
  }
  int status = strstr(s->refused, "refused unless") || strstr(s->refused, "denied") ? 403 : 502;
  rt_logf(p->cfg.log, p->cfg.log_arg, "egress %s to %s port %u: %s",
          status == 403 ? "denied" : "failed", s->req.host, s->req.port,
          s->refused[0] ? s->refused : "no address");
  fail(loop, s, status, s->refused[0] ? s->refused : "the name has no address");
}

void rt_proxy_resolved(struct rt_loop *loop, struct rt_proxy_session *s,
                       const struct sockaddr_storage *addrs, size_t n, const char *error)
{
  s->resolving = false;
  if (s->dead) {
    rt_loop_defer_free(loop, s, session_free);
    return;
  }
  if (n == 0) {
    char why[400];
    snprintf(why, sizeof why, "%s does not resolve: %s", s->req.host, error ? error : "no address");
    rt_logf(s->proxy->cfg.log, s->proxy->cfg.log_arg, "egress failed to %s port %u: %s",
            s->req.host, s->req.port, why);
    fail(loop, s, 502, why);
    return;
  }
  s->addrs = malloc(n * sizeof *addrs);
  if (!s->addrs) {
    fail(loop, s, 500, "out of memory");
    return;
  }
  memcpy(s->addrs, addrs, n * sizeof *addrs);
  s->naddrs = n;
  connect_next(loop, s);
}

/* VIA_PARENT: connect to the parent's egress listener and ask it for the same destination. */
static void connect_parent(struct rt_loop *loop, struct rt_proxy_session *s)
{
  int in_progress = 0;
  s->up_fd = rt_endpoint_connect(&s->proxy->cfg.parent, &in_progress);
  if (s->up_fd < 0) {
    char why[300];
    snprintf(why, sizeof why, "the parent instance's egress proxy is not reachable: %s",
             strerror(errno));
    fail(loop, s, 502, why);
    return;
  }
  s->state = CONNECTING;
  if (watch_up(loop, s, EPOLLOUT) != 0)
    fail(loop, s, 500, "cannot watch a socket");
}

static void send_parent_request(struct rt_loop *loop, struct rt_proxy_session *s)
{
  char line[600];
  int host_v6 = strchr(s->req.host, ':') != NULL;
  int n = snprintf(line, sizeof line, "CONNECT %s%s%s:%u HTTP/1.1\r\nHost: %s%s%s:%u\r\n\r\n",
                   host_v6 ? "[" : "", s->req.host, host_v6 ? "]" : "", s->req.port,
                   host_v6 ? "[" : "", s->req.host, host_v6 ? "]" : "", s->req.port);
  if (send(s->up_fd, line, (size_t)n, MSG_NOSIGNAL) != n) {
    fail(loop, s, 502, "the parent instance's egress proxy closed the connection");
    return;
  }
  s->state = READ_PARENT_HEAD;
  if (rt_loop_mod(loop, s->up_fd, EPOLLIN, &s->up_watch) != 0)
    fail(loop, s, 500, "cannot watch a socket");
}

static void read_parent_head(struct rt_loop *loop, struct rt_proxy_session *s)
{
  ssize_t n = recv(s->up_fd, s->up_head + s->up_used, sizeof s->up_head - s->up_used, 0);
  if (n < 0 && (errno == EAGAIN || errno == EINTR))
    return;
  if (n <= 0) {
    fail(loop, s, 502, "the parent instance's egress proxy closed the connection");
    return;
  }
  s->up_used += (size_t)n;
  size_t len = rt_http_head_length(s->up_head, s->up_used);
  if (!len) {
    if (s->up_used == sizeof s->up_head)
      fail(loop, s, 502, "the parent instance's egress proxy sent an oversized answer");
    return;
  }
  char reason[256] = "";
  int status = rt_http_status(s->up_head, len, reason, sizeof reason);
  if (status != 200) {
    /* relay the parent's verdict: its body line says why */
    char why[600];
    const char *body = s->up_head + len;
    size_t blen = s->up_used - len;
    while (blen && (body[blen - 1] == '\n' || body[blen - 1] == '\r'))
      blen--;
    const char *prefix = "kiln egress: ";
    if (blen > strlen(prefix) && strncmp(body, prefix, strlen(prefix)) == 0) {
      body += strlen(prefix);
      blen -= strlen(prefix);
    }
    snprintf(why, sizeof why, "parent refused: %.*s", blen ? (int)blen : (int)strlen(reason),
             blen ? body : reason);
    rt_logf(s->proxy->cfg.log, s->proxy->cfg.log_arg, "egress %s to %s port %u: %s",
            status == 403 ? "denied" : "failed", s->req.host, s->req.port, why);
    fail(loop, s, status > 0 ? status : 502, why);
    return;
  }
  /* bytes after the parent's head are the destination's first bytes: the client gets them */
  size_t extra = s->up_used - len;
  size_t reply_len = (s->req.connect ? sizeof established - 1 : 0) + extra;
  char reply[sizeof established + sizeof s->up_head];
  size_t off = 0;
  if (s->req.connect) {
    memcpy(reply, established, sizeof established - 1);
    off = sizeof established - 1;
  }
  memcpy(reply + off, s->up_head + len, extra);
  start_tunnel(loop, s, reply, reply_len);
}

static void up_ready(struct rt_loop *loop, struct rt_watch *w, uint32_t events)
{
  struct rt_proxy_session *s =
      (struct rt_proxy_session *)((char *)w - offsetof(struct rt_proxy_session, up_watch));
  (void)events;
  if (s->dead)
    return;
  if (s->state == CONNECTING) {
    int err = rt_connect_result(s->up_fd);
    if (err) {
      rt_loop_del(loop, s->up_fd);
      close(s->up_fd);
      s->up_fd = -1;
      if (s->proxy->cfg.mode == RT_PROXY_DIRECT) {
        snprintf(s->refused, sizeof s->refused, "cannot connect to %s port %u: %s", s->req.host,
                 s->req.port, strerror(err));
        connect_next(loop, s);
      } else {
        char why[300];
        snprintf(why, sizeof why, "the parent instance's egress proxy is not reachable: %s",
                 strerror(err));
        fail(loop, s, 502, why);
      }
      return;
    }
    if (s->proxy->cfg.mode == RT_PROXY_DIRECT)
      start_tunnel(loop, s, established, sizeof established - 1);
    else
      send_parent_request(loop, s);
    return;
  }
  if (s->state == READ_PARENT_HEAD)
    read_parent_head(loop, s);
}

/* A whole head is in: parse, check, and open the way out. */
static void handle_head(struct rt_loop *loop, struct rt_proxy_session *s)
{
  struct rt_proxy *p = s->proxy;
  char why[400];
  int status = rt_http_parse_proxy_request(s->head, s->head_len, &s->req, why, sizeof why);
  if (status) {
    fail(loop, s, status, why);
    return;
  }
  if (p->cfg.mode == RT_PROXY_DIRECT && !s->req.connect) {
    fail(loop, s, 405, "the parent's egress proxy takes CONNECT only");
    return;
  }
  if (!rt_egress_check_host(p->cfg.policy, s->req.host, s->req.port, why, sizeof why)) {
    rt_logf(p->cfg.log, p->cfg.log_arg, "egress denied to %s port %u: %s", s->req.host, s->req.port,
            why);
    fail(loop, s, 403, why);
    return;
  }
  rt_loop_del(loop, s->client_fd); /* the client waits until the way out is open */
  s->deadline = rt_now_ms() + p->cfg.connect_timeout_ms;
  if (p->cfg.mode == RT_PROXY_VIA_PARENT) {
    connect_parent(loop, s);
    return;
  }
  struct sockaddr_storage literal;
  memset(&literal, 0, sizeof literal);
  if (inet_pton(AF_INET, s->req.host, &((struct sockaddr_in *)&literal)->sin_addr) == 1 ||
      inet_pton(AF_INET6, s->req.host, &((struct sockaddr_in6 *)&literal)->sin6_addr) == 1) {
    literal.ss_family = strchr(s->req.host, ':') ? AF_INET6 : AF_INET;
    rt_proxy_resolved(loop, s, &literal, 1, NULL); /* an IP address: nothing to resolve */
    return;
  }
  s->state = RESOLVING;
  s->resolving = true;
  if (p->cfg.resolve(p->cfg.resolve_arg, s, s->req.host) != 0) {
    s->resolving = false;
    fail(loop, s, 502, "the name cannot be resolved here");
  }
}

static void client_ready(struct rt_loop *loop, struct rt_watch *w, uint32_t events)
{
  struct rt_proxy_session *s = (struct rt_proxy_session *)w;
  (void)events;
  if (s->dead || s->state != READ_HEAD)
    return;
  ssize_t n = recv(s->client_fd, s->head + s->head_used, sizeof s->head - s->head_used, 0);
  if (n < 0 && (errno == EAGAIN || errno == EINTR))
    return;
  if (n <= 0) {
    session_end(loop, s);
    return;
  }
  s->head_used += (size_t)n;
  s->head_len = rt_http_head_length(s->head, s->head_used);
  if (s->head_len)
    handle_head(loop, s);
  else if (s->head_used == sizeof s->head)
    fail(loop, s, 431, "the request head is larger than 8 KiB");
}

static int peer_allowed(struct rt_proxy *p, const struct sockaddr_storage *peer)
{
  if (!p->cfg.allowed_peer_cid || peer->ss_family != AF_VSOCK)
    return 1;
  return ((const struct sockaddr_vm *)peer)->svm_cid == p->cfg.allowed_peer_cid;
}

static void accept_ready(struct rt_loop *loop, struct rt_watch *w, uint32_t events)
{
  struct rt_proxy *p = (struct rt_proxy *)w;
  (void)events;
  for (int i = 0; i < 64; i++) {
    struct sockaddr_storage peer;
    socklen_t len = sizeof peer;
    int fd = accept4(p->listen_fd, (struct sockaddr *)&peer, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0)
      return;
    if (!peer_allowed(p, &peer)) {
      char text[64];
      rt_sockaddr_format((struct sockaddr *)&peer, len, text, sizeof text);
      rt_logf(p->cfg.log, p->cfg.log_arg,
              "egress connection from %s refused: not the enclave's CID %u", text,
              p->cfg.allowed_peer_cid);
      close(fd);
      continue;
    }
    struct rt_proxy_session *s = calloc(1, sizeof *s);
    if (!s || p->pending + rt_pair_count() >= p->cfg.max_connections) {
      static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
                                 "Connection: close\r\n\r\n";
      (void)!send(fd, busy, sizeof busy - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
      close(fd);
      free(s);
      continue;
    }
    s->proxy = p;
    s->client_fd = fd;
    s->up_fd = -1;
    s->state = READ_HEAD;
    s->deadline = rt_now_ms() + p->cfg.head_timeout_ms;
    s->client_watch.ready = client_ready;
    s->next = p->sessions;
    if (p->sessions)
      p->sessions->prev = s;
    p->sessions = s;
    p->pending++;
    if (rt_loop_add(loop, fd, EPOLLIN, &s->client_watch) != 0)
      session_end(loop, s);
  }
}

static void expire(struct rt_loop *loop, void *arg, uint64_t now)
{
  struct rt_proxy *p = arg;
  for (struct rt_proxy_session *s = p->sessions, *next; s; s = next) {
    next = s->next;
    if (now < s->deadline)
      continue;
    if (s->state == READ_HEAD) {
      fail(loop, s, 408, "no complete request head in time");
    } else {
      char why[300];
      snprintf(why, sizeof why, "%s port %u did not answer within %u s", s->req.host, s->req.port,
               p->cfg.connect_timeout_ms / 1000);
      rt_logf(p->cfg.log, p->cfg.log_arg, "egress failed to %s port %u: timed out", s->req.host,
              s->req.port);
      fail(loop, s, 504, why);
    }
  }
}

static void stop_on_free(struct rt_loop *loop, void *arg)
{
  rt_proxy_stop(loop, arg);
}

struct rt_proxy *rt_proxy_start(struct rt_loop *loop, int listen_fd,
                                const struct rt_proxy_config *config)
{
  struct rt_proxy *p = calloc(1, sizeof *p);
  if (!p)
    return NULL;
  p->cfg = *config;
  if (!p->cfg.head_timeout_ms)
    p->cfg.head_timeout_ms = 10000;
  if (!p->cfg.connect_timeout_ms)
    p->cfg.connect_timeout_ms = 30000;
  if (!p->cfg.idle_ms)
    p->cfg.idle_ms = 600000;
  if (!p->cfg.max_connections)
    p->cfg.max_connections = 4096;
  p->listen_fd = listen_fd;
  p->watch.ready = accept_ready;
  if (rt_loop_add(loop, listen_fd, EPOLLIN, &p->watch) != 0 ||
      rt_loop_every(loop, expire, p) != 0 || rt_loop_on_free(loop, stop_on_free, p) != 0) {
    free(p);
    return NULL;
  }
  return p;
}

void rt_proxy_stop(struct rt_loop *loop, struct rt_proxy *proxy)
{
  if (!proxy)
    return;
  while (proxy->sessions)
    session_end(loop, proxy->sessions);
  rt_loop_del(loop, proxy->listen_fd);
  close(proxy->listen_fd);
  free(proxy);
}

size_t rt_proxy_pending(const struct rt_proxy *proxy)
{
  return proxy->pending;
}
