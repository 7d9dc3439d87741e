/* The EIF signature section as eif_build writes it: a CBOR array of one {signing_certificate,
 * signature} map whose byte vectors are CBOR arrays of integers (serde_cbor without byte-string
 * annotations); signature = untagged COSE_Sign1, ES384, protected header {1: -35}, over the CBOR
 * payload {register_index: 0, register_value: PCR0}. */
#include "sign.h"

#include <stdlib.h>
#include <string.h>

#include <cbor.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "cose.h"
#include "util/fs.h"
#include "util/hash.h"

#define ES384_SIG_LEN EIF_COSE_ES384_SIG_LEN

struct eif_signer {
  EVP_PKEY *key;
  X509 *cert;
  char *pem;
  size_t pem_len;
  unsigned char *der;
  int der_len;
};

void eif_signer_free(struct eif_signer *s)
{
  if (!s)
    return;
  EVP_PKEY_free(s->key);
  X509_free(s->cert);
  free(s->pem);
  OPENSSL_free(s->der);
  free(s);
}

kiln_err eif_signer_load(const char *cert_path, const char *key_path, struct eif_signer **out,
                         struct kiln_error *err)
{
  *out = NULL;
  struct eif_signer *s = calloc(1, sizeof *s);
  if (!s)
    return kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  kiln_err rc = kiln_read_file(cert_path, 1u << 20, &s->pem, &s->pem_len, err);
  if (rc)
    goto out;
  BIO *bio = BIO_new_mem_buf(s->pem, (int)s->pem_len);
  s->cert = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
  BIO_free(bio);
  if (!s->cert) {
    rc = kiln_error_set(err, KILN_E_INVALID, "%s is not a PEM certificate", cert_path);
    goto out;
  }
  s->der_len = i2d_X509(s->cert, &s->der);
  FILE *f = fopen(key_path, "r");
  s->key = f ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
  if (f)
    fclose(f);
  if (!s->key) {
    rc = kiln_error_set(err, KILN_E_INVALID, "%s is not a PEM private key (unencrypted)", key_path);
    goto out;
  }
  if (EVP_PKEY_get_base_id(s->key) != EVP_PKEY_EC || EVP_PKEY_get_bits(s->key) != 384) {
    rc = kiln_error_set(err, KILN_E_INVALID,
                        "%s: EIF signatures use ECDSA P-384 keys (e.g. `openssl ecparam -name "
                        "secp384r1 -genkey -noout -out key.pem`)",
                        key_path);
    goto out;
  }
  EVP_PKEY *pub = X509_get0_pubkey(s->cert);
  if (!pub || EVP_PKEY_eq(pub, s->key) != 1)
    rc = kiln_error_set(err, KILN_E_INVALID, "the key %s does not belong to the certificate %s",
                        key_path, cert_path);
out:
  if (rc)
    eif_signer_free(s);
  else
    *out = s;
  return rc;
}

void eif_signer_pcr8(const struct eif_signer *s, enum kiln_eif_hash hash, char *hex)
{
  const EVP_MD *md = hash == KILN_EIF_SHA256   ? EVP_sha256()
                     : hash == KILN_EIF_SHA512 ? EVP_sha512()
                                               : EVP_sha384();
  unsigned char inner[EVP_MAX_MD_SIZE], zeros[EVP_MAX_MD_SIZE], outer[EVP_MAX_MD_SIZE];
  unsigned int n = 0, o = 0;
  memset(zeros, 0, sizeof zeros);
  EVP_Digest(s->der, (size_t)s->der_len, inner, &n, md, NULL);
  EVP_MD_CTX *c = EVP_MD_CTX_new();
  EVP_DigestInit_ex(c, md, NULL);
  EVP_DigestUpdate(c, zeros, n);
  EVP_DigestUpdate(c, inner, n);
  EVP_DigestFinal_ex(c, outer, &o);
  EVP_MD_CTX_free(c);
  kiln_hex_encode(outer, o, hex);
}

/* A byte vector the way serde_cbor writes Vec<u8>: an array of unsigned integers. */
static cbor_item_t *uint_array(const uint8_t *data, size_t len)
{
  cbor_item_t *a = cbor_new_definite_array(len);
  for (size_t i = 0; a && i < len; i++)
    if (!cbor_array_push(a, cbor_move(cbor_build_uint8(data[i])))) {
      cbor_decref(&a);
      return NULL;
    }
  return a;
}

