/* Caffe's V0 nets (one flat V0LayerParameter per layer, padding as layers
 * of their own) upgraded to V1 layers: UpgradeV0PaddingLayers and
 * UpgradeV0Net of upgrade_proto.cpp. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "io/upgrade.h"
#include "io/upgrade_impl.h"

/* ------------------------------------------------------------------------ */
/* V0 (one flat V0LayerParameter per layer) -> V1                             */

int net_needs_v0_upgrade(const Caffe__NetParameter *net) {
  for (size_t i = 0; i < net->n_layers; i++)
    if (net->layers[i]->layer)
      return 1;
  return 0;
}

static const char *v0_type(const Caffe__V1LayerParameter *connection) {
  const Caffe__V0LayerParameter *v0 = connection->layer;
  return v0 && v0->type ? v0->type : "";
}

static const char *v0_name(const Caffe__V1LayerParameter *connection) {
  const Caffe__V0LayerParameter *v0 = connection->layer;
  if (v0 && v0->name)
    return v0->name;
  return name_or_unnamed(connection->name);
}

typedef struct blob_source {
  const char *blob;
  long layer; /* index of the last layer producing it; -1 for a net input */
} blob_source;

typedef struct blob_sources {
  blob_source *items;
  size_t n, cap;
} blob_sources;

static blob_source *sources_find(blob_sources *s, const char *blob) {
  for (size_t i = s->n; i-- > 0;)
    if (!strcmp(s->items[i].blob, blob))
      return &s->items[i];
  return NULL;
}

static crema_status sources_set(blob_sources *s, const char *blob, long layer, crema_error *err) {
  blob_source *found = sources_find(s, blob);
  if (found) {
    found->layer = layer;
    return CREMA_OK;
  }
  if (s->n == s->cap) {
    size_t cap = s->cap ? 2 * s->cap : 16;
    blob_source *grown = realloc(s->items, cap * sizeof *grown);
    if (!grown)
      return crema_fail(err, CREMA_ERR_NOMEM, "out of memory upgrading a net");
    s->items = grown;
    s->cap = cap;
  }
  s->items[s->n].blob = blob;
  s->items[s->n].layer = layer;
  s->n++;
  return CREMA_OK;
}

/* Checks a padding layer feeding `user` the way Caffe does before folding
 * it: only conv and pool layers with a single input may take padding, and
 * the padding layer itself must map one blob to one blob. */
static crema_status check_padding_use(const Caffe__V1LayerParameter *user,
                                      const Caffe__V1LayerParameter *pad, const char *path,
                                      crema_error *err) {
  const char *type = v0_type(user);
  if (strcmp(type, "conv") && strcmp(type, "pool"))
    return crema_fail(err, CREMA_ERR_INVALID,
                      "%s: V0 layer '%s' of type '%s' takes its input from padding layer '%s'; "
                      "only conv and pool layers can",
                      path, v0_name(user), type, v0_name(pad));
  if (user->n_bottom != 1)
    return crema_fail(err, CREMA_ERR_INVALID,
                      "%s: V0 layer '%s' takes input from padding layer '%s' and so must have "
                      "exactly one bottom, not %zu",
                      path, v0_name(user), v0_name(pad), user->n_bottom);
  if (pad->n_bottom != 1 || pad->n_top != 1)
    return crema_fail(err, CREMA_ERR_INVALID,
                      "%s: V0 padding layer '%s' must have exactly one bottom and one top "
                      "(has %zu and %zu)",
                      path, v0_name(pad), pad->n_bottom, pad->n_top);
  return CREMA_OK;
}

/* Removes V0 "padding" layers, giving their pad to the conv or pool layer
 * they feed, which then reads the padding layer's input directly. */
