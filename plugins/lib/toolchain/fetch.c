/* Fetching pinned .debs without apt: the download directory, then /toolchain/debs, then each
 * mirror over HTTP(S) with libcurl (the mirror list from kiln.json, else the host's apt sources),
 * then the snapshot URL pattern. Every file is checked against its pinned size and sha256 before
 * it is kept; a failure on one mirror moves on to the next, and the error names each one. */
#define _GNU_SOURCE
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "toolchain.h"
#include "util/buf.h"
#include "util/fs.h"
#include "util/hash.h"

#define APT_SOURCES_DIR "/etc/apt/sources.list.d"
#define APT_SOURCES_LIST "/etc/apt/sources.list"

static kiln_err add_mirror(struct kiln_fetch_config *c, const char *url)
{
  size_t n = strlen(url);
  while (n && url[n - 1] == '/')
    n--;
  if (n == 0 || (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0 &&
                 strncmp(url, "file://", 7) != 0))
    return KILN_OK; /* cdrom:, mirror+file: and other apt schemes are not for us */
  for (size_t i = 0; i < c->mirror_count; i++)
    if (strlen(c->mirrors[i]) == n && strncmp(c->mirrors[i], url, n) == 0)
      return KILN_OK;
  char **grown = realloc(c->mirrors, (c->mirror_count + 1) * sizeof *grown);
  if (!grown)
    return KILN_E_NOMEM;
  c->mirrors = grown;
  if (!(c->mirrors[c->mirror_count] = strndup(url, n)))
    return KILN_E_NOMEM;
  c->mirror_count++;
  return KILN_OK;
}

/* "URIs: a b" lines of deb822 .sources files and "deb [opts] URI suite" lines of .list files. */
static void add_apt_file(struct kiln_fetch_config *c, const char *path, int deb822)
{
  FILE *f = fopen(path, "r");
  char line[4096];
  while (f && fgets(line, sizeof line, f)) {
    char *save = NULL, *t = strtok_r(line, " \t\r\n", &save);
    if (!t)
      continue;
    if (deb822 && strcasecmp(t, "URIs:") == 0) {
      while ((t = strtok_r(NULL, " \t\r\n", &save)))
        (void)add_mirror(c, t);
    } else if (!deb822 && strcmp(t, "deb") == 0) {
      while ((t = strtok_r(NULL, " \t\r\n", &save)) && t[0] == '[')
        while (t && !strchr(t, ']'))
          t = strtok_r(NULL, " \t\r\n", &save);
      if (t)
        (void)add_mirror(c, t);
    }
  }
  if (f)
    fclose(f);
}

static void add_apt_sources(struct kiln_fetch_config *c)
{
  add_apt_file(c, APT_SOURCES_LIST, 0);
  DIR *d = opendir(APT_SOURCES_DIR);
  struct dirent **names = NULL;
  int n = d ? scandir(APT_SOURCES_DIR, &names, NULL, alphasort) : 0;
  if (d)
    closedir(d);
  for (int i = 0; i < n; i++) {
    size_t l = strlen(names[i]->d_name);
    char *p = kiln_path_join(APT_SOURCES_DIR, names[i]->d_name);
    if (p && l > 8 && strcmp(names[i]->d_name + l - 8, ".sources") == 0)
      add_apt_file(c, p, 1);
    else if (p && l > 5 && strcmp(names[i]->d_name + l - 5, ".list") == 0)
      add_apt_file(c, p, 0);
    free(p);
    free(names[i]);
  }
  free(names);
}

kiln_err kiln_fetch_config_init(struct kiln_fetch_config *c, const cJSON *kiln_json,
                                const char *app_dir, const char *cache_dir, struct kiln_error *err)
{
  memset(c, 0, sizeof *c);
  const cJSON *t = cJSON_GetObjectItemCaseSensitive(kiln_json, "toolchain");
  const cJSON *mirrors = cJSON_GetObjectItemCaseSensitive(t, "mirrors");
  const cJSON *debs = cJSON_GetObjectItemCaseSensitive(t, "debs");
  const cJSON *snapshot = cJSON_GetObjectItemCaseSensitive(t, "snapshot");
  kiln_err rc = KILN_OK;
  const cJSON *m;
  if (cJSON_IsArray(mirrors)) {
    cJSON_ArrayForEach(m, mirrors)
    {
      if (!cJSON_IsString(m) || (strncmp(m->valuestring, "http://", 7) != 0 &&
                                 strncmp(m->valuestring, "https://", 8) != 0 &&
                                 strncmp(m->valuestring, "file://", 7) != 0)) {
        rc = kiln_error_set(err, KILN_E_INVALID,
                            "kiln.json /toolchain/mirrors: each mirror is an http(s):// or "
                            "file:// URL of a Debian archive root (https://MIRROR/debian)");
        break;
      }
      if (!rc)
        rc = add_mirror(c, m->valuestring);
    }
  } else {
    add_apt_sources(c);
  }
  if (!rc && cJSON_IsString(snapshot) && !(c->snapshot = strdup(snapshot->valuestring)))
    rc = KILN_E_NOMEM;
  if (!rc && cJSON_IsString(debs) &&
      !(c->debs_dir = kiln_path_absolute(app_dir, debs->valuestring)))
    rc = KILN_E_NOMEM;
  const char *dl = getenv("KILN_DOWNLOAD_DIR");
  if (!rc && !(c->downloads_dir = dl && *dl ? strdup(dl) : kiln_path_join(cache_dir, "downloads")))
    rc = KILN_E_NOMEM;
  if (rc)
    kiln_fetch_config_free(c);
  return rc;
}

