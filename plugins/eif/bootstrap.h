/* The bootstrap ramdisk (first EIF ramdisk, measured into PCR1): init, kernel modules and their
 * load order, and /dev, as a deterministic newc cpio. */
#ifndef KILN_EIF_BOOTSTRAP_H
#define KILN_EIF_BOOTSTRAP_H

#include <stdint.h>

#include "util/error.h"

/* init_path: the init binary; modules_dir/order_path: the kernel artifact's modules/ and
 * modules.order (either may be absent). Every module named in the order file must exist. */
KILN_MUST_CHECK kiln_err kiln_bootstrap_write(const char *out_path, const char *init_path,
                                              const char *modules_dir, const char *order_path,
                                              int64_t mtime, struct kiln_error *err);

#endif
