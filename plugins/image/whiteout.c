/* OCI whiteouts: ".wh.NAME" hides NAME of lower layers, ".wh..wh..opq" hides every lower-layer
 * child of its directory, other ".wh..wh.*" names are aufs metadata and are dropped. Content added
 * by the same layer survives (image-spec layer.md), which the per-node layer stamp tells apart. */
#include <string.h>

#include "image.h"

#define WH_PREFIX ".wh."
#define WH_META_PREFIX ".wh..wh."
#define WH_OPAQUE ".wh..wh..opq"

enum img_whiteout_kind img_whiteout_classify(const char *base, const char **target)
{
  *target = NULL;
  if (strncmp(base, WH_PREFIX, strlen(WH_PREFIX)) != 0)
    return IMG_WH_NONE;
  if (strcmp(base, WH_OPAQUE) == 0)
    return IMG_WH_OPAQUE;
  if (strncmp(base, WH_META_PREFIX, strlen(WH_META_PREFIX)) == 0)
    return IMG_WH_META;
  *target = base + strlen(WH_PREFIX);
  return IMG_WH_FILE;
}

kiln_err img_whiteout_apply(struct img_tree *t, struct img_node *dir, const char *name,
                            uint32_t layer, const char *path, struct kiln_error *err)
{
  if (!name[0] || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
    return kiln_error_set(err, KILN_E_INVALID, "invalid whiteout \"%s\": it names no file", path);
  struct img_node *victim = img_node_find(dir, name, strlen(name));
  if (!victim) {
    if (t->warn)
      t->warn(t->warn_ctx,
              "layer %s: whiteout %s hides nothing (no such path in lower layers); ignored",
              t->layer_label ? t->layer_label : "?", path);
    return KILN_OK;
  }
  if (victim->layer == layer)
    return KILN_OK; /* same-layer content is only hidden by later layers */
  img_node_remove(t, victim);
  return KILN_OK;
}

void img_whiteout_opaque(struct img_tree *t, struct img_node *dir, uint32_t layer)
{
  size_t i = 0;
  while (i < dir->nkids) {
    struct img_node *kid = dir->kids[i];
    if (kid->layer != layer) {
      img_node_remove(t, kid);
      continue;
    }
    if (img_node_is_dir(kid))
      img_whiteout_opaque(t, kid, layer);
    i++;
  }
}
