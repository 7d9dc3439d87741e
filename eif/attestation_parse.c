/* Strict parsing of an NSM attestation document: COSE_Sign1 (untagged or tag 18) with protected
 * header {1: -35}, and its payload map with every field checked against AWS's syntax limits.
 * Untrusted input: a pre-pass over the CBOR heads (libcbor's streaming decoder) refuses
 * indefinite lengths, deep nesting and declared sizes larger than the input before libcbor
 * builds any item, so no input can make it allocate more than a few times its size. */
#include <stdlib.h>
#include <string.h>

#include <cbor.h>

#include "cose.h"
#include "kiln/attestation.h"

#define COSE_SIGN1_HEAD 0xD2 /* major type 6, value 18 */
#define CBOR_MAJOR_TAG 6
#define MAX_DEPTH 8

/* Pre-pass state: how many items each open container still expects. */
struct prescan {
  size_t left;                 /* bytes not yet decoded (bounds declared sizes) */
  uint64_t children;           /* of the item just decoded */
  int bad;                     /* an indefinite length or an impossible size */
  uint64_t pending[MAX_DEPTH]; /* items still due per open container */
  int depth;
};

static void on_array(void *ctx, size_t n)
{
  struct prescan *s = ctx;
  if (n > s->left)
    s->bad = 1;
  s->children = n;
}

static void on_map(void *ctx, size_t n)
{
  struct prescan *s = ctx;
  if (n > s->left / 2)
    s->bad = 1;
  s->children = (uint64_t)n * 2;
}

static void on_tag(void *ctx, uint64_t tag)
{
  (void)tag;
  ((struct prescan *)ctx)->children = 1;
}

static void on_indefinite(void *ctx)
{
  ((struct prescan *)ctx)->bad = 1;
}

/* 1 when data is exactly one well-formed CBOR item of definite lengths, nested <= MAX_DEPTH. */
static int prescan_ok(const uint8_t *data, size_t len)
{
  struct cbor_callbacks cb = cbor_empty_callbacks;
  cb.array_start = on_array;
  cb.map_start = on_map;
  cb.tag = on_tag;
  cb.indef_array_start = cb.indef_map_start = cb.byte_string_start = cb.string_start =
      cb.indef_break = on_indefinite;
  struct prescan s;
  memset(&s, 0, sizeof s);
  size_t pos = 0;
  do {
    s.left = len - pos;
    s.children = 0;
    struct cbor_decoder_result r = cbor_stream_decode(data + pos, len - pos, &cb, &s);
    if (r.status != CBOR_DECODER_FINISHED || r.read == 0 || s.bad)
      return 0;
    pos += r.read;
    if (s.depth > 0)
      s.pending[s.depth - 1]--;
    if (s.children > 0) {
      if (s.depth == MAX_DEPTH)
        return 0;
      s.pending[s.depth++] = s.children;
    }
    while (s.depth > 0 && s.pending[s.depth - 1] == 0)
      s.depth--;
  } while (s.depth > 0 && pos < len);
  return s.depth == 0 && pos == len;
}

/* Decode exactly one item spanning all of data; NULL when it is not. */
static cbor_item_t *load_exact(const uint8_t *data, size_t len)
{
  if (len == 0 || !prescan_ok(data, len))
    return NULL;
  struct cbor_load_result res;
  cbor_item_t *item = cbor_load(data, len, &res);
  if (item && (res.error.code != CBOR_ERR_NONE || res.read != len))
    cbor_decref(&item);
  return item;
}

static int copy_bytes(cbor_item_t *item, size_t min, size_t max, struct kiln_attestation_bytes *b)
{
  if (!cbor_isa_bytestring(item) || !cbor_bytestring_is_definite(item))
    return 0;
  size_t n = cbor_bytestring_length(item);
  if (n < min || n > max)
    return 0;
  b->data = malloc(n ? n : 1);
  if (!b->data)
    return 0;
  if (n)
    memcpy(b->data, cbor_bytestring_handle(item), n);
  b->len = n;
  b->present = 1;
  return 1;
}