void kiln_fetch_config_free(struct kiln_fetch_config *c)
{
  for (size_t i = 0; i < c->mirror_count; i++)
    free(c->mirrors[i]);
  free(c->mirrors);
  free(c->snapshot);
  free(c->debs_dir);
  free(c->downloads_dir);
  memset(c, 0, sizeof *c);
}

static const char *file_name(const struct kiln_pin *pin)
{
  const char *slash = strrchr(pin->path, '/');
  return slash ? slash + 1 : pin->path;
}

/* KILN_OK when path has the pinned size and sha256; otherwise an error naming the file. */
static kiln_err check_file(const struct kiln_pin *pin, const char *path, struct kiln_error *err)
{
  struct stat st;
  if (stat(path, &st) != 0)
    return kiln_error_set(err, KILN_E_NOT_FOUND, "%s: %s", path, strerror(errno));
  char sha[KILN_SHA256_HEX_LEN + 1];
  kiln_err rc = kiln_sha256_file(path, sha, NULL, err);
  if (rc)
    return rc;
  if (st.st_size != pin->size || strcmp(sha, pin->sha256) != 0)
    return kiln_error_set(err, KILN_E_INVALID,
                          "%s has sha256 %s (%lld bytes), but %s %s is pinned to %s (%lld bytes): "
                          "refused",
                          path, sha, (long long)st.st_size, pin->package, pin->version, pin->sha256,
                          pin->size);
  return KILN_OK;
}

struct download {
  FILE *f;
  long long written, limit;
};

static size_t on_data(char *data, size_t size, size_t n, void *arg)
{
  struct download *d = arg;
  size_t len = size * n;
  if (d->written + (long long)len > d->limit)
    return 0; /* larger than pinned: stop early */
  d->written += (long long)len;
  return fwrite(data, 1, len, d->f);
}

/* Download url to tmp; an error names the URL and what went wrong. */
static kiln_err download(const char *url, const char *tmp, long long limit, struct kiln_error *err)
{
  FILE *f = fopen(tmp, "wb");
  if (!f)
    return kiln_error_set(err, KILN_E_IO, "cannot write %s: %s", tmp, strerror(errno));
  struct download d = {f, 0, limit};
  CURL *e = curl_easy_init();
  kiln_err rc = KILN_OK;
  if (!e) {
    fclose(f);
    return kiln_error_set(err, KILN_E_NOMEM, "libcurl cannot start");
  }
  char msg[CURL_ERROR_SIZE] = "";
  curl_easy_setopt(e, CURLOPT_URL, url);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, &d);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, msg);
  curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(e, CURLOPT_MAXREDIRS, 5L);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, 20L);
  curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1024L);
  curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, 60L);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  CURLcode cc = curl_easy_perform(e);
  long status = 0;
  curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
  int closed = fclose(f);
  if (cc != CURLE_OK)
    rc = kiln_error_set(err, KILN_E_NETWORK, "%s: %s", url,
                        d.written >= limit && cc == CURLE_WRITE_ERROR ? "larger than pinned"
                        : msg[0]                                      ? msg
                                                                      : curl_easy_strerror(cc));
  else if (strncmp(url, "file://", 7) != 0 && status != 200)
    rc = kiln_error_set(err, KILN_E_REMOTE, "%s: HTTP %ld", url, status);
  else if (closed != 0)
    rc = kiln_error_set(err, KILN_E_IO, "cannot write %s: %s", tmp, strerror(errno));
  curl_easy_cleanup(e);
  return rc;
}

