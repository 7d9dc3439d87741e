/* Logging, progress lines (TTY only) and secret redaction. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

void kiln_secret_add(struct kiln *k, const char *secret)
{
  if (!secret || strlen(secret) < 4)
    return; /* too short to mask without garbling ordinary text */
  for (size_t i = 0; i < k->nsecrets; i++)
    if (strcmp(k->secrets[i], secret) == 0)
      return;
  char **n = realloc(k->secrets, (k->nsecrets + 1) * sizeof *n);
  if (!n) {
    k->secrets_lost = 1;
    return;
  }
  k->secrets = n;
  if (!(k->secrets[k->nsecrets] = strdup(secret))) {
    k->secrets_lost = 1;
    return;
  }
  k->nsecrets++;
}

char *kiln_redact(const struct kiln *k, const char *s)
{
  struct kiln_buf b = KILN_BUF_INIT;
  const char *p = s;
  if (k && k->secrets_lost)
    return strdup("(message withheld: out of memory while registering a secret to mask)");
  while (*p) {
    size_t best = 0;
    for (size_t i = 0; k && i < k->nsecrets; i++) {
      size_t n = strlen(k->secrets[i]);
      if (n > best && strncmp(p, k->secrets[i], n) == 0)
        best = n;
    }
    if (best) {
      kiln_buf_puts(&b, "***");
      p += best;
    } else {
      kiln_buf_putc(&b, *p++);
    }
  }
  return kiln_buf_detach(&b);
}

void kiln_progress_clear(struct kiln *k)
{
  if (k->progress_visible) {
    fputs("\r\033[K", stderr);
    k->progress_visible = 0;
  }
}

void kiln_vlog(struct kiln *k, enum kiln_log_level level, const char *prefix, const char *fmt,
               va_list ap)
{
  int threshold = KILN_LOG_INFO + (k->verbosity > 0 ? k->verbosity : 0);
  if (k->verbosity < 0)
    threshold = KILN_LOG_WARN;
  if ((int)level > threshold)
    return;
  struct kiln_buf b = KILN_BUF_INIT;
  kiln_buf_vprintf(&b, fmt, ap);
  char *clean = kiln_redact(k, kiln_buf_str(&b));
  kiln_buf_free(&b);
  static const char *const names[] = {"error", "warning", "", "debug"};
  static const char *const colors[] = {"\033[31m", "\033[33m", "", "\033[2m"};
  kiln_progress_clear(k);
  const char *name = names[level];
  if (k->color && level != KILN_LOG_INFO)
    fprintf(stderr, "%s%s%s:\033[0m %s\n", colors[level], prefix ? prefix : "kiln",
            *name ? " " : "", clean ? clean : "");
  else if (*name)
    fprintf(stderr, "%s %s: %s\n", prefix ? prefix : "kiln", name, clean ? clean : "");
  else
    fprintf(stderr, "%s: %s\n", prefix ? prefix : "kiln", clean ? clean : "");
  free(clean);
}

void kiln_log(struct kiln *k, enum kiln_log_level level, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  kiln_vlog(k, level, NULL, fmt, ap);
  va_end(ap);
}

static void human_bytes(uint64_t n, char *out, size_t size)
{
  const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = (double)n;
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    u++;
  }
  snprintf(out, size, u ? "%.1f %s" : "%.0f %s", v, units[u]);
}

void kiln_progress_draw(struct kiln *k, const char *prefix, uint64_t done, uint64_t total,
                        const char *label)
{
  if (!k->progress || k->verbosity < 0)
    return;
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  double now_s = (double)now.tv_sec + (double)now.tv_nsec / 1e9;
  if (!k->progress_visible || done < k->progress_first) {
    k->progress_start = now_s;
    k->progress_first = done;
  }
  long ms = (now.tv_sec - k->progress_last.tv_sec) * 1000 +
            (now.tv_nsec - k->progress_last.tv_nsec) / 1000000;
  if (ms < 100 && !(total && done >= total))
    return;
  k->progress_last = now;
  char d[32], t[32], r[32], eta[32] = "";
  human_bytes(done, d, sizeof d);
  double elapsed = now_s - k->progress_start;
  double rate = elapsed > 0.2 ? (double)(done - k->progress_first) / elapsed : 0;
  r[0] = '\0';
  if (rate > 0) {
    human_bytes((uint64_t)rate, r, sizeof r);
    strcat(r, "/s");
  }
  if (total) {
    human_bytes(total, t, sizeof t);
    if (rate > 0 && done < total) {
      long left = (long)((double)(total - done) / rate + 0.5);
      snprintf(eta, sizeof eta, " ETA %ld:%02ld", left / 60, left % 60);
    }
    int pct = (int)(done * 100 / total);
    int filled = pct / 5;
    fprintf(stderr, "\r\033[K%s: %s [%.*s%*s] %3d%% %s / %s %s%s", prefix, label ? label : "",
            filled, "####################", 20 - filled, "", pct, d, t, r, eta);
  } else {
    fprintf(stderr, "\r\033[K%s: %s %s %s", prefix, label ? label : "", d, r);
  }
  fflush(stderr);
  k->progress_visible = 1;
}

void kiln_secret(struct kiln *k, const char *secret)
{
  kiln_secret_add(k, secret);
}

void kiln_progress(struct kiln *k, const char *prefix, uint64_t done, uint64_t total,
                   const char *label)
{
  kiln_progress_draw(k, prefix, done, total, label);
}

void kiln_progress_end(struct kiln *k)
{
  kiln_progress_clear(k);
}
