/* The EIF writer: header, sections in eif_build's order, CRC and PCRs in one streaming pass
 * (stream.c), written to a temp file that is renamed into place only when complete. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "header.h"
#include "kiln/eif.h"
#include "measure.h"
#include "sign.h"
#include "stream.h"

#include <libdeflate.h>
#include <zlib.h>
#include "util/buf.h"
#include "util/fs.h"

#define EIF_VERSION 4
#define EIF_DEFAULT_MEM (1ull << 30)
#define EIF_DEFAULT_CPUS 2

struct section_src {
  uint16_t type;
  enum eif_feed feed;
  const char *path; /* file, or NULL for in-memory data */
  const char *data;
  uint64_t size;
  int64_t crc32; /* the data's CRC-32 when known ahead, else -1 */
};

static kiln_err put_section(struct eif_stream *st, const struct section_src *s,
                            struct kiln_error *err)
{
  uint8_t sh[KILN_EIF_SECTION_HEADER_SIZE];
  eif_section_header_write(&(struct eif_section_header){s->type, 0, s->size}, sh);
  kiln_err rc = eif_stream_put(st, sh, sizeof sh, EIF_FEED_NONE, err);
  if (!rc)
    rc = s->path ? eif_stream_put_file(st, s->path, s->size, s->feed, err)
                 : eif_stream_put(st, s->data, (size_t)s->size, s->feed, err);
  return rc;
}

static kiln_err input_size(const char *what, const char *path, uint64_t *size,
                           struct kiln_error *err)
{
  struct stat st;
  if (!path)
    return kiln_error_set(err, KILN_E_INVALID, "no %s given", what);
  if (stat(path, &st) != 0)
    return kiln_error_set(err, KILN_E_NOT_FOUND, "%s %s: %s", what, path, strerror(errno));
  if (S_ISDIR(st.st_mode))
    return kiln_error_set(err, KILN_E_INVALID, "%s %s is a directory, not a file", what, path);
  if (!S_ISREG(st.st_mode))
    return kiln_error_set(err, KILN_E_INVALID, "%s %s is not a regular file", what, path);
  *size = (uint64_t)st.st_size;
  return KILN_OK;
}

/* The sections in eif_build's order; *metadata is owned by the caller. */
static kiln_err plan_sections(const struct kiln_eif_build *b, struct section_src *s, size_t *n,
                              char **metadata, struct kiln_error *err)
{
  kiln_err rc;
  *n = 0;
  s[*n] = (struct section_src){KILN_EIF_SECTION_KERNEL, EIF_FEED_BOOT, b->kernel, NULL, 0, -1};
  if ((rc = input_size("kernel", b->kernel, &s[(*n)++].size, err)))
    return rc;
  const char *cmdline = b->cmdline ? b->cmdline : "";
  s[(*n)++] = (struct section_src){
      KILN_EIF_SECTION_CMDLINE, EIF_FEED_BOOT, NULL, cmdline, strlen(cmdline), -1};
  if (b->metadata_raw)
    *metadata = strdup(b->metadata_raw);
  else if ((rc = kiln_eif_metadata_json(&b->metadata, b->kernel, metadata, err)))
    return rc;
  if (!*metadata)
    return kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  s[(*n)++] = (struct section_src){
      KILN_EIF_SECTION_METADATA, EIF_FEED_NONE, NULL, *metadata, strlen(*metadata), -1};
  for (size_t i = 0; i < b->nramdisks; i++) {
    s[*n] = (struct section_src){KILN_EIF_SECTION_RAMDISK,
                                 i == 0 ? EIF_FEED_BOOT : EIF_FEED_APP,
                                 b->ramdisks[i],
                                 NULL,
                                 0,
                                 b->ramdisk_crc32 ? b->ramdisk_crc32[i] : -1};
    if ((rc = input_size("ramdisk", b->ramdisks[i], &s[(*n)++].size, err)))
      return rc;
  }
  return KILN_OK;
}

