/* Operation tables of every layer type, defined in the layer files. */
#ifndef CREMA_LAYERS_REGISTRY_H
#define CREMA_LAYERS_REGISTRY_H

#include "layers/layer.h"

/* extern const layer_ops xxx_layer_ops; */
extern const layer_ops convolution_layer_ops;
extern const layer_ops deconvolution_layer_ops;
extern const layer_ops pooling_layer_ops;
extern const layer_ops inner_product_layer_ops;
extern const layer_ops embed_layer_ops;
extern const layer_ops softmax_layer_ops;
extern const layer_ops softmax_with_loss_layer_ops;
extern const layer_ops sigmoid_cross_entropy_loss_layer_ops;
extern const layer_ops euclidean_loss_layer_ops;
extern const layer_ops class_balanced_sigmoid_cross_entropy_loss_layer_ops;
extern const layer_ops lrn_layer_ops;
extern const layer_ops batch_norm_layer_ops;
extern const layer_ops mvn_layer_ops;
extern const layer_ops accuracy_layer_ops;
extern const layer_ops argmax_layer_ops;
extern const layer_ops reduction_layer_ops;
extern const layer_ops relu_layer_ops;
extern const layer_ops prelu_layer_ops;
extern const layer_ops elu_layer_ops;
extern const layer_ops sigmoid_layer_ops;
extern const layer_ops tanh_layer_ops;
extern const layer_ops absval_layer_ops;
extern const layer_ops exp_layer_ops;
extern const layer_ops log_layer_ops;
extern const layer_ops bnll_layer_ops;
extern const layer_ops clip_layer_ops;
extern const layer_ops swish_layer_ops;
extern const layer_ops threshold_layer_ops;
extern const layer_ops dropout_layer_ops;
extern const layer_ops eltwise_layer_ops;
extern const layer_ops scale_layer_ops;
extern const layer_ops bias_layer_ops;
extern const layer_ops power_layer_ops;
extern const layer_ops concat_layer_ops;
extern const layer_ops slice_layer_ops;
extern const layer_ops split_layer_ops;
extern const layer_ops crop_layer_ops;
extern const layer_ops flatten_layer_ops;
extern const layer_ops reshape_layer_ops;
extern const layer_ops tile_layer_ops;
extern const layer_ops silence_layer_ops;
extern const layer_ops input_layer_ops;
extern const layer_ops data_layer_ops;
extern const layer_ops bilinear_layer_ops;
extern const layer_ops compact_bilinear_layer_ops;
extern const layer_ops signed_sqrt_layer_ops;
extern const layer_ops l2_normalize_layer_ops;

#endif
