/* kiln-host: the parent-instance side of kiln's runtime (a systemd service on the enclave's
 * instance). Ingress: TCP on the instance -> vsock into the enclave (optionally with a PROXY v2
 * header carrying the client's address); egress: CONNECT requests from the enclave on vsock 7700,
 * checked again against the same list, names resolved here (c-ares), every address checked
 * (never the instance metadata service, loopback or this instance's own addresses unless named
 * exactly); logs: records from the enclave on vsock 7701 -> stdout (journald) and a size-capped
 * file. Configuration: /etc/kiln/host.conf written by kiln's user data (see rt_config.h). */
#define _GNU_SOURCE
#include <ares.h>
#include <errno.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "rt_config.h"
#include "rt_ingress.h"
#include "rt_logs.h"
#include "rt_loop.h"
#include "rt_pair.h"
#include "rt_proxy.h"

#define MAX_DNS_SOCKETS 16

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
  (void)sig;
  stop_requested = 1;
}

static void host_log(void *arg, const char *line)
{
  (void)arg;
  char stamp[32];
  rt_log_time(stamp);
  fprintf(stderr, "%s kiln-host: %s\n", stamp, line);
}

/* ------------------------------------------------------------- DNS with c-ares in the loop */

struct dns_socket {
  struct rt_watch watch;
  int fd;
};

struct dns {
  ares_channel channel;
  struct rt_loop *loop;
  struct dns_socket sockets[MAX_DNS_SOCKETS];
};

static struct dns the_dns;

static void dns_ready(struct rt_loop *loop, struct rt_watch *w, uint32_t events)
{
  (void)loop;
  struct dns_socket *s = (struct dns_socket *)w;
  ares_process_fd(the_dns.channel,
                  events & (EPOLLIN | EPOLLERR | EPOLLHUP) ? s->fd : ARES_SOCKET_BAD,
                  events & EPOLLOUT ? s->fd : ARES_SOCKET_BAD);
}

static void dns_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
  struct dns *d = data;
  struct dns_socket *slot = NULL, *free_slot = NULL;
  for (int i = 0; i < MAX_DNS_SOCKETS; i++) {
    if (d->sockets[i].fd == fd)
      slot = &d->sockets[i];
    else if (d->sockets[i].fd < 0 && !free_slot)
      free_slot = &d->sockets[i];
  }
  uint32_t ev = (readable ? EPOLLIN : 0) | (writable ? EPOLLOUT : 0);
  if (!readable && !writable) {
    if (slot) {
      rt_loop_del(d->loop, fd);
      slot->fd = -1;
    }
    return;
  }
  if (slot) {
    rt_loop_mod(d->loop, fd, ev, &slot->watch);
  } else if (free_slot) {
    free_slot->fd = fd;
    free_slot->watch.ready = dns_ready;
    rt_loop_add(d->loop, fd, ev, &free_slot->watch);
  }
}

static void dns_tick(struct rt_loop *loop, void *arg, uint64_t now)
{
  (void)loop;
  (void)now;
  struct dns *d = arg;
  ares_process_fd(d->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD); /* timeouts */
}

struct lookup {
  struct rt_loop *loop;
  struct rt_proxy_session *session;
};

static void dns_done(void *arg, int status, int timeouts, struct ares_addrinfo *res)
{
  (void)timeouts;
  struct lookup *l = arg;
  struct sockaddr_storage addrs[16];
  memset(addrs, 0, sizeof addrs);
  size_t n = 0;
  for (struct ares_addrinfo_node *node = res ? res->nodes : NULL; node && n < 16;
       node = node->ai_next) {
    if (node->ai_family != AF_INET && node->ai_family != AF_INET6)
      continue;
    memset(&addrs[n], 0, sizeof addrs[n]);
    memcpy(&addrs[n], node->ai_addr, (size_t)node->ai_addrlen);
    n++;
  }
  rt_proxy_resolved(l->loop, l->session, addrs, n,
                    status == ARES_SUCCESS ? NULL : ares_strerror(status));
  if (res)
    ares_freeaddrinfo(res);
  free(l);
}

