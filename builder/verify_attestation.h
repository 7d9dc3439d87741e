/* `kiln verify --attestation FILE|URL` (the attestation half of cmd_verify.c). */
#ifndef KILN_BUILDER_VERIFY_ATTESTATION_H
#define KILN_BUILDER_VERIFY_ATTESTATION_H

#include "cli.h"

/* Run the attestation verification with the command's arguments; returns the exit code. */
int kiln_verify_attestation(struct kiln_cli *cli);

#endif
