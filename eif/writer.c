/* The EIF writer: header, sections in eif_build's order, CRC and PCRs in one streaming pass,
 * written to a temp file that is renamed into place only when complete. */
#define _GNU_SOURCE /* sync_file_range */
#include <errno.h>
#include <pthread.h>
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

#include <zlib.h>
#include "util/buf.h"
#include "util/fs.h"

#define EIF_CHUNK (4u << 20)
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

/* Application ramdisks are hashed twice (PCR0 and PCR2): a helper thread takes the PCR2 stream
 * and the CRC of those chunks while the main thread hashes PCR0 and writes, double-buffered. */
struct hash_worker {
  pthread_t thread;
  pthread_mutex_t lock;
  pthread_cond_t cond;
  struct eif_measure *m;
  const char *data; /* chunk to process, or NULL when idle */
  size_t len;
  int stop;
  int started;
};

struct out_file {
  int fd;
  const char *name;
  uint64_t written; /* bytes written so far */
  uint64_t flushed; /* bytes whose writeback was started */
  struct eif_measure m;
  char *chunk[2];
  struct hash_worker w;
};

static void *hash_worker_main(void *arg)
{
  struct hash_worker *w = arg;
  pthread_mutex_lock(&w->lock);
  for (;;) {
    while (!w->data && !w->stop)
      pthread_cond_wait(&w->cond, &w->lock);
    if (!w->data && w->stop)
      break;
    const char *data = w->data;
    size_t len = w->len;
    pthread_mutex_unlock(&w->lock);
    EVP_DigestUpdate(w->m->pcr[2], data, len);
    eif_measure_crc(w->m, data, len);
    pthread_mutex_lock(&w->lock);
    w->data = NULL;
    pthread_cond_broadcast(&w->cond);
  }
  pthread_mutex_unlock(&w->lock);
  return NULL;
}

/* Wait until the worker has finished its chunk (so the buffer and the CRC are ours again). */
static void worker_drain(struct hash_worker *w)
{
  if (!w->started)
    return;
  pthread_mutex_lock(&w->lock);
  while (w->data)
    pthread_cond_wait(&w->cond, &w->lock);
  pthread_mutex_unlock(&w->lock);
}

static void worker_submit(struct hash_worker *w, const char *data, size_t len)
{
  pthread_mutex_lock(&w->lock);
  while (w->data)
    pthread_cond_wait(&w->cond, &w->lock);
  w->data = data;
  w->len = len;
  pthread_cond_broadcast(&w->cond);
  pthread_mutex_unlock(&w->lock);
}

static int worker_start(struct hash_worker *w, struct eif_measure *m)
{
  memset(w, 0, sizeof *w);
  w->m = m;
  pthread_mutex_init(&w->lock, NULL);
  pthread_cond_init(&w->cond, NULL);
  w->started = pthread_create(&w->thread, NULL, hash_worker_main, w) == 0;
  return w->started;
}

static void worker_stop(struct hash_worker *w)
{
  if (!w->m)
    return; /* never started */
  if (w->started) {
    pthread_mutex_lock(&w->lock);
    w->stop = 1;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->lock);
    pthread_join(w->thread, NULL);
  }
  pthread_mutex_destroy(&w->lock);
  pthread_cond_destroy(&w->cond);
  w->started = 0;
}

#define EIF_WRITEBACK_STEP (64u << 20)

