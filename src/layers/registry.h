/* Operation tables of every layer type (layers/types.def), defined in the
 * layer files. */
#ifndef CREMA_LAYERS_REGISTRY_H
#define CREMA_LAYERS_REGISTRY_H

#include "layers/layer.h"

#define LAYER_TYPE(name) extern const layer_ops name##_layer_ops;
#include "layers/types.def"
#undef LAYER_TYPE

#endif
