/* COSE_Sign1 with ES384 for libkiln-eif: the Sig_structure (libcbor) and the signature itself
 * (OpenSSL), converting between COSE's fixed-size r || s and the DER form OpenSSL uses. */
#include "cose.h"

#include <cbor.h>
#include <openssl/bn.h>
#include <openssl/ecdsa.h>

const uint8_t eif_cose_protected_es384[4] = {0xA1, 0x01, 0x38, 0x22};

int eif_cose_sig_structure(const uint8_t *protected_header, size_t protected_len,
                           const uint8_t *payload, size_t payload_len, uint8_t **out, size_t *len)
{
  *out = NULL;
  *len = 0;
  cbor_item_t *a = cbor_new_definite_array(4);
  if (!a)
    return 0;
  int ok = cbor_array_push(a, cbor_move(cbor_build_string("Signature1"))) &&
           cbor_array_push(a, cbor_move(cbor_build_bytestring(protected_header, protected_len))) &&
           cbor_array_push(a, cbor_move(cbor_build_bytestring(NULL, 0))) &&
           cbor_array_push(a, cbor_move(cbor_build_bytestring(payload, payload_len)));
  size_t cap = 0;
  if (ok)
    *len = cbor_serialize_alloc(a, out, &cap);
  cbor_decref(&a);
  return ok && *len > 0;
}

int eif_cose_es384_sign(EVP_PKEY *key, const uint8_t *tbs, size_t len,
                        uint8_t rs[EIF_COSE_ES384_SIG_LEN])
{
  unsigned char *der = NULL;
  size_t der_len = 0;
  ECDSA_SIG *sig = NULL;
  int ok = 0;
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  if (!md || EVP_DigestSignInit(md, NULL, EVP_sha384(), NULL, key) != 1 ||
      EVP_DigestSign(md, NULL, &der_len, tbs, len) != 1 || !(der = OPENSSL_malloc(der_len)) ||
      EVP_DigestSign(md, der, &der_len, tbs, len) != 1)
    goto out;
  const unsigned char *p = der;
  sig = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
  ok = sig && BN_bn2binpad(ECDSA_SIG_get0_r(sig), rs, 48) == 48 &&
       BN_bn2binpad(ECDSA_SIG_get0_s(sig), rs + 48, 48) == 48;
out:
  ECDSA_SIG_free(sig);
  OPENSSL_free(der);
  EVP_MD_CTX_free(md);
  return ok;
}

int eif_cose_es384_verify(EVP_PKEY *key, const uint8_t *tbs, size_t len,
                          const uint8_t rs[EIF_COSE_ES384_SIG_LEN])
{
  if (!key || EVP_PKEY_get_base_id(key) != EVP_PKEY_EC || EVP_PKEY_get_bits(key) != 384)
    return 0;
  ECDSA_SIG *sig = ECDSA_SIG_new();
  BIGNUM *r = BN_bin2bn(rs, 48, NULL), *s = BN_bin2bn(rs + 48, 48, NULL);
  if (!sig || !r || !s || ECDSA_SIG_set0(sig, r, s) != 1) {
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(sig);
    return 0;
  }
  unsigned char *der = NULL;
  int der_len = i2d_ECDSA_SIG(sig, &der);
  ECDSA_SIG_free(sig);
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  int ok = der_len > 0 && md && EVP_DigestVerifyInit(md, NULL, EVP_sha384(), NULL, key) == 1 &&
           EVP_DigestVerify(md, der, (size_t)der_len, tbs, len) == 1;
  EVP_MD_CTX_free(md);
  OPENSSL_free(der);
  return ok;
}
