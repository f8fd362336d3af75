/* Element-wise activation layers, after Caffe's neuron layers: ReLU, PReLU,
 * ELU, Sigmoid, TanH, AbsVal, Exp, Log, BNLL, Clip, Swish, Threshold and
 * Dropout.
 *
 * All of them may run in place (top == bottom).  Where the backward pass
 * needs the input and the output no longer tells it, the forward pass keeps
 * a copy of the input first, as Caffe's PReLU does. */
#include "config.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "layers/layer.h"
#include "layers/registry.h"
#include "math/activation.h"
#include "math/elementwise.h"
#include "math/filler.h"

typedef struct neuron_priv {
  float *saved;        /* copy of the input for in-place backward */
  size_t saved_cap;
  int use_saved;       /* the last forward ran in place and kept the input */
  float *aux;          /* Swish: sigmoid(beta * x) */
  size_t aux_cap;
  uint32_t *mask;      /* Dropout: 0/1 per element */
  size_t mask_cap;
} neuron_priv;

static crema_status neuron_setup(layer *l, const blob_list *bottom, const blob_list *top,
                                 crema_error *err) {
  l->priv = crema_calloc(1, sizeof(neuron_priv), err);
  return l->priv ? CREMA_OK : CREMA_ERR_NOMEM;
}

static void neuron_destroy(layer *l) {
  neuron_priv *p = l->priv;
  if (!p)
    return;
  free(p->saved);
  free(p->aux);
  free(p->mask);
  free(p);
  l->priv = NULL;
}

static crema_status neuron_reshape(layer *l, const blob_list *bottom, const blob_list *top,
                                   crema_error *err) {
  if (top->v[0] == bottom->v[0])
    return CREMA_OK;
  return layer_reshape_like(l, top->v[0], bottom->v[0], err);
}

static int in_place(const blob_list *bottom, const blob_list *top) {
  return bottom->v[0] == top->v[0];
}

/* Called at the start of forward: when running in place and the backward
 * pass will need the input (needed), keeps a copy of it. */
static crema_status keep_input(layer *l, const blob_list *bottom, const blob_list *top,
                               int needed, crema_error *err) {
  neuron_priv *p = l->priv;
  p->use_saved = needed && in_place(bottom, top);
  if (!p->use_saved)
    return CREMA_OK;
  const blob *b = bottom->v[0];
  CREMA_TRY(layer_grow_buffer(l, (void **)&p->saved, &p->saved_cap, b->count, sizeof(float), err));
  memcpy(p->saved, b->data, b->count * sizeof(float));
  return CREMA_OK;
}

/* The input of the last forward pass, as the backward pass needs it. */
static const float *kept_input(const layer *l, const blob_list *bottom) {
  const neuron_priv *p = l->priv;
  return p->use_saved ? p->saved : bottom->v[0]->data;
}

/* A one-bottom, one-top layer keeping its buffers in neuron_priv. */
#define NEURON_LAYER_OPS(type_name, setup_fn, reshape_fn, forward_fn, backward_fn)              \
  {.type = type_name, .min_bottoms = 1, .max_bottoms = 1, .min_tops = 1, .max_tops = 1,       \
   .setup = setup_fn, .reshape = reshape_fn, .forward = forward_fn, .backward = backward_fn, \
   .destroy = neuron_destroy}

/* The arrays of an element-wise forward pass. */
typedef struct forward_arrays {
  const float *x;
  float *y;
  size_t n;
} forward_arrays;

static forward_arrays forward_io(const blob_list *bottom, const blob_list *top) {
  forward_arrays a = {bottom->v[0]->data, top->v[0]->data, bottom->v[0]->count};
  return a;
}

/* The arrays of an element-wise backward pass; x is the kept input. */
typedef struct backward_arrays {
  const float *x, *y, *dy;
  float *dx;
  size_t n;
} backward_arrays;

static backward_arrays backward_io(const layer *l, const blob_list *top,
                                   const blob_list *bottom) {
  backward_arrays a = {kept_input(l, bottom), top->v[0]->data, top->v[0]->diff,
                       bottom->v[0]->diff, bottom->v[0]->count};
  return a;
}

