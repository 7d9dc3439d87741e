/* Fetching an attestation document from a live enclave's endpoint (kiln-host's attestation port)
 * with a fresh nonce, for `kiln verify --attestation URL`. */
#ifndef KILN_BUILDER_ATTEST_FETCH_H
#define KILN_BUILDER_ATTEST_FETCH_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"
#include "util/error.h"

/* GET url?nonce=<nonce_hex> (or &nonce= when url has a query) within timeout_s seconds; the
 * answer must be 200 with a CBOR content type and at most max_bytes. *out receives the body.
 * Errors name the URL and say what came instead (timeouts, refused connections, 503 with the
 * server's reason, other statuses, the wrong content type, an oversized answer). */
kiln_err kiln_attest_fetch(const char *url, const char *nonce_hex, long timeout_s, size_t max_bytes,
                           struct kiln_buf *out, struct kiln_error *err);

#endif
