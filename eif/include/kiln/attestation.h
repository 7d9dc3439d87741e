/* libkiln-eif: parse and verify AWS Nitro Enclaves attestation documents (COSE_Sign1, ES384):
 * strict syntax, certificate chain to a pinned root, signature, nonce, freshness and PCRs. */
#ifndef KILN_ATTESTATION_H
#define KILN_ATTESTATION_H

#include <stddef.h>
#include <stdint.h>

#include "kiln/eif.h"
#include "util/error.h"

#define KILN_ATTESTATION_MAX_DOC 16384    /* bytes of the whole document */
#define KILN_ATTESTATION_MAX_OPTIONAL 512 /* public_key, user_data, nonce */
#define KILN_ATTESTATION_MAX_CERT 1024    /* certificate and each cabundle entry (DER) */
#define KILN_ATTESTATION_PCR_LEN 48       /* digest SHA384 */
#define KILN_ATTESTATION_NUM_PCRS 32
#define KILN_ATTESTATION_SIG_LEN 96 /* ES384 r || s */
/* SHA-256 of the DER of AWS_NitroEnclaves_Root-G1, as AWS publishes it. */
#define KILN_ATTESTATION_AWS_ROOT_SHA256                                                           \
  "641a0321a3e244efe456463195d606317ed7cdcc3c1756e09893f3c68f79bb5b"

struct kiln_attestation_bytes {
  uint8_t *data; /* owned; NULL when absent or null */
  size_t len;
  int present; /* the key was there with a byte string (possibly empty) */
};

/* A parsed document: every field checked against the syntax limits. */
struct kiln_attestation_doc {
  char *module_id; /* owned, NUL-terminated */
  uint64_t timestamp_ms;
  uint32_t pcr_mask; /* bit i: PCR i present */
  uint8_t pcrs[KILN_ATTESTATION_NUM_PCRS][KILN_ATTESTATION_PCR_LEN];
  struct kiln_attestation_bytes certificate;
  struct kiln_attestation_bytes *cabundle; /* root first; owned array */
  size_t cabundle_len;
  struct kiln_attestation_bytes public_key, user_data, nonce;
  /* What the signature covers: the protected header and payload bytes as sent. */
  struct kiln_attestation_bytes protected_header, payload;
  uint8_t signature[KILN_ATTESTATION_SIG_LEN];
};

/* Parse a document (untagged COSE_Sign1 or tag 18). On failure err names the field and limit.
 * *out is owned by the caller (kiln_attestation_doc_free). */
kiln_err kiln_attestation_parse(const uint8_t *data, size_t len, struct kiln_attestation_doc **out,
                                struct kiln_error *err);
void kiln_attestation_doc_free(struct kiln_attestation_doc *doc);

/* The trust anchor: the pinned AWS root (fingerprint checked) or a PEM the user named. */
struct kiln_attestation_root;
/* Load a PEM root. pinned_sha256 (lowercase hex of the DER's SHA-256) or NULL to accept any. */
kiln_err kiln_attestation_root_load(const char *pem_path, const char *pinned_sha256,
                                    struct kiln_attestation_root **out, struct kiln_error *err);
void kiln_attestation_root_free(struct kiln_attestation_root *root);
/* The root's subject as one line, and the SHA-256 of its DER (hex); both borrowed. */
const char *kiln_attestation_root_subject(const struct kiln_attestation_root *root);
const char *kiln_attestation_root_sha256(const struct kiln_attestation_root *root);

enum kiln_attestation_result {
  KILN_ATTESTATION_OK = 0,
  KILN_ATTESTATION_FAIL,
  KILN_ATTESTATION_SKIPPED /* nothing to compare with (e.g. no nonce given for a file) */
};

/* One check: name ("chain", "signature", "PCR0", ...), result, and a line saying what was
 * found; for comparisons the expected and actual values (hex). Strings owned by the report. */
struct kiln_attestation_check {
  char *name;
  enum kiln_attestation_result result;
  char *detail;
  char *expected; /* NULL when not a comparison */
  char *actual;
};

struct kiln_attestation_report {
  struct kiln_attestation_check *checks; /* owned */
  size_t len;
  int failures;
};

/* What the document must match. */
struct kiln_attestation_policy {
  const struct kiln_attestation_root *root;
  int64_t at_ms;        /* verification time (ms since the epoch) */
  int64_t max_skew_ms;  /* |timestamp - at| allowed */
  const uint8_t *nonce; /* the nonce sent, or NULL (then "nonce" is skipped) */
  size_t nonce_len;
  const struct kiln_eif_pcrs *expected; /* PCR0/1/2 (+8 when set), or NULL (skipped) */
  int allow_debug;                      /* all-zero PCRs pass */
};

/* Run every check and append it to report (each failure counted). Returns an error only when a
 * check could not run at all (out of memory). */
kiln_err kiln_attestation_verify(const struct kiln_attestation_doc *doc,
                                 const struct kiln_attestation_policy *policy,
                                 struct kiln_attestation_report *report, struct kiln_error *err);
void kiln_attestation_report_clear(struct kiln_attestation_report *report);

/* Parse "2022-11-09T22:52:00Z" / "...T22:52:00.696Z" / "...+01:00" into ms since the epoch. */
int kiln_attestation_parse_time(const char *text, int64_t *ms);
/* Format ms since the epoch as "2022-11-09T22:52:00.696Z" into out (>= 32 bytes). */
void kiln_attestation_format_time(int64_t ms, char *out, size_t size);

#endif