/* ---- ReLU ---- */

/* The passes are math/elementwise.h's, split over the team when long. */

static float relu_slope(const layer *l) {
  const Caffe__ReLUParameter *rp = l->param->relu_param;
  return rp ? rp->negative_slope : 0.0f;
}

static crema_status relu_forward(layer *l, const blob_list *bottom, const blob_list *top,
                                 crema_error *err) {
  if (l->forward_fused)
    return CREMA_OK;
  const float slope = relu_slope(l);
  /* Caffe's backward reads the (overwritten) input: right for slope >= 0,
   * where the output keeps the input's sign. */
  CREMA_TRY(keep_input(l, bottom, top, slope < 0, err));
  const forward_arrays a = forward_io(bottom, top);
  ew_relu(a.x, a.y, a.n, slope);
  return CREMA_OK;
}

static crema_status relu_backward(layer *l, const blob_list *top, const int *propagate_down,
                                  const blob_list *bottom, crema_error *err) {
  if (!propagate_down[0])
    return CREMA_OK;
  const backward_arrays a = backward_io(l, top, bottom);
  ew_relu_backward(a.x, a.dy, a.dx, a.n, relu_slope(l));
  return CREMA_OK;
}

const layer_ops relu_layer_ops =
    NEURON_LAYER_OPS("ReLU", neuron_setup, neuron_reshape, relu_forward, relu_backward);

/* ---- PReLU ---- */

static int prelu_shared(const layer *l) {
  const Caffe__PReLUParameter *pp = l->param->prelu_param;
  return pp && pp->channel_shared;
}

static crema_status prelu_check_shape(const layer *l, const blob *b, crema_error *err) {
  if (b->num_axes < 2) {
    char s[128];
    return layer_fail(l, err, CREMA_ERR_SHAPE,
                      "bottom blob must have at least 2 axes, has shape %s",
                      blob_shape_string(b, s, sizeof s));
  }
  return CREMA_OK;
}

static crema_status prelu_setup(layer *l, const blob_list *bottom, const blob_list *top,
                                crema_error *err) {
  CREMA_TRY(prelu_check_shape(l, bottom->v[0], err));
  CREMA_TRY(neuron_setup(l, bottom, top, err));
  CREMA_TRY(layer_alloc_blobs(l, 1, err));
  int channels = bottom->v[0]->shape[1];
  CREMA_TRY(blob_reshape(l->blobs[0], prelu_shared(l) ? 0 : 1, &channels, err));
  const Caffe__PReLUParameter *pp = l->param->prelu_param;
  if (pp && pp->filler)
    return filler_fill(pp->filler, l->blobs[0], &l->ctx->rng, err);
  Caffe__FillerParameter quarter = CAFFE__FILLER_PARAMETER__INIT;
  quarter.type = (char *)"constant";
  quarter.has_value = 1;
  quarter.value = 0.25f;
  return filler_fill(&quarter, l->blobs[0], &l->ctx->rng, err);
}

static crema_status prelu_reshape(layer *l, const blob_list *bottom, const blob_list *top,
                                  crema_error *err) {
  const blob *b = bottom->v[0];
  CREMA_TRY(prelu_check_shape(l, b, err));
  size_t want = prelu_shared(l) ? 1 : (size_t)b->shape[1];
  if (l->blobs[0]->count != want)
    return layer_fail(l, err, CREMA_ERR_SHAPE,
                      "%zu negative slopes for a bottom with %d channels%s",
                      l->blobs[0]->count, b->shape[1],
                      prelu_shared(l) ? " (channel_shared wants 1)" : "");
  return neuron_reshape(l, bottom, top, err);
}

/* Index of the slope that applies to element i. */
static size_t prelu_channel(size_t i, size_t dim, size_t channels, int shared) {
  return shared ? 0 : (i / dim) % channels;
}

