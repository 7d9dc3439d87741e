/* One file to S3: HEAD skip, single PUT or a parallel multipart upload (CRC32C per part, streamed
 * with pread, resumable through the journal and ListParts), verified against S3's checksums. */
#include "upload.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "checksum.h"
#include "journal.h"
#include "s3.h"
#include "util/buf.h"
#include "util/hash.h"

#define CRC_CHUNK (1u << 20)

void kiln_s3_upload_result_clear(struct kiln_s3_upload_result *r)
{
  free(r->version_id);
  free(r->etag);
  free(r->checksum);
  free(r->kept_upload_id);
  memset(r, 0, sizeof(*r));
}

kiln_err kiln_s3_part_size(uint64_t file_size, uint64_t requested, uint64_t *out,
                           struct kiln_error *err)
{
  const uint64_t mib = 1ull << 20;
  uint64_t min_for_file = (file_size + KILN_S3_MAX_PARTS - 1) / KILN_S3_MAX_PARTS;
  min_for_file = (min_for_file + mib - 1) / mib * mib;
  if (requested) {
    if (requested < KILN_S3_MIN_PART)
      return kiln_error_set(err, KILN_E_INVALID,
                            "part size %llu MiB is below S3's minimum of 5 MiB",
                            (unsigned long long)(requested / mib));
    if (requested > (5ull << 30))
      return kiln_error_set(err, KILN_E_INVALID, "part size above S3's maximum of 5 GiB");
    if (requested < min_for_file)
      return kiln_error_set(err, KILN_E_INVALID,
                            "part size %llu MiB would need more than 10,000 parts for %llu "
                            "bytes: use at least %llu MiB",
                            (unsigned long long)(requested / mib), (unsigned long long)file_size,
                            (unsigned long long)(min_for_file / mib));
    *out = requested;
    return KILN_OK;
  }
  *out = KILN_S3_DEFAULT_PART > min_for_file ? KILN_S3_DEFAULT_PART : min_for_file;
  return KILN_OK;
}

static double now_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CRC32C of len bytes at offset, read with pread into buf. */
static kiln_err crc_range(int fd, const char *path, off_t offset, uint64_t len, char *buf,
                          uint32_t *crc, struct kiln_error *err)
{
  uint32_t c = 0;
  while (len > 0) {
    size_t want = len < CRC_CHUNK ? (size_t)len : CRC_CHUNK;
    ssize_t got = pread(fd, buf, want, offset);
    if (got < 0 && errno == EINTR)
      continue;
    if (got < 0)
      return kiln_error_set(err, KILN_E_IO, "reading %s: %s", path, strerror(errno));
    if (got == 0)
      return kiln_error_set(err, KILN_E_IO, "%s became shorter while uploading it", path);
    c = kiln_crc32c(c, buf, (size_t)got);
    offset += got;
    len -= (uint64_t)got;
  }
  *crc = c;
  return KILN_OK;
}

struct part_job {
  int number;
  off_t offset;
  uint64_t size;
  uint32_t crc;
  int have_crc;
  int done; /* on the server (sent now or found when resuming) */
  char crc_b64[9];
  char number_text[8];
  char *etag;
  struct kiln_aws_pair query[2];
  struct kiln_aws_pair headers[1];
};

struct upload_run {
  struct kiln_aws_client *c;
  const struct kiln_s3_upload_options *o;
  struct kiln_s3_upload_result *out;
  int fd;
  char *path_key; /* "/KEY" */
  char *upload_id;
  struct part_job *jobs;
  size_t njobs;
  size_t next_job;
  uint64_t bytes_done;
  uint64_t total;
  char *buf;
  struct stat before; /* the file when the upload started */
  uint32_t whole_crc; /* single PUT: the file's CRC32C, once computed */
  int have_whole_crc;
  char crc_identity[48];      /* "crc32c:<S3 checksum text>" when the file is known by its CRCs */
  struct kiln_error next_err; /* a failure inside next() (reading the file) */
};

