/* The splice core (see rt_pair.h). */
#define _GNU_SOURCE
#include "rt_pair.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sockios.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#define RT_SCRATCH (256u * 1024u)
#define RT_READS_PER_EVENT 8
/* vsock drops bytes still queued in the sender's transport when the socket is closed, so a
 * finished pair waits until its vsock sides have handed everything on (SIOCOUTQ, Linux >= 6.10);
 * where the kernel cannot tell, it waits this long after the last write before closing. */
#define RT_VSOCK_LINGER_MS 2000
#define RT_VSOCK_LINGER_MAX_MS 10000

struct rt_side {
  struct rt_watch watch;
  struct rt_pair *pair;
  int fd;
  uint32_t events;  /* what epoll watches now */
  bool read_eof;    /* this side sent EOF */
  bool write_shut;  /* shutdown(SHUT_WR) done on this side */
  uint8_t *pending; /* bytes still to write to this side */
  size_t pending_off, pending_len;
  bool vsock;
  bool registered; /* in the epoll set (only while events != 0) */
};

struct rt_pair {
  struct rt_side side[2];
  struct rt_pair_stats stats;
  struct rt_pair_opts opts;
  uint64_t last_active;
  uint64_t closing_since; /* both directions finished; waiting for vsock queues to drain */
  bool dead;
  struct rt_pair *prev, *next;
};

/* All live pairs, for idle checks and shutdown. The programs are single-threaded. */
static struct rt_pair *live_pairs;
static size_t live_count;
static uint8_t *scratch;

size_t rt_pair_count(void)
{
  return live_count;
}

static void pair_free(void *p)
{
  struct rt_pair *pair = p;
  for (int i = 0; i < 2; i++)
    free(pair->side[i].pending);
  free(pair);
}

static void pair_end(struct rt_loop *loop, struct rt_pair *pair, int error)
{
  if (pair->dead)
    return;
  pair->dead = true;
  if (error && !pair->stats.error)
    pair->stats.error = error;
  for (int i = 0; i < 2; i++) {
    rt_loop_del(loop, pair->side[i].fd);
    close(pair->side[i].fd);
    pair->side[i].fd = -1;
  }
  if (pair->prev)
    pair->prev->next = pair->next;
  else
    live_pairs = pair->next;
  if (pair->next)
    pair->next->prev = pair->prev;
  live_count--;
  if (pair->opts.on_close)
    pair->opts.on_close(pair->opts.arg, &pair->stats);
  rt_loop_defer_free(loop, pair, pair_free);
}

/* Write what is pending to side s; 0 when all is written, 1 when some is left, -1 on error. */
static int flush_pending(struct rt_side *s)
{
  while (s->pending_len) {
    ssize_t w = send(s->fd, s->pending + s->pending_off, s->pending_len, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR)
      continue;
    if (w < 0)
      return errno == EAGAIN || errno == EWOULDBLOCK ? 1 : -1;
    s->pending_off += (size_t)w;
    s->pending_len -= (size_t)w;
  }
  free(s->pending);
  s->pending = NULL;
  s->pending_off = 0;
  return 0;
}

static int keep_pending(struct rt_side *s, const uint8_t *data, size_t len)
{
  uint8_t *copy = malloc(len);
  if (!copy)
    return -1;
  memcpy(copy, data, len);
  free(s->pending);
  s->pending = copy;
  s->pending_off = 0;
  s->pending_len = len;
  return 0;
}

/* Bytes a vsock side has not handed to its transport yet: 0, >0, or -1 when the kernel cannot
 * tell. */
static long vsock_unsent(const struct rt_side *s)
{
  int n = 0;
  if (!s->vsock)
    return 0;
  return ioctl(s->fd, SIOCOUTQ, &n) == 0 ? n : -1;
}

/* Both directions are finished: close now, or once the vsock sides have drained. */
static void finish(struct rt_loop *loop, struct rt_pair *pair)
{
  uint64_t now = rt_now_ms();
  if (!pair->closing_since) {
    pair->closing_since = now;
    for (int i = 0; i < 2; i++)
      if (pair->side[i].registered) {
        rt_loop_del(loop, pair->side[i].fd);
        pair->side[i].registered = false;
        pair->side[i].events = 0;
      }
  }
  for (int i = 0; i < 2; i++) {
    long unsent = vsock_unsent(&pair->side[i]);
    bool waited = now - pair->last_active >= RT_VSOCK_LINGER_MS;
    if ((unsent > 0 || (unsent < 0 && !waited)) &&
        now - pair->closing_since < RT_VSOCK_LINGER_MAX_MS)
      return; /* the idle tick comes back */
  }
  pair_end(loop, pair, 0);
}

