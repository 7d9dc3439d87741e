/* The pinned toolchain: Debian 12 packages pinned by file name, size and sha256 in
 * share/toolchain/<host>-<target>.pins, fetched with libcurl from a mirror list (or taken from an
 * offline directory), verified before use, unpacked with libarchive into the cache (atomically),
 * and run under the pinned dynamic loader and libraries so that no host compiler, assembler,
 * linker, header or libc takes part in what an EIF measures. */
#ifndef KILN_TOOLCHAIN_H
#define KILN_TOOLCHAIN_H

#include <stddef.h>

#include <cjson/cJSON.h>
#include "util/error.h"

/* One pinned package: "package version pool-path size sha256" in a .pins file. */
struct kiln_pin {
  char *package;
  char *version;
  char *path; /* the archive's pool path, relative to a mirror's root */
  long long size;
  char sha256[65];
};

struct kiln_pins {
  struct kiln_pin *items;
  size_t count;
  char file_sha256[65]; /* of the .pins file: the toolchain's identity */
};

/* Where .debs come from (kiln.json /toolchain), and where verified downloads are kept. */
struct kiln_fetch_config {
  char **mirrors; /* tried in order: /toolchain/mirrors, else the host's apt sources */
  size_t mirror_count;
  char *snapshot;      /* /toolchain/snapshot: URL pattern with {path}, {file}, {package},
                          {version} or NULL */
  char *debs_dir;      /* /toolchain/debs (absolute) or NULL */
  char *downloads_dir; /* verified .debs, shared by builds: $KILN_DOWNLOAD_DIR or
                          <cache>/downloads */
};

/* An unpacked toolchain, ready to run. For aarch64 the tree holds the cross compiler (for the
 * target) and the native x86_64 one (for the kernel build's host programs). */
struct kiln_toolchain {
  char *root;        /* the unpacked packages */
  char *bin;         /* wrappers: the native gcc cc cpp as ld ar nm objcopy objdump readelf
                        strip ranlib gzip, and the cc1/collect2/lto-wrapper gcc runs (found
                        through -B); for aarch64 also aarch64-linux-gnu-gcc, -cpp, -as, -ld ...
                        (their internals in bin/aarch64-linux-gnu/) */
  char *arch;        /* target architecture: "x86_64" or "aarch64" */
  char *triplet;     /* its GNU triplet (x86_64-linux-gnu) */
  char *tool_prefix; /* bin/ + the prefix of the target's tools: CROSS_COMPILE for aarch64
                        (".../kiln-bin/aarch64-linux-gnu-"), ".../kiln-bin/" for x86_64 */
  char *cc;          /* the target's C compiler wrapper (bin/gcc, bin/aarch64-linux-gnu-gcc) */
  char *sysroot;     /* --sysroot of the target's programs: root, or root/usr/aarch64-linux-gnu
                        (the cross glibc and headers; nothing of the host or the native tree) */
  char *id;          /* sha256 of the pins file */
};

typedef void (*kiln_toolchain_log_fn)(void *arg, const char *line);

/* Parse a .pins file. */
KILN_MUST_CHECK kiln_err kiln_pins_load(const char *path, struct kiln_pins *out,
                                        struct kiln_error *err);
void kiln_pins_free(struct kiln_pins *p);
/* The pins as kiln.lock records them: [{"package","version","file","sha256"}...]. */
cJSON *kiln_pins_to_json(const struct kiln_pins *p);

/* Read kiln.json's /toolchain (mirrors, debs, snapshot) relative to app_dir; cache_dir holds
 * downloads/ unless $KILN_DOWNLOAD_DIR names another directory. */
KILN_MUST_CHECK kiln_err kiln_fetch_config_init(struct kiln_fetch_config *c, const cJSON *kiln_json,
                                                const char *app_dir, const char *cache_dir,
                                                struct kiln_error *err);
void kiln_fetch_config_free(struct kiln_fetch_config *c);

/* A verified .deb for pin: from the download directory, the offline directory or the mirrors
 * (each tried in turn; every failure is named in the error). Nothing unverified is ever kept.
 * *deb is the file's path (caller frees). */
KILN_MUST_CHECK kiln_err kiln_pin_fetch(const struct kiln_pin *pin,
                                        const struct kiln_fetch_config *c, char **deb,
                                        struct kiln_error *err);

/* Call fn for each entry of a .deb's data archive (data.tar.{xz,zst,gz} inside the ar container),
 * in order, until it fails; fn may read the entry's data from tar. */
struct archive;
struct archive_entry;
typedef kiln_err (*kiln_deb_entry_fn)(void *arg, struct archive *tar, struct archive_entry *e,
                                      struct kiln_error *err);
KILN_MUST_CHECK kiln_err kiln_deb_each_data_entry(const char *deb, kiln_deb_entry_fn fn, void *arg,
                                                  struct kiln_error *err);

/* Unpack a whole .deb's data archive (files, directories, symlinks) under dir with libarchive,
 * refusing absolute paths, ".." and links that leave dir. */
KILN_MUST_CHECK kiln_err kiln_deb_unpack_all(const char *deb, const char *dir,
                                             struct kiln_error *err);

/* The toolchain for target arch ("x86_64" or "aarch64") on this host: fetched, verified, unpacked
 * into <cache>/toolchain/<id> ($KILN_TOOLCHAIN_DIR/<id> when set, to share it between caches; a
 * temporary directory renamed into place, so a failure leaves nothing half-made), with its
 * wrappers. */
KILN_MUST_CHECK kiln_err kiln_toolchain_prepare(const char *share_dir, const char *arch,
                                                const struct kiln_fetch_config *c,
                                                const char *cache_dir, kiln_toolchain_log_fn log,
                                                void *log_arg, struct kiln_toolchain *tc,
                                                cJSON **lock, struct kiln_error *err);
void kiln_toolchain_free(struct kiln_toolchain *tc);

/* The .pins file for arch on this host (caller frees). */
char *kiln_toolchain_pins_path(const char *share_dir, const char *arch);

/* The clean environment for a build with tc (caller frees with kiln_toolchain_env_free): PATH
 * with tc's wrappers first, then the host directories make/flex/bison/bc/perl come from;
 * LC_ALL=C, TZ=UTC, SOURCE_DATE_EPOCH=0, HOME, and nothing else from the caller's environment. */
char **kiln_toolchain_env(const struct kiln_toolchain *tc);
void kiln_toolchain_env_free(char **env);

/* Name the missing build tools that only steer a build (make flex bison bc perl ...) with their
 * package names; KILN_OK when all are on PATH. */
KILN_MUST_CHECK kiln_err kiln_toolchain_check_host_tools(const char *const *tools,
                                                         struct kiln_error *err);

/* The host C compiler's identity ("cc --version" first line) for kiln.lock (caller frees). */
char *kiln_host_compiler_identity(const char *cc);

/* "<cache>" from a stage's state directory "<cache>/state/<stage>" (caller frees). */
char *kiln_cache_root_from_state(const char *state_dir);

#endif
