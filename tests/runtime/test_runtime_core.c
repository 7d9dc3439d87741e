/* Unit tests of the runtime core shared by kiln-agent and kiln-host: the egress allow/deny table
 * (names, wildcards, addresses, CIDRs, refused ranges, deny over allow), proxy request parsing and
 * rewriting, PROXY v2 headers, the NSM attestation request/answer CBOR, endpoint parsing, and
 * the attestation endpoint's answers without an NSM device. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "rt_attest_server.h"
#include "rt_config.h"
#include "rt_console.h"
#include "rt_egress.h"
#include "rt_endpoint.h"
#include "rt_http.h"
#include "rt_nsm.h"
#include "rt_proxyv2.h"

struct egress_case {
  const char *host;
  int port;
  int allowed;
  const char *reason; /* part of the refusal */
};

static void test_egress(void)
{
  CHECK_CASE("egress");
  struct rt_egress list;
  memset(&list, 0, sizeof list);
  char why[400];
  const char *allow[] = {"api.example.com:443",  "*.amazonaws.com:443", "**.svc.example.org:*",
                         "10.1.0.0/16:5432",     "[2001:db8::/32]:443", "169.254.169.254:80",
                         "Upper.Example.NET:80", "localhost:8080",      "127.0.0.1:8080"};
  for (size_t i = 0; i < sizeof allow / sizeof *allow; i++)
    CHECK_INT(0, rt_egress_add(&list, false, allow[i], why, sizeof why));
  CHECK_INT(0, rt_egress_add(&list, true, "s3.amazonaws.com:443", why, sizeof why));
  CHECK_INT(0, rt_egress_add(&list, true, "10.1.2.0/24:*", why, sizeof why));
  const struct egress_case cases[] = {
      {"api.example.com", 443, 1, NULL},
      {"API.Example.Com.", 443, 1, NULL},
      {"api.example.com", 80, 0, "not in the egress allow list"},
      {"x.api.example.com", 443, 0, "not in the egress allow list"},
      {"sts.amazonaws.com", 443, 1, NULL},
      {"a.sts.amazonaws.com", 443, 0, "not in the egress allow list"}, /* * is one label */
      {"amazonaws.com", 443, 0, "not in the egress allow list"},
      {"s3.amazonaws.com", 443, 0, "denied by the egress entry \"s3.amazonaws.com:443\""},
      {"a.b.c.svc.example.org", 9999, 1, NULL},
      {"svc.example.org", 1, 0, "not in the egress allow list"},
      {"10.1.0.7", 5432, 1, NULL},
      {"10.1.2.7", 5432, 0, "denied by the egress entry \"10.1.2.0/24:*\""},
      {"10.2.0.7", 5432, 0, "not in the egress allow list"},
      {"2001:db8::1", 443, 1, NULL},
      {"[2001:db8::1]", 443, 1, NULL},
      {"2001:db9::1", 443, 0, "not in the egress allow list"},
      {"169.254.169.254", 80, 1, NULL}, /* named exactly */
      {"169.254.169.254", 443, 0, "instance metadata"},
      {"169.254.1.1", 80, 0, "link-local"},
      {"fd00:ec2::254", 80, 0, "instance metadata"},
      {"fe80::1", 443, 0, "link-local"},
      {"127.0.0.1", 8080, 1, NULL},
      {"127.0.0.2", 8080, 0, "loopback"},
      {"::1", 8080, 0, "loopback"},
      {"::ffff:169.254.169.254", 80, 0, "instance metadata"},
      {"0.0.0.0", 8080, 0, "unspecified"},
      {"localhost", 8080, 1, NULL}, /* the name; its address is checked on the parent */
      {"upper.example.net", 80, 1, NULL},
      {"bad name", 80, 0, "not a valid host name"},
      {"api.example.com", 0, 0, "port 0"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    why[0] = '\0';
    int got = rt_egress_check_host(&list, cases[i].host, (uint16_t)cases[i].port, why, sizeof why);
    if (got != cases[i].allowed || (cases[i].reason && !strstr(why, cases[i].reason))) {
      fprintf(stderr, "egress %s:%d: expected %d (%s), got %d (%s)\n", cases[i].host, cases[i].port,
              cases[i].allowed, cases[i].reason ? cases[i].reason : "", got, why);
      check_failures++;
    }
  }
  /* resolved addresses of an allowed name */
  struct sockaddr_in sin = {.sin_family = AF_INET};
  inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
  CHECK_INT(1, rt_egress_check_addr(&list, (struct sockaddr *)&sin, 8080, why, sizeof why));
  CHECK_INT(0, rt_egress_check_addr(&list, (struct sockaddr *)&sin, 443, why, sizeof why));
  CHECK_CONTAINS("loopback", why);
  inet_pton(AF_INET, "10.1.2.3", &sin.sin_addr);
  CHECK_INT(0, rt_egress_check_addr(&list, (struct sockaddr *)&sin, 443, why, sizeof why));
  inet_pton(AF_INET, "172.31.5.9", &sin.sin_addr);
  CHECK_INT(1, rt_egress_check_addr(&list, (struct sockaddr *)&sin, 443, why, sizeof why));
  CHECK_INT(0, rt_egress_add_own_address(&list, AF_INET, &sin.sin_addr));
  CHECK_INT(0, rt_egress_check_addr(&list, (struct sockaddr *)&sin, 443, why, sizeof why));
  CHECK_CONTAINS("parent instance", why);
  /* an empty list allows nothing */
  struct rt_egress empty;
  memset(&empty, 0, sizeof empty);
  CHECK_INT(0, rt_egress_check_host(&empty, "api.example.com", 443, why, sizeof why));
  const char *bad[] = {"api.example.com",
                       "api.example.com:0",
                       "api.example.com:65536",
                       "a..b:1",
                       "*.:1",
                       "10.0.0.0/33:1",
                       "[::1:1",
                       "host name:1",
                       "*.*.x.com:1",
                       ":443"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    if (rt_egress_add(&empty, false, bad[i], why, sizeof why) == 0) {
      fprintf(stderr, "egress entry \"%s\" should be refused\n", bad[i]);
      check_failures++;
    }
  }
  rt_egress_free(&list);
  rt_egress_free(&empty);
}

static void test_http(void)
{
  CHECK_CASE("http");
  struct rt_proxy_request req;
  char why[200];
  const char *c = "CONNECT api.example.com:443 HTTP/1.1\r\nHost: api.example.com:443\r\n\r\n";
  CHECK_INT(strlen(c), rt_http_head_length(c, strlen(c)));
  CHECK_INT(0, rt_http_head_length(c, strlen(c) - 1));
  CHECK_INT(0, rt_http_parse_proxy_request(c, strlen(c), &req, why, sizeof why));
  CHECK(req.connect);
  CHECK_STR("api.example.com", req.host);
  CHECK_INT(443, req.port);
  rt_proxy_request_free(&req);
  const char *v6 = "CONNECT [2001:db8::1]:8443 HTTP/1.1\r\n\r\n";
  CHECK_INT(0, rt_http_parse_proxy_request(v6, strlen(v6), &req, why, sizeof why));
  CHECK_STR("2001:db8::1", req.host);
  CHECK_INT(8443, req.port);
  rt_proxy_request_free(&req);
  const char *g = "GET http://Example.com:8080/a/b?c=d HTTP/1.1\r\nHost: example.com:8080\r\n"
                  "Proxy-Connection: keep-alive\r\nConnection: keep-alive\r\nAccept: */*\r\n\r\n";
  CHECK_INT(0, rt_http_parse_proxy_request(g, strlen(g), &req, why, sizeof why));
  CHECK(!req.connect);
  CHECK_STR("Example.com", req.host);
  CHECK_INT(8080, req.port);
  CHECK_STR("GET /a/b?c=d HTTP/1.1\r\nHost: example.com:8080\r\nAccept: */*\r\n"
            "Connection: close\r\n\r\n",
            req.forward);
  rt_proxy_request_free(&req);
  const char *q = "GET http://h?x HTTP/1.0\r\n\r\n";
  CHECK_INT(0, rt_http_parse_proxy_request(q, strlen(q), &req, why, sizeof why));
  CHECK_INT(80, req.port);
  CHECK_STR("GET /?x HTTP/1.0\r\nConnection: close\r\n\r\n", req.forward);
  rt_proxy_request_free(&req);
  const char *bad[] = {"CONNECT host HTTP/1.1\r\n\r\n",   "CONNECT host:99999 HTTP/1.1\r\n\r\n",
                       "GET https://h/ HTTP/1.1\r\n\r\n", "GET /relative HTTP/1.1\r\n\r\n",
                       "get http://h/ HTTP/1.1\r\n\r\n",  "GET http://user@h/ HTTP/1.1\r\n\r\n",
                       "CONNECT a:1 SPDY/3\r\n\r\n"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    int st = rt_http_parse_proxy_request(bad[i], strlen(bad[i]), &req, why, sizeof why);
    rt_proxy_request_free(&req);
    if (st != 400) {
      fprintf(stderr, "proxy request %s: expected 400, got %d\n", bad[i], st);
      check_failures++;
    }
  }
  char reason[64];
  const char *resp = "HTTP/1.1 403 Forbidden\r\n\r\n";
  CHECK_INT(403, rt_http_status(resp, strlen(resp), reason, sizeof reason));
  CHECK_STR("Forbidden", reason);
  CHECK_INT(-1, rt_http_status("SSH-2.0\r\n\r\n", 11, NULL, 0));
}

static void test_proxyv2(void)
{
  CHECK_CASE("proxy v2");
  uint8_t h[RT_PROXYV2_MAX];
  struct sockaddr_in src = {.sin_family = AF_INET, .sin_port = htons(51000)};
  struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons(443)};
  inet_pton(AF_INET, "203.0.113.7", &src.sin_addr);
  inet_pton(AF_INET, "10.0.0.5", &dst.sin_addr);
  size_t n = rt_proxyv2_build(h, (struct sockaddr *)&src, (struct sockaddr *)&dst);
  CHECK_INT(28, n);
  CHECK_INT(0x21, h[12]);
  CHECK_INT(0x11, h[13]);
  CHECK(memcmp(h + 16, &src.sin_addr, 4) == 0 && h[24] == 0xC7 && h[25] == 0x38);
  CHECK_INT(28, rt_proxyv2_check(h, n));
  CHECK_INT(0, rt_proxyv2_check(h, 20));
  CHECK_INT(-1, rt_proxyv2_check((const uint8_t *)"GET / HTTP/1.1\r\n", 16));
  struct sockaddr_in6 s6 = {.sin6_family = AF_INET6}, d6 = {.sin6_family = AF_INET6};
  CHECK_INT(52, rt_proxyv2_build(h, (struct sockaddr *)&s6, (struct sockaddr *)&d6));
  struct sockaddr none = {.sa_family = AF_UNIX};
  CHECK_INT(16, rt_proxyv2_build(h, &none, &none));
  CHECK_INT(16, rt_proxyv2_check(h, 16));
  h[12] = 0x31; /* version 3 */
  CHECK_INT(-1, rt_proxyv2_check(h, 16));
}

