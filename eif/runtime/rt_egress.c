/* The egress allow/deny list (see rt_egress.h). */
#define _GNU_SOURCE
#include "rt_egress.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int parse_port(const char *s, uint16_t *port)
{
  if (strcmp(s, "*") == 0) {
    *port = 0;
    return 0;
  }
  if (!*s || strlen(s) > 5 || strspn(s, "0123456789") != strlen(s))
    return -1;
  long v = strtol(s, NULL, 10);
  if (v < 1 || v > 65535)
    return -1;
  *port = (uint16_t)v;
  return 0;
}

static int valid_name(const char *name)
{
  size_t len = strlen(name);
  if (len == 0 || len > 253 || name[0] == '.' || name[len - 1] == '.' || strstr(name, ".."))
    return 0;
  for (const char *p = name; *p; p++)
    if (!isalnum((unsigned char)*p) && *p != '-' && *p != '.' && *p != '_')
      return 0;
  return 1;
}

/* "10.1.0.0/16" or "fd00::1" into family/addr/prefix; 0 or -1. */
static int parse_addr(const char *text, struct rt_egress_entry *e)
{
  char buf[64];
  if (strlen(text) >= sizeof buf)
    return -1;
  strcpy(buf, text);
  char *slash = strchr(buf, '/');
  if (slash)
    *slash = '\0';
  if (inet_pton(AF_INET, buf, e->addr) == 1) {
    e->family = AF_INET;
    e->prefix = 32;
  } else if (inet_pton(AF_INET6, buf, e->addr) == 1) {
    e->family = AF_INET6;
    e->prefix = 128;
  } else {
    return -1;
  }
  if (slash) {
    char *end = NULL;
    long p = strtol(slash + 1, &end, 10);
    if (!slash[1] || *end || p < 0 || p > e->prefix)
      return -1;
    e->prefix = (int)p;
  }
  return 0;
}

/* Split "HOST:PORT" / "[V6]:PORT" into host text and port text. */
static int split_host_port(const char *text, char *host, size_t hsize, const char **port)
{
  if (text[0] == '[') {
    const char *close = strchr(text, ']');
    if (!close || close[1] != ':' || (size_t)(close - text - 1) >= hsize)
      return -1;
    memcpy(host, text + 1, (size_t)(close - text - 1));
    host[close - text - 1] = '\0';
    *port = close + 2;
    return 0;
  }
  const char *colon = strrchr(text, ':');
  if (!colon || (size_t)(colon - text) >= hsize || memchr(text, ':', (size_t)(colon - text)))
    return -1;
  memcpy(host, text, (size_t)(colon - text));
  host[colon - text] = '\0';
  *port = colon + 1;
  return 0;
}

static void lower(char *s)
{
  for (; *s; s++)
    *s = (char)tolower((unsigned char)*s);
}

int rt_egress_add(struct rt_egress *list, bool deny, const char *text, char *why, size_t why_size)
{
  struct rt_egress_entry e;
  memset(&e, 0, sizeof e);
  char host[260];
  const char *port_text = NULL;
  if (strlen(text) >= sizeof e.text || split_host_port(text, host, sizeof host, &port_text) != 0) {
    snprintf(why, why_size, "\"%s\" is not HOST:PORT (IPv6 in brackets; port a number or *)", text);
    return -1;
  }
  snprintf(e.text, sizeof e.text, "%s", text);
  if (parse_port(port_text, &e.port) != 0) {
    snprintf(why, why_size, "\"%s\": port \"%s\" is not 1-65535 or *", text, port_text);
    return -1;
  }
  lower(host);
  if (parse_addr(host, &e) == 0) {
    e.kind = RT_EGRESS_ADDR;
  } else {
    const char *name = host;
    e.kind = RT_EGRESS_NAME;
    if (strncmp(host, "**.", 3) == 0) {
      e.kind = RT_EGRESS_ANY_DEPTH;
      name = host + 3;
    } else if (strncmp(host, "*.", 2) == 0) {
      e.kind = RT_EGRESS_ONE_LABEL;
      name = host + 2;
    }
    if (strchr(host, '/') || !valid_name(name)) {
      snprintf(why, why_size,
               "\"%s\": \"%s\" is not a host name, *.suffix, **.suffix, IP address or CIDR", text,
               host);
      return -1;
    }
    if (strlen(name) >= sizeof e.name) {
      snprintf(why, why_size, "\"%s\": the host name is too long", text);
      return -1;
    }
    memcpy(e.name, name, strlen(name) + 1);
  }
  struct rt_egress_entry **arr = deny ? &list->deny : &list->allow;
  size_t *n = deny ? &list->ndeny : &list->nallow;
  if (*n >= RT_EGRESS_MAX_ENTRIES) {
    snprintf(why, why_size, "more than %d egress entries", RT_EGRESS_MAX_ENTRIES);
    return -1;
  }
  struct rt_egress_entry *grown = realloc(*arr, (*n + 1) * sizeof *grown);
  if (!grown) {
    snprintf(why, why_size, "out of memory");
    return -1;
  }
  grown[(*n)++] = e;
  *arr = grown;
  return 0;
}

