/* Log records between the enclave and the parent (see rt_logs.h). */
#define _GNU_SOURCE
#include "rt_logs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <linux/vm_sockets.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

void rt_logf(void (*log)(void *arg, const char *line), void *arg, const char *fmt, ...)
{
  if (!log)
    return;
  char line[600];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  log(arg, line);
}

void rt_log_time(char out[32])
{
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(out + n, 32 - n, ".%03dZ", (int)(ts.tv_nsec / 1000000) % 1000);
}

/* ---------------------------------------------------------------- enclave side */

struct log_source {
  struct rt_watch watch;
  struct log_source *next; /* the sender's open sources */
  struct rt_log_sender *sender;
  int fd;
  char name[8];
  int echo;
  char line[RT_LOG_LINE_MAX];
  size_t used;
};

struct rt_log_sender {
  struct rt_watch watch;
  struct rt_endpoint parent;
  int fd; /* connection to the parent, -1 while there is none */
  bool connecting, skip_to_newline;
  uint64_t next_attempt;
  struct rt_console *echo; /* the console the app's lines also go to, or NULL */
  uint8_t *ring;
  size_t cap, head, len; /* bytes [head, head+len) modulo cap */
  uint64_t dropped;
  bool last_sent_newline;
  int sources; /* pipes still open */
  struct log_source *source_list;
};

int rt_log_sender_idle(void *sender)
{
  struct rt_log_sender *s = sender;
  return s->sources == 0 && (s->len == 0 || s->fd < 0) && rt_console_idle(s->echo);
}

size_t rt_log_sender_queued(const struct rt_log_sender *s)
{
  return s->len;
}
uint64_t rt_log_sender_dropped(const struct rt_log_sender *s)
{
  return s->dropped;
}

static uint8_t ring_at(const struct rt_log_sender *s, size_t i)
{
  return s->ring[(s->head + i) % s->cap];
}

/* Drop the oldest whole record. */
static void drop_oldest(struct rt_log_sender *s)
{
  size_t i = 0;
  while (i < s->len && ring_at(s, i) != '\n')
    i++;
  i = i < s->len ? i + 1 : s->len;
  s->head = (s->head + i) % s->cap;
  s->len -= i;
  s->dropped++;
}

static void ring_put(struct rt_log_sender *s, const void *data, size_t n)
{
  const uint8_t *p = data;
  for (size_t i = 0; i < n; i++)
    s->ring[(s->head + s->len + i) % s->cap] = p[i];
  s->len += n;
}

static void want_write(struct rt_loop *loop, struct rt_log_sender *s);

void rt_log_sender_record(struct rt_log_sender *s, const char *source, const char *line, size_t len)
{
  char stamp[32];
  rt_log_time(stamp);
  if (len > RT_LOG_LINE_MAX)
    len = RT_LOG_LINE_MAX;
  size_t need = strlen(stamp) + 1 + strlen(source) + 1 + len + 1;
  if (need > s->cap)
    return;
  while (s->cap - s->len < need)
    drop_oldest(s);
  ring_put(s, stamp, strlen(stamp));
  ring_put(s, " ", 1);
  ring_put(s, source, strlen(source));
  ring_put(s, " ", 1);
  /* a record is one line: control characters other than tab become spaces */
  for (size_t i = 0; i < len; i++) {
    char c = line[i];
    if ((unsigned char)c < 0x20 && c != '\t')
      c = ' ';
    ring_put(s, &c, 1);
  }
  ring_put(s, "\n", 1);
}

static void sender_close(struct rt_loop *loop, struct rt_log_sender *s)
{
  if (s->fd < 0)
    return;
  rt_loop_del(loop, s->fd);
  close(s->fd);
  s->fd = -1;
  s->connecting = false;
  s->next_attempt = rt_now_ms() + 1000;
  /* the parent may have a partial record: the next connection starts at a record boundary */
  s->skip_to_newline = !s->last_sent_newline;
}

static void sender_flush(struct rt_loop *loop, struct rt_log_sender *s)
{
  if (s->fd < 0 || s->connecting)
    return;
  while (s->skip_to_newline && s->len) {
    bool nl = ring_at(s, 0) == '\n';
    s->head = (s->head + 1) % s->cap;
    s->len--;
    if (nl)
      s->skip_to_newline = false;
  }
  while (s->len) {
    size_t chunk = s->cap - s->head < s->len ? s->cap - s->head : s->len;
    ssize_t w = send(s->fd, s->ring + s->head, chunk, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w < 0 && errno == EINTR)
      continue;
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      break;
    if (w <= 0) {
      sender_close(loop, s);
      return;
    }
    s->last_sent_newline = s->ring[(s->head + (size_t)w - 1) % s->cap] == '\n';
    s->head = (s->head + (size_t)w) % s->cap;
    s->len -= (size_t)w;
  }
  want_write(loop, s);
}

