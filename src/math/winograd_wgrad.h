/* Winograd F(4x4,3x3) weight gradient of a 3x3, stride-1, dilation-1
 * convolution with pad <= 2 (the geometries conv_engine_winograd takes).
 *
 * With Y = A^T [(G g G^T) . (B^T d B)] A per 4x4 output tile, the filter
 * gradient is dL/dg = G^T [sum over tiles (A dY A^T) . (B^T d B)] G: 36
 * products over tiles in the transformed domain, then one 6x6 -> 3x3
 * transform per filter. */
#ifndef CREMA_MATH_WINOGRAD_WGRAD_H
#define CREMA_MATH_WINOGRAD_WGRAD_H

#include <stddef.h>

#include "math/conv_engine.h"

/* Scratch floats wino_backward_weights needs for g (bounded whatever the
 * image size). */
size_t wino_wgrad_workspace(const conv_geom *g);

/* w_diff += gradient of the convolution g w.r.t. its weights, given its
 * input and output gradient; ws holds wino_wgrad_workspace(g) floats.  g
 * must be a geometry conv_engine_winograd supports. */
void wino_backward_weights(const conv_geom *g, const float *in, const float *out_diff,
                           float *w_diff, float *ws);

/* Whether this is faster than im2col + SGEMM for g. */
int wino_wgrad_preferred(const conv_geom *g);

#endif
