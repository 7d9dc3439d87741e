/* The small piece of HTTP the runtime speaks: finding the end of a request/response head,
 * parsing a proxy request (CONNECT host:port, or an absolute-form http:// request that is
 * rewritten to origin form), a status line, and writing short plain-text responses. */
#ifndef KILN_RT_HTTP_H
#define KILN_RT_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RT_HTTP_MAX_HEAD 8192

/* Length of the head (through the blank line) in buf, or 0 when it is not complete yet. */
size_t rt_http_head_length(const char *buf, size_t len);

struct rt_proxy_request {
  bool connect;   /* CONNECT (a tunnel) rather than a plain http:// request */
  char host[256]; /* without brackets */
  uint16_t port;
  char *forward; /* absolute-form: the head rewritten to origin form (malloc'd), else NULL */
  size_t forward_len;
};

/* Parse a proxy request head (head_len bytes, as found by rt_http_head_length). 0, or the HTTP
 * status to answer (400, 405, 501) with the reason in why. */
int rt_http_parse_proxy_request(const char *head, size_t head_len, struct rt_proxy_request *req,
                                char *why, size_t why_size);
void rt_proxy_request_free(struct rt_proxy_request *req);

/* Status code of a response head ("HTTP/1.1 200 ..."), or -1; the rest of the status line (the
 * reason) into reason when given. */
int rt_http_status(const char *head, size_t head_len, char *reason, size_t reason_size);

/* A complete plain-text response with Connection: close; returns its length (truncated to
 * size - 1 at most). */
size_t rt_http_response(char *out, size_t size, int status, const char *content_type,
                        const void *body, size_t body_len);

/* "Forbidden" for 403 and so on. */
const char *rt_http_reason(int status);

#endif
