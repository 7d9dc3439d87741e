/* Which EC2 instance types the deployment's region and zones offer: setup refuses a region with no
 * Nitro Enclave-capable type before creating anything, deploy refuses a sized type that none of
 * the deployment's zones offers (instead of an Auto Scaling group that never starts). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "byoc.h"
#include "util/buf.h"

/* Nitro Enclave-capable general purpose and compute types, the most widely offered first. */
static const char *const enclave_types[] = {"m5.xlarge",  "c5.xlarge",  "m6i.xlarge", "c6i.xlarge",
                                            "m6a.xlarge", "c6a.xlarge", "m7i.xlarge", "c7i.xlarge",
                                            "r5.xlarge",  "m5a.xlarge", NULL};
/* The Graviton (aarch64) ones, for kiln.json /arch "aarch64". */
static const char *const enclave_types_aarch64[] = {"m6g.xlarge", "c6g.xlarge", "m7g.xlarge",
                                                    "c7g.xlarge", "r6g.xlarge", NULL};

/* DescribeInstanceTypeOfferings for `types` (NULL-terminated) by region or availability zone. */
static kiln_err offered(struct kiln_awsenv *env, const char *location_type,
                        const char *const *types, struct kiln_xml **doc, struct kiln_error *err)
{
  struct kiln_aws_params p = {0};
  kiln_aws_params_add(&p, "LocationType", location_type);
  kiln_aws_params_add(&p, "Filter.1.Name", "instance-type");
  for (int i = 0; types[i]; i++) {
    char key[32];
    snprintf(key, sizeof key, "Filter.1.Value.%d", i + 1);
    kiln_aws_params_add(&p, key, types[i]);
  }
  kiln_err rc = kiln_awsenv_read(env, "ec2", "DescribeInstanceTypeOfferings", &p, doc, err);
  kiln_aws_params_clear(&p);
  return rc;
}

kiln_err kiln_offerings_enclave_type(struct kiln_awsenv *env, const char **type,
                                     struct kiln_error *err)
{
  struct kiln_xml *doc = NULL;
  *type = NULL;
  const cJSON *arch = cJSON_GetObjectItemCaseSensitive(env->config, "arch");
  int aarch64 = cJSON_IsString(arch) && strcmp(arch->valuestring, "aarch64") == 0;
  const char *const *types = aarch64 ? enclave_types_aarch64 : enclave_types;
  kiln_err rc = offered(env, "region", types, &doc, err);
  for (int i = 0; rc == KILN_OK && types[i] && !*type; i++)
    for (const struct kiln_xml *it = kiln_awsenv_items(doc, "instanceTypeOfferingSet"); it;
         it = kiln_xml_next_same(it))
      if (kiln_xml_text(it, "instanceType") &&
          strcmp(kiln_xml_text(it, "instanceType"), types[i]) == 0)
        *type = types[i];
  kiln_xml_free(doc);
  if (rc == KILN_OK && !*type)
    rc = kiln_error_set(
        err, KILN_E_UNSUPPORTED,
        "region %s offers none of the Nitro Enclave-capable %s instance types "
        "(%s): set AWS_REGION or /aws/region in kiln.json to a region that does; "
        "nothing was created",
        env->dep.region ? env->dep.region : "(default)", aarch64 ? "Graviton" : "x86_64",
        aarch64 ? "m6g, c6g, m7g, c7g, r6g" : "m5, c5, m6i, c6i, m6a, c6a, m7i, c7i, r5, m5a");
  return rc;
}

kiln_err kiln_offerings_check_zones(struct kiln_awsenv *env, const struct kiln_network *net,
                                    const char *type, struct kiln_error *err)
{
  const char *types[] = {type, NULL};
  struct kiln_xml *doc = NULL;
  struct kiln_buf zones = KILN_BUF_INIT;
  int usable = 0;
  kiln_err rc = offered(env, "availability-zone", types, &doc, err);
  for (size_t i = 0; rc == KILN_OK && i < net->nsubnets; i++) {
    kiln_buf_printf(&zones, "%s%s", i ? ", " : "", net->subnet_azs[i]);
    for (const struct kiln_xml *it = kiln_awsenv_items(doc, "instanceTypeOfferingSet"); it;
         it = kiln_xml_next_same(it))
      usable |= kiln_xml_text(it, "location") &&
                strcmp(kiln_xml_text(it, "location"), net->subnet_azs[i]) == 0;
  }
  kiln_xml_free(doc);
  if (rc == KILN_OK && !usable && net->nsubnets > 0)
    rc = kiln_error_set(err, KILN_E_UNSUPPORTED,
                        "instance type %s (chosen by sizing) is not offered in the deployment's "
                        "zones (%s) of %s: pick another family with /size/family in kiln.json, "
                        "or deploy in a region that offers it",
                        type, kiln_buf_str(&zones),
                        env->dep.region ? env->dep.region : "this region");
  kiln_buf_free(&zones);
  return rc;
}
