/* Assembling the pinned toolchain: every pinned .deb fetched and verified, unpacked into a
 * temporary directory of the cache, given wrappers that run each tool under the pinned dynamic
 * loader with only the pinned libraries (the native x86_64 tools, and for aarch64 the cross tools
 * too), then renamed into <cache>/toolchain/<id>. Also the clean
 * environment builds run in, the check for the host's steering tools, and the host compiler's
 * identity for kiln.lock. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "toolchain.h"
#include "util/buf.h"
#include "util/fs.h"

#define GCC_MAJOR "12"

char *kiln_toolchain_pins_path(const char *share_dir, const char *arch)
{
  struct kiln_buf b = KILN_BUF_INIT;
  kiln_buf_printf(&b, "%s/toolchain/x86_64-%s.pins", share_dir, arch);
  return kiln_buf_detach(&b);
}

char *kiln_cache_root_from_state(const char *state_dir)
{
  char *c = strdup(state_dir);
  for (int i = 0; c && i < 2; i++) {
    char *slash = strrchr(c, '/');
    if (slash && slash != c)
      *slash = '\0';
  }
  return c;
}

static const char *triplet_of(const char *arch)
{
  if (strcmp(arch, "x86_64") == 0)
    return "x86_64-linux-gnu";
  if (strcmp(arch, "aarch64") == 0)
    return "aarch64-linux-gnu";
  return NULL;
}

/* One wrapper: exec the pinned loader with only the pinned libraries on the real tool. */
static kiln_err write_wrapper(const char *bin, const char *name, const char *root, const char *tool,
                              const char *extra, struct kiln_error *err)
{
  struct kiln_buf text = KILN_BUF_INIT, path = KILN_BUF_INIT;
  kiln_buf_printf(&text,
                  "#!/bin/sh\n# kiln: the pinned %s, run by the pinned loader and libraries\n"
                  "exec '%s/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2' --library-path "
                  "'%s/lib/x86_64-linux-gnu:%s/usr/lib/x86_64-linux-gnu' '%s/%s'%s \"$@\"\n",
                  name, root, root, root, root, tool, extra ? extra : "");
  kiln_buf_printf(&path, "%s/%s", bin, name);
  kiln_err rc = kiln_buf_status(&text);
  if (!rc)
    rc = kiln_write_file_atomic(path.data, text.data, text.len, 0755, err);
  kiln_buf_free(&text);
  kiln_buf_free(&path);
  return rc;
}

static const char *const binutils[][2] = {
    {"as", "as"},       {"ld", "ld.bfd"},       {"ar", "ar"},
    {"nm", "nm"},       {"objcopy", "objcopy"}, {"objdump", "objdump"},
    {"strip", "strip"}, {"readelf", "readelf"}, {"ranlib", "ranlib"},
};
static const char *const gcc_internal[] = {"cc1", "collect2", "lto-wrapper", "lto1"};

/* The driver (gcc/cc/cpp, named name) of compiler triplet, with -B at its internals directory
 * (gcc runs cc1, as and collect2 from the wrappers there, collect2 runs ld), the extra flags, and
 * the prefix map that keeps the toolchain's location out of any output. */
static kiln_err write_driver(const char *bin, const char *name, const char *final_root,
                             const char *internals, const char *triplet, const char *driver,
                             const char *extra, struct kiln_error *err)
{
  struct kiln_buf flags = KILN_BUF_INIT, tool = KILN_BUF_INIT;
  kiln_buf_printf(&flags, " '-B%s/'%s '-ffile-prefix-map=%s=/toolchain'", internals,
                  extra ? extra : "", final_root);
  kiln_buf_printf(&tool, "usr/bin/%s-%s-" GCC_MAJOR, triplet, driver);
  kiln_err rc = kiln_buf_status(&flags);
  if (!rc)
    rc = kiln_buf_status(&tool);
  if (!rc)
    rc = write_wrapper(bin, name, final_root, tool.data, flags.data, err);
  kiln_buf_free(&flags);
  kiln_buf_free(&tool);
  return rc;
}