static crema_status prelu_forward(layer *l, const blob_list *bottom, const blob_list *top,
                                  crema_error *err) {
  CREMA_TRY(keep_input(l, bottom, top, 1, err));
  const blob *b = bottom->v[0];
  const size_t channels = (size_t)b->shape[1], dim = blob_count_from(b, 2);
  const int shared = prelu_shared(l);
  const float *slope = l->blobs[0]->data;
  const float *x = b->data;
  float *y = top->v[0]->data;
  for (size_t i = 0; i < b->count; i++)
    y[i] = relu_caffe(x[i], slope[prelu_channel(i, dim, channels, shared)]);
  return CREMA_OK;
}

static crema_status prelu_backward(layer *l, const blob_list *top, const int *propagate_down,
                                   const blob_list *bottom, crema_error *err) {
  const blob *b = bottom->v[0];
  const size_t channels = (size_t)b->shape[1], dim = blob_count_from(b, 2);
  const int shared = prelu_shared(l);
  const float *x = kept_input(l, bottom);
  const float *dy = top->v[0]->diff;
  /* The slopes first: in place, writing the bottom diff overwrites dy. */
  if (l->param_propagate_down[0]) {
    float *dslope = l->blobs[0]->diff;
    for (size_t i = 0; i < b->count; i++)
      dslope[prelu_channel(i, dim, channels, shared)] += dy[i] * x[i] * (float)(x[i] <= 0);
  }
  if (propagate_down[0]) {
    const float *slope = l->blobs[0]->data;
    float *dx = bottom->v[0]->diff;
    for (size_t i = 0; i < b->count; i++)
      dx[i] = dy[i] * ((float)(x[i] > 0) +
                       slope[prelu_channel(i, dim, channels, shared)] * (float)(x[i] <= 0));
  }
  return CREMA_OK;
}

const layer_ops prelu_layer_ops =
    NEURON_LAYER_OPS("PReLU", prelu_setup, prelu_reshape, prelu_forward, prelu_backward);

/* ---- ELU ---- */

static float elu_alpha(const layer *l) {
  const Caffe__ELUParameter *ep = l->param->elu_param;
  return ep ? ep->alpha : 1.0f;
}

static crema_status elu_forward(layer *l, const blob_list *bottom, const blob_list *top,
                                crema_error *err) {
  const float alpha = elu_alpha(l);
  /* For alpha >= 0 the output keeps the input's sign, which is all the
   * backward pass reads of the input. */
  CREMA_TRY(keep_input(l, bottom, top, alpha < 0, err));
  const forward_arrays a = forward_io(bottom, top);
  for (size_t i = 0; i < a.n; i++)
    a.y[i] = fmaxf(a.x[i], 0.0f) + alpha * (expf(fminf(a.x[i], 0.0f)) - 1.0f);
  return CREMA_OK;
}

static crema_status elu_backward(layer *l, const blob_list *top, const int *propagate_down,
                                 const blob_list *bottom, crema_error *err) {
  if (!propagate_down[0])
    return CREMA_OK;
  const float alpha = elu_alpha(l);
  const backward_arrays a = backward_io(l, top, bottom);
  for (size_t i = 0; i < a.n; i++)
    a.dx[i] = a.dy[i] * ((float)(a.x[i] > 0) + (alpha + a.y[i]) * (float)(a.x[i] <= 0));
  return CREMA_OK;
}

const layer_ops elu_layer_ops =
    NEURON_LAYER_OPS("ELU", neuron_setup, neuron_reshape, elu_forward, elu_backward);

/* ---- Sigmoid ---- */

static crema_status sigmoid_forward(layer *l, const blob_list *bottom, const blob_list *top,
                                    crema_error *err) {
  const forward_arrays a = forward_io(bottom, top);
  for (size_t i = 0; i < a.n; i++)
    a.y[i] = sigmoid_caffe(a.x[i]);
  return CREMA_OK;
}

static crema_status sigmoid_backward(layer *l, const blob_list *top, const int *propagate_down,
                                     const blob_list *bottom, crema_error *err) {
  if (!propagate_down[0])
    return CREMA_OK;
  const backward_arrays a = backward_io(l, top, bottom);
  for (size_t i = 0; i < a.n; i++)
    a.dx[i] = (float)(a.dy[i] * a.y[i] * (1.0 - a.y[i]));
  return CREMA_OK;
}

