/* Element-wise arithmetic layers, after Caffe's: Eltwise (SUM, PROD, MAX),
 * Scale and Bias (a per-slice factor or offset, learned or from a second
 * bottom) and Power (y = (shift + scale * x)^power). */
#include "config.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "layers/layer.h"
#include "layers/registry.h"
#include "math/elementwise.h"
#include "math/filler.h"

/* ---- Eltwise ---- */

typedef struct eltwise_priv {
  int *argmax;      /* MAX: index of the bottom that won, per element */
  size_t argmax_cap;
} eltwise_priv;

static const Caffe__EltwiseParameter *eltwise_param(const layer *l) {
  static const Caffe__EltwiseParameter defaults = CAFFE__ELTWISE_PARAMETER__INIT;
  return l->param->eltwise_param ? l->param->eltwise_param : &defaults;
}

static float eltwise_coeff(const layer *l, int i) {
  const Caffe__EltwiseParameter *ep = eltwise_param(l);
  return ep->n_coeff ? ep->coeff[i] : 1.0f;
}

static crema_status eltwise_setup(layer *l, const blob_list *bottom, const blob_list *top,
                                  crema_error *err) {
  const Caffe__EltwiseParameter *ep = eltwise_param(l);
  if (ep->n_coeff && ep->n_coeff != (size_t)bottom->n)
    return layer_fail(l, err, CREMA_ERR_INVALID,
                      "%zu coefficients for %d bottoms (one per bottom expected)", ep->n_coeff,
                      bottom->n);
  if (ep->operation == CAFFE__ELTWISE_PARAMETER__ELTWISE_OP__PROD && ep->n_coeff)
    return layer_fail(l, err, CREMA_ERR_INVALID, "coefficients are only allowed for SUM");
  if (ep->operation != CAFFE__ELTWISE_PARAMETER__ELTWISE_OP__PROD &&
      ep->operation != CAFFE__ELTWISE_PARAMETER__ELTWISE_OP__SUM &&
      ep->operation != CAFFE__ELTWISE_PARAMETER__ELTWISE_OP__MAX)
    return layer_fail(l, err, CREMA_ERR_INVALID, "unknown operation %d", (int)ep->operation);
  for (int i = 0; i < bottom->n; i++)
    if (bottom->v[i] == top->v[0])
      return layer_fail(l, err, CREMA_ERR_INVALID, "does not allow in-place computation");
  l->priv = crema_calloc(1, sizeof(eltwise_priv), err);
  return l->priv ? CREMA_OK : CREMA_ERR_NOMEM;
}

static void eltwise_destroy(layer *l) {
  eltwise_priv *p = l->priv;
  if (p)
    free(p->argmax);
  free(p);
  l->priv = NULL;
}

static crema_status eltwise_reshape(layer *l, const blob_list *bottom, const blob_list *top,
                                    crema_error *err) {
  const blob *b0 = bottom->v[0];
  for (int i = 1; i < bottom->n; i++)
    if (!blob_same_shape(bottom->v[i], b0)) {
      char s0[128], si[128];
      return layer_fail(l, err, CREMA_ERR_SHAPE, "bottom %d has shape %s, bottom 0 has %s", i,
                        blob_shape_string(bottom->v[i], si, sizeof si),
                        blob_shape_string(b0, s0, sizeof s0));
    }
  CREMA_TRY(layer_reshape_like(l, top->v[0], b0, err));
  if (eltwise_param(l)->operation == CAFFE__ELTWISE_PARAMETER__ELTWISE_OP__MAX) {
    eltwise_priv *p = l->priv;
    CREMA_TRY(layer_grow_buffer(l, (void **)&p->argmax, &p->argmax_cap,
                                b0->count, sizeof(int), err));
  }
  return CREMA_OK;
}

