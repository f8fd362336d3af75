#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "io/binary.h"
#include "io/file.h"
#include "io/text.h"
#include "io/upgrade.h"

/* The upgrades edit protobuf-c structs in place.  Pieces move between the old
 * and the new layout by pointer (the old slot is cleared), so a message stays
 * freeable with protobuf_c_message_free_unpacked at every step.  A string
 * field with a proto default points at a static string while unset; such
 * pointers are never moved or freed. */

static void *msg_new(const ProtobufCMessageDescriptor *desc, crema_error *err) {
  void *m = crema_malloc(desc->sizeof_message, err);
  if (m)
    protobuf_c_message_init(desc, m);
  return m;
}

#define ENSURE_SUB(slot, desc)                  \
  do {                                          \
    if (!(slot)) {                              \
      (slot) = msg_new(&(desc), err);           \
      if (!(slot))                              \
        return CREMA_ERR_NOMEM;                 \
    }                                           \
  } while (0)

#define MOVE(dst, src) \
  do {                 \
    (dst) = (src);     \
    (src) = NULL;      \
  } while (0)

static void free_msg(void *msg) {
  if (msg)
    protobuf_c_message_free_unpacked((ProtobufCMessage *)msg, NULL);
}

static crema_status append_u32(size_t *n, uint32_t **arr, uint32_t v, crema_error *err) {
  uint32_t *grown = realloc(*arr, (*n + 1) * sizeof **arr);
  if (!grown)
    return crema_fail(err, CREMA_ERR_NOMEM, "out of memory upgrading a net");
  grown[*n] = v;
  *arr = grown;
  (*n)++;
  return CREMA_OK;
}

static int str_present(const char *s, const char *default_value) {
  return s != NULL && s != default_value;
}

static const char *name_or_unnamed(const char *name) { return name ? name : "(unnamed)"; }

/* ------------------------------------------------------------------------ */
/* V0 (one flat V0LayerParameter per layer) -> V1                             */

static int net_needs_v0_upgrade(const Caffe__NetParameter *net) {
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
static void report_misplaced(const char *path, const char *layer, const char *setting,
                             const char *type, int *compatible) {
  LOG_ERROR("%s: layer '%s': unknown parameter %s for layer type %s", path, layer, setting, type);
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
                                      const char *path, const char *name, int *ok,
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
      report_misplaced(path, name, "num_output", type, ok);
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
      report_misplaced(path, name, "biasterm", type, ok);
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
      report_misplaced(path, name, "weight_filler", type, ok);
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
      report_misplaced(path, name, "bias_filler", type, ok);
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
      report_misplaced(path, name, "pad", type, ok);
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
      report_misplaced(path, name, "kernelsize", type, ok);
    }
  }
  if (v0->has_group) {
    if (conv) {
      ENSURE_SUB(v1->convolution_param, caffe__convolution_parameter__descriptor);
      v1->convolution_param->has_group = 1;
      v1->convolution_param->group = v0->group;
    } else {
      report_misplaced(path, name, "group", type, ok);
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
      report_misplaced(path, name, "stride", type, ok);
    }
  }
  if (v0->has_pool) {
    if (!pool) {
      report_misplaced(path, name, "pool", type, ok);
    } else if (v0->pool == CAFFE__V0_LAYER_PARAMETER__POOL_METHOD__MAX ||
               v0->pool == CAFFE__V0_LAYER_PARAMETER__POOL_METHOD__AVE ||
               v0->pool == CAFFE__V0_LAYER_PARAMETER__POOL_METHOD__STOCHASTIC) {
      ENSURE_SUB(v1->pooling_param, caffe__pooling_parameter__descriptor);
      v1->pooling_param->has_pool = 1;
      /* The two enums share their numbering (MAX 0, AVE 1, STOCHASTIC 2). */
      v1->pooling_param->pool = (Caffe__PoolingParameter__PoolMethod)v0->pool;
    } else {
      LOG_ERROR("%s: layer '%s': unknown pool method %d", path, name, (int)v0->pool);
      *ok = 0;
    }
  }
  return CREMA_OK;
}

