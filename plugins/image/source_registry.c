/* docker:// sources: registry v2 pull over HTTPS (or HTTP for loopback) with libcurl. */
#include "source.h"

kiln_err img_registry_pull(const char *reference, const struct img_source_env *env, int layers,
                           char **dir, struct img_manifest *m, struct kiln_error *err)
{
  (void)env;
  (void)layers;
  (void)m;
  *dir = NULL;
  return kiln_error_set(err, KILN_E_UNSUPPORTED, "docker://%s: registry pulls are not built yet",
                        reference);
}