static void eltwise_forward_max(layer *l, const blob_list *bottom, float *y, size_t n) {
  int *arg = ((eltwise_priv *)l->priv)->argmax;
  const float *a = bottom->v[0]->data, *b = bottom->v[1]->data;
  /* Ties between the first two go to bottom 1, later ties to the earlier. */
  for (size_t i = 0; i < n; i++) {
    if (a[i] > b[i]) {
      y[i] = a[i];
      arg[i] = 0;
    } else {
      y[i] = b[i];
      arg[i] = 1;
    }
  }
  for (int k = 2; k < bottom->n; k++) {
    const float *x = bottom->v[k]->data;
    for (size_t i = 0; i < n; i++)
      if (x[i] > y[i]) {
        y[i] = x[i];
        arg[i] = k;
      }
  }
}

static crema_status eltwise_forward(layer *l, const blob_list *bottom, const blob_list *top,
                                    crema_error *err) {
  const size_t n = top->v[0]->count;
  float *y = top->v[0]->data;
  switch (eltwise_param(l)->operation) {
  case CAFFE__ELTWISE_PARAMETER__ELTWISE_OP__PROD: {
    const float *a = bottom->v[0]->data, *b = bottom->v[1]->data;
    for (size_t i = 0; i < n; i++)
      y[i] = a[i] * b[i];
    for (int k = 2; k < bottom->n; k++) {
      const float *x = bottom->v[k]->data;
      for (size_t i = 0; i < n; i++)
        y[i] *= x[i];
    }
    break;
  }
  case CAFFE__ELTWISE_PARAMETER__ELTWISE_OP__SUM:
    memset(y, 0, n * sizeof(float));
    for (int k = 0; k < bottom->n; k++) {
      const float c = eltwise_coeff(l, k);
      const float *x = bottom->v[k]->data;
      for (size_t i = 0; i < n; i++)
        y[i] += c * x[i];
    }
    break;
  default:
    eltwise_forward_max(l, bottom, y, n);
    break;
  }
  return CREMA_OK;
}

/* d top / d bottom k of a product: the product of the other bottoms. */
static void eltwise_prod_grad(const layer *l, const blob_list *bottom, const blob *t, int k,
                              float *dx) {
  const size_t n = t->count;
  if (eltwise_param(l)->stable_prod_grad) {
    int first = 1;
    for (int j = 0; j < bottom->n; j++) {
      if (j == k)
        continue;
      const float *x = bottom->v[j]->data;
      if (first)
        memcpy(dx, x, n * sizeof(float));
      else
        for (size_t i = 0; i < n; i++)
          dx[i] *= x[i];
      first = 0;
    }
  } else {
    const float *x = bottom->v[k]->data;
    for (size_t i = 0; i < n; i++)
      dx[i] = t->data[i] / x[i];
  }
  for (size_t i = 0; i < n; i++)
    dx[i] *= t->diff[i];
}

static crema_status eltwise_backward(layer *l, const blob_list *top, const int *propagate_down,
                                     const blob_list *bottom, crema_error *err) {
  const blob *t = top->v[0];
  const size_t n = t->count;
  const Caffe__EltwiseParameter__EltwiseOp op = eltwise_param(l)->operation;
  for (int k = 0; k < bottom->n; k++) {
    if (!propagate_down[k])
      continue;
    float *dx = bottom->v[k]->diff;
    if (op == CAFFE__ELTWISE_PARAMETER__ELTWISE_OP__PROD) {
      eltwise_prod_grad(l, bottom, t, k, dx);
    } else if (op == CAFFE__ELTWISE_PARAMETER__ELTWISE_OP__SUM) {
      const float c = eltwise_coeff(l, k);
      for (size_t i = 0; i < n; i++)
        dx[i] = c == 1.0f ? t->diff[i] : c * t->diff[i];
    } else {
      const int *arg = ((const eltwise_priv *)l->priv)->argmax;
      for (size_t i = 0; i < n; i++)
        dx[i] = arg[i] == k ? t->diff[i] : 0.0f;
    }
  }
  return CREMA_OK;
}

