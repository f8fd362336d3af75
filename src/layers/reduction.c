/* Reduction: SUM, ASUM, SUMSQ or MEAN over all axes from `axis` on, times
 * coeff (Caffe's ReductionLayer). */
#include "config.h"

#include <math.h>
#include <stdlib.h>

#include "layers/layer.h"
#include "layers/registry.h"

typedef Caffe__ReductionParameter__ReductionOp reduction_op;

typedef struct reduction_state {
  reduction_op op;
  float coeff; /* divided by dim for MEAN */
  size_t num, dim;
} reduction_state;

static crema_status reduction_setup(layer *l, const blob_list *bottom, const blob_list *top,
                                    crema_error *err) {
  reduction_state *s = crema_calloc(1, sizeof *s, err);
  if (!s)
    return CREMA_ERR_NOMEM;
  l->priv = s;
  Caffe__ReductionParameter def = CAFFE__REDUCTION_PARAMETER__INIT;
  const Caffe__ReductionParameter *p =
      l->param->reduction_param ? l->param->reduction_param : &def;
  s->op = p->operation;
  if (s->op < CAFFE__REDUCTION_PARAMETER__REDUCTION_OP__SUM ||
      s->op > CAFFE__REDUCTION_PARAMETER__REDUCTION_OP__MEAN)
    return layer_fail(l, err, CREMA_ERR_INVALID, "unknown reduction operation %d", (int)s->op);
  return CREMA_OK;
}

static crema_status reduction_reshape(layer *l, const blob_list *bottom, const blob_list *top,
                                      crema_error *err) {
  reduction_state *s = l->priv;
  const blob *x = bottom->v[0];
  const Caffe__ReductionParameter *p = l->param->reduction_param;
  int axis_param = p && p->has_axis ? p->axis : 0, axis;
  /* Axis 0 of a scalar input reduces everything, as the canonical index of
   * an empty shape would not allow. */
  if (x->num_axes == 0 && axis_param == 0)
    axis = 0;
  else if (blob_canonical_axis(x, axis_param, &axis, NULL) != CREMA_OK)
    return layer_fail(l, err, CREMA_ERR_SHAPE, "axis %d is out of range for %d axes",
                      axis_param, x->num_axes);
  s->num = blob_count_range(x, 0, axis);
  s->dim = blob_count_from(x, axis);
  float coeff = p && p->has_coeff ? p->coeff : 1.0f;
  if (s->op == CAFFE__REDUCTION_PARAMETER__REDUCTION_OP__MEAN)
    coeff /= (float)s->dim;
  s->coeff = coeff;
  /* The top keeps the axes before the reduction axis. */
  return blob_reshape(top->v[0], axis, x->shape, err);
}

static crema_status reduction_forward(layer *l, const blob_list *bottom, const blob_list *top,
                                      crema_error *err) {
  const reduction_state *s = l->priv;
  const float *x = bottom->v[0]->data;
  float *y = top->v[0]->data;
  for (size_t i = 0; i < s->num; i++, x += s->dim) {
    double acc = 0.0;
    switch (s->op) {
    case CAFFE__REDUCTION_PARAMETER__REDUCTION_OP__ASUM:
      for (size_t j = 0; j < s->dim; j++)
        acc += fabsf(x[j]);
      break;
    case CAFFE__REDUCTION_PARAMETER__REDUCTION_OP__SUMSQ:
      for (size_t j = 0; j < s->dim; j++)
        acc += (double)x[j] * x[j];
      break;
    default: /* SUM and MEAN */
      for (size_t j = 0; j < s->dim; j++)
        acc += x[j];
      break;
    }
    y[i] = (float)acc;
    if (s->coeff != 1.0f)
      y[i] *= s->coeff;
  }
  return CREMA_OK;
}

static crema_status reduction_backward(layer *l, const blob_list *top, const int *propagate_down,
                                       const blob_list *bottom, crema_error *err) {
  if (!propagate_down[0])
    return CREMA_OK;
  const reduction_state *s = l->priv;
  const float *x = bottom->v[0]->data, *dy = top->v[0]->diff;
  float *dx = bottom->v[0]->diff;
  for (size_t i = 0; i < s->num; i++, x += s->dim, dx += s->dim) {
    float g = dy[i] * s->coeff;
    switch (s->op) {
    case CAFFE__REDUCTION_PARAMETER__REDUCTION_OP__ASUM:
      for (size_t j = 0; j < s->dim; j++)
        dx[j] = x[j] > 0.0f ? g : x[j] < 0.0f ? -g : 0.0f;
      break;
    case CAFFE__REDUCTION_PARAMETER__REDUCTION_OP__SUMSQ:
      for (size_t j = 0; j < s->dim; j++)
        dx[j] = 2.0f * g * x[j];
      break;
    default:
      for (size_t j = 0; j < s->dim; j++)
        dx[j] = g;
      break;
    }
  }
  return CREMA_OK;
}

static void reduction_destroy(layer *l) {
  free(l->priv);
}

const layer_ops reduction_layer_ops = {
    .type = "Reduction",
    .min_bottoms = 1, .max_bottoms = 1,
    .min_tops = 1, .max_tops = 1,
    .setup = reduction_setup,
    .reshape = reduction_reshape,
    .forward = reduction_forward,
    .backward = reduction_backward,
    .destroy = reduction_destroy,
};