const layer_ops sigmoid_layer_ops =
    NEURON_LAYER_OPS("Sigmoid", neuron_setup, neuron_reshape, sigmoid_forward, sigmoid_backward);

/* ---- TanH ---- */

static crema_status tanh_forward(layer *l, const blob_list *bottom, const blob_list *top,
                                 crema_error *err) {
  const forward_arrays a = forward_io(bottom, top);
  for (size_t i = 0; i < a.n; i++)
    a.y[i] = tanhf(a.x[i]);
  return CREMA_OK;
}

static crema_status tanh_backward(layer *l, const blob_list *top, const int *propagate_down,
                                  const blob_list *bottom, crema_error *err) {
  if (!propagate_down[0])
    return CREMA_OK;
  const backward_arrays a = backward_io(l, top, bottom);
  for (size_t i = 0; i < a.n; i++)
    a.dx[i] = a.dy[i] * (1.0f - a.y[i] * a.y[i]);
  return CREMA_OK;
}

const layer_ops tanh_layer_ops =
    NEURON_LAYER_OPS("TanH", neuron_setup, neuron_reshape, tanh_forward, tanh_backward);

/* ---- AbsVal ---- */

static crema_status absval_forward(layer *l, const blob_list *bottom, const blob_list *top,
                                   crema_error *err) {
  /* |x| loses the sign the gradient needs; Caffe forbids AbsVal in place,
   * crema keeps the input instead. */
  CREMA_TRY(keep_input(l, bottom, top, 1, err));
  const forward_arrays a = forward_io(bottom, top);
  for (size_t i = 0; i < a.n; i++)
    a.y[i] = fabsf(a.x[i]);
  return CREMA_OK;
}

static crema_status absval_backward(layer *l, const blob_list *top, const int *propagate_down,
                                    const blob_list *bottom, crema_error *err) {
  if (!propagate_down[0])
    return CREMA_OK;
  const backward_arrays a = backward_io(l, top, bottom);
  for (size_t i = 0; i < a.n; i++)
    a.dx[i] = (float)((a.x[i] > 0) - (a.x[i] < 0)) * a.dy[i];
  return CREMA_OK;
}

const layer_ops absval_layer_ops =
    NEURON_LAYER_OPS("AbsVal", neuron_setup, neuron_reshape, absval_forward, absval_backward);

/* ---- Exp: y = base^(shift + scale * x) ---- */

typedef struct exp_coeffs {
  float inner_scale; /* log(base) * scale */
  float outer_scale; /* base^shift */
} exp_coeffs;

static crema_status exp_base_check(const layer *l, float base, crema_error *err) {
  if (base != -1.0f && !(base > 0.0f))
    return layer_fail(l, err, CREMA_ERR_INVALID,
                      "base must be strictly positive (or -1 for e), got %g", (double)base);
  return CREMA_OK;
}

static exp_coeffs exp_get_coeffs(const layer *l) {
  static const Caffe__ExpParameter defaults = CAFFE__EXP_PARAMETER__INIT;
  const Caffe__ExpParameter *ep = l->param->exp_param ? l->param->exp_param : &defaults;
  const float log_base = ep->base == -1.0f ? 1.0f : logf(ep->base);
  exp_coeffs c;
  c.inner_scale = log_base * ep->scale;
  if (ep->shift == 0.0f)
    c.outer_scale = 1.0f;
  else
    c.outer_scale = ep->base == -1.0f ? expf(ep->shift) : powf(ep->base, ep->shift);
  return c;
}

static crema_status exp_setup(layer *l, const blob_list *bottom, const blob_list *top,
                              crema_error *err) {
  if (l->param->exp_param)
    CREMA_TRY(exp_base_check(l, l->param->exp_param->base, err));
  return neuron_setup(l, bottom, top, err);
}

static crema_status exp_forward(layer *l, const blob_list *bottom, const blob_list *top,
                                crema_error *err) {
  const exp_coeffs c = exp_get_coeffs(l);
  const forward_arrays a = forward_io(bottom, top);
  for (size_t i = 0; i < a.n; i++) {
    float v = c.inner_scale == 1.0f ? expf(a.x[i]) : expf(c.inner_scale * a.x[i]);
    a.y[i] = c.outer_scale == 1.0f ? v : c.outer_scale * v;
  }
  return CREMA_OK;
}

