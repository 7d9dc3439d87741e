/* PROXY protocol version 2 headers: kiln-host writes one with the real client address in front
 * of an ingress connection on ports that ask for it; kiln-agent checks it before the app sees
 * the stream. */
#ifndef KILN_RT_PROXYV2_H
#define KILN_RT_PROXYV2_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define RT_PROXYV2_MAX 232 /* 16-byte preamble + the largest address block we write or accept */

/* Header for a TCP connection from src to dst (AF_INET/AF_INET6; anything else gives a LOCAL
 * header). Returns its length. */
size_t rt_proxyv2_build(uint8_t *out, const struct sockaddr *src, const struct sockaddr *dst);

/* Length of a complete, valid header at the start of buf; 0 when more bytes are needed; -1 when
 * the bytes are not a PROXY v2 header. */
long rt_proxyv2_check(const uint8_t *buf, size_t len);

#endif