static void test_nsm(void)
{
  CHECK_CASE("nsm cbor");
  uint8_t req[256];
  const uint8_t nonce[3] = {1, 2, 3};
  size_t n = rt_nsm_encode_attestation(req, sizeof req, nonce, 3, NULL, 0);
  /* {"Attestation": {"user_data": null, "nonce": h'010203', "public_key": null}} */
  const uint8_t want[] = {0xa1, 0x6b, 'A',  't', 't', 'e', 's', 't',  'a', 't', 'i', 'o',
                          'n',  0xa3, 0x69, 'u', 's', 'e', 'r', '_',  'd', 'a', 't', 'a',
                          0xf6, 0x65, 'n',  'o', 'n', 'c', 'e', 0x43, 1,   2,   3,   0x6a,
                          'p',  'u',  'b',  'l', 'i', 'c', '_', 'k',  'e', 'y', 0xf6};
  CHECK_INT(sizeof want, n);
  CHECK(n == sizeof want && memcmp(req, want, n) == 0);
  uint8_t big[RT_NSM_USER_DATA_MAX];
  memset(big, 7, sizeof big);
  n = rt_nsm_encode_attestation(req, sizeof req, nonce, 3, big, sizeof big);
  CHECK_INT(0, n); /* does not fit 256 bytes */
  uint8_t large[1024];
  n = rt_nsm_encode_attestation(large, sizeof large, nonce, 3, big, 300);
  CHECK(n > 300 && large[24] == 0x59 && large[25] == 0x01 && large[26] == 0x2c);
  /* {"Attestation": {"document": h'd28443a10126'}} */
  const uint8_t ok[] = {0xa1, 0x6b, 'A', 't',  't',  'e',  's',  't',  'a',  't',
                        'i',  'o',  'n', 0xa1, 0x68, 'd',  'o',  'c',  'u',  'm',
                        'e',  'n',  't', 0x46, 0xd2, 0x84, 0x43, 0xa1, 0x01, 0x26};
  const uint8_t *doc = NULL;
  size_t doc_len = 0;
  char why[200];
  CHECK_INT(0, rt_nsm_decode_attestation(ok, sizeof ok, &doc, &doc_len, why, sizeof why));
  CHECK_INT(6, doc_len);
  CHECK(doc && doc[0] == 0xd2);
  const uint8_t err[] = {0xa1, 0x65, 'E', 'r', 'r', 'o', 'r', 0x6f, 'I', 'n', 'v', 'a',
                         'l',  'i',  'd', 'A', 'r', 'g', 'u', 'm',  'e', 'n', 't'};
  CHECK_INT(-1, rt_nsm_decode_attestation(err, sizeof err, &doc, &doc_len, why, sizeof why));
  CHECK_CONTAINS("InvalidArgument", why);
  for (size_t cut = 0; cut < sizeof ok; cut++)
    if (rt_nsm_decode_attestation(ok, cut, &doc, &doc_len, why, sizeof why) == 0) {
      fprintf(stderr, "nsm answer cut at %zu decoded\n", cut);
      check_failures++;
    }
  uint8_t longer[sizeof ok + 1];
  memcpy(longer, ok, sizeof ok);
  longer[sizeof ok] = 0;
  CHECK_INT(-1, rt_nsm_decode_attestation(longer, sizeof longer, &doc, &doc_len, why, sizeof why));
  uint8_t lying[sizeof ok];
  memcpy(lying, ok, sizeof ok);
  lying[23] = 0x5a; /* bytes with a 4-byte length that runs past the end */
  CHECK_INT(-1, rt_nsm_decode_attestation(lying, sizeof lying, &doc, &doc_len, why, sizeof why));
}