static crema_status fold_padding_layers(Caffe__NetParameter *net, const char *path,
                                        crema_error *err) {
  size_t n = net->n_layers;
  Caffe__V1LayerParameter **layers = net->layers;
  Caffe__V1LayerParameter **kept = crema_calloc(n ? n : 1, sizeof *kept, err);
  if (!kept)
    return CREMA_ERR_NOMEM;
  blob_sources sources = {NULL, 0, 0};
  crema_status st = CREMA_OK;
  for (size_t i = 0; i < net->n_input && st == CREMA_OK; i++)
    st = sources_set(&sources, net->input[i], -1, err);
  size_t n_kept = 0;
  for (size_t i = 0; i < n && st == CREMA_OK; i++) {
    Caffe__V1LayerParameter *connection = layers[i];
    int is_padding = !strcmp(v0_type(connection), "padding");
    if (!is_padding)
      kept[n_kept++] = connection;
    for (size_t j = 0; j < connection->n_bottom && st == CREMA_OK; j++) {
      blob_source *src = sources_find(&sources, connection->bottom[j]);
      if (!src) {
        st = crema_fail(err, CREMA_ERR_INVALID,
                        "%s: V0 layer '%s': unknown bottom blob '%s' (not a net input nor the "
                        "top of an earlier layer)",
                        path, v0_name(connection), connection->bottom[j]);
        break;
      }
      if (src->layer < 0)
        continue;
      Caffe__V1LayerParameter *source = layers[src->layer];
      if (strcmp(v0_type(source), "padding"))
        continue;
      st = check_padding_use(connection, source, path, err);
      if (st != CREMA_OK)
        break;
      /* check_padding_use guarantees the user is a kept conv/pool layer with
       * a V0 part, so it is kept[n_kept - 1]. */
      Caffe__V0LayerParameter *v0 = connection->layer;
      v0->has_pad = 1;
      v0->pad = source->layer->pad;
      char *input = crema_strdup(source->bottom[0], err);
      if (!input) {
        st = CREMA_ERR_NOMEM;
        break;
      }
      free(connection->bottom[j]);
      connection->bottom[j] = input;
    }
    for (size_t j = 0; j < connection->n_top && st == CREMA_OK; j++)
      st = sources_set(&sources, connection->top[j], (long)i, err);
  }
  free(sources.items);
  if (st != CREMA_OK) {
    free(kept);
    return st;
  }
  for (size_t i = 0; i < n; i++)
    if (!strcmp(v0_type(layers[i]), "padding"))
      free_msg(layers[i]);
  free(layers);
  net->layers = kept;
  net->n_layers = n_kept;
  return CREMA_OK;
}

static const struct {
  const char *v0;
  Caffe__V1LayerParameter__LayerType v1;
} v0_layer_types[] = {
    {"accuracy", CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__ACCURACY},
    {"bnll", CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__BNLL},
    {"concat", CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__CONCAT},
    {"conv", CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__CONVOLUTION},
    {"data", CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__DATA},
    {"dropout", CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__DROPOUT},
    {"euclidean_loss", CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__EUCLIDEAN_LOSS},
    {"flatten", CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__FLATTEN},
    {"hdf5_data", CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__HDF5_DATA},
    {"hdf5_output", CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__HDF5_OUTPUT},
    {"im2col", CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__IM2COL},
    {"images", CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__IMAGE_DATA},
    {"infogain_loss", CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__INFOGAIN_LOSS},
    {"innerproduct", CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__INNER_PRODUCT},
    {"lrn", CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__LRN},
    {"multinomial_logistic_loss",
     CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__MULTINOMIAL_LOGISTIC_LOSS},
    {"pool", CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__POOLING},
    {"relu", CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__RELU},
    {"sigmoid", CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__SIGMOID},
    {"softmax", CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__SOFTMAX},
    {"softmax_loss", CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__SOFTMAX_LOSS},
    {"split", CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__SPLIT},
    {"tanh", CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__TANH},
    {"window_data", CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__WINDOW_DATA},
};

static int v0_type_to_v1(const char *type, Caffe__V1LayerParameter__LayerType *out) {
  for (size_t i = 0; i < sizeof v0_layer_types / sizeof v0_layer_types[0]; i++)
    if (!strcmp(type, v0_layer_types[i].v0)) {
      *out = v0_layer_types[i].v1;
      return 1;
    }
  return 0;
}

/* Caffe keeps going when a V0 setting has no place in the layer's type; it
 * only reports it. */
static void report_misplaced(const upgrade_src *src, const char *layer, const char *setting,
                             const char *type, int *compatible) {
  LOG_ERROR_AT(src->level, "%s: layer '%s': unknown parameter %s for layer type %s", src->path,
               layer, setting, type);
  *compatible = 0;
}

static int is_type(const char *type, const char *name) { return !strcmp(type, name); }

