/* Private to libkiln-eif: the streaming measurement (PCR0/1/2 hash streams and the CRC). */
#ifndef KILN_EIF_MEASURE_H
#define KILN_EIF_MEASURE_H

#include <stdint.h>

#include <openssl/evp.h>

#include "kiln/eif.h"

/* Which PCRs a section's bytes go into. */
enum eif_feed {
  EIF_FEED_NONE = 0,
  EIF_FEED_BOOT = 1 /* PCR0 + PCR1 */,
  EIF_FEED_APP = 2 /* PCR0 + PCR2 */
};

struct eif_measure {
  const EVP_MD *md;
  EVP_MD_CTX *pcr[3];
  uint32_t crc;
  uint8_t raw[3][EVP_MAX_MD_SIZE]; /* PCR values after eif_measure_finish */
  unsigned int raw_len;
};

kiln_err eif_measure_init(struct eif_measure *m, enum kiln_eif_hash hash, struct kiln_error *err);
void eif_measure_crc(struct eif_measure *m, const void *data, size_t len);
void eif_measure_feed(struct eif_measure *m, enum eif_feed feed, const void *data, size_t len);
/* PCR = H(zeros || H(data)) for each stream, as hex into pcrs. */
void eif_measure_finish(struct eif_measure *m, struct kiln_eif_pcrs *pcrs);
void eif_measure_free(struct eif_measure *m);

/* Big-endian stores for the header. */
void eif_put16(uint8_t *p, uint16_t v);
void eif_put32(uint8_t *p, uint32_t v);
void eif_put64(uint8_t *p, uint64_t v);

#endif
