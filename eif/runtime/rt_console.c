/* The enclave console's line queue (see rt_console.h): a ring of bytes written as the console
 * takes them, on EPOLLOUT when the console can be polled (a tty or a pipe) and on the loop's tick
 * otherwise. */
#include "rt_console.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

struct rt_console {
  struct rt_watch watch;
  struct rt_loop *loop;
  int fd;       /* -1 once the console failed for good */
  int polled;   /* registered with the loop (regular files cannot be polled) */
  int want_out; /* EPOLLOUT is asked for */
  uint8_t *ring;
  size_t cap, head, len;
  uint64_t dropped;
};

static void console_fail(struct rt_console *c)
{
  if (c->polled)
    rt_loop_del(c->loop, c->fd);
  close(c->fd);
  c->fd = -1;
  c->polled = 0;
  c->len = 0;
}

static void console_flush(struct rt_console *c)
{
  while (c->len && c->fd >= 0) {
    size_t chunk = c->cap - c->head < c->len ? c->cap - c->head : c->len;
    ssize_t w = write(c->fd, c->ring + c->head, chunk);
    if (w < 0 && errno == EINTR)
      continue;
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      break;
    if (w <= 0) {
      console_fail(c);
      return;
    }
    c->head = (c->head + (size_t)w) % c->cap;
    c->len -= (size_t)w;
  }
  int want = c->len > 0;
  if (c->polled && want != c->want_out &&
      rt_loop_mod(c->loop, c->fd, want ? (uint32_t)EPOLLOUT : 0, &c->watch) == 0)
    c->want_out = want;
}

static void console_ready(struct rt_loop *loop, struct rt_watch *w, uint32_t events)
{
  struct rt_console *c = (struct rt_console *)w;
  if ((events & (EPOLLERR | EPOLLHUP)) && !c->len && c->polled) {
    /* reported again and again while nothing is queued: stop polling, the tick writes from here
     * on and a write that fails ends the console */
    rt_loop_del(loop, c->fd);
    c->polled = 0;
    c->want_out = 0;
    return;
  }
  console_flush(c);
}

static void console_tick(struct rt_loop *loop, void *arg, uint64_t now)
{
  (void)loop;
  (void)now;
  struct rt_console *c = arg;
  if (c->len)
    console_flush(c);
}

static void console_free(struct rt_loop *loop, void *arg)
{
  (void)loop;
  struct rt_console *c = arg;
  if (c->fd >= 0)
    console_fail(c);
  free(c->ring);
  free(c);
}

struct rt_console *rt_console_start(struct rt_loop *loop, int fd, size_t cap)
{
  struct rt_console *c = calloc(1, sizeof *c);
  if (!c || !(c->ring = malloc(cap))) {
    free(c);
    return NULL;
  }
  c->watch.ready = console_ready;
  c->loop = loop;
  c->fd = fd;
  c->cap = cap;
  int flags = fcntl(fd, F_GETFL);
  if (flags >= 0)
    (void)fcntl(fd, F_SETFL, flags | O_NONBLOCK);
  c->polled = rt_loop_add(loop, fd, 0, &c->watch) == 0;
  if (rt_loop_every(loop, console_tick, c) != 0 || rt_loop_on_free(loop, console_free, c) != 0) {
    if (c->polled)
      rt_loop_del(loop, fd);
    free(c->ring);
    free(c);
    return NULL;
  }
  return c;
}

static void ring_put(struct rt_console *c, const void *data, size_t n)
{
  const uint8_t *p = data;
  for (size_t i = 0; i < n; i++)
    c->ring[(c->head + c->len + i) % c->cap] = p[i];
  c->len += n;
}

void rt_console_line(struct rt_console *c, const char *prefix, const char *text, size_t len)
{
  if (!c || c->fd < 0)
    return;
  size_t plen = prefix ? strlen(prefix) : 0;
  if (plen + len + 1 > c->cap - c->len) {
    c->dropped++;
    return;
  }
  ring_put(c, prefix, plen);
  ring_put(c, text, len);
  ring_put(c, "\n", 1);
  console_flush(c);
}

int rt_console_idle(const struct rt_console *c)
{
  return !c || c->len == 0;
}

uint64_t rt_console_dropped(const struct rt_console *c)
{
  return c ? c->dropped : 0;
}