/* The header with the section table (no CRC yet); returns the offset after the last section. */
static uint64_t fill_header(const struct kiln_eif_build *b, const struct section_src *s, size_t n,
                            int signed_eif, struct eif_header *hdr)
{
  *hdr = (struct eif_header){.version = EIF_VERSION,
                             .flags = b->aarch64 ? 1 : 0,
                             .default_mem = EIF_DEFAULT_MEM,
                             .default_cpus = EIF_DEFAULT_CPUS,
                             .num_sections = (uint16_t)(n + (signed_eif ? 1 : 0))};
  uint64_t offset = KILN_EIF_HEADER_SIZE;
  for (size_t i = 0; i < n; i++) {
    hdr->offsets[i] = offset;
    hdr->sizes[i] = s[i].size;
    offset += KILN_EIF_SECTION_HEADER_SIZE + s[i].size;
  }
  return offset;
}

/* Append the signature section over PCR0 (after every hashed byte) and enter it in the header. */
static kiln_err put_signature(struct eif_stream *st, struct eif_signer *signer,
                              const struct eif_measure *m, size_t n, uint64_t *offset,
                              struct eif_header *hdr, struct kiln_error *err)
{
  uint8_t *signature = NULL;
  size_t signature_len = 0;
  kiln_err rc = eif_sign_section(signer, m->raw[0], m->raw_len, &signature, &signature_len, err);
  if (!rc) {
    hdr->offsets[n] = *offset;
    hdr->sizes[n] = signature_len;
    struct section_src sig = {KILN_EIF_SECTION_SIGNATURE, EIF_FEED_NONE, NULL,
                              (const char *)signature,    signature_len, -1};
    rc = put_section(st, &sig, err);
    *offset += KILN_EIF_SECTION_HEADER_SIZE + signature_len;
  }
  free(signature);
  return rc;
}

/* The CRC-32 of every section (header and data) in file order, read ahead of the write so the
 * final header is known first (for the file's SHA-256 in one pass). */
static kiln_err crc_ahead(const struct section_src *s, size_t n, uint32_t *crc,
                          struct kiln_error *err)
{
  enum { AHEAD_CHUNK = 1u << 20 };
  char *buf = malloc(AHEAD_CHUNK);
  kiln_err rc = buf ? KILN_OK : kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  *crc = 0;
  for (size_t i = 0; i < n && !rc; i++) {
    uint8_t sh[KILN_EIF_SECTION_HEADER_SIZE];
    eif_section_header_write(&(struct eif_section_header){s[i].type, 0, s[i].size}, sh);
    *crc = (uint32_t)libdeflate_crc32(*crc, sh, sizeof sh);
    if (!s[i].path) {
      *crc = (uint32_t)libdeflate_crc32(*crc, s[i].data, (size_t)s[i].size);
      continue;
    }
    if (s[i].crc32 >= 0) { /* computed by the stage that wrote it; checked after the write */
      *crc = (uint32_t)crc32_combine(*crc, (uLong)s[i].crc32, (z_off_t)s[i].size);
      continue;
    }
    int fd = kiln_open_regular(s[i].path, NULL, err);
    if (fd < 0) {
      rc = err ? err->code : KILN_E_IO;
      break;
    }
    ssize_t got;
    while ((got = read(fd, buf, AHEAD_CHUNK)) > 0 || (got < 0 && errno == EINTR))
      if (got > 0)
        *crc = (uint32_t)libdeflate_crc32(*crc, buf, (size_t)got);
    if (got < 0)
      rc = kiln_error_set(err, KILN_E_IO, "cannot read %s: %s", s[i].path, strerror(errno));
    close(fd);
  }
  free(buf);
  return rc;
}

/* The serialized header with its CRC: header-but-CRC, then the sections' CRC combined in. */
static void put_crc(struct eif_header *hdr, uint32_t sections_crc, uint64_t end,
                    uint8_t header[KILN_EIF_HEADER_SIZE])
{
  eif_header_write(hdr, header);
  uLong crc = crc32(0L, header, KILN_EIF_HEADER_SIZE - 4);
  hdr->crc = (uint32_t)crc32_combine(crc, sections_crc, (z_off_t)(end - KILN_EIF_HEADER_SIZE));
  eif_header_write(hdr, header);
}

/* Stream every section after the header into fd, measure, sign, then write the final header
 * (its CRC covers header-but-CRC, then every section) and fsync. */
