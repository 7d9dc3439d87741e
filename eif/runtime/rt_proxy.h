/* The egress proxy, one state machine for both ends: it accepts a client, reads its request
 * head, checks the egress list, opens the way to the destination and then hands both sockets to
 * the splice core.
 *   - In the enclave (kiln-agent) the client is the app on 127.0.0.1:3128 (CONNECT or an
 *     absolute http:// request); the way out is a vsock connection to the parent, on which the
 *     same CONNECT is sent and a 200 awaited (RT_PROXY_VIA_PARENT).
 *   - On the parent (kiln-host) the client is the enclave on vsock 7700 (CONNECT only); the way
 *     out is DNS resolution, a check of every address and a TCP connect (RT_PROXY_DIRECT).
 * Denied destinations get 403 with a one-line reason; unreachable ones 502; slow ones 504. */
#ifndef KILN_RT_PROXY_H
#define KILN_RT_PROXY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "rt_egress.h"
#include "rt_endpoint.h"
#include "rt_loop.h"

enum rt_proxy_mode { RT_PROXY_VIA_PARENT, RT_PROXY_DIRECT };

struct rt_proxy_session;

struct rt_proxy_config {
  enum rt_proxy_mode mode;
  const struct rt_egress *policy;
  struct rt_endpoint parent;   /* VIA_PARENT: where the parent's egress listens */
  uint32_t allowed_peer_cid;   /* DIRECT on vsock: accept only this CID (0 = any) */
  unsigned head_timeout_ms;    /* to receive the request head (default 10 s) */
  unsigned connect_timeout_ms; /* to reach the destination (default 30 s) */
  unsigned idle_ms;            /* tunnels idle longer are closed (default 10 min) */
  size_t max_connections;      /* sessions + tunnels (default 4096) */
  /* DIRECT: start resolving host; the resolver calls rt_proxy_resolved later (or at once). */
  int (*resolve)(void *arg, struct rt_proxy_session *s, const char *host);
  void *resolve_arg;
  /* One line per decision ("egress allowed ...", "egress denied ..."). */
  void (*log)(void *arg, const char *line);
  void *log_arg;
};

struct rt_proxy;

/* Listen on `listen_fd` (already listening, non-blocking) with this configuration (copied). */
struct rt_proxy *rt_proxy_start(struct rt_loop *loop, int listen_fd,
                                const struct rt_proxy_config *config);
void rt_proxy_stop(struct rt_loop *loop, struct rt_proxy *proxy);

/* Resolver result for session s: n addresses (port ignored), or n = 0 and the reason. */
void rt_proxy_resolved(struct rt_loop *loop, struct rt_proxy_session *s,
                       const struct sockaddr_storage *addrs, size_t n, const char *error);

/* Sessions still before their tunnel (for tests and shutdown checks). */
size_t rt_proxy_pending(const struct rt_proxy *proxy);

#endif