/* Recompute what epoll watches on each side; ends the pair when nothing is left to do. */
static void update_interest(struct rt_loop *loop, struct rt_pair *pair)
{
  for (int i = 0; i < 2; i++) {
    struct rt_side *s = &pair->side[i], *o = &pair->side[1 - i];
    if (o->read_eof && !o->pending_len && !s->pending_len && !s->write_shut) {
      /* the other side finished and everything it sent is written: pass the EOF on */
      shutdown(s->fd, SHUT_WR);
      s->write_shut = true;
    }
  }
  bool done = pair->side[0].write_shut && pair->side[1].write_shut;
  if (done) {
    finish(loop, pair);
    return;
  }
  for (int i = 0; i < 2; i++) {
    struct rt_side *s = &pair->side[i], *o = &pair->side[1 - i];
    uint32_t ev = 0;
    if (!s->read_eof && !o->pending_len && !o->write_shut)
      ev |= EPOLLIN;
    if (s->pending_len)
      ev |= EPOLLOUT;
    if (ev != s->events || !s->registered) {
      /* A side with nothing to wait for leaves the epoll set: a hang-up (always reported) must
       * not wake the loop over and over while its bytes wait for the other side. */
      int rc = 0;
      if (!ev && s->registered)
        rt_loop_del(loop, s->fd);
      else if (ev && !s->registered)
        rc = rt_loop_add(loop, s->fd, ev, &s->watch);
      else if (ev)
        rc = rt_loop_mod(loop, s->fd, ev, &s->watch);
      if (rc != 0) {
        pair_end(loop, pair, errno);
        return;
      }
      s->registered = ev != 0;
      s->events = ev;
    }
  }
}

/* Read from s and write straight to o; a remainder o cannot take now is kept as o's pending. */
static int relay(struct rt_pair *pair, int from)
{
  struct rt_side *s = &pair->side[from], *o = &pair->side[1 - from];
  uint64_t *count = from == 0 ? &pair->stats.a_to_b : &pair->stats.b_to_a;
  for (int round = 0; round < RT_READS_PER_EVENT && !o->pending_len && !s->read_eof; round++) {
    ssize_t n = recv(s->fd, scratch, RT_SCRATCH, 0);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : errno;
    if (n == 0) {
      s->read_eof = true;
      break;
    }
    size_t off = 0;
    while (off < (size_t)n) {
      ssize_t w = send(o->fd, scratch + off, (size_t)n - off, MSG_NOSIGNAL);
      if (w < 0 && errno == EINTR)
        continue;
      if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
        return errno;
      if (w < 0)
        break;
      off += (size_t)w;
    }
    *count += off;
    if (off < (size_t)n) {
      if (keep_pending(o, scratch + off, (size_t)n - off) != 0)
        return ENOMEM;
      *count += (size_t)n - off; /* counted once written or dropped with the pair */
    }
    if ((size_t)n < RT_SCRATCH)
      break; /* drained for now */
  }
  return 0;
}

static void side_ready(struct rt_loop *loop, struct rt_watch *w, uint32_t events)
{
  struct rt_side *s = (struct rt_side *)w;
  struct rt_pair *pair = s->pair;
  if (pair->dead)
    return;
  int from = s == &pair->side[0] ? 0 : 1;
  pair->last_active = rt_now_ms();
  if (events & EPOLLOUT) {
    int r = flush_pending(s);
    if (r < 0) {
      pair_end(loop, pair, errno);
      return;
    }
  }
  if (events & EPOLLERR) {
    int soerr = 0;
    socklen_t len = sizeof soerr;
    getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &soerr, &len);
    if (soerr) {
      pair_end(loop, pair, soerr);
      return;
    }
  }
  if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
    /* a hang-up still leaves the bytes that came before it to read */
    int err = relay(pair, from);
    if (err) {
      pair_end(loop, pair, err);
      return;
    }
  }
  update_interest(loop, pair);
}

