/* Unit tests of the sizing rules on the shipped catalogue: the seed table and the edge cases. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "sizing.h"

static const struct kiln_catalogue *catalogue;

static void expect_type(const char *name, int cpus, long long mib, const char *family,
                        const char *arch, long long eif, const char *want, int want_cpus,
                        long long want_mib)
{
  CHECK_CASE(name);
  struct kiln_sizing_request req = {cpus, mib, family, arch, eif};
  struct kiln_sizing_result r;
  struct kiln_error e = KILN_ERROR_INIT;
  kiln_err rc = kiln_sizing_choose(catalogue, &req, &r, &e);
  CHECK_INT(KILN_OK, rc);
  if (rc == KILN_OK) {
    CHECK_STR(want, r.best->name);
    CHECK_INT(want_cpus, r.enclave_cpus);
    CHECK_INT(want_mib, r.enclave_memory_mib);
  } else {
    fprintf(stderr, "  %s\n", kiln_error_msg(&e));
  }
  kiln_error_clear(&e);
  kiln_sizing_result_clear(&r);
}

static void expect_error(const char *name, int cpus, long long mib, const char *family,
                         const char *needle)
{
  CHECK_CASE(name);
  struct kiln_sizing_request req = {cpus, mib, family, NULL, 0};
  struct kiln_sizing_result r;
  struct kiln_error e = KILN_ERROR_INIT;
  CHECK_INT(KILN_E_INVALID, kiln_sizing_choose(catalogue, &req, &r, &e));
  CHECK_CONTAINS(needle, kiln_error_msg(&e));
  kiln_error_clear(&e);
  kiln_sizing_result_clear(&r);
}

int main(int argc, char **argv)
{
  if (argc < 2) {
    fprintf(stderr, "usage: test_size CATALOGUE\n");
    return 2;
  }
  struct kiln_catalogue *c = NULL;
  struct kiln_error e = KILN_ERROR_INIT;
  CHECK_CASE("shipped catalogue loads and records its source and date");
  CHECK_INT(KILN_OK, kiln_catalogue_load(argv[1], &c, &e));
  if (!c) {
    fprintf(stderr, "%s\n", kiln_error_msg(&e));
    return check_done();
  }
  CHECK(c->source && strlen(c->source) > 10);
  CHECK(c->as_of && strlen(c->as_of) == 10);
  catalogue = c;

  /* The seed's table (m5 only): the parent keeps 2 vCPUs and 2 GiB. */
  expect_type("seed 2/14 GiB", 2, 14 * 1024, "m5", NULL, 0, "m5.xlarge", 2, 14 * 1024);
  expect_type("seed 6/30 GiB", 6, 30 * 1024, "m5", NULL, 0, "m5.2xlarge", 6, 30 * 1024);
  expect_type("seed 14/62 GiB", 14, 62 * 1024, "m5", NULL, 0, "m5.4xlarge", 14, 62 * 1024);
  expect_type("seed 30/126 GiB", 30, 126 * 1024, "m5", NULL, 0, "m5.8xlarge", 30, 126 * 1024);
  expect_type("one MiB over the seed row moves up", 2, 14 * 1024 + 1, "m5", NULL, 0, "m5.2xlarge",
              2, 14 * 1024 + 1);
  expect_type("odd CPUs round up to whole cores", 3, 1024, "m5", NULL, 0, "m5.2xlarge", 4, 1024);
  expect_type("several families, cheapest wins", 2, 4096, "m5,m6a", NULL, 0, "m6a.xlarge", 2, 4096);
  expect_type("Graviton keeps one vCPU", 3, 4096, "m6g", "aarch64", 0, "m6g.xlarge", 3, 4096);
  expect_type("EIF forces 4x its size", 2, 512, "m5", NULL, 1000LL * 1024 * 1024, "m5.xlarge", 2,
              4000);
  expect_type("t-family is never chosen", 2, 8192, "t3,m5", NULL, 0, "m5.xlarge", 2, 8192);
  expect_error("too many CPUs names the largest", 200, 1024, "m5", "the largest is m5.24xlarge");
  expect_error("no enclave-capable family", 2, 1024, "t3", "matches family \"t3\"");
  expect_error("zero CPUs", 0, 1024, NULL, "at least 1");

  CHECK_CASE("a catalogue without source/date is refused");
  FILE *f = fopen("bad-catalogue.json", "w");
  fputs("{\"instance_types\":[{\"name\":\"x.large\"}]}", f);
  fclose(f);
  struct kiln_catalogue *bad = NULL;
  CHECK_INT(KILN_E_INVALID, kiln_catalogue_load("bad-catalogue.json", &bad, &e));
  CHECK_CONTAINS("/source", kiln_error_msg(&e));
  remove("bad-catalogue.json");
  kiln_error_clear(&e);
  kiln_catalogue_free(c);
  return check_done();
}
