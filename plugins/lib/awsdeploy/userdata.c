/* User data for the enclave's parent instance: install nitro-cli, size the allocator, fetch and
 * check the EIF, run the enclave and forward ports over vsock. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "deploy.h"
#include "util/buf.h"

/* The enclave's fixed vsock CID, so the parent's port forwarders know where to connect. */
#define KILN_ENCLAVE_CID 16

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
  cJSON_AddStringToObject(v, "vpc_id", vpc_id ? vpc_id : "*");
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
  struct kiln_buf ports = KILN_BUF_INIT;
  for (size_t i = 0; i < p->nports; i++) {
    if (p->ports[i] < 1 || p->ports[i] > 65535) {
      kiln_buf_free(&ports);
      return kiln_error_set(err, KILN_E_INVALID,
                            "kiln.json /aws/ports/%zu: %d is not a TCP port (1-65535)", i,
                            p->ports[i]);
    }
    kiln_buf_printf(&ports, "%s%d", i ? " " : "", p->ports[i]);
  }
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
  cJSON_AddStringToObject(v, "ports", kiln_buf_str(&ports));
  kiln_buf_free(&ports);
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