static int part_next(void *ctx, struct kiln_aws_request *req, void **tag)
{
  struct upload_run *u = ctx;
  while (u->next_job < u->njobs && u->jobs[u->next_job].done)
    u->next_job++;
  if (u->next_job >= u->njobs || u->next_err.code)
    return 0;
  struct part_job *j = &u->jobs[u->next_job++];
  if (!j->have_crc) {
    if (crc_range(u->fd, u->o->path, j->offset, j->size, u->buf, &j->crc, &u->next_err) != KILN_OK)
      return 0;
    j->have_crc = 1;
  }
  kiln_crc32c_base64(j->crc, j->crc_b64);
  snprintf(j->number_text, sizeof(j->number_text), "%d", j->number);
  j->query[0] = (struct kiln_aws_pair){"partNumber", j->number_text};
  j->query[1] = (struct kiln_aws_pair){"uploadId", u->upload_id};
  j->headers[0] = (struct kiln_aws_pair){"x-amz-checksum-crc32c", j->crc_b64};
  req->service = "s3";
  req->operation = "UploadPart";
  req->method = "PUT";
  req->bucket = u->o->bucket;
  req->path = u->path_key;
  req->query = j->query;
  req->nquery = 2;
  req->headers = j->headers;
  req->nheaders = 1;
  req->body_fd = u->fd;
  req->body_offset = j->offset;
  req->body_len = (size_t)j->size;
  *tag = j;
  return 1;
}

static kiln_err part_done(void *ctx, void *tag, kiln_err result, struct kiln_aws_response *resp,
                          const struct kiln_aws_error_info *info, struct kiln_error *err)
{
  struct upload_run *u = ctx;
  struct part_job *j = tag;
  (void)info;
  if (result != KILN_OK)
    return kiln_error_prefix(err, "part %d of %zu", j->number, u->njobs);
  const char *etag = kiln_aws_response_header(resp, "etag");
  const char *crc = kiln_aws_response_header(resp, "x-amz-checksum-crc32c");
  if (!etag || !*etag)
    return kiln_error_set(err, KILN_E_REMOTE, "S3 UploadPart: part %d: the answer has no ETag",
                          j->number);
  if (crc && strcmp(crc, j->crc_b64) != 0)
    return kiln_error_set(err, KILN_E_REMOTE,
                          "S3 UploadPart: part %d: the server's CRC32C %s differs from ours (%s): "
                          "the bytes were changed on the way",
                          j->number, crc, j->crc_b64);
  free(j->etag);
  if (!(j->etag = strdup(etag)))
    return kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  j->done = 1;
  u->out->parts_sent++;
  u->out->bytes_sent += j->size;
  u->bytes_done += j->size;
  if (u->o->progress)
    u->o->progress(u->o->progress_ctx, u->bytes_done, u->total);
  return KILN_OK;
}

/* Mark the parts the server already holds (same size and CRC32C as ours) as done. */
static kiln_err reuse_server_parts(struct upload_run *u, struct kiln_error *err)
{
  struct kiln_s3_part *parts = NULL;
  size_t n = 0;
  kiln_err rc = kiln_s3_list_parts(u->c, u->o->bucket, u->o->key, u->upload_id, &parts, &n, err);
  if (rc != KILN_OK)
    return rc;
  for (size_t i = 0; i < n && rc == KILN_OK; i++) {
    int num = parts[i].number;
    if (num < 1 || (size_t)num > u->njobs)
      continue;
    struct part_job *j = &u->jobs[num - 1];
    if (parts[i].size != j->size || !parts[i].etag)
      continue;
    rc = crc_range(u->fd, u->o->path, j->offset, j->size, u->buf, &j->crc, err);
    j->have_crc = rc == KILN_OK;
    if (rc != KILN_OK)
      break;
    kiln_crc32c_base64(j->crc, j->crc_b64);
    if (parts[i].checksum_crc32c && strcmp(parts[i].checksum_crc32c, j->crc_b64) != 0)
      continue; /* the server's part differs from the file: send it again */
    j->etag = strdup(parts[i].etag);
    j->done = j->etag != NULL;
    u->out->parts_reused += (unsigned)j->done;
    u->bytes_done += j->done ? j->size : 0;
  }
  kiln_s3_parts_free(parts, n);
  return rc;
}

