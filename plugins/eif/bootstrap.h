/* The bootstrap ramdisk (first EIF ramdisk, measured into PCR1): init, kiln-agent and its
 * configuration, kernel modules and their load order, and /dev, as a deterministic newc cpio. */
#ifndef KILN_EIF_BOOTSTRAP_H
#define KILN_EIF_BOOTSTRAP_H

#include <stdint.h>

#include "util/error.h"

/* What goes into the bootstrap ramdisk. init_path: the init binary; modules_dir/order_path: the
 * kernel artifact's modules/ and modules.order (either may be absent; every module named in the
 * order file must exist); agent_path and agent_conf: kiln-agent and its configuration text as
 * /kiln-agent and /kiln-agent.conf (both NULL with another init). */
struct kiln_bootstrap {
  const char *init_path, *modules_dir, *order_path;
  const char *agent_path, *agent_conf;
  int64_t mtime;
};

KILN_MUST_CHECK kiln_err kiln_bootstrap_write(const char *out_path,
                                              const struct kiln_bootstrap *b,
                                              struct kiln_error *err);

#endif