static void close_idle(struct rt_loop *loop, void *arg, uint64_t now)
{
  (void)arg;
  for (struct rt_pair *p = live_pairs, *next; p; p = next) {
    next = p->next;
    if (p->closing_since)
      finish(loop, p);
    else if (p->opts.idle_ms && now - p->last_active > p->opts.idle_ms)
      pair_end(loop, p, ETIMEDOUT);
  }
}

int rt_pair_watch_idle(struct rt_loop *loop)
{
  return rt_loop_every(loop, close_idle, NULL);
}

void rt_pair_close_all(struct rt_loop *loop)
{
  while (live_pairs)
    pair_end(loop, live_pairs, ECANCELED);
}

int rt_pair_start(struct rt_loop *loop, int a, int b, const void *to_b, size_t to_b_len,
                  const void *to_a, size_t to_a_len, const struct rt_pair_opts *opts)
{
  struct rt_pair *pair = calloc(1, sizeof *pair);
  if (!scratch)
    scratch = malloc(RT_SCRATCH);
  if (!pair || !scratch || rt_set_nonblock(a) != 0 || rt_set_nonblock(b) != 0 ||
      (to_b_len && keep_pending(&pair->side[1], to_b, to_b_len) != 0) ||
      (to_a_len && keep_pending(&pair->side[0], to_a, to_a_len) != 0)) {
    if (pair)
      pair_free(pair);
    close(a);
    close(b);
    return -1;
  }
  if (opts)
    pair->opts = *opts;
  pair->last_active = rt_now_ms();
  int fds[2] = {a, b};
  for (int i = 0; i < 2; i++) {
    int domain = 0;
    socklen_t len = sizeof domain;
    pair->side[i].watch.ready = side_ready;
    pair->side[i].pair = pair;
    pair->side[i].fd = fds[i];
    pair->side[i].vsock =
        getsockopt(fds[i], SOL_SOCKET, SO_DOMAIN, &domain, &len) == 0 && domain == AF_VSOCK;
  }
  pair->next = live_pairs;
  if (live_pairs)
    live_pairs->prev = pair;
  live_pairs = pair;
  live_count++;
  update_interest(loop, pair);
  return 0;
}

struct lingering {
  struct rt_watch watch;
  int fd;
  uint64_t deadline;
  struct lingering *next;
};

static struct lingering *lingering_list;

static void lingering_close(struct rt_loop *loop, struct lingering *l)
{
  if (l->fd < 0)
    return;
  rt_loop_del(loop, l->fd);
  close(l->fd);
  l->fd = -1;
}

static void lingering_ready(struct rt_loop *loop, struct rt_watch *w, uint32_t events)
{
  struct lingering *l = (struct lingering *)w;
  char junk[4096];
  (void)events;
  if (l->fd < 0)
    return;
  ssize_t n = recv(l->fd, junk, sizeof junk, MSG_DONTWAIT);
  if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
    lingering_close(loop, l);
}

static void lingering_tick(struct rt_loop *loop, void *arg, uint64_t now)
{
  (void)arg;
  struct lingering **pp = &lingering_list;
  while (*pp) {
    struct lingering *l = *pp;
    if (l->fd >= 0 && now >= l->deadline)
      lingering_close(loop, l);
    if (l->fd < 0) {
      *pp = l->next;
      rt_loop_defer_free(loop, l, free);
    } else {
      pp = &l->next;
    }
  }
}

static void lingering_free(struct rt_loop *loop, void *arg)
{
  (void)arg;
  while (lingering_list) {
    struct lingering *l = lingering_list;
    lingering_list = l->next;
    lingering_close(loop, l);
    free(l);
  }
}

void rt_close_after_send(struct rt_loop *loop, int fd)
{
  static struct rt_loop *ticking;
  struct lingering *l = calloc(1, sizeof *l);
  shutdown(fd, SHUT_WR);
  if (!l || (ticking != loop && (rt_loop_every(loop, lingering_tick, NULL) != 0 ||
                                 rt_loop_on_free(loop, lingering_free, NULL) != 0))) {
    free(l);
    close(fd);
    return;
  }
  ticking = loop;
  l->watch.ready = lingering_ready;
  l->fd = fd;
  l->deadline = rt_now_ms() + 5000;
  if (rt_loop_add(loop, fd, EPOLLIN, &l->watch) != 0) {
    close(fd);
    free(l);
    return;
  }
  l->next = lingering_list;
  lingering_list = l;
}