static kiln_err complete_upload(struct upload_run *u, struct kiln_error *err)
{
  struct kiln_s3_part *parts = calloc(u->njobs, sizeof(*parts));
  uint32_t *crcs = calloc(u->njobs, sizeof(*crcs));
  struct kiln_s3_object obj;
  kiln_err rc;
  if (!parts || !crcs) {
    free(parts);
    free(crcs);
    return kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  }
  for (size_t i = 0; i < u->njobs; i++) {
    parts[i].number = u->jobs[i].number;
    parts[i].etag = u->jobs[i].etag;
    parts[i].checksum_crc32c = u->jobs[i].crc_b64;
    crcs[i] = u->jobs[i].crc;
  }
  rc = kiln_s3_complete_multipart(u->c, u->o->bucket, u->o->key, u->upload_id, parts, u->njobs,
                                  &obj, err);
  free(parts); /* the strings belong to the jobs */
  if (rc == KILN_OK) {
    char want[32];
    kiln_s3_composite_crc32c(crcs, u->njobs, want, sizeof(want));
    /* Only a composite answer ("...-N") can be compared; full-object CRCs are checked by size. */
    if (obj.checksum_crc32c && strchr(obj.checksum_crc32c, '-') &&
        strcmp(obj.checksum_crc32c, want) != 0)
      rc = kiln_error_set(err, KILN_E_REMOTE,
                          "S3 CompleteMultipartUpload: the object's checksum %s differs from "
                          "ours (%s)",
                          obj.checksum_crc32c, want);
    u->out->etag = obj.etag;
    u->out->version_id = obj.version_id;
    u->out->checksum = obj.checksum_crc32c;
    obj.etag = obj.version_id = obj.checksum_crc32c = NULL;
  }
  kiln_s3_object_clear(&obj);
  free(crcs);
  return rc;
}

static kiln_err put_single(struct upload_run *u, struct kiln_error *err)
{
  uint32_t crc = 0;
  char crc_b64[9];
  kiln_err rc = KILN_OK;
  if (u->have_whole_crc)
    crc = u->whole_crc;
  else if ((rc = crc_range(u->fd, u->o->path, 0, u->total, u->buf, &crc, err)) != KILN_OK)
    return rc;
  kiln_crc32c_base64(crc, crc_b64);
  struct kiln_aws_pair *headers = calloc(u->o->nheaders + 4, sizeof(*headers));
  size_t nh = 0;
  if (!headers)
    return kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  headers[nh++] = (struct kiln_aws_pair){"x-amz-checksum-crc32c", crc_b64};
  headers[nh++] = (struct kiln_aws_pair){"content-type", "application/octet-stream"};
  if (u->out->sha256[0])
    headers[nh++] = (struct kiln_aws_pair){"x-amz-meta-sha256", u->out->sha256};
  else
    headers[nh++] = (struct kiln_aws_pair){"x-amz-meta-crc32c", u->crc_identity + 7};
  for (size_t i = 0; i < u->o->nheaders; i++)
    headers[nh++] = u->o->headers[i];
  struct kiln_aws_request r = KILN_AWS_REQUEST_INIT;
  struct kiln_aws_response resp;
  r.service = "s3";
  r.operation = "PutObject";
  r.method = "PUT";
  r.bucket = u->o->bucket;
  r.path = u->path_key;
  r.headers = headers;
  r.nheaders = nh;
  r.body_fd = u->fd;
  r.body_len = (size_t)u->total;
  if (u->total == 0) {
    r.body_fd = -1;
    r.body = "";
  }
  rc = kiln_aws_send(u->c, &r, &resp, NULL, err);
  if (rc == KILN_OK) {
    const char *server_crc = kiln_aws_response_header(&resp, "x-amz-checksum-crc32c");
    if (server_crc && strcmp(server_crc, crc_b64) != 0)
      rc = kiln_error_set(err, KILN_E_REMOTE,
                          "S3 PutObject: the server's CRC32C %s differs from ours (%s)", server_crc,
                          crc_b64);
    const char *etag = kiln_aws_response_header(&resp, "etag");
    const char *version = kiln_aws_response_header(&resp, "x-amz-version-id");
    u->out->etag = etag ? strdup(etag) : NULL;
    u->out->version_id = version ? strdup(version) : NULL;
    u->out->checksum = strdup(server_crc ? server_crc : crc_b64);
    u->out->bytes_sent = u->total;
  }
  kiln_aws_response_clear(&resp);
  free(headers);
  return rc;
}

