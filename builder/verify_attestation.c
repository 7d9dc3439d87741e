/* `kiln verify --attestation FILE|URL`: prove that a live enclave runs the EIF this app builds.
 * Fetches (with a fresh nonce) or reads the document, gathers the expected PCRs (rebuild, --pcrs
 * or --eif), runs libkiln-eif's checks and prints one line per check, or all of them as JSON. */
#include "verify_attestation.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <kiln/attestation.h>
#include <kiln/eif.h>

#include "attest_fetch.h"
#include "util/buf.h"
#include "util/fs.h"
#include "util/hash.h"
#include "util/json.h"

#define NONCE_BYTES 32
#define DEFAULT_SKEW_MS (5LL * 60 * 1000)
#define DEFAULT_TIMEOUT_S 10

struct attest_args {
  const char *source; /* FILE or URL */
  const char *nonce_hex;
  const char *pcrs_file;
  const char *eif_file;
  const char *root_file;
  int64_t at_ms;
  int64_t max_skew_ms;
  long timeout_s;
  int allow_debug;
};

static int is_url(const char *s)
{
  return strncmp(s, "http://", 7) == 0 || strncmp(s, "https://", 8) == 0;
}

/* "90s", "5m", "2h", "1d" or plain seconds; -1 when not a duration. */
static int64_t parse_duration_ms(const char *text)
{
  char *end = NULL;
  double v = strtod(text, &end);
  if (end == text || v < 0)
    return -1;
  double unit = *end == '\0' || strcmp(end, "s") == 0 ? 1
                : strcmp(end, "m") == 0               ? 60
                : strcmp(end, "h") == 0               ? 3600
                : strcmp(end, "d") == 0               ? 86400
                                                      : -1;
  return unit < 0 ? -1 : (int64_t)(v * unit * 1000);
}

static int hex_decode(const char *hex, uint8_t **out, size_t *len)
{
  size_t n = strlen(hex);
  if (n % 2 || n / 2 > KILN_ATTESTATION_MAX_OPTIONAL)
    return 0;
  *out = malloc(n / 2 + 1);
  for (size_t i = 0; *out && i < n / 2; i++) {
    unsigned v = 0;
    if (!isxdigit((unsigned char)hex[2 * i]) || !isxdigit((unsigned char)hex[2 * i + 1]) ||
        sscanf(hex + 2 * i, "%2x", &v) != 1) {
      free(*out);
      *out = NULL;
      return 0;
    }
    (*out)[i] = (uint8_t)v;
  }
  *len = n / 2;
  return *out != NULL;
}

/* Parse argv; returns 0 or an exit code (usage errors printed). */
static int parse_args(struct kiln_cli *cli, struct attest_args *a)
{
  memset(a, 0, sizeof *a);
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  a->at_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
  a->max_skew_ms = DEFAULT_SKEW_MS;
  a->timeout_s = DEFAULT_TIMEOUT_S;
  for (int i = 1; i < cli->argc; i++) {
    const char *arg = cli->argv[i], *val = i + 1 < cli->argc ? cli->argv[i + 1] : NULL;
    int takes = 1;
    if (strcmp(arg, "--allow-debug") == 0) {
      a->allow_debug = 1;
      takes = 0;
    } else if (!val) {
      return kiln_cli_usage(cli, "%s needs a value (or is not an option of verify)", arg);
    } else if (strcmp(arg, "--attestation") == 0) {
      a->source = val;
    } else if (strcmp(arg, "--nonce") == 0) {
      a->nonce_hex = val;
    } else if (strcmp(arg, "--pcrs") == 0) {
      a->pcrs_file = val;
    } else if (strcmp(arg, "--eif") == 0) {
      a->eif_file = val;
    } else if (strcmp(arg, "--root") == 0) {
      a->root_file = val;
    } else if (strcmp(arg, "--at") == 0) {
      if (kiln_attestation_parse_time(val, &a->at_ms) != 0)
        return kiln_cli_usage(cli, "--at %s: use RFC 3339, e.g. 2022-11-09T23:00:00Z", val);
    } else if (strcmp(arg, "--max-skew") == 0) {
      if ((a->max_skew_ms = parse_duration_ms(val)) < 0)
        return kiln_cli_usage(cli, "--max-skew %s: use a duration such as 90s, 5m or 2h", val);
    } else if (strcmp(arg, "--timeout") == 0) {
      char *end = NULL;
      a->timeout_s = strtol(val, &end, 10);
      if (*end || a->timeout_s < 1 || a->timeout_s > 600)
        return kiln_cli_usage(cli, "--timeout %s: seconds from 1 to 600", val);
    } else {
      return kiln_cli_usage(cli, "unexpected argument \"%s\"", arg);
    }
    i += takes;
  }
  if (!a->source || !a->source[0])
    return kiln_cli_usage(cli, "--attestation needs a FILE or an http(s) URL");
  if (a->pcrs_file && a->eif_file)
    return kiln_cli_usage(cli, "give --pcrs or --eif, not both");
  if (a->nonce_hex && is_url(a->source))
    return kiln_cli_usage(cli, "--nonce is for a FILE; for a URL kiln sends a fresh random nonce");
  return 0;
}