const layer_ops eltwise_layer_ops = {
    .type = "Eltwise", .min_bottoms = 2, .max_bottoms = -1, .min_tops = 1, .max_tops = 1,
    .setup = eltwise_setup, .reshape = eltwise_reshape, .forward = eltwise_forward,
    .backward = eltwise_backward, .destroy = eltwise_destroy};

/* ---- Scale and Bias ----
 *
 * Both see bottom 0 as outer x dim x inner, where the dim axes are those of
 * the factor (or offset) blob, placed at `axis`. */

typedef struct affine_dims {
  size_t outer, dim, inner;
} affine_dims;

typedef struct affine_priv {
  affine_dims dims;
  int has_bias;       /* Scale with bias_term */
  int bias_index;     /* index of the bias in l->blobs */
  float *saved;       /* Scale in place: the input, for the factor's gradient */
  size_t saved_cap;
} affine_priv;

/* Shape of a learned factor/offset: num_axes axes of bottom from axis (-1:
 * to the end). */
static crema_status affine_param_shape(const layer *l, const blob *b, int axis, int num_axes,
                                       blob *param, crema_error *err) {
  int a;
  crema_status st = blob_canonical_axis(b, axis, &a, err);
  if (st != CREMA_OK) {
    crema_error_prefix(err, "layer '%s' (%s): ", l->name, l->ops->type);
    return st;
  }
  if (num_axes < -1)
    return layer_fail(l, err, CREMA_ERR_INVALID,
                      "num_axes must be non-negative, or -1 to extend to the end of bottom 0; "
                      "got %d", num_axes);
  if (num_axes >= 0 && a + num_axes > b->num_axes)
    return layer_fail(l, err, CREMA_ERR_SHAPE,
                      "the parameter's %d axes from axis %d extend past bottom 0's %d axes",
                      num_axes, a, b->num_axes);
  int n = num_axes == -1 ? b->num_axes - a : num_axes;
  return blob_reshape(param, n, b->shape + a, err);
}

/* Checks that the factor blob f fits bottom b at axis and computes dims. */
static crema_status affine_dims_for(const layer *l, const blob *b, const blob *f, int axis,
                                    affine_dims *d, crema_error *err) {
  int a = 0;
  if (f->num_axes > 0) {
    crema_status st = blob_canonical_axis(b, axis, &a, err);
    if (st != CREMA_OK) {
      crema_error_prefix(err, "layer '%s' (%s): ", l->name, l->ops->type);
      return st;
    }
  }
  char sb[128], sf[128];
  if (a + f->num_axes > b->num_axes)
    return layer_fail(l, err, CREMA_ERR_SHAPE,
                      "parameter of shape %s extends past bottom 0 of shape %s from axis %d",
                      blob_shape_string(f, sf, sizeof sf), blob_shape_string(b, sb, sizeof sb),
                      a);
  for (int i = 0; i < f->num_axes; i++)
    if (b->shape[a + i] != f->shape[i])
      return layer_fail(l, err, CREMA_ERR_SHAPE,
                        "parameter of shape %s does not match bottom 0 of shape %s at axis %d",
                        blob_shape_string(f, sf, sizeof sf),
                        blob_shape_string(b, sb, sizeof sb), a + i);
  d->outer = blob_count_range(b, 0, a);
  d->dim = f->count;
  d->inner = blob_count_from(b, a + f->num_axes);
  return CREMA_OK;
}

static void affine_destroy(layer *l) {
  affine_priv *p = l->priv;
  if (p)
    free(p->saved);
  free(p);
  l->priv = NULL;
}

/* y += bias, broadcast over outer and inner. */
static void bias_add(float *y, const float *bias, const affine_dims *d) {
  for (size_t o = 0; o < d->outer; o++)
    for (size_t c = 0; c < d->dim; c++) {
      const float v = bias[c];
      float *row = y + (o * d->dim + c) * d->inner;
      for (size_t i = 0; i < d->inner; i++)
        row[i] += v;
    }
}