static crema_status exp_backward(layer *l, const blob_list *top, const int *propagate_down,
                                 const blob_list *bottom, crema_error *err) {
  if (!propagate_down[0])
    return CREMA_OK;
  const exp_coeffs c = exp_get_coeffs(l);
  const backward_arrays a = backward_io(l, top, bottom);
  for (size_t i = 0; i < a.n; i++) {
    float v = a.y[i] * a.dy[i];
    a.dx[i] = c.inner_scale == 1.0f ? v : c.inner_scale * v;
  }
  return CREMA_OK;
}

const layer_ops exp_layer_ops =
    NEURON_LAYER_OPS("Exp", exp_setup, neuron_reshape, exp_forward, exp_backward);

/* ---- Log: y = log_base(shift + scale * x) ---- */

typedef struct log_coeffs {
  float scale, shift;
  float base_scale;    /* 1 / log(base) */
  float backward_num;  /* scale / log(base) */
} log_coeffs;

static log_coeffs log_get_coeffs(const layer *l) {
  static const Caffe__LogParameter defaults = CAFFE__LOG_PARAMETER__INIT;
  const Caffe__LogParameter *lp = l->param->log_param ? l->param->log_param : &defaults;
  const float log_base = lp->base == -1.0f ? 1.0f : logf(lp->base);
  log_coeffs c;
  c.scale = lp->scale;
  c.shift = lp->shift;
  c.base_scale = 1.0f / log_base;
  c.backward_num = lp->scale / log_base;
  return c;
}

static crema_status log_setup(layer *l, const blob_list *bottom, const blob_list *top,
                              crema_error *err) {
  if (l->param->log_param)
    CREMA_TRY(exp_base_check(l, l->param->log_param->base, err));
  return neuron_setup(l, bottom, top, err);
}

static crema_status log_forward(layer *l, const blob_list *bottom, const blob_list *top,
                                crema_error *err) {
  CREMA_TRY(keep_input(l, bottom, top, 1, err));
  const log_coeffs c = log_get_coeffs(l);
  const forward_arrays a = forward_io(bottom, top);
  for (size_t i = 0; i < a.n; i++) {
    float v = a.x[i];
    if (c.scale != 1.0f)
      v *= c.scale;
    if (c.shift != 0.0f)
      v += c.shift;
    v = logf(v);
    a.y[i] = c.base_scale == 1.0f ? v : c.base_scale * v;
  }
  return CREMA_OK;
}

static crema_status log_backward(layer *l, const blob_list *top, const int *propagate_down,
                                 const blob_list *bottom, crema_error *err) {
  if (!propagate_down[0])
    return CREMA_OK;
  const log_coeffs c = log_get_coeffs(l);
  const backward_arrays a = backward_io(l, top, bottom);
  for (size_t i = 0; i < a.n; i++) {
    float v = a.x[i];
    if (c.scale != 1.0f)
      v *= c.scale;
    if (c.shift != 0.0f)
      v += c.shift;
    v = powf(v, -1.0f);
    if (c.backward_num != 1.0f)
      v *= c.backward_num;
    a.dx[i] = a.dy[i] * v;
  }
  return CREMA_OK;
}

const layer_ops log_layer_ops =
    NEURON_LAYER_OPS("Log", log_setup, neuron_reshape, log_forward, log_backward);

/* ---- BNLL: y = log(1 + exp(x)) ---- */

#define BNLL_THRESHOLD 50.0f

static crema_status bnll_forward(layer *l, const blob_list *bottom, const blob_list *top,
                                 crema_error *err) {
  CREMA_TRY(keep_input(l, bottom, top, 1, err));
  const forward_arrays a = forward_io(bottom, top);
  for (size_t i = 0; i < a.n; i++)
    a.y[i] = a.x[i] > 0 ? (float)(a.x[i] + log(1.0 + expf(-a.x[i])))
                        : (float)log(1.0 + expf(a.x[i]));
  return CREMA_OK;
}

