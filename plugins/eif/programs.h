/* kiln-init and kiln-agent, the enclave-side programs the bootstrap ramdisk measures, compiled at
 * pipeline time from the sources kiln ships (lib/kiln/enclave-src) with the pinned toolchain (or
 * the host's, when kiln.json asks), so their bytes never depend on how kiln itself was built. */
#ifndef KILN_EIF_PROGRAMS_H
#define KILN_EIF_PROGRAMS_H

#include <kiln/plugin.h>

#include "util/error.h"

/* Add the programs' inputs (sources, toolchain) to the step's cache key. */
KILN_MUST_CHECK kiln_err eif_programs_identify(struct kiln_stage_ctx *ctx,
                                               const struct kiln_host *host, const char *arch);

/* Build (or reuse, keyed by sources + toolchain + arch) kiln-init and kiln-agent for arch;
 * *init and *agent are their paths (caller frees). */
KILN_MUST_CHECK kiln_err eif_programs_build(struct kiln_stage_ctx *ctx,
                                            const struct kiln_host *host, const char *arch,
                                            char **init, char **agent, struct kiln_error *err);

#endif
