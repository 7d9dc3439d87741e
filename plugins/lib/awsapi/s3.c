/* S3 object and multipart-upload calls: requests built, answers parsed (XML), checksums decoded. */
#include "s3.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "checksum.h"
#include "util/buf.h"

static char *dup_or_null(const char *s)
{
  return s ? strdup(s) : NULL;
}

static char *key_path(const char *key)
{
  size_t n = strlen(key);
  char *p = malloc(n + 2);
  if (p) {
    p[0] = '/';
    memcpy(p + 1, key, n + 1);
  }
  return p;
}

void kiln_s3_object_clear(struct kiln_s3_object *o)
{
  for (size_t i = 0; i < o->nmeta; i++) {
    free((char *)o->meta[i].name);
    free((char *)o->meta[i].value);
  }
  free(o->meta);
  free(o->etag);
  free(o->version_id);
  free(o->checksum_crc32c);
  free(o->meta_sha256);
  memset(o, 0, sizeof(*o));
}

void kiln_s3_parts_free(struct kiln_s3_part *parts, size_t n)
{
  for (size_t i = 0; parts && i < n; i++) {
    free(parts[i].etag);
    free(parts[i].checksum_crc32c);
  }
  free(parts);
}

void kiln_s3_upload_entries_free(struct kiln_s3_upload_entry *e, size_t n)
{
  for (size_t i = 0; e && i < n; i++) {
    free(e[i].key);
    free(e[i].upload_id);
    free(e[i].initiated);
  }
  free(e);
}

static struct kiln_aws_request s3_request(const char *op, const char *method, const char *bucket,
                                          const char *path)
{
  struct kiln_aws_request r = KILN_AWS_REQUEST_INIT;
  r.service = "s3";
  r.operation = op;
  r.method = method;
  r.bucket = bucket;
  r.path = path;
  return r;
}

kiln_err kiln_s3_head(struct kiln_aws_client *c, const char *bucket, const char *key,
                      struct kiln_s3_object *out, struct kiln_error *err)
{
  char *path = key_path(key);
  const struct kiln_aws_pair headers[] = {{"x-amz-checksum-mode", "ENABLED"}};
  struct kiln_aws_response resp;
  struct kiln_aws_error_info info;
  memset(out, 0, sizeof(*out));
  if (!path)
    return kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  struct kiln_aws_request r = s3_request("HeadObject", "HEAD", bucket, path);
  r.headers = headers;
  r.nheaders = 1;
  kiln_err rc = kiln_aws_send(c, &r, &resp, &info, err);
  if (rc == KILN_E_AUTH && info.http_status == 403) {
    /* HEAD answers carry no error body: ask again with a one-byte GET to learn why. */
    const struct kiln_aws_pair range[] = {{"range", "bytes=0-0"}};
    struct kiln_aws_response why;
    kiln_error_clear(err);
    r.operation = "HeadObject";
    r.method = "GET";
    r.headers = range;
    r.max_response = 1u << 16;
    rc = kiln_aws_send(c, &r, &why, &info, err);
    kiln_aws_response_clear(&why);
    if (rc == KILN_OK) /* allowed now: a transient denial; report it as such */
      rc = kiln_error_set(err, KILN_E_AUTH, "S3 HeadObject: HTTP 403, then allowed on retry");
  }
  free(path);
  if (rc == KILN_E_NOT_FOUND) {
    kiln_error_clear(err);
    kiln_aws_response_clear(&resp);
    return KILN_OK;
  }
  if (rc == KILN_OK) {
    const char *len = kiln_aws_response_header(&resp, "content-length");
    out->exists = 1;
    out->size = len ? strtoull(len, NULL, 10) : 0;
    out->etag = dup_or_null(kiln_aws_response_header(&resp, "etag"));
    out->version_id = dup_or_null(kiln_aws_response_header(&resp, "x-amz-version-id"));
    out->checksum_crc32c = dup_or_null(kiln_aws_response_header(&resp, "x-amz-checksum-crc32c"));
    out->meta_sha256 = dup_or_null(kiln_aws_response_header(&resp, "x-amz-meta-sha256"));
    for (size_t i = 0; i < resp.nheaders; i++) {
      if (strncmp(resp.headers[i].name, "x-amz-meta-", 11) != 0)
        continue;
      struct kiln_aws_pair *grown = realloc(out->meta, (out->nmeta + 1) * sizeof(*grown));
      if (!grown)
        break;
      out->meta = grown;
      grown[out->nmeta].name = strdup(resp.headers[i].name + 11);
      grown[out->nmeta++].value = strdup(resp.headers[i].value);
    }
  }
  kiln_aws_response_clear(&resp);
  return rc;
}

