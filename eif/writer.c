/* The EIF writer: header, sections in eif_build's order, CRC and PCRs in one streaming pass,
 * written to a temp file that is renamed into place only when complete. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kiln/eif.h"
#include "measure.h"
#include "util/buf.h"
#include "util/fs.h"

#define EIF_CHUNK (1u << 20)
#define EIF_VERSION 4
#define EIF_DEFAULT_MEM (1ull << 30)
#define EIF_DEFAULT_CPUS 2

struct section_src {
  uint16_t type;
  enum eif_feed feed;
  const char *path; /* file, or NULL for in-memory data */
  const char *data;
  uint64_t size;
};

struct out_file {
  int fd;
  const char *name;
  struct eif_measure m;
  char *chunk;
};

static kiln_err emit(struct out_file *o, const void *data, size_t len, enum eif_feed feed,
                     struct kiln_error *err)
{
  eif_measure_crc(&o->m, data, len);
  eif_measure_feed(&o->m, feed, data, len);
  const char *p = data;
  while (len) {
    ssize_t n = write(o->fd, p, len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return kiln_error_set(err, KILN_E_IO, "cannot write %s: %s", o->name,
                            n < 0 ? strerror(errno) : "short write");
    p += n;
    len -= (size_t)n;
  }
  return KILN_OK;
}

static kiln_err copy_file_section(struct out_file *o, const struct section_src *s,
                                  struct kiln_error *err)
{
  int fd = kiln_open_regular(s->path, NULL, err);
  if (fd < 0)
    return err ? err->code : KILN_E_IO;
  uint64_t left = s->size;
  kiln_err rc = KILN_OK;
  while (left && !rc) {
    size_t want = left < EIF_CHUNK ? (size_t)left : EIF_CHUNK;
    ssize_t n = read(fd, o->chunk, want);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      rc = kiln_error_set(err, KILN_E_IO, "%s: %s", s->path,
                          n < 0 ? strerror(errno) : "file shrank while the EIF was being written");
      break;
    }
    rc = emit(o, o->chunk, (size_t)n, s->feed, err);
    left -= (uint64_t)n;
  }
  char extra;
  if (!rc && read(fd, &extra, 1) > 0)
    rc = kiln_error_set(err, KILN_E_IO, "%s grew while the EIF was being written", s->path);
  close(fd);
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

kiln_err kiln_eif_write(const struct kiln_eif_build *b, const char *out_path,
                        struct kiln_eif_pcrs *pcrs, struct kiln_error *err)
{
  if (b->nramdisks == 0)
    return kiln_error_set(err, KILN_E_INVALID, "an EIF needs at least one ramdisk");
  if (b->nramdisks + 3 > KILN_EIF_MAX_SECTIONS)
    return kiln_error_set(err, KILN_E_INVALID, "too many ramdisks (%zu; at most %d)", b->nramdisks,
                          KILN_EIF_MAX_SECTIONS - 3);
  struct section_src s[KILN_EIF_MAX_SECTIONS];
  size_t n = 0;
  char *metadata = NULL, *tmp = NULL;
  struct out_file o = {-1, out_path, {0}, NULL};
  kiln_err rc = KILN_OK;

  s[n] = (struct section_src){KILN_EIF_SECTION_KERNEL, EIF_FEED_BOOT, b->kernel, NULL, 0};
  if ((rc = input_size("kernel", b->kernel, &s[n++].size, err)))
    return rc;
  const char *cmdline = b->cmdline ? b->cmdline : "";
  s[n++] =
      (struct section_src){KILN_EIF_SECTION_CMDLINE, EIF_FEED_BOOT, NULL, cmdline, strlen(cmdline)};
  if ((rc = kiln_eif_metadata_json(&b->metadata, b->kernel, &metadata, err)))
    return rc;
  s[n++] = (struct section_src){KILN_EIF_SECTION_METADATA, EIF_FEED_NONE, NULL, metadata,
                                strlen(metadata)};
  for (size_t i = 0; i < b->nramdisks; i++) {
    s[n] = (struct section_src){KILN_EIF_SECTION_RAMDISK, i == 0 ? EIF_FEED_BOOT : EIF_FEED_APP,
                                b->ramdisks[i], NULL, 0};
    if ((rc = input_size("ramdisk", b->ramdisks[i], &s[n++].size, err)))
      goto out;
  }

