/* The runtime's event loop (see rt_loop.h): epoll, periodic ticks and deferred frees. */
#define _GNU_SOURCE
#include "rt_loop.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#define RT_MAX_TICKS 160
#define RT_BATCH 256
#define RT_TICK_MS 100

struct rt_deferred {
  void *ptr;
  void (*free_fn)(void *);
};

struct rt_tick {
  void (*fn)(struct rt_loop *, void *, uint64_t);
  void *arg;
};

struct rt_cleanup {
  void (*fn)(struct rt_loop *, void *);
  void *arg;
};

struct rt_loop {
  int epfd;
  struct rt_cleanup *cleanups;
  size_t ncleanups;
  struct rt_tick ticks[RT_MAX_TICKS];
  int nticks;
  struct rt_deferred *deferred;
  size_t ndeferred, deferred_cap;
  uint64_t last_tick;
};

uint64_t rt_now_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int rt_set_nonblock(int fd)
{
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0)
    return -1;
  return fcntl(fd, F_SETFD, FD_CLOEXEC);
}

struct rt_loop *rt_loop_new(void)
{
  struct rt_loop *loop = calloc(1, sizeof *loop);
  if (!loop)
    return NULL;
  loop->epfd = epoll_create1(EPOLL_CLOEXEC);
  if (loop->epfd < 0) {
    free(loop);
    return NULL;
  }
  loop->last_tick = rt_now_ms();
  return loop;
}

static void run_deferred(struct rt_loop *loop)
{
  /* A free function may defer more frees: take the list first. */
  while (loop->ndeferred) {
    size_t n = loop->ndeferred;
    struct rt_deferred *list = loop->deferred;
    loop->deferred = NULL;
    loop->ndeferred = loop->deferred_cap = 0;
    for (size_t i = 0; i < n; i++)
      list[i].free_fn(list[i].ptr);
    free(list);
  }
}

int rt_loop_on_free(struct rt_loop *loop, void (*fn)(struct rt_loop *, void *), void *arg)
{
  struct rt_cleanup *grown = realloc(loop->cleanups, (loop->ncleanups + 1) * sizeof *grown);
  if (!grown)
    return -1;
  grown[loop->ncleanups++] = (struct rt_cleanup){fn, arg};
  loop->cleanups = grown;
  return 0;
}

void rt_loop_free(struct rt_loop *loop)
{
  if (!loop)
    return;
  run_deferred(loop);
  while (loop->ncleanups) {
    struct rt_cleanup c = loop->cleanups[--loop->ncleanups];
    c.fn(loop, c.arg);
    run_deferred(loop);
  }
  free(loop->cleanups);
  close(loop->epfd);
  free(loop);
}

static int ctl(struct rt_loop *loop, int op, int fd, uint32_t events, struct rt_watch *w)
{
  struct epoll_event ev = {.events = events, .data.ptr = w};
  return epoll_ctl(loop->epfd, op, fd, &ev);
}

int rt_loop_add(struct rt_loop *loop, int fd, uint32_t events, struct rt_watch *w)
{
  return ctl(loop, EPOLL_CTL_ADD, fd, events, w);
}

int rt_loop_mod(struct rt_loop *loop, int fd, uint32_t events, struct rt_watch *w)
{
  return ctl(loop, EPOLL_CTL_MOD, fd, events, w);
}

void rt_loop_del(struct rt_loop *loop, int fd)
{
  (void)epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL);
}

int rt_loop_every(struct rt_loop *loop, void (*fn)(struct rt_loop *, void *, uint64_t), void *arg)
{
  if (loop->nticks >= RT_MAX_TICKS) {
    errno = ENOSPC;
    return -1;
  }
  loop->ticks[loop->nticks++] = (struct rt_tick){fn, arg};
  return 0;
}

int rt_loop_defer_free(struct rt_loop *loop, void *ptr, void (*free_fn)(void *))
{
  if (loop->ndeferred == loop->deferred_cap) {
    size_t cap = loop->deferred_cap ? loop->deferred_cap * 2 : 64;
    struct rt_deferred *grown = realloc(loop->deferred, cap * sizeof *grown);
    if (!grown) {
      free_fn(ptr); /* out of memory: nothing else refers to it once its fds are closed */
      return -1;
    }
    loop->deferred = grown;
    loop->deferred_cap = cap;
  }
  loop->deferred[loop->ndeferred++] = (struct rt_deferred){ptr, free_fn};
  return 0;
}

int rt_loop_run(struct rt_loop *loop, volatile sig_atomic_t *stop)
{
  struct epoll_event events[RT_BATCH];
  while (!*stop) {
    int n = epoll_wait(loop->epfd, events, RT_BATCH, RT_TICK_MS);
    if (n < 0 && errno != EINTR)
      return -1;
    for (int i = 0; i < n; i++) {
      struct rt_watch *w = events[i].data.ptr;
      w->ready(loop, w, events[i].events);
    }
    run_deferred(loop);
    uint64_t now = rt_now_ms();
    if (now - loop->last_tick >= RT_TICK_MS) {
      loop->last_tick = now;
      for (int t = 0; t < loop->nticks; t++)
        loop->ticks[t].fn(loop, loop->ticks[t].arg, now);
      run_deferred(loop);
    }
  }
  return 0;
}

void rt_loop_drain(struct rt_loop *loop, unsigned ms, int (*done)(void *), void *arg)
{
  uint64_t end = rt_now_ms() + ms;
  while (!done(arg) && rt_now_ms() < end) {
    struct epoll_event events[RT_BATCH];
    int n = epoll_wait(loop->epfd, events, RT_BATCH, 20);
    for (int i = 0; i < n; i++) {
      struct rt_watch *w = events[i].data.ptr;
      w->ready(loop, w, events[i].events);
    }
    run_deferred(loop);
    uint64_t now = rt_now_ms();
    for (int t = 0; t < loop->nticks; t++)
      loop->ticks[t].fn(loop, loop->ticks[t].arg, now);
    run_deferred(loop);
  }
}
