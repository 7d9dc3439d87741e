/* libFuzzer target for attestation documents: any bytes go through the strict parser and, when
 * they parse, through every verification check (chain, signature, nonce, PCRs) against the root
 * named by KILN_FUZZ_ATTESTATION_ROOT; no input may crash, leak or hit undefined behaviour. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <kiln/attestation.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct kiln_attestation_root *fuzz_root(void)
{
  static struct kiln_attestation_root *root;
  static int tried;
  if (!tried) {
    tried = 1;
    const char *path = getenv("KILN_FUZZ_ATTESTATION_ROOT");
    struct kiln_error err = KILN_ERROR_INIT;
    if (path)
      kiln_attestation_root_load(path, NULL, &root, &err);
    kiln_error_clear(&err);
  }
  return root;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  struct kiln_attestation_doc *doc = NULL;
  struct kiln_error err = KILN_ERROR_INIT;
  struct kiln_attestation_root *root = fuzz_root();
  if (kiln_attestation_parse(data, size, &doc, &err) == KILN_OK && root) {
    struct kiln_eif_pcrs expected;
    memset(&expected, 0, sizeof expected);
    memset(expected.pcr0, 'a', 96);
    memset(expected.pcr1, '0', 96);
    memset(expected.pcr2, 'f', 96);
    memset(expected.pcr8, '1', 96);
    static const uint8_t nonce[4] = {1, 2, 3, 4};
    struct kiln_attestation_policy policy = {
        root, (int64_t)doc->timestamp_ms, 5 * 60 * 1000, nonce, sizeof nonce, &expected, 0};
    struct kiln_attestation_report report = {NULL, 0, 0};
    kiln_attestation_verify(doc, &policy, &report, &err);
    kiln_attestation_report_clear(&report);
  }
  kiln_attestation_doc_free(doc);
  kiln_error_clear(&err);
  return 0;
}
