/* The kernel stage's internals: Debian packages (fetch, unpack) and the three sources. */
#ifndef KILN_KERNEL_H
#define KILN_KERNEL_H

#include <kiln/plugin.h>

#include "util/error.h"

/* The nitro-cli default x86_64 kernel command line. */
#define KILN_KERNEL_DEFAULT_CMDLINE                                                                \
  "reboot=k panic=30 pci=off nomodules console=ttyS0 i8042.noaux i8042.nomux i8042.nopnp "         \
  "i8042.dumbkbd random.trust_cpu=on"

/* nitro-cli's aarch64 command line (aws-nitro-enclaves-cli blobs/aarch64/cmdline): the serial
 * console is ttyS0 there too, an 8250 UART described by the device tree. */
#define KILN_KERNEL_DEFAULT_CMDLINE_AARCH64                                                        \
  "reboot=k panic=30 pci=off nomodules console=ttyS0 random.trust_cpu=on root=/dev/ram0"

/* What the kernel stage builds for one CPU architecture (kiln.json /arch). */
struct kernel_arch {
  const char *name;         /* "x86_64" or "aarch64" */
  const char *make_arch;    /* the kernel's ARCH= ("x86", "arm64") */
  const char *cross_prefix; /* CROSS_COMPILE= on an x86-64 host, or "" */
  const char *target;       /* make target: bzImage or Image */
  const char *image_path;   /* the built image inside the source tree */
  const char *fragment;     /* config fragment under share/ */
  const char *cmdline;      /* nitro-cli's default command line for this arch */
};
/* The architecture of this build (host->config /arch; x86_64 when unset). */
const struct kernel_arch *kiln_kernel_arch(struct kiln_stage_ctx *ctx,
                                           const struct kiln_host *host);

/* Pinned Debian 12 packages (a newer pin is a change to this file, reviewed like code). */
#define KILN_DEBIAN_KERNEL_VERSION "6.12.117+deb12"
#define KILN_DEBIAN_PACKAGE_VERSION "6.12.117-1~deb12u1"
#define KILN_DEBIAN_CLOUD_PACKAGE "linux-image-" KILN_DEBIAN_KERNEL_VERSION "-cloud-amd64-unsigned"
#define KILN_DEBIAN_SOURCE_PACKAGE "linux-source-6.12"

/* Get package=version (pinned in share/toolchain/kernel.pins) as a verified .deb: the download
 * cache, /toolchain/debs or the mirrors, as the toolchain. *deb is its path (caller frees). */
KILN_MUST_CHECK kiln_err kiln_deb_fetch(struct kiln_stage_ctx *ctx, const struct kiln_host *host,
                                        const char *package, const char *version, char **deb,
                                        struct kiln_error *err);

/* Called for each member of the .deb's data archive; returns the path to write it to (caller
 * of the callback frees), or NULL to skip it. */
typedef char *(*kiln_deb_select_fn)(void *arg, const char *member);
/* Unpack selected regular files of a .deb (ar + data.tar.{xz,zst,gz}) with libarchive. */
KILN_MUST_CHECK kiln_err kiln_deb_extract(const char *deb, kiln_deb_select_fn select, void *arg,
                                          struct kiln_error *err);

/* What a source puts into the kernel artifact's directory (files documented in
 * docs/artifacts.md), and the metadata/lock values it resolved. */
struct kernel_result {
  cJSON *meta;    /* kernel artifact metadata (owned) */
  cJSON *package; /* {"name","version","sha256"} or NULL (owned) */
};

KILN_MUST_CHECK kiln_err kiln_kernel_debian_cloud(struct kiln_stage_ctx *ctx,
                                                  const struct kiln_host *host, const char *out_dir,
                                                  struct kernel_result *r);
KILN_MUST_CHECK kiln_err kiln_kernel_debian_build(struct kiln_stage_ctx *ctx,
                                                  const struct kiln_host *host, const char *out_dir,
                                                  struct kernel_result *r);
KILN_MUST_CHECK kiln_err kiln_kernel_blobs(struct kiln_stage_ctx *ctx, const struct kiln_host *host,
                                           const char *blobs_dir, const char *out_dir,
                                           struct kernel_result *r);

#endif