static crema_status v0_move_learning(Caffe__V0LayerParameter *v0, Caffe__V1LayerParameter *v1) {
  MOVE(v1->blobs, v0->blobs);
  v1->n_blobs = v0->n_blobs;
  v0->n_blobs = 0;
  MOVE(v1->blobs_lr, v0->blobs_lr);
  v1->n_blobs_lr = v0->n_blobs_lr;
  v0->n_blobs_lr = 0;
  MOVE(v1->weight_decay, v0->weight_decay);
  v1->n_weight_decay = v0->n_weight_decay;
  v0->n_weight_decay = 0;
  return CREMA_OK;
}

/* num_output, biasterm, fillers, pad, kernelsize, group, stride, pool. */
static crema_status v0_move_conv_pool(Caffe__V0LayerParameter *v0, Caffe__V1LayerParameter *v1,
                                      const upgrade_src *src, const char *name, int *ok,
                                      crema_error *err) {
  const char *type = v0->type ? v0->type : "";
  int conv = is_type(type, "conv"), pool = is_type(type, "pool");
  int ip = is_type(type, "innerproduct");
  if (v0->has_num_output) {
    if (conv) {
      ENSURE_SUB(v1->convolution_param, caffe__convolution_parameter__descriptor);
      v1->convolution_param->has_num_output = 1;
      v1->convolution_param->num_output = v0->num_output;
    } else if (ip) {
      ENSURE_SUB(v1->inner_product_param, caffe__inner_product_parameter__descriptor);
      v1->inner_product_param->has_num_output = 1;
      v1->inner_product_param->num_output = v0->num_output;
    } else {
      report_misplaced(src, name, "num_output", type, ok);
    }
  }
  if (v0->has_biasterm) {
    if (conv) {
      ENSURE_SUB(v1->convolution_param, caffe__convolution_parameter__descriptor);
      v1->convolution_param->has_bias_term = 1;
      v1->convolution_param->bias_term = v0->biasterm;
    } else if (ip) {
      ENSURE_SUB(v1->inner_product_param, caffe__inner_product_parameter__descriptor);
      v1->inner_product_param->has_bias_term = 1;
      v1->inner_product_param->bias_term = v0->biasterm;
    } else {
      report_misplaced(src, name, "biasterm", type, ok);
    }
  }
  if (v0->weight_filler) {
    if (conv) {
      ENSURE_SUB(v1->convolution_param, caffe__convolution_parameter__descriptor);
      MOVE(v1->convolution_param->weight_filler, v0->weight_filler);
    } else if (ip) {
      ENSURE_SUB(v1->inner_product_param, caffe__inner_product_parameter__descriptor);
      MOVE(v1->inner_product_param->weight_filler, v0->weight_filler);
    } else {
      report_misplaced(src, name, "weight_filler", type, ok);
    }
  }
  if (v0->bias_filler) {
    if (conv) {
      ENSURE_SUB(v1->convolution_param, caffe__convolution_parameter__descriptor);
      MOVE(v1->convolution_param->bias_filler, v0->bias_filler);
    } else if (ip) {
      ENSURE_SUB(v1->inner_product_param, caffe__inner_product_parameter__descriptor);
      MOVE(v1->inner_product_param->bias_filler, v0->bias_filler);
    } else {
      report_misplaced(src, name, "bias_filler", type, ok);
    }
  }
  if (v0->has_pad) {
    if (conv) {
      ENSURE_SUB(v1->convolution_param, caffe__convolution_parameter__descriptor);
      CREMA_TRY(append_u32(&v1->convolution_param->n_pad, &v1->convolution_param->pad, v0->pad,
                           err));
    } else if (pool) {
      ENSURE_SUB(v1->pooling_param, caffe__pooling_parameter__descriptor);
      v1->pooling_param->has_pad = 1;
      v1->pooling_param->pad = v0->pad;
    } else {
      report_misplaced(src, name, "pad", type, ok);
    }
  }
  if (v0->has_kernelsize) {
    if (conv) {
      ENSURE_SUB(v1->convolution_param, caffe__convolution_parameter__descriptor);
      CREMA_TRY(append_u32(&v1->convolution_param->n_kernel_size,
                           &v1->convolution_param->kernel_size, v0->kernelsize, err));
    } else if (pool) {
      ENSURE_SUB(v1->pooling_param, caffe__pooling_parameter__descriptor);
      v1->pooling_param->has_kernel_size = 1;
      v1->pooling_param->kernel_size = v0->kernelsize;
    } else {
      report_misplaced(src, name, "kernelsize", type, ok);
    }
  }
  if (v0->has_group) {
    if (conv) {
      ENSURE_SUB(v1->convolution_param, caffe__convolution_parameter__descriptor);
      v1->convolution_param->has_group = 1;
      v1->convolution_param->group = v0->group;
    } else {
      report_misplaced(src, name, "group", type, ok);
    }
  }
  if (v0->has_stride) {
    if (conv) {
      ENSURE_SUB(v1->convolution_param, caffe__convolution_parameter__descriptor);
      CREMA_TRY(append_u32(&v1->convolution_param->n_stride, &v1->convolution_param->stride,
                           v0->stride, err));
    } else if (pool) {
      ENSURE_SUB(v1->pooling_param, caffe__pooling_parameter__descriptor);
      v1->pooling_param->has_stride = 1;
      v1->pooling_param->stride = v0->stride;
    } else {
      report_misplaced(src, name, "stride", type, ok);
    }
  }
  if (v0->has_pool) {
    if (!pool) {
      report_misplaced(src, name, "pool", type, ok);
    } else if (v0->pool == CAFFE__V0_LAYER_PARAMETER__POOL_METHOD__MAX ||
               v0->pool == CAFFE__V0_LAYER_PARAMETER__POOL_METHOD__AVE ||
               v0->pool == CAFFE__V0_LAYER_PARAMETER__POOL_METHOD__STOCHASTIC) {
      ENSURE_SUB(v1->pooling_param, caffe__pooling_parameter__descriptor);
      v1->pooling_param->has_pool = 1;
      /* The two enums share their numbering (MAX 0, AVE 1, STOCHASTIC 2). */
      v1->pooling_param->pool = (Caffe__PoolingParameter__PoolMethod)v0->pool;
    } else {
      LOG_ERROR_AT(src->level, "%s: layer '%s': unknown pool method %d", src->path, name,
                   (int)v0->pool);
      *ok = 0;
    }
  }
  return CREMA_OK;
}