/* The wrappers of the native x86_64 toolchain in bin (the x86_64 target's compiler, and the
 * kernel build's host compiler for every target), under final_root (where the tree will live). */
static kiln_err write_native_wrappers(const char *bin, const char *final_root,
                                      struct kiln_error *err)
{
  static const char *const native = "x86_64-linux-gnu";
  struct kiln_buf t = KILN_BUF_INIT, internals = KILN_BUF_INIT;
  kiln_buf_printf(&internals, "%s/kiln-bin", final_root);
  kiln_err rc = kiln_buf_status(&internals);
  for (size_t i = 0; !rc && i < sizeof binutils / sizeof binutils[0]; i++) {
    kiln_buf_reset(&t);
    kiln_buf_printf(&t, "usr/bin/%s-%s", native, binutils[i][1]);
    rc = write_wrapper(bin, binutils[i][0], final_root, t.data, NULL, err);
  }
  static const char *const drivers[] = {"gcc", "cc", "cpp"};
  for (size_t i = 0; !rc && i < 3; i++)
    rc = write_driver(bin, drivers[i], final_root, internals.data, native, i == 2 ? "cpp" : "gcc",
                      NULL, err);
  for (size_t i = 0; !rc && i < sizeof gcc_internal / sizeof gcc_internal[0]; i++) {
    kiln_buf_reset(&t);
    kiln_buf_printf(&t, "usr/lib/gcc/%s/" GCC_MAJOR "/%s", native, gcc_internal[i]);
    rc = write_wrapper(bin, gcc_internal[i], final_root, t.data, NULL, err);
  }
  if (!rc)
    rc = write_wrapper(bin, "gzip", final_root, "bin/gzip", NULL, err);
  kiln_buf_free(&t);
  kiln_buf_free(&internals);
  return rc;
}

/* The wrappers of a cross toolchain for triplet: <triplet>-gcc, -cc, -cpp and the binutils with
 * their prefixed names in bin (what CROSS_COMPILE names), and the internals the cross gcc runs
 * (cc1, collect2, lto-wrapper, lto1, as, ld) in bin/<triplet>/, apart from the native ones. The
 * driver's --sysroot is usr/<triplet> of the tree: the target's glibc, headers and libraries, so
 * neither the host's /usr/include or /usr/<triplet> nor the tree's native headers take part. */
static kiln_err write_cross_wrappers(const char *bin, const char *final_root, const char *triplet,
                                     struct kiln_error *err)
{
  struct kiln_buf t = KILN_BUF_INIT, name = KILN_BUF_INIT, internals = KILN_BUF_INIT;
  struct kiln_buf sysroot = KILN_BUF_INIT;
  char *internal_dir = kiln_path_join(bin, triplet);
  kiln_buf_printf(&internals, "%s/kiln-bin/%s", final_root, triplet);
  kiln_buf_printf(&sysroot, " '--sysroot=%s/usr/%s'", final_root, triplet);
  kiln_err rc = internal_dir ? kiln_mkdir_p(internal_dir, 0755, err) : KILN_E_NOMEM;
  if (!rc)
    rc = kiln_buf_status(&internals);
  if (!rc)
    rc = kiln_buf_status(&sysroot);
  for (size_t i = 0; !rc && i < sizeof binutils / sizeof binutils[0]; i++) {
    kiln_buf_reset(&t);
    kiln_buf_reset(&name);
    kiln_buf_printf(&t, "usr/bin/%s-%s", triplet, binutils[i][1]);
    kiln_buf_printf(&name, "%s-%s", triplet, binutils[i][0]);
    rc = write_wrapper(bin, name.data, final_root, t.data, NULL, err);
    if (!rc && (strcmp(binutils[i][0], "as") == 0 || strcmp(binutils[i][0], "ld") == 0))
      rc = write_wrapper(internal_dir, binutils[i][0], final_root, t.data, NULL, err);
  }
  static const char *const drivers[] = {"gcc", "cc", "cpp"};
  for (size_t i = 0; !rc && i < 3; i++) {
    kiln_buf_reset(&name);
    kiln_buf_printf(&name, "%s-%s", triplet, drivers[i]);
    rc = write_driver(bin, name.data, final_root, internals.data, triplet, i == 2 ? "cpp" : "gcc",
                      sysroot.data, err);
  }
  for (size_t i = 0; !rc && i < sizeof gcc_internal / sizeof gcc_internal[0]; i++) {
    kiln_buf_reset(&t);
    kiln_buf_printf(&t, "usr/lib/gcc-cross/%s/" GCC_MAJOR "/%s", triplet, gcc_internal[i]);
    rc = write_wrapper(internal_dir, gcc_internal[i], final_root, t.data, NULL, err);
  }
  free(internal_dir);
  kiln_buf_free(&t);
  kiln_buf_free(&name);
  kiln_buf_free(&internals);
  kiln_buf_free(&sysroot);
  return rc;
}

