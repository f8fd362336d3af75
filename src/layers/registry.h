/* Operation tables of every layer type, defined in the layer files. */
#ifndef CREMA_LAYERS_REGISTRY_H
#define CREMA_LAYERS_REGISTRY_H

#include "layers/layer.h"

/* extern const layer_ops xxx_layer_ops; */

#endif