int rt_egress_add_own_address(struct rt_egress *list, int family, const void *addr)
{
  struct rt_egress_entry *grown = realloc(list->own, (list->nown + 1) * sizeof *grown);
  if (!grown)
    return -1;
  struct rt_egress_entry *e = &grown[list->nown++];
  memset(e, 0, sizeof *e);
  e->kind = RT_EGRESS_ADDR;
  e->family = family;
  e->prefix = family == AF_INET ? 32 : 128;
  memcpy(e->addr, addr, family == AF_INET ? 4 : 16);
  inet_ntop(family, addr, e->text, sizeof e->text);
  list->own = grown;
  return 0;
}

void rt_egress_free(struct rt_egress *list)
{
  free(list->allow);
  free(list->deny);
  free(list->own);
  memset(list, 0, sizeof *list);
}

static int port_matches(const struct rt_egress_entry *e, uint16_t port)
{
  return e->port == 0 || e->port == port;
}

static int name_matches(const struct rt_egress_entry *e, const char *name)
{
  size_t n = strlen(name), s = strlen(e->name);
  switch (e->kind) {
  case RT_EGRESS_NAME: return strcmp(name, e->name) == 0;
  case RT_EGRESS_ONE_LABEL:
  case RT_EGRESS_ANY_DEPTH:
    if (n <= s + 1 || name[n - s - 1] != '.' || strcmp(name + n - s, e->name) != 0)
      return 0;
    /* the part before ".suffix" is one label for "*.", any number for "**." */
    return e->kind == RT_EGRESS_ANY_DEPTH || !memchr(name, '.', n - s - 1);
  default: return 0;
  }
}

static int addr_in(const struct rt_egress_entry *e, int family, const uint8_t *addr)
{
  if (e->kind != RT_EGRESS_ADDR || e->family != family)
    return 0;
  int bits = e->prefix, i = 0;
  for (; bits >= 8; bits -= 8, i++)
    if (addr[i] != e->addr[i])
      return 0;
  if (bits == 0)
    return 1;
  uint8_t mask = (uint8_t)(0xff << (8 - bits));
  return (addr[i] & mask) == (e->addr[i] & mask);
}

static int is_exact(const struct rt_egress_entry *e, int family, const uint8_t *addr)
{
  return e->kind == RT_EGRESS_ADDR && e->family == family &&
         e->prefix == (family == AF_INET ? 32 : 128) &&
         memcmp(e->addr, addr, family == AF_INET ? 4 : 16) == 0;
}