/* Every wrapper of the toolchain for triplet in tmp_root/kiln-bin. */
static kiln_err write_wrappers(const char *tmp_root, const char *final_root, const char *triplet,
                               struct kiln_error *err)
{
  char *bin = kiln_path_join(tmp_root, "kiln-bin");
  kiln_err rc = bin ? kiln_mkdir_p(bin, 0755, err) : KILN_E_NOMEM;
  if (!rc)
    rc = write_native_wrappers(bin, final_root, err);
  if (!rc && strcmp(triplet, "x86_64-linux-gnu") != 0)
    rc = write_cross_wrappers(bin, final_root, triplet, err);
  free(bin);
  return rc;
}

static kiln_err fill(struct kiln_toolchain *tc, const char *root, const char *arch, const char *id)
{
  int cross = strcmp(arch, "x86_64") != 0;
  struct kiln_buf prefix = KILN_BUF_INIT, sysroot = KILN_BUF_INIT;
  tc->root = strdup(root);
  tc->bin = kiln_path_join(root, "kiln-bin");
  tc->arch = strdup(arch);
  tc->triplet = strdup(triplet_of(arch));
  tc->id = strdup(id);
  if (cross) {
    kiln_buf_printf(&prefix, "%s/kiln-bin/%s-", root, triplet_of(arch));
    kiln_buf_printf(&sysroot, "%s/usr/%s", root, triplet_of(arch));
  } else {
    kiln_buf_printf(&prefix, "%s/kiln-bin/", root);
    kiln_buf_puts(&sysroot, root);
  }
  if (kiln_buf_status(&prefix) == KILN_OK) {
    struct kiln_buf cc = KILN_BUF_INIT;
    kiln_buf_printf(&cc, "%sgcc", prefix.data);
    tc->cc = kiln_buf_detach(&cc);
  }
  tc->tool_prefix = kiln_buf_detach(&prefix);
  tc->sysroot = kiln_buf_detach(&sysroot);
  return tc->root && tc->bin && tc->arch && tc->triplet && tc->id && tc->tool_prefix && tc->cc &&
                 tc->sysroot
             ? KILN_OK
             : KILN_E_NOMEM;
}