static void test_endpoints_and_config(void)
{
  CHECK_CASE("endpoints");
  struct rt_endpoint ep;
  char why[200], text[80];
  const char *good[] = {"vsock:16:8080", "vsock:any:7700", "tcp:0.0.0.0:443", "tcp:[::1]:80",
                        "unix:/run/kiln.sock"};
  for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
    CHECK_INT(0, rt_endpoint_parse(good[i], &ep, why, sizeof why));
    rt_endpoint_format(&ep, text, sizeof text);
    CHECK_STR(good[i], text);
  }
  const char *bad[] = {"vsock:16",          "vsock:x:1",     "tcp:host.example:80",
                       "tcp:1.2.3.4:70000", "udp:1.2.3.4:1", "unix:"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    CHECK_INT(-1, rt_endpoint_parse(bad[i], &ep, why, sizeof why));
  CHECK_CASE("config");
  struct rt_config cfg;
  rt_config_init(&cfg);
  CHECK_INT(0, rt_config_line(&cfg, "ingress vsock:any:8443 tcp:127.0.0.1:8443 proxy-protocol", why,
                              sizeof why));
  CHECK_INT(0, rt_config_line(&cfg, "  # a comment", why, sizeof why));
  CHECK_INT(0, rt_config_line(&cfg, "logs-parent vsock:3:7701", why, sizeof why));
  CHECK_INT(-1, rt_config_line(&cfg, "ingress vsock:any:1 tcp:127.0.0.1:1 fast", why, sizeof why));
  CHECK_CONTAINS("proxy-protocol", why);
  CHECK_INT(-1, rt_config_line(&cfg, "allow", why, sizeof why));
  CHECK(cfg.ningress == 1 && cfg.ingress[0].proxy_protocol);
  rt_config_set_parent_cid(&cfg, 1);
  rt_endpoint_format(&cfg.logs_parent, text, sizeof text);
  CHECK_STR("vsock:1:7701", text);
  rt_config_free(&cfg);
}

