/* The app of the runtime's qemu test, run by kiln-init in the enclave (static). It serves HTTP on
 * 127.0.0.1:8080 and echo on 8081, starts kiln-host as the "parent" (reached over vsock loopback
 * because the kernel command line says kiln.parent_cid=1) and a stand-in for the internet on
 * 127.0.0.1:9090, then checks, from inside, what the enclave runtime promises: ingress through
 * kiln-agent's vsock listeners (1000 concurrent connections, 256 MiB exact), egress through the
 * proxy on 127.0.0.1:3128 (allowed, denied, IMDS, absolute-form HTTP), the proxy variables and a
 * docker-like process (HOME, HOSTNAME, PATH, umask, limits, stdin), log records arriving at
 * kiln-host, and the attestation endpoint without an NSM device. Each check prints
 * "RESULT <name> ok|FAIL <detail>"; the exit status is the number of failures. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/vm_sockets.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static int failures;

static void result(int ok, const char *name, const char *fmt, ...)
{
  char detail[600];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(detail, sizeof detail, fmt, ap);
  va_end(ap);
  printf("RESULT %s %s %s\n", name, ok ? "ok" : "FAIL", detail);
  fflush(stdout);
  failures += !ok;
}

static int tcp_listen(int port)
{
  int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
  setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_port = htons((uint16_t)port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (bind(s, (struct sockaddr *)&a, sizeof a) != 0 || listen(s, 2048) != 0)
    return -1;
  return s;
}

static int connect_tcp(int port)
{
  int s = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_port = htons((uint16_t)port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (connect(s, (struct sockaddr *)&a, sizeof a) != 0) {
    close(s);
    return -1;
  }
  return s;
}

static int connect_vsock(unsigned cid, unsigned port)
{
  int s = socket(AF_VSOCK, SOCK_STREAM, 0);
  struct sockaddr_vm a = {.svm_family = AF_VSOCK, .svm_cid = cid, .svm_port = port};
  if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof a) != 0) {
    if (s >= 0)
      close(s);
    return -1;
  }
  return s;
}

static size_t read_all(int s, char *buf, size_t cap)
{
  size_t n = 0;
  ssize_t r;
  while (n < cap && (r = read(s, buf + n, cap - n)) > 0)
    n += (size_t)r;
  return n;
}

/* An echo connection's process that died by a signal leaves its reason for the bulk check. */
static void note_child(int sig)
{
  (void)sig;
  int st;
  pid_t pid;
  while ((pid = waitpid(-1, &st, WNOHANG)) > 0)
    if (WIFSIGNALED(st)) {
      int fd = open("/tmp/echo-diag", O_WRONLY | O_CREAT | O_APPEND, 0644);
      dprintf(fd, "echo process %d killed by signal %d; ", (int)pid, WTERMSIG(st));
      close(fd);
    }
}

/* Servers in child processes: 8080 answers one HTTP request with a fixed body, 8081 echoes, 9090
 * (the "internet") answers with its request line. */
static void serve(int port, int mode)
{
  int l = tcp_listen(port);
  if (l < 0 || fork() != 0) {
    if (l >= 0)
      close(l);
    return;
  }
  if (mode == 1)
    signal(SIGCHLD, note_child);
  else
    signal(SIGCHLD, SIG_IGN);
  for (;;) {
    int c = accept(l, NULL, NULL);
    if (c < 0)
      continue;
    if (fork() == 0) {
      signal(SIGCHLD, SIG_DFL);
      char buf[65536];
      ssize_t n;
      if (mode == 1) {
        size_t total = 0, sent = 0;
        while ((n = read(c, buf, sizeof buf)) > 0) {
          total += (size_t)n;
          ssize_t w = write(c, buf, (size_t)n);
          if (w > 0)
            sent += (size_t)w;
          if (w != n)
            break;
        }
        if (total > (1u << 20))
          dprintf(2, "echo server: %zu bytes in, %zu out, last read %zd (%s)\n", total, sent, n,
                  n < 0 ? strerror(errno) : "EOF");
      } else {
        n = read(c, buf, sizeof buf - 1);
        buf[n > 0 ? n : 0] = '\0';
        char *eol = strstr(buf, "\r\n");
        if (eol)
          *eol = '\0';
        char out[70000];
        int len = snprintf(out, sizeof out,
                           "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s",
                           strlen(buf), buf);
        (void)!write(c, out, (size_t)len);
      }
      _exit(0);
    }
    close(c);
  }
}

