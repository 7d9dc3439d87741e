/* Uploading one file to S3, as the s3 stage and `kiln upload` do it: skipped when the object with
 * the same SHA-256 is there, one PUT for small files, otherwise a parallel multipart upload with
 * CRC32C per part, journaled so an interrupted upload resumes with only the missing parts. */
#ifndef KILN_S3_UPLOAD_H
#define KILN_S3_UPLOAD_H

#include <stdint.h>

#include "client.h"
#include "s3.h"

#define KILN_S3_MIN_PART (5ull << 20)
#define KILN_S3_MAX_PARTS 10000
#define KILN_S3_DEFAULT_PART (16ull << 20)
#define KILN_S3_DEFAULT_PARALLEL 8

struct kiln_s3_upload_options {
  const char *bucket;
  const char *key;
  const char *path;        /* the file */
  const char *sha256;      /* its SHA-256 when already known (hex), else computed */
  int checksum_identity;   /* without sha256: know the file by its CRC32C checksums (the ones
                              S3 reports), sparing a SHA-256 pass over it */
  uint64_t part_size;      /* 0: chosen from the file size */
  unsigned parallel;       /* parts in flight; 0: KILN_S3_DEFAULT_PARALLEL */
  const char *journal_dir; /* where resumable uploads are recorded; NULL: no resume */
  const struct kiln_aws_pair *headers; /* more object headers, e.g. x-amz-meta-pcr0 */
  size_t nheaders;
  int keep_on_failure; /* leave a failed multipart upload for a later resume */
  void (*progress)(void *ctx, uint64_t done, uint64_t total);
  void *progress_ctx;
};

struct kiln_s3_upload_result {
  char *version_id;
  char *etag;
  char *checksum;      /* x-amz-checksum-crc32c of the object as S3 reports it */
  char sha256[65];     /* "" when the file was known by its checksums */
  uint64_t bytes;      /* file size */
  uint64_t bytes_sent; /* body bytes this run sent (0 when skipped) */
  unsigned parts;      /* 0 for a single PUT */
  unsigned parts_sent;
  unsigned parts_reused; /* found on the server when resuming */
  uint64_t part_size;
  int skipped; /* the object was already there */
  int resumed;
  double seconds;
  char *kept_upload_id; /* on failure with keep_on_failure: the upload left for resuming */
};
void kiln_s3_upload_result_clear(struct kiln_s3_upload_result *r);

/* Part size for a file: at least 5 MiB, at most 10,000 parts, whole MiB. requested 0: 16 MiB
 * (raised for very large files); a requested size too small for the file is an error. */
KILN_MUST_CHECK kiln_err kiln_s3_part_size(uint64_t file_size, uint64_t requested, uint64_t *out,
                                           struct kiln_error *err);

/* Where the object is and what it holds (the s3-object artifact's metadata), and the transfer's
 * figures (parts sent and reused, seconds) added to such a document. */
cJSON *kiln_s3_upload_result_json(const char *region, const char *bucket, const char *key,
                                  const struct kiln_s3_upload_result *r);
void kiln_s3_upload_stats_json(cJSON *m, const struct kiln_s3_upload_result *r);

KILN_MUST_CHECK kiln_err kiln_s3_upload(struct kiln_aws_client *c,
                                        const struct kiln_s3_upload_options *o,
                                        struct kiln_s3_upload_result *out, struct kiln_error *err);

#endif
