/* A small DOM built with expat from AWS XML responses: element names (namespace prefixes
 * dropped), text and children. Bounded: documents above a size or depth limit are refused. */
#ifndef KILN_AWS_XML_H
#define KILN_AWS_XML_H

#include <stddef.h>

#include "util/error.h"

struct kiln_xml {
  char *name;
  char *text; /* concatenated character data, "" when none */
  struct kiln_xml *child;
  struct kiln_xml *next;
};

/* Parse len bytes; the message names `what` (e.g. "S3 ListParts response") and the line. */
KILN_MUST_CHECK kiln_err kiln_xml_parse(const char *data, size_t len, const char *what,
                                        struct kiln_xml **out, struct kiln_error *err);
void kiln_xml_free(struct kiln_xml *x);
/* First child named name, or NULL. */
const struct kiln_xml *kiln_xml_child(const struct kiln_xml *x, const char *name);
/* Follow a "/"-separated path of child names ("ListPartsResult/Part"); NULL when absent. */
const struct kiln_xml *kiln_xml_path(const struct kiln_xml *x, const char *path);
/* Text of the element at path, or NULL. */
const char *kiln_xml_text(const struct kiln_xml *x, const char *path);
/* Next sibling with the same name as x. */
const struct kiln_xml *kiln_xml_next_same(const struct kiln_xml *x);
/* Find the first element named name anywhere under x (depth-first), or NULL. */
const struct kiln_xml *kiln_xml_find(const struct kiln_xml *x, const char *name);
/* Escape text for an XML element body. Appends to out. */
struct kiln_buf;
kiln_err kiln_xml_escape(struct kiln_buf *out, const char *s);

#endif
