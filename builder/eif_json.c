/* EIF facts as JSON in nitro-cli's field names and order (describe-eif, build-enclave). */
#include "eif_json.h"

#include <string.h>

cJSON *kiln_eif_measurements_json(const struct kiln_eif_pcrs *pcrs)
{
  cJSON *doc = cJSON_CreateObject();
  cJSON_AddItemToObject(doc, "Measurements", (cJSON *)kiln_eif_pcrs_json(pcrs));
  return doc;
}

static void copy_member(cJSON *to, const cJSON *from, const char *key, int omit_null)
{
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(from, key);
  if (!v || (omit_null && cJSON_IsNull(v)))
    return;
  cJSON_AddItemToObject(to, key, cJSON_Duplicate(v, 1));
}

cJSON *kiln_eif_describe_json(const struct kiln_eif_info *info)
{
  cJSON *doc = cJSON_CreateObject();
  cJSON_AddNumberToObject(doc, "EifVersion", info->version);
  cJSON_AddItemToObject(doc, "Measurements", (cJSON *)kiln_eif_pcrs_json(&info->pcrs));
  cJSON_AddBoolToObject(doc, "IsSigned", info->has_signature);
  cJSON_AddBoolToObject(doc, "CheckCRC", info->crc_ok);
  if (info->has_signature)
    cJSON_AddBoolToObject(doc, "SignatureCheck", info->signature_ok);
  cJSON *meta = info->metadata ? cJSON_Parse(info->metadata) : NULL;
  copy_member(doc, meta, "ImageName", 0);
  copy_member(doc, meta, "ImageVersion", 0);
  if (meta) {
    cJSON *m = cJSON_AddObjectToObject(doc, "Metadata");
    const cJSON *build = cJSON_GetObjectItemCaseSensitive(meta, "BuildMetadata");
    static const char *const keys[] = {"BuildTime", "BuildTool", "BuildToolVersion",
                                       "OperatingSystem", "KernelVersion"};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
      copy_member(m, build, keys[i], 0);
    copy_member(m, meta, "DockerInfo", 1);
    copy_member(m, meta, "CustomMetadata", 1);
  }
  cJSON_Delete(meta);
  return doc;
}
