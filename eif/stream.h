/* Private to libkiln-eif: the EIF writer's byte stream. Every byte of the file after the header
 * goes through a ring of buffers: the calling thread reads inputs into a free buffer, computes
 * the CRC-32 and writes it; two lanes hash it at the same time (lane 0: PCR0, lane 1: PCR1 or
 * PCR2), so each input byte is read once and the two SHA streams run on two cores. */
#ifndef KILN_EIF_STREAM_H
#define KILN_EIF_STREAM_H

#include <stdint.h>

#include "kiln/eif.h"
#include "measure.h"

struct eif_stream;

/* Start the lanes; bytes are written to fd from its current offset (name is for errors). */
kiln_err eif_stream_new(int fd, const char *name, struct eif_measure *m, struct eif_stream **out,
                        struct kiln_error *err);
/* Append len bytes (copied) that go into the PCRs as feed says. After eif_stream_finish only
 * EIF_FEED_NONE bytes (the signature section) may be appended. */
kiln_err eif_stream_put(struct eif_stream *s, const void *data, size_t len, enum eif_feed feed,
                        struct kiln_error *err);
/* Append the size bytes of the file at path (an error if its size differs). */
kiln_err eif_stream_put_file(struct eif_stream *s, const char *path, uint64_t size,
                             enum eif_feed feed, struct kiln_error *err);
/* Wait until every byte is hashed and written; the measure is then complete. */
kiln_err eif_stream_finish(struct eif_stream *s, struct kiln_error *err);
/* Where the time went (NULL-safe); valid after eif_stream_finish. */
void eif_stream_stats(const struct eif_stream *s, struct kiln_eif_write_stats *stats);
/* Stop the lanes (after an error too) and free. NULL is a no-op. */
void eif_stream_free(struct eif_stream *s);

#endif
