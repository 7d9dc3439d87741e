/* EIF facts as JSON in nitro-cli's field names and order (shared by describe, eif-build, build). */
#ifndef KILN_BUILDER_EIF_JSON_H
#define KILN_BUILDER_EIF_JSON_H

#include <cjson/cJSON.h>

#include <kiln/eif.h>

/* {"Measurements": {"HashAlgorithm": "Sha384 { ... }", "PCR0": ..., "PCR1": ..., "PCR2": ...}} */
cJSON *kiln_eif_measurements_json(const struct kiln_eif_pcrs *pcrs);
/* nitro-cli describe-eif's document for a read EIF. */
cJSON *kiln_eif_describe_json(const struct kiln_eif_info *info);

#endif