static void check_process(void)
{
  const char *vars[] = {"HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "NO_PROXY"};
  for (size_t i = 0; i < 5; i++) {
    const char *v = getenv(vars[i]);
    result(v && (strstr(v, "127.0.0.1:3128") || strstr(v, "localhost")), "env", "%s=%s", vars[i],
           v ? v : "(unset)");
  }
  const char *home = getenv("HOME"), *host = getenv("HOSTNAME"), *path = getenv("PATH");
  result(home && strcmp(home, "/root") == 0, "home", "HOME=%s (root's home from /etc/passwd)",
         home ? home : "(unset)");
  result(host && *host, "hostname", "HOSTNAME=%s", host ? host : "(unset)");
  result(path && strstr(path, "/usr/local/bin"), "path", "PATH=%s", path ? path : "(unset)");
  mode_t m = umask(0);
  umask(m);
  result(m == 022, "umask", "%03o", (unsigned)m);
  struct rlimit r;
  getrlimit(RLIMIT_NOFILE, &r);
  result(r.rlim_cur >= 65536, "nofile", "soft %llu hard %llu", (unsigned long long)r.rlim_cur,
         (unsigned long long)r.rlim_max);
  char buf[4];
  result(read(0, buf, sizeof buf) == 0, "stdin", "stdin reads EOF (/dev/null)");
}

static void check_ingress(void)
{
  char buf[4096];
  int s = -1;
  for (int i = 0; i < 50 && s < 0; i++) { /* the agent may still be starting */
    s = connect_vsock(1, 8080);
    if (s < 0)
      usleep(100000);
  }
  if (s < 0) {
    result(0, "ingress_http", "vsock 1:8080 does not accept: %s", strerror(errno));
    return;
  }
  const char req[] = "GET /through-ingress HTTP/1.1\r\nHost: x\r\n\r\n";
  (void)!write(s, req, sizeof req - 1);
  size_t n = read_all(s, buf, sizeof buf - 1);
  buf[n] = '\0';
  close(s);
  result(strstr(buf, "200 OK") && strstr(buf, "GET /through-ingress"), "ingress_http",
         "own HTTP server reached through vsock 1:8080 (%zu bytes)", n);
}

/* 1000 connections at once through vsock 1:8081 (echo), 4 KiB each, every byte checked. */
static void check_ingress_many(void)
{
  enum { N = 1000, SIZE = 4096 };
  static int fds[N];
  static size_t got[N];
  static char data[SIZE];
  for (int i = 0; i < SIZE; i++)
    data[i] = (char)(i * 7 + 3);
  int opened = 0, exact = 0;
  for (int i = 0; i < N; i++) {
    fds[i] = connect_vsock(1, 8081);
    if (fds[i] >= 0) {
      opened++;
      data[0] = (char)i;
      (void)!write(fds[i], data, SIZE);
      shutdown(fds[i], SHUT_WR);
    }
  }
  static char buf[SIZE];
  for (int i = 0; i < N; i++) {
    if (fds[i] < 0)
      continue;
    got[i] = read_all(fds[i], buf, SIZE);
    data[0] = (char)i;
    exact += got[i] == SIZE && memcmp(buf, data, SIZE) == 0;
    close(fds[i]);
  }
  result(opened == N && exact == N, "ingress_1000", "%d connected, %d exact echoes", opened, exact);
}

/* 256 MiB through vsock 1:8081 (echo) and back, every byte checked, one process writing and
 * reading with poll. */
static uint8_t pattern_byte(size_t pos)
{
  uint64_t v = (pos & ~(size_t)7) * 0x9E3779B97F4A7C15ull;
  return (uint8_t)(v >> (8 * (pos & 7)));
}

static void check_ingress_bulk(void)
{
  const size_t total = 256u << 20;
  int s = connect_vsock(1, 8081);
  if (s < 0) {
    result(0, "ingress_256mib", "connect: %s", strerror(errno));
    return;
  }
  fcntl(s, F_SETFL, O_NONBLOCK);
  static uint8_t out[1 << 16], in[1 << 16];
  size_t sent = 0, got = 0, bad = 0, out_len = 0, out_off = 0;
  int shut = 0, err = 0;
  while (got < total && !err) {
    struct pollfd p = {.fd = s, .events = POLLIN | (shut ? 0 : POLLOUT)};
    if (poll(&p, 1, 30000) <= 0) {
      err = ETIMEDOUT;
      break;
    }
    if (!shut && (p.revents & POLLOUT)) {
      if (out_off == out_len) {
        out_len = total - sent < sizeof out ? total - sent : sizeof out;
        for (size_t i = 0; i < out_len; i++)
          out[i] = pattern_byte(sent + i);
        out_off = 0;
      }
      ssize_t w = write(s, out + out_off, out_len - out_off);
      if (w > 0) {
        out_off += (size_t)w;
        sent += (size_t)w;
      } else if (w < 0 && errno != EAGAIN) {
        err = errno;
      }
      if (sent == total && out_off == out_len) {
        shutdown(s, SHUT_WR);
        shut = 1;
      }
    }
    if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t n = read(s, in, sizeof in);
      if (n == 0)
        break;
      if (n < 0 && errno != EAGAIN)
        err = errno;
      for (ssize_t i = 0; i < n; i++)
        bad += in[i] != pattern_byte(got + (size_t)i);
      if (n > 0)
        got += (size_t)n;
    }
  }
  close(s);
  result(got == total && bad == 0 && !err, "ingress_256mib",
         "%zu bytes sent, %zu back, %zu differ%s%s", sent, got, bad, err ? ": " : "",
         err ? strerror(err) : "");
}

