/* `kiln status`'s attestation of each instance's enclave (status_attest.c). */
#ifndef KILN_BUILDER_STATUS_ATTEST_H
#define KILN_BUILDER_STATUS_ATTEST_H

#include "cli.h"

/* Add "attestation": [{instance, address, url, attested, build, result, failed_checks}] (or an
 * "attestation_note" saying why nothing was checked) to the status document meta. root_file: a
 * trust anchor replacing the AWS Nitro root (tests and forensics; announced on stderr), or NULL.
 * Returns 0, or an exit code when the anchor cannot be loaded (error printed). */
int kiln_status_attest(struct kiln_cli *cli, struct kiln *k, const char *root_file, cJSON *meta);
/* The attestation lines for people, after the deployment's fields. */
void kiln_status_attest_print(const cJSON *meta);

#endif