static kiln_err plan_parts(struct upload_run *u)
{
  uint64_t ps = u->out->part_size;
  if (u->jobs)
    return KILN_OK;
  u->njobs = (size_t)((u->total + ps - 1) / ps);
  u->jobs = calloc(u->njobs, sizeof(*u->jobs));
  if (!u->jobs)
    return KILN_E_NOMEM;
  for (size_t i = 0; i < u->njobs; i++) {
    u->jobs[i].number = (int)i + 1;
    u->jobs[i].offset = (off_t)(i * ps);
    u->jobs[i].size = i + 1 < u->njobs ? ps : u->total - i * ps;
  }
  u->out->parts = (unsigned)u->njobs;
  return KILN_OK;
}

/* CreateMultipartUpload with the object's headers: the caller's, plus the CRC identity (kept as
 * x-amz-meta-crc32c because servers need not report composite checksums on HEAD). */
static kiln_err create_upload(struct upload_run *u, struct kiln_error *err)
{
  struct kiln_aws_pair *extra = calloc(u->o->nheaders + 1, sizeof(*extra));
  size_t n = 0;
  if (!extra)
    return kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  for (size_t i = 0; i < u->o->nheaders; i++)
    extra[n++] = u->o->headers[i];
  if (!u->out->sha256[0])
    extra[n++] = (struct kiln_aws_pair){"x-amz-meta-crc32c", u->crc_identity + 7};
  kiln_err rc = kiln_s3_create_multipart(u->c, u->o->bucket, u->o->key,
                                         u->out->sha256[0] ? u->out->sha256 : NULL, extra, n,
                                         &u->upload_id, err);
  free(extra);
  return rc;
}

/* Does the object carry this CRC identity (S3's own checksum, or the x-amz-meta-crc32c kiln set)?
 */
static int same_crc_identity(const struct kiln_s3_object *o, const char *checksum)
{
  if (o->checksum_crc32c && strcmp(o->checksum_crc32c, checksum) == 0)
    return 1;
  for (size_t i = 0; i < o->nmeta; i++)
    if (strcmp(o->meta[i].name, "crc32c") == 0 && strcmp(o->meta[i].value, checksum) == 0)
      return 1;
  return 0;
}

/* What names the file's content: its SHA-256, or its CRC32C checksums (checksum_identity). */
static const char *identity_of(const struct upload_run *u)
{
  return u->out->sha256[0] ? u->out->sha256 : u->crc_identity;
}

/* The file's CRC32C identity without a SHA-256 pass: the checksum S3 itself reports for the
 * object (whole-file CRC for one PUT, the composite of the part CRCs for multipart). The part
 * CRCs are kept for the upload. */