/* Why an address is refused unless named exactly; NULL for ordinary addresses. */
static const char *special_range(const struct rt_egress *list, int family, const uint8_t *a)
{
  if (family == AF_INET) {
    if (a[0] == 169 && a[1] == 254)
      return a[2] == 169 && a[3] == 254 ? "the instance metadata service (link-local)"
                                        : "a link-local address";
    if (a[0] == 127)
      return "a loopback address";
    if (a[0] == 0)
      return "an unspecified address";
  } else {
    static const uint8_t imds6[16] = {0xfd, 0x00, 0x0e, 0xc2, 0, 0, 0,    0,
                                      0,    0,    0,    0,    0, 0, 0x02, 0x54};
    static const uint8_t zero[16], loop6[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (memcmp(a, imds6, 16) == 0)
      return "the instance metadata service (IPv6)";
    if (a[0] == 0xfe && (a[1] & 0xc0) == 0x80)
      return "a link-local address";
    if (memcmp(a, loop6, 16) == 0)
      return "a loopback address";
    if (memcmp(a, zero, 16) == 0)
      return "an unspecified address";
    if (memcmp(a, mapped, 12) == 0)
      return special_range(list, AF_INET, a + 12) ? special_range(list, AF_INET, a + 12) : NULL;
  }
  for (size_t i = 0; i < list->nown; i++)
    if (addr_in(&list->own[i], family, a))
      return "an address of the parent instance";
  return NULL;
}

static int check_address(const struct rt_egress *list, int family, const uint8_t *a, uint16_t port,
                         int need_allow, char *why, size_t why_size)
{
  char text[INET6_ADDRSTRLEN];
  inet_ntop(family, a, text, sizeof text);
  for (size_t i = 0; i < list->ndeny; i++)
    if (addr_in(&list->deny[i], family, a) && port_matches(&list->deny[i], port)) {
      snprintf(why, why_size, "%s port %u is denied by the egress entry \"%s\"", text, port,
               list->deny[i].text);
      return 0;
    }
  const char *special = special_range(list, family, a);
  int allowed = 0, exact = 0;
  for (size_t i = 0; i < list->nallow; i++) {
    if (!port_matches(&list->allow[i], port))
      continue;
    if (is_exact(&list->allow[i], family, a))
      exact = allowed = 1;
    else if (addr_in(&list->allow[i], family, a))
      allowed = 1;
  }
  if (special && !exact) {
    snprintf(why, why_size, "%s is %s: refused unless an egress entry names %s exactly", text,
             special, text);
    return 0;
  }
  if (need_allow && !allowed) {
    snprintf(why, why_size, "%s port %u is not in the egress allow list", text, port);
    return 0;
  }
  return 1;
}

static int literal(const char *host, int *family, uint8_t *addr)
{
  char buf[INET6_ADDRSTRLEN + 2];
  size_t len = strlen(host);
  if (len >= sizeof buf)
    return 0;
  if (host[0] == '[' && len > 2 && host[len - 1] == ']') {
    memcpy(buf, host + 1, len - 2);
    buf[len - 2] = '\0';
  } else {
    memcpy(buf, host, len + 1);
  }
  if (inet_pton(AF_INET, buf, addr) == 1)
    *family = AF_INET;
  else if (inet_pton(AF_INET6, buf, addr) == 1)
    *family = AF_INET6;
  else
    return 0;
  return 1;
}

int rt_egress_check_host(const struct rt_egress *list, const char *host, uint16_t port, char *why,
                         size_t why_size)
{
  uint8_t addr[16];
  int family = 0;
  if (port == 0) {
    snprintf(why, why_size, "port 0 is not a destination");
    return 0;
  }
  if (literal(host, &family, addr))
    return check_address(list, family, addr, port, 1, why, why_size);
  char name[256];
  if (strlen(host) >= sizeof name) {
    snprintf(why, why_size, "the host name is longer than 255 bytes");
    return 0;
  }
  strcpy(name, host);
  lower(name);
  size_t n = strlen(name);
  if (n && name[n - 1] == '.')
    name[n - 1] = '\0';
  if (!valid_name(name)) {
    snprintf(why, why_size, "\"%s\" is not a valid host name", host);
    return 0;
  }
  for (size_t i = 0; i < list->ndeny; i++)
    if (name_matches(&list->deny[i], name) && port_matches(&list->deny[i], port)) {
      snprintf(why, why_size, "%s port %u is denied by the egress entry \"%s\"", name, port,
               list->deny[i].text);
      return 0;
    }
  int loopback_name = strcmp(name, "localhost") == 0 ||
                      (n > 10 && strcmp(name + strlen(name) - 10, ".localhost") == 0);
  for (size_t i = 0; i < list->nallow; i++)
    if (port_matches(&list->allow[i], port) && name_matches(&list->allow[i], name) &&
        (!loopback_name || list->allow[i].kind == RT_EGRESS_NAME))
      return 1;
  snprintf(why, why_size, "%s port %u is not in the egress allow list", name, port);
  return 0;
}

int rt_egress_check_addr(const struct rt_egress *list, const struct sockaddr *sa, uint16_t port,
                         char *why, size_t why_size)
{
  if (sa->sa_family == AF_INET)
    return check_address(list, AF_INET,
                         (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr, port, 0, why,
                         why_size);
  if (sa->sa_family == AF_INET6)
    return check_address(list, AF_INET6,
                         (const uint8_t *)&((const struct sockaddr_in6 *)sa)->sin6_addr, port, 0,
                         why, why_size);
  snprintf(why, why_size, "address family %d is not allowed", sa->sa_family);
  return 0;
}
