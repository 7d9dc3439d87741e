/* The Nitro Secure Module's attestation call as the 6.12 `nsm` driver takes it: a CBOR request
 * {"Attestation": {"user_data": bytes|null, "nonce": bytes|null, "public_key": null}} through
 * the NSM_IOCTL_RAW ioctl on /dev/nsm, and the CBOR answer {"Attestation": {"document": bytes}}
 * or {"Error": "text"}. The two messages are fixed and small, so they are encoded and decoded
 * here with strict bounds: kiln-agent is a static binary and Debian ships libcbor only as a
 * shared library. */
#ifndef KILN_RT_NSM_H
#define KILN_RT_NSM_H

#include <stddef.h>
#include <stdint.h>

#define RT_NSM_REQUEST_MAX 0x1000
#define RT_NSM_RESPONSE_MAX 0x3000
#define RT_NSM_NONCE_MAX 64
#define RT_NSM_USER_DATA_MAX 512

/* Encode the request; its length, or 0 when an input is too long. */
size_t rt_nsm_encode_attestation(uint8_t *out, size_t size, const uint8_t *nonce, size_t nonce_len,
                                 const uint8_t *user_data, size_t user_data_len);

/* Find the document in a response: 0 with the document (doc, doc_len) pointing into resp; -1 with
 * the NSM's error text (or what is wrong with the answer) in why. */
int rt_nsm_decode_attestation(const uint8_t *resp, size_t len, const uint8_t **doc, size_t *doc_len,
                              char *why, size_t why_size);

/* Ask /dev/nsm (or another device path, for tests); 0 with the document copied into doc (of
 * doc_size bytes); -1 with errno set and the reason in why (ENOENT: no NSM device). */
int rt_nsm_attest(const char *device, const uint8_t *nonce, size_t nonce_len,
                  const uint8_t *user_data, size_t user_data_len, uint8_t *doc, size_t doc_size,
                  size_t *doc_len, char *why, size_t why_size);

#endif
