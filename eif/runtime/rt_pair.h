/* The splice core: relays bytes both ways between two connected sockets (TCP, vsock or unix)
 * with back-pressure (a side is read only while the other has nothing pending), half-close
 * (EOF on one side becomes shutdown(SHUT_WR) on the other once its bytes are written), an idle
 * timeout and a connection count. Idle pairs cost no buffer: bytes go through one scratch buffer
 * of the loop and only an unwritten remainder is kept. */
#ifndef KILN_RT_PAIR_H
#define KILN_RT_PAIR_H

#include <stddef.h>
#include <stdint.h>

#include "rt_loop.h"

struct rt_pair_stats {
  uint64_t a_to_b, b_to_a; /* bytes relayed each way */
  int error;               /* errno of a failed read/write, ETIMEDOUT when idle, 0 */
};

struct rt_pair_opts {
  unsigned idle_ms; /* close after this long without a byte either way; 0 = never */
  /* Called once when the pair ends (both fds are closed by then); may be NULL. */
  void (*on_close)(void *arg, const struct rt_pair_stats *stats);
  void *arg;
};

/* Start relaying between a and b (both connected, any blocking mode: they are made
 * non-blocking). `to_b`/`to_a` are bytes to write first (a rewritten request, a response head,
 * bytes read ahead), copied. Takes ownership of a and b, also on failure (-1, both closed). */
int rt_pair_start(struct rt_loop *loop, int a, int b, const void *to_b, size_t to_b_len,
                  const void *to_a, size_t to_a_len, const struct rt_pair_opts *opts);

/* Number of live pairs (all loops), and a tick that closes idle pairs (call from the programs'
 * periodic tick, or register with rt_pair_watch_idle). */
size_t rt_pair_count(void);
int rt_pair_watch_idle(struct rt_loop *loop);

/* Close fd after a last answer was sent on it, without losing that answer: shut down writing,
 * then close when the peer closes (or after 5 s). vsock, unlike TCP, may drop bytes still queued
 * in the transport when a socket is closed at once. */
void rt_close_after_send(struct rt_loop *loop, int fd);

/* Close every live pair (at shutdown), calling their on_close. */
void rt_pair_close_all(struct rt_loop *loop);

#endif