kiln_err kiln_toolchain_prepare(const char *share_dir, const char *arch,
                                const struct kiln_fetch_config *c, const char *cache_dir,
                                kiln_toolchain_log_fn log, void *log_arg, struct kiln_toolchain *tc,
                                cJSON **lock, struct kiln_error *err)
{
  memset(tc, 0, sizeof *tc);
  *lock = NULL;
  if (!triplet_of(arch))
    return kiln_error_set(err, KILN_E_UNSUPPORTED,
                          "the pinned toolchain builds for x86_64 or aarch64, not \"%s\"", arch);
  if (strchr(cache_dir, '\''))
    return kiln_error_set(err, KILN_E_INVALID, "the cache directory %s has a ' in its path",
                          cache_dir);
  struct kiln_pins pins;
  char *pins_path = kiln_toolchain_pins_path(share_dir, arch);
  kiln_err rc = pins_path ? kiln_pins_load(pins_path, &pins, err) : KILN_E_NOMEM;
  free(pins_path);
  if (rc)
    return rc;
  struct kiln_buf parent = KILN_BUF_INIT, root = KILN_BUF_INIT, msg = KILN_BUF_INIT;
  char *tmp = NULL;
  char **debs = calloc(pins.count, sizeof *debs);
  const char *shared = getenv("KILN_TOOLCHAIN_DIR");
  if (shared && *shared)
    kiln_buf_puts(&parent, shared);
  else
    kiln_buf_printf(&parent, "%s/toolchain", cache_dir);
  kiln_buf_printf(&root, "%s/%.16s-%s", parent.data, pins.file_sha256, arch);
  if (!debs)
    rc = KILN_E_NOMEM;
  /* Every package is fetched and verified even when the tree exists: kiln.lock then records
   * exactly what the tree was made of, and a verify run proves the downloads again. */
  for (size_t i = 0; !rc && i < pins.count; i++) {
    kiln_buf_reset(&msg);
    kiln_buf_printf(&msg, "toolchain: %s %s", pins.items[i].package, pins.items[i].version);
    if (log)
      log(log_arg, msg.data);
    rc = kiln_pin_fetch(&pins.items[i], c, &debs[i], err);
  }
  if (!rc && !kiln_is_dir(root.data)) {
    if (log)
      log(log_arg, "toolchain: unpacking the pinned packages");
    rc = kiln_mkdir_p(parent.data, 0755, err);
    if (!rc)
      rc = kiln_mkdtemp_in(parent.data, ".unpack-", &tmp, err);
    for (size_t i = 0; !rc && i < pins.count; i++)
      rc = kiln_deb_unpack_all(debs[i], tmp, err);
    if (!rc)
      rc = write_wrappers(tmp, root.data, triplet_of(arch), err);
    if (!rc && rename(tmp, root.data) != 0) {
      if (errno == EEXIST || errno == ENOTEMPTY)
        kiln_rm_rf_quiet(tmp); /* another build made it first: use theirs */
      else
        rc = kiln_error_set(err, KILN_E_IO, "cannot rename %s to %s: %s", tmp, root.data,
                            strerror(errno));
    }
    if (rc && tmp) {
      kiln_rm_rf_quiet(tmp); /* nothing half-made stays in the cache */
      kiln_error_prefix(err, "unpacking the pinned toolchain (nothing was kept)");
    }
  }
  if (!rc)
    rc = fill(tc, root.data, arch, pins.file_sha256);
  if (!rc) {
    *lock = cJSON_CreateObject();
    cJSON_AddStringToObject(*lock, "kind", "pinned");
    cJSON_AddStringToObject(*lock, "arch", arch);
    cJSON_AddStringToObject(*lock, "pins_sha256", pins.file_sha256);
    cJSON_AddItemToObject(*lock, "packages", kiln_pins_to_json(&pins));
  } else {
    kiln_toolchain_free(tc);
  }
  for (size_t i = 0; debs && i < pins.count; i++)
    free(debs[i]);
  free(debs);
  free(tmp);
  kiln_pins_free(&pins);
  kiln_buf_free(&parent);
  kiln_buf_free(&root);
  kiln_buf_free(&msg);
  return rc;
}

void kiln_toolchain_free(struct kiln_toolchain *tc)
{
  free(tc->root);
  free(tc->bin);
  free(tc->arch);
  free(tc->triplet);
  free(tc->tool_prefix);
  free(tc->cc);
  free(tc->sysroot);
  free(tc->id);
  memset(tc, 0, sizeof *tc);
}

