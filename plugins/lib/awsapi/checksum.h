/* Checksums S3 verifies per part and per object: CRC32C (hardware SSE4.2 where the CPU has it) and
 * the base64 text S3 uses for x-amz-checksum-* headers. */
#ifndef KILN_AWS_CHECKSUM_H
#define KILN_AWS_CHECKSUM_H

#include <stddef.h>
#include <stdint.h>

/* Continue a CRC32C (Castagnoli) over len bytes; start with crc = 0. */
uint32_t kiln_crc32c(uint32_t crc, const void *data, size_t len);
/* Standard base64 of len bytes into out (size >= 4 * ((len + 2) / 3) + 1). */
void kiln_base64(const unsigned char *in, size_t len, char *out);
/* The x-amz-checksum-crc32c text of a CRC: base64 of its 4 big-endian bytes (out[9]). */
void kiln_crc32c_base64(uint32_t crc, char out[9]);

#endif
