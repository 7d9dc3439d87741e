/* Verification of a parsed NSM attestation document against a policy: certificate chain to the
 * pinned root (OpenSSL X509_STORE, at the verification time), leaf constraints, the COSE ES384
 * signature, freshness, nonce, debug mode and the expected PCRs. Every check is recorded with
 * its result and the values that differ, so the caller can print all of them. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "cose.h"
#include "kiln/attestation.h"
#include "util/buf.h"
#include "util/fs.h"
#include "util/hash.h"

struct kiln_attestation_root {
  X509 *cert;
  char *subject;
  char sha256[KILN_SHA256_HEX_LEN + 1];
};

static char *subject_line(X509 *cert)
{
  BIO *b = BIO_new(BIO_s_mem());
  char *out = NULL;
  if (b && X509_NAME_print_ex(b, X509_get_subject_name(cert), 0, XN_FLAG_RFC2253) >= 0) {
    char *p = NULL;
    long n = BIO_get_mem_data(b, &p);
    out = strndup(p ? p : "", n > 0 ? (size_t)n : 0);
  }
  BIO_free(b);
  return out ? out : strdup("?");
}

static void der_sha256(X509 *cert, char out[KILN_SHA256_HEX_LEN + 1])
{
  unsigned char *der = NULL;
  int n = i2d_X509(cert, &der);
  kiln_sha256_hex(der, n > 0 ? (size_t)n : 0, out);
  OPENSSL_free(der);
}

kiln_err kiln_attestation_root_load(const char *pem_path, const char *pinned_sha256,
                                    struct kiln_attestation_root **out, struct kiln_error *err)
{
  *out = NULL;
  char *pem = NULL;
  size_t len = 0;
  kiln_err rc = kiln_read_file(pem_path, 1u << 20, &pem, &len, err);
  if (rc)
    return kiln_error_prefix(err, "trust anchor");
  struct kiln_attestation_root *r = calloc(1, sizeof *r);
  BIO *bio = r ? BIO_new_mem_buf(pem, (int)len) : NULL;
  if (r && bio)
    r->cert = PEM_read_bio_X509(bio, NULL, NULL, NULL);
  BIO_free(bio);
  free(pem);
  if (!r) {
    return kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  } else if (!r->cert) {
    rc = kiln_error_set(err, KILN_E_INVALID, "trust anchor %s is not a PEM certificate", pem_path);
  } else {
    der_sha256(r->cert, r->sha256);
    r->subject = subject_line(r->cert);
    if (pinned_sha256 && strcasecmp(r->sha256, pinned_sha256) != 0)
      rc = kiln_error_set(err, KILN_E_INVALID,
                          "trust anchor %s has SHA-256 %s, not the pinned AWS Nitro root's %s: "
                          "the file was changed; reinstall kiln",
                          pem_path, r->sha256, pinned_sha256);
  }
  if (rc)
    kiln_attestation_root_free(r);
  else
    *out = r;
  return rc;
}

void kiln_attestation_root_free(struct kiln_attestation_root *root)
{
  if (!root)
    return;
  X509_free(root->cert);
  free(root->subject);
  free(root);
}

const char *kiln_attestation_root_subject(const struct kiln_attestation_root *root)
{
  return root->subject;
}

const char *kiln_attestation_root_sha256(const struct kiln_attestation_root *root)
{
  return root->sha256;
}

void kiln_attestation_report_clear(struct kiln_attestation_report *report)
{
  for (size_t i = 0; i < report->len; i++) {
    free(report->checks[i].name);
    free(report->checks[i].detail);
    free(report->checks[i].expected);
    free(report->checks[i].actual);
  }
  free(report->checks);
  memset(report, 0, sizeof *report);
}

/* Append a check; expected/actual may be NULL. Returns KILN_E_NOMEM or KILN_OK. */
static kiln_err KILN_PRINTF(6, 7)
    add_check(struct kiln_attestation_report *r, const char *name,
              enum kiln_attestation_result result, const char *expected, const char *actual,
              const char *fmt, ...)
{
  struct kiln_attestation_check *grown = realloc(r->checks, (r->len + 1) * sizeof *grown);
  if (!grown)
    return KILN_E_NOMEM;
  r->checks = grown;
  struct kiln_attestation_check *c = &r->checks[r->len];
  memset(c, 0, sizeof *c);
  struct kiln_buf detail = KILN_BUF_INIT;
  va_list ap;
  va_start(ap, fmt);
  kiln_err rc = kiln_buf_vprintf(&detail, fmt, ap);
  va_end(ap);
  c->name = strdup(name);
  c->detail = kiln_buf_detach(&detail);
  c->expected = expected ? strdup(expected) : NULL;
  c->actual = actual ? strdup(actual) : NULL;
  c->result = result;
  r->len++;
  if (result == KILN_ATTESTATION_FAIL)
    r->failures++;
  if (rc || !c->name || !c->detail || (expected && !c->expected) || (actual && !c->actual))
    return KILN_E_NOMEM;
  return KILN_OK;
}