static void sender_ready(struct rt_loop *loop, struct rt_watch *w, uint32_t events)
{
  struct rt_log_sender *s = (struct rt_log_sender *)w;
  if (s->fd < 0)
    return;
  if (s->connecting) {
    if (rt_connect_result(s->fd) != 0) {
      sender_close(loop, s);
      return;
    }
    s->connecting = false;
    s->last_sent_newline = true;
  }
  if (events & (EPOLLHUP | EPOLLERR | EPOLLIN)) {
    char junk[256];
    ssize_t n = recv(s->fd, junk, sizeof junk, MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
      sender_close(loop, s);
      return;
    }
  }
  sender_flush(loop, s);
}

static void want_write(struct rt_loop *loop, struct rt_log_sender *s)
{
  if (s->fd < 0 || s->connecting)
    return;
  (void)rt_loop_mod(loop, s->fd, EPOLLIN | (s->len ? EPOLLOUT : 0), &s->watch);
}

static void sender_tick(struct rt_loop *loop, void *arg, uint64_t now)
{
  struct rt_log_sender *s = arg;
  if (s->fd >= 0) {
    if (!s->connecting && s->len)
      sender_flush(loop, s);
    return;
  }
  if (now < s->next_attempt)
    return;
  s->next_attempt = now + 1000;
  int in_progress = 0;
  s->fd = rt_endpoint_connect(&s->parent, &in_progress);
  if (s->fd < 0)
    return;
  s->connecting = in_progress;
  if (!in_progress)
    s->last_sent_newline = true;
  if (rt_loop_add(loop, s->fd, in_progress ? EPOLLOUT : EPOLLIN | EPOLLOUT, &s->watch) != 0)
    sender_close(loop, s);
}

static void sender_free(struct rt_loop *loop, void *arg)
{
  struct rt_log_sender *s = arg;
  while (s->source_list) {
    struct log_source *src = s->source_list;
    s->source_list = src->next;
    rt_loop_del(loop, src->fd);
    close(src->fd);
    free(src);
  }
  if (s->fd >= 0) {
    rt_loop_del(loop, s->fd);
    close(s->fd);
  }
  free(s->ring);
  free(s);
}

struct rt_log_sender *rt_log_sender_start(struct rt_loop *loop, const struct rt_endpoint *parent,
                                          size_t ring_bytes, struct rt_console *echo)
{
  struct rt_log_sender *s = calloc(1, sizeof *s);
  if (!s || !(s->ring = malloc(ring_bytes))) {
    free(s);
    return NULL;
  }
  s->cap = ring_bytes;
  s->parent = *parent;
  s->fd = -1;
  s->echo = echo;
  s->watch.ready = sender_ready;
  s->last_sent_newline = true;
  if (rt_loop_every(loop, sender_tick, s) != 0 || rt_loop_on_free(loop, sender_free, s) != 0) {
    free(s->ring);
    free(s);
    return NULL;
  }
  return s;
}

static void emit(struct log_source *src, const char *line, size_t len)
{
  rt_log_sender_record(src->sender, src->name, line, len);
  if (src->echo)
    rt_console_line(src->sender->echo, NULL, line, len);
}

static void source_ready(struct rt_loop *loop, struct rt_watch *w, uint32_t events)
{
  struct log_source *src = (struct log_source *)w;
  (void)events;
  for (int round = 0; round < 16; round++) {
    ssize_t n = read(src->fd, src->line + src->used, sizeof src->line - src->used);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      break;
    if (n <= 0) {
      if (src->used)
        emit(src, src->line, src->used);
      struct rt_log_sender *s = src->sender;
      s->sources--;
      for (struct log_source **pp = &s->source_list; *pp; pp = &(*pp)->next)
        if (*pp == src) {
          *pp = src->next;
          break;
        }
      sender_flush(loop, s);
      rt_loop_del(loop, src->fd);
      close(src->fd);
      rt_loop_defer_free(loop, src, free);
      return;
    }
    src->used += (size_t)n;
    size_t start = 0;
    for (size_t i = 0; i < src->used; i++)
      if (src->line[i] == '\n') {
        size_t len = i - start;
        if (len && src->line[start + len - 1] == '\r')
          len--;
        emit(src, src->line + start, len);
        start = i + 1;
      }
    memmove(src->line, src->line + start, src->used - start);
    src->used -= start;
    if (src->used == sizeof src->line) { /* an over-long line is cut into records */
      emit(src, src->line, src->used);
      src->used = 0;
    }
  }
  sender_flush(loop, src->sender);
}

int rt_log_sender_add_source(struct rt_loop *loop, struct rt_log_sender *s, int fd,
                             const char *source, int echo)
{
  struct log_source *src = calloc(1, sizeof *src);
  if (!src || rt_set_nonblock(fd) != 0) {
    free(src);
    return -1;
  }
  src->watch.ready = source_ready;
  src->sender = s;
  src->fd = fd;
  src->echo = echo;
  snprintf(src->name, sizeof src->name, "%s", source);
  if (rt_loop_add(loop, fd, EPOLLIN, &src->watch) != 0) {
    free(src);
    return -1;
  }
  s->sources++;
  src->next = s->source_list;
  s->source_list = src;
  return 0;
}

/* ---------------------------------------------------------------- parent side */