static crema_status bnll_backward(layer *l, const blob_list *top, const int *propagate_down,
                                  const blob_list *bottom, crema_error *err) {
  if (!propagate_down[0])
    return CREMA_OK;
  const backward_arrays a = backward_io(l, top, bottom);
  for (size_t i = 0; i < a.n; i++) {
    float e = expf(fminf(a.x[i], BNLL_THRESHOLD));
    a.dx[i] = (float)(a.dy[i] * e / (e + 1.0));
  }
  return CREMA_OK;
}

const layer_ops bnll_layer_ops =
    NEURON_LAYER_OPS("BNLL", neuron_setup, neuron_reshape, bnll_forward, bnll_backward);

/* ---- Clip ---- */

static void clip_bounds(const layer *l, float *lo, float *hi) {
  const Caffe__ClipParameter *cp = l->param->clip_param;
  *lo = cp ? cp->min : 0.0f;
  *hi = cp ? cp->max : 0.0f;
}

static crema_status clip_setup(layer *l, const blob_list *bottom, const blob_list *top,
                               crema_error *err) {
  if (!l->param->clip_param)
    return layer_fail(l, err, CREMA_ERR_INVALID, "clip_param with min and max is required");
  return neuron_setup(l, bottom, top, err);
}

static crema_status clip_forward(layer *l, const blob_list *bottom, const blob_list *top,
                                 crema_error *err) {
  CREMA_TRY(keep_input(l, bottom, top, 1, err));
  float lo, hi;
  clip_bounds(l, &lo, &hi);
  const forward_arrays a = forward_io(bottom, top);
  for (size_t i = 0; i < a.n; i++) {
    float v = a.x[i] < hi ? a.x[i] : hi;
    a.y[i] = lo > v ? lo : v;
  }
  return CREMA_OK;
}

static crema_status clip_backward(layer *l, const blob_list *top, const int *propagate_down,
                                  const blob_list *bottom, crema_error *err) {
  if (!propagate_down[0])
    return CREMA_OK;
  float lo, hi;
  clip_bounds(l, &lo, &hi);
  const backward_arrays a = backward_io(l, top, bottom);
  for (size_t i = 0; i < a.n; i++)
    a.dx[i] = a.dy[i] * (float)(a.x[i] >= lo && a.x[i] <= hi);
  return CREMA_OK;
}

const layer_ops clip_layer_ops =
    NEURON_LAYER_OPS("Clip", clip_setup, neuron_reshape, clip_forward, clip_backward);

/* ---- Swish: y = x * sigmoid(beta * x) ---- */

static float swish_beta(const layer *l) {
  const Caffe__SwishParameter *sp = l->param->swish_param;
  return sp ? sp->beta : 1.0f;
}

static crema_status swish_forward(layer *l, const blob_list *bottom, const blob_list *top,
                                  crema_error *err) {
  neuron_priv *p = l->priv;
  const size_t n = bottom->v[0]->count;
  CREMA_TRY(layer_grow_buffer(l, (void **)&p->aux, &p->aux_cap, n, sizeof(float), err));
  const float beta = swish_beta(l);
  const float *x = bottom->v[0]->data;
  float *y = top->v[0]->data;
  for (size_t i = 0; i < n; i++) {
    p->aux[i] = sigmoid_caffe(x[i] * beta);
    y[i] = x[i] * p->aux[i];
  }
  return CREMA_OK;
}

static crema_status swish_backward(layer *l, const blob_list *top, const int *propagate_down,
                                   const blob_list *bottom, crema_error *err) {
  if (!propagate_down[0])
    return CREMA_OK;
  const neuron_priv *p = l->priv;
  const float beta = swish_beta(l);
  const backward_arrays a = backward_io(l, top, bottom);
  for (size_t i = 0; i < a.n; i++) {
    const float by = beta * a.y[i];
    a.dx[i] = (float)(a.dy[i] * (by + p->aux[i] * (1.0 - by)));
  }
  return CREMA_OK;
}