static int serialize(cbor_item_t *item, uint8_t **out, size_t *len)
{
  size_t cap = 0;
  *len = item ? cbor_serialize_alloc(item, out, &cap) : 0;
  return *len > 0;
}

/* payload = {"register_index": 0, "register_value": [PCR0 bytes]} */
static int build_payload(const uint8_t *pcr0, size_t pcr0_len, uint8_t **out, size_t *len)
{
  cbor_item_t *m = cbor_new_definite_map(2);
  cbor_map_add(m, (struct cbor_pair){cbor_move(cbor_build_string("register_index")),
                                     cbor_move(cbor_build_uint8(0))});
  cbor_map_add(m, (struct cbor_pair){cbor_move(cbor_build_string("register_value")),
                                     cbor_move(uint_array(pcr0, pcr0_len))});
  int ok = serialize(m, out, len);
  cbor_decref(&m);
  return ok;
}

/* Sig_structure = ["Signature1", {1: -35}, h'', payload] */
static int build_to_be_signed(const uint8_t *payload, size_t plen, uint8_t **out, size_t *len)
{
  return eif_cose_sig_structure(eif_cose_protected_es384, sizeof eif_cose_protected_es384, payload,
                                plen, out, len);
}

kiln_err eif_sign_section(const struct eif_signer *s, const uint8_t *pcr0, size_t pcr0_len,
                          uint8_t **out, size_t *len, struct kiln_error *err)
{
  *out = NULL;
  uint8_t *payload = NULL, *tbs = NULL, *cose = NULL;
  size_t plen = 0, tlen = 0, clen = 0;
  uint8_t rs[ES384_SIG_LEN];
  kiln_err rc = KILN_OK;
  if (!build_payload(pcr0, pcr0_len, &payload, &plen) ||
      !build_to_be_signed(payload, plen, &tbs, &tlen) ||
      !eif_cose_es384_sign(s->key, tbs, tlen, rs)) {
    rc = kiln_error_set(err, KILN_E_INTERNAL, "signing the EIF failed");
    goto out;
  }
  cbor_item_t *c = cbor_new_definite_array(4);
  cbor_array_push(c, cbor_move(cbor_build_bytestring(eif_cose_protected_es384,
                                                     sizeof eif_cose_protected_es384)));
  cbor_array_push(c, cbor_move(cbor_new_definite_map(0)));
  cbor_array_push(c, cbor_move(cbor_build_bytestring(payload, plen)));
  cbor_array_push(c, cbor_move(cbor_build_bytestring(rs, sizeof rs)));
  int ok = serialize(c, &cose, &clen);
  cbor_decref(&c);
  cbor_item_t *entry = cbor_new_definite_map(2);
  cbor_map_add(entry,
               (struct cbor_pair){cbor_move(cbor_build_string("signing_certificate")),
                                  cbor_move(uint_array((const uint8_t *)s->pem, s->pem_len))});
  cbor_map_add(entry, (struct cbor_pair){cbor_move(cbor_build_string("signature")),
                                         cbor_move(uint_array(cose, clen))});
  cbor_item_t *section = cbor_new_definite_array(1);
  cbor_array_push(section, cbor_move(entry));
  if (!ok || !serialize(section, out, len))
    rc = kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  cbor_decref(&section);
out:
  free(payload);
  free(tbs);
  free(cose);
  return rc;
}

/* Bytes back from a CBOR array of uints (or a byte string). */
static uint8_t *bytes_of(cbor_item_t *item, size_t *len)
{
  if (cbor_isa_bytestring(item) && cbor_bytestring_is_definite(item)) {
    *len = cbor_bytestring_length(item);
    uint8_t *b = malloc(*len ? *len : 1);
    if (b)
      memcpy(b, cbor_bytestring_handle(item), *len);
    return b;
  }
  if (!cbor_isa_array(item))
    return NULL;
  *len = cbor_array_size(item);
  uint8_t *b = malloc(*len ? *len : 1);
  for (size_t i = 0; b && i < *len; i++) {
    cbor_item_t *v = cbor_array_get(item, i);
    int ok = v && cbor_isa_uint(v) && cbor_get_int(v) <= 255;
    if (ok)
      b[i] = (uint8_t)cbor_get_int(v);
    if (v)
      cbor_decref(&v);
    if (!ok) {
      free(b);
      return NULL;
    }
  }
  return b;
}

