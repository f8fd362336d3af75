/* The table from Caffe's type strings to layer operations.  Adding a layer
 * type = its file + one line here. */
#include "config.h"

#include <string.h>

#include "layers/layer.h"
#include "layers/registry.h"

static const layer_ops *const registry[] = {
    /* &xxx_layer_ops, */
    &convolution_layer_ops,
    &deconvolution_layer_ops,
    &pooling_layer_ops,
    &inner_product_layer_ops,
    &embed_layer_ops,
    &softmax_layer_ops,
    &softmax_with_loss_layer_ops,
    &sigmoid_cross_entropy_loss_layer_ops,
    &euclidean_loss_layer_ops,
    &class_balanced_sigmoid_cross_entropy_loss_layer_ops,
    &lrn_layer_ops,
    &batch_norm_layer_ops,
    &mvn_layer_ops,
    &accuracy_layer_ops,
    &argmax_layer_ops,
    &reduction_layer_ops,
    &relu_layer_ops,
    &prelu_layer_ops,
    &elu_layer_ops,
    &sigmoid_layer_ops,
    &tanh_layer_ops,
    &absval_layer_ops,
    &exp_layer_ops,
    &log_layer_ops,
    &bnll_layer_ops,
    &clip_layer_ops,
    &swish_layer_ops,
    &threshold_layer_ops,
    &dropout_layer_ops,
    &eltwise_layer_ops,
    &scale_layer_ops,
    &bias_layer_ops,
    &power_layer_ops,
    &concat_layer_ops,
    &slice_layer_ops,
    &split_layer_ops,
    &crop_layer_ops,
    &flatten_layer_ops,
    &reshape_layer_ops,
    &tile_layer_ops,
    &silence_layer_ops,
    &input_layer_ops,
    &data_layer_ops,
    &bilinear_layer_ops,
    &compact_bilinear_layer_ops,
    &signed_sqrt_layer_ops,
    &l2_normalize_layer_ops,
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