static int dns_resolve(void *arg, struct rt_proxy_session *s, const char *host)
{
  struct dns *d = arg;
  struct lookup *l = malloc(sizeof *l);
  if (!l)
    return -1;
  l->loop = d->loop;
  l->session = s;
  struct ares_addrinfo_hints hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
  ares_getaddrinfo(d->channel, host, NULL, &hints, dns_done, l);
  return 0;
}

static int dns_init(struct dns *d, struct rt_loop *loop, const char *mode)
{
  memset(d, 0, sizeof *d);
  d->loop = loop;
  for (int i = 0; i < MAX_DNS_SOCKETS; i++)
    d->sockets[i].fd = -1;
  if (ares_library_init(ARES_LIB_INIT_ALL) != ARES_SUCCESS)
    return -1;
  struct ares_options opts;
  memset(&opts, 0, sizeof opts);
  opts.sock_state_cb = dns_sock_state;
  opts.sock_state_cb_data = d;
  opts.lookups = strcmp(mode, "files") == 0 ? "f" : strcmp(mode, "dns") == 0 ? "b" : "fb";
  opts.timeout = 3000;
  opts.tries = 2;
  int mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_LOOKUPS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES;
  if (ares_init_options(&d->channel, &opts, mask) != ARES_SUCCESS)
    return -1;
  return rt_loop_every(loop, dns_tick, d);
}

/* ------------------------------------------------------------- the program */

static void usage(FILE *out)
{
  fprintf(out,
          "Usage: kiln-host [-c FILE] [-e DIRECTIVE]... [--check]\n"
          "The parent-instance side of kiln's enclave runtime. Directives (one a line in FILE,\n"
          "normally /etc/kiln/host.conf, or each with -e):\n"
          "  enclave-cid N                       the enclave's CID (egress/logs only from it)\n"
          "  ingress tcp:0.0.0.0:443 vsock:16:8443 [proxy-protocol]   public port -> enclave\n"
          "  allow HOST:PORT | deny HOST:PORT    the egress list, as measured into the EIF\n"
          "  egress-listen vsock:any:7700        where the enclave's egress requests arrive\n"
          "  logs-listen vsock:any:7701          where the enclave's log records arrive\n"
          "  log-file /var/log/kiln/app.log      records also go here (rotated at log-file-max)\n"
          "  log-file-max 67108864\n"
          "  dns files,dns                       resolve names with /etc/hosts and DNS\n"
          "  ingress-wait 30                     retry a refused connect this long (seconds)\n"
          "Endpoints: vsock:CID:PORT, tcp:IP:PORT, unix:PATH. --check validates and exits.\n");
}

static int parse_args(int argc, char **argv, struct rt_config *cfg, int *check)
{
  char why[600];
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
      usage(stdout);
      exit(0);
    }
    if (strcmp(argv[i], "--check") == 0) {
      *check = 1;
      continue;
    }
    if ((strcmp(argv[i], "-c") != 0 && strcmp(argv[i], "-e") != 0) || i + 1 >= argc) {
      fprintf(stderr, "kiln-host: unknown option or missing value: %s\n", argv[i]);
      usage(stderr);
      return -1;
    }
    int bad = argv[i][1] == 'c' ? rt_config_file(cfg, argv[i + 1], why, sizeof why)
                                : rt_config_line(cfg, argv[i + 1], why, sizeof why);
    if (bad) {
      fprintf(stderr, "kiln-host: %s%s\n", argv[i][1] == 'e' ? "-e: " : "", why);
      return -1;
    }
    i++;
  }
  return 0;
}

