/* Running a Dockerfile build on the Docker daemon: the context tar streamed to POST /build
 * (classic builder), its JSON message stream turned into log lines or progress, a failing step
 * turned into one error naming the Dockerfile line with the step's last output lines, and an
 * interrupt turned into a closed connection, which makes the daemon cancel the build. */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "build.h"
#include "daemon.h"
#include "util/fs.h"
#include "util/json.h"

#define BUILD_TAIL_LINES 10
#define BUILD_MAX_MESSAGE (4u << 20)

struct build_stream {
  const struct img_source_env *env;
  int tty;
  struct kiln_buf pending; /* bytes of an incomplete JSON message */
  struct kiln_buf line;    /* an incomplete output line */
  unsigned step, steps;    /* "Step k/N" */
  char *step_text;
  char *tail[BUILD_TAIL_LINES]; /* the current step's last output lines (ring) */
  unsigned ntail;
  char *image_id;
  char *built; /* "Successfully built ID" (daemons without the aux message, e.g. podman) */
  char *error;
  int too_big;
  int in_escape; /* inside an ANSI escape sequence (the daemon colours RUN's stderr) */
};

static void tail_clear(struct build_stream *b)
{
  for (unsigned i = 0; i < BUILD_TAIL_LINES; i++) {
    free(b->tail[i]);
    b->tail[i] = NULL;
  }
  b->ntail = 0;
}

/* Docker's own bookkeeping lines, not output of the Dockerfile's commands. */
static int is_chatter(const char *line)
{
  return strncmp(line, " ---> ", 6) == 0 ||
         strncmp(line, "Removing intermediate container", 31) == 0;
}

/* One complete output line of the build. */
static void on_line(struct build_stream *b, const char *line)
{
  unsigned k, n;
  int pos = 0, step = 0;
  if (sscanf(line, "Step %u/%u :%n", &k, &n, &pos) == 2 && pos > 0) {
    b->step = k;
    b->steps = n;
    free(b->step_text);
    b->step_text = strdup(line + pos + (line[pos] == ' '));
    tail_clear(b);
    step = 1;
  } else if (strncmp(line, "Successfully built ", 19) == 0) {
    free(b->built);
    b->built = strndup(line + 19, strcspn(line + 19, " "));
  } else if (strstr(line, "build-args [SOURCE_DATE_EPOCH] were not consumed")) {
    return; /* kiln always passes it; a Dockerfile need not use it */
  } else if (!is_chatter(line)) {
    free(b->tail[b->ntail % BUILD_TAIL_LINES]);
    b->tail[b->ntail % BUILD_TAIL_LINES] = strdup(line);
    b->ntail++;
  }
  if (b->tty && b->env->progress) {
    /* a terminal shows one line: the step and its newest output line */
    char label[120];
    if (is_chatter(line))
      return;
    snprintf(label, sizeof(label), "docker build step %u/%u: %.80s", b->step, b->steps,
             step && b->step_text ? b->step_text : line);
    b->env->progress(b->env->log_ctx, b->step ? b->step - 1 : 0, b->steps, label);
  } else if (b->env->log) {
    b->env->log(b->env->log_ctx, "docker build: %s", line);
  }
}

static void on_stream_text(struct build_stream *b, const char *text)
{
  for (const char *p = text; *p; p++) {
    if (*p == '\x1b' || b->in_escape) {
      /* ESC [ parameters final-byte: drop it, the log is plain text */
      b->in_escape = *p == '\x1b' || *p == '[' || !(*p >= 0x40 && *p <= 0x7e);
      continue;
    }
    if (*p == '\n' || *p == '\r') {
      if (b->line.len)
        on_line(b, b->line.data);
      kiln_buf_reset(&b->line);
    } else if (b->line.len < 4096) {
      kiln_buf_putc(&b->line, *p);
    }
  }
}

/* One JSON message of the daemon's build answer. */
static void on_message(struct build_stream *b, const char *text, size_t len)
{
  cJSON *m = cJSON_ParseWithLength(text, len);
  if (!m)
    return;
  const cJSON *stream = cJSON_GetObjectItemCaseSensitive(m, "stream");
  const cJSON *aux = cJSON_GetObjectItemCaseSensitive(m, "aux");
  const cJSON *error = cJSON_GetObjectItemCaseSensitive(m, "error");
  const cJSON *detail = cJSON_GetObjectItemCaseSensitive(m, "errorDetail");
  const cJSON *status = cJSON_GetObjectItemCaseSensitive(m, "status");
  const cJSON *id = cJSON_GetObjectItemCaseSensitive(aux, "ID");
  if (cJSON_IsString(stream))
    on_stream_text(b, stream->valuestring);
  if (cJSON_IsString(id)) {
    free(b->image_id);
    b->image_id = strdup(id->valuestring);
  }
  const cJSON *msg = cJSON_GetObjectItemCaseSensitive(detail, "message");
  if (!cJSON_IsString(msg))
    msg = error;
  if (!cJSON_IsString(msg)) /* an HTTP error answer: {"message": ...} */
    msg = cJSON_GetObjectItemCaseSensitive(m, "message");
  if (cJSON_IsString(msg) && !b->error)
    b->error = strdup(msg->valuestring);
  if (cJSON_IsString(status) && b->env->log)
    b->env->log(b->env->log_ctx, "docker build: %s", status->valuestring);
  cJSON_Delete(m);
}

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
  struct build_stream *b = ud;
  size_t len = sz * n;
  if (b->pending.len + len > BUILD_MAX_MESSAGE) {
    b->too_big = 1;
    return 0;
  }
  if (kiln_buf_append(&b->pending, p, len))
    return 0;
  size_t start = 0;
  for (size_t i = 0; i < b->pending.len; i++)
    if (b->pending.data[i] == '\n') {
      on_message(b, b->pending.data + start, i - start);
      start = i + 1;
    }
  memmove(b->pending.data, b->pending.data + start, b->pending.len - start);
  b->pending.len -= start;
  b->pending.data[b->pending.len] = '\0';
  return len;
}

