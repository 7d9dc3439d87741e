/* The EIF writer's byte stream: a ring of buffers the calling thread fills (reading inputs),
 * checksums (CRC-32, libdeflate) and writes, while two lanes hash the same buffers (lane 0:
 * PCR0; lane 1: PCR1 or PCR2). Each input byte is read once; nothing waits for a whole file. */
#define _GNU_SOURCE /* sync_file_range */
#include "stream.h"

#include <errno.h>
#include <fcntl.h>
#include <libdeflate.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util/fs.h"

/* 4 x 4 MiB in flight: the lanes may lag three buffers behind the writer before it waits. */
#define STREAM_SLOTS 4
#define STREAM_CHUNK (4u << 20)
/* Start writeback every 64 MiB, so the final fsync finds little left to write. */
#define STREAM_WRITEBACK_STEP (64u << 20)

struct slot {
  char *buf;
  size_t len;
  enum eif_feed feed;
};

struct lane {
  struct eif_stream *s;
  int index;
  pthread_t thread;
  int started;
};

struct eif_stream {
  int fd;
  const char *name;
  struct eif_measure *m;
  struct slot slot[STREAM_SLOTS];
  pthread_mutex_t lock;
  pthread_cond_t cond;
  uint64_t filled;    /* buffers handed to the lanes */
  uint64_t hashed[2]; /* buffers each lane is done with */
  int finishing;      /* no more buffers: the lanes drain and end */
  int aborting;       /* an error: the lanes end now */
  struct lane lanes[2];
  uint64_t written, flushed;
  double started_at;
  struct kiln_eif_write_stats st;
};

static double now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void lane_hash(struct eif_stream *s, int index, const struct slot *sl)
{
  if (sl->feed == EIF_FEED_NONE)
    return;
  int pcr = index == 0 ? 0 : sl->feed == EIF_FEED_BOOT ? 1 : 2;
  EVP_DigestUpdate(s->m->pcr[pcr], sl->buf, sl->len);
}

static void *lane_main(void *arg)
{
  struct lane *l = arg;
  struct eif_stream *s = l->s;
  double hashing = 0, waiting = 0;
  pthread_mutex_lock(&s->lock);
  for (;;) {
    double t = now();
    while (s->hashed[l->index] == s->filled && !s->finishing && !s->aborting)
      pthread_cond_wait(&s->cond, &s->lock);
    waiting += now() - t;
    if (s->aborting || s->hashed[l->index] == s->filled)
      break;
    const struct slot *sl = &s->slot[s->hashed[l->index] % STREAM_SLOTS];
    pthread_mutex_unlock(&s->lock);
    t = now();
    lane_hash(s, l->index, sl);
    hashing += now() - t;
    pthread_mutex_lock(&s->lock);
    s->hashed[l->index]++;
    pthread_cond_broadcast(&s->cond);
  }
  s->st.lane_hash[l->index] = hashing;
  s->st.lane_wait[l->index] = waiting;
  pthread_mutex_unlock(&s->lock);
  return NULL;
}

kiln_err eif_stream_new(int fd, const char *name, struct eif_measure *m, struct eif_stream **out,
                        struct kiln_error *err)
{
  struct eif_stream *s = calloc(1, sizeof *s);
  if (!s)
    return kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  s->fd = fd;
  s->name = name;
  s->m = m;
  s->started_at = now();
  pthread_mutex_init(&s->lock, NULL);
  pthread_cond_init(&s->cond, NULL);
  *out = s;
  for (int i = 0; i < STREAM_SLOTS; i++)
    if (!(s->slot[i].buf = malloc(STREAM_CHUNK)))
      return kiln_error_set(err, KILN_E_NOMEM, "out of memory for the EIF write buffers");
  for (int i = 0; i < 2; i++) {
    s->lanes[i] = (struct lane){.s = s, .index = i};
    if (pthread_create(&s->lanes[i].thread, NULL, lane_main, &s->lanes[i]) != 0)
      return kiln_error_set(err, KILN_E_NOMEM, "cannot start the EIF hashing threads");
    s->lanes[i].started = 1;
  }
  return KILN_OK;
}

/* A buffer no lane still reads (waits for the slower lane when all are in flight). */
static struct slot *free_slot(struct eif_stream *s)
{
  double t = now();
  pthread_mutex_lock(&s->lock);
  while (s->filled - (s->hashed[0] < s->hashed[1] ? s->hashed[0] : s->hashed[1]) >= STREAM_SLOTS)
    pthread_cond_wait(&s->cond, &s->lock);
  struct slot *sl = &s->slot[s->filled % STREAM_SLOTS];
  pthread_mutex_unlock(&s->lock);
  s->st.writer_wait += now() - t;
  return sl;
}