/* nitro-cli's Measurements object (or the whole document holding one) -> PCRs. */
static int pcrs_from_json(const cJSON *j, struct kiln_eif_pcrs *out)
{
  const cJSON *m = cJSON_GetObjectItemCaseSensitive(j, "Measurements");
  if (cJSON_IsObject(m))
    j = m;
  memset(out, 0, sizeof *out);
  static const char *const keys[] = {"PCR0", "PCR1", "PCR2", "PCR8"};
  char *dest[] = {out->pcr0, out->pcr1, out->pcr2, out->pcr8};
  for (int i = 0; i < 4; i++) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, keys[i]);
    if (i < 3 && !cJSON_IsString(v))
      return 0;
    if (!cJSON_IsString(v))
      continue;
    size_t n = strlen(v->valuestring);
    if (n >= sizeof out->pcr0 || n == 0)
      return 0;
    memcpy(dest[i], v->valuestring, n + 1);
  }
  size_t n = strlen(out->pcr0);
  out->hash = n == 64 ? KILN_EIF_SHA256 : n == 128 ? KILN_EIF_SHA512 : KILN_EIF_SHA384;
  return 1;
}

/* The expected PCRs and where they come from; returns 0 or an exit code (error printed). */
static int expected_pcrs(struct kiln_cli *cli, const struct attest_args *a,
                         struct kiln_eif_pcrs *out, struct kiln_buf *from)
{
  struct kiln_error e = KILN_ERROR_INIT;
  int code = 0;
  if (a->eif_file) {
    struct kiln_eif_info info;
    if (kiln_eif_read(a->eif_file, 1, KILN_EIF_SHA384, &info, &e) != KILN_OK) {
      code = kiln_cli_fail_msg(cli, e.code, "%s", kiln_error_msg(&e));
    } else {
      *out = info.pcrs;
      kiln_buf_printf(from, "%s (PCRs recomputed from the file)", a->eif_file);
      kiln_eif_info_clear(&info);
    }
  } else if (a->pcrs_file) {
    cJSON *j = NULL;
    if (kiln_json_read_file(a->pcrs_file, 1u << 20, &j, &e) != KILN_OK)
      code = kiln_cli_fail_msg(cli, e.code, "%s", kiln_error_msg(&e));
    else if (!pcrs_from_json(j, out))
      code = kiln_cli_fail_msg(cli, KILN_E_INVALID,
                               "%s has no PCR0/PCR1/PCR2 hex strings (nitro-cli's form: "
                               "{\"Measurements\": {\"PCR0\": ...}} or the inner object)",
                               a->pcrs_file);
    else
      kiln_buf_printf(from, "%s", a->pcrs_file);
    cJSON_Delete(j);
  } else {
    /* Rebuild exactly as `kiln build` does (cache hits are fine: content-addressed). */
    struct kiln *k = kiln_cli_open_app(cli, 1, &code);
    struct kiln_pipeline *p = NULL;
    const struct kiln_artifact *eif = NULL;
    const char *stages[] = {"image", "kernel", "eif", NULL};
    if (k && !(code = kiln_cli_pipeline(cli, k, stages, &p)) &&
        !(code = kiln_cli_run_pipeline(cli, k, p, "eif", &eif))) {
      if (!pcrs_from_json(cJSON_GetObjectItemCaseSensitive(eif->meta, "measurements"), out))
        code = kiln_cli_fail_msg(cli, KILN_E_INTERNAL, "the rebuilt EIF has no measurements");
      else
        kiln_buf_printf(from, "a rebuild from kiln.json and kiln.lock");
    }
    kiln_pipeline_free(p);
    kiln_free(k);
  }
  kiln_error_clear(&e);
  return code;
}

