/* Socket endpoints of the runtime, written as text so every program and test names them the same
 * way: "vsock:CID:PORT" (CID may be "any"), "tcp:HOST:PORT" (HOST an IPv4/IPv6 literal, IPv6 in
 * brackets), "unix:PATH". Parsing, listening and non-blocking connecting. */
#ifndef KILN_RT_ENDPOINT_H
#define KILN_RT_ENDPOINT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct rt_endpoint {
  struct sockaddr_storage addr;
  socklen_t len;
  int family; /* AF_VSOCK, AF_INET, AF_INET6, AF_UNIX */
};

/* 0, or -1 with a message in why (why_size bytes). */
int rt_endpoint_parse(const char *text, struct rt_endpoint *ep, char *why, size_t why_size);

/* Text form of an endpoint ("vsock:16:8080", "tcp:127.0.0.1:80", "unix:/path"). */
void rt_endpoint_format(const struct rt_endpoint *ep, char *out, size_t size);

/* Text form of a socket address (an accepted peer). */
void rt_sockaddr_format(const struct sockaddr *sa, socklen_t len, char *out, size_t size);

/* A listening, non-blocking, close-on-exec socket; -1 with errno. */
int rt_endpoint_listen(const struct rt_endpoint *ep, int backlog);

/* A non-blocking connect; the fd, or -1 with errno. *in_progress is set when the connect
 * completes later (wait for EPOLLOUT, then rt_connect_result). */
int rt_endpoint_connect(const struct rt_endpoint *ep, int *in_progress);

/* After EPOLLOUT on a connecting socket: 0 when connected, else the errno of the failure. */
int rt_connect_result(int fd);

#endif
