/* The EIF writer's byte stream: the file is assembled in a ring of 4 MiB output blocks. The
 * calling thread (the reader) reads inputs straight into the current block; when it is full, two
 * lanes hash it (lane 0: PCR0; lane 1: PCR1 or PCR2) and the disk thread computes the CRC-32
 * (libdeflate) and writes it, all at once on different cores. Blocks are aligned in memory and
 * in the file so they can go to disk with O_DIRECT: no page-cache copy, no dirty-page
 * throttling; where the file system refuses O_DIRECT (tmpfs) they are written through the page
 * cache with early writeback. Each input byte is read once; memory is bounded by the ring. */
#define _GNU_SOURCE /* O_DIRECT, sync_file_range */
#include "stream.h"

#include <errno.h>
#include <fcntl.h>
#include <libdeflate.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util/fs.h"

#define STREAM_SLOTS 4
#define STREAM_BLOCK (4u << 20)
#define STREAM_ALIGN 4096u /* O_DIRECT: memory, offsets and lengths in whole device blocks */
#define STREAM_WRITEBACK_STEP (64u << 20) /* page-cache writes: start writeback this often */
/* A block holds pieces of at most every section: its header and data, plus the file header. */
#define STREAM_SEGMENTS (2 * KILN_EIF_MAX_SECTIONS + 2)

/* LANE0/LANE1: the PCR streams; DISK: CRC-32 and write; WHOLE: SHA-256 of the whole file (when
 * asked for: the header must then be final before the first block is handed over). */
enum { LANE0, LANE1, DISK, WHOLE, CONSUMERS };

struct segment {
  uint32_t off, len;
  enum eif_feed feed;
};

struct block {
  char *buf;
  uint64_t file_off; /* where buf[0] goes in the file */
  size_t len;
  struct segment seg[STREAM_SEGMENTS];
  int nseg;
};

struct consumer {
  struct eif_stream *s;
  int role;
  pthread_t thread;
  int started;
  kiln_err rc; /* the disk thread's write error */
  struct kiln_error err;
};

struct eif_stream {
  int fd;
  const char *name;
  struct eif_measure *m;
  size_t header_len;
  int direct;
  struct block block[STREAM_SLOTS];
  struct block *current; /* being filled by the reader, or NULL */
  uint64_t end;          /* file offset after the last byte put */
  pthread_mutex_t lock;
  pthread_cond_t cond;
  /* Progress counters, read without the lock: a thread takes the lock only to sleep (and the one
   * that advances a counter only to wake a sleeper), so a holder descheduled on these 2 cores
   * does not stall the others. */
  _Atomic uint64_t filled;          /* blocks handed over */
  _Atomic uint64_t done[CONSUMERS]; /* blocks each consumer is through with */
  _Atomic int sleepers;             /* threads waiting on cond */
  int nconsumers;                   /* WHOLE only when the file's SHA-256 is wanted */
  EVP_MD_CTX *whole;
  _Atomic int finishing, aborting;
  struct consumer consumer[CONSUMERS];
  uint64_t flushed; /* page-cache mode: bytes whose writeback was started */
  double started_at;
  struct kiln_eif_write_stats st;
};

static struct block *current_block(struct eif_stream *s);

static double now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void hash_block(struct eif_stream *s, int lane, const struct block *b)
{
  for (int i = 0; i < b->nseg; i++) {
    const struct segment *g = &b->seg[i];
    if (g->feed == EIF_FEED_NONE)
      continue;
    int pcr = lane == LANE0 ? 0 : g->feed == EIF_FEED_BOOT ? 1 : 2;
    EVP_DigestUpdate(s->m->pcr[pcr], b->buf + g->off, g->len);
  }
}