/* dropout_ratio, LRN settings, concat_dim. */
static crema_status v0_move_simple(Caffe__V0LayerParameter *v0, Caffe__V1LayerParameter *v1,
                                   const char *path, const char *name, int *ok,
                                   crema_error *err) {
  const char *type = v0->type ? v0->type : "";
  int lrn = is_type(type, "lrn");
  if (v0->has_dropout_ratio) {
    if (is_type(type, "dropout")) {
      ENSURE_SUB(v1->dropout_param, caffe__dropout_parameter__descriptor);
      v1->dropout_param->has_dropout_ratio = 1;
      v1->dropout_param->dropout_ratio = v0->dropout_ratio;
    } else {
      report_misplaced(path, name, "dropout_ratio", type, ok);
    }
  }
  if (v0->has_local_size) {
    if (lrn) {
      ENSURE_SUB(v1->lrn_param, caffe__lrnparameter__descriptor);
      v1->lrn_param->has_local_size = 1;
      v1->lrn_param->local_size = v0->local_size;
    } else {
      report_misplaced(path, name, "local_size", type, ok);
    }
  }
  if (v0->has_alpha) {
    if (lrn) {
      ENSURE_SUB(v1->lrn_param, caffe__lrnparameter__descriptor);
      v1->lrn_param->has_alpha = 1;
      v1->lrn_param->alpha = v0->alpha;
    } else {
      report_misplaced(path, name, "alpha", type, ok);
    }
  }
  if (v0->has_beta) {
    if (lrn) {
      ENSURE_SUB(v1->lrn_param, caffe__lrnparameter__descriptor);
      v1->lrn_param->has_beta = 1;
      v1->lrn_param->beta = v0->beta;
    } else {
      report_misplaced(path, name, "beta", type, ok);
    }
  }
  if (v0->has_k) {
    if (lrn) {
      ENSURE_SUB(v1->lrn_param, caffe__lrnparameter__descriptor);
      v1->lrn_param->has_k = 1;
      v1->lrn_param->k = v0->k;
    } else {
      report_misplaced(path, name, "k", type, ok);
    }
  }
  if (v0->has_concat_dim) {
    if (is_type(type, "concat")) {
      ENSURE_SUB(v1->concat_param, caffe__concat_parameter__descriptor);
      v1->concat_param->has_concat_dim = 1;
      v1->concat_param->concat_dim = v0->concat_dim;
    } else {
      report_misplaced(path, name, "concat_dim", type, ok);
    }
  }
  if (v0->hdf5_output_param) {
    if (is_type(type, "hdf5_output"))
      MOVE(v1->hdf5_output_param, v0->hdf5_output_param);
    else
      report_misplaced(path, name, "hdf5_output_param", type, ok);
  }
  return CREMA_OK;
}

/* source, batchsize, rand_skip and the image/window data settings; scale,
 * meanfile, cropsize and mirror go to transform_param whatever the type. */
static crema_status v0_move_data(Caffe__V0LayerParameter *v0, Caffe__V1LayerParameter *v1,
                                 const char *path, const char *name, int *ok, crema_error *err) {
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
      report_misplaced(path, name, "source", type, ok);
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
      report_misplaced(path, name, "batchsize", type, ok);
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
      report_misplaced(path, name, "rand_skip", type, ok);
    }
  }
  if (v0->has_shuffle_images) {
    if (images) {
      ENSURE_SUB(v1->image_data_param, caffe__image_data_parameter__descriptor);
      v1->image_data_param->has_shuffle = 1;
      v1->image_data_param->shuffle = v0->shuffle_images;
    } else {
      report_misplaced(path, name, "shuffle", type, ok);
    }
  }
  if (v0->has_new_height) {
    if (images) {
      ENSURE_SUB(v1->image_data_param, caffe__image_data_parameter__descriptor);
      v1->image_data_param->has_new_height = 1;
      v1->image_data_param->new_height = (uint32_t)v0->new_height;
    } else {
      report_misplaced(path, name, "new_height", type, ok);
    }
  }
  if (v0->has_new_width) {
    if (images) {
      ENSURE_SUB(v1->image_data_param, caffe__image_data_parameter__descriptor);
      v1->image_data_param->has_new_width = 1;
      v1->image_data_param->new_width = (uint32_t)v0->new_width;
    } else {
      report_misplaced(path, name, "new_width", type, ok);
    }
  }
  return CREMA_OK;
}

static crema_status v0_move_window(Caffe__V0LayerParameter *v0, Caffe__V1LayerParameter *v1,
                                   const char *path, const char *name, int *ok,
                                   crema_error *err) {
  const char *type = v0->type ? v0->type : "";
  int window = is_type(type, "window_data");
  if (v0->has_det_fg_threshold) {
    if (window) {
      ENSURE_SUB(v1->window_data_param, caffe__window_data_parameter__descriptor);
      v1->window_data_param->has_fg_threshold = 1;
      v1->window_data_param->fg_threshold = v0->det_fg_threshold;
    } else {
      report_misplaced(path, name, "det_fg_threshold", type, ok);
    }
  }
  if (v0->has_det_bg_threshold) {
    if (window) {
      ENSURE_SUB(v1->window_data_param, caffe__window_data_parameter__descriptor);
      v1->window_data_param->has_bg_threshold = 1;
      v1->window_data_param->bg_threshold = v0->det_bg_threshold;
    } else {
      report_misplaced(path, name, "det_bg_threshold", type, ok);
    }
  }
  if (v0->has_det_fg_fraction) {
    if (window) {
      ENSURE_SUB(v1->window_data_param, caffe__window_data_parameter__descriptor);
      v1->window_data_param->has_fg_fraction = 1;
      v1->window_data_param->fg_fraction = v0->det_fg_fraction;
    } else {
      report_misplaced(path, name, "det_fg_fraction", type, ok);
    }
  }
  if (v0->has_det_context_pad) {
    if (window) {
      ENSURE_SUB(v1->window_data_param, caffe__window_data_parameter__descriptor);
      v1->window_data_param->has_context_pad = 1;
      v1->window_data_param->context_pad = v0->det_context_pad;
    } else {
      report_misplaced(path, name, "det_context_pad", type, ok);
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
      report_misplaced(path, name, "det_crop_mode", type, ok);
    }
  }
  return CREMA_OK;
}

