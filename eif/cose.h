/* Private to libkiln-eif: the COSE_Sign1 pieces (ES384) that EIF signing and attestation
 * verification share: the Sig_structure, and ECDSA between COSE's r || s and OpenSSL's DER. */
#ifndef KILN_EIF_COSE_H
#define KILN_EIF_COSE_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#define EIF_COSE_ES384_SIG_LEN 96
#define EIF_COSE_ALG_ES384 (-35)

/* The protected header {1: -35} as eif_build and the NSM encode it. */
extern const uint8_t eif_cose_protected_es384[4];

/* Sig_structure = ["Signature1", protected, h'', payload] as CBOR; caller frees *out.
 * Returns 1 on success, 0 when out of memory. */
int eif_cose_sig_structure(const uint8_t *protected_header, size_t protected_len,
                           const uint8_t *payload, size_t payload_len, uint8_t **out, size_t *len);
/* Sign tbs with SHA-384 and key; rs receives r || s (48 bytes each). Returns 1 on success. */
int eif_cose_es384_sign(EVP_PKEY *key, const uint8_t *tbs, size_t len,
                        uint8_t rs[EIF_COSE_ES384_SIG_LEN]);
/* 1 when rs (r || s) is a valid ES384 signature of tbs by key, else 0. */
int eif_cose_es384_verify(EVP_PKEY *key, const uint8_t *tbs, size_t len,
                          const uint8_t rs[EIF_COSE_ES384_SIG_LEN]);

#endif
