/* The resume journal of a multipart upload: which upload id belongs to (bucket, key, file SHA-256,
 * size, part size). Written once when the upload starts, removed when it completes or is aborted;
 * the parts themselves are learned from the server (ListParts) on resume. */
#ifndef KILN_S3_JOURNAL_H
#define KILN_S3_JOURNAL_H

#include <stdint.h>

#include "util/error.h"

struct kiln_s3_journal {
  char *path;      /* the journal file */
  char *upload_id; /* NULL when none is recorded */
};

/* Find the journal for this upload in dir (NULL dir: resume disabled, nothing found). A journal
 * for the same bucket/key but another file or part size is reported in *stale_upload_id (caller
 * frees) so the caller can abort that upload. */
KILN_MUST_CHECK kiln_err kiln_s3_journal_open(const char *dir, const char *bucket, const char *key,
                                              const char *sha256, uint64_t size, uint64_t part_size,
                                              struct kiln_s3_journal *j, char **stale_upload_id,
                                              struct kiln_error *err);
KILN_MUST_CHECK kiln_err kiln_s3_journal_record(struct kiln_s3_journal *j, const char *bucket,
                                                const char *key, const char *sha256, uint64_t size,
                                                uint64_t part_size, const char *upload_id,
                                                struct kiln_error *err);
void kiln_s3_journal_remove(struct kiln_s3_journal *j);
void kiln_s3_journal_clear(struct kiln_s3_journal *j);

#endif
