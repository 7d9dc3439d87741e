/* Kernel source debian-build:6.12: compile Debian's pinned linux-source-6.12 with kiln's enclave
 * config (share/kernel/enclave-<arch>.config on top of tinyconfig) and the pinned toolchain (or
 * the host's, when kiln.json asks), reproducibly (clean environment, fixed KBUILD_BUILD_* values),
 * showing progress; the result is cached by the step cache. aarch64 is cross-compiled (ARCH=arm64,
 * the uncompressed Image) with the pinned cross toolchain, or the host's gcc-aarch64-linux-gnu when
 * kiln.json asks for the host's. */
#define _GNU_SOURCE
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kernel.h"
#include "stage_toolchain.h"
#include "util/buf.h"
#include "util/fs.h"
#include "util/hash.h"

#define BUILD_STEPS_ESTIMATE 1300 /* lines make prints for this config (measured) */

/* The tools that only steer the kernel build come from the host (make, flex, bison, bc, perl:
 * their output is Kconfig/Makefile logic, parsers and constants whose bytes do not depend on the
 * tool's version), as do the headers of the host programs (objtool, sign-file) that run during
 * the build but never land in the image. */
static kiln_err check_tools(int pinned, struct kiln_error *err)
{
  static const char *const steering[] = {"make", "flex", "bison", "bc", "perl", "sh", NULL};
  static const char *const with_gcc[] = {"make", "flex", "bison", "bc", "perl", "sh", "gcc", NULL};
  static const char *const headers[] = {"/usr/include/gelf.h", "/usr/include/openssl/ssl.h", NULL};
  kiln_err rc = kiln_toolchain_check_host_tools(pinned ? steering : with_gcc, err);
  struct kiln_buf missing = KILN_BUF_INIT;
  for (int i = 0; !rc && headers[i]; i++)
    if (!kiln_path_exists(headers[i]))
      kiln_buf_printf(&missing, " %s", headers[i]);
  if (missing.len)
    rc = kiln_error_set(err, KILN_E_NOT_FOUND,
                        "compiling the enclave kernel needs headers that are missing:%s; install "
                        "them with: apt-get install libelf-dev libssl-dev",
                        kiln_buf_str(&missing));
  kiln_buf_free(&missing);
  return rc;
}

/* make's variables that point the kernel build at the pinned tools: the target's compiler and
 * binutils (the cross ones for aarch64), the host programs compiled with the pinned native gcc
 * (against the host's libc, as they run here), and gzip, whose output is the compressed kernel,
 * the pinned one. */
static void add_toolchain_vars(const struct kiln_stage_toolchain *st, char **argv, int *n)
{
  if (!st->pinned)
    return;
  static const char *const target[][2] = {
      {"CC", "gcc"},          {"LD", "ld"},           {"AR", "ar"},           {"NM", "nm"},
      {"OBJCOPY", "objcopy"}, {"OBJDUMP", "objdump"}, {"READELF", "readelf"}, {"STRIP", "strip"}};
  static const char *const native[][2] = {
      {"HOSTCC", "gcc"}, {"HOSTLD", "ld"}, {"HOSTAR", "ar"}, {"KGZIP", "gzip"}};
  for (size_t i = 0; i < sizeof target / sizeof target[0]; i++) {
    struct kiln_buf b = KILN_BUF_INIT;
    kiln_buf_printf(&b, "%s=%s%s", target[i][0], st->tc.tool_prefix, target[i][1]);
    argv[(*n)++] = kiln_buf_detach(&b);
  }
  for (size_t i = 0; i < sizeof native / sizeof native[0]; i++) {
    struct kiln_buf b = KILN_BUF_INIT;
    kiln_buf_printf(&b, "%s=%s/%s", native[i][0], st->tc.bin, native[i][1]);
    argv[(*n)++] = kiln_buf_detach(&b);
  }
}

struct source_select {
  const char *dest;
  int found;
};

static char *select_tarball(void *arg, const char *member)
{
  struct source_select *s = arg;
  const char *m = strncmp(member, "./", 2) == 0 ? member + 2 : member;
  if (strcmp(m, "usr/src/" KILN_DEBIAN_SOURCE_PACKAGE ".tar.xz") != 0)
    return NULL;
  s->found = 1;
  return strdup(s->dest);
}