static void test_attestation_answers(void)
{
  CHECK_CASE("attestation endpoint");
  char out[4096];
  const char *req = "GET /attestation?nonce=0a0b&user_data=ff HTTP/1.1\r\n\r\n";
  size_t n = rt_attest_answer(req, strlen(req), "/nonexistent/nsm", out, sizeof out);
  CHECK(n > 0);
  CHECK_CONTAINS("HTTP/1.1 503", out);
  CHECK_CONTAINS("no NSM device", out);
  const char *nodev = "GET /attestation?nonce=0a0b HTTP/1.1\r\n\r\n";
  n = rt_attest_answer(nodev, strlen(nodev), "/dev/null", out, sizeof out);
  CHECK_CONTAINS("HTTP/1.1 503", out); /* not an NSM: the ioctl fails, the reason is given */
  CHECK_CONTAINS("NSM request failed", out);
}

static int console_done(void *c)
{
  return rt_console_idle(c);
}

/* Read what the console got so far (the pipe is non-blocking). */
static size_t console_read(int fd, char *out, size_t have, size_t cap)
{
  ssize_t n;
  while (have < cap && (n = read(fd, out + have, cap - have)) > 0)
    have += (size_t)n;
  return have;
}

/* The console queue: a full console (a pipe nobody reads, like a serial port under a loaded
 * emulator) loses no line and cuts none; lines reach it in order once it takes them again, and a
 * line beyond the queue's size is dropped whole and counted. */