/* {path}, {file}, {package}, {version} in a snapshot pattern (caller frees). */
static char *expand_pattern(const char *pattern, const struct kiln_pin *pin)
{
  struct kiln_buf b = KILN_BUF_INIT;
  for (const char *p = pattern; *p;) {
    if (strncmp(p, "{path}", 6) == 0 && (p += 6))
      kiln_buf_puts(&b, pin->path);
    else if (strncmp(p, "{file}", 6) == 0 && (p += 6))
      kiln_buf_puts(&b, file_name(pin));
    else if (strncmp(p, "{package}", 9) == 0 && (p += 9))
      kiln_buf_puts(&b, pin->package);
    else if (strncmp(p, "{version}", 9) == 0 && (p += 9))
      kiln_buf_puts(&b, pin->version);
    else
      kiln_buf_putc(&b, *p++);
  }
  return kiln_buf_detach(&b);
}

/* Try one URL: download into a temporary file, verify, rename into place. */
static kiln_err try_url(const struct kiln_pin *pin, const char *url, const char *dest,
                        struct kiln_error *err)
{
  struct kiln_buf tmp = KILN_BUF_INIT;
  kiln_buf_printf(&tmp, "%s.part-%ld", dest, (long)getpid());
  kiln_err rc = download(url, tmp.data, pin->size, err);
  if (!rc && (rc = check_file(pin, tmp.data, err)) != KILN_OK)
    kiln_error_prefix(err, "from %s", url);
  if (!rc && rename(tmp.data, dest) != 0)
    rc = kiln_error_set(err, KILN_E_IO, "cannot rename %s: %s", tmp.data, strerror(errno));
  if (rc)
    unlink(tmp.data);
  kiln_buf_free(&tmp);
  return rc;
}

kiln_err kiln_pin_fetch(const struct kiln_pin *pin, const struct kiln_fetch_config *c, char **deb,
                        struct kiln_error *err)
{
  *deb = NULL;
  struct kiln_error e = KILN_ERROR_INIT;
  char *dest = kiln_path_join(c->downloads_dir, file_name(pin));
  kiln_err rc = dest ? kiln_mkdir_p(c->downloads_dir, 0755, err) : KILN_E_NOMEM;
  if (rc)
    goto out;
  /* Kept downloads were verified when kept; checked again since the cache is writable. */
  if (kiln_path_exists(dest)) {
    if (check_file(pin, dest, &e) == KILN_OK)
      goto found;
    unlink(dest);
    kiln_error_clear(&e);
  }
  if (c->debs_dir) {
    /* The offline directory is authoritative when given: a wrong file there is an error. */
    char *local = kiln_path_join(c->debs_dir, file_name(pin));
    if (local && kiln_path_exists(local)) {
      rc = check_file(pin, local, err);
      if (!rc) {
        free(dest);
        *deb = local;
        return KILN_OK;
      }
      kiln_error_prefix(err, "/toolchain/debs");
      free(local);
      goto out;
    }
    free(local);
  }
  struct kiln_buf tried = KILN_BUF_INIT;
  for (size_t i = 0; i <= c->mirror_count; i++) {
    char *url = NULL;
    if (i < c->mirror_count) {
      struct kiln_buf u = KILN_BUF_INIT;
      kiln_buf_printf(&u, "%s/%s", c->mirrors[i], pin->path);
      url = kiln_buf_detach(&u);
    } else if (c->snapshot) {
      url = expand_pattern(c->snapshot, pin);
    } else {
      break;
    }
    kiln_err r = url ? try_url(pin, url, dest, &e) : KILN_E_NOMEM;
    free(url);
    if (!r) {
      kiln_buf_free(&tried);
      kiln_error_clear(&e);
      goto found;
    }
    kiln_buf_printf(&tried, "\n  %s", kiln_error_msg(&e));
    kiln_error_clear(&e);
  }
  if (c->mirror_count == 0 && !c->snapshot)
    rc = kiln_error_set(err, KILN_E_NOT_FOUND,
                        "%s %s (%s) is not in the download cache%s%s and no mirror is known "
                        "(this host has no apt sources): set /toolchain/mirrors in kiln.json "
                        "(e.g. [\"https://MIRROR/debian\", \"https://MIRROR/debian-security\"]) "
                        "or /toolchain/debs to a directory holding the pinned .debs",
                        pin->package, pin->version, file_name(pin), c->debs_dir ? " nor in " : "",
                        c->debs_dir ? c->debs_dir : "");
  else
    rc = kiln_error_set(err, KILN_E_NETWORK,
                        "cannot fetch %s %s (%s); tried:%s\nset /toolchain/mirrors to a "
                        "reachable Debian archive, /toolchain/snapshot to an archive of old "
                        "versions, or /toolchain/debs to a directory holding the pinned .debs",
                        pin->package, pin->version, file_name(pin), kiln_buf_str(&tried));
  kiln_buf_free(&tried);
  goto out;
found:
  *deb = dest;
  return KILN_OK;
out:
  free(dest);
  kiln_error_clear(&e);
  return rc;
}