char **kiln_toolchain_env(const struct kiln_toolchain *tc)
{
  const char *path = getenv("PATH");
  const char *home = getenv("HOME");
  struct kiln_buf p = KILN_BUF_INIT, h = KILN_BUF_INIT;
  if (tc && tc->bin)
    kiln_buf_printf(&p, "PATH=%s:%s", tc->bin, path && *path ? path : "/usr/bin:/bin");
  else
    kiln_buf_printf(&p, "PATH=%s", path && *path ? path : "/usr/bin:/bin");
  kiln_buf_printf(&h, "HOME=%s", home ? home : "/");
  char **env = calloc(12, sizeof *env);
  if (!env) {
    kiln_buf_free(&p);
    kiln_buf_free(&h);
    return NULL;
  }
  int n = 0;
  env[n++] = kiln_buf_detach(&p);
  env[n++] = kiln_buf_detach(&h);
  static const char *const fixed[] = {"LC_ALL=C",
                                      "LANG=C",
                                      "TZ=UTC",
                                      "SOURCE_DATE_EPOCH=0",
                                      "KBUILD_BUILD_TIMESTAMP=Thu Jan  1 00:00:00 UTC 1970",
                                      "KBUILD_BUILD_USER=kiln",
                                      "KBUILD_BUILD_HOST=kiln",
                                      "KBUILD_BUILD_VERSION=1",
                                      NULL};
  for (int i = 0; fixed[i]; i++)
    env[n++] = strdup(fixed[i]);
  return env;
}

void kiln_toolchain_env_free(char **env)
{
  for (int i = 0; env && env[i]; i++)
    free(env[i]);
  free(env);
}

static int on_path(const char *tool)
{
  const char *path = getenv("PATH");
  char *copy = strdup(path ? path : "");
  char *save = NULL;
  int found = 0;
  for (char *d = copy ? strtok_r(copy, ":", &save) : NULL; d && !found;
       d = strtok_r(NULL, ":", &save)) {
    char *p = kiln_path_join(d, tool);
    found = p && access(p, X_OK) == 0;
    free(p);
  }
  free(copy);
  return found;
}

kiln_err kiln_toolchain_check_host_tools(const char *const *tools, struct kiln_error *err)
{
  /* Debian/Ubuntu package names of the tools that only steer a build. */
  static const char *const packages[][2] = {
      {"make", "make"}, {"flex", "flex"}, {"bison", "bison"},  {"bc", "bc"},
      {"perl", "perl"}, {"sh", "dash"},   {"cat", "coreutils"}};
  struct kiln_buf missing = KILN_BUF_INIT, names = KILN_BUF_INIT;
  for (int i = 0; tools[i]; i++) {
    if (on_path(tools[i]))
      continue;
    const char *pkg = tools[i];
    for (size_t j = 0; j < sizeof packages / sizeof packages[0]; j++)
      if (strcmp(packages[j][0], tools[i]) == 0)
        pkg = packages[j][1];
    kiln_buf_printf(&missing, " %s", tools[i]);
    kiln_buf_printf(&names, " %s", pkg);
  }
  kiln_err rc = KILN_OK;
  if (missing.len)
    rc = kiln_error_set(err, KILN_E_NOT_FOUND,
                        "the build needs tools that are not on PATH:%s; install them (Debian "
                        "and Ubuntu: apt-get install%s; the same names on Fedora and Arch)",
                        missing.data, names.data);
  kiln_buf_free(&missing);
  kiln_buf_free(&names);
  return rc;
}

char *kiln_host_compiler_identity(const char *cc)
{
  struct kiln_buf cmd = KILN_BUF_INIT;
  kiln_buf_printf(&cmd, "'%s' --version 2>/dev/null", cc);
  FILE *p = strchr(cc, '\'') ? NULL : popen(cmd.data, "r");
  kiln_buf_free(&cmd);
  char line[512] = "";
  if (p) {
    if (!fgets(line, sizeof line, p))
      line[0] = '\0';
    pclose(p);
  }
  line[strcspn(line, "\n")] = '\0';
  return strdup(line[0] ? line : "unknown");
}