/* dbias (+)= sum of dy over outer and inner. */
static void bias_grad(const float *dy, float *dbias, const affine_dims *d, int accumulate) {
  for (size_t c = 0; c < d->dim; c++) {
    double sum = 0.0;
    for (size_t o = 0; o < d->outer; o++) {
      const float *row = dy + (o * d->dim + c) * d->inner;
      for (size_t i = 0; i < d->inner; i++)
        sum += row[i];
    }
    dbias[c] = accumulate ? dbias[c] + (float)sum : (float)sum;
  }
}

static const Caffe__BiasParameter *bias_param(const layer *l) {
  static const Caffe__BiasParameter defaults = CAFFE__BIAS_PARAMETER__INIT;
  return l->param->bias_param ? l->param->bias_param : &defaults;
}

static crema_status bias_setup(layer *l, const blob_list *bottom, const blob_list *top,
                               crema_error *err) {
  affine_priv *p = crema_calloc(1, sizeof *p, err);
  if (!p)
    return CREMA_ERR_NOMEM;
  l->priv = p;
  if (bottom->n > 1)
    return CREMA_OK;
  const Caffe__BiasParameter *bp = bias_param(l);
  CREMA_TRY(layer_alloc_blobs(l, 1, err));
  CREMA_TRY(affine_param_shape(l, bottom->v[0], bp->axis, bp->num_axes, l->blobs[0], err));
  return filler_fill(bp->filler, l->blobs[0], &l->ctx->rng, err);
}

static crema_status bias_reshape(layer *l, const blob_list *bottom, const blob_list *top,
                                 crema_error *err) {
  affine_priv *p = l->priv;
  const blob *bias = bottom->n > 1 ? bottom->v[1] : l->blobs[0];
  CREMA_TRY(affine_dims_for(l, bottom->v[0], bias, bias_param(l)->axis, &p->dims, err));
  if (top->v[0] != bottom->v[0])
    CREMA_TRY(layer_reshape_like(l, top->v[0], bottom->v[0], err));
  return CREMA_OK;
}

static crema_status bias_forward(layer *l, const blob_list *bottom, const blob_list *top,
                                 crema_error *err) {
  const affine_priv *p = l->priv;
  const blob *bias = bottom->n > 1 ? bottom->v[1] : l->blobs[0];
  if (top->v[0] != bottom->v[0])
    memcpy(top->v[0]->data, bottom->v[0]->data, bottom->v[0]->count * sizeof(float));
  bias_add(top->v[0]->data, bias->data, &p->dims);
  return CREMA_OK;
}

static crema_status bias_backward(layer *l, const blob_list *top, const int *propagate_down,
                                  const blob_list *bottom, crema_error *err) {
  const affine_priv *p = l->priv;
  const float *dy = top->v[0]->diff;
  /* Offsets first: in place, the bottom diff is dy itself. */
  if (bottom->n > 1 && propagate_down[1])
    bias_grad(dy, bottom->v[1]->diff, &p->dims, 0);
  else if (bottom->n == 1 && l->param_propagate_down[0])
    bias_grad(dy, l->blobs[0]->diff, &p->dims, 1);
  if (propagate_down[0] && top->v[0] != bottom->v[0])
    memcpy(bottom->v[0]->diff, dy, bottom->v[0]->count * sizeof(float));
  return CREMA_OK;
}

const layer_ops bias_layer_ops = {
    .type = "Bias", .min_bottoms = 1, .max_bottoms = 2, .min_tops = 1, .max_tops = 1,
    .setup = bias_setup, .reshape = bias_reshape, .forward = bias_forward,
    .backward = bias_backward, .destroy = affine_destroy};