/* Unpack the kernel source tarball under dir with libarchive, refusing unsafe paths. */
static kiln_err untar(const char *tarball, const char *dir, struct kiln_error *err)
{
  struct archive *in = archive_read_new(), *out = archive_write_disk_new();
  archive_read_support_format_tar(in);
  archive_read_support_filter_xz(in);
  archive_write_disk_set_options(out, ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_PERM |
                                          ARCHIVE_EXTRACT_SECURE_SYMLINKS |
                                          ARCHIVE_EXTRACT_SECURE_NODOTDOT);
  kiln_err rc = KILN_OK;
  if (archive_read_open_filename(in, tarball, 1 << 20) != ARCHIVE_OK) {
    rc = kiln_error_set(err, KILN_E_INVALID, "%s: %s", tarball, archive_error_string(in));
    goto out;
  }
  struct archive_entry *e;
  int r;
  while ((r = archive_read_next_header(in, &e)) == ARCHIVE_OK) {
    const char *name = archive_entry_pathname(e);
    size_t nl = name ? strlen(name) : 0;
    if (!name || name[0] == '/' || strcmp(name, "..") == 0 || strncmp(name, "../", 3) == 0 ||
        strstr(name, "/../") || (nl >= 3 && strcmp(name + nl - 3, "/..") == 0)) {
      rc = kiln_error_set(err, KILN_E_INVALID, "%s: unsafe path \"%s\"", tarball, name ? name : "");
      goto out;
    }
    struct kiln_buf p = KILN_BUF_INIT;
    kiln_buf_printf(&p, "%s/%s", dir, name);
    archive_entry_set_pathname(e, p.data);
    const char *hl = archive_entry_hardlink(e);
    if (hl) {
      struct kiln_buf h = KILN_BUF_INIT;
      kiln_buf_printf(&h, "%s/%s", dir, hl);
      archive_entry_set_hardlink(e, h.data);
      kiln_buf_free(&h);
    }
    kiln_buf_free(&p);
    if (archive_write_header(out, e) != ARCHIVE_OK) {
      rc = kiln_error_set(err, KILN_E_IO, "unpacking %s: %s", tarball, archive_error_string(out));
      goto out;
    }
    const void *buf;
    size_t size;
    la_int64_t off;
    while ((r = archive_read_data_block(in, &buf, &size, &off)) == ARCHIVE_OK)
      if (archive_write_data_block(out, buf, size, off) != ARCHIVE_OK)
        break;
    if (r != ARCHIVE_EOF && r != ARCHIVE_OK) {
      rc = kiln_error_set(err, KILN_E_IO, "unpacking %s: %s", tarball, archive_error_string(in));
      goto out;
    }
    archive_write_finish_entry(out);
  }
  if (r != ARCHIVE_EOF)
    rc = kiln_error_set(err, KILN_E_INVALID, "%s: %s", tarball, archive_error_string(in));
out:
  archive_read_free(in);
  archive_write_free(out);
  return rc;
}

/* Run a command in dir with the clean reproducibility environment (kiln_toolchain_env, umask
 * 022); stdout lines count as progress. */
static kiln_err run_make(struct kiln_stage_ctx *ctx, const struct kiln_host *host, const char *dir,
                         char *const argv[], char *const env[], const char *what,
                         struct kiln_error *err)
{
  int pipefd[2];
  if (pipe(pipefd) != 0)
    return kiln_error_set(err, KILN_E_IO, "pipe: %s", strerror(errno));
  pid_t pid = fork();
  if (pid == 0) {
    close(pipefd[0]);
    dup2(pipefd[1], STDOUT_FILENO);
    if (chdir(dir) != 0)
      _exit(126);
    umask(022);
    execvpe(argv[0], argv, env);
    _exit(127);
  }
  close(pipefd[1]);
  FILE *f = fdopen(pipefd[0], "r");
  char line[4096];
  uint64_t lines = 0;
  int killed = 0;
  while (f && fgets(line, sizeof line, f)) {
    lines++;
    host->progress(ctx, lines < BUILD_STEPS_ESTIMATE ? lines : BUILD_STEPS_ESTIMATE - 1,
                   strcmp(what, "compiling") == 0 ? BUILD_STEPS_ESTIMATE : 0, what);
    if (!killed && host->cancelled(ctx)) {
      kill(pid, SIGTERM);
      killed = 1;
    }
  }
  if (f)
    fclose(f);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
    ;
  if (killed)
    return kiln_error_set(err, KILN_E_CANCELLED, "kernel build interrupted");
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    return kiln_error_set(err, KILN_E_INVALID,
                          "%s the kernel failed (%s %s exited with %d; its "
                          "errors are above)",
                          what, argv[0], argv[1] ? argv[1] : "",
                          WIFEXITED(status) ? WEXITSTATUS(status) : -1);
  return KILN_OK;
}

/* Options an enclave cannot boot or be reached without: dropping one is an error. */
static const char *const essential_options[] = {
    "CONFIG_VIRTIO_MMIO=y", "CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES=y",
    "CONFIG_VSOCKETS=y",    "CONFIG_VIRTIO_VSOCKETS=y",
    "CONFIG_NSM=y",         "CONFIG_BLK_DEV_INITRD=y",
    "CONFIG_DEVTMPFS=y",    "CONFIG_SERIAL_8250_CONSOLE=y",
    "CONFIG_BINFMT_ELF=y",  NULL};

