/* cJSON helpers: canonical (sorted-key) printing, parsing files with line/column errors. */
#ifndef KILN_UTIL_JSON_H
#define KILN_UTIL_JSON_H

#include <cjson/cJSON.h>

#include "util/buf.h"
#include "util/error.h"

/* Compact JSON with object keys sorted bytewise (stable across runs); appended to out. */
kiln_err kiln_json_canonical(const cJSON *value, struct kiln_buf *out);
/* Pretty JSON (2-space indent) with sorted keys and a final newline; appended to out. */
kiln_err kiln_json_pretty(const cJSON *value, struct kiln_buf *out);
/* Pretty JSON keeping the objects' key order (for formats defined by another tool). */
kiln_err kiln_json_pretty_ordered(const cJSON *value, struct kiln_buf *out);
/* Parse text; on error the message names `name`, the line and the column. Caller frees *out. */
KILN_MUST_CHECK kiln_err kiln_json_parse(const char *text, size_t len, const char *name,
                                         cJSON **out, struct kiln_error *err);
/* Read and parse a JSON file of at most max_size bytes. */
KILN_MUST_CHECK kiln_err kiln_json_read_file(const char *path, size_t max_size, cJSON **out,
                                             struct kiln_error *err);
/* Look up an RFC 6901 JSON pointer ("/a/b/0"); NULL when absent. */
const cJSON *kiln_json_pointer(const cJSON *root, const char *pointer);
/* Append the keys of an object, ", "-separated, to out (for "known keys: ..." messages). */
kiln_err kiln_json_keys(const cJSON *object, struct kiln_buf *out);
/* Escape a string as a JSON string literal (with quotes) into out. */
kiln_err kiln_json_quote(const char *s, struct kiln_buf *out);

#endif
