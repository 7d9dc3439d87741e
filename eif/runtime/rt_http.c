/* The small piece of HTTP the runtime speaks (see rt_http.h). */
#define _GNU_SOURCE
#include "rt_http.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

size_t rt_http_head_length(const char *buf, size_t len)
{
  for (size_t i = 0; i + 1 < len; i++) {
    if (buf[i] != '\n')
      continue;
    if (buf[i + 1] == '\n')
      return i + 2;
    if (i + 2 < len && buf[i + 1] == '\r' && buf[i + 2] == '\n')
      return i + 3;
  }
  return 0;
}

const char *rt_http_reason(int status)
{
  switch (status) {
  case 200: return "OK";
  case 400: return "Bad Request";
  case 403: return "Forbidden";
  case 404: return "Not Found";
  case 405: return "Method Not Allowed";
  case 408: return "Request Timeout";
  case 414: return "URI Too Long";
  case 431: return "Request Header Fields Too Large";
  case 500: return "Internal Server Error";
  case 501: return "Not Implemented";
  case 502: return "Bad Gateway";
  case 503: return "Service Unavailable";
  case 504: return "Gateway Timeout";
  default: return "Error";
  }
}

size_t rt_http_response(char *out, size_t size, int status, const char *content_type,
                        const void *body, size_t body_len)
{
  int n = snprintf(out, size,
                   "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                   "Connection: close\r\n\r\n",
                   status, rt_http_reason(status), content_type, body_len);
  if (n < 0 || (size_t)n >= size)
    return 0;
  size_t room = size - 1 - (size_t)n;
  size_t copy = body_len < room ? body_len : room;
  memcpy(out + n, body, copy);
  out[(size_t)n + copy] = '\0';
  return (size_t)n + copy;
}

/* "host:port" / "[v6]:port" -> req->host, req->port (default_port when absent). */
static int parse_authority(const char *a, size_t len, uint16_t default_port,
                           struct rt_proxy_request *req)
{
  const char *end = a + len, *port = NULL, *host = a, *host_end;
  if (len && a[0] == '[') {
    const char *close = memchr(a, ']', len);
    if (!close)
      return -1;
    host = a + 1;
    host_end = close;
    if (close + 1 < end) {
      if (close[1] != ':')
        return -1;
      port = close + 2;
    }
  } else {
    const char *colon = memchr(a, ':', len);
    host_end = colon ? colon : end;
    port = colon ? colon + 1 : NULL;
  }
  size_t hlen = (size_t)(host_end - host);
  if (hlen == 0 || hlen >= sizeof req->host || memchr(host, '@', hlen))
    return -1;
  memcpy(req->host, host, hlen);
  req->host[hlen] = '\0';
  long p = default_port;
  if (port) {
    if (port >= end || end - port > 5)
      return -1;
    char digits[6] = {0};
    memcpy(digits, port, (size_t)(end - port));
    if (strspn(digits, "0123456789") != strlen(digits))
      return -1;
    p = strtol(digits, NULL, 10);
  }
  if (p < 1 || p > 65535)
    return -1;
  req->port = (uint16_t)p;
  return 0;
}

/* Is this header line one the proxy drops when forwarding (hop-by-hop to the proxy)? */
static int dropped_header(const char *line, size_t len)
{
  static const char *const names[] = {
      "proxy-connection:", "proxy-authorization:", "connection:", "keep-alive:"};
  for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
    size_t n = strlen(names[i]);
    if (len >= n && strncasecmp(line, names[i], n) == 0)
      return 1;
  }
  return 0;
}