/* Compare the fragment with the final .config: essential options must survive olddefconfig;
 * others that did not (menus, renamed symbols) are reported as warnings. */
static kiln_err check_config(struct kiln_stage_ctx *ctx, const struct kiln_host *host,
                             const char *fragment, const char *config, struct kiln_error *err)
{
  char *want = NULL, *have = NULL;
  kiln_err rc = kiln_read_file(fragment, 1u << 20, &want, NULL, err);
  if (!rc)
    rc = kiln_read_file(config, 16u << 20, &have, NULL, err);
  char *save = NULL;
  for (char *l = rc ? NULL : strtok_r(want, "\n", &save); l && !rc;
       l = strtok_r(NULL, "\n", &save)) {
    if (strncmp(l, "CONFIG_", 7) != 0)
      continue;
    struct kiln_buf needle = KILN_BUF_INIT;
    kiln_buf_printf(&needle, "\n%s\n", l);
    if (!strstr(have, needle.data)) {
      int essential = 0;
      for (int i = 0; essential_options[i]; i++)
        essential |= strcmp(l, essential_options[i]) == 0;
      if (essential)
        rc = kiln_error_set(err, KILN_E_INVALID,
                            "kernel config: %s was dropped by olddefconfig (a dependency is "
                            "missing from %s)",
                            l, fragment);
      else
        host->log(ctx, KILN_LOG_WARN, "kernel config: %s is not in the final configuration", l);
    }
    kiln_buf_free(&needle);
  }
  free(want);
  free(have);
  return rc;
}

/* make with the toolchain's variables, then args (NULL-terminated), in the kernel tree. */
static kiln_err make(struct kiln_stage_ctx *ctx, const struct kiln_host *host, const char *dir,
                     const struct kernel_arch *arch, const struct kiln_stage_toolchain *st,
                     char *const env[], const char *const args[], const char *what,
                     struct kiln_error *err)
{
  char *argv[40] = {0};
  int n = 0;
  argv[n++] = strdup("make");
  add_toolchain_vars(st, argv, &n);
  if (arch->cross_prefix[0]) { /* cross builds: the pinned cross tools, or the host's */
    struct kiln_buf a = KILN_BUF_INIT, c = KILN_BUF_INIT;
    kiln_buf_printf(&a, "ARCH=%s", arch->make_arch);
    kiln_buf_printf(&c, "CROSS_COMPILE=%s", st->pinned ? st->tc.tool_prefix : arch->cross_prefix);
    argv[n++] = kiln_buf_detach(&a);
    argv[n++] = kiln_buf_detach(&c);
  }
  for (int i = 0; args[i] && n < 39; i++)
    argv[n++] = strdup(args[i]);
  kiln_err rc = run_make(ctx, host, dir, argv, env, what, err);
  for (int i = 0; i < n; i++)
    free(argv[i]);
  return rc;
}

