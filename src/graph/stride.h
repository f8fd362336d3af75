/* The input sizes a net can take.  A net whose pooling and strided
 * convolutions reduce its input by a total factor M, and whose side
 * outputs are cropped and concatenated back, lines its blobs up only when
 * the input's height and width are multiples of M; other sizes fail deep
 * inside Crop or Concat.  This names M up front. */
#ifndef CREMA_GRAPH_STRIDE_H
#define CREMA_GRAPH_STRIDE_H

#include <stddef.h>

#include "caffe.pb-c.h"

/* The least common multiple of the total strides of the blobs of a
 * (current-layout) net definition's layers, 1 without strided layers:
 * input sides that are multiples of it are taken by every layer.
 * graph/net.h's net_size_multiple asks it of a built net. */
int net_param_size_multiple(Caffe__LayerParameter *const *layers, size_t nlayers);


#endif
