/* SHA-256 helpers over buffers, files and directory trees (OpenSSL EVP). */
#ifndef KILN_UTIL_HASH_H
#define KILN_UTIL_HASH_H

#include <stddef.h>
#include <stdint.h>

#include "util/error.h"

#define KILN_SHA256_HEX_LEN 64
/* A SHA-256 digest as text: "sha256:" + 64 lowercase hex digits (content addresses, OCI). */
#define KILN_SHA256_PREFIX "sha256:"
#define KILN_SHA256_DIGEST_LEN (7 + KILN_SHA256_HEX_LEN)

/* Lowercase hex of n bytes into out (2n+1 bytes). */
void kiln_hex_encode(const uint8_t *in, size_t n, char *out);
/* out: 65 bytes (64 hex + NUL). */
void kiln_sha256_hex(const void *data, size_t len, char out[KILN_SHA256_HEX_LEN + 1]);
/* "sha256:<hex>" into out. */
void kiln_sha256_digest(const char hex[KILN_SHA256_HEX_LEN + 1],
                        char out[KILN_SHA256_DIGEST_LEN + 1]);
/* The 64 hex digits of a "sha256:<64 lowercase hex>" digest, or NULL when text is not one. */
const char *kiln_sha256_digest_hex(const char *text);
/* Whether a digest names the sha256 algorithm (its hex not checked): "sha256:...". */
int kiln_digest_is_sha256(const char *text);
/* Streaming SHA-256 of a file; out: 65 bytes. *size (optional) receives the byte count. */
KILN_MUST_CHECK kiln_err kiln_sha256_file(const char *path, char out[KILN_SHA256_HEX_LEN + 1],
                                          uint64_t *size, struct kiln_error *err);
/* A file's SHA-256 known without reading it (handed over by the stage that wrote it). */
struct kiln_known_digest {
  char *name; /* relative to the tree's root */
  uint64_t size;
  char sha256[KILN_SHA256_HEX_LEN + 1];
};
/* kiln_sha256_tree, taking the digests of known files instead of reading them; a known file is
 * re-hashed and compared when its size is at most verify_limit (KILN_E_PLUGIN on a mismatch,
 * and on a size that is not the file's). *read_bytes counts the bytes hashed from files. */
KILN_MUST_CHECK kiln_err kiln_sha256_tree_known(const char *dir,
                                                const struct kiln_known_digest *known,
                                                size_t nknown, uint64_t verify_limit,
                                                char out[KILN_SHA256_HEX_LEN + 1],
                                                uint64_t *read_bytes, struct kiln_error *err);
/* SHA-256 over a directory tree: sorted relative paths, types, exec bits, link targets and file
 * contents; independent of mtimes, owners and directory order. */
KILN_MUST_CHECK kiln_err kiln_sha256_tree(const char *dir, char out[KILN_SHA256_HEX_LEN + 1],
                                          struct kiln_error *err);

#endif
