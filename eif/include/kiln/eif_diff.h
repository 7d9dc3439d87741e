/* libkiln-eif: why two EIFs differ: the first differing section and, for ramdisks, the paths
 * whose content, mode, owner, type or link target differ (streamed: sizes and hashes only). */
#ifndef KILN_EIF_DIFF_H
#define KILN_EIF_DIFF_H

#include <stddef.h>
#include <stdint.h>

#include "kiln/eif.h"

/* One side of a section. */
struct kiln_eif_diff_section_side {
  int present;
  uint16_t type;
  uint64_t size;
  char sha256[65];
};

struct kiln_eif_diff_section {
  unsigned index;
  const char *name; /* "kernel", "cmdline", "bootstrap ramdisk", "application ramdisk", ... */
  int same;
  struct kiln_eif_diff_section_side a, b;
};

/* One side of a ramdisk path. */
struct kiln_eif_diff_entry {
  int present;
  uint32_t mode; /* type and permission bits */
  uint32_t uid, gid;
  uint64_t size;
  char sha256[65]; /* regular files; "" otherwise */
  char *link;      /* symlink or hard-link target, or NULL */
};

/* KILN_EIF_DIFF_* bits: what differs about a path. */
#define KILN_EIF_DIFF_ONLY_A 0x01u
#define KILN_EIF_DIFF_ONLY_B 0x02u
#define KILN_EIF_DIFF_TYPE 0x04u
#define KILN_EIF_DIFF_CONTENT 0x08u
#define KILN_EIF_DIFF_MODE 0x10u
#define KILN_EIF_DIFF_OWNER 0x20u
#define KILN_EIF_DIFF_LINK 0x40u

struct kiln_eif_diff_path {
  char *path;
  unsigned what; /* KILN_EIF_DIFF_* */
  struct kiln_eif_diff_entry a, b;
};

struct kiln_eif_diff_ramdisk {
  unsigned section; /* index of the section in both files */
  const char *name;
  struct kiln_eif_diff_path *paths; /* bytewise path order, at most max_paths */
  size_t npaths;
  size_t total; /* differing paths, including those not listed */
};

struct kiln_eif_diff {
  int identical;   /* same bytes */
  int header_same; /* header fields (flags, default memory and CPUs, section count) */
  int first;       /* index of the first differing section, -1 when all sections agree */
  struct kiln_eif_diff_section *sections;
  size_t nsections;
  struct kiln_eif_diff_ramdisk *ramdisks; /* differing ramdisk pairs */
  size_t nramdisks;
};

/* Compare two EIFs (each validated as kiln_eif_read does, CRC not required). Ramdisk pairs that
 * differ are read as cpio archives (newc or odc, optionally compressed) and compared path by
 * path; max_paths caps the listed paths per ramdisk (0: no cap). */
kiln_err kiln_eif_diff(const char *a, const char *b, size_t max_paths, struct kiln_eif_diff *out,
                       struct kiln_error *err);
void kiln_eif_diff_clear(struct kiln_eif_diff *d);

/* "content", "mode", ... for one KILN_EIF_DIFF_* bit. */
const char *kiln_eif_diff_what_name(unsigned bit);

#endif