kiln_err kiln_kernel_debian_build(struct kiln_stage_ctx *ctx, const struct kiln_host *host,
                                  const char *out_dir, struct kernel_result *r)
{
  struct kiln_error err = KILN_ERROR_INIT;
  struct kiln_buf tarball = KILN_BUF_INIT, src = KILN_BUF_INIT;
  struct kiln_buf jobs = KILN_BUF_INIT;
  struct kiln_stage_toolchain st;
  memset(&st, 0, sizeof st);
  char *deb = NULL, *fragment = NULL, *config = NULL;
  char **env = NULL;
  char sha[KILN_SHA256_HEX_LEN + 1];
  const char *tmp = host->temp_dir(ctx);
  const char *kind = kiln_toolchain_kind(host->config(ctx));
  const struct kernel_arch *arch = kiln_kernel_arch(ctx, host);
  int pinned = !kind || strcmp(kind, "pinned") == 0;
  kiln_err rc = tmp ? check_tools(pinned, &err) : kiln_error_set(&err, KILN_E_IO, "no temp dir");
  if (!rc && !pinned) {
    char what[64];
    snprintf(what, sizeof what, "compiling the %s enclave kernel", arch->name);
    rc = kiln_toolchain_check_host_cross(arch->name, what, &err);
  }
  if (!rc) {
    host->log(ctx, KILN_LOG_INFO, "fetching %s %s (153 MB)", KILN_DEBIAN_SOURCE_PACKAGE,
              KILN_DEBIAN_PACKAGE_VERSION);
    rc = kiln_deb_fetch(ctx, host, KILN_DEBIAN_SOURCE_PACKAGE, KILN_DEBIAN_PACKAGE_VERSION, &deb,
                        &err);
  }
  if (!rc) {
    host->log(ctx, KILN_LOG_INFO, "preparing the %s toolchain", pinned ? "pinned" : "host");
    rc = kiln_stage_toolchain_open(ctx, host, arch->name, &st, &err);
  }
  if (!rc && !(env = kiln_toolchain_env(st.pinned ? &st.tc : NULL)))
    rc = KILN_E_NOMEM;
  if (!rc)
    rc = kiln_sha256_file(deb, sha, NULL, &err);
  kiln_buf_printf(&tarball, "%s/linux-source.tar.xz", tmp);
  kiln_buf_printf(&src, "%s/src", tmp);
  struct source_select sel = {kiln_buf_str(&tarball), 0};
  if (!rc)
    rc = kiln_deb_extract(deb, select_tarball, &sel, &err);
  if (!rc && !sel.found)
    rc = kiln_error_set(&err, KILN_E_INVALID, "%s has no kernel source tarball", deb);
  if (!rc) {
    host->log(ctx, KILN_LOG_INFO, "unpacking the kernel source");
    rc = kiln_mkdir_p(kiln_buf_str(&src), 0755, &err);
  }
  if (!rc)
    rc = untar(kiln_buf_str(&tarball), kiln_buf_str(&src), &err);
  unlink(kiln_buf_str(&tarball));
  kiln_buf_printf(&src, "/%s", KILN_DEBIAN_SOURCE_PACKAGE);
  fragment = kiln_path_join(host->share_dir(ctx), arch->fragment);
  config = kiln_path_join(kiln_buf_str(&src), ".config");
  long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  kiln_buf_printf(&jobs, "-j%ld", ncpu > 0 ? ncpu : 1);
  if (!rc) {
    host->log(ctx, KILN_LOG_INFO, "configuring (tinyconfig + %s)", fragment);
    static const char *const tiny[] = {"tinyconfig", NULL};
    static const char *const olddef[] = {"olddefconfig", NULL};
    char *const merge[] = {"scripts/kconfig/merge_config.sh", "-m", ".config", fragment, NULL};
    rc = make(ctx, host, kiln_buf_str(&src), arch, &st, env, tiny, "configuring", &err);
    if (!rc)
      rc = run_make(ctx, host, kiln_buf_str(&src), merge, env, "configuring", &err);
    if (!rc)
      rc = make(ctx, host, kiln_buf_str(&src), arch, &st, env, olddef, "configuring", &err);
    if (!rc)
      rc = check_config(ctx, host, fragment, config, &err);
  }
  if (!rc) {
    host->log(ctx, KILN_LOG_INFO,
              "compiling the enclave kernel with the %s toolchain (about 10 "
              "minutes on 2 cores)",
              st.pinned ? "pinned" : "host");
    const char *const build[] = {jobs.data, arch->target, NULL};
    rc = make(ctx, host, kiln_buf_str(&src), arch, &st, env, build, "compiling", &err);
  }
  if (!rc) {
    char *image = kiln_path_join(kiln_buf_str(&src), arch->image_path);
    char *dst = kiln_path_join(out_dir, arch->target);
    char *cfg = kiln_path_join(out_dir, "config");
    char *order = kiln_path_join(out_dir, "modules.order");
    rc = kiln_copy_file(image, dst, &err);
    if (!rc)
      rc = kiln_copy_file(config, cfg, &err);
    if (!rc)
      rc = kiln_write_file_atomic(order, "", 0, 0644, &err); /* everything is built in */
    free(image);
    free(dst);
    free(cfg);
    free(order);
  }
  if (rc) {
    rc = host->fail(ctx, rc, "kernel debian-build:6.12: %s", kiln_error_msg(&err));
  } else {
    r->package = cJSON_CreateObject();
    cJSON_AddStringToObject(r->package, "name", KILN_DEBIAN_SOURCE_PACKAGE);
    cJSON_AddStringToObject(r->package, "version", KILN_DEBIAN_PACKAGE_VERSION);
    cJSON_AddStringToObject(r->package, "sha256", sha);
    r->meta = cJSON_CreateObject();
    cJSON_AddStringToObject(r->meta, "version", "6.12.117 (kiln enclave config)");
    cJSON_AddStringToObject(r->meta, "toolchain", st.pinned ? "pinned" : "host");
  }
  kiln_error_clear(&err);
  kiln_stage_toolchain_close(&st);
  kiln_toolchain_env_free(env);
  kiln_buf_free(&tarball);
  kiln_buf_free(&src);
  kiln_buf_free(&jobs);
  free(deb);
  free(fragment);
  free(config);
  return rc;
}
