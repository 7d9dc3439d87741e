/* The enclave console as kiln-agent writes it: whole lines queued in a bounded buffer and written
 * without blocking whenever the console (a slow serial port, under emulation very slow) takes
 * them, so the agent's loop never waits on it and a momentarily full console loses nothing. A
 * line that does not fit in the buffer is dropped whole and counted; lines never interleave with
 * each other. At exit the agent drains the queue (rt_console_idle) within a time limit. */
#ifndef KILN_RT_CONSOLE_H
#define KILN_RT_CONSOLE_H

#include <stddef.h>
#include <stdint.h>

#include "rt_loop.h"

struct rt_console;

/* Write to fd (made non-blocking; owned from here on, closed when the loop is freed) through a
 * queue of cap bytes. NULL when out of memory. */
struct rt_console *rt_console_start(struct rt_loop *loop, int fd, size_t cap);

/* Queue prefix + text[0..len) + "\n" (prefix may be NULL) and write what the console takes now. */
void rt_console_line(struct rt_console *c, const char *prefix, const char *text, size_t len);

/* 1 when everything queued has been written (or the console failed for good). */
int rt_console_idle(const struct rt_console *c);

/* Lines dropped because the queue was full. */
uint64_t rt_console_dropped(const struct rt_console *c);

#endif
