/* EIF writer cases the CLI cannot reach: the whole file's SHA-256 computed in the same pass as
 * the PCRs (kiln_eif_build.file_sha256), with a ramdisk CRC-32 handed over by its writer, and a
 * wrong handed-over CRC-32 failing the write without leaving a file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <kiln/eif.h>
#include <zlib.h>

#include "check.h"
#include "util/hash.h"

static void write_random(const char *path, size_t size, unsigned seed, uint32_t *crc)
{
  unsigned char *data = malloc(size);
  srand(seed);
  for (size_t i = 0; i < size; i++)
    data[i] = (unsigned char)rand();
  FILE *f = fopen(path, "wb");
  fwrite(data, 1, size, f);
  fclose(f);
  *crc = (uint32_t)crc32(0L, data, (uInt)size);
  free(data);
}

int main(int argc, char **argv)
{
  const char *dir = argc > 1 ? argv[1] : ".";
  char kernel[4096], boot[4096], app[4096], out[4096], out2[4096];
  snprintf(kernel, sizeof kernel, "%s/writer-kernel", dir);
  snprintf(boot, sizeof boot, "%s/writer-boot", dir);
  snprintf(app, sizeof app, "%s/writer-app", dir);
  snprintf(out, sizeof out, "%s/writer.eif", dir);
  snprintf(out2, sizeof out2, "%s/writer-wrong.eif", dir);
  uint32_t crc_kernel, crc_boot, crc_app;
  /* sizes across block boundaries (4 MiB) and unaligned */
  write_random(kernel, 3000001, 1, &crc_kernel);
  write_random(boot, 70001, 2, &crc_boot);
  write_random(app, (9u << 20) + 12345, 3, &crc_app);
  const char *ramdisks[] = {boot, app};
  char sha[65] = "", file_sha[65];
  int64_t crcs[2] = {-1, crc_app};
  struct kiln_eif_build b = {.kernel = kernel,
                             .cmdline = "console=ttyS0",
                             .ramdisks = ramdisks,
                             .nramdisks = 2,
                             .file_sha256 = sha,
                             .ramdisk_crc32 = crcs};
  struct kiln_eif_pcrs pcrs, plain;
  struct kiln_error e = KILN_ERROR_INIT;

  CHECK_CASE("file SHA-256 in the same pass, CRC handed over");
  CHECK_INT(KILN_OK, kiln_eif_write(&b, out, &pcrs, &e));
  CHECK_INT(KILN_OK, kiln_sha256_file(out, file_sha, NULL, &e));
  CHECK_STR(file_sha, sha);
  struct kiln_eif_info info;
  CHECK_INT(KILN_OK, kiln_eif_read(out, 1, KILN_EIF_SHA384, &info, &e));
  CHECK(info.crc_ok);
  CHECK_STR(pcrs.pcr0, info.pcrs.pcr0);
  kiln_eif_info_clear(&info);

  CHECK_CASE("the same bytes without the same-pass SHA-256");
  struct kiln_eif_build p = b;
  p.file_sha256 = NULL;
  p.ramdisk_crc32 = NULL;
  CHECK_INT(KILN_OK, kiln_eif_write(&p, out2, &plain, &e));
  char plain_sha[65];
  CHECK_INT(KILN_OK, kiln_sha256_file(out2, plain_sha, NULL, &e));
  CHECK_STR(file_sha, plain_sha);
  CHECK_STR(pcrs.pcr2, plain.pcr2);
  unlink(out2);

  CHECK_CASE("a wrong handed-over CRC-32 fails the write and leaves no file");
  crcs[1] = (int64_t)(crc_app ^ 1u);
  CHECK_INT(KILN_E_IO, kiln_eif_write(&b, out2, &pcrs, &e));
  CHECK_CONTAINS("changed while the EIF was being written", kiln_error_msg(&e));
  CHECK(access(out2, F_OK) != 0);
  kiln_error_clear(&e);
  (void)crc_kernel;
  (void)crc_boot;
  unlink(kernel);
  unlink(boot);
  unlink(app);
  unlink(out);
  return check_done();
}