/* Builds the V1 layer for one V0 connection: bottoms and tops of the
 * connection plus everything its V0 part says; nothing else survives. */
static crema_status upgrade_v0_layer(Caffe__V1LayerParameter **slot, size_t index,
                                     const char *path, int *ok, crema_error *err) {
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
                        path, name, v0->type);
      } else {
        v1->has_type = 1;
        v1->type = t;
      }
    }
    if (st == CREMA_OK)
      st = v0_move_learning(v0, v1);
    if (st == CREMA_OK)
      st = v0_move_conv_pool(v0, v1, path, name, ok, err);
    if (st == CREMA_OK)
      st = v0_move_simple(v0, v1, path, name, ok, err);
    if (st == CREMA_OK)
      st = v0_move_data(v0, v1, path, name, ok, err);
    if (st == CREMA_OK)
      st = v0_move_window(v0, v1, path, name, ok, err);
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

static crema_status upgrade_v0_net(Caffe__NetParameter *net, const char *path, int *ok,
                                   crema_error *err) {
  CREMA_TRY(fold_padding_layers(net, path, err));
  for (size_t i = 0; i < net->n_layers; i++)
    CREMA_TRY(upgrade_v0_layer(&net->layers[i], i, path, ok, err));
  v0_net_drop_other_fields(net);
  return CREMA_OK;
}

/* ------------------------------------------------------------------------ */
/* Data transformation fields of V1 data layers -> transform_param           */

/* The three data parameter messages share these four legacy fields. */
typedef struct legacy_transform {
  protobuf_c_boolean *has_scale;
  float *scale;
  char **mean_file;
  protobuf_c_boolean *has_crop_size;
  uint32_t *crop_size;
  protobuf_c_boolean *has_mirror;
  protobuf_c_boolean *mirror;
} legacy_transform;

#define LEGACY_TRANSFORM_OF(p) \
  ((legacy_transform){&(p)->has_scale, &(p)->scale, &(p)->mean_file, &(p)->has_crop_size, \
                      &(p)->crop_size, &(p)->has_mirror, &(p)->mirror})

static int legacy_transform_present(legacy_transform t) {
  return *t.has_scale || *t.mean_file || *t.has_crop_size || *t.has_mirror;
}

static int layer_has_legacy_transform(const Caffe__V1LayerParameter *l) {
  if (!l->has_type)
    return 0;
  switch (l->type) {
    case CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__DATA:
      return l->data_param && legacy_transform_present(LEGACY_TRANSFORM_OF(l->data_param));
    case CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__IMAGE_DATA:
      return l->image_data_param &&
             legacy_transform_present(LEGACY_TRANSFORM_OF(l->image_data_param));
    case CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__WINDOW_DATA:
      return l->window_data_param &&
             legacy_transform_present(LEGACY_TRANSFORM_OF(l->window_data_param));
    default:
      return 0;
  }
}

static int net_needs_data_upgrade(const Caffe__NetParameter *net) {
  for (size_t i = 0; i < net->n_layers; i++)
    if (layer_has_legacy_transform(net->layers[i]))
      return 1;
  return 0;
}

static void move_legacy_transform(legacy_transform t, Caffe__TransformationParameter *tp) {
  if (*t.has_scale) {
    tp->has_scale = 1;
    tp->scale = *t.scale;
    *t.has_scale = 0;
    *t.scale = 1;
  }
  if (*t.mean_file) {
    free(tp->mean_file);
    MOVE(tp->mean_file, *t.mean_file);
  }
  if (*t.has_crop_size) {
    tp->has_crop_size = 1;
    tp->crop_size = *t.crop_size;
    *t.has_crop_size = 0;
    *t.crop_size = 0;
  }
  if (*t.has_mirror) {
    tp->has_mirror = 1;
    tp->mirror = *t.mirror;
    *t.has_mirror = 0;
    *t.mirror = 0;
  }
}

/* Like Caffe, every layer of the three data types gets its data parameter
 * and transform_param messages, even when it had nothing to move. */
