/* Private to libkiln-eif: the EIF writer's byte stream. The file is assembled in a ring of
 * output blocks: the calling thread reads inputs straight into a block, two lanes hash it (lane
 * 0: PCR0, lane 1: PCR1 or PCR2) and a disk thread computes the CRC-32 and writes it (O_DIRECT
 * where the file system allows), all at the same time; each input byte is read once. */
#ifndef KILN_EIF_STREAM_H
#define KILN_EIF_STREAM_H

#include <stdint.h>

#include "kiln/eif.h"
#include "measure.h"

struct eif_stream;

/* Start the threads. The file starts with header_len bytes of header, in neither the CRC nor
 * the PCRs: final_header when it is known now (then the whole file's SHA-256 is computed in the
 * same pass, see eif_stream_sha256; nothing may be appended after eif_stream_finish), else
 * zeros until eif_stream_close writes it. fd must be empty. */
kiln_err eif_stream_new(int fd, const char *name, struct eif_measure *m, size_t header_len,
                        const void *final_header, struct eif_stream **out, struct kiln_error *err);
/* Append len bytes (copied) that go into the PCRs as feed says. After eif_stream_finish only
 * EIF_FEED_NONE bytes (the signature section) may be appended. */
kiln_err eif_stream_put(struct eif_stream *s, const void *data, size_t len, enum eif_feed feed,
                        struct kiln_error *err);
/* Append the size bytes of the file at path (an error if its size differs). */
kiln_err eif_stream_put_file(struct eif_stream *s, const char *path, uint64_t size,
                             enum eif_feed feed, struct kiln_error *err);
/* Wait until every byte so far is hashed, checksummed and written: the PCRs are then final. */
kiln_err eif_stream_finish(struct eif_stream *s, struct kiln_error *err);
/* After eif_stream_finish (and any signature): write the header at offset 0, cut the file to
 * its length and fsync it. */
kiln_err eif_stream_close(struct eif_stream *s, const void *header, size_t header_len,
                          struct kiln_error *err);
/* The whole file's SHA-256 (with a final header, nothing appended after eif_stream_finish), as
 * 64 hex digits: 0, or -1 when it was not computed. Once, after eif_stream_finish. */
int eif_stream_sha256(const struct eif_stream *s, char hex[65]);
/* Where the time went (NULL-safe); complete after eif_stream_close. */
void eif_stream_stats(const struct eif_stream *s, struct kiln_eif_write_stats *stats);
/* Stop the threads (after an error too) and free. NULL is a no-op. */
void eif_stream_free(struct eif_stream *s);

#endif