/* Write the block, padded to whole device blocks (the file is cut to length at the end). */
static kiln_err write_block(struct eif_stream *s, struct block *b, struct kiln_error *err)
{
  size_t len = (b->len + STREAM_ALIGN - 1) & ~(size_t)(STREAM_ALIGN - 1);
  memset(b->buf + b->len, 0, len - b->len);
  if (!s->direct && b->file_off - s->flushed >= STREAM_WRITEBACK_STEP) {
    sync_file_range(s->fd, (off_t)s->flushed, (off_t)(b->file_off - s->flushed),
                    SYNC_FILE_RANGE_WRITE);
    s->flushed = b->file_off;
  }
  for (size_t done = 0; done < len;) {
    ssize_t n = pwrite(s->fd, b->buf + done, len - done, (off_t)(b->file_off + done));
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && errno == EINVAL && s->direct && done == 0) { /* O_DIRECT refused after all */
      fcntl(s->fd, F_SETFL, fcntl(s->fd, F_GETFL) & ~O_DIRECT);
      s->direct = 0;
      continue;
    }
    if (n <= 0)
      return kiln_error_set(err, KILN_E_IO, "cannot write %s: %s", s->name,
                            n < 0 ? strerror(errno) : "short write");
    done += (size_t)n;
  }
  return KILN_OK;
}

/* Hash, or checksum and write, one block; returns the disk thread's write error. */
static kiln_err consume(struct consumer *c, struct block *b, kiln_err failed)
{
  struct eif_stream *s = c->s;
  kiln_err rc = KILN_OK;
  if (c->role == WHOLE) {
    EVP_DigestUpdate(s->whole, b->buf, b->len);
    return KILN_OK;
  }
  if (c->role != DISK) {
    double t = now();
    hash_block(s, c->role, b);
    s->st.lane_hash[c->role] += now() - t;
    return KILN_OK;
  }
  double t = now();
  size_t skip = b->file_off < s->header_len ? (size_t)(s->header_len - b->file_off) : 0;
  if (skip < b->len)
    s->m->crc = (uint32_t)libdeflate_crc32(s->m->crc, b->buf + skip, b->len - skip);
  double t2 = now();
  s->st.crc += t2 - t;
  if (!failed) /* after a failed write, the blocks are only taken off the ring */
    rc = write_block(s, b, &c->err);
  s->st.write += now() - t2;
  return rc;
}

/* Wake the threads sleeping on cond, if any (after a counter or flag changed). */
static void wake(struct eif_stream *s)
{
  if (atomic_load(&s->sleepers)) {
    pthread_mutex_lock(&s->lock);
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
  }
}

/* Sleep until ready(s, arg) holds; returns the seconds slept. */
static double sleep_until(struct eif_stream *s, int (*ready)(struct eif_stream *, int), int arg)
{
  if (ready(s, arg))
    return 0;
  double t = now();
  pthread_mutex_lock(&s->lock);
  atomic_fetch_add(&s->sleepers, 1);
  while (!ready(s, arg))
    pthread_cond_wait(&s->cond, &s->lock);
  atomic_fetch_sub(&s->sleepers, 1);
  pthread_mutex_unlock(&s->lock);
  return now() - t;
}

/* A consumer has a block to take, or should end. */
static int consumer_ready(struct eif_stream *s, int role)
{
  return atomic_load(&s->done[role]) != atomic_load(&s->filled) || atomic_load(&s->finishing) ||
         atomic_load(&s->aborting);
}

static void *consumer_main(void *arg)
{
  struct consumer *c = arg;
  struct eif_stream *s = c->s;
  double waiting = 0;
  kiln_err failed = KILN_OK;
  for (;;) {
    waiting += sleep_until(s, consumer_ready, c->role);
    uint64_t mine = atomic_load(&s->done[c->role]);
    if (atomic_load(&s->aborting) || mine == atomic_load(&s->filled))
      break; /* aborted, or finishing with every block taken */
    kiln_err rc = consume(c, &s->block[mine % STREAM_SLOTS], failed);
    if (rc && !failed) {
      pthread_mutex_lock(&s->lock);
      c->rc = failed = rc;
      pthread_mutex_unlock(&s->lock);
    }
    atomic_store(&s->done[c->role], mine + 1);
    wake(s);
  }
  if (c->role == DISK)
    s->st.disk_wait = waiting;
  else if (c->role != WHOLE)
    s->st.lane_wait[c->role] = waiting;
  return NULL;
}

