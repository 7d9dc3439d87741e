/* The egress allow/deny list, checked in the enclave (by name or IP literal, before anything
 * leaves) and again on the parent (by name, then every resolved address). Entries: "host:port",
 * "*.suffix:port" (one label), "**.suffix:port" (any depth), "IP:port", "CIDR:port",
 * "[IPv6]:port", "[IPv6/len]:port"; port may be "*". Deny beats allow; nothing is allowed by
 * default; link-local (the instance metadata service), loopback, unspecified addresses and the
 * parent's own addresses are refused unless an allow entry names that address exactly. */
#ifndef KILN_RT_EGRESS_H
#define KILN_RT_EGRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define RT_EGRESS_MAX_ENTRIES 1024

struct rt_egress_entry {
  char text[300];   /* as written, for messages */
  int kind;         /* RT_EGRESS_NAME, _ONE_LABEL, _ANY_DEPTH, _ADDR */
  char name[256];   /* lower case, no wildcard prefix, no trailing dot */
  int family;       /* AF_INET / AF_INET6 for _ADDR */
  uint8_t addr[16]; /* network address */
  int prefix;       /* prefix length in bits */
  uint16_t port;    /* 0 = any port */
};

enum { RT_EGRESS_NAME = 1, RT_EGRESS_ONE_LABEL, RT_EGRESS_ANY_DEPTH, RT_EGRESS_ADDR };

struct rt_egress {
  struct rt_egress_entry *allow, *deny;
  size_t nallow, ndeny;
  /* the parent's own addresses (kiln-host fills them in), refused like loopback */
  struct rt_egress_entry *own;
  size_t nown;
};

/* Parse one entry ("deny" selects the list); 0, or -1 with the reason in why. */
int rt_egress_add(struct rt_egress *list, bool deny, const char *text, char *why, size_t why_size);
int rt_egress_add_own_address(struct rt_egress *list, int family, const void *addr);
void rt_egress_free(struct rt_egress *list);

/* May a connection to host:port be opened? host is a name or an IP literal (IPv6 with or without
 * brackets). 1 = allowed, 0 = refused with the one-line reason in why. */
int rt_egress_check_host(const struct rt_egress *list, const char *host, uint16_t port, char *why,
                         size_t why_size);

/* After resolving an allowed name: may this address be connected to? Deny entries with
 * addresses, the refused ranges and the parent's own addresses apply. 1 or 0 (+ why). */
int rt_egress_check_addr(const struct rt_egress *list, const struct sockaddr *sa, uint16_t port,
                         char *why, size_t why_size);

#endif