static crema_status upgrade_data_transformation(Caffe__NetParameter *net, crema_error *err) {
  for (size_t i = 0; i < net->n_layers; i++) {
    Caffe__V1LayerParameter *l = net->layers[i];
    if (!l->has_type)
      continue;
    switch (l->type) {
      case CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__DATA:
        ENSURE_SUB(l->data_param, caffe__data_parameter__descriptor);
        ENSURE_SUB(l->transform_param, caffe__transformation_parameter__descriptor);
        move_legacy_transform(LEGACY_TRANSFORM_OF(l->data_param), l->transform_param);
        break;
      case CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__IMAGE_DATA:
        ENSURE_SUB(l->image_data_param, caffe__image_data_parameter__descriptor);
        ENSURE_SUB(l->transform_param, caffe__transformation_parameter__descriptor);
        move_legacy_transform(LEGACY_TRANSFORM_OF(l->image_data_param), l->transform_param);
        break;
      case CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__WINDOW_DATA:
        ENSURE_SUB(l->window_data_param, caffe__window_data_parameter__descriptor);
        ENSURE_SUB(l->transform_param, caffe__transformation_parameter__descriptor);
        move_legacy_transform(LEGACY_TRANSFORM_OF(l->window_data_param), l->transform_param);
        break;
      default:
        break;
    }
  }
  return CREMA_OK;
}

/* ------------------------------------------------------------------------ */
/* V1 (layers, enum types) -> V2 (layer, string types)                         */

static const char *v1_type_name(Caffe__V1LayerParameter__LayerType type) {
  switch (type) {
    case CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__NONE: return "";
    case CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__ABSVAL: return "AbsVal";
    case CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__ACCURACY: return "Accuracy";
    case CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__ARGMAX: return "ArgMax";
    case CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__BNLL: return "BNLL";
    case CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__CONCAT: return "Concat";
    case CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__CONTRASTIVE_LOSS: return "ContrastiveLoss";
    case CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__CONVOLUTION: return "Convolution";
    case CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__DECONVOLUTION: return "Deconvolution";
    case CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__DATA: return "Data";
    case CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__DROPOUT: return "Dropout";
    case CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__DUMMY_DATA: return "DummyData";
    case CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__EUCLIDEAN_LOSS: return "EuclideanLoss";
    case CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__ELTWISE: return "Eltwise";
    case CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__EXP: return "Exp";
    case CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__FLATTEN: return "Flatten";
    case CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__HDF5_DATA: return "HDF5Data";
    case CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__HDF5_OUTPUT: return "HDF5Output";
    case CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__HINGE_LOSS: return "HingeLoss";
    case CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__IM2COL: return "Im2col";
    case CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__IMAGE_DATA: return "ImageData";
    case CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__INFOGAIN_LOSS: return "InfogainLoss";
    case CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__INNER_PRODUCT: return "InnerProduct";
    case CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__LRN: return "LRN";
    case CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__MEMORY_DATA: return "MemoryData";
    case CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__MULTINOMIAL_LOGISTIC_LOSS:
      return "MultinomialLogisticLoss";
    case CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__MVN: return "MVN";
    case CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__POOLING: return "Pooling";
    case CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__POWER: return "Power";
    case CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__RELU: return "ReLU";
    case CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__SIGMOID: return "Sigmoid";
    case CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__SIGMOID_CROSS_ENTROPY_LOSS:
      return "SigmoidCrossEntropyLoss";
    case CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__SILENCE: return "Silence";
    case CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__SOFTMAX: return "Softmax";
    case CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__SOFTMAX_LOSS: return "SoftmaxWithLoss";
    case CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__SPLIT: return "Split";
    case CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__SLICE: return "Slice";
    case CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__TANH: return "TanH";
    case CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__WINDOW_DATA: return "WindowData";
    case CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__THRESHOLD: return "Threshold";
    default: return NULL;
  }
}

/* Grows l->param to at least n entries (new ones with proto defaults). */
static crema_status ensure_param_specs(Caffe__LayerParameter *l, size_t n, crema_error *err) {
  if (l->n_param >= n)
    return CREMA_OK;
  Caffe__ParamSpec **grown = realloc(l->param, n * sizeof *grown);
  if (!grown)
    return crema_fail(err, CREMA_ERR_NOMEM, "out of memory upgrading a net");
  l->param = grown;
  while (l->n_param < n) {
    Caffe__ParamSpec *p = msg_new(&caffe__param_spec__descriptor, err);
    if (!p)
      return CREMA_ERR_NOMEM;
    l->param[l->n_param++] = p;
  }
  return CREMA_OK;
}

