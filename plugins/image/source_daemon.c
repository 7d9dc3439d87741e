/* docker-daemon: sources: the Docker Engine API over its unix socket with libcurl. */
#include "source.h"

kiln_err img_daemon_export(const char *name, const struct img_source_env *env, char **tar_path,
                           char **image_id, struct kiln_error *err)
{
  (void)env;
  if (tar_path)
    *tar_path = NULL;
  *image_id = NULL;
  return kiln_error_set(err, KILN_E_UNSUPPORTED, "docker-daemon:%s: not built yet", name);
}