static kiln_err crc_identity(struct upload_run *u, struct kiln_error *err)
{
  char text[32];
  kiln_err rc;
  if (u->total <= u->out->part_size) {
    rc = crc_range(u->fd, u->o->path, 0, u->total, u->buf, &u->whole_crc, err);
    u->have_whole_crc = rc == KILN_OK;
    kiln_crc32c_base64(u->whole_crc, text);
  } else {
    if (plan_parts(u) != KILN_OK)
      return kiln_error_set(err, KILN_E_NOMEM, "out of memory");
    uint32_t *crcs = calloc(u->njobs, sizeof(*crcs));
    if (!crcs)
      return kiln_error_set(err, KILN_E_NOMEM, "out of memory");
    rc = KILN_OK;
    for (size_t i = 0; i < u->njobs && rc == KILN_OK; i++) {
      struct part_job *j = &u->jobs[i];
      rc = crc_range(u->fd, u->o->path, j->offset, j->size, u->buf, &j->crc, err);
      j->have_crc = rc == KILN_OK;
      crcs[i] = j->crc;
    }
    kiln_s3_composite_crc32c(crcs, u->njobs, text, sizeof(text));
    free(crcs);
  }
  snprintf(u->crc_identity, sizeof(u->crc_identity), "crc32c:%s", text);
  return rc;
}

static int file_changed(const struct upload_run *u)
{
  struct stat now;
  return fstat(u->fd, &now) != 0 || now.st_size != u->before.st_size ||
         now.st_mtim.tv_sec != u->before.st_mtim.tv_sec ||
         now.st_mtim.tv_nsec != u->before.st_mtim.tv_nsec;
}

static kiln_err multipart(struct upload_run *u, struct kiln_s3_journal *journal,
                          struct kiln_error *err)
{
  kiln_err rc = plan_parts(u);
  if (rc != KILN_OK)
    return kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  if (journal->upload_id) {
    u->upload_id = strdup(journal->upload_id);
    rc = reuse_server_parts(u, err);
    if (rc == KILN_E_NOT_FOUND) { /* the upload is gone: start a new one */
      kiln_error_clear(err);
      free(u->upload_id);
      u->upload_id = NULL;
      kiln_aws_client_log(u->c, KILN_LOG_INFO, "the recorded upload is gone; starting over");
      rc = KILN_OK;
    } else if (rc == KILN_OK) {
      u->out->resumed = 1;
      kiln_aws_client_log(u->c, KILN_LOG_INFO, "resuming upload: %u of %zu parts already stored",
                          u->out->parts_reused, u->njobs);
    }
    if (rc != KILN_OK)
      return rc;
  }
  if (!u->upload_id) {
    rc = create_upload(u, err);
    if (rc == KILN_OK)
      rc = kiln_s3_journal_record(journal, u->o->bucket, u->o->key, identity_of(u), u->total,
                                  u->out->part_size, u->upload_id, err);
    if (rc != KILN_OK)
      return rc;
  }
  if (u->o->progress)
    u->o->progress(u->o->progress_ctx, u->bytes_done, u->total);
  static const struct kiln_aws_batch_ops ops = {part_next, part_done, NULL};
  unsigned parallel = u->o->parallel ? u->o->parallel : KILN_S3_DEFAULT_PARALLEL;
  rc = kiln_aws_batch_run(u->c, parallel, &ops, u, err);
  if (rc == KILN_OK && u->next_err.code) {
    rc = kiln_error_set(err, u->next_err.code, "%s", kiln_error_msg(&u->next_err));
  }
  if (rc != KILN_OK)
    return rc;
  for (size_t i = 0; i < u->njobs; i++)
    if (!u->jobs[i].done)
      return kiln_error_set(err, KILN_E_INTERNAL, "part %d was never sent", u->jobs[i].number);
  if (file_changed(u))
    return kiln_error_set(err, KILN_E_IO, "%s changed while it was being uploaded", u->o->path);
  return complete_upload(u, err);
}

static void run_clear(struct upload_run *u)
{
  for (size_t i = 0; i < u->njobs; i++)
    free(u->jobs[i].etag);
  free(u->jobs);
  free(u->path_key);
  free(u->upload_id);
  free(u->buf);
  kiln_error_clear(&u->next_err);
  if (u->fd >= 0)
    close(u->fd);
}