static int is_base64_text(const char *text, size_t len)
{
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)text[i];
    if (!isalnum(c) && c != '+' && c != '/' && c != '=' && !isspace(c))
      return 0;
  }
  return len > 0;
}

/* Read FILE (raw CBOR, or base64 of it) into *out. */
static kiln_err read_document(const char *path, struct kiln_buf *out, struct kiln_error *err)
{
  char *text = NULL;
  size_t len = 0;
  kiln_err rc = kiln_read_file(path, 1u << 20, &text, &len, err);
  if (rc)
    return rc;
  if (!is_base64_text(text, len)) {
    rc = kiln_buf_append(out, text, len);
  } else { /* base64, as other tools publish documents; whitespace ignored */
    size_t n = 0, pad = 0;
    for (size_t i = 0; i < len; i++)
      if (!isspace((unsigned char)text[i]))
        text[n++] = text[i];
    for (size_t i = n; i > 0 && text[i - 1] == '='; i--)
      pad++;
    rc = kiln_buf_reserve(out, n / 4 * 3 + 3);
    int got = rc ? -1 : EVP_DecodeBlock((unsigned char *)out->data, (unsigned char *)text, (int)n);
    if (!rc && (got < 0 || n % 4 != 0 || pad > 2))
      rc = kiln_error_set(err, KILN_E_INVALID, "%s looks like base64 but does not decode", path);
    else if (!rc)
      out->len = (size_t)got - pad;
  }
  free(text);
  return rc;
}

static cJSON *check_json(const struct kiln_attestation_check *c)
{
  static const char *const results[] = {"ok", "fail", "skipped"};
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "name", c->name);
  cJSON_AddStringToObject(o, "result", results[c->result]);
  cJSON_AddStringToObject(o, "detail", c->detail);
  if (c->expected)
    cJSON_AddStringToObject(o, "expected", c->expected);
  if (c->actual)
    cJSON_AddStringToObject(o, "actual", c->actual);
  return o;
}

static void print_check(const struct kiln_attestation_check *c)
{
  static const char *const results[] = {"ok", "FAIL", "skipped"};
  printf("%-7s %-16s %s\n", results[c->result], c->name, c->detail);
  if (c->result == KILN_ATTESTATION_FAIL && c->expected && c->actual)
    printf("        %-16s expected %s\n        %-16s actual   %s\n", "", c->expected, "",
           c->actual);
}

static void add_doc_json(cJSON *out, const struct kiln_attestation_doc *d)
{
  char when[40];
  cJSON *o = cJSON_AddObjectToObject(out, "document");
  cJSON_AddStringToObject(o, "module_id", d->module_id);
  kiln_attestation_format_time((int64_t)d->timestamp_ms, when, sizeof when);
  cJSON_AddStringToObject(o, "timestamp", when);
  cJSON *pcrs = cJSON_AddObjectToObject(o, "pcrs");
  for (int i = 0; i < KILN_ATTESTATION_NUM_PCRS; i++)
    if (d->pcr_mask & (1u << i)) {
      char key[8], hex[2 * KILN_ATTESTATION_PCR_LEN + 1];
      snprintf(key, sizeof key, "PCR%d", i);
      kiln_hex_encode(d->pcrs[i], KILN_ATTESTATION_PCR_LEN, hex);
      cJSON_AddStringToObject(pcrs, key, hex);
    }
  const struct kiln_attestation_bytes *opt[] = {&d->nonce, &d->user_data, &d->public_key};
  static const char *const names[] = {"nonce", "user_data", "public_key"};
  for (int i = 0; i < 3; i++) {
    char *hex = opt[i]->present ? malloc(2 * opt[i]->len + 1) : NULL;
    if (hex) {
      kiln_hex_encode(opt[i]->data, opt[i]->len, hex);
      cJSON_AddStringToObject(o, names[i], hex);
    } else {
      cJSON_AddNullToObject(o, names[i]);
    }
    free(hex);
  }
  cJSON_AddNumberToObject(o, "cabundle_length", (double)d->cabundle_len);
}