/* dropout_ratio, LRN settings, concat_dim. */
static crema_status v0_move_simple(Caffe__V0LayerParameter *v0, Caffe__V1LayerParameter *v1,
                                   const upgrade_src *src, const char *name, int *ok,
                                   crema_error *err) {
  const char *type = v0->type ? v0->type : "";
  int lrn = is_type(type, "lrn");
  if (v0->has_dropout_ratio) {
    if (is_type(type, "dropout")) {
      ENSURE_SUB(v1->dropout_param, caffe__dropout_parameter__descriptor);
      v1->dropout_param->has_dropout_ratio = 1;
      v1->dropout_param->dropout_ratio = v0->dropout_ratio;
    } else {
      report_misplaced(src, name, "dropout_ratio", type, ok);
    }
  }
  if (v0->has_local_size) {
    if (lrn) {
      ENSURE_SUB(v1->lrn_param, caffe__lrnparameter__descriptor);
      v1->lrn_param->has_local_size = 1;
      v1->lrn_param->local_size = v0->local_size;
    } else {
      report_misplaced(src, name, "local_size", type, ok);
    }
  }
  if (v0->has_alpha) {
    if (lrn) {
      ENSURE_SUB(v1->lrn_param, caffe__lrnparameter__descriptor);
      v1->lrn_param->has_alpha = 1;
      v1->lrn_param->alpha = v0->alpha;
    } else {
      report_misplaced(src, name, "alpha", type, ok);
    }
  }
  if (v0->has_beta) {
    if (lrn) {
      ENSURE_SUB(v1->lrn_param, caffe__lrnparameter__descriptor);
      v1->lrn_param->has_beta = 1;
      v1->lrn_param->beta = v0->beta;
    } else {
      report_misplaced(src, name, "beta", type, ok);
    }
  }
  if (v0->has_k) {
    if (lrn) {
      ENSURE_SUB(v1->lrn_param, caffe__lrnparameter__descriptor);
      v1->lrn_param->has_k = 1;
      v1->lrn_param->k = v0->k;
    } else {
      report_misplaced(src, name, "k", type, ok);
    }
  }
  if (v0->has_concat_dim) {
    if (is_type(type, "concat")) {
      ENSURE_SUB(v1->concat_param, caffe__concat_parameter__descriptor);
      v1->concat_param->has_concat_dim = 1;
      v1->concat_param->concat_dim = v0->concat_dim;
    } else {
      report_misplaced(src, name, "concat_dim", type, ok);
    }
  }
  if (v0->hdf5_output_param) {
    if (is_type(type, "hdf5_output"))
      MOVE(v1->hdf5_output_param, v0->hdf5_output_param);
    else
      report_misplaced(src, name, "hdf5_output_param", type, ok);
  }
  return CREMA_OK;
}

