/* Streaming measurement of EIF sections: the PCR0/1/2 hash streams and the file's CRC-32. */
#include "measure.h"

#include <string.h>

#include <libdeflate.h>

#include "util/hash.h"

#include <cjson/cJSON.h>

const char *kiln_eif_hash_name(enum kiln_eif_hash h)
{
  switch (h) {
  case KILN_EIF_SHA256: return "SHA256";
  case KILN_EIF_SHA512: return "SHA512";
  default: return "SHA384";
  }
}

kiln_err eif_measure_init(struct eif_measure *m, enum kiln_eif_hash hash, struct kiln_error *err)
{
  memset(m, 0, sizeof *m);
  m->md = hash == KILN_EIF_SHA256   ? EVP_sha256()
          : hash == KILN_EIF_SHA512 ? EVP_sha512()
                                    : EVP_sha384();
  m->crc = 0; /* CRC-32 of nothing */
  for (int i = 0; i < 3; i++) {
    m->pcr[i] = EVP_MD_CTX_new();
    if (!m->pcr[i] || EVP_DigestInit_ex(m->pcr[i], m->md, NULL) != 1) {
      eif_measure_free(m);
      return kiln_error_set(err, KILN_E_NOMEM, "cannot set up the PCR hashes");
    }
  }
  return KILN_OK;
}

void eif_measure_crc(struct eif_measure *m, const void *data, size_t len)
{
  m->crc = (uint32_t)libdeflate_crc32(m->crc, data, len); /* zlib's CRC-32, with pclmul */
}

void eif_measure_feed(struct eif_measure *m, enum eif_feed feed, const void *data, size_t len)
{
  if (feed == EIF_FEED_NONE)
    return;
  EVP_DigestUpdate(m->pcr[0], data, len);
  EVP_DigestUpdate(m->pcr[feed == EIF_FEED_BOOT ? 1 : 2], data, len);
}

void eif_measure_finish(struct eif_measure *m, struct kiln_eif_pcrs *pcrs)
{
  char *out[3] = {pcrs->pcr0, pcrs->pcr1, pcrs->pcr2};
  uint8_t inner[EVP_MAX_MD_SIZE], zeros[EVP_MAX_MD_SIZE], outer[EVP_MAX_MD_SIZE];
  memset(zeros, 0, sizeof zeros);
  for (int i = 0; i < 3; i++) {
    unsigned int n = 0, o = 0;
    EVP_DigestFinal_ex(m->pcr[i], inner, &n);
    EVP_MD_CTX *ext = EVP_MD_CTX_new();
    EVP_DigestInit_ex(ext, m->md, NULL);
    EVP_DigestUpdate(ext, zeros, n);
    EVP_DigestUpdate(ext, inner, n);
    EVP_DigestFinal_ex(ext, outer, &o);
    EVP_MD_CTX_free(ext);
    memcpy(m->raw[i], outer, o);
    m->raw_len = o;
    kiln_hex_encode(outer, o, out[i]);
  }
  pcrs->pcr8[0] = '\0';
}

void eif_measure_free(struct eif_measure *m)
{
  for (int i = 0; i < 3; i++)
    EVP_MD_CTX_free(m->pcr[i]);
  memset(m, 0, sizeof *m);
}

void eif_put16(uint8_t *p, uint16_t v)
{
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}

void eif_put32(uint8_t *p, uint32_t v)
{
  for (int i = 0; i < 4; i++)
    p[i] = (uint8_t)(v >> (24 - 8 * i));
}

void eif_put64(uint8_t *p, uint64_t v)
{
  eif_put32(p, (uint32_t)(v >> 32));
  eif_put32(p + 4, (uint32_t)v);
}

void *kiln_eif_pcrs_json(const struct kiln_eif_pcrs *p)
{
  cJSON *m = cJSON_CreateObject();
  const char *alg = p->hash == KILN_EIF_SHA256   ? "Sha256 { ... }"
                    : p->hash == KILN_EIF_SHA512 ? "Sha512 { ... }"
                                                 : "Sha384 { ... }";
  cJSON_AddStringToObject(m, "HashAlgorithm", alg);
  cJSON_AddStringToObject(m, "PCR0", p->pcr0);
  cJSON_AddStringToObject(m, "PCR1", p->pcr1);
  cJSON_AddStringToObject(m, "PCR2", p->pcr2);
  if (p->pcr8[0])
    cJSON_AddStringToObject(m, "PCR8", p->pcr8);
  return m;
}