static int text_is(cbor_item_t *item, const char *s)
{
  return cbor_isa_string(item) && cbor_string_is_definite(item) &&
         cbor_string_length(item) == strlen(s) &&
         memcmp(cbor_string_handle(item), s, strlen(s)) == 0;
}

/* protected = bstr .cbor {1: -35}, nothing else. */
static int protected_is_es384(const struct kiln_attestation_bytes *p)
{
  cbor_item_t *m = load_exact(p->data, p->len);
  int ok = m && cbor_isa_map(m) && cbor_map_size(m) == 1;
  if (ok) {
    struct cbor_pair *kv = cbor_map_handle(m);
    ok = cbor_isa_uint(kv[0].key) && cbor_get_int(kv[0].key) == 1 && cbor_isa_negint(kv[0].value) &&
         cbor_get_int(kv[0].value) == (uint64_t)(-1 - EIF_COSE_ALG_ES384);
  }
  if (m)
    cbor_decref(&m);
  return ok;
}

static kiln_err parse_pcrs(cbor_item_t *map, struct kiln_attestation_doc *d, struct kiln_error *err)
{
  if (!cbor_isa_map(map) || cbor_map_size(map) < 1 ||
      cbor_map_size(map) > KILN_ATTESTATION_NUM_PCRS)
    return kiln_error_set(err, KILN_E_INVALID,
                          "attestation document: pcrs must be a map of 1 to 32 entries");
  struct cbor_pair *kv = cbor_map_handle(map);
  for (size_t i = 0; i < cbor_map_size(map); i++) {
    uint64_t index = cbor_isa_uint(kv[i].key) ? cbor_get_int(kv[i].key) : UINT64_MAX;
    if (index >= KILN_ATTESTATION_NUM_PCRS || (d->pcr_mask & (1u << index)))
      return kiln_error_set(err, KILN_E_INVALID,
                            "attestation document: pcrs key %zu is not a new index 0..31", i);
    cbor_item_t *v = kv[i].value;
    if (!cbor_isa_bytestring(v) || !cbor_bytestring_is_definite(v) ||
        cbor_bytestring_length(v) != KILN_ATTESTATION_PCR_LEN)
      return kiln_error_set(err, KILN_E_INVALID,
                            "attestation document: PCR%u must be %d bytes (SHA384)",
                            (unsigned)index, KILN_ATTESTATION_PCR_LEN);
    memcpy(d->pcrs[index], cbor_bytestring_handle(v), KILN_ATTESTATION_PCR_LEN);
    d->pcr_mask |= 1u << index;
  }
  return KILN_OK;
}

static kiln_err parse_cabundle(cbor_item_t *a, struct kiln_attestation_doc *d,
                               struct kiln_error *err)
{
  if (!cbor_isa_array(a) || cbor_array_size(a) < 1)
    return kiln_error_set(err, KILN_E_INVALID,
                          "attestation document: cabundle must be a non-empty array");
  d->cabundle = calloc(cbor_array_size(a), sizeof *d->cabundle);
  if (!d->cabundle)
    return kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  for (size_t i = 0; i < cbor_array_size(a); i++) {
    if (!copy_bytes(cbor_array_handle(a)[i], 1, KILN_ATTESTATION_MAX_CERT, &d->cabundle[i]))
      return kiln_error_set(err, KILN_E_INVALID,
                            "attestation document: cabundle[%zu] must be 1 to %d bytes of DER", i,
                            KILN_ATTESTATION_MAX_CERT);
    d->cabundle_len = i + 1;
  }
  return KILN_OK;
}

/* An optional byte field: absent, null, or 0..512 bytes. */
static kiln_err parse_optional(cbor_item_t *v, const char *name, struct kiln_attestation_bytes *b,
                               struct kiln_error *err)
{
  if (cbor_is_null(v))
    return KILN_OK;
  if (!copy_bytes(v, 0, KILN_ATTESTATION_MAX_OPTIONAL, b))
    return kiln_error_set(err, KILN_E_INVALID,
                          "attestation document: %s must be null or at most %d bytes", name,
                          KILN_ATTESTATION_MAX_OPTIONAL);
  return KILN_OK;
}

