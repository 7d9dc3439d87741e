/* The toolchain as a stage sees it: kiln.json's /toolchain ("pinned", the default, or "host"),
 * the cache key part that names it, and kiln.lock's "toolchain" entry (which toolchain, its
 * packages, or the host compiler's identity). Shared by the kernel and eif stages. */
#ifndef KILN_STAGE_TOOLCHAIN_H
#define KILN_STAGE_TOOLCHAIN_H

#include <kiln/plugin.h>

#include "toolchain.h"

struct kiln_stage_toolchain {
  int pinned;               /* 0: the host's compiler (opt-in) */
  struct kiln_toolchain tc; /* when pinned */
  char *host_cc;            /* when host: the compiler command ("cc", $CC, or the host's
                               aarch64-linux-gnu-gcc for aarch64) */
};

/* "pinned" or "host" from kiln.json /toolchain (a string, or an object's "kind"); NULL when the
 * string is neither. */
const char *kiln_toolchain_kind(const cJSON *kiln_json);

/* The host's cross compiler for a non-x86_64 arch ("aarch64-linux-gnu-gcc"), NULL for x86_64:
 * what "toolchain": "host" builds aarch64 with ("pinned" uses share/toolchain/x86_64-aarch64.pins).
 */
const char *kiln_toolchain_cross_cc(const char *arch);

/* With "toolchain": "host", the host's cross compiler for arch must be on PATH: KILN_OK, or an
 * error naming it and its apt line (KILN_OK for x86_64). what: what needs it ("compiling the
 * aarch64 enclave kernel"). */
KILN_MUST_CHECK kiln_err kiln_toolchain_check_host_cross(const char *arch, const char *what,
                                                         struct kiln_error *err);

/* Add what names the toolchain to the step's cache key: the pins file's sha256, or the host
 * compiler's identity. */
KILN_MUST_CHECK kiln_err kiln_stage_toolchain_identify(struct kiln_stage_ctx *ctx,
                                                       const struct kiln_host *host,
                                                       const char *arch);

/* Prepare the toolchain this step builds with for arch and record it in kiln.lock. */
KILN_MUST_CHECK kiln_err kiln_stage_toolchain_open(struct kiln_stage_ctx *ctx,
                                                   const struct kiln_host *host, const char *arch,
                                                   struct kiln_stage_toolchain *st,
                                                   struct kiln_error *err);
void kiln_stage_toolchain_close(struct kiln_stage_toolchain *st);

#endif
