/* The table from Caffe's type strings to layer operations, built from the
 * list in layers/types.def. */
#include "config.h"

#include <string.h>

#include "layers/layer.h"
#include "layers/registry.h"

static const layer_ops *const registry[] = {
#define LAYER_TYPE(name) &name##_layer_ops,
#include "layers/types.def"
#undef LAYER_TYPE
    NULL};

const layer_ops *layer_registry_find(const char *type) {
  for (const layer_ops *const *o = registry; *o; o++)
    if (!strcmp((*o)->type, type))
      return *o;
  return NULL;
}

void layer_registry_list(const char **names, int max) {
  int n = 0;
  for (const layer_ops *const *o = registry; *o && n + 1 < max; o++)
    names[n++] = (*o)->type;
  if (max > 0)
    names[n] = NULL;
}