/* What was verified, as text or JSON; stage/msg name a failure before the checks could run. */
struct outcome {
  const struct attest_args *args;
  const struct kiln_attestation_root *root;
  const char *root_path;
  const char *pcrs_from;
  const struct kiln_attestation_doc *doc;
  const struct kiln_attestation_report *report;
  const char *stage; /* "fetch", "read" or "parse" when the document never got checked */
  const char *msg;
};

static int print_outcome(struct kiln_cli *cli, const struct outcome *o)
{
  int failures = o->stage ? 1 : o->report->failures;
  char at[40];
  kiln_attestation_format_time(o->args->at_ms, at, sizeof at);
  if (cli->json) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "attestation", o->args->source);
    cJSON *anchor = cJSON_AddObjectToObject(j, "trust_anchor");
    cJSON_AddStringToObject(anchor, "file", o->root_path);
    cJSON_AddStringToObject(anchor, "subject", kiln_attestation_root_subject(o->root));
    cJSON_AddStringToObject(anchor, "sha256", kiln_attestation_root_sha256(o->root));
    cJSON_AddBoolToObject(anchor, "aws_nitro_root", o->args->root_file == NULL);
    cJSON_AddStringToObject(j, "verification_time", at);
    cJSON_AddStringToObject(j, "expected_pcrs_from", o->pcrs_from);
    if (o->doc)
      add_doc_json(j, o->doc);
    cJSON *checks = cJSON_AddArrayToObject(j, "checks");
    if (o->stage) {
      struct kiln_attestation_check c = {(char *)o->stage, KILN_ATTESTATION_FAIL, (char *)o->msg,
                                         NULL, NULL};
      cJSON_AddItemToArray(checks, check_json(&c));
    }
    for (size_t i = 0; !o->stage && i < o->report->len; i++)
      cJSON_AddItemToArray(checks, check_json(&o->report->checks[i]));
    cJSON_AddNumberToObject(j, "failures", failures);
    cJSON_AddBoolToObject(j, "verified", failures == 0);
    kiln_cli_print_json_ordered(j);
  } else {
    printf("attestation: %s\n", o->args->source);
    printf("trust anchor: %s%s (%s, SHA-256 %s)\n", o->root_path,
           o->args->root_file ? ", not the AWS Nitro root" : "",
           kiln_attestation_root_subject(o->root), kiln_attestation_root_sha256(o->root));
    printf("verification time: %s\n", at);
    printf("expected PCRs: %s\n", o->pcrs_from);
    if (o->doc) {
      char when[40];
      kiln_attestation_format_time((int64_t)o->doc->timestamp_ms, when, sizeof when);
      printf("document: module %s, time %s\n", o->doc->module_id, when);
    }
    if (o->stage)
      printf("%-7s %-16s %s\n", "FAIL", o->stage, o->msg);
    for (size_t i = 0; !o->stage && i < o->report->len; i++)
      print_check(&o->report->checks[i]);
    if (failures == 0)
      printf("verified: the enclave's attestation document holds every check\n");
  }
  if (failures) {
    struct kiln_buf names = KILN_BUF_INIT;
    if (o->stage)
      kiln_buf_puts(&names, o->stage);
    for (size_t i = 0; !o->stage && i < o->report->len; i++)
      if (o->report->checks[i].result == KILN_ATTESTATION_FAIL)
        kiln_buf_printf(&names, "%s%s", names.len ? ", " : "", o->report->checks[i].name);
    fprintf(stderr, "kiln verify: attestation not verified: %d check%s failed (%s)\n", failures,
            failures == 1 ? "" : "s", kiln_buf_str(&names));
    kiln_buf_free(&names);
  }
  return failures ? KILN_EXIT_FAILURE : KILN_EXIT_OK;
}

