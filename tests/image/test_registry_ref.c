/* Unit tests of docker:// reference parsing (Docker Hub defaults, hosts with ports, digests) and
 * of the loopback rule that decides where plain HTTP is allowed. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "registry.h"

static const struct {
  const char *name, *text, *host, *repo, *tag, *digest;
} refs[] = {
    {"one-component Hub name gets library/ and latest", "alpine", "docker.io", "library/alpine",
     "latest", NULL},
    {"user repository on the Hub keeps its path", "user/app:1.2", "docker.io", "user/app", "1.2",
     NULL},
    {"host with a dot names the registry", "ghcr.io/org/tool:v3", "ghcr.io", "org/tool", "v3",
     NULL},
    {"host with a port and no tag", "127.0.0.1:5000/kiln/test", "127.0.0.1:5000", "kiln/test",
     "latest", NULL},
    {"localhost is a registry host", "localhost/x:y", "localhost", "x", "y", NULL},
    {"digest reference has no tag",
     "ghcr.io/o/r@sha256:0000000000000000000000000000000000000000000000000000000000000000",
     "ghcr.io", "o/r", NULL,
     "sha256:0000000000000000000000000000000000000000000000000000000000000000"},
    {"tag and digest: the digest wins",
     "alpine:3@sha256:1111111111111111111111111111111111111111111111111111111111111111",
     "docker.io", "library/alpine", NULL,
     "sha256:1111111111111111111111111111111111111111111111111111111111111111"},
};

static const struct {
  const char *host;
  int loopback;
} hosts[] = {
    {"127.0.0.1:5000", 1},   {"127.1.2.3", 1},        {"localhost", 1},
    {"localhost:443", 1},    {"[::1]:5000", 1},       {"localhost.example.com", 0},
    {"127.evil.example", 0}, {"127.0.0.1.nip.io", 0}, {"registry-1.docker.io", 0},
    {"10.0.0.1:5000", 0},
};

int main(void)
{
  for (size_t i = 0; i < sizeof(refs) / sizeof(refs[0]); i++) {
    CHECK_CASE(refs[i].name);
    struct img_registry_ref r;
    struct kiln_error err = KILN_ERROR_INIT;
    CHECK_INT(0, img_registry_ref_parse(refs[i].text, &r, &err));
    CHECK_STR(refs[i].host, r.host);
    CHECK_STR(refs[i].repo, r.repo);
    if (refs[i].tag)
      CHECK_STR(refs[i].tag, r.tag);
    else
      CHECK(r.tag == NULL);
    if (refs[i].digest)
      CHECK_STR(refs[i].digest, r.digest);
    img_registry_ref_clear(&r);
    kiln_error_clear(&err);
  }
  CHECK_CASE("a digest of another algorithm is refused");
  struct img_registry_ref r;
  struct kiln_error err = KILN_ERROR_INIT;
  CHECK_INT(KILN_E_INVALID, img_registry_ref_parse("alpine@md5:abc", &r, &err));
  CHECK_CONTAINS("sha256", kiln_error_msg(&err));
  img_registry_ref_clear(&r);
  kiln_error_clear(&err);
  for (size_t i = 0; i < sizeof(hosts) / sizeof(hosts[0]); i++) {
    CHECK_CASE(hosts[i].host);
    CHECK_INT(hosts[i].loopback, img_registry_is_loopback(hosts[i].host));
  }
  return check_done();
}
