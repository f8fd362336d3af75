/* Caffe's V1 layers (the LayerType enum) upgraded to the current layer
 * messages, with the legacy data transformation fields they may carry:
 * UpgradeNetDataTransformation and UpgradeV1Net of upgrade_proto.cpp.  The
 * table of V1 type names is here, read both ways (io/downgrade.c goes
 * back for `crema init --v1'). */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "io/upgrade.h"
#include "io/upgrade_impl.h"

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

int net_needs_data_upgrade(const Caffe__NetParameter *net) {
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
crema_status upgrade_data_transformation(Caffe__NetParameter *net, crema_error *err) {
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
                                     size_t index, const upgrade_src *src, int *ok,
                                     crema_error *err) {
  if (v1->has_type) {
    const char *type = v1_type_name(v1->type);
    if (!type)
      return crema_fail(err, CREMA_ERR_INVALID, "%s: layer '%s' (layers #%zu): unknown V1 layer "
                        "type %d", src->path, name_or_unnamed(v1->name), index, (int)v1->type);
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
  CREMA_TRY(v1_move_param_specs(v1, l, src->path, err));
  MOVE_ARRAY(l->loss_weight, v1->loss_weight, l->n_loss_weight, v1->n_loss_weight);
  v1_move_sub_params(v1, l);
  if (v1->layer) {
    LOG_ERROR_AT(src->level, "%s: layer '%s': input NetParameter has V0 layer -- ignoring.",
                 src->path, name_or_unnamed(l->name));
    *ok = 0;
  }
  return CREMA_OK;
}

static crema_status upgrade_v1_net(Caffe__NetParameter *net, const upgrade_src *src, int *ok,
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
    st = upgrade_v1_layer(net->layers[done], out[done], done, src, &layer_ok, err);
    if (st != CREMA_OK) {
      done++;
      break;
    }
    if (!layer_ok) {
      LOG_ERROR_AT(src->level, "Upgrade of input layer %zu failed.", done);
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

crema_status upgrade_net_v1_to_v2(Caffe__NetParameter *net, const char *path,
                                  crema_log_level level, int *compatible, crema_error *err) {
  const upgrade_src src = {path, level};
  if (net->n_layer > 0 && net->n_layers > 0)
    return crema_fail(err, CREMA_ERR_INVALID,
                      "%s: the net has both 'layer' (current) and 'layers' (legacy V1) entries; "
                      "use one form only",
                      path);
  int ok = 1;
  crema_status st = upgrade_v1_net(net, &src, &ok, err);
  if (compatible)
    *compatible = ok;
  return st;
}

const char *upgrade_v1_type_name(int v1_type) {
  return v1_type_name((Caffe__V1LayerParameter__LayerType)v1_type);
}