static void proxy(const char *request, char *out, size_t cap)
{
  out[0] = '\0';
  int s = connect_tcp(3128);
  if (s < 0)
    return;
  (void)!write(s, request, strlen(request));
  size_t n = read_all(s, out, cap - 1);
  out[n] = '\0';
  close(s);
}

static void check_egress(void)
{
  char out[8192];
  int s = connect_tcp(3128);
  const char c[] = "CONNECT 127.0.0.1:9090 HTTP/1.1\r\nHost: 127.0.0.1:9090\r\n\r\n";
  size_t n = 0;
  if (s >= 0) {
    (void)!write(s, c, sizeof c - 1);
    ssize_t r = read(s, out, 200);
    n = r > 0 ? (size_t)r : 0;
    out[n] = '\0';
  }
  int tunnel = strstr(out, " 200 ") != NULL;
  if (tunnel) {
    const char g[] = "GET /via-tunnel HTTP/1.1\r\nHost: x\r\n\r\n";
    (void)!write(s, g, sizeof g - 1);
    n = read_all(s, out, sizeof out - 1);
    out[n] = '\0';
  }
  if (s >= 0)
    close(s);
  result(tunnel && strstr(out, "GET /via-tunnel"), "egress_connect",
         "CONNECT to an allowed host reaches it through the parent's kiln-host");
  proxy("GET http://127.0.0.1:9090/plain?x=1 HTTP/1.1\r\nHost: 127.0.0.1:9090\r\n\r\n", out,
        sizeof out);
  result(strstr(out, "GET /plain?x=1 HTTP/1.1") != NULL, "egress_plain_http",
         "absolute-form request forwarded in origin form");
  proxy("CONNECT denied.example.com:443 HTTP/1.1\r\n\r\n", out, sizeof out);
  result(strstr(out, " 403 ") && strstr(out, "not in the egress allow list"), "egress_denied",
         "%.120s", out);
  proxy("CONNECT 169.254.169.254:80 HTTP/1.1\r\n\r\n", out, sizeof out);
  result(strstr(out, " 403 ") && strstr(out, "metadata"), "egress_imds", "%.160s",
         strstr(out, "kiln egress") ? strstr(out, "kiln egress") : out);
}

static void check_attestation(void)
{
  char out[2048];
  int s = connect_vsock(1, 7702);
  size_t n = 0;
  if (s >= 0) {
    const char req[] = "GET /attestation?nonce=0011aabb HTTP/1.1\r\n\r\n";
    (void)!write(s, req, sizeof req - 1);
    n = read_all(s, out, sizeof out - 1);
    close(s);
  }
  out[n] = '\0';
  result(strstr(out, " 503 ") && strstr(out, "no NSM device"), "attestation_503", "%.100s",
         strstr(out, "no NSM") ? strstr(out, "no NSM") : out);
}

static void check_logs(void)
{
  printf("log-marker-7f3a from the app's stdout\n");
  fflush(stdout);
  fprintf(stderr, "log-marker-stderr-91c2\n");
  char text[1 << 16];
  size_t n = 0;
  int found = 0;
  for (int i = 0; i < 60 && !found; i++) {
    usleep(100000);
    int fd = open("/tmp/parent-app.log", O_RDONLY);
    if (fd < 0)
      continue;
    n = read_all(fd, text, sizeof text - 1);
    close(fd);
    text[n] = '\0';
    found = strstr(text, " stdout log-marker-7f3a from the app's stdout") &&
            strstr(text, " stderr log-marker-stderr-91c2") && strstr(text, " init kiln-init: ");
  }
  result(found, "log_records",
         "stdout, stderr and init records in kiln-host's log file (%zu bytes)", n);
}

int main(void)
{
  alarm(240);
  check_process();
  serve(8080, 0);
  serve(8081, 1);
  serve(9090, 0);
  pid_t host = fork();
  if (host == 0) {
    int null = open("/dev/null", O_WRONLY);
    dup2(null, 1);
    execl("/bin/kiln-host", "kiln-host", "-e", "egress-listen vsock:any:7700", "-e",
          "logs-listen vsock:any:7701", "-e", "log-file /tmp/parent-app.log", "-e", "dns files",
          "-e", "allow 127.0.0.1:9090", (char *)NULL);
    _exit(127);
  }
  usleep(300000);
  check_ingress();
  check_ingress_many();
  check_ingress_bulk();
  check_egress();
  check_attestation();
  check_logs();
  kill(host, SIGTERM);
  printf("RESULT done %s %d failure(s)\n", failures ? "FAIL" : "ok", failures);
  fflush(stdout);
  signal(SIGTERM, SIG_IGN);
  kill(0, SIGTERM); /* the servers */
  return failures;
}
