/* Unit tests of what a Dockerfile build reads: .dockerignore patterns (Docker's matching rules,
 * exceptions, "**", the parent-directory rule, bad patterns) and the Dockerfile reader (line
 * numbers across continuations and comments, the escape directive, base images with build args
 * and targets). */
#include <stdlib.h>
#include <string.h>

#include "build.h"
#include "check.h"

struct ignore_case {
  const char *name;
  const char *dockerignore;
  const char *path;
  int excluded;
};

static const struct ignore_case ignore_cases[] = {
    {"star stays in its directory", "*.log", "a.log", 1},
    {"star does not cross '/'", "*.log", "dir/a.log", 0},
    {"double star crosses directories", "**/*.log", "x/y/a.log", 1},
    {"double star matches zero directories", "**/*.log", "a.log", 1},
    {"a directory pattern covers its contents", "dir", "dir/sub/file", 1},
    {"trailing slash is cleaned away", "dir/", "dir/file", 1},
    {"exception after the rule wins", "*.log\n!keep.log", "keep.log", 0},
    {"rule after the exception wins", "!keep.log\n*.log", "keep.log", 1},
    {"exception of a file in an excluded dir", "build\n!build/keep", "build/keep", 0},
    {"other files of that dir stay out", "build\n!build/keep", "build/other", 1},
    {"question mark is one character", "a?c", "abc", 1},
    {"question mark is not '/'", "a?c", "a/c", 0},
    {"character class range", "[a-c].txt", "b.txt", 1},
    {"character class miss", "[a-c].txt", "d.txt", 0},
    {"negated class", "[^a].txt", "a.txt", 0},
    {"leading slash is the context root", "/abs", "abs", 1},
    {"dir/** is a prefix test", "foo/**", "foo/x/y", 1},
    {"dir/** does not exclude dir itself", "foo/**", "foo", 0},
    {"lone double star matches all", "**", "any/thing", 1},
    {"**/name matches name at the root", "**/cache", "cache", 1},
    {"**/name matches name deeper", "**/cache", "a/b/cache", 1},
    {"**/name does not match a longer name", "**/cache", "a/xcache", 0},
    {"**name is Docker's suffix test", "**cache", "a/xcache", 1},
    {"a/**/b matches a/b", "a/**/b", "a/b", 1},
    {"a/**/b matches deeper", "a/**/b", "a/x/y/b", 1},
    {"escaped star is literal", "\\*", "*", 1},
    {"escaped star is not a wildcard", "\\*", "x", 0},
    {"dot-dot is cleaned lexically", "a/../b", "b", 1},
    {"comment lines are ignored", "# a.log\n", "# a.log", 0},
    {"spaces around a pattern are trimmed", "  a.log  \n", "a.log", 1},
    {"CRLF lines", "a.log\r\nb.log\r\n", "b.log", 1},
    {"a parent dir matching excludes deep paths", "docs/*", "docs/sub/x.md", 1},
    {"pattern one level deep misses deeper files", "docs/*.md", "docs/sub/a.md", 0},
};

static void test_ignore_cases(void)
{
  for (size_t i = 0; i < sizeof(ignore_cases) / sizeof(*ignore_cases); i++) {
    const struct ignore_case *c = &ignore_cases[i];
    struct img_ignore *ig = NULL;
    struct kiln_error err = KILN_ERROR_INIT;
    CHECK_CASE(c->name);
    CHECK_INT(KILN_OK, img_ignore_new(&ig, &err));
    CHECK_INT(KILN_OK, img_ignore_parse(ig, c->dockerignore, strlen(c->dockerignore), &err));
    CHECK_INT(c->excluded, img_ignore_match(ig, c->path, NULL, NULL));
    img_ignore_free(ig);
    kiln_error_clear(&err);
  }
}

/* The walk passes each directory's results to its children, as Docker's tar writer does. */
static void test_parent_results(void)
{
  struct img_ignore *ig = NULL;
  struct kiln_error err = KILN_ERROR_INIT;
  const char *text = "build\n!build/keep\n";
  uint8_t dir[4], file[4];
  CHECK_CASE("parent results");
  img_ignore_new(&ig, &err);
  img_ignore_parse(ig, text, strlen(text), &err);
  CHECK_INT(2, img_ignore_count(ig));
  CHECK_INT(1, img_ignore_match(ig, "build", NULL, dir));
  CHECK_INT(1, img_ignore_exception_under(ig, "build"));
  CHECK_INT(0, img_ignore_exception_under(ig, "buil"));
  CHECK_INT(0, img_ignore_exception_under(ig, "other"));
  CHECK_INT(0, img_ignore_match(ig, "build/keep", dir, file));
  CHECK_INT(1, img_ignore_match(ig, "build/x", dir, file));
  img_ignore_free(ig);
  kiln_error_clear(&err);
}

