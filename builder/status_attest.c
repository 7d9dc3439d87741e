/* `kiln status`'s attestation line per instance: each instance's public address (EC2
 * DescribeInstances), its enclave's attestation document fetched from kiln-host's
 * /enclave/attestation_port with a fresh nonce and a short timeout, verified by libkiln-eif
 * against the PCRs recorded with the release the instance runs (its kiln:pcr* tags, else the
 * deployment's), so status says "attested: PCRs match build X" or names the failing check. */
#include "status_attest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>

#include <kiln/attestation.h>
#include <kiln/enclave_runtime.h>

#include "attest_fetch.h"
#include "util/buf.h"
#include "util/fs.h"
#include "util/hash.h"

#define FETCH_TIMEOUT_S 3
#define MAX_SKEW_MS (5LL * 60 * 1000)
#define NONCE_BYTES 32

/* What one instance is: its address and the release it was launched with. */
struct instance {
  char id[32];
  char address[64]; /* public IPv4, else public DNS name; "" when it has none */
  char eif_key[256];
  struct kiln_eif_pcrs pcrs;
  int has_pcrs;
};

static void copy(char *dst, size_t n, const char *src)
{
  snprintf(dst, n, "%s", src ? src : "");
}

static const char *string_of(const cJSON *o, const char *key)
{
  return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, key));
}

/* The deployment's PCRs (status's "measurements") as the default expectation. */
static int pcrs_from_meta(const cJSON *meta, struct kiln_eif_pcrs *out)
{
  const cJSON *m = cJSON_GetObjectItemCaseSensitive(meta, "measurements");
  memset(out, 0, sizeof *out);
  if (!string_of(m, "PCR0") || !string_of(m, "PCR1") || !string_of(m, "PCR2"))
    return 0;
  copy(out->pcr0, sizeof out->pcr0, string_of(m, "PCR0"));
  copy(out->pcr1, sizeof out->pcr1, string_of(m, "PCR1"));
  copy(out->pcr2, sizeof out->pcr2, string_of(m, "PCR2"));
  copy(out->pcr8, sizeof out->pcr8, string_of(m, "PCR8"));
  out->hash = KILN_EIF_SHA384;
  return 1;
}

/* One of the status document's instance_details (the aws stage's DescribeInstances): its
 * address and the release the launch template tagged it with. */
static void read_instance(const cJSON *o, struct instance *in)
{
  const cJSON *m = cJSON_GetObjectItemCaseSensitive(o, "measurements");
  copy(in->id, sizeof in->id, string_of(o, "id"));
  copy(in->address, sizeof in->address, string_of(o, "public_address"));
  copy(in->eif_key, sizeof in->eif_key, string_of(o, "eif_key"));
  copy(in->pcrs.pcr0, sizeof in->pcrs.pcr0, string_of(m, "PCR0"));
  copy(in->pcrs.pcr1, sizeof in->pcrs.pcr1, string_of(m, "PCR1"));
  copy(in->pcrs.pcr2, sizeof in->pcrs.pcr2, string_of(m, "PCR2"));
  copy(in->pcrs.pcr8, sizeof in->pcrs.pcr8, string_of(m, "PCR8"));
  in->has_pcrs = in->pcrs.pcr0[0] && in->pcrs.pcr1[0] && in->pcrs.pcr2[0];
  in->pcrs.hash = KILN_EIF_SHA384;
}

static int64_t now_ms(void)
{
  struct timespec t;
  clock_gettime(CLOCK_REALTIME, &t);
  return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* Fetch and verify one instance's document; the outcome as {instance, address, url, attested,
 * result, failed: [check names]}. */
static cJSON *attest_one(const struct instance *in, unsigned port,
                         const struct kiln_attestation_root *root, const struct kiln_eif_pcrs *want,
                         const char *build)
{
  cJSON *o = cJSON_CreateObject(), *failed = cJSON_CreateArray();
  struct kiln_buf url = KILN_BUF_INIT, bytes = KILN_BUF_INIT, result = KILN_BUF_INIT;
  struct kiln_error e = KILN_ERROR_INIT;
  struct kiln_attestation_doc *doc = NULL;
  struct kiln_attestation_report report = {NULL, 0, 0};
  uint8_t nonce[NONCE_BYTES];
  char hex[2 * NONCE_BYTES + 1];
  int attested = 0;
  cJSON_AddStringToObject(o, "instance", in->id);
  cJSON_AddStringToObject(o, "address", in->address);
  kiln_buf_printf(&url, "http://%s:%u/attestation", in->address, port);
  if (!in->address[0]) {
    kiln_buf_puts(&result, "not checked: the instance has no public address");
  } else if (RAND_bytes(nonce, sizeof nonce) != 1) {
    kiln_buf_puts(&result, "not checked: no random nonce");
  } else {
    cJSON_AddStringToObject(o, "url", kiln_buf_str(&url));
    kiln_hex_encode(nonce, sizeof nonce, hex);
    if (kiln_attest_fetch(kiln_buf_str(&url), hex, FETCH_TIMEOUT_S, KILN_ATTESTATION_MAX_DOC,
                          &bytes, &e) != KILN_OK) {
      kiln_buf_printf(&result, "unreachable: %s", kiln_error_msg(&e));
      cJSON_AddItemToArray(failed, cJSON_CreateString("fetch"));
    } else if (kiln_attestation_parse((const uint8_t *)bytes.data, bytes.len, &doc, &e) !=
               KILN_OK) {
      kiln_buf_printf(&result, "not attested: parse: %s", kiln_error_msg(&e));
      cJSON_AddItemToArray(failed, cJSON_CreateString("parse"));
    } else {
      struct kiln_attestation_policy policy = {root, now_ms(), MAX_SKEW_MS, nonce, sizeof nonce,
                                               want, 0};
      if (kiln_attestation_verify(doc, &policy, &report, &e) != KILN_OK) {
        kiln_buf_printf(&result, "not checked: %s", kiln_error_msg(&e));
      } else if (report.failures == 0) {
        attested = 1;
        kiln_buf_printf(&result, "attested: PCRs match build %s", build);
      } else {
        for (size_t i = 0; i < report.len; i++) {
          const struct kiln_attestation_check *c = &report.checks[i];
          if (c->result != KILN_ATTESTATION_FAIL)
            continue;
          cJSON_AddItemToArray(failed, cJSON_CreateString(c->name));
          if (cJSON_GetArraySize(failed) == 1)
            kiln_buf_printf(&result, "not attested: %s: %s", c->name, c->detail);
        }
        if (cJSON_GetArraySize(failed) > 1)
          kiln_buf_printf(&result, " (and %d more failed checks)", cJSON_GetArraySize(failed) - 1);
      }
    }
  }
  cJSON_AddBoolToObject(o, "attested", attested);
  cJSON_AddStringToObject(o, "build", build);
  cJSON_AddStringToObject(o, "result", kiln_buf_str(&result));
  cJSON_AddItemToObject(o, "failed_checks", failed);
  kiln_attestation_report_clear(&report);
  kiln_attestation_doc_free(doc);
  kiln_buf_free(&url);
  kiln_buf_free(&bytes);
  kiln_buf_free(&result);
  kiln_error_clear(&e);
  return o;
}