static char *hex_of(const uint8_t *data, size_t len)
{
  char *out = malloc(2 * len + 1);
  if (out)
    kiln_hex_encode(data, len, out);
  return out;
}

static X509 *der_cert(const struct kiln_attestation_bytes *b)
{
  const unsigned char *p = b->data;
  X509 *c = d2i_X509(NULL, &p, (long)b->len);
  if (c && p != b->data + b->len) { /* trailing bytes after the certificate */
    X509_free(c);
    c = NULL;
  }
  return c;
}

static void asn1_time_text(const ASN1_TIME *t, char *out, size_t size)
{
  struct tm tm;
  if (!t || ASN1_TIME_to_tm(t, &tm) != 1)
    snprintf(out, size, "?");
  else
    strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* The chain's failure, naming the certificate, the reason and its validity window. */
static kiln_err chain_failure(struct kiln_attestation_report *r, X509_STORE_CTX *ctx,
                              const char *at_text)
{
  int code = X509_STORE_CTX_get_error(ctx), depth = X509_STORE_CTX_get_error_depth(ctx);
  X509 *bad = X509_STORE_CTX_get_current_cert(ctx);
  char *subject = bad ? subject_line(bad) : strdup("?");
  char from[40], until[40];
  asn1_time_text(bad ? X509_get0_notBefore(bad) : NULL, from, sizeof from);
  asn1_time_text(bad ? X509_get0_notAfter(bad) : NULL, until, sizeof until);
  kiln_err rc = add_check(r, "chain", KILN_ATTESTATION_FAIL, NULL, NULL,
                          "%s: certificate at depth %d (%s, valid %s to %s), verification time %s",
                          X509_verify_cert_error_string(code), depth, subject ? subject : "?", from,
                          until, at_text);
  free(subject);
  return rc;
}

/* leaf -> cabundle[n-1] .. cabundle[1] -> the trust anchor; cabundle[0] is never an anchor. */
static kiln_err check_chain(const struct kiln_attestation_doc *d, X509 *leaf,
                            const struct kiln_attestation_policy *p,
                            struct kiln_attestation_report *r)
{
  char at_text[40];
  kiln_attestation_format_time(p->at_ms, at_text, sizeof at_text);
  STACK_OF(X509) *untrusted = sk_X509_new_null();
  X509_STORE *store = X509_STORE_new();
  X509_STORE_CTX *ctx = X509_STORE_CTX_new();
  kiln_err rc = KILN_E_NOMEM;
  if (!untrusted || !store || !ctx || X509_STORE_add_cert(store, p->root->cert) != 1)
    goto out;
  for (size_t i = d->cabundle_len; i-- > 1;) {
    X509 *c = der_cert(&d->cabundle[i]);
    if (!c) {
      rc = add_check(r, "chain", KILN_ATTESTATION_FAIL, NULL, NULL,
                     "cabundle[%zu] is not a DER certificate", i);
      goto out;
    }
    if (!sk_X509_push(untrusted, c)) {
      X509_free(c);
      goto out;
    }
  }
  if (X509_STORE_CTX_init(ctx, store, leaf, untrusted) != 1)
    goto out;
  X509_VERIFY_PARAM *param = X509_STORE_CTX_get0_param(ctx);
  X509_VERIFY_PARAM_set_time(param, (time_t)(p->at_ms / 1000));
  /* Not X509_V_FLAG_X509_STRICT: AWS's leaf certificates have no authority key identifier.
   * Issuers must still be CAs (basicConstraints), allowed to sign certificates (keyUsage) and
   * within their path length. */
  if (X509_verify_cert(ctx) != 1) {
    rc = chain_failure(r, ctx, at_text);
    goto out;
  }
  char *leaf_subject = subject_line(leaf);
  rc = add_check(r, "chain", KILN_ATTESTATION_OK, NULL, NULL,
                 "%s -> %d intermediate(s) -> %s; every certificate valid at %s", leaf_subject,
                 sk_X509_num(X509_STORE_CTX_get0_chain(ctx)) - 2, p->root->subject, at_text);
  free(leaf_subject);
out:
  X509_STORE_CTX_free(ctx);
  X509_STORE_free(store);
  sk_X509_pop_free(untrusted, X509_free);
  return rc;
}

static kiln_err check_cabundle_root(const struct kiln_attestation_doc *d,
                                    const struct kiln_attestation_policy *p,
                                    struct kiln_attestation_report *r)
{
  X509 *first = der_cert(&d->cabundle[0]);
  char sha[KILN_SHA256_HEX_LEN + 1] = "not a DER certificate";
  if (first)
    der_sha256(first, sha);
  X509_free(first);
  int same = first && strcmp(sha, p->root->sha256) == 0;
  return add_check(r, "cabundle root", same ? KILN_ATTESTATION_OK : KILN_ATTESTATION_FAIL,
                   p->root->sha256, sha,
                   same ? "cabundle[0] is the trust anchor (SHA-256 of DER %s)"
                        : "cabundle[0] is not the trust anchor (SHA-256 of DER %s); it is never "
                          "trusted on its own",
                   sha);
}

/* The leaf signs the document: an EC P-384 key, not a CA, usable for digital signatures. */
static kiln_err check_leaf(X509 *leaf, struct kiln_attestation_report *r)
{
  EVP_PKEY *key = X509_get0_pubkey(leaf);
  const char *why = NULL;
  if (!key || EVP_PKEY_get_base_id(key) != EVP_PKEY_EC || EVP_PKEY_get_bits(key) != 384)
    why = "its key is not ECDSA P-384";
  else if (X509_check_ca(leaf) != 0)
    why = "it is a CA certificate";
  else if ((X509_get_extension_flags(leaf) & EXFLAG_KUSAGE) &&
           !(X509_get_key_usage(leaf) & KU_DIGITAL_SIGNATURE))
    why = "its key usage lacks digitalSignature";
  return why ? add_check(r, "leaf certificate", KILN_ATTESTATION_FAIL, NULL, NULL,
                         "the document's certificate cannot sign it: %s", why)
             : add_check(r, "leaf certificate", KILN_ATTESTATION_OK, NULL, NULL,
                         "ECDSA P-384, not a CA, key usage allows digital signatures");
}

static kiln_err check_signature(const struct kiln_attestation_doc *d, X509 *leaf,
                                struct kiln_attestation_report *r)
{
  uint8_t *tbs = NULL;
  size_t len = 0;
  if (!eif_cose_sig_structure(d->protected_header.data, d->protected_header.len, d->payload.data,
                              d->payload.len, &tbs, &len))
    return KILN_E_NOMEM;
  int ok = eif_cose_es384_verify(X509_get0_pubkey(leaf), tbs, len, d->signature);
  free(tbs);
  return ok ? add_check(r, "signature", KILN_ATTESTATION_OK, NULL, NULL,
                        "COSE_Sign1 ES384 verifies with the leaf certificate's key")
            : add_check(r, "signature", KILN_ATTESTATION_FAIL, NULL, NULL,
                        "COSE_Sign1 ES384 signature does not verify with the leaf certificate's "
                        "key: the document was altered or not signed by that certificate");
}

static void duration_text(int64_t ms, char *out, size_t size)
{
  int64_t s = ms / 1000;
  if (s >= 86400)
    snprintf(out, size, "%lldd%02lldh%02lldm%02llds", (long long)(s / 86400),
             (long long)(s % 86400 / 3600), (long long)(s % 3600 / 60), (long long)(s % 60));
  else if (s >= 3600)
    snprintf(out, size, "%lldh%02lldm%02llds", (long long)(s / 3600), (long long)(s % 3600 / 60),
             (long long)(s % 60));
  else if (s >= 60)
    snprintf(out, size, "%lldm%02llds", (long long)(s / 60), (long long)(s % 60));
  else
    snprintf(out, size, "%lld.%03llds", (long long)s, (long long)(ms % 1000));
}

static kiln_err check_timestamp(const struct kiln_attestation_doc *d,
                                const struct kiln_attestation_policy *p,
                                struct kiln_attestation_report *r)
{
  char doc_time[40], at_time[40], skew_text[40], window[40];
  int64_t ts = (int64_t)d->timestamp_ms, skew = ts - p->at_ms;
  kiln_attestation_format_time(ts, doc_time, sizeof doc_time);
  kiln_attestation_format_time(p->at_ms, at_time, sizeof at_time);
  duration_text(skew < 0 ? -skew : skew, skew_text, sizeof skew_text);
  duration_text(p->max_skew_ms, window, sizeof window);
  int ok = (skew < 0 ? -skew : skew) <= p->max_skew_ms;
  return add_check(r, "timestamp", ok ? KILN_ATTESTATION_OK : KILN_ATTESTATION_FAIL, at_time,
                   doc_time, "document time %s is %s %s the verification time %s (window ±%s)",
                   doc_time, skew_text, skew < 0 ? "before" : "after", at_time, window);
}

static kiln_err check_nonce(const struct kiln_attestation_doc *d,
                            const struct kiln_attestation_policy *p,
                            struct kiln_attestation_report *r)
{
  if (!p->nonce)
    return add_check(
        r, "nonce", KILN_ATTESTATION_SKIPPED, NULL, NULL,
        "no nonce to compare with (for a FILE give --nonce HEX), so the document may be a replay");
  char *want = hex_of(p->nonce, p->nonce_len);
  char *got = d->nonce.present ? hex_of(d->nonce.data, d->nonce.len) : strdup("(none)");
  kiln_err rc = KILN_E_NOMEM;
  if (want && got) {
    int same = d->nonce.present && d->nonce.len == p->nonce_len &&
               memcmp(d->nonce.data, p->nonce, p->nonce_len) == 0;
    rc = add_check(r, "nonce", same ? KILN_ATTESTATION_OK : KILN_ATTESTATION_FAIL, want, got,
                   same               ? "the document echoes the nonce sent"
                   : d->nonce.present ? "the document's nonce is not the one sent"
                                      : "the document has no nonce (the echo is missing)");
  }
  free(want);
  free(got);
  return rc;
}

static int pcr_is_zero(const struct kiln_attestation_doc *d, int i)
{
  if (!(d->pcr_mask & (1u << i)))
    return 0;
  for (int j = 0; j < KILN_ATTESTATION_PCR_LEN; j++)
    if (d->pcrs[i][j])
      return 0;
  return 1;
}

static kiln_err check_debug(const struct kiln_attestation_doc *d,
                            const struct kiln_attestation_policy *p,
                            struct kiln_attestation_report *r)
{
  int debug = pcr_is_zero(d, 0) && pcr_is_zero(d, 1) && pcr_is_zero(d, 2);
  if (!debug)
    return add_check(r, "debug mode", KILN_ATTESTATION_OK, NULL, NULL,
                     "PCR0/1/2 are measurements, not zero: not a debug-mode enclave");
  return add_check(r, "debug mode", p->allow_debug ? KILN_ATTESTATION_OK : KILN_ATTESTATION_FAIL,
                   NULL, NULL,
                   p->allow_debug ? "PCR0/1/2 are all zero: a debug-mode enclave, allowed by "
                                    "--allow-debug"
                                  : "PCR0/1/2 are all zero: a debug-mode enclave, whose memory "
                                    "the parent can read (pass --allow-debug to accept)");
}

static kiln_err check_pcr(const struct kiln_attestation_doc *d, int index, const char *want,
                          struct kiln_attestation_report *r)
{
  char name[8];
  snprintf(name, sizeof name, "PCR%d", index);
  if (!(d->pcr_mask & (1u << index)))
    return add_check(r, name, KILN_ATTESTATION_FAIL, want, "(none)", "the document has no %s",
                     name);
  char got[2 * KILN_ATTESTATION_PCR_LEN + 1];
  kiln_hex_encode(d->pcrs[index], KILN_ATTESTATION_PCR_LEN, got);
  int same = strcasecmp(got, want) == 0;
  return add_check(r, name, same ? KILN_ATTESTATION_OK : KILN_ATTESTATION_FAIL, want, got,
                   same ? "matches the expected value" : "differs from the expected value");
}

static kiln_err check_pcrs(const struct kiln_attestation_doc *d,
                           const struct kiln_attestation_policy *p,
                           struct kiln_attestation_report *r)
{
  const struct kiln_eif_pcrs *e = p->expected;
  if (!e)
    return add_check(r, "PCRs", KILN_ATTESTATION_SKIPPED, NULL, NULL, "no expected PCRs given");
  if (e->hash != KILN_EIF_SHA384)
    return add_check(r, "PCRs", KILN_ATTESTATION_FAIL, "SHA384", kiln_eif_hash_name(e->hash),
                     "the expected PCRs are %s; attestation documents measure with SHA384",
                     kiln_eif_hash_name(e->hash));
  kiln_err rc = KILN_OK;
  const char *want[] = {e->pcr0, e->pcr1, e->pcr2};
  for (int i = 0; i < 3 && !rc; i++)
    rc = check_pcr(d, i, want[i], r);
  if (!rc && e->pcr8[0])
    rc = check_pcr(d, 8, e->pcr8, r);
  return rc;
}

kiln_err kiln_attestation_verify(const struct kiln_attestation_doc *doc,
                                 const struct kiln_attestation_policy *policy,
                                 struct kiln_attestation_report *report, struct kiln_error *err)
{
  X509 *leaf = der_cert(&doc->certificate);
  kiln_err rc = check_cabundle_root(doc, policy, report);
  if (!rc && !leaf)
    rc = add_check(report, "chain", KILN_ATTESTATION_FAIL, NULL, NULL,
                   "the document's certificate is not a DER certificate");
  if (!rc && leaf)
    rc = check_chain(doc, leaf, policy, report);
  if (!rc && leaf)
    rc = check_leaf(leaf, report);
  if (!rc && leaf)
    rc = check_signature(doc, leaf, report);
  if (!rc)
    rc = check_timestamp(doc, policy, report);
  if (!rc)
    rc = check_nonce(doc, policy, report);
  if (!rc)
    rc = check_debug(doc, policy, report);
  if (!rc)
    rc = check_pcrs(doc, policy, report);
  X509_free(leaf);
  return rc ? kiln_error_set(err, rc, "out of memory while verifying the attestation document")
            : KILN_OK;
}