static void test_bad_patterns(void)
{
  static const char *const bad[] = {"!", "[abc", "a\\"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
    struct img_ignore *ig = NULL;
    struct kiln_error err = KILN_ERROR_INIT;
    CHECK_CASE(bad[i]);
    img_ignore_new(&ig, &err);
    CHECK_INT(KILN_E_INVALID, img_ignore_parse(ig, bad[i], strlen(bad[i]), &err));
    CHECK(err.msg && strstr(err.msg, "line 1"));
    img_ignore_free(ig);
    kiln_error_clear(&err);
  }
}

static void test_dockerfile_lines(void)
{
  const char *text = "# syntax comment\n"
                     "FROM base AS build\n"
                     "\n"
                     "RUN echo a \\\n"
                     "  # a comment inside\n"
                     "  && echo b\n"
                     "copy x /y\n"
                     "CMD [\"run\"]";
  struct img_dockerfile df;
  struct kiln_error err = KILN_ERROR_INIT;
  CHECK_CASE("instruction lines");
  CHECK_INT(KILN_OK, img_dockerfile_parse(text, strlen(text), &df, &err));
  CHECK_INT(4, df.n);
  if (df.n == 4) {
    CHECK_INT(2, df.instrs[0].line);
    CHECK_INT(4, df.instrs[1].line);
    CHECK_STR("RUN", df.instrs[1].keyword);
    CHECK_STR("echo a  && echo b", df.instrs[1].args);
    CHECK_INT(7, df.instrs[2].line);
    CHECK_STR("COPY", df.instrs[2].keyword);
    CHECK_INT(8, df.instrs[3].line);
  }
  img_dockerfile_clear(&df);

  const char *tick = "# escape=`\nFROM base\nRUN echo a `\n  b\nRUN c:\\path\n";
  CHECK_CASE("escape directive");
  CHECK_INT(KILN_OK, img_dockerfile_parse(tick, strlen(tick), &df, &err));
  CHECK_INT(3, df.n);
  if (df.n == 3) {
    CHECK_STR("echo a  b", df.instrs[1].args);
    CHECK_INT(5, df.instrs[2].line);
  }
  img_dockerfile_clear(&df);
  kiln_error_clear(&err);
}

static char *joined(const cJSON *names)
{
  static char buf[512];
  const cJSON *n;
  buf[0] = '\0';
  cJSON_ArrayForEach(n, names)
  {
    if (buf[0])
      strncat(buf, " ", sizeof(buf) - strlen(buf) - 1);
    strncat(buf, n->valuestring, sizeof(buf) - strlen(buf) - 1);
  }
  return buf;
}

static void test_bases(void)
{
  const char *text = "ARG BASE=alpine:3\n"
                     "ARG TAG\n"
                     "FROM --platform=linux/amd64 $BASE AS b1\n"
                     "FROM b1 AS b2\n"
                     "COPY --from=busybox:1 /bin/x /x\n"
                     "COPY --from=b1 /y /y\n"
                     "COPY --from=0 /z /z\n"
                     "FROM ${BASE} AS final\n"
                     "FROM scratch AS last\n"
                     "FROM debian:${TAG:-12}\n";
  struct img_dockerfile df;
  struct kiln_error err = KILN_ERROR_INIT;
  cJSON *names = NULL, *args = cJSON_Parse("{\"BASE\":\"ubuntu:24.04\",\"TAG\":\"13\"}");
  img_dockerfile_parse(text, strlen(text), &df, &err);
  CHECK_CASE("bases with defaults");
  CHECK_INT(KILN_OK, img_dockerfile_bases(&df, NULL, NULL, &names, &err));
  CHECK_STR("alpine:3 busybox:1 debian:12", joined(names));
  cJSON_Delete(names);
  CHECK_CASE("bases with build args");
  CHECK_INT(KILN_OK, img_dockerfile_bases(&df, args, NULL, &names, &err));
  CHECK_STR("busybox:1 debian:13 ubuntu:24.04", joined(names));
  cJSON_Delete(names);
  CHECK_CASE("bases up to a target");
  CHECK_INT(KILN_OK, img_dockerfile_bases(&df, NULL, "b2", &names, &err));
  CHECK_STR("alpine:3 busybox:1", joined(names));
  cJSON_Delete(names);
  CHECK_CASE("unknown target");
  names = NULL;
  CHECK_INT(KILN_E_INVALID, img_dockerfile_bases(&df, NULL, "nope", &names, &err));
  CHECK(err.msg && strstr(err.msg, "\"nope\"") && strstr(err.msg, "b1, b2, final, last"));
  CHECK(names == NULL);
  img_dockerfile_clear(&df);
  cJSON_Delete(args);
  kiln_error_clear(&err);
}

int main(void)
{
  test_ignore_cases();
  test_parent_results();
  test_bad_patterns();
  test_dockerfile_lines();
  test_bases();
  return check_failures > 100 ? 100 : check_failures;
}