/* The trust anchor: root_file (a test CA, announced loudly), else the pinned AWS Nitro root. */
static kiln_err load_root(struct kiln *k, const char *root_file,
                          struct kiln_attestation_root **root, struct kiln_error *err)
{
  if (root_file) {
    fprintf(stderr, "kiln status: trust anchor: %s, not the AWS Nitro root\n", root_file);
    return kiln_attestation_root_load(root_file, NULL, root, err);
  }
  char *path = kiln_path_join(kiln_share_dir(k), "attestation/aws-nitro-root-g1.pem");
  kiln_err rc = path ? kiln_attestation_root_load(path, KILN_ATTESTATION_AWS_ROOT_SHA256, root, err)
                     : kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  free(path);
  return rc;
}

int kiln_status_attest(struct kiln_cli *cli, struct kiln *k, const char *root_file, cJSON *meta)
{
  struct kiln_enclave_runtime rt;
  struct kiln_error e = KILN_ERROR_INIT;
  struct kiln_attestation_root *root = NULL;
  const cJSON *ids = cJSON_GetObjectItemCaseSensitive(meta, "instance_details"), *item;
  struct instance instances[16];
  size_t n = sizeof instances / sizeof instances[0];
  struct kiln_eif_pcrs deployed;
  int have_deployed = pcrs_from_meta(meta, &deployed);
  const char *deployed_build = string_of(meta, "eif_key") ? string_of(meta, "eif_key") : "?";
  unsigned port = 0;
  int code = 0;
  memset(instances, 0, sizeof instances);
  if (kiln_enclave_runtime_load(kiln_config(k), &rt, &e) == KILN_OK) {
    port = rt.attestation_port;
    kiln_enclave_runtime_free(&rt);
  }
  kiln_error_clear(&e);
  /* an anchor given on the command line is checked (and announced) even when unused */
  if ((root_file || (port && cJSON_GetArraySize(ids) > 0)) &&
      load_root(k, root_file, &root, &e) != KILN_OK) {
    code = kiln_cli_fail_msg(cli, e.code, "%s", kiln_error_msg(&e));
    kiln_error_clear(&e);
    return code;
  }
  if (!port || cJSON_GetArraySize(ids) == 0) {
    if (!port)
      cJSON_AddStringToObject(meta, "attestation_note",
                              "not checked: kiln.json has no /enclave/attestation_port");
    kiln_attestation_root_free(root);
    return 0;
  }
  cJSON *list = cJSON_AddArrayToObject(meta, "attestation");
  size_t max = n;
  n = 0;
  cJSON_ArrayForEach(item, ids)
  {
    if (n < max)
      read_instance(item, &instances[n++]);
  }
  for (size_t i = 0; i < n; i++) {
    const struct kiln_eif_pcrs *want = instances[i].has_pcrs ? &instances[i].pcrs : &deployed;
    const char *build = instances[i].eif_key[0] ? instances[i].eif_key : deployed_build;
    if (!instances[i].has_pcrs && !have_deployed) {
      cJSON *o = cJSON_CreateObject();
      cJSON_AddStringToObject(o, "instance", instances[i].id);
      cJSON_AddBoolToObject(o, "attested", 0);
      cJSON_AddStringToObject(o, "result", "not checked: no PCRs recorded for its release");
      cJSON_AddItemToArray(list, o);
      continue;
    }
    cJSON_AddItemToArray(list, attest_one(&instances[i], port, root, want, build));
  }
  kiln_error_clear(&e);
  kiln_attestation_root_free(root);
  return 0;
}

void kiln_status_attest_print(const cJSON *meta)
{
  const char *note = string_of(meta, "attestation_note");
  const cJSON *a;
  if (note)
    printf("%-22s %s\n", "attestation", note);
  cJSON_ArrayForEach(a, cJSON_GetObjectItemCaseSensitive(meta, "attestation"))
  {
    const char *addr = string_of(a, "address");
    addr = addr && *addr ? addr : NULL;
    printf("%-22s %s%s%s%s %s\n", "attestation", string_of(a, "instance"), addr ? " (" : "",
           addr ? addr : "", addr ? ")" : "", string_of(a, "result"));
  }
}