/* After a failure: abort the upload (nothing left behind) or keep it for a resume. */
static void after_failure(struct upload_run *u, struct kiln_s3_journal *journal, kiln_err rc,
                          struct kiln_error *err)
{
  if (!u->upload_id)
    return;
  if (u->o->keep_on_failure || rc == KILN_E_CANCELLED) {
    u->out->kept_upload_id = strdup(u->upload_id);
    kiln_error_prefix(err,
                      "upload %s kept for resuming (%u of %zu parts stored; run the same "
                      "command again to resume)",
                      u->upload_id, u->out->parts_sent + u->out->parts_reused, u->njobs);
    return;
  }
  struct kiln_error abort_err = KILN_ERROR_INIT;
  if (kiln_s3_abort_multipart(u->c, u->o->bucket, u->o->key, u->upload_id, &abort_err) == KILN_OK) {
    kiln_s3_journal_remove(journal);
    kiln_aws_client_log(u->c, KILN_LOG_INFO, "aborted multipart upload %s", u->upload_id);
  } else {
    kiln_error_prefix(err, "and aborting upload %s failed too (%s); `kiln status` lists it",
                      u->upload_id, kiln_error_msg(&abort_err));
  }
  kiln_error_clear(&abort_err);
}

kiln_err kiln_s3_upload(struct kiln_aws_client *c, const struct kiln_s3_upload_options *o,
                        struct kiln_s3_upload_result *out, struct kiln_error *err)
{
  struct upload_run u = {.c = c, .o = o, .out = out, .fd = -1};
  struct kiln_s3_journal journal = {0};
  struct kiln_s3_object existing = {0};
  struct stat *before = &u.before;
  char *stale = NULL;
  double start = now_s();
  kiln_err rc;

  memset(out, 0, sizeof(*out));
  u.fd = open(o->path, O_RDONLY | O_CLOEXEC);
  if (u.fd < 0)
    return kiln_error_set(err, errno == ENOENT ? KILN_E_NOT_FOUND : KILN_E_IO, "%s: %s", o->path,
                          strerror(errno));
  if (fstat(u.fd, before) != 0 || !S_ISREG(before->st_mode)) {
    rc = kiln_error_set(err, KILN_E_INVALID, "%s: not a regular file", o->path);
    goto out;
  }
  u.total = out->bytes = (uint64_t)before->st_size;
  if (!(u.buf = malloc(CRC_CHUNK)) || !(u.path_key = malloc(strlen(o->key) + 2))) {
    rc = kiln_error_set(err, KILN_E_NOMEM, "out of memory");
    goto out;
  }
  u.path_key[0] = '/';
  strcpy(u.path_key + 1, o->key);
  if ((rc = kiln_s3_part_size(u.total, o->part_size, &out->part_size, err)) != KILN_OK)
    goto out;
  if (o->sha256 && strlen(o->sha256) == 64)
    memcpy(out->sha256, o->sha256, 65);
  else if (o->checksum_identity)
    rc = crc_identity(&u, err);
  else
    rc = kiln_sha256_file(o->path, out->sha256, NULL, err);
  if (rc != KILN_OK)
    goto out;

