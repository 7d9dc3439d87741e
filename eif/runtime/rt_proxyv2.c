/* PROXY protocol version 2 headers (see rt_proxyv2.h). */
#include "rt_proxyv2.h"

#include <netinet/in.h>
#include <string.h>

static const uint8_t signature[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                      0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

size_t rt_proxyv2_build(uint8_t *out, const struct sockaddr *src, const struct sockaddr *dst)
{
  memcpy(out, signature, 12);
  size_t len = 0;
  if (src->sa_family == AF_INET && dst->sa_family == AF_INET) {
    const struct sockaddr_in *s = (const void *)src, *d = (const void *)dst;
    out[12] = 0x21; /* version 2, PROXY */
    out[13] = 0x11; /* TCP over IPv4 */
    memcpy(out + 16, &s->sin_addr, 4);
    memcpy(out + 20, &d->sin_addr, 4);
    memcpy(out + 24, &s->sin_port, 2);
    memcpy(out + 26, &d->sin_port, 2);
    len = 12;
  } else if (src->sa_family == AF_INET6 && dst->sa_family == AF_INET6) {
    const struct sockaddr_in6 *s = (const void *)src, *d = (const void *)dst;
    out[12] = 0x21;
    out[13] = 0x21; /* TCP over IPv6 */
    memcpy(out + 16, &s->sin6_addr, 16);
    memcpy(out + 32, &d->sin6_addr, 16);
    memcpy(out + 48, &s->sin6_port, 2);
    memcpy(out + 50, &d->sin6_port, 2);
    len = 36;
  } else {
    out[12] = 0x20; /* version 2, LOCAL: no address */
    out[13] = 0x00;
  }
  out[14] = (uint8_t)(len >> 8);
  out[15] = (uint8_t)len;
  return 16 + len;
}

long rt_proxyv2_check(const uint8_t *buf, size_t len)
{
  size_t cmp = len < 12 ? len : 12;
  if (memcmp(buf, signature, cmp) != 0)
    return -1;
  if (len < 16)
    return 0;
  uint8_t version = buf[12] >> 4, command = buf[12] & 0x0f, family = buf[13];
  size_t body = ((size_t)buf[14] << 8) | buf[15];
  if (version != 2 || command > 1 || 16 + body > RT_PROXYV2_MAX)
    return -1;
  if (command == 1 && !((family == 0x11 && body >= 12) || (family == 0x21 && body >= 36)))
    return -1;
  return len < 16 + body ? 0 : (long)(16 + body);
}
