/* CRC32C with the SSE4.2 crc32 instruction when present (a table otherwise), and base64 text.
 * Written here because none of our libraries exposes CRC32C (zlib has only CRC-32) and the
 * instruction makes per-part checksums nearly free next to MD5 or SHA-256. */
#include "checksum.h"

#include <pthread.h>
#include <string.h>

#include <openssl/evp.h>

#if defined(__x86_64__)
#include <nmmintrin.h>
#define KILN_HAVE_SSE42_PATH 1
#endif

/* Written once (pthread_once) before any reader sees it, then read-only. */
static uint32_t table[256];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void make_table(void)
{
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = i;
    for (int k = 0; k < 8; k++)
      c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    table[i] = c;
  }
}

static uint32_t crc32c_table(uint32_t crc, const unsigned char *p, size_t len)
{
  pthread_once(&table_once, make_table);
  while (len--)
    crc = table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
  return crc;
}

#ifdef KILN_HAVE_SSE42_PATH
__attribute__((target("sse4.2"))) static uint32_t crc32c_sse42(uint32_t crc, const unsigned char *p,
                                                               size_t len)
{
  uint64_t c = crc;
  while (len >= 8) {
    uint64_t v;
    memcpy(&v, p, 8);
    c = _mm_crc32_u64(c, v);
    p += 8;
    len -= 8;
  }
  uint32_t c32 = (uint32_t)c;
  while (len--)
    c32 = _mm_crc32_u8(c32, *p++);
  return c32;
}
#endif

uint32_t kiln_crc32c(uint32_t crc, const void *data, size_t len)
{
  crc = ~crc;
#ifdef KILN_HAVE_SSE42_PATH
  if (__builtin_cpu_supports("sse4.2"))
    return ~crc32c_sse42(crc, data, len);
#endif
  return ~crc32c_table(crc, data, len);
}

void kiln_base64(const unsigned char *in, size_t len, char *out)
{
  EVP_EncodeBlock((unsigned char *)out, in, (int)len);
}

void kiln_crc32c_base64(uint32_t crc, char out[9])
{
  unsigned char be[4] = {(unsigned char)(crc >> 24), (unsigned char)(crc >> 16),
                         (unsigned char)(crc >> 8), (unsigned char)crc};
  kiln_base64(be, 4, out);
}