static kiln_err write_out(struct out_file *o, const char *p, size_t len, struct kiln_error *err)
{
  /* Start writing earlier data to disk while hashing goes on, so the final fsync is short. */
  if (o->written - o->flushed >= EIF_WRITEBACK_STEP) {
    sync_file_range(o->fd, (off_t)o->flushed, (off_t)(o->written - o->flushed),
                    SYNC_FILE_RANGE_WRITE);
    o->flushed = o->written;
  }
  o->written += len;
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

static kiln_err emit(struct out_file *o, const void *data, size_t len, enum eif_feed feed,
                     struct kiln_error *err)
{
  eif_measure_crc(&o->m, data, len);
  eif_measure_feed(&o->m, feed, data, len);
  return write_out(o, data, len, err);
}

static kiln_err copy_file_section(struct out_file *o, const struct section_src *s,
                                  struct kiln_error *err)
{
  int fd = kiln_open_regular(s->path, NULL, err);
  if (fd < 0)
    return err ? err->code : KILN_E_IO;
  int parallel = s->feed == EIF_FEED_APP && o->w.started;
  uint64_t left = s->size;
  kiln_err rc = KILN_OK;
  for (int turn = 0; left && !rc; turn ^= 1) {
    char *buf = o->chunk[parallel ? turn : 0];
    size_t want = left < EIF_CHUNK ? (size_t)left : EIF_CHUNK;
    ssize_t n = read(fd, buf, want);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      rc = kiln_error_set(err, KILN_E_IO, "%s: %s", s->path,
                          n < 0 ? strerror(errno) : "file shrank while the EIF was being written");
      break;
    }
    if (parallel) {
      worker_submit(&o->w, buf, (size_t)n); /* PCR2 + CRC on the other core */
      EVP_DigestUpdate(o->m.pcr[0], buf, (size_t)n);
      rc = write_out(o, buf, (size_t)n, err);
    } else {
      rc = emit(o, buf, (size_t)n, s->feed, err);
    }
    left -= (uint64_t)n;
  }
  worker_drain(&o->w); /* the CRC must be complete before the next section's bytes */
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

/* The sections in eif_build's order: kernel, cmdline, metadata, ramdisks (sizes of files). */
static kiln_err collect_sections(const struct kiln_eif_build *b, struct section_src *s, size_t *n,
                                 char **metadata, struct kiln_error *err)
{
  kiln_err rc;
  s[*n] = (struct section_src){KILN_EIF_SECTION_KERNEL, EIF_FEED_BOOT, b->kernel, NULL, 0};
  if ((rc = input_size("kernel", b->kernel, &s[(*n)++].size, err)))
    return rc;
  const char *cmdline = b->cmdline ? b->cmdline : "";
  s[(*n)++] =
      (struct section_src){KILN_EIF_SECTION_CMDLINE, EIF_FEED_BOOT, NULL, cmdline, strlen(cmdline)};
  if (b->metadata_raw)
    *metadata = strdup(b->metadata_raw);
  else if ((rc = kiln_eif_metadata_json(&b->metadata, b->kernel, metadata, err)))
    return rc;
  if (!*metadata)
    return kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  s[(*n)++] = (struct section_src){KILN_EIF_SECTION_METADATA, EIF_FEED_NONE, NULL, *metadata,
                                   strlen(*metadata)};
  for (size_t i = 0; i < b->nramdisks; i++) {
    s[*n] = (struct section_src){KILN_EIF_SECTION_RAMDISK, i == 0 ? EIF_FEED_BOOT : EIF_FEED_APP,
                                 b->ramdisks[i], NULL, 0};
    if ((rc = input_size("ramdisk", b->ramdisks[i], &s[(*n)++].size, err)))
      return rc;
  }
  return KILN_OK;
}

/* The header again, now with the signature's slot and the CRC (header-but-CRC, then the
 * sections' CRC combined in), and the file made durable. */
static kiln_err write_final_header(struct out_file *o, struct eif_header *hdr, uint64_t end,
                                   struct kiln_error *err)
{
  uint8_t header[KILN_EIF_HEADER_SIZE];
  eif_header_write(hdr, header);
  uLong crc = crc32(0L, header, KILN_EIF_HEADER_SIZE - 4);
  crc = crc32_combine(crc, o->m.crc, (z_off_t)(end - KILN_EIF_HEADER_SIZE));
  hdr->crc = (uint32_t)crc;
  eif_header_write(hdr, header);
  if (pwrite(o->fd, header, KILN_EIF_HEADER_SIZE, 0) != KILN_EIF_HEADER_SIZE ||
      fchmod(o->fd, 0644) != 0 || fsync(o->fd) != 0)
    return kiln_error_set(err, KILN_E_IO, "cannot write %s: %s", o->name, strerror(errno));
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
  struct eif_signer *signer = NULL;
  uint8_t *signature = NULL;
  size_t signature_len = 0;
  struct out_file o;
  memset(&o, 0, sizeof o);
  o.fd = -1;
  o.name = out_path;
  kiln_err rc = KILN_OK;
  if ((b->signing_certificate != NULL) != (b->private_key != NULL))
    return kiln_error_set(err, KILN_E_INVALID,
                          "signing needs both a certificate and its private key");
  if (b->signing_certificate &&
      (rc = eif_signer_load(b->signing_certificate, b->private_key, &signer, err)))
    return rc;
  if ((rc = collect_sections(b, s, &n, &metadata, err)))
    goto out;
  uint8_t header[KILN_EIF_HEADER_SIZE];
  struct eif_header hdr = {.version = EIF_VERSION,
                           .flags = b->aarch64 ? 1 : 0,
                           .default_mem = EIF_DEFAULT_MEM,
                           .default_cpus = EIF_DEFAULT_CPUS,
                           .num_sections = (uint16_t)(n + (signer ? 1 : 0))};
  uint64_t offset = KILN_EIF_HEADER_SIZE;
  for (size_t i = 0; i < n; i++) {
    hdr.offsets[i] = offset;
    hdr.sizes[i] = s[i].size;
    offset += KILN_EIF_SECTION_HEADER_SIZE + s[i].size;
  }
  eif_header_write(&hdr, header);

  if ((rc = eif_measure_init(&o.m, b->hash, err)))
    goto out;
  o.chunk[0] = malloc(EIF_CHUNK);
  o.chunk[1] = malloc(EIF_CHUNK);
  if (b->nramdisks > 1)
    worker_start(&o.w, &o.m); /* without a thread, everything runs on this one */
  struct kiln_buf t = KILN_BUF_INIT;
  kiln_buf_printf(&t, "%s.tmp.XXXXXX", out_path);
  tmp = kiln_buf_detach(&t);
  if (!o.chunk[0] || !o.chunk[1] || !tmp) {
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
  /* The header is written again at the end (a signature's size is known only after PCR0); the
   * CRC covers header-but-CRC and then every section, so the sections' CRC is kept apart and
   * combined with the final header's at the end. */
  rc = write_out(&o, (const char *)header, KILN_EIF_HEADER_SIZE, err);
  for (size_t i = 0; i < n && !rc; i++) {
    uint8_t sh[KILN_EIF_SECTION_HEADER_SIZE];
    eif_section_header_write(&(struct eif_section_header){s[i].type, 0, s[i].size}, sh);
    rc = emit(&o, sh, sizeof sh, EIF_FEED_NONE, err);
    if (!rc)
      rc = s[i].path ? copy_file_section(&o, &s[i], err)
                     : emit(&o, s[i].data, (size_t)s[i].size, s[i].feed, err);
  }
  struct kiln_eif_pcrs measured;
  if (!rc) {
    eif_measure_finish(&o.m, &measured);
    measured.hash = b->hash;
  }
  if (!rc && signer) {
    rc = eif_sign_section(signer, o.m.raw[0], o.m.raw_len, &signature, &signature_len, err);
    hdr.offsets[n] = offset;
    hdr.sizes[n] = signature_len;
    uint8_t sh[KILN_EIF_SECTION_HEADER_SIZE];
    eif_section_header_write(
        &(struct eif_section_header){KILN_EIF_SECTION_SIGNATURE, 0, signature_len}, sh);
    if (!rc)
      rc = emit(&o, sh, sizeof sh, EIF_FEED_NONE, err);
    if (!rc)
      rc = emit(&o, signature, signature_len, EIF_FEED_NONE, err);
    eif_signer_pcr8(signer, b->hash, measured.pcr8);
    offset += KILN_EIF_SECTION_HEADER_SIZE + signature_len;
  }
  if (!rc)
    rc = write_final_header(&o, &hdr, offset, err);
  if (close(o.fd) != 0 && !rc)
    rc = kiln_error_set(err, KILN_E_IO, "cannot write %s: %s", out_path, strerror(errno));
  o.fd = -1;
  if (!rc && rename(tmp, out_path) != 0)
    rc = kiln_error_set(err, KILN_E_IO, "cannot write %s: %s", out_path, strerror(errno));
  if (!rc && pcrs)
    *pcrs = measured;
out:
  if (o.fd >= 0)
    close(o.fd);
  if (rc && tmp)
    unlink(tmp);
  worker_stop(&o.w);
  eif_measure_free(&o.m);
  free(o.chunk[0]);
  free(o.chunk[1]);
  free(tmp);
  free(metadata);
  free(signature);
  eif_signer_free(signer);
  return rc;
}