static int on_xfer(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                   curl_off_t ulnow)
{
  const struct build_stream *b = ud;
  (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
  /* a non-zero return aborts the transfer: the closed connection cancels the daemon's build */
  return b->env->cancelled && b->env->cancelled(b->env->log_ctx);
}

/* The query string: classic builder, no tag, intermediate containers always removed. */
static kiln_err build_query(CURL *curl, const struct img_build_opts *o, struct kiln_buf *q)
{
  cJSON *args = cJSON_Duplicate(o->args, 1);
  if (!args)
    return KILN_E_NOMEM;
  if (!cJSON_GetObjectItemCaseSensitive(args, "SOURCE_DATE_EPOCH")) {
    char sde[24];
    snprintf(sde, sizeof(sde), "%lld", (long long)o->source_date_epoch);
    cJSON_AddStringToObject(args, "SOURCE_DATE_EPOCH", sde);
  }
  char *json = cJSON_PrintUnformatted(args);
  char *e_args = json ? curl_easy_escape(curl, json, 0) : NULL;
  char *e_file = curl_easy_escape(curl, o->dockerfile, 0);
  char *e_plat = curl_easy_escape(curl, o->platform, 0);
  char *e_target = o->target ? curl_easy_escape(curl, o->target, 0) : NULL;
  kiln_err rc = (e_args && e_file && e_plat && (!o->target || e_target)) ? KILN_OK : KILN_E_NOMEM;
  if (!rc)
    rc =
        kiln_buf_printf(q, "/build?version=1&rm=1&forcerm=1&dockerfile=%s&platform=%s&buildargs=%s",
                        e_file, e_plat, e_args);
  if (!rc && e_target)
    rc = kiln_buf_printf(q, "&target=%s", e_target);
  curl_free(e_args);
  curl_free(e_file);
  curl_free(e_plat);
  curl_free(e_target);
  free(json);
  cJSON_Delete(args);
  return rc;
}

/* The error of a failed build: the Dockerfile line of the failing step and its last output. */
static kiln_err step_error(const struct build_stream *b, const struct img_build_opts *o,
                           const struct img_dockerfile *df, struct kiln_error *err)
{
  struct kiln_buf m = KILN_BUF_INIT;
  if (b->step && b->step <= df->n)
    kiln_buf_printf(&m, "%s:%u: %s (step %u/%u) failed: ", o->dockerfile,
                    df->instrs[b->step - 1].line, b->step_text ? b->step_text : "", b->step,
                    b->steps);
  else
    kiln_buf_printf(&m, "docker build of %s failed: ", o->dockerfile);
  kiln_buf_puts(&m, b->error);
  unsigned n = b->ntail < BUILD_TAIL_LINES ? b->ntail : BUILD_TAIL_LINES;
  if (n)
    kiln_buf_puts(&m, "\nlast output lines of the step:");
  for (unsigned i = b->ntail - n; i < b->ntail; i++)
    kiln_buf_printf(&m, "\n  %s", b->tail[i % BUILD_TAIL_LINES]);
  kiln_error_set(err, KILN_E_INVALID, "%s", kiln_buf_str(&m));
  kiln_buf_free(&m);
  return KILN_E_INVALID;
}

static kiln_err post_build(struct img_daemon *d, const struct img_build_opts *o, FILE *tar,
                           curl_off_t size, struct build_stream *b, long *status,
                           struct kiln_error *err)
{
  struct kiln_buf q = KILN_BUF_INIT, url = KILN_BUF_INIT;
  struct curl_slist *hdr = NULL;
  kiln_err rc = build_query(d->curl, o, &q);
  if (rc)
    return kiln_error_set(err, rc, "out of memory");
  img_daemon_prepare(d, q.data, &url);
  hdr = curl_slist_append(hdr, "Content-Type: application/x-tar");
  hdr = curl_slist_append(hdr, "Expect:");
  curl_easy_setopt(d->curl, CURLOPT_HTTPHEADER, hdr);
  curl_easy_setopt(d->curl, CURLOPT_POST, 1L);
  curl_easy_setopt(d->curl, CURLOPT_READDATA, tar);
  curl_easy_setopt(d->curl, CURLOPT_POSTFIELDSIZE_LARGE, size);
  curl_easy_setopt(d->curl, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(d->curl, CURLOPT_WRITEDATA, b);
  curl_easy_setopt(d->curl, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(d->curl, CURLOPT_XFERINFOFUNCTION, on_xfer);
  curl_easy_setopt(d->curl, CURLOPT_XFERINFODATA, b);
  CURLcode cc = curl_easy_perform(d->curl);
  *status = 0;
  curl_easy_getinfo(d->curl, CURLINFO_RESPONSE_CODE, status);
  if (cc == CURLE_ABORTED_BY_CALLBACK)
    rc = kiln_error_set(err, KILN_E_CANCELLED,
                        "interrupted: the connection to the Docker daemon was closed, which "
                        "cancels its build");
  else if (cc == CURLE_WRITE_ERROR && b->too_big)
    rc = kiln_error_set(err, KILN_E_REMOTE, "the Docker daemon sent a build message over 4 MiB");
  else if (cc != CURLE_OK)
    rc = img_daemon_transfer_error(d, cc, err);
  curl_slist_free_all(hdr);
  kiln_buf_free(&q);
  kiln_buf_free(&url);
  return rc;
}

static kiln_err locate_bases(struct img_daemon *d, const cJSON *names, cJSON **bases,
                             struct kiln_error *err)
{
  const cJSON *n;
  *bases = cJSON_CreateObject();
  if (!*bases)
    return kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  cJSON_ArrayForEach(n, names)
  {
    char *id = NULL;
    kiln_err rc = img_daemon_image_id(d, n->valuestring, &id, err);
    if (rc && rc != KILN_E_NOT_FOUND)
      return rc;
    cJSON_AddStringToObject(*bases, n->valuestring, id ? id : "absent");
    free(id);
  }
  return KILN_OK;
}

kiln_err img_build_run(const struct img_build_opts *o, const struct img_source_env *env, int tty,
                       char **image_id, cJSON **bases, struct kiln_error *err)
{
  struct img_daemon d;
  struct img_dockerfile df;
  struct build_stream b = {.env = env, .tty = tty};
  char *tar_path = NULL, *digest = NULL, *path = NULL, *text = NULL;
  cJSON *names = NULL;
  FILE *tar = NULL;
  struct stat st;
  long status = 0;
  size_t len = 0;
  memset(&df, 0, sizeof(df));
  *image_id = NULL;
  *bases = NULL;
  kiln_err rc = img_daemon_open(&d, err);
  if (!rc)
    rc = img_build_context(o, env, &tar_path, &digest, err);
  if (!rc && (!(path = kiln_path_join(o->context, o->dockerfile)) ||
              (rc = kiln_read_file(path, 16u << 20, &text, &len, err)) ||
              (rc = img_dockerfile_parse(text, len, &df, err)) ||
              (rc = img_dockerfile_bases(&df, o->args, o->target, &names, err))))
    rc = rc ? rc : kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  if (!rc && (!(tar = fopen(tar_path, "rb")) || fstat(fileno(tar), &st) != 0))
    rc = kiln_error_set(err, KILN_E_IO, "cannot read %s", tar_path);
  if (!rc && env->log)
    env->log(env->log_ctx, "building %s/%s on the Docker daemon (%s%s%s)", o->context,
             o->dockerfile, o->platform, o->target ? ", target " : "", o->target ? o->target : "");
  if (!rc)
    rc = post_build(&d, o, tar, (curl_off_t)st.st_size, &b, &status, err);
  if (!rc) {
    on_stream_text(&b, "\n"); /* flush a last line without newline */
    if (status != 200) {
      rc = kiln_error_set(err, KILN_E_REMOTE, "the Docker daemon refused the build of %s: %s",
                          o->dockerfile, b.error ? b.error : kiln_buf_str(&b.pending));
    } else if (b.error) {
      rc = step_error(&b, o, &df, err);
    } else if (!b.image_id && b.built) {
      rc = img_daemon_image_id(&d, b.built, &b.image_id, err);
      if (rc == KILN_E_NOT_FOUND)
        rc =
            kiln_error_set(err, KILN_E_REMOTE, "the daemon built %s but does not know it", b.built);
    } else if (!b.image_id) {
      rc = kiln_error_set(err, KILN_E_REMOTE,
                          "the Docker daemon's build answer names no image id (is it a "
                          "classic-builder capable Docker Engine?)");
    }
  }
  if (!rc && !(rc = locate_bases(&d, names, bases, err)))
    *image_id = b.image_id, b.image_id = NULL;
  if (tar)
    fclose(tar);
  tail_clear(&b);
  free(b.step_text);
  free(b.image_id);
  free(b.built);
  free(b.error);
  kiln_buf_free(&b.pending);
  kiln_buf_free(&b.line);
  img_daemon_close(&d);
  img_dockerfile_clear(&df);
  cJSON_Delete(names);
  free(tar_path);
  free(digest);
  free(path);
  free(text);
  return rc;
}