/* source, batchsize, rand_skip and the image/window data settings; scale,
 * meanfile, cropsize and mirror go to transform_param whatever the type. */
static crema_status v0_move_data(Caffe__V0LayerParameter *v0, Caffe__V1LayerParameter *v1,
                                 const upgrade_src *src, const char *name, int *ok,
                                 crema_error *err) {
  const char *type = v0->type ? v0->type : "";
  int data = is_type(type, "data"), hdf5 = is_type(type, "hdf5_data");
  int images = is_type(type, "images"), window = is_type(type, "window_data");
  if (v0->source) {
    if (data) {
      ENSURE_SUB(v1->data_param, caffe__data_parameter__descriptor);
      MOVE(v1->data_param->source, v0->source);
    } else if (hdf5) {
      ENSURE_SUB(v1->hdf5_data_param, caffe__hdf5_data_parameter__descriptor);
      MOVE(v1->hdf5_data_param->source, v0->source);
    } else if (images) {
      ENSURE_SUB(v1->image_data_param, caffe__image_data_parameter__descriptor);
      MOVE(v1->image_data_param->source, v0->source);
    } else if (window) {
      ENSURE_SUB(v1->window_data_param, caffe__window_data_parameter__descriptor);
      MOVE(v1->window_data_param->source, v0->source);
    } else if (is_type(type, "infogain_loss")) {
      ENSURE_SUB(v1->infogain_loss_param, caffe__infogain_loss_parameter__descriptor);
      MOVE(v1->infogain_loss_param->source, v0->source);
    } else {
      report_misplaced(src, name, "source", type, ok);
    }
  }
  if (v0->has_scale) {
    ENSURE_SUB(v1->transform_param, caffe__transformation_parameter__descriptor);
    v1->transform_param->has_scale = 1;
    v1->transform_param->scale = v0->scale;
  }
  if (v0->meanfile) {
    ENSURE_SUB(v1->transform_param, caffe__transformation_parameter__descriptor);
    free(v1->transform_param->mean_file);
    MOVE(v1->transform_param->mean_file, v0->meanfile);
  }
  if (v0->has_batchsize) {
    if (data) {
      ENSURE_SUB(v1->data_param, caffe__data_parameter__descriptor);
      v1->data_param->has_batch_size = 1;
      v1->data_param->batch_size = v0->batchsize;
    } else if (hdf5) {
      ENSURE_SUB(v1->hdf5_data_param, caffe__hdf5_data_parameter__descriptor);
      v1->hdf5_data_param->has_batch_size = 1;
      v1->hdf5_data_param->batch_size = v0->batchsize;
    } else if (images) {
      ENSURE_SUB(v1->image_data_param, caffe__image_data_parameter__descriptor);
      v1->image_data_param->has_batch_size = 1;
      v1->image_data_param->batch_size = v0->batchsize;
    } else if (window) {
      ENSURE_SUB(v1->window_data_param, caffe__window_data_parameter__descriptor);
      v1->window_data_param->has_batch_size = 1;
      v1->window_data_param->batch_size = v0->batchsize;
    } else {
      report_misplaced(src, name, "batchsize", type, ok);
    }
  }
  if (v0->has_cropsize) {
    ENSURE_SUB(v1->transform_param, caffe__transformation_parameter__descriptor);
    v1->transform_param->has_crop_size = 1;
    v1->transform_param->crop_size = v0->cropsize;
  }
  if (v0->has_mirror) {
    ENSURE_SUB(v1->transform_param, caffe__transformation_parameter__descriptor);
    v1->transform_param->has_mirror = 1;
    v1->transform_param->mirror = v0->mirror;
  }
  if (v0->has_rand_skip) {
    if (data) {
      ENSURE_SUB(v1->data_param, caffe__data_parameter__descriptor);
      v1->data_param->has_rand_skip = 1;
      v1->data_param->rand_skip = v0->rand_skip;
    } else if (images) {
      ENSURE_SUB(v1->image_data_param, caffe__image_data_parameter__descriptor);
      v1->image_data_param->has_rand_skip = 1;
      v1->image_data_param->rand_skip = v0->rand_skip;
    } else {
      report_misplaced(src, name, "rand_skip", type, ok);
    }
  }
  if (v0->has_shuffle_images) {
    if (images) {
      ENSURE_SUB(v1->image_data_param, caffe__image_data_parameter__descriptor);
      v1->image_data_param->has_shuffle = 1;
      v1->image_data_param->shuffle = v0->shuffle_images;
    } else {
      report_misplaced(src, name, "shuffle", type, ok);
    }
  }
  if (v0->has_new_height) {
    if (images) {
      ENSURE_SUB(v1->image_data_param, caffe__image_data_parameter__descriptor);
      v1->image_data_param->has_new_height = 1;
      v1->image_data_param->new_height = (uint32_t)v0->new_height;
    } else {
      report_misplaced(src, name, "new_height", type, ok);
    }
  }
  if (v0->has_new_width) {
    if (images) {
      ENSURE_SUB(v1->image_data_param, caffe__image_data_parameter__descriptor);
      v1->image_data_param->has_new_width = 1;
      v1->image_data_param->new_width = (uint32_t)v0->new_width;
    } else {
      report_misplaced(src, name, "new_width", type, ok);
    }
  }
  return CREMA_OK;
}

