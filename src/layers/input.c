/* The Input layer, after Caffe's: shapes its tops once at setup from
 * input_param (one shape for all tops, or one per top); the caller fills
 * them.  Later reshapes leave the tops alone so that callers may resize
 * the inputs. */
#include "config.h"

#include <limits.h>

#include "layers/layer.h"
#include "layers/registry.h"

static crema_status input_shape_top(const layer *l, const Caffe__BlobShape *s, blob *t,
                                    crema_error *err) {
  if (s->n_dim > BLOB_MAX_AXES)
    return layer_fail(l, err, CREMA_ERR_SHAPE, "shape has %zu dims (at most %d)", s->n_dim,
                      BLOB_MAX_AXES);
  int dims[BLOB_MAX_AXES];
  for (size_t i = 0; i < s->n_dim; i++) {
    if (s->dim[i] < 0 || s->dim[i] > INT_MAX)
      return layer_fail(l, err, CREMA_ERR_SHAPE, "dim %zu of top '%s' is %lld", i,
                        t->name ? t->name : "", (long long)s->dim[i]);
    dims[i] = (int)s->dim[i];
  }
  crema_status st = blob_reshape(t, (int)s->n_dim, dims, err);
  if (st != CREMA_OK)
    crema_error_prefix(err, "layer '%s' (%s): ", l->name, l->ops->type);
  return st;
}

static crema_status input_setup(layer *l, const blob_list *bottom, const blob_list *top,
                                crema_error *err) {
  const Caffe__InputParameter *ip = l->param->input_param;
  const size_t nshapes = ip ? ip->n_shape : 0;
  if (nshapes != 0 && nshapes != 1 && nshapes != (size_t)top->n)
    return layer_fail(l, err, CREMA_ERR_INVALID,
                      "%zu shapes for %d tops: give one shape, one per top, or none", nshapes,
                      top->n);
  for (int i = 0; nshapes && i < top->n; i++)
    CREMA_TRY(input_shape_top(l, ip->shape[nshapes == 1 ? 0 : i], top->v[i], err));
  return CREMA_OK;
}

static crema_status input_keep(layer *l, const blob_list *bottom, const blob_list *top,
                               crema_error *err) {
  return CREMA_OK;
}

const layer_ops input_layer_ops = {
    .type = "Input", .min_bottoms = 0, .max_bottoms = 0, .min_tops = 1, .max_tops = -1,
    .setup = input_setup, .reshape = input_keep, .forward = input_keep, .backward = NULL,
    .destroy = NULL};
