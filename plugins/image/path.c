/* Entry-name normalisation for layer members: absolute names become relative, "." and empty
 * components vanish, ".." is refused (no entry may name anything outside the image root). */
#include <string.h>

#include "image.h"

kiln_err img_path_normalise(const char *name, struct kiln_buf *out, struct kiln_error *err)
{
  kiln_err rc;
  size_t len = strlen(name);
  kiln_buf_reset(out);
  if (len > IMG_MAX_PATH)
    return kiln_error_set(err, KILN_E_INVALID, "entry name longer than %d bytes", IMG_MAX_PATH);
  size_t i = 0;
  while (i < len) {
    while (i < len && name[i] == '/')
      i++;
    size_t start = i;
    while (i < len && name[i] != '/')
      i++;
    size_t clen = i - start;
    if (clen == 0 || (clen == 1 && name[start] == '.'))
      continue;
    if (clen == 2 && name[start] == '.' && name[start + 1] == '.')
      return kiln_error_set(err, KILN_E_INVALID,
                            "entry \"%s\" has a \"..\" component (it would leave the image root)",
                            name);
    if (out->len && (rc = kiln_buf_putc(out, '/')))
      return kiln_error_set(err, rc, "out of memory");
    if ((rc = kiln_buf_append(out, name + start, clen)))
      return kiln_error_set(err, rc, "out of memory");
  }
  if (!out->data && (rc = kiln_buf_append(out, "", 0)))
    return kiln_error_set(err, rc, "out of memory");
  return KILN_OK;
}