static crema_status v0_move_window(Caffe__V0LayerParameter *v0, Caffe__V1LayerParameter *v1,
                                   const upgrade_src *src, const char *name, int *ok,
                                   crema_error *err) {
  const char *type = v0->type ? v0->type : "";
  int window = is_type(type, "window_data");
  if (v0->has_det_fg_threshold) {
    if (window) {
      ENSURE_SUB(v1->window_data_param, caffe__window_data_parameter__descriptor);
      v1->window_data_param->has_fg_threshold = 1;
      v1->window_data_param->fg_threshold = v0->det_fg_threshold;
    } else {
      report_misplaced(src, name, "det_fg_threshold", type, ok);
    }
  }
  if (v0->has_det_bg_threshold) {
    if (window) {
      ENSURE_SUB(v1->window_data_param, caffe__window_data_parameter__descriptor);
      v1->window_data_param->has_bg_threshold = 1;
      v1->window_data_param->bg_threshold = v0->det_bg_threshold;
    } else {
      report_misplaced(src, name, "det_bg_threshold", type, ok);
    }
  }
  if (v0->has_det_fg_fraction) {
    if (window) {
      ENSURE_SUB(v1->window_data_param, caffe__window_data_parameter__descriptor);
      v1->window_data_param->has_fg_fraction = 1;
      v1->window_data_param->fg_fraction = v0->det_fg_fraction;
    } else {
      report_misplaced(src, name, "det_fg_fraction", type, ok);
    }
  }
  if (v0->has_det_context_pad) {
    if (window) {
      ENSURE_SUB(v1->window_data_param, caffe__window_data_parameter__descriptor);
      v1->window_data_param->has_context_pad = 1;
      v1->window_data_param->context_pad = v0->det_context_pad;
    } else {
      report_misplaced(src, name, "det_context_pad", type, ok);
    }
  }
  if (str_present(v0->det_crop_mode, caffe__v0_layer_parameter__det_crop_mode__default_value)) {
    if (window) {
      ENSURE_SUB(v1->window_data_param, caffe__window_data_parameter__descriptor);
      Caffe__WindowDataParameter *w = v1->window_data_param;
      if (str_present(w->crop_mode, caffe__window_data_parameter__crop_mode__default_value))
        free(w->crop_mode);
      MOVE(w->crop_mode, v0->det_crop_mode);
    } else {
      report_misplaced(src, name, "det_crop_mode", type, ok);
    }
  }
  return CREMA_OK;
}

