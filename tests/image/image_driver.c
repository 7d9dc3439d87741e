/* Test driver for the image plugin's modules without the core: `image_driver SOURCE OUT.cpio
 * [PLATFORM [CMD_MODE]]` loads the source, builds the run config and writes the rootfs cpio,
 * printing digest, argv and counts (the same steps the stage runs). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "source.h"
#include "util/fs.h"

static void warn(void *ctx, const char *fmt, ...)
{
  (void)ctx;
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "warning: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
}

int main(int argc, char **argv)
{
  if (argc < 3) {
    fprintf(stderr, "usage: image_driver SOURCE OUT.cpio [PLATFORM [docker|nitro-cli]]\n");
    return 2;
  }
  kiln_err rc;
  struct kiln_error err = KILN_ERROR_INIT;
  struct img_source src;
  struct img_spool *spool = NULL;
  struct img_tree *tree = NULL;
  struct img_manifest m = {0};
  struct img_runconfig run = {0};
  struct img_emit_stats stats = {0};
  char *tmp = NULL, cwd[4096];
  const char *platform = argc > 3 ? argv[3] : "linux/amd64";
  const char *sde = getenv("SOURCE_DATE_EPOCH");
  if (!getcwd(cwd, sizeof(cwd)))
    return 1;
  memset(&src, 0, sizeof(src));
  struct img_source_env env = {.platform = platform, .log = warn, .warn = warn};
  if ((rc = kiln_mkdtemp_in(getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", "kiln-drv-", &tmp, &err)))
    goto out;
  env.temp_dir = tmp;
  struct img_run_overrides ov = {.nitro_cli_mode = argc > 4 && strcmp(argv[4], "nitro-cli") == 0};
  if ((rc = img_source_parse(argv[1], cwd, &src, &err)) ||
      (rc = img_spool_new(tmp, &spool, &err)) || (rc = img_tree_new(spool, &tree, &err)))
    goto out;
  tree->warn = warn;
  if ((rc = img_source_load(&src, &env, tree, &m, &err)) ||
      (rc = img_runconfig_build(tree, m.config, &ov, &run, &err)) ||
      (rc = img_rootfs_write(tree, &run, sde ? atoll(sde) : 0, argv[2], &stats, &err)))
    goto out;
  printf("image_digest=%s\nconfig_digest=%s\nfiles=%llu\nbytes=%llu\n",
         m.manifest_digest ? m.manifest_digest : "-", m.config_digest ? m.config_digest : "-",
         (unsigned long long)stats.files, (unsigned long long)stats.bytes);
  for (size_t i = 0; i < run.argc; i++)
    printf("argv=%s\n", run.argv[i]);
  printf("workdir=%s\nuser=%u:%u\n", run.workdir, run.uid, run.gid);
out:
  if (rc)
    fprintf(stderr, "error: %s\n", kiln_error_msg(&err));
  img_runconfig_clear(&run);
  img_manifest_clear(&m);
  img_tree_free(tree);
  img_spool_free(spool);
  img_source_clear(&src);
  if (tmp) {
    struct kiln_error e2 = KILN_ERROR_INIT;
    kiln_rm_rf_quiet(tmp);
    kiln_error_clear(&e2);
  }
  free(tmp);
  kiln_error_clear(&err);
  return rc ? 1 : 0;
}