static crema_status v1_move_param_specs(Caffe__V1LayerParameter *v1, Caffe__LayerParameter *l,
                                        const char *path, crema_error *err) {
  for (size_t i = 0; i < v1->n_param; i++) {
    CREMA_TRY(ensure_param_specs(l, i + 1, err));
    free(l->param[i]->name);
    MOVE(l->param[i]->name, v1->param[i]);
  }
  for (size_t i = 0; i < v1->n_blob_share_mode; i++) {
    CREMA_TRY(ensure_param_specs(l, i + 1, err));
    Caffe__V1LayerParameter__DimCheckMode mode = v1->blob_share_mode[i];
    if (mode != CAFFE__V1_LAYER_PARAMETER__DIM_CHECK_MODE__STRICT &&
        mode != CAFFE__V1_LAYER_PARAMETER__DIM_CHECK_MODE__PERMISSIVE)
      return crema_fail(err, CREMA_ERR_INVALID, "%s: layer '%s': unknown blob_share_mode %d",
                        path, name_or_unnamed(l->name), (int)mode);
    l->param[i]->has_share_mode = 1;
    l->param[i]->share_mode = mode == CAFFE__V1_LAYER_PARAMETER__DIM_CHECK_MODE__STRICT
                                  ? CAFFE__PARAM_SPEC__DIM_CHECK_MODE__STRICT
                                  : CAFFE__PARAM_SPEC__DIM_CHECK_MODE__PERMISSIVE;
  }
  for (size_t i = 0; i < v1->n_blobs_lr; i++) {
    CREMA_TRY(ensure_param_specs(l, i + 1, err));
    l->param[i]->has_lr_mult = 1;
    l->param[i]->lr_mult = v1->blobs_lr[i];
  }
  for (size_t i = 0; i < v1->n_weight_decay; i++) {
    CREMA_TRY(ensure_param_specs(l, i + 1, err));
    l->param[i]->has_decay_mult = 1;
    l->param[i]->decay_mult = v1->weight_decay[i];
  }
  return CREMA_OK;
}

#define MOVE_ARRAY(dst, src, count_dst, count_src) \
  do {                                             \
    MOVE(dst, src);                                \
    (count_dst) = (count_src);                     \
    (count_src) = 0;                               \
  } while (0)

static void v1_move_sub_params(Caffe__V1LayerParameter *v1, Caffe__LayerParameter *l) {
  MOVE(l->accuracy_param, v1->accuracy_param);
  MOVE(l->argmax_param, v1->argmax_param);
  MOVE(l->concat_param, v1->concat_param);
  MOVE(l->contrastive_loss_param, v1->contrastive_loss_param);
  MOVE(l->convolution_param, v1->convolution_param);
  MOVE(l->data_param, v1->data_param);
  MOVE(l->dropout_param, v1->dropout_param);
  MOVE(l->dummy_data_param, v1->dummy_data_param);
  MOVE(l->eltwise_param, v1->eltwise_param);
  MOVE(l->exp_param, v1->exp_param);
  MOVE(l->hdf5_data_param, v1->hdf5_data_param);
  MOVE(l->hdf5_output_param, v1->hdf5_output_param);
  MOVE(l->hinge_loss_param, v1->hinge_loss_param);
  MOVE(l->image_data_param, v1->image_data_param);
  MOVE(l->infogain_loss_param, v1->infogain_loss_param);
  MOVE(l->inner_product_param, v1->inner_product_param);
  MOVE(l->lrn_param, v1->lrn_param);
  MOVE(l->memory_data_param, v1->memory_data_param);
  MOVE(l->mvn_param, v1->mvn_param);
  MOVE(l->pooling_param, v1->pooling_param);
  MOVE(l->power_param, v1->power_param);
  MOVE(l->relu_param, v1->relu_param);
  MOVE(l->sigmoid_param, v1->sigmoid_param);
  MOVE(l->softmax_param, v1->softmax_param);
  MOVE(l->slice_param, v1->slice_param);
  MOVE(l->tanh_param, v1->tanh_param);
  MOVE(l->threshold_param, v1->threshold_param);
  MOVE(l->window_data_param, v1->window_data_param);
  MOVE(l->transform_param, v1->transform_param);
  MOVE(l->loss_param, v1->loss_param);
}

static crema_status upgrade_v1_layer(Caffe__V1LayerParameter *v1, Caffe__LayerParameter *l,
                                     size_t index, const char *path, int *ok, crema_error *err) {
  if (v1->has_type) {
    const char *type = v1_type_name(v1->type);
    if (!type)
      return crema_fail(err, CREMA_ERR_INVALID, "%s: layer '%s' (layers #%zu): unknown V1 layer "
                        "type %d", path, name_or_unnamed(v1->name), index, (int)v1->type);
    l->type = crema_strdup(type, err);
    if (!l->type)
      return CREMA_ERR_NOMEM;
  }
  MOVE_ARRAY(l->bottom, v1->bottom, l->n_bottom, v1->n_bottom);
  MOVE_ARRAY(l->top, v1->top, l->n_top, v1->n_top);
  MOVE(l->name, v1->name);
  MOVE_ARRAY(l->include, v1->include, l->n_include, v1->n_include);
  MOVE_ARRAY(l->exclude, v1->exclude, l->n_exclude, v1->n_exclude);
  MOVE_ARRAY(l->blobs, v1->blobs, l->n_blobs, v1->n_blobs);
  CREMA_TRY(v1_move_param_specs(v1, l, path, err));
  MOVE_ARRAY(l->loss_weight, v1->loss_weight, l->n_loss_weight, v1->n_loss_weight);
  v1_move_sub_params(v1, l);
  if (v1->layer) {
    LOG_ERROR("%s: layer '%s': input NetParameter has V0 layer -- ignoring.", path,
              name_or_unnamed(l->name));
    *ok = 0;
  }
  return CREMA_OK;
}

