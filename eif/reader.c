/* The EIF reader: validates the header and section table against the sequential layout, checks
 * the CRC and recomputes PCR0/1/2 while streaming; hostile input is an error, never a crash. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "header.h"
#include "kiln/eif.h"
#include "measure.h"
#include "sign.h"
#include "util/buf.h"
#include "util/fs.h"

#define EIF_CHUNK (1u << 20)
#define EIF_TEXT_MAX (1u << 20) /* cmdline and metadata are small; refuse absurd sizes */

static kiln_err read_exact(int fd, void *buf, size_t len, uint64_t offset, const char *path,
                           struct kiln_error *err)
{
  size_t got = 0;
  while (got < len) {
    ssize_t n = pread(fd, (char *)buf + got, len - got, (off_t)(offset + got));
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return kiln_error_set(err, KILN_E_IO, "cannot read %s: %s", path, strerror(errno));
    if (n == 0)
      return kiln_error_set(err, KILN_E_INVALID, "%s is truncated at byte %llu", path,
                            (unsigned long long)(offset + got));
    got += (size_t)n;
  }
  return KILN_OK;
}

void kiln_eif_info_clear(struct kiln_eif_info *info)
{
  free(info->signature_error);
  free(info->metadata);
  free(info->cmdline);
  memset(info, 0, sizeof *info);
}

/* Stream one section's data through the measurement; keep small text sections. */
static kiln_err read_section(int fd, const char *path, const struct kiln_eif_section *s,
                             enum eif_feed feed, struct eif_measure *m, char *chunk, char **text,
                             struct kiln_error *err)
{
  uint64_t left = s->size, pos = s->offset + KILN_EIF_SECTION_HEADER_SIZE;
  struct kiln_buf keep = KILN_BUF_INIT;
  if (text && s->size > EIF_TEXT_MAX)
    return kiln_error_set(err, KILN_E_INVALID,
                          "%s: section at %llu is %llu bytes, too large for "
                          "its type",
                          path, (unsigned long long)s->offset, (unsigned long long)s->size);
  kiln_err rc = KILN_OK;
  while (left && !rc) {
    size_t want = left < EIF_CHUNK ? (size_t)left : EIF_CHUNK;
    rc = read_exact(fd, chunk, want, pos, path, err);
    if (rc)
      break;
    eif_measure_crc(m, chunk, want);
    eif_measure_feed(m, feed, chunk, want);
    if (text)
      kiln_buf_append(&keep, chunk, want);
    pos += want;
    left -= want;
  }
  if (!rc && text) {
    free(*text);
    *text = kiln_buf_detach(&keep);
  }
  kiln_buf_free(&keep);
  return rc;
}

static const char *type_name(uint16_t t)
{
  static const char *const names[] = {"invalid", "kernel",    "cmdline",
                                      "ramdisk", "signature", "metadata"};
  return t <= 5 ? names[t] : "unknown";
}

/* Every section: its header against the section table and the sequential layout, its data
 * through the measurement; then the unused table slots, trailing bytes and the ramdisk count. */
static kiln_err read_sections(int fd, const char *path, const struct eif_header *hdr,
                              struct kiln_eif_info *info, struct eif_measure *m, char *chunk,
                              char **signature, uint64_t *signature_len, struct kiln_error *err)
{
  kiln_err rc = KILN_OK;
  uint64_t pos = KILN_EIF_HEADER_SIZE;
  int ramdisks = 0;
  for (uint16_t i = 0; i < info->num_sections && !rc; i++) {
    struct kiln_eif_section *s = &info->sections[i];
    uint64_t table_offset = hdr->offsets[i];
    uint64_t table_size = hdr->sizes[i];
    if (pos + KILN_EIF_SECTION_HEADER_SIZE > info->file_size) {
      rc = kiln_error_set(err, KILN_E_INVALID,
                          "%s: section %u starts at byte %llu, past the end of the file (%llu "
                          "bytes)",
                          path, i, (unsigned long long)pos, (unsigned long long)info->file_size);
      break;
    }
    uint8_t sh[KILN_EIF_SECTION_HEADER_SIZE];
    if ((rc = read_exact(fd, sh, sizeof sh, pos, path, err)))
      break;
    struct eif_section_header parsed;
    eif_section_header_parse(sh, &parsed);
    s->type = parsed.type;
    s->flags = parsed.flags;
    s->size = parsed.size;
    s->offset = pos;
    if (s->type < KILN_EIF_SECTION_KERNEL || s->type > KILN_EIF_SECTION_METADATA) {
      rc = kiln_error_set(err, KILN_E_INVALID, "%s: section %u has unknown type %u", path, i,
                          s->type);
      break;
    }
    if (s->size > info->file_size - pos - KILN_EIF_SECTION_HEADER_SIZE) {
      rc = kiln_error_set(err, KILN_E_INVALID,
                          "%s: section %u (%s) claims %llu bytes, past the end of the file", path,
                          i, type_name(s->type), (unsigned long long)s->size);
      break;
    }
    if (table_offset != pos || table_size != s->size) {
      rc = kiln_error_set(err, KILN_E_INVALID,
                          "%s: section table entry %u (offset %llu, size %llu) disagrees with the "
                          "sections as laid out (offset %llu, size %llu): overlapping or "
                          "misplaced sections",
                          path, i, (unsigned long long)table_offset, (unsigned long long)table_size,
                          (unsigned long long)pos, (unsigned long long)s->size);
      break;
    }
    eif_measure_crc(m, sh, sizeof sh);
    enum eif_feed feed = EIF_FEED_NONE;
    char **text = NULL;
    if (s->type == KILN_EIF_SECTION_KERNEL || s->type == KILN_EIF_SECTION_CMDLINE)
      feed = EIF_FEED_BOOT;
    if (s->type == KILN_EIF_SECTION_RAMDISK)
      feed = ramdisks++ == 0 ? EIF_FEED_BOOT : EIF_FEED_APP;
    if (s->type == KILN_EIF_SECTION_CMDLINE)
      text = &info->cmdline;
    if (s->type == KILN_EIF_SECTION_METADATA)
      text = &info->metadata;
    if (s->type == KILN_EIF_SECTION_SIGNATURE) {
      info->has_signature = 1;
      text = signature;
      *signature_len = s->size;
    }
    rc = read_section(fd, path, s, feed, m, chunk, text, err);
    pos += KILN_EIF_SECTION_HEADER_SIZE + s->size;
  }
  for (uint16_t i = info->num_sections; !rc && i < KILN_EIF_MAX_SECTIONS; i++)
    if (hdr->offsets[i] || hdr->sizes[i])
      rc = kiln_error_set(err, KILN_E_INVALID, "%s: unused section table slot %u is not zero", path,
                          i);
  if (!rc && pos != info->file_size)
    rc = kiln_error_set(err, KILN_E_INVALID, "%s: %llu bytes after the last section", path,
                        (unsigned long long)(info->file_size - pos));
  if (!rc && ramdisks == 0)
    rc = kiln_error_set(err, KILN_E_INVALID, "%s has no ramdisk section", path);
  return rc;
}