const layer_ops swish_layer_ops =
    NEURON_LAYER_OPS("Swish", neuron_setup, neuron_reshape, swish_forward, swish_backward);

/* ---- Threshold: y = x > threshold ? 1 : 0 (no gradient, as in Caffe) ---- */

static crema_status threshold_forward(layer *l, const blob_list *bottom, const blob_list *top,
                                      crema_error *err) {
  const Caffe__ThresholdParameter *tp = l->param->threshold_param;
  const float t = tp ? tp->threshold : 0.0f;
  const forward_arrays a = forward_io(bottom, top);
  for (size_t i = 0; i < a.n; i++)
    a.y[i] = a.x[i] > t ? 1.0f : 0.0f;
  return CREMA_OK;
}

const layer_ops threshold_layer_ops =
    NEURON_LAYER_OPS("Threshold", neuron_setup, neuron_reshape, threshold_forward, NULL);

/* ---- Dropout ---- */

static float dropout_ratio(const layer *l) {
  const Caffe__DropoutParameter *dp = l->param->dropout_param;
  return dp ? dp->dropout_ratio : 0.5f;
}

/* Caffe's scale_, a float: 1 / (1 - ratio). */
static float dropout_scale(const layer *l) {
  return (float)(1.0 / (1.0 - (double)dropout_ratio(l)));
}

/* boost::bernoulli_distribution<double> on mt19937, as caffe_rng_bernoulli
 * draws it: one 32-bit number per element, no draw at all when p is 0. */
static uint32_t bernoulli_draw(crema_rng *rng, double p) {
  if (p == 0.0)
    return 0;
  return (double)rng_u32(rng) <= p * 4294967295.0;
}

static crema_status dropout_setup(layer *l, const blob_list *bottom, const blob_list *top,
                                  crema_error *err) {
  const float ratio = dropout_ratio(l);
  if (!(ratio >= 0.0f && ratio < 1.0f))
    return layer_fail(l, err, CREMA_ERR_INVALID, "dropout_ratio must be in [0, 1), got %g",
                      (double)ratio);
  return neuron_setup(l, bottom, top, err);
}

static crema_status dropout_forward(layer *l, const blob_list *bottom, const blob_list *top,
                                    crema_error *err) {
  const float *x = bottom->v[0]->data;
  float *y = top->v[0]->data;
  const size_t n = bottom->v[0]->count;
  if (l->phase != CAFFE__PHASE__TRAIN) {
    if (y != x)
      memcpy(y, x, n * sizeof(float));
    return CREMA_OK;
  }
  neuron_priv *p = l->priv;
  CREMA_TRY(layer_grow_buffer(l, (void **)&p->mask, &p->mask_cap, n, sizeof(uint32_t), err));
  const double keep = 1.0 - (double)dropout_ratio(l);
  const float scale = dropout_scale(l);
  for (size_t i = 0; i < n; i++)
    p->mask[i] = bernoulli_draw(&l->ctx->rng, keep);
  for (size_t i = 0; i < n; i++)
    y[i] = x[i] * (float)p->mask[i] * scale;
  return CREMA_OK;
}

static crema_status dropout_backward(layer *l, const blob_list *top, const int *propagate_down,
                                     const blob_list *bottom, crema_error *err) {
  if (!propagate_down[0])
    return CREMA_OK;
  const float *dy = top->v[0]->diff;
  float *dx = bottom->v[0]->diff;
  const size_t n = bottom->v[0]->count;
  if (l->phase != CAFFE__PHASE__TRAIN) {
    if (dx != dy)
      memcpy(dx, dy, n * sizeof(float));
    return CREMA_OK;
  }
  const neuron_priv *p = l->priv;
  if (!p->mask || p->mask_cap < n)
    return layer_fail(l, err, CREMA_ERR_INVALID, "backward before forward");
  const float scale = dropout_scale(l);
  for (size_t i = 0; i < n; i++)
    dx[i] = dy[i] * (float)p->mask[i] * scale;
  return CREMA_OK;
}

const layer_ops dropout_layer_ops =
    NEURON_LAYER_OPS("Dropout", dropout_setup, neuron_reshape, dropout_forward, dropout_backward);