static crema_status upgrade_v1_net(Caffe__NetParameter *net, const char *path, int *ok,
                                   crema_error *err) {
  size_t n = net->n_layers;
  Caffe__LayerParameter **out = crema_calloc(n ? n : 1, sizeof *out, err);
  if (!out)
    return CREMA_ERR_NOMEM;
  crema_status st = CREMA_OK;
  size_t done = 0;
  for (; done < n; done++) {
    out[done] = msg_new(&caffe__layer_parameter__descriptor, err);
    if (!out[done]) {
      st = CREMA_ERR_NOMEM;
      break;
    }
    int layer_ok = 1;
    st = upgrade_v1_layer(net->layers[done], out[done], done, path, &layer_ok, err);
    if (st != CREMA_OK) {
      done++;
      break;
    }
    if (!layer_ok) {
      LOG_ERROR("Upgrade of input layer %zu failed.", done);
      *ok = 0;
    }
  }
  if (st != CREMA_OK) {
    /* The half-moved layers stay in `out`; freeing both sides releases every
     * piece exactly once. */
    for (size_t i = 0; i < done; i++)
      free_msg(out[i]);
    free(out);
    return st;
  }
  for (size_t i = 0; i < n; i++)
    free_msg(net->layers[i]);
  free(net->layers);
  net->layers = NULL;
  net->n_layers = 0;
  net->layer = out;
  net->n_layer = n;
  return CREMA_OK;
}

/* ------------------------------------------------------------------------ */
/* input / input_shape / input_dim -> an Input layer                         */

static crema_status input_layer_shapes(Caffe__NetParameter *net, Caffe__InputParameter *ip,
                                       const char *path, crema_error *err) {
  size_t n = net->n_input;
  ip->shape = crema_calloc(n ? n : 1, sizeof *ip->shape, err);
  if (!ip->shape)
    return CREMA_ERR_NOMEM;
  if (net->n_input_shape > 0) {
    if (net->n_input_shape < n)
      return crema_fail(err, CREMA_ERR_INVALID,
                        "%s: %zu net inputs but only %zu input_shape entries", path, n,
                        net->n_input_shape);
    for (size_t i = 0; i < n; i++) {
      MOVE(ip->shape[i], net->input_shape[i]);
      ip->n_shape++;
    }
    return CREMA_OK;
  }
  size_t need;
  if (!size_mul(n, 4, &need) || net->n_input_dim < need)
    return crema_fail(err, CREMA_ERR_INVALID,
                      "%s: %zu net inputs need %zu input_dim values (4 each), found %zu", path, n,
                      n * 4, net->n_input_dim);
  for (size_t i = 0; i < n; i++) {
    Caffe__BlobShape *s = msg_new(&caffe__blob_shape__descriptor, err);
    if (!s)
      return CREMA_ERR_NOMEM;
    ip->shape[ip->n_shape++] = s;
    s->dim = crema_calloc(4, sizeof *s->dim, err);
    if (!s->dim)
      return CREMA_ERR_NOMEM;
    for (size_t j = 0; j < 4; j++)
      s->dim[j] = net->input_dim[4 * i + j];
    s->n_dim = 4;
  }
  return CREMA_OK;
}

static crema_status make_input_layer(Caffe__NetParameter *net, Caffe__LayerParameter *l,
                                     const char *path, crema_error *err) {
  l->name = crema_strdup("input", err);
  l->type = crema_strdup("Input", err);
  if (!l->name || !l->type)
    return CREMA_ERR_NOMEM;
  ENSURE_SUB(l->input_param, caffe__input_parameter__descriptor);
  CREMA_TRY(input_layer_shapes(net, l->input_param, path, err));
  MOVE_ARRAY(l->top, net->input, l->n_top, net->n_input);
  return CREMA_OK;
}

static void clear_net_inputs(Caffe__NetParameter *net) {
  for (size_t i = 0; i < net->n_input; i++)
    free(net->input[i]);
  free(net->input);
  net->input = NULL;
  net->n_input = 0;
  for (size_t i = 0; i < net->n_input_shape; i++)
    free_msg(net->input_shape[i]);
  free(net->input_shape);
  net->input_shape = NULL;
  net->n_input_shape = 0;
  free(net->input_dim);
  net->input_dim = NULL;
  net->n_input_dim = 0;
}

/* Inputs without any shape come from legacy caffemodels; Caffe just drops
 * them.  Otherwise one Input layer named "input" goes first in the net. */
static crema_status upgrade_net_input(Caffe__NetParameter *net, const char *path,
                                      crema_error *err) {
  if (net->n_input_shape > 0 || net->n_input_dim > 0) {
    Caffe__LayerParameter **grown = realloc(net->layer, (net->n_layer + 1) * sizeof *grown);
    if (!grown)
      return crema_fail(err, CREMA_ERR_NOMEM, "out of memory upgrading a net");
    net->layer = grown;
    Caffe__LayerParameter *l = msg_new(&caffe__layer_parameter__descriptor, err);
    if (!l)
      return CREMA_ERR_NOMEM;
    crema_status st = make_input_layer(net, l, path, err);
    if (st != CREMA_OK) {
      free_msg(l);
      return st;
    }
    memmove(net->layer + 1, net->layer, net->n_layer * sizeof *net->layer);
    net->layer[0] = l;
    net->n_layer++;
  }
  clear_net_inputs(net);
  return CREMA_OK;
}

