/* kiln status: the deployment's instances one per line (launch template version, the group's
 * and the load balancer's view of their health, the EIF each runs), or that it is parked. */
#include "status_fleet.h"

#include <stdio.h>

static const char *text(const cJSON *o, const char *key, const char *fallback)
{
  const char *v = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, key));
  return v ? v : fallback;
}

void kiln_status_fleet_print(const cJSON *meta)
{
  const cJSON *fleet = cJSON_GetObjectItemCaseSensitive(meta, "fleet");
  if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(meta, "parked"))) {
    printf("parked: /aws/count is 0, no instance runs (set count and `kiln deploy` to resume)\n");
    return;
  }
  if (!cJSON_IsArray(fleet) || cJSON_GetArraySize(fleet) == 0)
    return;
  printf("%-20s %-11s %-7s %-12s %-10s %-13s %s\n", "INSTANCE", "ZONE", "VERSION", "STATE",
         "HEALTH", "TARGET", "EIF");
  const cJSON *m;
  cJSON_ArrayForEach(m, fleet)
  {
    const cJSON *version = cJSON_GetObjectItemCaseSensitive(m, "launch_template_version");
    char v[16] = "?";
    if (cJSON_IsNumber(version))
      snprintf(v, sizeof(v), "%d", version->valueint);
    printf("%-20s %-11s %-7s %-12s %-10s %-13s %.16s\n", text(m, "instance_id", "?"),
           text(m, "zone", "?"), v, text(m, "lifecycle", "?"), text(m, "health", "?"),
           text(m, "target_health", "-"), text(m, "eif_sha256", "?"));
  }
}