static const Caffe__ScaleParameter *scale_param(const layer *l) {
  static const Caffe__ScaleParameter defaults = CAFFE__SCALE_PARAMETER__INIT;
  return l->param->scale_param ? l->param->scale_param : &defaults;
}

static crema_status scale_setup(layer *l, const blob_list *bottom, const blob_list *top,
                                crema_error *err) {
  affine_priv *p = crema_calloc(1, sizeof *p, err);
  if (!p)
    return CREMA_ERR_NOMEM;
  l->priv = p;
  const Caffe__ScaleParameter *sp = scale_param(l);
  const blob *b = bottom->v[0];
  int nblobs = (bottom->n == 1) + (sp->bias_term != 0);
  if (nblobs == 0)
    return CREMA_OK;
  CREMA_TRY(layer_alloc_blobs(l, nblobs, err));
  if (bottom->n == 1) {
    CREMA_TRY(affine_param_shape(l, b, sp->axis, sp->num_axes, l->blobs[0], err));
    if (sp->filler) {
      CREMA_TRY(filler_fill(sp->filler, l->blobs[0], &l->ctx->rng, err));
    } else {
      Caffe__FillerParameter one = CAFFE__FILLER_PARAMETER__INIT;
      one.type = (char *)"constant";
      one.has_value = 1;
      one.value = 1.0f;
      CREMA_TRY(filler_fill(&one, l->blobs[0], &l->ctx->rng, err));
    }
  }
  if (sp->bias_term) {
    /* The offset covers the axes of the factor, learned or given. */
    p->has_bias = 1;
    p->bias_index = nblobs - 1;
    int num_axes = bottom->n > 1 ? bottom->v[1]->num_axes : sp->num_axes;
    blob *bias = l->blobs[p->bias_index];
    CREMA_TRY(affine_param_shape(l, b, sp->axis, num_axes, bias, err));
    CREMA_TRY(filler_fill(sp->bias_filler, bias, &l->ctx->rng, err));
  }
  return CREMA_OK;
}

static crema_status scale_reshape(layer *l, const blob_list *bottom, const blob_list *top,
                                  crema_error *err) {
  affine_priv *p = l->priv;
  const blob *factor = bottom->n > 1 ? bottom->v[1] : l->blobs[0];
  CREMA_TRY(affine_dims_for(l, bottom->v[0], factor, scale_param(l)->axis, &p->dims, err));
  if (p->has_bias) {
    affine_dims bd;
    CREMA_TRY(affine_dims_for(l, bottom->v[0], l->blobs[p->bias_index], scale_param(l)->axis,
                              &bd, err));
    if (bd.dim != p->dims.dim || bd.inner != p->dims.inner)
      return layer_fail(l, err, CREMA_ERR_SHAPE, "bias and scale cover different axes");
  }
  if (top->v[0] != bottom->v[0])
    CREMA_TRY(layer_reshape_like(l, top->v[0], bottom->v[0], err));
  return CREMA_OK;
}

static crema_status scale_forward(layer *l, const blob_list *bottom, const blob_list *top,
                                  crema_error *err) {
  affine_priv *p = l->priv;
  const blob *b = bottom->v[0];
  if (top->v[0] == b) {
    CREMA_TRY(layer_grow_buffer(l, (void **)&p->saved, &p->saved_cap,
                                b->count, sizeof(float), err));
    memcpy(p->saved, b->data, b->count * sizeof(float));
  }
  const float *factor = (bottom->n > 1 ? bottom->v[1] : l->blobs[0])->data;
  const affine_dims *d = &p->dims;
  const float *x = b->data;
  float *y = top->v[0]->data;
  for (size_t o = 0; o < d->outer; o++)
    for (size_t c = 0; c < d->dim; c++) {
      const float f = factor[c];
      const size_t base = (o * d->dim + c) * d->inner;
      for (size_t i = 0; i < d->inner; i++)
        y[base + i] = f * x[base + i];
    }
  if (p->has_bias)
    bias_add(y, l->blobs[p->bias_index]->data, d);
  return CREMA_OK;
}

