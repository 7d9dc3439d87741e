/* The runtime's event loop: one epoll set, objects that react to readiness, a periodic tick for
 * timeouts, and deferred frees so an object can end itself while its events are being handled.
 * Shared by kiln-agent (in the enclave) and kiln-host (on the parent); libc only. */
#ifndef KILN_RT_LOOP_H
#define KILN_RT_LOOP_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

struct rt_loop;

/* Embedded in every object registered with the loop; `ready` gets the epoll events. */
struct rt_watch {
  void (*ready)(struct rt_loop *loop, struct rt_watch *w, uint32_t events);
};

struct rt_loop *rt_loop_new(void);
void rt_loop_free(struct rt_loop *loop);

/* epoll registration of fd for `events` (EPOLLIN/EPOLLOUT); 0 or -1 with errno. */
int rt_loop_add(struct rt_loop *loop, int fd, uint32_t events, struct rt_watch *w);
int rt_loop_mod(struct rt_loop *loop, int fd, uint32_t events, struct rt_watch *w);
void rt_loop_del(struct rt_loop *loop, int fd);

/* fn(arg, now_ms) about every 100 ms (at most 160 ticks). */
int rt_loop_every(struct rt_loop *loop, void (*fn)(struct rt_loop *, void *, uint64_t), void *arg);

/* fn(loop, arg) when the loop is freed (latest first): objects close their sockets and free
 * themselves there. */
int rt_loop_on_free(struct rt_loop *loop, void (*fn)(struct rt_loop *, void *), void *arg);

/* free_fn(ptr) once the current batch of events has been handled. */
int rt_loop_defer_free(struct rt_loop *loop, void *ptr, void (*free_fn)(void *));

/* Runs until *stop becomes non-zero (a signal handler sets it); 0, or -1 on an epoll error. */
int rt_loop_run(struct rt_loop *loop, volatile sig_atomic_t *stop);

/* Keeps handling events after a stop, until done(arg) says so or ms have passed (a last flush). */
void rt_loop_drain(struct rt_loop *loop, unsigned ms, int (*done)(void *), void *arg);

uint64_t rt_now_ms(void);

/* Helpers for the programs: make fd non-blocking and close-on-exec. */
int rt_set_nonblock(int fd);

#endif