kiln_err kiln_s3_create_multipart(struct kiln_aws_client *c, const char *bucket, const char *key,
                                  const char *sha256_hex, const struct kiln_aws_pair *extra,
                                  size_t nextra, char **upload_id, struct kiln_error *err)
{
  char *path = key_path(key);
  const struct kiln_aws_pair query[] = {{"uploads", ""}};
  struct kiln_aws_pair *headers = calloc(nextra + 3, sizeof(*headers));
  size_t nheaders = 0;
  if (!headers) {
    free(path);
    return kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  }
  headers[nheaders++] = (struct kiln_aws_pair){"x-amz-checksum-algorithm", "CRC32C"};
  headers[nheaders++] = (struct kiln_aws_pair){"content-type", "application/octet-stream"};
  if (sha256_hex)
    headers[nheaders++] = (struct kiln_aws_pair){"x-amz-meta-sha256", sha256_hex};
  for (size_t i = 0; i < nextra; i++)
    headers[nheaders++] = extra[i];
  struct kiln_aws_response resp;
  struct kiln_xml *doc = NULL;
  *upload_id = NULL;
  if (!path)
    return kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  struct kiln_aws_request r = s3_request("CreateMultipartUpload", "POST", bucket, path);
  r.query = query;
  r.nquery = 1;
  r.headers = headers;
  r.nheaders = nheaders;
  kiln_err rc = kiln_aws_send(c, &r, &resp, NULL, err);
  free(path);
  free(headers);
  if (rc == KILN_OK)
    rc = kiln_xml_parse(resp.body.data, resp.body.len, "S3 CreateMultipartUpload response", &doc,
                        err);
  if (rc == KILN_OK) {
    const char *id = kiln_xml_text(doc, "UploadId");
    if (!id || !*id)
      rc = kiln_error_set(err, KILN_E_REMOTE,
                          "S3 CreateMultipartUpload: the answer has no UploadId");
    else if (!(*upload_id = strdup(id)))
      rc = kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  }
  kiln_xml_free(doc);
  kiln_aws_response_clear(&resp);
  return rc;
}

static kiln_err append_part(struct kiln_s3_part **parts, size_t *n, size_t *cap,
                            const struct kiln_xml *p)
{
  if (*n == *cap) {
    size_t grown_cap = *cap ? *cap * 2 : 64;
    struct kiln_s3_part *grown = realloc(*parts, grown_cap * sizeof(*grown));
    if (!grown)
      return KILN_E_NOMEM;
    *parts = grown;
    *cap = grown_cap;
  }
  const char *num = kiln_xml_text(p, "PartNumber");
  const char *size = kiln_xml_text(p, "Size");
  struct kiln_s3_part *part = &(*parts)[*n];
  memset(part, 0, sizeof(*part));
  part->number = num ? atoi(num) : 0;
  part->size = size ? strtoull(size, NULL, 10) : 0;
  part->etag = dup_or_null(kiln_xml_text(p, "ETag"));
  part->checksum_crc32c = dup_or_null(kiln_xml_text(p, "ChecksumCRC32C"));
  (*n)++;
  return KILN_OK;
}

kiln_err kiln_s3_list_parts(struct kiln_aws_client *c, const char *bucket, const char *key,
                            const char *upload_id, struct kiln_s3_part **parts, size_t *nparts,
                            struct kiln_error *err)
{
  char *path = key_path(key);
  char marker[16] = "0";
  size_t cap = 0;
  kiln_err rc = KILN_OK;
  *parts = NULL;
  *nparts = 0;
  if (!path)
    return kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  for (int page = 0; page < 100 && rc == KILN_OK; page++) {
    const struct kiln_aws_pair query[] = {{"uploadId", upload_id}, {"part-number-marker", marker}};
    struct kiln_aws_request r = s3_request("ListParts", "GET", bucket, path);
    struct kiln_aws_response resp;
    struct kiln_aws_error_info info;
    struct kiln_xml *doc = NULL;
    r.query = query;
    r.nquery = 2;
    rc = kiln_aws_send(c, &r, &resp, &info, err);
    if (rc == KILN_OK)
      rc = kiln_xml_parse(resp.body.data, resp.body.len, "S3 ListParts response", &doc, err);
    kiln_aws_response_clear(&resp);
    if (rc != KILN_OK)
      break;
    for (const struct kiln_xml *p = kiln_xml_child(doc, "Part"); p && rc == KILN_OK;
         p = kiln_xml_next_same(p))
      if (append_part(parts, nparts, &cap, p) != KILN_OK)
        rc = kiln_error_set(err, KILN_E_NOMEM, "out of memory");
    const char *truncated = kiln_xml_text(doc, "IsTruncated");
    const char *next = kiln_xml_text(doc, "NextPartNumberMarker");
    int more =
        truncated && strcmp(truncated, "true") == 0 && next && *next && strcmp(next, marker) != 0;
    if (more)
      snprintf(marker, sizeof(marker), "%s", next);
    kiln_xml_free(doc);
    if (!more)
      break;
  }
  free(path);
  if (rc != KILN_OK) {
    kiln_s3_parts_free(*parts, *nparts);
    *parts = NULL;
    *nparts = 0;
  }
  return rc;
}

