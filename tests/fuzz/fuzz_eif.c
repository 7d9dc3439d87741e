/* libFuzzer target for the EIF reader: any bytes, written to a file, must be read without a crash,
 * a leak or undefined behaviour (errors are expected and fine). */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <kiln/eif.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  static char path[64];
  if (!path[0])
    snprintf(path, sizeof path, "/tmp/kiln-fuzz-eif-%ld.eif", (long)getpid());
  FILE *f = fopen(path, "wb");
  if (!f)
    return 0;
  if (size)
    fwrite(data, 1, size, f);
  fclose(f);
  struct kiln_eif_info info;
  struct kiln_error err = KILN_ERROR_INIT;
  if (kiln_eif_read(path, 0, KILN_EIF_SHA384, &info, &err) == KILN_OK)
    kiln_eif_info_clear(&info);
  kiln_error_clear(&err);
  unlink(path);
  return 0;
}
