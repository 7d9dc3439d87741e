/* Private to libkiln-eif: the signature section (COSE_Sign1 ES384 over PCR0) and PCR8. */
#ifndef KILN_EIF_SIGN_H
#define KILN_EIF_SIGN_H

#include <stddef.h>
#include <stdint.h>

#include "kiln/eif.h"

struct eif_signer;

/* Load a PEM certificate and its P-384 private key; the key must match the certificate. */
kiln_err eif_signer_load(const char *cert_path, const char *key_path, struct eif_signer **out,
                         struct kiln_error *err);
void eif_signer_free(struct eif_signer *s);
/* PCR8 = H(zeros || H(certificate DER)) as hex. */
void eif_signer_pcr8(const struct eif_signer *s, enum kiln_eif_hash hash, char *hex);
/* The signature section's bytes for this PCR0 (raw digest bytes); caller frees *out. */
kiln_err eif_sign_section(const struct eif_signer *s, const uint8_t *pcr0, size_t pcr0_len,
                          uint8_t **out, size_t *len, struct kiln_error *err);
/* Check a signature section against PCR0: the COSE signature verifies with the certificate's key.
 * *pcr8 receives PCR8 (hex) from the embedded certificate. */
kiln_err eif_sign_check(const uint8_t *section, size_t len, const uint8_t *pcr0, size_t pcr0_len,
                        enum kiln_eif_hash hash, char *pcr8, struct kiln_error *err);

#endif