/* Builds the V1 layer for one V0 connection: bottoms and tops of the
 * connection plus everything its V0 part says; nothing else survives. */
static crema_status upgrade_v0_layer(Caffe__V1LayerParameter **slot, size_t index,
                                     const upgrade_src *src, int *ok, crema_error *err) {
  Caffe__V1LayerParameter *old = *slot;
  Caffe__V1LayerParameter *v1 = msg_new(&caffe__v1_layer_parameter__descriptor, err);
  if (!v1)
    return CREMA_ERR_NOMEM;
  MOVE(v1->bottom, old->bottom);
  v1->n_bottom = old->n_bottom;
  old->n_bottom = 0;
  MOVE(v1->top, old->top);
  v1->n_top = old->n_top;
  old->n_top = 0;
  Caffe__V0LayerParameter *v0 = old->layer;
  crema_status st = CREMA_OK;
  if (v0) {
    char fallback[32];
    snprintf(fallback, sizeof fallback, "#%zu", index);
    const char *name = v0->name ? v0->name : fallback;
    if (v0->type) {
      Caffe__V1LayerParameter__LayerType t;
      if (!v0_type_to_v1(v0->type, &t)) {
        st = crema_fail(err, CREMA_ERR_INVALID, "%s: V0 layer '%s': unknown layer type '%s'",
                        src->path, name, v0->type);
      } else {
        v1->has_type = 1;
        v1->type = t;
      }
    }
    if (st == CREMA_OK)
      st = v0_move_learning(v0, v1);
    if (st == CREMA_OK)
      st = v0_move_conv_pool(v0, v1, src, name, ok, err);
    if (st == CREMA_OK)
      st = v0_move_simple(v0, v1, src, name, ok, err);
    if (st == CREMA_OK)
      st = v0_move_data(v0, v1, src, name, ok, err);
    if (st == CREMA_OK)
      st = v0_move_window(v0, v1, src, name, ok, err);
    if (st == CREMA_OK && v0->name)
      MOVE(v1->name, v0->name);
  }
  if (st != CREMA_OK) {
    /* Put the connection back together so the caller frees one net. */
    MOVE(old->bottom, v1->bottom);
    old->n_bottom = v1->n_bottom;
    v1->n_bottom = 0;
    MOVE(old->top, v1->top);
    old->n_top = v1->n_top;
    v1->n_top = 0;
    free_msg(v1);
    return st;
  }
  free_msg(old);
  *slot = v1;
  return CREMA_OK;
}

/* Caffe rebuilds the net from its name, layers, inputs, input_dim and
 * force_backward only; the other net fields (current-format layers too) are
 * dropped. */
static void v0_net_drop_other_fields(Caffe__NetParameter *net) {
  for (size_t i = 0; i < net->n_layer; i++)
    free_msg(net->layer[i]);
  free(net->layer);
  net->layer = NULL;
  net->n_layer = 0;
  for (size_t i = 0; i < net->n_input_shape; i++)
    free_msg(net->input_shape[i]);
  free(net->input_shape);
  net->input_shape = NULL;
  net->n_input_shape = 0;
  free_msg(net->state);
  net->state = NULL;
  net->has_debug_info = 0;
  net->debug_info = 0;
}

crema_status upgrade_v0_net(Caffe__NetParameter *net, const upgrade_src *src, int *ok,
                                   crema_error *err) {
  CREMA_TRY(fold_padding_layers(net, src->path, err));
  for (size_t i = 0; i < net->n_layers; i++)
    CREMA_TRY(upgrade_v0_layer(&net->layers[i], i, src, ok, err));
  v0_net_drop_other_fields(net);
  return CREMA_OK;
}

crema_status upgrade_net_v0_padding(Caffe__NetParameter *net, const char *path,
                                    crema_error *err) {
  return fold_padding_layers(net, path, err);
}

crema_status upgrade_net_v0_to_v1(Caffe__NetParameter *net, const char *path,
                                  crema_log_level level, int *compatible, crema_error *err) {
  const upgrade_src src = {path, level};
  int ok = 1;
  crema_status st = upgrade_v0_net(net, &src, &ok, err);
  if (compatible)
    *compatible = ok;
  return st;
}