/* ------------------------------------------------------------------------ */
/* BatchNorm layers declaring their three statistics blobs as parameters     */

static int is_old_batch_norm(const Caffe__LayerParameter *l) {
  return l->type && !strcmp(l->type, "BatchNorm") && l->n_param == 3;
}

static int net_needs_batch_norm_upgrade(const Caffe__NetParameter *net) {
  for (size_t i = 0; i < net->n_layer; i++)
    if (is_old_batch_norm(net->layer[i]))
      return 1;
  return 0;
}

/* Current Caffe keeps the three ParamSpecs (names may share statistics) and
 * only freezes them: lr_mult and decay_mult 0. */
static void upgrade_batch_norm(Caffe__NetParameter *net) {
  for (size_t i = 0; i < net->n_layer; i++) {
    Caffe__LayerParameter *l = net->layer[i];
    if (!is_old_batch_norm(l))
      continue;
    for (size_t p = 0; p < l->n_param; p++) {
      l->param[p]->has_lr_mult = 1;
      l->param[p]->lr_mult = 0.f;
      l->param[p]->has_decay_mult = 1;
      l->param[p]->decay_mult = 0.f;
    }
  }
}

/* ------------------------------------------------------------------------ */

crema_status upgrade_net(Caffe__NetParameter *net, const char *path, int *upgraded,
                         crema_error *err) {
  int changed = 0;
  if (upgraded)
    *upgraded = 0;
  if (net_needs_v0_upgrade(net)) {
    LOG_INFO("Attempting to upgrade input file specified using deprecated V0LayerParameter: %s",
             path);
    int ok = 1;
    CREMA_TRY(upgrade_v0_net(net, path, &ok, err));
    if (ok)
      LOG_INFO("Successfully upgraded file specified using deprecated V0LayerParameter");
    else
      LOG_ERROR("Warning: had one or more problems upgrading V0NetParameter to NetParameter "
                "(see above); continuing anyway.");
    LOG_WARN("Note that future Caffe releases will not support V0NetParameter; use "
             "'crema upgrade-net' to upgrade this and any other net protos to the new format.");
    changed = 1;
  }
  if (net_needs_data_upgrade(net)) {
    LOG_INFO("Attempting to upgrade input file specified using deprecated transformation "
             "parameters: %s", path);
    CREMA_TRY(upgrade_data_transformation(net, err));
    LOG_INFO("Successfully upgraded file specified using deprecated data transformation "
             "parameters.");
    LOG_WARN("Note that future Caffe releases will only support transform_param messages for "
             "transformation fields.");
    changed = 1;
  }
  if (net->n_layers > 0) {
    LOG_INFO("Attempting to upgrade input file specified using deprecated V1LayerParameter: %s",
             path);
    int ok = 1;
    CREMA_TRY(upgrade_net_v1_to_v2(net, path, &ok, err));
    if (ok)
      LOG_INFO("Successfully upgraded file specified using deprecated V1LayerParameter");
    else
      LOG_ERROR("Warning: had one or more problems upgrading V1LayerParameter (see above); "
                "continuing anyway.");
    changed = 1;
  }
  if (net->n_input > 0) {
    LOG_INFO("Attempting to upgrade input file specified using deprecated input fields: %s",
             path);
    CREMA_TRY(upgrade_net_input(net, path, err));
    LOG_INFO("Successfully upgraded file specified using deprecated input fields.");
    LOG_WARN("Note that future Caffe releases will only support input layers and not input "
             "fields.");
    changed = 1;
  }
  if (net_needs_batch_norm_upgrade(net)) {
    LOG_INFO("Attempting to upgrade batch norm layers using deprecated params: %s", path);
    upgrade_batch_norm(net);
    LOG_INFO("Successfully upgraded batch norm layers using deprecated params.");
    changed = 1;
  }
  if (upgraded)
    *upgraded = changed;
  return CREMA_OK;
}

crema_status upgrade_net_v0_padding(Caffe__NetParameter *net, const char *path,
                                    crema_error *err) {
  return fold_padding_layers(net, path, err);
}

crema_status upgrade_net_v0_to_v1(Caffe__NetParameter *net, const char *path, int *compatible,
                                  crema_error *err) {
  int ok = 1;
  crema_status st = upgrade_v0_net(net, path, &ok, err);
  if (compatible)
    *compatible = ok;
  return st;
}

