/* Kernel source blobs:DIR: a nitro-cli blobs directory (bzImage, bzImage.config, cmdline, init,
 * nsm.ko; Image and Image.config for aarch64). Its init is used only when /eif/init is "blobs". */
#include <stdlib.h>
#include <string.h>

#include "kernel.h"
#include "util/buf.h"
#include "util/fs.h"

kiln_err kiln_kernel_blobs(struct kiln_stage_ctx *ctx, const struct kiln_host *host,
                           const char *blobs_dir, const char *out_dir, struct kernel_result *r)
{
  const char *image = kiln_kernel_arch(ctx, host)->target; /* bzImage or Image */
  struct kiln_buf image_config = KILN_BUF_INIT;
  kiln_buf_printf(&image_config, "%s.config", image);
  const char *const copies[][2] = {{image, image},
                                   {kiln_buf_str(&image_config), "config"},
                                   {"init", "init"},
                                   {"nsm.ko", "modules/nsm.ko"}};
  struct kiln_error err = KILN_ERROR_INIT;
  char *dir = kiln_path_absolute(host->app_dir(ctx), blobs_dir);
  kiln_err rc = dir ? KILN_OK : KILN_E_NOMEM;
  if (!rc && !kiln_is_dir(dir))
    rc = kiln_error_set(&err, KILN_E_NOT_FOUND, "%s is not a directory", dir);
  char *modules = out_dir ? kiln_path_join(out_dir, "modules") : NULL;
  if (!rc)
    rc = kiln_mkdir_p(modules, 0755, &err);
  for (size_t i = 0; !rc && i < sizeof copies / sizeof *copies; i++) {
    char *src = kiln_path_join(dir, copies[i][0]);
    char *dst = kiln_path_join(out_dir, copies[i][1]);
    if (!kiln_path_exists(src) && strcmp(copies[i][0], "nsm.ko") == 0) {
      free(src);
      free(dst);
      continue; /* NSM built into the kernel */
    }
    rc = kiln_copy_file(src, dst, &err);
    free(src);
    free(dst);
  }
  /* cmdline: trimmed like nitro-cli does. */
  char *cmd_src = kiln_path_join(dir, "cmdline"), *text = NULL;
  if (!rc)
    rc = kiln_read_file(cmd_src, 4096, &text, NULL, &err);
  if (!rc) {
    size_t n = strlen(text);
    while (n && (text[n - 1] == '\n' || text[n - 1] == ' ' || text[n - 1] == '\r'))
      text[--n] = '\0';
    char *dst = kiln_path_join(out_dir, "cmdline");
    rc = kiln_write_file_atomic(dst, text, n, 0644, &err);
    free(dst);
  }
  char *nsm = kiln_path_join(out_dir, "modules/nsm.ko");
  char *order = kiln_path_join(out_dir, "modules.order");
  if (!rc) {
    const char *list = kiln_path_exists(nsm) ? "nsm.ko\n" : "";
    rc = kiln_write_file_atomic(order, list, strlen(list), 0644, &err);
  }
  if (rc) {
    rc = host->fail(ctx, rc, "kernel blobs:%s: %s", blobs_dir, kiln_error_msg(&err));
  } else {
    r->meta = cJSON_CreateObject();
    cJSON_AddStringToObject(r->meta, "version", "blobs");
    cJSON_AddStringToObject(r->meta, "cmdline", text);
  }
  kiln_error_clear(&err);
  kiln_buf_free(&image_config);
  free(dir);
  free(modules);
  free(cmd_src);
  free(text);
  free(nsm);
  free(order);
  return rc;
}
