/* The enclave's attestation endpoint: `GET /attestation?nonce=<hex>[&user_data=<hex>]` answered
 * with `200 application/cbor` (the NSM's document for that nonce) or `503` with the reason when
 * there is no NSM device. Nothing else is served; nothing can be changed through it. */
#ifndef KILN_RT_ATTEST_SERVER_H
#define KILN_RT_ATTEST_SERVER_H

#include "rt_loop.h"

struct rt_attest_server;

/* Serve on listen_fd (listening, non-blocking); device is /dev/nsm outside tests. */
struct rt_attest_server *rt_attest_server_start(struct rt_loop *loop, int listen_fd,
                                                const char *device,
                                                void (*log)(void *, const char *), void *log_arg);

/* The answer for one request head (exposed for unit tests): fills out (of size) and returns its
 * length. */
size_t rt_attest_answer(const char *head, size_t head_len, const char *device, char *out,
                        size_t size);

#endif