/* The trust anchor: --root FILE (announced loudly), else the vendored AWS root, pinned. */
static int load_root(struct kiln_cli *cli, const struct attest_args *a,
                     struct kiln_attestation_root **root, char **path)
{
  struct kiln_error e = KILN_ERROR_INIT;
  int code = 0;
  if (a->root_file) {
    *path = strdup(a->root_file);
    fprintf(stderr, "kiln verify: trust anchor: %s, not the AWS Nitro root\n", a->root_file);
  } else {
    struct kiln *k = kiln_cli_open(cli);
    if (!k)
      return KILN_EXIT_FAILURE;
    *path = kiln_path_join(kiln_share_dir(k), "attestation/aws-nitro-root-g1.pem");
    kiln_free(k);
  }
  if (!*path)
    return kiln_cli_fail_msg(cli, KILN_E_NOMEM, "out of memory");
  if (kiln_attestation_root_load(*path, a->root_file ? NULL : KILN_ATTESTATION_AWS_ROOT_SHA256,
                                 root, &e) != KILN_OK)
    code = kiln_cli_fail_msg(cli, e.code, "%s", kiln_error_msg(&e));
  kiln_error_clear(&e);
  return code;
}

/* The document's bytes and the nonce to expect (fresh for a URL, --nonce for a FILE). On
 * failure *stage names the step and err says why. */
static kiln_err obtain_document(const struct attest_args *a, struct kiln_buf *doc, uint8_t **nonce,
                                size_t *nonce_len, const char **stage, struct kiln_error *err)
{
  if (is_url(a->source)) {
    uint8_t fresh[NONCE_BYTES];
    char hex[2 * NONCE_BYTES + 1];
    *stage = "fetch";
    if (RAND_bytes(fresh, sizeof fresh) != 1 || !(*nonce = malloc(sizeof fresh)))
      return kiln_error_set(err, KILN_E_INTERNAL, "no random nonce (OpenSSL RAND_bytes)");
    memcpy(*nonce, fresh, sizeof fresh);
    *nonce_len = sizeof fresh;
    kiln_hex_encode(fresh, sizeof fresh, hex);
    return kiln_attest_fetch(a->source, hex, a->timeout_s, KILN_ATTESTATION_MAX_DOC, doc, err);
  }
  *stage = "read";
  if (a->nonce_hex && !hex_decode(a->nonce_hex, nonce, nonce_len))
    return kiln_error_set(err, KILN_E_INVALID, "--nonce must be hex of at most %d bytes",
                          KILN_ATTESTATION_MAX_OPTIONAL);
  return read_document(a->source, doc, err);
}

int kiln_verify_attestation(struct kiln_cli *cli)
{
  struct attest_args a;
  int code = parse_args(cli, &a);
  if (code)
    return code;
  struct kiln_attestation_root *root = NULL;
  struct kiln_attestation_doc *doc = NULL;
  struct kiln_attestation_report report = {NULL, 0, 0};
  struct kiln_eif_pcrs expected;
  struct kiln_buf from = KILN_BUF_INIT, bytes = KILN_BUF_INIT;
  struct kiln_error e = KILN_ERROR_INIT;
  char *root_path = NULL;
  uint8_t *nonce = NULL;
  size_t nonce_len = 0;
  struct outcome o = {&a, NULL, NULL, NULL, NULL, &report, NULL, NULL};
  if ((code = load_root(cli, &a, &root, &root_path)) ||
      (code = expected_pcrs(cli, &a, &expected, &from)))
    goto out;
  o.root = root;
  o.root_path = root_path;
  o.pcrs_from = kiln_buf_str(&from);
  /* After any rebuild, so the nonce is fresh when it goes out. */
  if (obtain_document(&a, &bytes, &nonce, &nonce_len, &o.stage, &e) == KILN_OK) {
    o.stage = "parse";
    if (kiln_attestation_parse((const uint8_t *)bytes.data, bytes.len, &doc, &e) == KILN_OK)
      o.stage = NULL;
  }
  if (o.stage) {
    o.msg = kiln_error_msg(&e);
  } else {
    struct kiln_attestation_policy policy = {root,      a.at_ms,   a.max_skew_ms, nonce,
                                             nonce_len, &expected, a.allow_debug};
    o.doc = doc;
    if (kiln_attestation_verify(doc, &policy, &report, &e) != KILN_OK) {
      code = kiln_cli_fail_msg(cli, e.code, "%s", kiln_error_msg(&e));
      goto out;
    }
  }
  code = print_outcome(cli, &o);
out:
  kiln_attestation_report_clear(&report);
  kiln_attestation_doc_free(doc);
  kiln_attestation_root_free(root);
  kiln_buf_free(&from);
  kiln_buf_free(&bytes);
  kiln_error_clear(&e);
  free(root_path);
  free(nonce);
  return code;
}