static void test_console(void)
{
  CHECK_CASE("console");
  int p[2];
  CHECK(pipe2(p, O_NONBLOCK) == 0);
  char fill[4096];
  memset(fill, 'x', sizeof fill);
  size_t filled = 0;
  ssize_t w;
  while ((w = write(p[1], fill, sizeof fill)) > 0) /* the console is full */
    filled += (size_t)w;
  struct rt_loop *loop = rt_loop_new();
  struct rt_console *c = rt_console_start(loop, p[1], 4096);
  CHECK(c != NULL);
  char line[64];
  for (int i = 0; i < 50; i++) {
    int n = snprintf(line, sizeof line, "app line %02d", i);
    rt_console_line(c, i % 2 ? "kiln-agent: " : NULL, line, (size_t)n);
  }
  CHECK(!rt_console_idle(c));
  CHECK_INT(0, rt_console_dropped(c));
  /* 4096 bytes of queue: one more long line does not fit and is dropped whole */
  char big[4000];
  memset(big, 'b', sizeof big);
  rt_console_line(c, NULL, big, sizeof big);
  CHECK_INT(1, rt_console_dropped(c));
  static char got[1 << 20];
  size_t have = 0;
  for (int round = 0; round < 200 && !(have >= filled && rt_console_idle(c)); round++) {
    have = console_read(p[0], got, have, sizeof got);
    rt_loop_drain(loop, 20, console_done, c);
  }
  have = console_read(p[0], got, have, sizeof got);
  CHECK(rt_console_idle(c));
  char want[4096] = "";
  size_t wl = 0;
  for (int i = 0; i < 50; i++)
    wl += (size_t)snprintf(want + wl, sizeof want - wl, "%sapp line %02d\n",
                           i % 2 ? "kiln-agent: " : "", i);
  CHECK_INT(filled + wl, have);
  CHECK(have == filled + wl && memcmp(got + filled, want, wl) == 0);
  rt_loop_free(loop); /* closes p[1] */
  close(p[0]);
}

int main(void)
{
  test_egress();
  test_http();
  test_proxyv2();
  test_nsm();
  test_endpoints_and_config();
  test_attestation_answers();
  test_console();
  return check_done();
}
