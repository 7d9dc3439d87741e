/* Log records of the enclave: "<RFC 3339 UTC time> <source> <line>\n" with source stdout, stderr,
 * init or agent. In the enclave, lines from the app's pipes go into a bounded ring (the newest
 * are kept when nobody listens, so the app never blocks on logging) and are sent to the parent
 * whenever a connection to it stands. On the parent, records are written to stdout (journald)
 * and to a size-capped file that is rotated once (FILE.1). */
#ifndef KILN_RT_LOGS_H
#define KILN_RT_LOGS_H

#include <stddef.h>
#include <stdint.h>

#include "rt_console.h"
#include "rt_endpoint.h"
#include "rt_loop.h"

#define RT_LOG_LINE_MAX 16384

/* --- enclave side --- */
struct rt_log_sender;

/* Ring of ring_bytes; records are sent to `parent` (reconnecting every second). echo (the
 * console, or NULL) also gets every app line of a source added with echo. */
struct rt_log_sender *rt_log_sender_start(struct rt_loop *loop, const struct rt_endpoint *parent,
                                          size_t ring_bytes, struct rt_console *echo);

/* Read lines from fd (a pipe) as records of `source` until EOF. */
int rt_log_sender_add_source(struct rt_loop *loop, struct rt_log_sender *s, int fd,
                             const char *source, int echo);

/* One record now (the agent's own lines). */
void rt_log_sender_record(struct rt_log_sender *s, const char *source, const char *line,
                          size_t len);

/* Nothing more to do: every source has ended, the ring is sent (or no parent listens) and the
 * console has taken every line. */
int rt_log_sender_idle(void *sender);

/* Bytes waiting in the ring, records dropped because it was full. */
size_t rt_log_sender_queued(const struct rt_log_sender *s);
uint64_t rt_log_sender_dropped(const struct rt_log_sender *s);

/* --- parent side --- */
struct rt_log_receiver;

/* Accept senders on listen_fd (only from peer_cid when it is a vsock socket and peer_cid != 0);
 * records go to stdout and to file (NULL = stdout only) capped at file_max bytes. */
struct rt_log_receiver *rt_log_receiver_start(struct rt_loop *loop, int listen_fd,
                                              uint32_t peer_cid, const char *file,
                                              uint64_t file_max);

/* One formatted line (at most 600 bytes) to a line sink such as a program's log function; nothing
 * when log is NULL. */
void rt_logf(void (*log)(void *arg, const char *line), void *arg, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The time prefix of a record: "2026-11-29T08:15:10.123Z" (24 characters + NUL). */
void rt_log_time(char out[32]);

#endif