enum field {
  F_MODULE,
  F_DIGEST,
  F_TIMESTAMP,
  F_PCRS,
  F_CERT,
  F_CABUNDLE,
  F_PUBKEY,
  F_USER,
  F_NONCE
};
static const char *const field_names[] = {"module_id",  "digest",      "timestamp",
                                          "pcrs",       "certificate", "cabundle",
                                          "public_key", "user_data",   "nonce"};
#define NUM_FIELDS (sizeof field_names / sizeof field_names[0])
#define REQUIRED_FIELDS 6 /* module_id .. cabundle */

static kiln_err parse_field(enum field f, cbor_item_t *v, struct kiln_attestation_doc *d,
                            struct kiln_error *err)
{
  switch (f) {
  case F_MODULE: {
    size_t n = cbor_isa_string(v) && cbor_string_is_definite(v) ? cbor_string_length(v) : 0;
    if (n == 0 || memchr(cbor_string_handle(v), 0, n))
      return kiln_error_set(err, KILN_E_INVALID,
                            "attestation document: module_id must be non-empty text");
    if (!(d->module_id = strndup((const char *)cbor_string_handle(v), n)))
      return kiln_error_set(err, KILN_E_NOMEM, "out of memory");
    return KILN_OK;
  }
  case F_DIGEST:
    return text_is(v, "SHA384") ? KILN_OK
                                : kiln_error_set(err, KILN_E_INVALID,
                                                 "attestation document: digest must be \"SHA384\"");
  case F_TIMESTAMP:
    if (!cbor_isa_uint(v) || cbor_get_int(v) == 0 || cbor_get_int(v) > INT64_MAX)
      return kiln_error_set(err, KILN_E_INVALID,
                            "attestation document: timestamp must be a positive integer (ms)");
    d->timestamp_ms = cbor_get_int(v);
    return KILN_OK;
  case F_PCRS: return parse_pcrs(v, d, err);
  case F_CERT:
    return copy_bytes(v, 1, KILN_ATTESTATION_MAX_CERT, &d->certificate)
               ? KILN_OK
               : kiln_error_set(err, KILN_E_INVALID,
                                "attestation document: certificate must be 1 to %d bytes of DER",
                                KILN_ATTESTATION_MAX_CERT);
  case F_CABUNDLE: return parse_cabundle(v, d, err);
  case F_PUBKEY: return parse_optional(v, "public_key", &d->public_key, err);
  case F_USER: return parse_optional(v, "user_data", &d->user_data, err);
  case F_NONCE: return parse_optional(v, "nonce", &d->nonce, err);
  }
  return KILN_E_INTERNAL;
}

static kiln_err parse_payload(struct kiln_attestation_doc *d, struct kiln_error *err)
{
  cbor_item_t *m = load_exact(d->payload.data, d->payload.len);
  kiln_err rc = KILN_OK;
  if (!m || !cbor_isa_map(m)) {
    rc = kiln_error_set(err, KILN_E_INVALID,
                        "attestation document: the payload is not one CBOR map (truncated or "
                        "malformed)");
    goto out;
  }
  unsigned seen = 0;
  struct cbor_pair *kv = cbor_map_handle(m);
  for (size_t i = 0; i < cbor_map_size(m) && !rc; i++) {
    size_t f = 0;
    while (f < NUM_FIELDS && !text_is(kv[i].key, field_names[f]))
      f++;
    if (f == NUM_FIELDS)
      rc = kiln_error_set(err, KILN_E_INVALID,
                          "attestation document: unknown payload key #%zu (known: module_id, "
                          "digest, timestamp, pcrs, certificate, cabundle, public_key, "
                          "user_data, nonce)",
                          i);
    else if (seen & (1u << f))
      rc = kiln_error_set(err, KILN_E_INVALID, "attestation document: %s appears twice",
                          field_names[f]);
    else {
      seen |= 1u << f;
      rc = parse_field((enum field)f, kv[i].value, d, err);
    }
  }
  for (size_t f = 0; f < REQUIRED_FIELDS && !rc; f++)
    if (!(seen & (1u << f)))
      rc = kiln_error_set(err, KILN_E_INVALID, "attestation document: %s is missing",
                          field_names[f]);
out:
  if (m)
    cbor_decref(&m);
  return rc;
}

