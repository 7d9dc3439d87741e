/* S3 object and multipart-upload operations on the AWS client: HEAD, PUT, Create/UploadPart
 * (request building)/ListParts/Complete/Abort, ListMultipartUploads. */
#ifndef KILN_AWS_S3_H
#define KILN_AWS_S3_H

#include <stdint.h>

#include "client.h"

struct kiln_s3_object {
  int exists;
  uint64_t size;
  char *etag;
  char *version_id;
  char *checksum_crc32c;      /* as S3 reports it, e.g. "AAAAAA==-3" for a multipart object */
  char *meta_sha256;          /* x-amz-meta-sha256: the whole file's SHA-256 that kiln stored */
  struct kiln_aws_pair *meta; /* every x-amz-meta-* header, names without the prefix; owned */
  size_t nmeta;
};
void kiln_s3_object_clear(struct kiln_s3_object *o);

/* HEAD with checksum mode; a missing object is exists = 0 and KILN_OK. A missing bucket is
 * KILN_E_NOT_FOUND with a message saying so. */
KILN_MUST_CHECK kiln_err kiln_s3_head(struct kiln_aws_client *c, const char *bucket,
                                      const char *key, struct kiln_s3_object *out,
                                      struct kiln_error *err);

struct kiln_s3_part {
  int number;
  uint64_t size;
  char *etag;
  char *checksum_crc32c;
};
void kiln_s3_parts_free(struct kiln_s3_part *parts, size_t n);

/* extra: more headers for the object (x-amz-meta-*), may be NULL. */
KILN_MUST_CHECK kiln_err kiln_s3_create_multipart(struct kiln_aws_client *c, const char *bucket,
                                                  const char *key, const char *sha256_hex,
                                                  const struct kiln_aws_pair *extra, size_t nextra,
                                                  char **upload_id, struct kiln_error *err);
/* All parts the server holds for an upload (every page). KILN_E_NOT_FOUND when the upload is
 * gone (completed or aborted). */
KILN_MUST_CHECK kiln_err kiln_s3_list_parts(struct kiln_aws_client *c, const char *bucket,
                                            const char *key, const char *upload_id,
                                            struct kiln_s3_part **parts, size_t *nparts,
                                            struct kiln_error *err);
/* Complete with parts in order; out gets etag, version id and the composite checksum. */
KILN_MUST_CHECK kiln_err kiln_s3_complete_multipart(struct kiln_aws_client *c, const char *bucket,
                                                    const char *key, const char *upload_id,
                                                    const struct kiln_s3_part *parts, size_t nparts,
                                                    struct kiln_s3_object *out,
                                                    struct kiln_error *err);
KILN_MUST_CHECK kiln_err kiln_s3_abort_multipart(struct kiln_aws_client *c, const char *bucket,
                                                 const char *key, const char *upload_id,
                                                 struct kiln_error *err);

struct kiln_s3_upload_entry {
  char *key;
  char *upload_id;
  char *initiated;
};
/* Incomplete multipart uploads under prefix (NULL: all), every page. */
KILN_MUST_CHECK kiln_err kiln_s3_list_uploads(struct kiln_aws_client *c, const char *bucket,
                                              const char *prefix, struct kiln_s3_upload_entry **out,
                                              size_t *n, struct kiln_error *err);
void kiln_s3_upload_entries_free(struct kiln_s3_upload_entry *e, size_t n);

/* The content-addressed key of an EIF: "<prefix>eifs/<name>/<sha256>.eif" (caller frees). */
char *kiln_s3_content_key(const char *prefix, const char *name, const char *sha256);
/* "kiln-host/<sha256>": where deploy puts the parent's kiln-host binary. */
char *kiln_s3_kiln_host_key(const char *sha256);

/* The composite checksum S3 reports for a multipart object: CRC32C over the parts' binary
 * CRC32C values, base64, "-N" (out >= 16 bytes). */
void kiln_s3_composite_crc32c(const uint32_t *part_crcs, size_t n, char *out, size_t out_size);
/* Decode an x-amz-checksum-crc32c value into the CRC; -1 when malformed. */
int kiln_s3_crc32c_decode(const char *b64, uint32_t *crc);

#endif
