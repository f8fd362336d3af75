/* The softmax computation shared by the Softmax layer and SoftmaxWithLoss
 * (Caffe builds the loss on an internal Softmax layer; here both call this). */
#ifndef CREMA_LAYERS_SOFTMAX_H
#define CREMA_LAYERS_SOFTMAX_H

#include <stddef.h>

/* out = softmax of in over the middle axis of an (outer, channels, inner)
 * array, stabilised by the per-position maximum as Caffe does.  in and out
 * may be the same buffer. */
void softmax_compute(const float *in, float *out, size_t outer, size_t channels, size_t inner);

#endif