/* dfactor (+)= sum over outer and inner of dy * x. */
static void scale_factor_grad(const float *dy, const float *x, float *dfactor,
                              const affine_dims *d, int accumulate) {
  for (size_t c = 0; c < d->dim; c++) {
    double sum = 0.0;
    for (size_t o = 0; o < d->outer; o++) {
      const size_t base = (o * d->dim + c) * d->inner;
      for (size_t i = 0; i < d->inner; i++)
        sum += (double)(dy[base + i] * x[base + i]);
    }
    dfactor[c] = accumulate ? dfactor[c] + (float)sum : (float)sum;
  }
}

static crema_status scale_backward(layer *l, const blob_list *top, const int *propagate_down,
                                   const blob_list *bottom, crema_error *err) {
  const affine_priv *p = l->priv;
  const affine_dims *d = &p->dims;
  const blob *b = bottom->v[0];
  const float *dy = top->v[0]->diff;
  /* Parameters first: in place, the bottom diff overwrites dy. */
  if (p->has_bias && l->param_propagate_down[p->bias_index])
    bias_grad(dy, l->blobs[p->bias_index]->diff, d, 1);
  const float *x = top->v[0] == b ? p->saved : b->data;
  if (bottom->n > 1 && propagate_down[1])
    scale_factor_grad(dy, x, bottom->v[1]->diff, d, 0);
  else if (bottom->n == 1 && l->param_propagate_down[0])
    scale_factor_grad(dy, x, l->blobs[0]->diff, d, 1);
  if (propagate_down[0]) {
    const float *factor = (bottom->n > 1 ? bottom->v[1] : l->blobs[0])->data;
    float *dx = bottom->v[0]->diff;
    for (size_t o = 0; o < d->outer; o++)
      for (size_t c = 0; c < d->dim; c++) {
        const float f = factor[c];
        const size_t base = (o * d->dim + c) * d->inner;
        for (size_t i = 0; i < d->inner; i++)
          dx[base + i] = f * dy[base + i];
      }
  }
  return CREMA_OK;
}

const layer_ops scale_layer_ops = {
    .type = "Scale", .min_bottoms = 1, .max_bottoms = 2, .min_tops = 1, .max_tops = 1,
    .setup = scale_setup, .reshape = scale_reshape, .forward = scale_forward,
    .backward = scale_backward, .destroy = affine_destroy};

/* ---- Power: y = (shift + scale * x)^power ---- */

typedef struct power_priv {
  float *saved;     /* in place: the input, for the gradient */
  size_t saved_cap;
  int use_saved;
} power_priv;

typedef struct power_coeffs {
  float power, scale, shift, diff_scale;
} power_coeffs;

static power_coeffs power_get(const layer *l) {
  static const Caffe__PowerParameter defaults = CAFFE__POWER_PARAMETER__INIT;
  const Caffe__PowerParameter *pp = l->param->power_param ? l->param->power_param : &defaults;
  power_coeffs c = {pp->power, pp->scale, pp->shift, pp->power * pp->scale};
  return c;
}

static crema_status power_setup(layer *l, const blob_list *bottom, const blob_list *top,
                                crema_error *err) {
  l->priv = crema_calloc(1, sizeof(power_priv), err);
  return l->priv ? CREMA_OK : CREMA_ERR_NOMEM;
}

static void power_destroy(layer *l) {
  power_priv *p = l->priv;
  if (p)
    free(p->saved);
  free(p);
  l->priv = NULL;
}

static crema_status power_reshape(layer *l, const blob_list *bottom, const blob_list *top,
                                  crema_error *err) {
  if (top->v[0] == bottom->v[0])
    return CREMA_OK;
  return layer_reshape_like(l, top->v[0], bottom->v[0], err);
}

