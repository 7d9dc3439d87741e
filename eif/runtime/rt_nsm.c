/* The Nitro Secure Module's attestation call (see rt_nsm.h). */
#define _GNU_SOURCE
#include "rt_nsm.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

/* include/uapi/linux/nsm.h of Linux 6.12 (not in older kernel headers). */
struct rt_nsm_iovec {
  uint64_t addr, len;
};
struct rt_nsm_raw {
  struct rt_nsm_iovec request, response;
};
#define RT_NSM_IOCTL_RAW _IOWR(0x0A, 0x0, struct rt_nsm_raw)

/* CBOR head of major type `major` with argument n. */
static size_t head(uint8_t *out, uint8_t major, uint64_t n)
{
  major <<= 5;
  if (n < 24) {
    out[0] = major | (uint8_t)n;
    return 1;
  }
  if (n < 0x100) {
    out[0] = major | 24;
    out[1] = (uint8_t)n;
    return 2;
  }
  out[0] = major | 25;
  out[1] = (uint8_t)(n >> 8);
  out[2] = (uint8_t)n;
  return 3;
}

static size_t text(uint8_t *out, const char *s)
{
  size_t n = strlen(s), h = head(out, 3, n);
  memcpy(out + h, s, n);
  return h + n;
}

static size_t bytes_or_null(uint8_t *out, const uint8_t *b, size_t n)
{
  if (!b) {
    out[0] = 0xf6;
    return 1;
  }
  size_t h = head(out, 2, n);
  memcpy(out + h, b, n);
  return h + n;
}

size_t rt_nsm_encode_attestation(uint8_t *out, size_t size, const uint8_t *nonce, size_t nonce_len,
                                 const uint8_t *user_data, size_t user_data_len)
{
  if (nonce_len > RT_NSM_NONCE_MAX || user_data_len > RT_NSM_USER_DATA_MAX ||
      size < 64 + nonce_len + user_data_len)
    return 0;
  size_t n = head(out, 5, 1);
  n += text(out + n, "Attestation");
  n += head(out + n, 5, 3);
  n += text(out + n, "user_data");
  n += bytes_or_null(out + n, user_data, user_data_len);
  n += text(out + n, "nonce");
  n += bytes_or_null(out + n, nonce, nonce_len);
  n += text(out + n, "public_key");
  out[n++] = 0xf6;
  return n;
}

/* A strict reader for the answer: definite lengths only, everything bounds-checked. */
struct cur {
  const uint8_t *p, *end;
};

static int read_head(struct cur *c, uint8_t *major, uint64_t *arg)
{
  if (c->p >= c->end)
    return -1;
  uint8_t b = *c->p++;
  *major = b >> 5;
  uint8_t info = b & 31;
  if (info < 24) {
    *arg = info;
    return 0;
  }
  int n = info == 24 ? 1 : info == 25 ? 2 : info == 26 ? 4 : info == 27 ? 8 : 0;
  if (!n || c->end - c->p < n)
    return -1;
  *arg = 0;
  for (int i = 0; i < n; i++)
    *arg = *arg << 8 | *c->p++;
  return 0;
}

static int read_string(struct cur *c, uint8_t want_major, const uint8_t **s, size_t *len)
{
  uint8_t major;
  uint64_t n;
  if (read_head(c, &major, &n) != 0 || major != want_major || n > (uint64_t)(c->end - c->p))
    return -1;
  *s = c->p;
  *len = (size_t)n;
  c->p += n;
  return 0;
}

static int key_is(const uint8_t *s, size_t len, const char *want)
{
  return len == strlen(want) && memcmp(s, want, len) == 0;
}

int rt_nsm_decode_attestation(const uint8_t *resp, size_t len, const uint8_t **doc, size_t *doc_len,
                              char *why, size_t why_size)
{
  struct cur c = {resp, resp + len};
  uint8_t major;
  uint64_t n;
  const uint8_t *key;
  size_t klen;
  if (read_head(&c, &major, &n) != 0 || major != 5 || n != 1 ||
      read_string(&c, 3, &key, &klen) != 0) {
    snprintf(why, why_size, "the NSM answer is not a one-entry CBOR map");
    return -1;
  }
  if (key_is(key, klen, "Error")) {
    const uint8_t *msg;
    size_t mlen;
    if (read_string(&c, 3, &msg, &mlen) != 0)
      snprintf(why, why_size, "the NSM answered with an unreadable error");
    else
      snprintf(why, why_size, "the NSM answered: %.*s", (int)(mlen > 200 ? 200 : mlen), msg);
    return -1;
  }
  if (!key_is(key, klen, "Attestation") || read_head(&c, &major, &n) != 0 || major != 5 || n != 1 ||
      read_string(&c, 3, &key, &klen) != 0 || !key_is(key, klen, "document") ||
      read_string(&c, 2, doc, doc_len) != 0 || c.p != c.end) {
    snprintf(why, why_size, "the NSM answer is not {\"Attestation\": {\"document\": bytes}}");
    return -1;
  }
  return 0;
}

int rt_nsm_attest(const char *device, const uint8_t *nonce, size_t nonce_len,
                  const uint8_t *user_data, size_t user_data_len, uint8_t *doc, size_t doc_size,
                  size_t *doc_len, char *why, size_t why_size)
{
  uint8_t req[RT_NSM_REQUEST_MAX], resp[RT_NSM_RESPONSE_MAX];
  size_t req_len =
      rt_nsm_encode_attestation(req, sizeof req, nonce, nonce_len, user_data, user_data_len);
  if (!req_len) {
    snprintf(why, why_size, "nonce or user data too long");
    errno = EINVAL;
    return -1;
  }
  int fd = open(device, O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    if (e == ENOENT)
      snprintf(why, why_size, "no NSM device (%s is missing: not a Nitro Enclave)", device);
    else
      snprintf(why, why_size, "cannot open %s: %s", device, strerror(e));
    errno = e;
    return -1;
  }
  struct rt_nsm_raw raw = {{(uint64_t)(uintptr_t)req, req_len},
                           {(uint64_t)(uintptr_t)resp, sizeof resp}};
  int rc = ioctl(fd, RT_NSM_IOCTL_RAW, &raw);
  int e = errno;
  close(fd);
  if (rc != 0) {
    snprintf(why, why_size, "the NSM request failed: %s", strerror(e));
    errno = e;
    return -1;
  }
  const uint8_t *d;
  size_t dlen;
  if (raw.response.len > sizeof resp ||
      rt_nsm_decode_attestation(resp, (size_t)raw.response.len, &d, &dlen, why, why_size) != 0) {
    errno = EPROTO;
    return -1;
  }
  if (dlen > doc_size) {
    snprintf(why, why_size, "the attestation document is larger than %zu bytes", doc_size);
    errno = EOVERFLOW;
    return -1;
  }
  memcpy(doc, d, dlen);
  *doc_len = dlen;
  return 0;
}
