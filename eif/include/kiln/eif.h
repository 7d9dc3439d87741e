/* libkiln-eif: write, read and measure AWS Nitro Enclave image files (EIF v4). */
#ifndef KILN_EIF_H
#define KILN_EIF_H

#include <stddef.h>
#include <stdint.h>

#include "util/error.h"

#define KILN_EIF_MAX_SECTIONS 32
#define KILN_EIF_HEADER_SIZE 548
#define KILN_EIF_SECTION_HEADER_SIZE 12

enum kiln_eif_section_type {
  KILN_EIF_SECTION_INVALID = 0,
  KILN_EIF_SECTION_KERNEL = 1,
  KILN_EIF_SECTION_CMDLINE = 2,
  KILN_EIF_SECTION_RAMDISK = 3,
  KILN_EIF_SECTION_SIGNATURE = 4,
  KILN_EIF_SECTION_METADATA = 5
};

enum kiln_eif_hash { KILN_EIF_SHA384 = 0, KILN_EIF_SHA256, KILN_EIF_SHA512 };

/* PCR values as lowercase hex (up to SHA-512: 128 digits). */
struct kiln_eif_pcrs {
  enum kiln_eif_hash hash;
  char pcr0[129];
  char pcr1[129];
  char pcr2[129];
  char pcr8[129]; /* "" when unsigned */
};

/* What eif_build's metadata section holds; NULL strings take eif_build's defaults. */
struct kiln_eif_metadata {
  const char *image_name;    /* default: the kernel file's name */
  const char *image_version; /* default "1.0" */
  int64_t build_time;        /* seconds since the epoch (SOURCE_DATE_EPOCH, default 0) */
  const char *build_tool;    /* default "kiln" */
  const char *build_tool_version;
  const char *operating_system; /* default "OS", or from the kernel config's third line */
  const char *kernel_version;   /* default "kernel", or from the kernel config */
  const char *docker_info_json; /* JSON value or NULL (null) */
  const char *custom_json;      /* JSON value or NULL (null) */
};

/* Where an EIF write spent its time, in seconds (see kiln_eif_build.stats), per thread: the
 * reader fills buffers from the inputs, lanes 0 and 1 hash them (PCR0; PCR1/PCR2), the disk
 * thread computes the CRC-32 and writes them. A thread's wait is time it had nothing to do: the
 * reader waits for a free buffer, the others for a filled one. */
struct kiln_eif_write_stats {
  double wall;
  double read, reader_wait;
  double lane_hash[2], lane_wait[2];
  double crc, write, disk_wait, fsync;
  uint64_t bytes;
  int direct; /* written with O_DIRECT (else through the page cache, with early writeback) */
};

struct kiln_eif_build {
  const char *kernel;          /* bzImage (x86_64) or Image (aarch64) */
  const char *cmdline;         /* exact bytes (no trailing newline) */
  const char *const *ramdisks; /* the first is the bootstrap ramdisk */
  size_t nramdisks;
  int aarch64;
  enum kiln_eif_hash hash;
  struct kiln_eif_metadata metadata;
  const char *metadata_raw; /* exact metadata section bytes (re-signing keeps them); else built */
  const char *signing_certificate;    /* PEM; with private_key: add the signature section (PCR8) */
  const char *private_key;            /* PEM, ECDSA P-384 */
  struct kiln_eif_write_stats *stats; /* optional: filled with where the time went */
  /* optional (unsigned EIFs): receives the whole file's SHA-256 (64 hex digits), computed in the
   * same pass as the PCRs; costs a CRC-32 pre-read of the inputs (the header, which holds the
   * CRC, comes first in the file) and a SHA-256 lane. */
  char *file_sha256;
  /* optional, with file_sha256: per ramdisk, its CRC-32 when the stage that wrote it computed
   * one (-1: unknown), so that ramdisk is not read ahead; a wrong value fails the write. */
  const int64_t *ramdisk_crc32;
};

/* Write the EIF to out_path (via a temp file and rename: never a partial file). Each input is
 * read once; CRC and PCRs are computed in the same pass. pcrs may be NULL. */
kiln_err kiln_eif_write(const struct kiln_eif_build *b, const char *out_path,
                        struct kiln_eif_pcrs *pcrs, struct kiln_error *err);

/* Copy an EIF's kernel, ramdisks and text sections into dir (kernel, ramdisk0..N) so it can be
 * rewritten (kiln sign); fills *b (pointing into *strings, which the caller frees). */
kiln_err kiln_eif_unpack(const char *eif, const char *dir, struct kiln_eif_build *b,
                         char ***strings, struct kiln_error *err);

/* The metadata section's exact bytes (compact JSON in eif_build's key order); caller frees. */
kiln_err kiln_eif_metadata_json(const struct kiln_eif_metadata *m, const char *kernel_path,
                                char **out, struct kiln_error *err);
/* OperatingSystem and KernelVersion from a kernel config's third line (eif_build's rule). */
kiln_err kiln_eif_kernel_config_words(const char *config_path, char **os, char **version,
                                      struct kiln_error *err);

struct kiln_eif_section {
  uint16_t type;
  uint16_t flags;
  uint64_t offset; /* of the 12-byte section header */
  uint64_t size;   /* of the data */
};

struct kiln_eif_info {
  uint16_t version;
  uint16_t flags;
  uint64_t default_mem;
  uint64_t default_cpus;
  uint16_t num_sections;
  struct kiln_eif_section sections[KILN_EIF_MAX_SECTIONS];
  uint32_t crc_stored;
  uint32_t crc_computed;
  int crc_ok;
  uint64_t file_size;
  char *metadata; /* metadata section text (NUL-terminated), or NULL; owned */
  char *cmdline;  /* owned */
  int has_signature;
  int signature_ok;      /* the COSE signature over PCR0 verifies with the embedded certificate */
  char *signature_error; /* why it does not, or NULL; owned */
  struct kiln_eif_pcrs pcrs; /* pcr8 set when signed */
};

/* Validate and measure an EIF, streaming: magic, version, section table (inside the file, no
 * overlaps, known types, <= 32, agreeing with the sequential layout, no trailing bytes), CRC, and
 * PCR0/1/2 recomputed. check_crc = 0 reports a CRC mismatch in info instead of failing. */
kiln_err kiln_eif_read(const char *path, int check_crc, enum kiln_eif_hash hash,
                       struct kiln_eif_info *info, struct kiln_error *err);
void kiln_eif_info_clear(struct kiln_eif_info *info);

const char *kiln_eif_hash_name(enum kiln_eif_hash h); /* "SHA384", ... */
/* nitro-cli's Measurements object: HashAlgorithm ("Sha384 { ... }"), PCR0, PCR1, PCR2[, PCR8].
 * Returned as a cJSON object the caller frees (declared void* to keep cJSON out of this API's
 * required includes). */
void *kiln_eif_pcrs_json(const struct kiln_eif_pcrs *pcrs);

#endif