kiln_err eif_stream_new(int fd, const char *name, struct eif_measure *m, size_t header_len,
                        const void *final_header, struct eif_stream **out, struct kiln_error *err)
{
  struct eif_stream *s = calloc(1, sizeof *s);
  if (!s)
    return kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  s->fd = fd;
  s->name = name;
  s->m = m;
  s->header_len = header_len;
  s->started_at = now();
  pthread_mutex_init(&s->lock, NULL);
  pthread_cond_init(&s->cond, NULL);
  *out = s;
  s->direct = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_DIRECT) == 0;
  s->nconsumers = final_header ? CONSUMERS : WHOLE;
  if (final_header &&
      (!(s->whole = EVP_MD_CTX_new()) || EVP_DigestInit_ex(s->whole, EVP_sha256(), NULL) != 1))
    return kiln_error_set(err, KILN_E_NOMEM, "cannot set up the EIF's SHA-256");
  for (int i = 0; i < STREAM_SLOTS; i++)
    if (posix_memalign((void **)&s->block[i].buf, STREAM_ALIGN, STREAM_BLOCK) != 0)
      return kiln_error_set(err, KILN_E_NOMEM, "out of memory for the EIF write buffers");
  for (int i = 0; i < s->nconsumers; i++) {
    s->consumer[i] = (struct consumer){.s = s, .role = i, .err = KILN_ERROR_INIT};
    if (pthread_create(&s->consumer[i].thread, NULL, consumer_main, &s->consumer[i]) != 0)
      return kiln_error_set(err, KILN_E_NOMEM, "cannot start the EIF writing threads");
    s->consumer[i].started = 1;
  }
  s->end = header_len; /* the header's place: zeros until eif_stream_close, or final now */
  if (final_header)
    memcpy(current_block(s)->buf, final_header, header_len);
  return KILN_OK;
}

/* The block being filled; waits for the oldest one to be free when all are in flight. */
/* The oldest block in flight is done with by every consumer (or none is in flight). */
static int slot_free(struct eif_stream *s, int unused)
{
  (void)unused;
  uint64_t oldest = atomic_load(&s->done[0]);
  for (int i = 1; i < s->nconsumers; i++) {
    uint64_t d = atomic_load(&s->done[i]);
    oldest = d < oldest ? d : oldest;
  }
  return atomic_load(&s->filled) - oldest < STREAM_SLOTS;
}

static struct block *current_block(struct eif_stream *s)
{
  if (s->current)
    return s->current;
  s->st.reader_wait += sleep_until(s, slot_free, 0);
  struct block *b = &s->block[atomic_load(&s->filled) % STREAM_SLOTS];
  b->file_off = s->end - (s->end % STREAM_BLOCK);
  b->len = (size_t)(s->end - b->file_off);
  b->nseg = 0;
  if (b->len) /* only the first block starts after its beginning: the header's place */
    memset(b->buf, 0, b->len);
  return s->current = b;
}

/* The disk thread's error, if it had one. */
static kiln_err disk_error(struct eif_stream *s, struct kiln_error *err)
{
  pthread_mutex_lock(&s->lock);
  kiln_err rc = s->consumer[DISK].rc;
  pthread_mutex_unlock(&s->lock);
  if (rc)
    kiln_error_set(err, rc, "%s", kiln_error_msg(&s->consumer[DISK].err));
  return rc;
}

/* Hand the current block (full, or the last one) to the lanes and the disk thread. */
static kiln_err hand_over(struct eif_stream *s, struct kiln_error *err)
{
  if (!s->current)
    return KILN_OK;
  s->current = NULL;
  atomic_fetch_add(&s->filled, 1);
  wake(s);
  return disk_error(s, err);
}

/* Record that len bytes were just placed at the block's end. */
static kiln_err placed(struct eif_stream *s, struct block *b, size_t len, enum eif_feed feed,
                       struct kiln_error *err)
{
  struct segment *last = b->nseg ? &b->seg[b->nseg - 1] : NULL;
  if (last && last->feed == feed && last->off + last->len == b->len)
    last->len += (uint32_t)len;
  else if (b->nseg < STREAM_SEGMENTS)
    b->seg[b->nseg++] = (struct segment){(uint32_t)b->len, (uint32_t)len, feed};
  else
    return kiln_error_set(err, KILN_E_INTERNAL, "too many EIF pieces in one write block");
  b->len += len;
  s->end += len;
  s->st.bytes += len;
  return b->len == STREAM_BLOCK ? hand_over(s, err) : KILN_OK;
}

