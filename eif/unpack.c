/* Taking an EIF apart for rewriting (kiln sign): kernel and ramdisks copied to files by byte
 * range, cmdline and metadata kept as text, so the rewrite reproduces every measured byte. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kiln/eif.h"
#include "util/buf.h"
#include "util/fs.h"

static kiln_err copy_range(int in, uint64_t offset, uint64_t size, const char *dest,
                           struct kiln_error *err)
{
  int out = open(dest, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (out < 0)
    return kiln_error_set(err, KILN_E_IO, "cannot write %s: %s", dest, strerror(errno));
  char *buf = malloc(1 << 20);
  kiln_err rc = buf ? KILN_OK : kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  while (!rc && size) {
    size_t want = size < (1u << 20) ? (size_t)size : (1u << 20);
    ssize_t n = pread(in, buf, want, (off_t)offset);
    if (n <= 0 || write(out, buf, (size_t)n) != n)
      rc = kiln_error_set(err, KILN_E_IO, "copying to %s failed", dest);
    offset += (uint64_t)(n > 0 ? n : 0);
    size -= (uint64_t)(n > 0 ? n : 0);
  }
  free(buf);
  if (close(out) != 0 && !rc)
    rc = kiln_error_set(err, KILN_E_IO, "cannot write %s", dest);
  return rc;
}

kiln_err kiln_eif_unpack(const char *eif, const char *dir, struct kiln_eif_build *b,
                         char ***strings, struct kiln_error *err)
{
  struct kiln_eif_info info;
  kiln_err rc = kiln_eif_read(eif, 1, KILN_EIF_SHA384, &info, err);
  if (rc)
    return rc;
  /* strings: kernel path, metadata, cmdline, ramdisk paths..., NULL */
  char **s = calloc(KILN_EIF_MAX_SECTIONS + 4, sizeof *s);
  const char **ramdisks = calloc(KILN_EIF_MAX_SECTIONS, sizeof *ramdisks);
  int fd = open(eif, O_RDONLY | O_CLOEXEC);
  size_t n = 3, nram = 0;
  if (!s || !ramdisks || fd < 0) {
    rc = kiln_error_set(err, KILN_E_IO, "cannot read %s", eif);
    goto out;
  }
  memset(b, 0, sizeof *b);
  for (uint16_t i = 0; i < info.num_sections && !rc; i++) {
    const struct kiln_eif_section *sec = &info.sections[i];
    uint64_t data = sec->offset + KILN_EIF_SECTION_HEADER_SIZE;
    struct kiln_buf p = KILN_BUF_INIT;
    if (sec->type == KILN_EIF_SECTION_KERNEL) {
      kiln_buf_printf(&p, "%s/kernel", dir);
      rc = copy_range(fd, data, sec->size, p.data, err);
      s[0] = kiln_buf_detach(&p);
    } else if (sec->type == KILN_EIF_SECTION_RAMDISK) {
      kiln_buf_printf(&p, "%s/ramdisk%zu", dir, nram);
      rc = copy_range(fd, data, sec->size, p.data, err);
      ramdisks[nram++] = s[n++] = kiln_buf_detach(&p);
    }
    kiln_buf_free(&p);
  }
  s[1] = info.metadata ? strdup(info.metadata) : NULL;
  s[2] = info.cmdline ? strdup(info.cmdline) : strdup("");
  b->kernel = s[0];
  b->metadata_raw = s[1];
  b->cmdline = s[2];
  b->ramdisks = ramdisks;
  b->nramdisks = nram;
  b->aarch64 = info.flags & 1;
  if (!rc && (!s[0] || !s[1] || !nram))
    rc = kiln_error_set(err, KILN_E_INVALID, "%s lacks a kernel, metadata or ramdisk section", eif);
out:
  if (fd >= 0)
    close(fd);
  kiln_eif_info_clear(&info);
  if (rc) {
    for (size_t i = 0; s && i < KILN_EIF_MAX_SECTIONS + 4; i++)
      free(s[i]);
    free(s);
    free(ramdisks);
    return rc;
  }
  /* The ramdisk array is handed over through the last slot so one free list covers it. */
  s[KILN_EIF_MAX_SECTIONS + 3] = (char *)ramdisks;
  *strings = s;
  return KILN_OK;
}
