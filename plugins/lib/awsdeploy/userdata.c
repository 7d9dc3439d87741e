/* User data for the enclave's parent instance: install nitro-cli, size the allocator, fetch and
 * check the EIF and kiln-host, and install the systemd units that run the enclave and kiln-host
 * (ports, egress, logs, attestation). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include <kiln/enclave_runtime.h>

#include "deploy.h"
#include "util/buf.h"

static int is_hex64(const char *s)
{
  if (!s || strlen(s) != 64)
    return 0;
  for (; *s; s++)
    if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
      return 0;
  return 1;
}

cJSON *kiln_policy_values(const struct kiln_deployment *d, const struct kiln_deployment_names *n,
                          const char *account_id, const char *vpc_id)
{
  cJSON *v = cJSON_CreateObject();
  cJSON_AddStringToObject(v, "deployment_id", d->id);
  cJSON_AddStringToObject(v, "tag_key", d->tag_key);
  cJSON_AddStringToObject(v, "region", d->region ? d->region : "us-east-1");
  cJSON_AddStringToObject(v, "account_id", account_id);
  if (vpc_id) /* without one, a template naming it does not render (no silent "*") */
    cJSON_AddStringToObject(v, "vpc_id", vpc_id);
  cJSON_AddStringToObject(v, "bucket", n->bucket);
  cJSON_AddStringToObject(v, "asg_name", n->asg);
  cJSON_AddStringToObject(v, "instance_role", n->instance_role);
  return v;
}

kiln_err kiln_userdata_render(const char *share_dir, const struct kiln_userdata_params *p,
                              char **script, char **base64, struct kiln_error *err)
{
  *script = NULL;
  if (base64)
    *base64 = NULL;
  if (!is_hex64(p->eif_sha256))
    return kiln_error_set(err, KILN_E_INVALID, "user data: the EIF's sha256 must be 64 hex digits");
  if (p->cpu_count < 1 || p->memory_mib < 64)
    return kiln_error_set(err, KILN_E_INVALID, "user data: enclave CPUs and memory must be sized");
  if (!is_hex64(p->kiln_host_sha256) || !p->kiln_host_key || !p->host_conf)
    return kiln_error_set(err, KILN_E_INVALID,
                          "user data: kiln-host's key, sha256 and configuration are needed");
  size_t conf_len = strlen(p->host_conf);
  unsigned char *conf64 = malloc(4 * ((conf_len + 2) / 3) + 1);
  if (!conf64)
    return kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  EVP_EncodeBlock(conf64, (const unsigned char *)p->host_conf, (int)conf_len);
  cJSON *v = cJSON_CreateObject();
  cJSON_AddStringToObject(v, "deployment_id", p->deployment_id);
  cJSON_AddStringToObject(v, "region", p->region);
  cJSON_AddStringToObject(v, "bucket", p->bucket);
  cJSON_AddStringToObject(v, "eif_key", p->eif_key);
  cJSON_AddStringToObject(v, "eif_sha256", p->eif_sha256);
  cJSON_AddNumberToObject(v, "cpu_count", p->cpu_count);
  cJSON_AddNumberToObject(v, "memory_mib", (double)p->memory_mib);
  cJSON_AddNumberToObject(v, "enclave_cid", KILN_ENCLAVE_CID);
  cJSON_AddStringToObject(v, "debug_flag", p->debug ? "--debug-mode" : "");
  cJSON_AddStringToObject(v, "kiln_host_key", p->kiln_host_key);
  cJSON_AddStringToObject(v, "kiln_host_sha256", p->kiln_host_sha256);
  cJSON_AddStringToObject(v, "host_conf_base64", (const char *)conf64);
  free(conf64);
  kiln_err rc = kiln_template_render_file(share_dir, "aws/userdata.sh.tmpl", v, script, err);
  cJSON_Delete(v);
  if (rc || !base64)
    return rc;
  size_t n = strlen(*script);
  unsigned char *out = malloc(4 * ((n + 2) / 3) + 1);
  if (!out) {
    free(*script);
    *script = NULL;
    return kiln_error_set(err, KILN_E_NOMEM, "out of memory");
  }
  EVP_EncodeBlock(out, (const unsigned char *)*script, (int)n);
  *base64 = (char *)out;
  return KILN_OK;
}