/* The COSE_Sign1 envelope: [protected, unprotected {}, payload, signature]. */
static kiln_err parse_envelope(cbor_item_t *cose, struct kiln_attestation_doc *d,
                               struct kiln_error *err)
{
  if (!cbor_isa_array(cose) || cbor_array_size(cose) != 4)
    return kiln_error_set(err, KILN_E_INVALID,
                          "attestation document: not a COSE_Sign1 array of 4 items");
  cbor_item_t **part = cbor_array_handle(cose);
  if (!copy_bytes(part[0], 1, KILN_ATTESTATION_MAX_DOC, &d->protected_header) ||
      !protected_is_es384(&d->protected_header))
    return kiln_error_set(err, KILN_E_INVALID,
                          "attestation document: the protected header must be {1: -35} (ES384)");
  if (!cbor_isa_map(part[1]) || cbor_map_size(part[1]) != 0)
    return kiln_error_set(err, KILN_E_INVALID,
                          "attestation document: the unprotected header must be an empty map");
  if (!copy_bytes(part[2], 1, KILN_ATTESTATION_MAX_DOC, &d->payload))
    return kiln_error_set(err, KILN_E_INVALID,
                          "attestation document: the payload must be a byte string");
  if (!cbor_isa_bytestring(part[3]) || !cbor_bytestring_is_definite(part[3]) ||
      cbor_bytestring_length(part[3]) != KILN_ATTESTATION_SIG_LEN)
    return kiln_error_set(err, KILN_E_INVALID,
                          "attestation document: the signature must be %d bytes (ES384 r || s)",
                          KILN_ATTESTATION_SIG_LEN);
  memcpy(d->signature, cbor_bytestring_handle(part[3]), KILN_ATTESTATION_SIG_LEN);
  return parse_payload(d, err);
}

kiln_err kiln_attestation_parse(const uint8_t *data, size_t len, struct kiln_attestation_doc **out,
                                struct kiln_error *err)
{
  *out = NULL;
  if (len == 0)
    return kiln_error_set(err, KILN_E_INVALID, "attestation document: empty");
  if (len > KILN_ATTESTATION_MAX_DOC)
    return kiln_error_set(err, KILN_E_INVALID,
                          "attestation document: %zu bytes, more than the limit of %d", len,
                          KILN_ATTESTATION_MAX_DOC);
  struct kiln_attestation_doc *d = calloc(1, sizeof *d);
  if (!d)
    return kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  kiln_err rc = KILN_OK;
  /* Tag 18 in its one-byte form: libcbor 0.8 refuses tags 6..20 as unassigned, so the tag is
   * taken off here and the rest must be the untagged COSE_Sign1. Any other tag is refused. */
  if (data[0] == COSE_SIGN1_HEAD) {
    data++;
    len--;
  }
  if (len > 0 && data[0] >> 5 == CBOR_MAJOR_TAG) {
    rc = kiln_error_set(err, KILN_E_INVALID,
                        "attestation document: a CBOR tag other than 18 (COSE_Sign1) (first byte "
                        "0x%02x)",
                        data[0]);
    goto out;
  }
  cbor_item_t *root = load_exact(data, len);
  if (!root) {
    rc = kiln_error_set(err, KILN_E_INVALID,
                        "attestation document: not one CBOR item (malformed, truncated, "
                        "indefinite lengths or trailing bytes)");
    goto out;
  }
  rc = parse_envelope(root, d, err);
  cbor_decref(&root);
out:
  if (rc)
    kiln_attestation_doc_free(d);
  else
    *out = d;
  return rc;
}

void kiln_attestation_doc_free(struct kiln_attestation_doc *doc)
{
  if (!doc)
    return;
  free(doc->module_id);
  free(doc->certificate.data);
  for (size_t i = 0; i < doc->cabundle_len; i++)
    free(doc->cabundle[i].data);
  free(doc->cabundle);
  free(doc->public_key.data);
  free(doc->user_data.data);
  free(doc->nonce.data);
  free(doc->protected_header.data);
  free(doc->payload.data);
  free(doc);
}