  uint8_t header[KILN_EIF_HEADER_SIZE];
  memset(header, 0, sizeof header);
  memcpy(header, ".eif", 4);
  eif_put16(header + 4, EIF_VERSION);
  eif_put16(header + 6, b->aarch64 ? 1 : 0);
  eif_put64(header + 8, EIF_DEFAULT_MEM);
  eif_put64(header + 16, EIF_DEFAULT_CPUS);
  eif_put16(header + 26, (uint16_t)n);
  uint64_t offset = KILN_EIF_HEADER_SIZE;
  for (size_t i = 0; i < n; i++) {
    eif_put64(header + 28 + 8 * i, offset);
    eif_put64(header + 28 + 8 * KILN_EIF_MAX_SECTIONS + 8 * i, s[i].size);
    offset += KILN_EIF_SECTION_HEADER_SIZE + s[i].size;
  }

  if ((rc = eif_measure_init(&o.m, b->hash, err)))
    goto out;
  o.chunk = malloc(EIF_CHUNK);
  struct kiln_buf t = KILN_BUF_INIT;
  kiln_buf_printf(&t, "%s.tmp.XXXXXX", out_path);
  tmp = kiln_buf_detach(&t);
  if (!o.chunk || !tmp) {
    rc = kiln_error_set(err, KILN_E_NOMEM, "out of memory");
    goto out;
  }
  o.fd = mkstemp(tmp);
  if (o.fd < 0) {
    rc = kiln_error_set(err, KILN_E_IO, "cannot write %s: %s", out_path, strerror(errno));
    free(tmp);
    tmp = NULL;
    goto out;
  }
  /* The CRC covers the header without its last 4 bytes (the CRC itself), then every section. */
  rc = emit(&o, header, KILN_EIF_HEADER_SIZE - 4, EIF_FEED_NONE, err);
  uint8_t crc_placeholder[4] = {0, 0, 0, 0};
  if (!rc && write(o.fd, crc_placeholder, 4) != 4)
    rc = kiln_error_set(err, KILN_E_IO, "cannot write %s: %s", out_path, strerror(errno));
  for (size_t i = 0; i < n && !rc; i++) {
    uint8_t sh[KILN_EIF_SECTION_HEADER_SIZE];
    eif_put16(sh, s[i].type);
    eif_put16(sh + 2, 0);
    eif_put64(sh + 4, s[i].size);
    rc = emit(&o, sh, sizeof sh, EIF_FEED_NONE, err);
    if (!rc)
      rc = s[i].path ? copy_file_section(&o, &s[i], err)
                     : emit(&o, s[i].data, (size_t)s[i].size, s[i].feed, err);
  }
  if (!rc) {
    uint8_t crc[4];
    eif_put32(crc, o.m.crc);
    if (pwrite(o.fd, crc, 4, KILN_EIF_HEADER_SIZE - 4) != 4 || fchmod(o.fd, 0644) != 0 ||
        fsync(o.fd) != 0)
      rc = kiln_error_set(err, KILN_E_IO, "cannot write %s: %s", out_path, strerror(errno));
  }
  if (close(o.fd) != 0 && !rc)
    rc = kiln_error_set(err, KILN_E_IO, "cannot write %s: %s", out_path, strerror(errno));
  o.fd = -1;
  if (!rc && rename(tmp, out_path) != 0)
    rc = kiln_error_set(err, KILN_E_IO, "cannot write %s: %s", out_path, strerror(errno));
  if (!rc && pcrs) {
    eif_measure_finish(&o.m, pcrs);
    pcrs->hash = b->hash;
  }
out:
  if (o.fd >= 0)
    close(o.fd);
  if (rc && tmp)
    unlink(tmp);
  eif_measure_free(&o.m);
  free(o.chunk);
  free(tmp);
  free(metadata);
  return rc;
}