/* This instance's own addresses: refused as egress destinations unless named exactly. */
static void add_own_addresses(struct rt_config *cfg)
{
  struct ifaddrs *ifs = NULL;
  if (getifaddrs(&ifs) != 0)
    return;
  for (struct ifaddrs *i = ifs; i; i = i->ifa_next) {
    if (!i->ifa_addr)
      continue;
    if (i->ifa_addr->sa_family == AF_INET)
      rt_egress_add_own_address(&cfg->egress, AF_INET,
                                &((struct sockaddr_in *)i->ifa_addr)->sin_addr);
    else if (i->ifa_addr->sa_family == AF_INET6)
      rt_egress_add_own_address(&cfg->egress, AF_INET6,
                                &((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr);
  }
  freeifaddrs(ifs);
}

static int start_services(struct rt_loop *loop, struct rt_config *cfg)
{
  char text[80];
  if (rt_ingress_start_config(loop, cfg, RT_PP_ADD, host_log, NULL) != 0)
    return -1;
  if (cfg->has_egress_listen) {
    rt_endpoint_format(&cfg->egress_listen, text, sizeof text);
    int fd = rt_endpoint_listen(&cfg->egress_listen, 1024);
    struct rt_proxy_config pc = {.mode = RT_PROXY_DIRECT,
                                 .policy = &cfg->egress,
                                 .allowed_peer_cid = cfg->enclave_cid,
                                 .resolve = dns_resolve,
                                 .resolve_arg = &the_dns,
                                 .log = host_log};
    if (fd < 0 || dns_init(&the_dns, loop, cfg->dns) != 0 || !rt_proxy_start(loop, fd, &pc)) {
      rt_logf(host_log, NULL, "egress: cannot listen on %s: %s", text, strerror(errno));
      return -1;
    }
    rt_logf(host_log, NULL, "egress on %s: %zu allow and %zu deny entries, names resolved with %s",
            text, cfg->egress.nallow, cfg->egress.ndeny, cfg->dns);
  }
  if (cfg->has_logs_listen) {
    rt_endpoint_format(&cfg->logs_listen, text, sizeof text);
    int fd = rt_endpoint_listen(&cfg->logs_listen, 16);
    if (fd < 0 ||
        !rt_log_receiver_start(loop, fd, cfg->enclave_cid, cfg->log_file, cfg->log_file_max)) {
      rt_logf(host_log, NULL, "logs: cannot listen on %s: %s", text, strerror(errno));
      return -1;
    }
    rt_logf(host_log, NULL, "log records on %s -> stdout%s%s", text,
            cfg->log_file[0] ? " and " : "", cfg->log_file);
  }
  return 0;
}

int main(int argc, char **argv)
{
  struct rt_config cfg;
  int check = 0;
  rt_config_init(&cfg);
  if (parse_args(argc, argv, &cfg, &check) != 0) {
    rt_config_free(&cfg);
    return 2;
  }
  if (check) {
    printf("kiln-host: configuration valid: %zu ingress, %zu allow, %zu deny\n", cfg.ningress,
           cfg.egress.nallow, cfg.egress.ndeny);
    rt_config_free(&cfg);
    return 0;
  }
  add_own_addresses(&cfg);
  signal(SIGPIPE, SIG_IGN);
  struct sigaction sa = {.sa_handler = on_signal};
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  setvbuf(stdout, NULL, _IONBF, 0);
  struct rt_loop *loop = rt_loop_new();
  int rc = -1;
  if (loop && start_services(loop, &cfg) == 0 && rt_pair_watch_idle(loop) == 0) {
    rc = rt_loop_run(loop, &stop_requested);
    rt_logf(host_log, NULL, "stopping: %zu connections closed", rt_pair_count());
  }
  if (the_dns.channel) /* lookups still running end now, while their sessions exist */
    ares_destroy(the_dns.channel);
  if (loop) {
    rt_pair_close_all(loop);
    rt_loop_free(loop);
  }
  ares_library_cleanup();
  rt_config_free(&cfg);
  return rc ? 1 : 0;
}
