/* The hardware floor of EIF assembly, for bench/eif-bench.sh: the work any EIF writer must do
 * and nothing else. Concatenates the input files into OUT, reading each byte once into a ring of
 * buffers that two threads hash with SHA-384 at the same time (the two PCR streams), while this
 * thread computes the CRC-32 (libdeflate) and writes (O_DIRECT when the file system takes it,
 * else through the page cache with early writeback), then fsyncs. No EIF header, sections or
 * PCR routing, and no separate disk thread.
 * Build: cc -O2 -pthread eif-floor.c -lcrypto -ldeflate; run: eif-floor OUT FILE... */
#define _GNU_SOURCE
#include <fcntl.h>
#include <libdeflate.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define SLOTS 4
#define CHUNK (4u << 20)

static char *buf[SLOTS];
static size_t len[SLOTS];
static unsigned long long filled, hashed[2];
static int done;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;

static void *hash_lane(void *arg)
{
  int lane = (int)(long)arg;
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  EVP_DigestInit_ex(md, EVP_sha384(), NULL);
  pthread_mutex_lock(&lock);
  for (;;) {
    while (hashed[lane] == filled && !done)
      pthread_cond_wait(&cond, &lock);
    if (hashed[lane] == filled)
      break;
    int s = (int)(hashed[lane] % SLOTS);
    pthread_mutex_unlock(&lock);
    EVP_DigestUpdate(md, buf[s], len[s]);
    pthread_mutex_lock(&lock);
    hashed[lane]++;
    pthread_cond_broadcast(&cond);
  }
  pthread_mutex_unlock(&lock);
  unsigned char out[48];
  EVP_DigestFinal_ex(md, out, NULL);
  EVP_MD_CTX_free(md);
  printf("sha384 lane %d: %02x%02x%02x%02x...\n", lane, out[0], out[1], out[2], out[3]);
  return NULL;
}

int main(int argc, char **argv)
{
  if (argc < 3) {
    fprintf(stderr, "usage: eif-floor OUT FILE...\n");
    return 2;
  }
  int out = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (out < 0)
    return perror(argv[1]), 1;
  int direct = fcntl(out, F_SETFL, fcntl(out, F_GETFL) | O_DIRECT) == 0;
  for (int i = 0; i < SLOTS; i++)
    if (posix_memalign((void **)&buf[i], 4096, CHUNK) != 0)
      return 1;
  pthread_t t[2];
  for (long i = 0; i < 2; i++)
    pthread_create(&t[i], NULL, hash_lane, (void *)i);
  unsigned crc = 0;
  unsigned long long written = 0, flushed = 0;
  for (int f = 2; f < argc; f++) {
    int in = open(argv[f], O_RDONLY);
    if (in < 0)
      return perror(argv[f]), 1;
    for (;;) {
      pthread_mutex_lock(&lock);
      while (filled - (hashed[0] < hashed[1] ? hashed[0] : hashed[1]) >= SLOTS)
        pthread_cond_wait(&cond, &lock);
      int s = (int)(filled % SLOTS);
      pthread_mutex_unlock(&lock);
      ssize_t n = read(in, buf[s], CHUNK);
      if (n <= 0)
        break;
      len[s] = (size_t)n;
      pthread_mutex_lock(&lock);
      filled++;
      pthread_cond_broadcast(&cond);
      pthread_mutex_unlock(&lock);
      crc = (unsigned)libdeflate_crc32(crc, buf[s], (size_t)n);
      if (direct && n % 4096 != 0) /* an unaligned tail: the rest through the page cache */
        direct = fcntl(out, F_SETFL, fcntl(out, F_GETFL) & ~O_DIRECT) != 0;
      if (!direct && written - flushed >= (64u << 20)) {
        sync_file_range(out, (off_t)flushed, (off_t)(written - flushed), SYNC_FILE_RANGE_WRITE);
        flushed = written;
      }
      if (write(out, buf[s], (size_t)n) != n)
        return perror(argv[1]), 1;
      written += (unsigned long long)n;
    }
    close(in);
  }
  pthread_mutex_lock(&lock);
  done = 1;
  pthread_cond_broadcast(&cond);
  pthread_mutex_unlock(&lock);
  pthread_join(t[0], NULL);
  pthread_join(t[1], NULL);
  if (fsync(out) != 0 || close(out) != 0)
    return perror(argv[1]), 1;
  printf("crc32 %08x, %llu bytes\n", crc, written);
  return 0;
}