static kiln_err write_file(const struct kiln_eif_build *b, int fd, const char *out_path,
                           const struct section_src *s, size_t n, struct eif_signer *signer,
                           struct kiln_eif_pcrs *measured, struct kiln_error *err)
{
  uint8_t header[KILN_EIF_HEADER_SIZE];
  struct eif_header hdr;
  uint64_t offset = fill_header(b, s, n, signer != NULL, &hdr);
  struct eif_measure m;
  struct eif_stream *st = NULL;
  uint32_t crc_read_ahead = 0;
  int whole = b->file_sha256 && !signer;
  kiln_err rc = whole ? crc_ahead(s, n, &crc_read_ahead, err) : KILN_OK;
  if (whole)
    put_crc(&hdr, crc_read_ahead, offset, header);
  if (!rc)
    rc = eif_measure_init(&m, b->hash, err);
  if (rc)
    return rc;
  rc = eif_stream_new(fd, out_path, &m, KILN_EIF_HEADER_SIZE, whole ? header : NULL, &st, err);
  for (size_t i = 0; i < n && !rc; i++)
    rc = put_section(st, &s[i], err);
  if (!rc)
    rc = eif_stream_finish(st, err);
  if (!rc) {
    eif_measure_finish(&m, measured);
    measured->hash = b->hash;
  }
  if (!rc && whole && (m.crc != crc_read_ahead || eif_stream_sha256(st, b->file_sha256) != 0))
    rc = kiln_error_set(err, KILN_E_IO,
                        "an input of %s changed while the EIF was being written; build again",
                        out_path);
  if (!rc && signer) {
    rc = put_signature(st, signer, &m, n, &offset, &hdr, err);
    eif_signer_pcr8(signer, b->hash, measured->pcr8);
  }
  if (!rc) {
    put_crc(&hdr, m.crc, offset, header);
    if (fchmod(fd, 0644) != 0)
      rc = kiln_error_set(err, KILN_E_IO, "cannot write %s: %s", out_path, strerror(errno));
  }
  if (!rc)
    rc = eif_stream_close(st, header, KILN_EIF_HEADER_SIZE, err);
  if (!rc)
    eif_stream_stats(st, b->stats);
  eif_stream_free(st);
  eif_measure_free(&m);
  return rc;
}

kiln_err kiln_eif_write(const struct kiln_eif_build *b, const char *out_path,
                        struct kiln_eif_pcrs *pcrs, struct kiln_error *err)
{
  if (b->nramdisks == 0)
    return kiln_error_set(err, KILN_E_INVALID, "an EIF needs at least one ramdisk");
  if (b->nramdisks + 3 > KILN_EIF_MAX_SECTIONS)
    return kiln_error_set(err, KILN_E_INVALID, "too many ramdisks (%zu; at most %d)", b->nramdisks,
                          KILN_EIF_MAX_SECTIONS - 3);
  if ((b->signing_certificate != NULL) != (b->private_key != NULL))
    return kiln_error_set(err, KILN_E_INVALID,
                          "signing needs both a certificate and its private key");
  struct section_src s[KILN_EIF_MAX_SECTIONS];
  size_t n = 0;
  char *metadata = NULL, *tmp = NULL;
  struct eif_signer *signer = NULL;
  int fd = -1;
  kiln_err rc = b->signing_certificate
                    ? eif_signer_load(b->signing_certificate, b->private_key, &signer, err)
                    : KILN_OK;
  if (!rc)
    rc = plan_sections(b, s, &n, &metadata, err);
  struct kiln_buf t = KILN_BUF_INIT;
  kiln_buf_printf(&t, "%s.tmp.XXXXXX", out_path);
  tmp = kiln_buf_detach(&t);
  if (!rc && !tmp)
    rc = kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  if (!rc && (fd = mkstemp(tmp)) < 0) {
    rc = kiln_error_set(err, KILN_E_IO, "cannot write %s: %s", out_path, strerror(errno));
    free(tmp);
    tmp = NULL;
  }
  struct kiln_eif_pcrs measured;
  if (!rc)
    rc = write_file(b, fd, out_path, s, n, signer, &measured, err);
  if (fd >= 0 && close(fd) != 0 && !rc)
    rc = kiln_error_set(err, KILN_E_IO, "cannot write %s: %s", out_path, strerror(errno));
  if (!rc && rename(tmp, out_path) != 0)
    rc = kiln_error_set(err, KILN_E_IO, "cannot write %s: %s", out_path, strerror(errno));
  if (!rc && pcrs)
    *pcrs = measured;
  if (rc && tmp)
    unlink(tmp);
  free(tmp);
  free(metadata);
  eif_signer_free(signer);
  return rc;
}