kiln_err kiln_s3_complete_multipart(struct kiln_aws_client *c, const char *bucket, const char *key,
                                    const char *upload_id, const struct kiln_s3_part *parts,
                                    size_t nparts, struct kiln_s3_object *out,
                                    struct kiln_error *err)
{
  struct kiln_buf body = KILN_BUF_INIT;
  char *path = key_path(key);
  kiln_err rc = KILN_OK;
  memset(out, 0, sizeof(*out));
  if (!path)
    return kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  rc = kiln_buf_puts(&body, "<CompleteMultipartUpload "
                            "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">");
  for (size_t i = 0; i < nparts && rc == KILN_OK; i++) {
    rc = kiln_buf_printf(&body, "<Part><PartNumber>%d</PartNumber><ETag>", parts[i].number);
    if (rc == KILN_OK)
      rc = kiln_xml_escape(&body, parts[i].etag ? parts[i].etag : "");
    if (rc == KILN_OK && parts[i].checksum_crc32c)
      rc = kiln_buf_printf(&body, "</ETag><ChecksumCRC32C>%s</ChecksumCRC32C></Part>",
                           parts[i].checksum_crc32c);
    else if (rc == KILN_OK)
      rc = kiln_buf_puts(&body, "</ETag></Part>");
  }
  if (rc == KILN_OK)
    rc = kiln_buf_puts(&body, "</CompleteMultipartUpload>");
  if (rc != KILN_OK) {
    free(path);
    kiln_buf_free(&body);
    return kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  }
  const struct kiln_aws_pair query[] = {{"uploadId", upload_id}};
  const struct kiln_aws_pair headers[] = {{"content-type", "application/xml"}};
  struct kiln_aws_request r = s3_request("CompleteMultipartUpload", "POST", bucket, path);
  struct kiln_aws_response resp;
  struct kiln_xml *doc = NULL;
  r.query = query;
  r.nquery = 1;
  r.headers = headers;
  r.nheaders = 1;
  r.body = body.data;
  r.body_len = body.len;
  rc = kiln_aws_send(c, &r, &resp, NULL, err);
  if (rc == KILN_OK)
    rc = kiln_xml_parse(resp.body.data, resp.body.len, "S3 CompleteMultipartUpload response", &doc,
                        err);
  if (rc == KILN_OK) {
    out->exists = 1;
    out->etag = dup_or_null(kiln_xml_text(doc, "ETag"));
    out->checksum_crc32c = dup_or_null(kiln_xml_text(doc, "ChecksumCRC32C"));
    out->version_id = dup_or_null(kiln_aws_response_header(&resp, "x-amz-version-id"));
  }
  kiln_xml_free(doc);
  kiln_aws_response_clear(&resp);
  kiln_buf_free(&body);
  free(path);
  return rc;
}

kiln_err kiln_s3_abort_multipart(struct kiln_aws_client *c, const char *bucket, const char *key,
                                 const char *upload_id, struct kiln_error *err)
{
  char *path = key_path(key);
  const struct kiln_aws_pair query[] = {{"uploadId", upload_id}};
  struct kiln_aws_response resp;
  if (!path)
    return kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  struct kiln_aws_request r = s3_request("AbortMultipartUpload", "DELETE", bucket, path);
  r.query = query;
  r.nquery = 1;
  kiln_err rc = kiln_aws_send(c, &r, &resp, NULL, err);
  if (rc == KILN_E_NOT_FOUND) { /* already gone: that is what we wanted */
    kiln_error_clear(err);
    rc = KILN_OK;
  }
  kiln_aws_response_clear(&resp);
  free(path);
  return rc;
}

kiln_err kiln_s3_list_uploads(struct kiln_aws_client *c, const char *bucket, const char *prefix,
                              struct kiln_s3_upload_entry **out, size_t *n, struct kiln_error *err)
{
  size_t cap = 0;
  char *key_marker = strdup(""), *id_marker = strdup("");
  kiln_err rc = key_marker && id_marker ? KILN_OK : KILN_E_NOMEM;
  *out = NULL;
  *n = 0;
  for (int page = 0; page < 100 && rc == KILN_OK; page++) {
    struct kiln_aws_pair query[4] = {{"uploads", ""}};
    size_t nq = 1;
    if (prefix && *prefix)
      query[nq++] = (struct kiln_aws_pair){"prefix", prefix};
    if (*key_marker) {
      query[nq++] = (struct kiln_aws_pair){"key-marker", key_marker};
      query[nq++] = (struct kiln_aws_pair){"upload-id-marker", id_marker};
    }
    struct kiln_aws_request r = s3_request("ListMultipartUploads", "GET", bucket, "/");
    struct kiln_aws_response resp;
    struct kiln_xml *doc = NULL;
    r.query = query;
    r.nquery = nq;
    rc = kiln_aws_send(c, &r, &resp, NULL, err);
    if (rc == KILN_OK)
      rc = kiln_xml_parse(resp.body.data, resp.body.len, "S3 ListMultipartUploads response", &doc,
                          err);
    kiln_aws_response_clear(&resp);
    if (rc != KILN_OK)
      break;
    for (const struct kiln_xml *u = kiln_xml_child(doc, "Upload"); u; u = kiln_xml_next_same(u)) {
      if (*n == cap) {
        cap = cap ? cap * 2 : 16;
        struct kiln_s3_upload_entry *grown = realloc(*out, cap * sizeof(*grown));
        if (!grown) {
          rc = kiln_error_set(err, KILN_E_NOMEM, "out of memory");
          break;
        }
        *out = grown;
      }
      (*out)[*n].key = dup_or_null(kiln_xml_text(u, "Key"));
      (*out)[*n].upload_id = dup_or_null(kiln_xml_text(u, "UploadId"));
      (*out)[*n].initiated = dup_or_null(kiln_xml_text(u, "Initiated"));
      (*n)++;
    }
    const char *truncated = kiln_xml_text(doc, "IsTruncated");
    const char *nk = kiln_xml_text(doc, "NextKeyMarker");
    const char *ni = kiln_xml_text(doc, "NextUploadIdMarker");
    int more = rc == KILN_OK && truncated && strcmp(truncated, "true") == 0 && nk && *nk;
    if (more) {
      free(key_marker);
      free(id_marker);
      key_marker = strdup(nk);
      id_marker = strdup(ni ? ni : "");
      if (!key_marker || !id_marker)
        rc = kiln_error_set(err, KILN_E_NOMEM, "out of memory");
    }
    kiln_xml_free(doc);
    if (!more)
      break;
  }
  free(key_marker);
  free(id_marker);
  if (rc != KILN_OK) {
    kiln_s3_upload_entries_free(*out, *n);
    *out = NULL;
    *n = 0;
  }
  return rc;
}

char *kiln_s3_content_key(const char *prefix, const char *name, const char *sha256)
{
  struct kiln_buf b = KILN_BUF_INIT;
  if (kiln_buf_printf(&b, "%seifs/%s/%s.eif", prefix ? prefix : "", name, sha256) != KILN_OK) {
    kiln_buf_free(&b);
    return NULL;
  }
  return kiln_buf_detach(&b);
}

char *kiln_s3_kiln_host_key(const char *sha256)
{
  struct kiln_buf b = KILN_BUF_INIT;
  if (kiln_buf_printf(&b, "kiln-host/%s", sha256) != KILN_OK) {
    kiln_buf_free(&b);
    return NULL;
  }
  return kiln_buf_detach(&b);
}

void kiln_s3_composite_crc32c(const uint32_t *part_crcs, size_t n, char *out, size_t out_size)
{
  uint32_t crc = 0;
  char b64[9];
  for (size_t i = 0; i < n; i++) {
    unsigned char be[4] = {(unsigned char)(part_crcs[i] >> 24), (unsigned char)(part_crcs[i] >> 16),
                           (unsigned char)(part_crcs[i] >> 8), (unsigned char)part_crcs[i]};
    crc = kiln_crc32c(crc, be, 4);
  }
  kiln_crc32c_base64(crc, b64);
  snprintf(out, out_size, "%s-%zu", b64, n);
}

int kiln_s3_crc32c_decode(const char *b64, uint32_t *crc)
{
  unsigned char raw[8];
  if (!b64 || strlen(b64) != 8)
    return -1;
  if (EVP_DecodeBlock(raw, (const unsigned char *)b64, 8) != 6) /* 4 bytes + 2 pad zeros */
    return -1;
  *crc = (uint32_t)raw[0] << 24 | (uint32_t)raw[1] << 16 | (uint32_t)raw[2] << 8 | raw[3];
  return 0;
}