static cbor_item_t *map_get(cbor_item_t *map, const char *key)
{
  if (!cbor_isa_map(map))
    return NULL;
  struct cbor_pair *pairs = cbor_map_handle(map);
  for (size_t i = 0; i < cbor_map_size(map); i++)
    if (cbor_isa_string(pairs[i].key) && cbor_string_length(pairs[i].key) == strlen(key) &&
        memcmp(cbor_string_handle(pairs[i].key), key, strlen(key)) == 0)
      return pairs[i].value;
  return NULL;
}

kiln_err eif_sign_check(const uint8_t *section, size_t len, const uint8_t *pcr0, size_t pcr0_len,
                        enum kiln_eif_hash hash, char *pcr8, struct kiln_error *err)
{
  struct cbor_load_result res;
  cbor_item_t *root = cbor_load(section, len, &res), *cose = NULL;
  uint8_t *pem = NULL, *cose_bytes = NULL, *payload = NULL, *tbs = NULL, *want = NULL;
  size_t pem_len = 0, cose_len = 0, tlen = 0, wlen = 0;
  struct eif_signer s;
  memset(&s, 0, sizeof s);
  kiln_err rc = KILN_E_INVALID;
  pcr8[0] = '\0';
  if (!root || res.error.code != CBOR_ERR_NONE || !cbor_isa_array(root) ||
      cbor_array_size(root) < 1) {
    kiln_error_set(err, rc, "the signature section is not CBOR in eif_build's layout");
    goto out;
  }
  cbor_item_t *entry = cbor_array_handle(root)[0];
  cbor_item_t *cert_item = map_get(entry, "signing_certificate"),
              *sig_item = map_get(entry, "signature");
  if (!cert_item || !sig_item || !(pem = bytes_of(cert_item, &pem_len)) ||
      !(cose_bytes = bytes_of(sig_item, &cose_len))) {
    kiln_error_set(err, rc, "the signature section lacks signing_certificate or signature");
    goto out;
  }
  BIO *bio = BIO_new_mem_buf(pem, (int)pem_len);
  s.cert = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
  BIO_free(bio);
  if (!s.cert) {
    kiln_error_set(err, rc, "the signing certificate in the EIF is not a PEM certificate");
    goto out;
  }
  s.der_len = i2d_X509(s.cert, &s.der);
  eif_signer_pcr8(&s, hash, pcr8);
  cose = cbor_load(cose_bytes, cose_len, &res);
  if (!cose || res.error.code != CBOR_ERR_NONE || !cbor_isa_array(cose) ||
      cbor_array_size(cose) != 4) {
    kiln_error_set(err, rc, "the EIF's signature is not a COSE_Sign1 structure");
    goto out;
  }
  cbor_item_t **parts = cbor_array_handle(cose);
  size_t plen = 0, slen = 0;
  payload = bytes_of(parts[2], &plen);
  uint8_t *sig = bytes_of(parts[3], &slen);
  if (!payload || !sig || slen != ES384_SIG_LEN || !build_payload(pcr0, pcr0_len, &want, &wlen) ||
      wlen != plen || memcmp(want, payload, plen) != 0) {
    free(sig);
    kiln_error_set(err, rc, "the signed payload is not this EIF's PCR0");
    goto out;
  }
  int ok = build_to_be_signed(payload, plen, &tbs, &tlen) &&
           eif_cose_es384_verify(X509_get0_pubkey(s.cert), tbs, tlen, sig);
  free(sig);
  if (!ok)
    kiln_error_set(err, rc, "the EIF's signature does not verify with its certificate");
  else
    rc = KILN_OK;
out:
  if (root)
    cbor_decref(&root);
  if (cose)
    cbor_decref(&cose);
  X509_free(s.cert);
  OPENSSL_free(s.der);
  free(pem);
  free(cose_bytes);
  free(payload);
  free(tbs);
  free(want);
  return rc;
}
