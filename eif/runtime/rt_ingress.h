/* Ingress: accept on one endpoint, connect to another, splice. The same module serves both
 * ends: kiln-host (TCP on the parent -> vsock into the enclave, optionally writing a PROXY v2
 * header with the real client address) and kiln-agent (vsock -> the app on 127.0.0.1, retrying
 * while the app is still starting, and checking the PROXY v2 header on ports that use it). */
#ifndef KILN_RT_INGRESS_H
#define KILN_RT_INGRESS_H

#include <stddef.h>
#include <stdint.h>

#include "rt_endpoint.h"
#include "rt_loop.h"

enum rt_pp_mode { RT_PP_NONE, RT_PP_ADD, RT_PP_EXPECT };

struct rt_ingress_config {
  struct rt_endpoint listen, target;
  enum rt_pp_mode pp;
  unsigned connect_wait_ms; /* keep retrying a refused connect this long (default 30 s) */
  unsigned idle_ms;         /* default 10 min */
  size_t max_connections;   /* all pairs + pending (default 4096) */
  void (*log)(void *arg, const char *line);
  void *log_arg;
};

struct rt_ingress;
struct rt_config;

/* Listen on cfg->listen (bound here); NULL with errno when it cannot. */
struct rt_ingress *rt_ingress_start(struct rt_loop *loop, const struct rt_ingress_config *cfg);
size_t rt_ingress_pending(const struct rt_ingress *in);

/* Start every ingress line of a configuration; ports with proxy-protocol use mode pp (kiln-host
 * adds the header, kiln-agent checks it). Each listener is logged; -1 (logged) when one cannot
 * listen. */
int rt_ingress_start_config(struct rt_loop *loop, const struct rt_config *cfg, enum rt_pp_mode pp,
                            void (*log)(void *, const char *), void *log_arg);

#endif