kiln_err kiln_eif_read(const char *path, int check_crc, enum kiln_eif_hash hash,
                       struct kiln_eif_info *info, struct kiln_error *err)
{
  memset(info, 0, sizeof *info);
  struct stat st;
  int fd = kiln_open_regular(path, &st, err);
  if (fd < 0)
    return err ? err->code : KILN_E_IO;
  info->file_size = (uint64_t)st.st_size;
  struct eif_measure m;
  char *chunk = NULL;
  uint8_t h[KILN_EIF_HEADER_SIZE];
  char *signature = NULL;
  uint64_t signature_len = 0;
  kiln_err rc = KILN_OK;
  memset(&m, 0, sizeof m);
  if (info->file_size < KILN_EIF_HEADER_SIZE) {
    rc = kiln_error_set(err, KILN_E_INVALID,
                        "%s: truncated header (%llu bytes; an EIF header is %d bytes)", path,
                        (unsigned long long)info->file_size, KILN_EIF_HEADER_SIZE);
    goto out;
  }
  if ((rc = read_exact(fd, h, sizeof h, 0, path, err)))
    goto out;
  struct eif_header hdr;
  if (!eif_header_parse(h, &hdr)) {
    rc = kiln_error_set(err, KILN_E_INVALID,
                        "%s is not an EIF (magic %02x %02x %02x %02x, expected \".eif\")", path,
                        h[0], h[1], h[2], h[3]);
    goto out;
  }
  info->version = hdr.version;
  info->flags = hdr.flags;
  info->default_mem = hdr.default_mem;
  info->default_cpus = hdr.default_cpus;
  info->num_sections = hdr.num_sections;
  info->crc_stored = hdr.crc;
  if (info->version < 1 || info->version > 4) {
    rc = kiln_error_set(err, KILN_E_UNSUPPORTED, "%s: EIF version %u is not supported (1 to 4)",
                        path, info->version);
    goto out;
  }
  if (info->num_sections > KILN_EIF_MAX_SECTIONS || info->num_sections == 0) {
    rc = kiln_error_set(err, KILN_E_INVALID, "%s: %u sections (an EIF has 1 to %d)", path,
                        info->num_sections, KILN_EIF_MAX_SECTIONS);
    goto out;
  }
  if ((rc = eif_measure_init(&m, hash, err)))
    goto out;
  chunk = malloc(EIF_CHUNK);
  if (!chunk) {
    rc = kiln_error_set(err, KILN_E_NOMEM, "out of memory");
    goto out;
  }
  eif_measure_crc(&m, h, KILN_EIF_HEADER_SIZE - 4);
  if ((rc = read_sections(fd, path, &hdr, info, &m, chunk, &signature, &signature_len, err)))
    goto out;
  info->crc_computed = m.crc;
  info->crc_ok = info->version < 2 || info->crc_stored == info->crc_computed;
  eif_measure_finish(&m, &info->pcrs);
  info->pcrs.hash = hash;
  if (signature) {
    struct kiln_error serr = KILN_ERROR_INIT;
    info->signature_ok = eif_sign_check((const uint8_t *)signature, (size_t)signature_len, m.raw[0],
                                        m.raw_len, hash, info->pcrs.pcr8, &serr) == KILN_OK;
    if (!info->signature_ok)
      info->signature_error = strdup(kiln_error_msg(&serr));
    kiln_error_clear(&serr);
  }
  if (!info->crc_ok && check_crc)
    rc = kiln_error_set(err, KILN_E_INVALID,
                        "%s: CRC mismatch (stored %08x, computed %08x): the file is damaged; "
                        "--no-crc-check describes it anyway",
                        path, info->crc_stored, info->crc_computed);
out:
  free(signature);
  eif_measure_free(&m);
  free(chunk);
  close(fd);
  if (rc)
    kiln_eif_info_clear(info);
  return rc;
}
