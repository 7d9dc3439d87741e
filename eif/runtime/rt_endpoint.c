/* Socket endpoints of the runtime (see rt_endpoint.h). */
#define _GNU_SOURCE
#include "rt_endpoint.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <linux/vm_sockets.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

static int parse_u32(const char *s, unsigned long max, uint32_t *out)
{
  if (!*s || strspn(s, "0123456789") != strlen(s) || strlen(s) > 10)
    return -1;
  unsigned long v = strtoul(s, NULL, 10);
  if (v > max)
    return -1;
  *out = (uint32_t)v;
  return 0;
}

static int parse_vsock(const char *rest, struct rt_endpoint *ep, char *why, size_t n)
{
  char cid[16];
  const char *colon = strchr(rest, ':');
  uint32_t c = 0, port = 0;
  if (!colon || (size_t)(colon - rest) >= sizeof cid) {
    snprintf(why, n, "vsock endpoint needs CID:PORT");
    return -1;
  }
  memcpy(cid, rest, (size_t)(colon - rest));
  cid[colon - rest] = '\0';
  if (strcmp(cid, "any") == 0)
    c = VMADDR_CID_ANY;
  else if (parse_u32(cid, UINT32_MAX, &c) != 0) {
    snprintf(why, n, "vsock CID \"%s\" is not a number or \"any\"", cid);
    return -1;
  }
  if (parse_u32(colon + 1, UINT32_MAX - 1, &port) != 0) {
    snprintf(why, n, "vsock port \"%s\" is not a number", colon + 1);
    return -1;
  }
  struct sockaddr_vm *vm = (struct sockaddr_vm *)&ep->addr;
  vm->svm_family = AF_VSOCK;
  vm->svm_cid = c;
  vm->svm_port = port;
  ep->len = sizeof *vm;
  ep->family = AF_VSOCK;
  return 0;
}

static int parse_tcp(const char *rest, struct rt_endpoint *ep, char *why, size_t n)
{
  char host[64];
  const char *port_text;
  if (rest[0] == '[') {
    const char *close = strchr(rest, ']');
    if (!close || close[1] != ':' || (size_t)(close - rest - 1) >= sizeof host) {
      snprintf(why, n, "tcp endpoint needs [IPv6]:PORT");
      return -1;
    }
    memcpy(host, rest + 1, (size_t)(close - rest - 1));
    host[close - rest - 1] = '\0';
    port_text = close + 2;
  } else {
    const char *colon = strrchr(rest, ':');
    if (!colon || (size_t)(colon - rest) >= sizeof host) {
      snprintf(why, n, "tcp endpoint needs HOST:PORT");
      return -1;
    }
    memcpy(host, rest, (size_t)(colon - rest));
    host[colon - rest] = '\0';
    port_text = colon + 1;
  }
  uint32_t port = 0;
  if (parse_u32(port_text, 65535, &port) != 0) {
    snprintf(why, n, "tcp port \"%s\" is not a number from 0 to 65535", port_text);
    return -1;
  }
  struct sockaddr_in *in4 = (struct sockaddr_in *)&ep->addr;
  struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ep->addr;
  if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
    in4->sin_family = AF_INET;
    in4->sin_port = htons((uint16_t)port);
    ep->len = sizeof *in4;
    ep->family = AF_INET;
  } else if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons((uint16_t)port);
    ep->len = sizeof *in6;
    ep->family = AF_INET6;
  } else {
    snprintf(why, n, "tcp host \"%s\" is not an IP address", host);
    return -1;
  }
  return 0;
}

int rt_endpoint_parse(const char *text, struct rt_endpoint *ep, char *why, size_t why_size)
{
  memset(ep, 0, sizeof *ep);
  if (strncmp(text, "vsock:", 6) == 0)
    return parse_vsock(text + 6, ep, why, why_size);
  if (strncmp(text, "tcp:", 4) == 0)
    return parse_tcp(text + 4, ep, why, why_size);
  if (strncmp(text, "unix:", 5) == 0) {
    struct sockaddr_un *un = (struct sockaddr_un *)&ep->addr;
    size_t len = strlen(text + 5);
    if (len == 0 || len >= sizeof un->sun_path) {
      snprintf(why, why_size, "unix socket path is empty or longer than %zu bytes",
               sizeof un->sun_path - 1);
      return -1;
    }
    un->sun_family = AF_UNIX;
    memcpy(un->sun_path, text + 5, len + 1);
    ep->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + 1);
    ep->family = AF_UNIX;
    return 0;
  }
  snprintf(why, why_size, "\"%s\" is not an endpoint (vsock:CID:PORT, tcp:HOST:PORT or unix:PATH)",
           text);
  return -1;
}

void rt_sockaddr_format(const struct sockaddr *sa, socklen_t len, char *out, size_t size)
{
  char ip[INET6_ADDRSTRLEN];
  (void)len;
  switch (sa->sa_family) {
  case AF_VSOCK: {
    const struct sockaddr_vm *vm = (const struct sockaddr_vm *)sa;
    if (vm->svm_cid == VMADDR_CID_ANY)
      snprintf(out, size, "vsock:any:%u", vm->svm_port);
    else
      snprintf(out, size, "vsock:%u:%u", vm->svm_cid, vm->svm_port);
    break;
  }
  case AF_INET: {
    const struct sockaddr_in *in4 = (const struct sockaddr_in *)sa;
    inet_ntop(AF_INET, &in4->sin_addr, ip, sizeof ip);
    snprintf(out, size, "tcp:%s:%u", ip, ntohs(in4->sin_port));
    break;
  }
  case AF_INET6: {
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
    inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof ip);
    snprintf(out, size, "tcp:[%s]:%u", ip, ntohs(in6->sin6_port));
    break;
  }
  case AF_UNIX: snprintf(out, size, "unix:%s", ((const struct sockaddr_un *)sa)->sun_path); break;
  default: snprintf(out, size, "family %d", sa->sa_family);
  }
}

void rt_endpoint_format(const struct rt_endpoint *ep, char *out, size_t size)
{
  rt_sockaddr_format((const struct sockaddr *)&ep->addr, ep->len, out, size);
}

int rt_endpoint_listen(const struct rt_endpoint *ep, int backlog)
{
  int fd = socket(ep->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -1;
  int one = 1;
  if (ep->family == AF_INET || ep->family == AF_INET6)
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (ep->family == AF_UNIX)
    unlink(((const struct sockaddr_un *)&ep->addr)->sun_path);
  if (bind(fd, (const struct sockaddr *)&ep->addr, ep->len) != 0 || listen(fd, backlog) != 0) {
    int e = errno;
    close(fd);
    errno = e;
    return -1;
  }
  return fd;
}

int rt_endpoint_connect(const struct rt_endpoint *ep, int *in_progress)
{
  *in_progress = 0;
  int fd = socket(ep->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -1;
  if (ep->family == AF_INET || ep->family == AF_INET6) {
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  if (connect(fd, (const struct sockaddr *)&ep->addr, ep->len) != 0) {
    if (errno == EINPROGRESS || errno == EAGAIN) {
      *in_progress = 1;
      return fd;
    }
    int e = errno;
    close(fd);
    errno = e;
    return -1;
  }
  return fd;
}

int rt_connect_result(int fd)
{
  int err = 0;
  socklen_t len = sizeof err;
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
    return errno;
  return err;
}
