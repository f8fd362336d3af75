/* What a Convolution or Deconvolution layer decided, for those who report
 * it (tests, timing). */
#ifndef CREMA_LAYERS_CONV_H
#define CREMA_LAYERS_CONV_H

#include "layers/layer.h"

/* The engine the layer resolved at its last reshape from its net's
 * crema_options.conv_engine and its geometry ("gemm", "winograd", ...);
 * NULL for other layers. */
const char *conv_layer_engine(const layer *l);

#endif