static kiln_err write_all(struct eif_stream *s, const char *p, size_t len, struct kiln_error *err)
{
  if (s->written - s->flushed >= STREAM_WRITEBACK_STEP) {
    sync_file_range(s->fd, (off_t)s->flushed, (off_t)(s->written - s->flushed),
                    SYNC_FILE_RANGE_WRITE);
    s->flushed = s->written;
  }
  s->written += len;
  while (len) {
    ssize_t n = write(s->fd, p, len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return kiln_error_set(err, KILN_E_IO, "cannot write %s: %s", s->name,
                            n < 0 ? strerror(errno) : "short write");
    p += n;
    len -= (size_t)n;
  }
  return KILN_OK;
}

/* Hand the filled buffer to the lanes, then checksum and write it here. */
static kiln_err publish(struct eif_stream *s, struct slot *sl, struct kiln_error *err)
{
  pthread_mutex_lock(&s->lock);
  s->filled++;
  pthread_cond_broadcast(&s->cond);
  pthread_mutex_unlock(&s->lock);
  double t = now();
  s->m->crc = (uint32_t)libdeflate_crc32(s->m->crc, sl->buf, sl->len);
  double t2 = now();
  s->st.crc += t2 - t;
  kiln_err rc = write_all(s, sl->buf, sl->len, err);
  s->st.write += now() - t2;
  s->st.bytes += sl->len;
  return rc;
}

kiln_err eif_stream_put(struct eif_stream *s, const void *data, size_t len, enum eif_feed feed,
                        struct kiln_error *err)
{
  const char *p = data;
  kiln_err rc = KILN_OK;
  if (s->finishing) { /* the lanes are done: only unhashed bytes (the signature) come now */
    if (feed != EIF_FEED_NONE)
      return kiln_error_set(err, KILN_E_INTERNAL, "EIF bytes to hash after the PCRs were final");
    s->m->crc = (uint32_t)libdeflate_crc32(s->m->crc, data, len);
    return write_all(s, data, len, err);
  }
  while (len && !rc) {
    struct slot *sl = free_slot(s);
    sl->len = len < STREAM_CHUNK ? len : STREAM_CHUNK;
    sl->feed = feed;
    memcpy(sl->buf, p, sl->len);
    p += sl->len;
    len -= sl->len;
    rc = publish(s, sl, err);
  }
  return rc;
}

kiln_err eif_stream_put_file(struct eif_stream *s, const char *path, uint64_t size,
                             enum eif_feed feed, struct kiln_error *err)
{
  int fd = kiln_open_regular(path, NULL, err);
  if (fd < 0)
    return err ? err->code : KILN_E_IO;
  posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  uint64_t left = size;
  kiln_err rc = KILN_OK;
  while (left && !rc) {
    struct slot *sl = free_slot(s);
    size_t want = left < STREAM_CHUNK ? (size_t)left : STREAM_CHUNK;
    double t = now();
    ssize_t n = read(fd, sl->buf, want);
    s->st.read += now() - t;
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      rc = kiln_error_set(err, KILN_E_IO, "%s: %s", path,
                          n < 0 ? strerror(errno) : "file shrank while the EIF was being written");
      break;
    }
    sl->len = (size_t)n;
    sl->feed = feed;
    left -= (uint64_t)n;
    rc = publish(s, sl, err);
  }
  char extra;
  if (!rc && read(fd, &extra, 1) > 0)
    rc = kiln_error_set(err, KILN_E_IO, "%s grew while the EIF was being written", path);
  close(fd);
  return rc;
}

static void stop_lanes(struct eif_stream *s, int abort)
{
  pthread_mutex_lock(&s->lock);
  s->finishing = 1;
  s->aborting |= abort;
  pthread_cond_broadcast(&s->cond);
  pthread_mutex_unlock(&s->lock);
  for (int i = 0; i < 2; i++)
    if (s->lanes[i].started) {
      pthread_join(s->lanes[i].thread, NULL);
      s->lanes[i].started = 0;
    }
}

kiln_err eif_stream_finish(struct eif_stream *s, struct kiln_error *err)
{
  (void)err;
  stop_lanes(s, 0);
  s->st.wall = now() - s->started_at;
  return KILN_OK;
}

void eif_stream_stats(const struct eif_stream *s, struct kiln_eif_write_stats *stats)
{
  if (s && stats)
    *stats = s->st;
}

void eif_stream_free(struct eif_stream *s)
{
  if (!s)
    return;
  stop_lanes(s, 1);
  for (int i = 0; i < STREAM_SLOTS; i++)
    free(s->slot[i].buf);
  pthread_mutex_destroy(&s->lock);
  pthread_cond_destroy(&s->cond);
  free(s);
}