static crema_status power_forward(layer *l, const blob_list *bottom, const blob_list *top,
                                  crema_error *err) {
  power_priv *p = l->priv;
  const power_coeffs c = power_get(l);
  const blob *b = bottom->v[0];
  const size_t n = b->count;
  float *y = top->v[0]->data;
  if (c.diff_scale == 0.0f) {
    /* The input does not matter: scale or power is 0. */
    const float v = c.power == 0.0f ? 1.0f : powf(c.shift, c.power);
    for (size_t i = 0; i < n; i++)
      y[i] = v;
    p->use_saved = 0;
    return CREMA_OK;
  }
  p->use_saved = top->v[0] == b && c.power != 1.0f;
  if (p->use_saved) {
    CREMA_TRY(layer_grow_buffer(l, (void **)&p->saved, &p->saved_cap, n, sizeof(float), err));
    memcpy(p->saved, b->data, n * sizeof(float));
  }
  const float *x = b->data;
  if (c.power == 1.0f) {
    ew_affine(x, c.scale, c.shift, y, n);
    return CREMA_OK;
  }
  for (size_t i = 0; i < n; i++) {
    float v = x[i];
    if (c.scale != 1.0f)
      v *= c.scale;
    if (c.shift != 0.0f)
      v += c.shift;
    y[i] = powf(v, c.power);
  }
  return CREMA_OK;
}

/* dy/dx for general power, written as Caffe does to share its rounding. */
static void power_grad(const power_coeffs *c, const float *x, const float *y, float *dx,
                       size_t n) {
  if (c->power == 2.0f) {
    /* 2 * scale * (shift + scale * x) */
    for (size_t i = 0; i < n; i++) {
      float v = c->diff_scale * c->scale * x[i];
      dx[i] = c->shift != 0.0f ? v + c->diff_scale * c->shift : v;
    }
  } else if (c->shift == 0.0f) {
    /* power * y / x */
    for (size_t i = 0; i < n; i++)
      dx[i] = y[i] / x[i] * c->power;
  } else {
    /* diff_scale * y / (shift + scale * x) */
    for (size_t i = 0; i < n; i++) {
      float v = x[i];
      if (c->scale != 1.0f)
        v *= c->scale;
      v += c->shift;
      v = y[i] / v;
      dx[i] = c->diff_scale != 1.0f ? v * c->diff_scale : v;
    }
  }
}

static crema_status power_backward(layer *l, const blob_list *top, const int *propagate_down,
                                   const blob_list *bottom, crema_error *err) {
  if (!propagate_down[0])
    return CREMA_OK;
  const power_priv *p = l->priv;
  const power_coeffs c = power_get(l);
  const size_t n = bottom->v[0]->count;
  const float *dy = top->v[0]->diff;
  float *dx = bottom->v[0]->diff;
  if (c.diff_scale == 0.0f || c.power == 1.0f) {
    ew_affine(dy, c.diff_scale, 0.0f, dx, n);
    return CREMA_OK;
  }
  const float *x = p->use_saved ? p->saved : bottom->v[0]->data;
  const float *y = top->v[0]->data;
  if (dx == dy) {
    /* In place: the factor cannot overwrite dy before it is used. */
    for (size_t i = 0; i < n; i++) {
      float g;
      power_grad(&c, x + i, y + i, &g, 1);
      dx[i] = dy[i] * g;
    }
    return CREMA_OK;
  }
  power_grad(&c, x, y, dx, n);
  for (size_t i = 0; i < n; i++)
    dx[i] *= dy[i];
  return CREMA_OK;
}

const layer_ops power_layer_ops = {
    .type = "Power", .min_bottoms = 1, .max_bottoms = 1, .min_tops = 1, .max_tops = 1,
    .setup = power_setup, .reshape = power_reshape, .forward = power_forward,
    .backward = power_backward, .destroy = power_destroy};