  if ((rc = kiln_s3_head(c, o->bucket, o->key, &existing, err)) != KILN_OK)
    goto out;
  int same = out->sha256[0] ? existing.meta_sha256 && !strcmp(existing.meta_sha256, out->sha256)
                            : same_crc_identity(&existing, u.crc_identity + 7);
  if (existing.exists && existing.size == u.total && same) {
    out->skipped = 1;
    out->etag = existing.etag;
    out->version_id = existing.version_id;
    out->checksum = existing.checksum_crc32c;
    existing.etag = existing.version_id = existing.checksum_crc32c = NULL;
    kiln_aws_client_log(c, KILN_LOG_DEBUG, "s3://%s/%s already holds this file (%.19s…)", o->bucket,
                        o->key, identity_of(&u));
    goto out;
  }
  if (u.total <= out->part_size) {
    out->part_size = 0;
    rc = put_single(&u, err);
  } else {
    rc = kiln_s3_journal_open(o->journal_dir, o->bucket, o->key, identity_of(&u), u.total,
                              out->part_size, &journal, &stale, err);
    if (rc == KILN_OK && stale) { /* an upload of an older version of the file: drop it */
      struct kiln_error ignored = KILN_ERROR_INIT;
      if (kiln_s3_abort_multipart(c, o->bucket, o->key, stale, &ignored) != KILN_OK)
        kiln_aws_client_log(c, KILN_LOG_DEBUG, "stale upload %s not aborted: %s", stale,
                            kiln_error_msg(&ignored));
      kiln_error_clear(&ignored);
    }
    if (rc == KILN_OK)
      rc = multipart(&u, &journal, err);
  }
  if (rc == KILN_OK && file_changed(&u)) {
    rc = kiln_error_set(err, KILN_E_IO, "%s changed while it was being uploaded", o->path);
  }
  if (rc != KILN_OK) {
    after_failure(&u, &journal, rc, err);
    goto out;
  }
  kiln_s3_journal_remove(&journal);
  /* The object as S3 now reports it: the size must be the file's. */
  kiln_s3_object_clear(&existing);
  if ((rc = kiln_s3_head(c, o->bucket, o->key, &existing, err)) == KILN_OK &&
      (!existing.exists || existing.size != u.total))
    rc = kiln_error_set(
        err, KILN_E_REMOTE, "s3://%s/%s: after the upload S3 reports %llu bytes, the file has %llu",
        o->bucket, o->key, (unsigned long long)existing.size, (unsigned long long)u.total);
  if (rc == KILN_OK && !out->version_id && existing.version_id)
    out->version_id = strdup(existing.version_id);
out:
  out->seconds = now_s() - start;
  if (rc != KILN_OK)
    kiln_error_prefix(err, "uploading %s to s3://%s/%s", o->path, o->bucket, o->key);
  kiln_s3_object_clear(&existing);
  kiln_s3_journal_clear(&journal);
  free(stale);
  run_clear(&u);
  return rc;
}

cJSON *kiln_s3_upload_result_json(const char *region, const char *bucket, const char *key,
                                  const struct kiln_s3_upload_result *r)
{
  cJSON *m = cJSON_CreateObject();
  struct kiln_buf uri = KILN_BUF_INIT;
  kiln_buf_printf(&uri, "s3://%s/%s", bucket, key);
  cJSON_AddStringToObject(m, "uri", kiln_buf_str(&uri));
  cJSON_AddStringToObject(m, "bucket", bucket);
  cJSON_AddStringToObject(m, "key", key);
  if (region)
    cJSON_AddStringToObject(m, "region", region);
  if (r->sha256[0])
    cJSON_AddStringToObject(m, "sha256", r->sha256);
  cJSON_AddNumberToObject(m, "bytes", (double)r->bytes);
  if (r->etag)
    cJSON_AddStringToObject(m, "etag", r->etag);
  if (r->version_id && strcmp(r->version_id, "null") != 0) /* "null": an unversioned bucket */
    cJSON_AddStringToObject(m, "version_id", r->version_id);
  if (r->checksum)
    cJSON_AddStringToObject(m, "checksum_crc32c", r->checksum);
  kiln_buf_free(&uri);
  return m;
}

void kiln_s3_upload_stats_json(cJSON *m, const struct kiln_s3_upload_result *r)
{
  cJSON_AddNumberToObject(m, "bytes_sent", (double)r->bytes_sent);
  cJSON_AddNumberToObject(m, "part_size", (double)r->part_size);
  cJSON_AddNumberToObject(m, "parts", r->parts);
  cJSON_AddNumberToObject(m, "parts_sent", r->parts_sent);
  cJSON_AddNumberToObject(m, "parts_reused", r->parts_reused);
  cJSON_AddBoolToObject(m, "skipped", r->skipped);
  cJSON_AddBoolToObject(m, "resumed", r->resumed);
  cJSON_AddNumberToObject(m, "seconds", (double)(long long)(r->seconds * 1000) / 1000.0);
}