kiln_err eif_stream_put(struct eif_stream *s, const void *data, size_t len, enum eif_feed feed,
                        struct kiln_error *err)
{
  const char *p = data;
  kiln_err rc = KILN_OK;
  if (s->finishing) { /* everything hashed: only the signature comes now, written here */
    if (feed != EIF_FEED_NONE)
      return kiln_error_set(err, KILN_E_INTERNAL, "EIF bytes to hash after the PCRs were final");
    s->m->crc = (uint32_t)libdeflate_crc32(s->m->crc, data, len);
    for (size_t done = 0; done < len;) {
      ssize_t n = pwrite(s->fd, p + done, len - done, (off_t)(s->end + done));
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return kiln_error_set(err, KILN_E_IO, "cannot write %s: %s", s->name, strerror(errno));
      done += (size_t)n;
    }
    s->end += len;
    return KILN_OK;
  }
  while (len && !rc) {
    struct block *b = current_block(s);
    size_t n = STREAM_BLOCK - b->len < len ? STREAM_BLOCK - b->len : len;
    memcpy(b->buf + b->len, p, n);
    p += n;
    len -= n;
    rc = placed(s, b, n, feed, err);
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
    struct block *b = current_block(s);
    size_t want = STREAM_BLOCK - b->len < left ? STREAM_BLOCK - b->len : (size_t)left;
    double t = now();
    ssize_t n = read(fd, b->buf + b->len, want);
    s->st.read += now() - t;
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      rc = kiln_error_set(err, KILN_E_IO, "%s: %s", path,
                          n < 0 ? strerror(errno) : "file shrank while the EIF was being written");
      break;
    }
    left -= (uint64_t)n;
    rc = placed(s, b, (size_t)n, feed, err);
  }
  char extra;
  if (!rc && read(fd, &extra, 1) > 0)
    rc = kiln_error_set(err, KILN_E_IO, "%s grew while the EIF was being written", path);
  close(fd);
  return rc;
}

static void stop_consumers(struct eif_stream *s, int abort)
{
  pthread_mutex_lock(&s->lock);
  atomic_store(&s->finishing, 1);
  if (abort)
    atomic_store(&s->aborting, 1);
  pthread_cond_broadcast(&s->cond);
  pthread_mutex_unlock(&s->lock);
  for (int i = 0; i < s->nconsumers; i++)
    if (s->consumer[i].started) {
      pthread_join(s->consumer[i].thread, NULL);
      s->consumer[i].started = 0;
    }
}

kiln_err eif_stream_finish(struct eif_stream *s, struct kiln_error *err)
{
  kiln_err rc = hand_over(s, err);
  stop_consumers(s, 0);
  if (!rc)
    rc = disk_error(s, err);
  /* The rest (signature, header) is small and unaligned: through the page cache. */
  if (!rc && s->direct && fcntl(s->fd, F_SETFL, fcntl(s->fd, F_GETFL) & ~O_DIRECT) != 0)
    rc = kiln_error_set(err, KILN_E_IO, "cannot write %s: %s", s->name, strerror(errno));
  return rc;
}

kiln_err eif_stream_close(struct eif_stream *s, const void *header, size_t header_len,
                          struct kiln_error *err)
{
  double t = now();
  if (pwrite(s->fd, header, header_len, 0) != (ssize_t)header_len ||
      ftruncate(s->fd, (off_t)s->end) != 0 || fsync(s->fd) != 0)
    return kiln_error_set(err, KILN_E_IO, "cannot write %s: %s", s->name, strerror(errno));
  s->st.fsync = now() - t;
  s->st.wall = now() - s->started_at;
  s->st.direct = s->direct;
  return KILN_OK;
}

int eif_stream_sha256(const struct eif_stream *s, char hex[65])
{
  unsigned char d[32];
  unsigned int n = 0;
  if (!s->whole || s->end != s->st.bytes + s->header_len ||
      EVP_DigestFinal_ex(s->whole, d, &n) != 1 || n != sizeof d)
    return -1;
  for (unsigned i = 0; i < n; i++)
    snprintf(hex + 2 * i, 3, "%02x", d[i]);
  return 0;
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
  stop_consumers(s, 1);
  for (int i = 0; i < STREAM_SLOTS; i++)
    free(s->block[i].buf);
  for (int i = 0; i < CONSUMERS; i++)
    kiln_error_clear(&s->consumer[i].err);
  EVP_MD_CTX_free(s->whole);
  pthread_mutex_destroy(&s->lock);
  pthread_cond_destroy(&s->cond);
  free(s);
}
