/* The EIF header layout (see header.h): one writer and one cursor-based parser. */
#include "header.h"

#include <string.h>

#include "measure.h"
#include "util/buf.h"

#define EIF_MAGIC ".eif"
#define EIF_RESERVED_AFTER_CPUS 2 /* before the section count */
#define EIF_RESERVED_BEFORE_CRC 4 /* after the section table */

void eif_header_write(const struct eif_header *h, uint8_t out[KILN_EIF_HEADER_SIZE])
{
  uint8_t *p = out;
  memset(out, 0, KILN_EIF_HEADER_SIZE);
  memcpy(p, EIF_MAGIC, 4);
  eif_put16(p + 4, h->version);
  eif_put16(p + 6, h->flags);
  eif_put64(p + 8, h->default_mem);
  eif_put64(p + 16, h->default_cpus);
  p += 24 + EIF_RESERVED_AFTER_CPUS;
  eif_put16(p, h->num_sections);
  p += 2;
  for (int i = 0; i < KILN_EIF_MAX_SECTIONS; i++, p += 8)
    eif_put64(p, h->offsets[i]);
  for (int i = 0; i < KILN_EIF_MAX_SECTIONS; i++, p += 8)
    eif_put64(p, h->sizes[i]);
  eif_put32(p + EIF_RESERVED_BEFORE_CRC, h->crc);
}

int eif_header_parse(const uint8_t in[KILN_EIF_HEADER_SIZE], struct eif_header *h)
{
  struct kiln_cursor c = {in, KILN_EIF_HEADER_SIZE};
  char magic[4];
  memset(h, 0, sizeof *h);
  int ok = kiln_cursor_take(&c, magic, 4) && memcmp(magic, EIF_MAGIC, 4) == 0 &&
           kiln_cursor_be16(&c, &h->version) && kiln_cursor_be16(&c, &h->flags) &&
           kiln_cursor_be64(&c, &h->default_mem) && kiln_cursor_be64(&c, &h->default_cpus) &&
           kiln_cursor_take(&c, NULL, EIF_RESERVED_AFTER_CPUS) &&
           kiln_cursor_be16(&c, &h->num_sections);
  for (int i = 0; ok && i < KILN_EIF_MAX_SECTIONS; i++)
    ok = kiln_cursor_be64(&c, &h->offsets[i]);
  for (int i = 0; ok && i < KILN_EIF_MAX_SECTIONS; i++)
    ok = kiln_cursor_be64(&c, &h->sizes[i]);
  return ok && kiln_cursor_take(&c, NULL, EIF_RESERVED_BEFORE_CRC) &&
         kiln_cursor_be32(&c, &h->crc) && c.left == 0;
}

void eif_section_header_write(const struct eif_section_header *s,
                              uint8_t out[KILN_EIF_SECTION_HEADER_SIZE])
{
  eif_put16(out, s->type);
  eif_put16(out + 2, s->flags);
  eif_put64(out + 4, s->size);
}

void eif_section_header_parse(const uint8_t in[KILN_EIF_SECTION_HEADER_SIZE],
                              struct eif_section_header *s)
{
  struct kiln_cursor c = {in, KILN_EIF_SECTION_HEADER_SIZE};
  /* 12 bytes always hold the three fields: the cursor cannot run short here */
  if (!kiln_cursor_be16(&c, &s->type) || !kiln_cursor_be16(&c, &s->flags) ||
      !kiln_cursor_be64(&c, &s->size))
    memset(s, 0, sizeof *s);
}
