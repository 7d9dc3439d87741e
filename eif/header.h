/* The EIF header and section header layout, defined once for the reader and the writer:
 * ".eif", version, flags, default memory and CPUs, the section count, the section table (offset
 * and size of each of KILN_EIF_MAX_SECTIONS slots) and the CRC, all big-endian. */
#ifndef KILN_EIF_HEADER_H
#define KILN_EIF_HEADER_H

#include <stdint.h>

#include "kiln/eif.h"

struct eif_header {
  uint16_t version;
  uint16_t flags;
  uint64_t default_mem;
  uint64_t default_cpus;
  uint16_t num_sections;
  uint64_t offsets[KILN_EIF_MAX_SECTIONS];
  uint64_t sizes[KILN_EIF_MAX_SECTIONS];
  uint32_t crc; /* over the header without this field, then every section */
};

struct eif_section_header {
  uint16_t type;
  uint16_t flags;
  uint64_t size;
};

/* The serialized header, magic included. */
void eif_header_write(const struct eif_header *h, uint8_t out[KILN_EIF_HEADER_SIZE]);
/* Parse with the bounds-checked cursor; 0 when the magic is not ".eif". */
int eif_header_parse(const uint8_t in[KILN_EIF_HEADER_SIZE], struct eif_header *h);
void eif_section_header_write(const struct eif_section_header *s,
                              uint8_t out[KILN_EIF_SECTION_HEADER_SIZE]);
void eif_section_header_parse(const uint8_t in[KILN_EIF_SECTION_HEADER_SIZE],
                              struct eif_section_header *s);

#endif