struct rt_log_receiver {
  struct rt_watch watch;
  struct log_conn *conns;
  int listen_fd;
  uint32_t peer_cid;
  char *file;
  uint64_t file_max, file_size;
  int file_fd;
};

struct log_conn {
  struct rt_watch watch;
  struct log_conn *prev, *next;
  struct rt_log_receiver *r;
  int fd;
  char buf[RT_LOG_LINE_MAX + 128];
  size_t used;
};

static void open_log_file(struct rt_log_receiver *r)
{
  if (!r->file)
    return;
  r->file_fd = open(r->file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  struct stat st;
  r->file_size = r->file_fd >= 0 && fstat(r->file_fd, &st) == 0 ? (uint64_t)st.st_size : 0;
  if (r->file_fd < 0)
    fprintf(stderr, "kiln-host: cannot write %s: %s (records go to stdout only)\n", r->file,
            strerror(errno));
}

static void write_record(struct rt_log_receiver *r, const char *rec, size_t len)
{
  (void)!write(STDOUT_FILENO, rec, len);
  if (r->file_fd < 0)
    return;
  if (r->file_size + len > r->file_max) {
    char old[600];
    snprintf(old, sizeof old, "%s.1", r->file);
    close(r->file_fd);
    rename(r->file, old);
    open_log_file(r);
    if (r->file_fd < 0)
      return;
  }
  if (write(r->file_fd, rec, len) == (ssize_t)len)
    r->file_size += len;
}

static void log_conn_end(struct rt_loop *loop, struct log_conn *c)
{
  rt_loop_del(loop, c->fd);
  close(c->fd);
  if (c->prev)
    c->prev->next = c->next;
  else
    c->r->conns = c->next;
  if (c->next)
    c->next->prev = c->prev;
  rt_loop_defer_free(loop, c, free);
}

static void log_conn_ready(struct rt_loop *loop, struct rt_watch *w, uint32_t events)
{
  struct log_conn *c = (struct log_conn *)w;
  (void)events;
  ssize_t n = recv(c->fd, c->buf + c->used, sizeof c->buf - 1 - c->used, 0);
  if (n < 0 && (errno == EAGAIN || errno == EINTR))
    return;
  if (n <= 0) {
    if (c->used) {
      c->buf[c->used++] = '\n';
      write_record(c->r, c->buf, c->used);
    }
    log_conn_end(loop, c);
    return;
  }
  c->used += (size_t)n;
  char *nl = memrchr(c->buf, '\n', c->used);
  if (nl) {
    size_t whole = (size_t)(nl - c->buf) + 1;
    write_record(c->r, c->buf, whole);
    memmove(c->buf, c->buf + whole, c->used - whole);
    c->used -= whole;
  } else if (c->used == sizeof c->buf - 1) {
    c->buf[c->used++] = '\n';
    write_record(c->r, c->buf, c->used);
    c->used = 0;
  }
}

static void log_accept(struct rt_loop *loop, struct rt_watch *w, uint32_t events)
{
  struct rt_log_receiver *r = (struct rt_log_receiver *)w;
  (void)events;
  for (;;) {
    struct sockaddr_storage peer;
    socklen_t len = sizeof peer;
    int fd = accept4(r->listen_fd, (struct sockaddr *)&peer, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0)
      return;
    if (r->peer_cid && peer.ss_family == AF_VSOCK &&
        ((struct sockaddr_vm *)&peer)->svm_cid != r->peer_cid) {
      close(fd);
      continue;
    }
    struct log_conn *c = calloc(1, sizeof *c);
    if (!c) {
      close(fd);
      continue;
    }
    c->watch.ready = log_conn_ready;
    c->r = r;
    c->fd = fd;
    if (rt_loop_add(loop, fd, EPOLLIN, &c->watch) != 0) {
      close(fd);
      free(c);
      continue;
    }
    c->next = r->conns;
    if (r->conns)
      r->conns->prev = c;
    r->conns = c;
  }
}

static void receiver_free(struct rt_loop *loop, void *arg)
{
  struct rt_log_receiver *r = arg;
  while (r->conns)
    log_conn_end(loop, r->conns);
  rt_loop_del(loop, r->listen_fd);
  close(r->listen_fd);
  if (r->file_fd >= 0)
    close(r->file_fd);
  free(r->file);
  free(r);
}

struct rt_log_receiver *rt_log_receiver_start(struct rt_loop *loop, int listen_fd,
                                              uint32_t peer_cid, const char *file,
                                              uint64_t file_max)
{
  struct rt_log_receiver *r = calloc(1, sizeof *r);
  if (!r)
    return NULL;
  r->listen_fd = listen_fd;
  r->peer_cid = peer_cid;
  r->file = file && *file ? strdup(file) : NULL;
  r->file_max = file_max;
  r->file_fd = -1;
  open_log_file(r);
  r->watch.ready = log_accept;
  if (rt_loop_add(loop, listen_fd, EPOLLIN, &r->watch) != 0 ||
      rt_loop_on_free(loop, receiver_free, r) != 0) {
    free(r->file);
    free(r);
    return NULL;
  }
  return r;
}
