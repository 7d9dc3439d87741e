/* The multipart resume journal: one small JSON file per (bucket, key), written atomically. */
#include "journal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "util/fs.h"
#include "util/hash.h"

void kiln_s3_journal_clear(struct kiln_s3_journal *j)
{
  free(j->path);
  free(j->upload_id);
  memset(j, 0, sizeof(*j));
}

void kiln_s3_journal_remove(struct kiln_s3_journal *j)
{
  if (j->path)
    unlink(j->path);
  free(j->upload_id);
  j->upload_id = NULL;
}

static int same_string(const cJSON *doc, const char *name, const char *want)
{
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(doc, name);
  return cJSON_IsString(v) && strcmp(v->valuestring, want) == 0;
}

static int same_number(const cJSON *doc, const char *name, uint64_t want)
{
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(doc, name);
  return cJSON_IsNumber(v) && (uint64_t)v->valuedouble == want;
}

kiln_err kiln_s3_journal_open(const char *dir, const char *bucket, const char *key,
                              const char *sha256, uint64_t size, uint64_t part_size,
                              struct kiln_s3_journal *j, char **stale_upload_id,
                              struct kiln_error *err)
{
  char id[65], name[80];
  char *text = NULL;
  size_t len = 0;
  struct kiln_error read_err = KILN_ERROR_INIT;
  memset(j, 0, sizeof(*j));
  *stale_upload_id = NULL;
  if (!dir)
    return KILN_OK;
  size_t blen = strlen(bucket), klen = strlen(key);
  char *ident = malloc(blen + klen + 2);
  if (!ident)
    return kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  memcpy(ident, bucket, blen);
  ident[blen] = '\n';
  memcpy(ident + blen + 1, key, klen + 1);
  kiln_sha256_hex(ident, blen + klen + 1, id);
  free(ident);
  snprintf(name, sizeof(name), "upload-%.32s.json", id);
  kiln_err rc = kiln_mkdir_p(dir, 0700, err);
  if (rc != KILN_OK)
    return rc;
  if (!(j->path = kiln_path_join(dir, name)))
    return kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  if (kiln_read_file(j->path, 1 << 16, &text, &len, &read_err) != KILN_OK) {
    kiln_error_clear(&read_err);
    return KILN_OK; /* no journal (or unreadable: start over) */
  }
  cJSON *doc = cJSON_ParseWithLength(text, len);
  free(text);
  const cJSON *upload = cJSON_GetObjectItemCaseSensitive(doc, "upload_id");
  if (doc && cJSON_IsString(upload) && same_string(doc, "bucket", bucket) &&
      same_string(doc, "key", key)) {
    int same = same_string(doc, "sha256", sha256) && same_number(doc, "size", size) &&
               same_number(doc, "part_size", part_size);
    char *copy = strdup(upload->valuestring);
    if (same)
      j->upload_id = copy;
    else
      *stale_upload_id = copy;
  }
  cJSON_Delete(doc);
  return KILN_OK;
}

kiln_err kiln_s3_journal_record(struct kiln_s3_journal *j, const char *bucket, const char *key,
                                const char *sha256, uint64_t size, uint64_t part_size,
                                const char *upload_id, struct kiln_error *err)
{
  if (!j->path)
    return KILN_OK;
  cJSON *doc = cJSON_CreateObject();
  cJSON_AddStringToObject(doc, "bucket", bucket);
  cJSON_AddStringToObject(doc, "key", key);
  cJSON_AddStringToObject(doc, "sha256", sha256);
  cJSON_AddNumberToObject(doc, "size", (double)size);
  cJSON_AddNumberToObject(doc, "part_size", (double)part_size);
  cJSON_AddStringToObject(doc, "upload_id", upload_id);
  char *text = cJSON_Print(doc);
  cJSON_Delete(doc);
  if (!text)
    return kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  kiln_err rc = kiln_write_file_atomic(j->path, text, strlen(text), 0600, err);
  free(text);
  if (rc == KILN_OK) {
    free(j->upload_id);
    j->upload_id = strdup(upload_id);
  }
  return rc;
}
