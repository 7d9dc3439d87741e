/* kiln status's table of the deployment's instances (status_fleet.c). */
#ifndef KILN_BUILDER_STATUS_FLEET_H
#define KILN_BUILDER_STATUS_FLEET_H

#include <cjson/cJSON.h>

/* One line per instance of the status document's "fleet": id, zone, launch template version,
 * health, target health, EIF; "parked" when the group runs none on purpose. */
void kiln_status_fleet_print(const cJSON *meta);

#endif