/* Absolute-form "GET http://host/path HTTP/1.1" -> origin form with Connection: close. */
static int rewrite_absolute(const char *head, size_t head_len, const char *method,
                            const char *target, size_t target_len, const char *version,
                            struct rt_proxy_request *req, char *why, size_t why_size)
{
  if (target_len < 7 || strncasecmp(target, "http://", 7) != 0) {
    snprintf(why, why_size, "only CONNECT and absolute http:// requests are proxied");
    return 400;
  }
  const char *auth = target + 7, *tend = target + target_len;
  const char *path = memchr(auth, '/', (size_t)(tend - auth));
  const char *q = memchr(auth, '?', (size_t)(tend - auth));
  if (q && (!path || q < path))
    path = q;
  const char *auth_end = path ? path : tend;
  if (parse_authority(auth, (size_t)(auth_end - auth), 80, req) != 0) {
    snprintf(why, why_size, "the request's URL has no valid host and port");
    return 400;
  }
  size_t cap = head_len + 64;
  char *out = malloc(cap);
  if (!out) {
    snprintf(why, why_size, "out of memory");
    return 500;
  }
  int n = snprintf(out, cap, "%s %s%.*s %s\r\n", method, path && *path == '?' ? "/" : "",
                   path ? (int)(tend - path) : 1, path ? path : "/", version);
  size_t used = n > 0 ? (size_t)n : 0;
  const char *line = memchr(head, '\n', head_len);
  line = line ? line + 1 : head + head_len;
  const char *head_end = head + head_len;
  while (line < head_end) {
    const char *nl = memchr(line, '\n', (size_t)(head_end - line));
    size_t len = nl ? (size_t)(nl - line + 1) : (size_t)(head_end - line);
    if (len <= 2 && (line[0] == '\r' || line[0] == '\n'))
      break; /* the blank line */
    if (!dropped_header(line, len) && used + len < cap) {
      memcpy(out + used, line, len);
      used += len;
    }
    line += len;
  }
  static const char tail[] = "Connection: close\r\n\r\n";
  if (used + sizeof tail > cap) { /* sizeof tail counts the terminating NUL too */
    char *grown = realloc(out, used + sizeof tail);
    if (!grown) {
      free(out);
      snprintf(why, why_size, "out of memory");
      return 500;
    }
    out = grown;
  }
  memcpy(out + used, tail, sizeof tail); /* NUL-terminated, for messages and tests */
  req->forward = out;
  req->forward_len = used + sizeof tail - 1;
  return 0;
}

int rt_http_parse_proxy_request(const char *head, size_t head_len, struct rt_proxy_request *req,
                                char *why, size_t why_size)
{
  memset(req, 0, sizeof *req);
  const char *eol = memchr(head, '\n', head_len);
  if (!eol) {
    snprintf(why, why_size, "no request line");
    return 400;
  }
  size_t line_len = (size_t)(eol - head);
  if (line_len && head[line_len - 1] == '\r')
    line_len--;
  char line[RT_HTTP_MAX_HEAD];
  if (line_len >= sizeof line) {
    snprintf(why, why_size, "request line too long");
    return 414;
  }
  memcpy(line, head, line_len);
  line[line_len] = '\0';
  char *sp1 = strchr(line, ' '), *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
  if (!sp1 || !sp2 || strchr(sp2 + 1, ' ') || strncmp(sp2 + 1, "HTTP/1.", 7) != 0) {
    snprintf(why, why_size, "not an HTTP/1.x request line");
    return 400;
  }
  *sp1 = *sp2 = '\0';
  const char *method = line, *target = sp1 + 1, *version = sp2 + 1;
  for (const char *m = method; *m; m++)
    if (!isupper((unsigned char)*m)) {
      snprintf(why, why_size, "not an HTTP method");
      return 400;
    }
  if (strcmp(method, "CONNECT") == 0) {
    req->connect = true;
    if (parse_authority(target, strlen(target), 0, req) != 0) {
      snprintf(why, why_size, "CONNECT needs HOST:PORT");
      return 400;
    }
    return 0;
  }
  return rewrite_absolute(head, head_len, method, target, strlen(target), version, req, why,
                          why_size);
}

void rt_proxy_request_free(struct rt_proxy_request *req)
{
  free(req->forward);
  req->forward = NULL;
}

int rt_http_status(const char *head, size_t head_len, char *reason, size_t reason_size)
{
  if (head_len < 12 || strncmp(head, "HTTP/1.", 7) != 0 || head[8] != ' ' ||
      !isdigit((unsigned char)head[9]) || !isdigit((unsigned char)head[10]) ||
      !isdigit((unsigned char)head[11]))
    return -1;
  int status = (head[9] - '0') * 100 + (head[10] - '0') * 10 + (head[11] - '0');
  if (reason && reason_size) {
    const char *r = head + 12, *end = memchr(head, '\n', head_len);
    if (!end)
      end = head + head_len;
    while (r < end && *r == ' ')
      r++;
    size_t n = (size_t)(end - r);
    if (n && r[n - 1] == '\r')
      n--;
    if (n >= reason_size)
      n = reason_size - 1;
    memcpy(reason, r, n);
    reason[n] = '\0';
  }
  return status;
}