crema_status upgrade_net_v1_to_v2(Caffe__NetParameter *net, const char *path, int *compatible,
                                  crema_error *err) {
  if (net->n_layer > 0 && net->n_layers > 0)
    return crema_fail(err, CREMA_ERR_INVALID,
                      "%s: the net has both 'layer' (current) and 'layers' (legacy V1) entries; "
                      "use one form only",
                      path);
  int ok = 1;
  crema_status st = upgrade_v1_net(net, path, &ok, err);
  if (compatible)
    *compatible = ok;
  return st;
}

const char *upgrade_v1_type_name(int v1_type) {
  return v1_type_name((Caffe__V1LayerParameter__LayerType)v1_type);
}

static const char *solver_type_name(Caffe__SolverParameter__SolverType t) {
  switch (t) {
    case CAFFE__SOLVER_PARAMETER__SOLVER_TYPE__SGD: return "SGD";
    case CAFFE__SOLVER_PARAMETER__SOLVER_TYPE__NESTEROV: return "Nesterov";
    case CAFFE__SOLVER_PARAMETER__SOLVER_TYPE__ADAGRAD: return "AdaGrad";
    case CAFFE__SOLVER_PARAMETER__SOLVER_TYPE__RMSPROP: return "RMSProp";
    case CAFFE__SOLVER_PARAMETER__SOLVER_TYPE__ADADELTA: return "AdaDelta";
    case CAFFE__SOLVER_PARAMETER__SOLVER_TYPE__ADAM: return "Adam";
    default: return NULL;
  }
}

crema_status upgrade_solver(Caffe__SolverParameter *solver, const char *path, int *upgraded,
                            crema_error *err) {
  if (upgraded)
    *upgraded = 0;
  if (!solver->has_solver_type)
    return CREMA_OK;
  LOG_INFO("Attempting to upgrade input file specified using deprecated 'solver_type' field "
           "(enum)': %s", path);
  if (str_present(solver->type, caffe__solver_parameter__type__default_value))
    return crema_fail(err, CREMA_ERR_INVALID,
                      "%s: failed to upgrade solver: old solver_type field (enum) and new type "
                      "field (string) cannot be both specified",
                      path);
  const char *name = solver_type_name(solver->solver_type);
  if (!name)
    return crema_fail(err, CREMA_ERR_INVALID, "%s: unknown solver_type %d", path,
                      (int)solver->solver_type);
  char *type = crema_strdup(name, err);
  if (!type)
    return CREMA_ERR_NOMEM;
  solver->type = type;
  solver->has_solver_type = 0;
  solver->solver_type = CAFFE__SOLVER_PARAMETER__SOLVER_TYPE__SGD;
  LOG_INFO("Successfully upgraded file specified using deprecated 'solver_type' field (enum) to "
           "'type' field (string).");
  LOG_WARN("Note that future Caffe releases will only support 'type' field (string) for a "
           "solver's type.");
  if (upgraded)
    *upgraded = 1;
  return CREMA_OK;
}

static crema_status finish_net_read(const char *path, Caffe__NetParameter *net,
                                    Caffe__NetParameter **out, crema_error *err) {
  crema_status st = upgrade_net(net, path, NULL, err);
  if (st != CREMA_OK) {
    free_msg(net);
    return st;
  }
  *out = net;
  return CREMA_OK;
}

crema_status net_param_read_text(const char *path, Caffe__NetParameter **out, crema_error *err) {
  *out = NULL;
  ProtobufCMessage *msg = NULL;
  CREMA_TRY(txt_parse_file(path, &caffe__net_parameter__descriptor, &msg, err));
  return finish_net_read(path, (Caffe__NetParameter *)msg, out, err);
}

crema_status net_param_read_binary(const char *path, Caffe__NetParameter **out,
                                   crema_error *err) {
  *out = NULL;
  ProtobufCMessage *msg = NULL;
  CREMA_TRY(bin_read_file(path, &caffe__net_parameter__descriptor, &msg, err));
  return finish_net_read(path, (Caffe__NetParameter *)msg, out, err);
}

crema_status net_param_read(const char *path, Caffe__NetParameter **out, crema_error *err) {
  if (path_has_suffix(path, ".caffemodel") || path_has_suffix(path, ".binaryproto"))
    return net_param_read_binary(path, out, err);
  return net_param_read_text(path, out, err);
}

crema_status net_weights_read(const char *path, Caffe__NetParameter **out, crema_error *err) {
  if (path_is_text_proto(path))
    return net_param_read_text(path, out, err);
  return net_param_read_binary(path, out, err);
}

crema_status solver_param_read_text(const char *path, Caffe__SolverParameter **out,
                                    crema_error *err) {
  *out = NULL;
  ProtobufCMessage *msg = NULL;
  CREMA_TRY(txt_parse_file(path, &caffe__solver_parameter__descriptor, &msg, err));
  Caffe__SolverParameter *solver = (Caffe__SolverParameter *)msg;
  crema_status st = upgrade_solver(solver, path, NULL, err);
  if (st != CREMA_OK) {
    free_msg(solver);
    return st;
  }
  *out = solver;
  return CREMA_OK;
}
