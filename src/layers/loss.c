/* Loss layers: SoftmaxWithLoss, SigmoidCrossEntropyLoss, EuclideanLoss and
 * the patent's ClassBalancedSigmoidCrossEntropyLoss.
 *
 * As in Caffe, a loss layer writes a scalar top[0]; in backward it reads its
 * loss weight from top[0]->diff[0] (seeded by the net).  Labels never get a
 * gradient, except Euclidean's second input, which Caffe treats as data. */
#include "config.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>

#include "layers/layer.h"
#include "layers/registry.h"
#include "layers/softmax.h"
#include "math/activation.h"
#include "math/blas.h"
#include "math/elementwise.h"

typedef Caffe__LossParameter__NormalizationMode norm_mode;

/* ---- shared helpers ------------------------------------------------------ */

/* Caffe's static_cast<int> of a label, refusing values C cannot convert. */
static int label_to_int(float v, int *out) {
  if (!(v > -2147483648.0f && v < 2147483648.0f))
    return 0;
  *out = (int)v;
  return 1;
}

/* Caffe's LossLayer::get_normalizer: valid_count < 0 means "all". */
static float loss_normalizer(norm_mode mode, size_t outer, size_t inner, long valid_count) {
  double n;
  switch (mode) {
  case CAFFE__LOSS_PARAMETER__NORMALIZATION_MODE__FULL:
    n = (double)outer * (double)inner;
    break;
  case CAFFE__LOSS_PARAMETER__NORMALIZATION_MODE__VALID:
    n = valid_count < 0 ? (double)outer * (double)inner : (double)valid_count;
    break;
  case CAFFE__LOSS_PARAMETER__NORMALIZATION_MODE__BATCH_SIZE:
    n = (double)outer;
    break;
  default:
    n = 1.0;
    break;
  }
  /* Guards against dividing by zero when every label is ignored. */
  return n < 1.0 ? 1.0f : (float)n;
}

static int norm_mode_known(norm_mode m) {
  return m >= CAFFE__LOSS_PARAMETER__NORMALIZATION_MODE__FULL &&
         m <= CAFFE__LOSS_PARAMETER__NORMALIZATION_MODE__NONE;
}

/* The legacy `normalize` flag applies only when `normalization` is unset;
 * fallback is the mode used when neither is given (it differs by layer). */
static norm_mode loss_norm_mode(const Caffe__LossParameter *p, norm_mode fallback) {
  if (!p)
    return fallback;
  if (p->has_normalization)
    return p->normalization;
  if (p->has_normalize)
    return p->normalize ? CAFFE__LOSS_PARAMETER__NORMALIZATION_MODE__VALID
                        : CAFFE__LOSS_PARAMETER__NORMALIZATION_MODE__BATCH_SIZE;
  return fallback;
}

static int outer_dim(const blob *b) {
  return b->num_axes > 0 ? b->shape[0] : 1;
}

/* LossLayer::Reshape: same batch size, scalar loss. */
static crema_status loss_reshape_common(layer *l, const blob_list *bottom, const blob_list *top,
                                        crema_error *err) {
  if (outer_dim(bottom->v[0]) != outer_dim(bottom->v[1]))
    return layer_fail(l, err, CREMA_ERR_SHAPE,
                      "the data and label should have the same first dimension "
                      "(bottom 0 has %d, bottom 1 has %d)",
                      outer_dim(bottom->v[0]), outer_dim(bottom->v[1]));
  return blob_reshape(top->v[0], 0, NULL, err);
}

static crema_status loss_no_label_backward(layer *l, const int *propagate_down,
                                           crema_error *err) {
  if (propagate_down[1])
    return layer_fail(l, err, CREMA_ERR_UNSUPPORTED,
                      "cannot backpropagate to the label input (bottom 1)");
  return CREMA_OK;
}

static double sigmoid_ce_term(float x, float t) {
  double e;
  return sigmoid_ce_term_exp(x, t, &e);
}

/* The normalisation and ignore_label settings of loss_param. */
typedef struct loss_config {
  norm_mode mode;
  int has_ignore;
  int ignore_label;
} loss_config;

/* fallback: the normalisation when loss_param sets none (it differs by layer). */
static crema_status loss_read_config(layer *l, norm_mode fallback, loss_config *c,
                                     crema_error *err) {
  const Caffe__LossParameter *lp = l->param->loss_param;
  c->mode = loss_norm_mode(lp, fallback);
  if (!norm_mode_known(c->mode))
    return layer_fail(l, err, CREMA_ERR_INVALID, "unknown loss normalization mode %d",
                      (int)c->mode);
  c->has_ignore = lp && lp->has_ignore_label;
  c->ignore_label = c->has_ignore ? lp->ignore_label : 0;
  return CREMA_OK;
}

/* LossLayer::Reshape for element-wise losses: equal counts, items of outer x inner. */
static crema_status loss_reshape_items(layer *l, const blob_list *bottom, const blob_list *top,
                                       size_t *outer, size_t *inner, crema_error *err) {
  CREMA_TRY(loss_reshape_common(l, bottom, top, err));
  if (bottom->v[0]->count != bottom->v[1]->count)
    return layer_fail(l, err, CREMA_ERR_SHAPE,
                      "inputs must have the same count (bottom 0 has %zu, bottom 1 has %zu)",
                      bottom->v[0]->count, bottom->v[1]->count);
  *outer = (size_t)outer_dim(bottom->v[0]);
  *inner = *outer ? bottom->v[0]->count / *outer : 0;
  return CREMA_OK;
}

/* Two bottoms (predictions, labels) and a scalar top[0]. */
#define LOSS_LAYER_OPS(type_name, max_top_count, no_force, setup_fn, reshape_fn, forward_fn,  \
                       backward_fn, destroy_fn)                                              \
  {.type = type_name, .min_bottoms = 2, .max_bottoms = 2, .min_tops = 1,                     \
   .max_tops = max_top_count, .is_loss = 1, .no_force_backward = no_force,                   \
   .setup = setup_fn, .reshape = reshape_fn, .forward = forward_fn, .backward = backward_fn, \
   .destroy = destroy_fn}

static void free_priv(layer *l) {
  free(l->priv);
}

/* ---- SoftmaxWithLoss ------------------------------------------------------ */

typedef struct softmax_loss_state {
  blob *prob;
  loss_config cfg;
  size_t outer, channels, inner;
  float normalizer; /* of the last forward, for backward */
} softmax_loss_state;

static crema_status softmax_loss_setup(layer *l, const blob_list *bottom, const blob_list *top,
                                       crema_error *err) {
  softmax_loss_state *s = crema_calloc(1, sizeof *s, err);
  if (!s)
    return CREMA_ERR_NOMEM;
  l->priv = s;
  if (!(s->prob = blob_create(NULL, err)))
    return CREMA_ERR_NOMEM;
  s->prob->wants_diff = 0;
  return loss_read_config(l, CAFFE__LOSS_PARAMETER__NORMALIZATION_MODE__VALID, &s->cfg, err);
}

static crema_status softmax_loss_reshape(layer *l, const blob_list *bottom,
                                         const blob_list *top, crema_error *err) {
  softmax_loss_state *s = l->priv;
  const blob *x = bottom->v[0];
  CREMA_TRY(loss_reshape_common(l, bottom, top, err));
  const Caffe__SoftmaxParameter *sp = l->param->softmax_param;
  int axis_param = sp && sp->has_axis ? sp->axis : 1, axis;
  if (blob_canonical_axis(x, axis_param, &axis, NULL) != CREMA_OK)
    return layer_fail(l, err, CREMA_ERR_SHAPE, "softmax axis %d is out of range for %d axes",
                      axis_param, x->num_axes);
  s->outer = blob_count_range(x, 0, axis);
  s->channels = (size_t)x->shape[axis];
  s->inner = blob_count_from(x, axis + 1);
  if (s->outer * s->inner != bottom->v[1]->count)
    return layer_fail(l, err, CREMA_ERR_SHAPE,
                      "number of labels (%zu) must match number of predictions (%zu x %zu); "
                      "e.g. with softmax axis 1 and predictions N x C x H x W, the label "
                      "count must be N*H*W",
                      bottom->v[1]->count, s->outer, s->inner);
  CREMA_TRY(blob_reshape_like(s->prob, x, err));
  if (top->n >= 2)
    CREMA_TRY(blob_reshape_like(top->v[1], x, err));
  return CREMA_OK;
}

/* The label at (i, j), or -1 (with an error) when it is not a class index;
 * *ignored is set for the ignore label. */
static crema_status softmax_loss_label(layer *l, const softmax_loss_state *s, float v,
                                       int *label, int *ignored, crema_error *err) {
  int lab = 0;
  *ignored = 0;
  if (!label_to_int(v, &lab))
    return layer_fail(l, err, CREMA_ERR_INVALID, "label %g is not a class index", (double)v);
  if (s->cfg.has_ignore && lab == s->cfg.ignore_label) {
    *ignored = 1;
    return CREMA_OK;
  }
  if (lab < 0 || (size_t)lab >= s->channels)
    return layer_fail(l, err, CREMA_ERR_INVALID, "label %d is out of range [0, %zu)", lab,
                      s->channels);
  *label = lab;
  return CREMA_OK;
}

static crema_status softmax_loss_forward(layer *l, const blob_list *bottom,
                                         const blob_list *top, crema_error *err) {
  softmax_loss_state *s = l->priv;
  const float *label = bottom->v[1]->data;
  float *prob = s->prob->data;
  softmax_compute(bottom->v[0]->data, prob, s->outer, s->channels, s->inner);
  size_t dim = s->channels * s->inner;
  double loss = 0.0;
  long count = 0;
  for (size_t i = 0; i < s->outer; i++)
    for (size_t j = 0; j < s->inner; j++) {
      int lab = 0, ignored;
      CREMA_TRY(softmax_loss_label(l, s, label[i * s->inner + j], &lab, &ignored, err));
      if (ignored)
        continue;
      float p = prob[i * dim + (size_t)lab * s->inner + j];
      loss -= log(p > FLT_MIN ? p : FLT_MIN);
      count++;
    }
  s->normalizer = loss_normalizer(s->cfg.mode, s->outer, s->inner, count);
  top->v[0]->data[0] = (float)(loss / s->normalizer);
  if (top->n >= 2)
    math_copy(s->prob->count, prob, top->v[1]->data);
  return CREMA_OK;
}

static crema_status softmax_loss_backward(layer *l, const blob_list *top,
                                          const int *propagate_down, const blob_list *bottom,
                                          crema_error *err) {
  CREMA_TRY(loss_no_label_backward(l, propagate_down, err));
  if (!propagate_down[0])
    return CREMA_OK;
  const softmax_loss_state *s = l->priv;
  const float *label = bottom->v[1]->data, *prob = s->prob->data;
  float *dx = bottom->v[0]->diff;
  size_t dim = s->channels * s->inner;
  float scale = top->v[0]->diff[0] / s->normalizer;
  for (size_t i = 0; i < s->outer; i++)
    for (size_t j = 0; j < s->inner; j++) {
      int lab = 0, ignored;
      CREMA_TRY(softmax_loss_label(l, s, label[i * s->inner + j], &lab, &ignored, err));
      for (size_t c = 0; c < s->channels; c++) {
        size_t at = i * dim + c * s->inner + j;
        float g = ignored ? 0.0f : prob[at] - ((int)c == lab ? 1.0f : 0.0f);
        dx[at] = g * scale;
      }
    }
  return CREMA_OK;
}

static void softmax_loss_destroy(layer *l) {
  softmax_loss_state *s = l->priv;
  if (s)
    blob_free(s->prob);
  free(s);
}

const layer_ops softmax_with_loss_layer_ops =
    LOSS_LAYER_OPS("SoftmaxWithLoss", 2, 1u << 1,
                   softmax_loss_setup, softmax_loss_reshape, softmax_loss_forward,
                   softmax_loss_backward, softmax_loss_destroy);

/* ---- SigmoidCrossEntropyLoss --------------------------------------------- */

typedef struct sigmoid_loss_state {
  loss_config cfg;
  size_t outer, inner;
  float normalizer;
} sigmoid_loss_state;

static crema_status sigmoid_loss_setup(layer *l, const blob_list *bottom, const blob_list *top,
                                       crema_error *err) {
  sigmoid_loss_state *s = crema_calloc(1, sizeof *s, err);
  if (!s)
    return CREMA_ERR_NOMEM;
  l->priv = s;
  /* Unlike SoftmaxWithLoss, Caffe keeps this loss's historical batch-size
   * normalisation when nothing is specified. */
  return loss_read_config(l, CAFFE__LOSS_PARAMETER__NORMALIZATION_MODE__BATCH_SIZE, &s->cfg,
                          err);
}

static crema_status sigmoid_loss_reshape(layer *l, const blob_list *bottom,
                                         const blob_list *top, crema_error *err) {
  sigmoid_loss_state *s = l->priv;
  return loss_reshape_items(l, bottom, top, &s->outer, &s->inner, err);
}

static int sigmoid_loss_ignored(const sigmoid_loss_state *s, float t) {
  int v;
  return s->cfg.has_ignore && label_to_int(t, &v) && v == s->cfg.ignore_label;
}

static crema_status sigmoid_loss_forward(layer *l, const blob_list *bottom,
                                         const blob_list *top, crema_error *err) {
  sigmoid_loss_state *s = l->priv;
  const float *x = bottom->v[0]->data, *t = bottom->v[1]->data;
  double loss = 0.0;
  long valid = 0;
  for (size_t i = 0; i < bottom->v[0]->count; i++) {
    if (sigmoid_loss_ignored(s, t[i]))
      continue;
    loss += sigmoid_ce_term(x[i], t[i]);
    valid++;
  }
  s->normalizer = loss_normalizer(s->cfg.mode, s->outer, s->inner, valid);
  top->v[0]->data[0] = (float)(loss / s->normalizer);
  return CREMA_OK;
}

static crema_status sigmoid_loss_backward(layer *l, const blob_list *top,
                                          const int *propagate_down, const blob_list *bottom,
                                          crema_error *err) {
  CREMA_TRY(loss_no_label_backward(l, propagate_down, err));
  if (!propagate_down[0])
    return CREMA_OK;
  const sigmoid_loss_state *s = l->priv;
  const float *x = bottom->v[0]->data, *t = bottom->v[1]->data;
  float *dx = bottom->v[0]->diff;
  float scale = top->v[0]->diff[0] / s->normalizer;
  for (size_t i = 0; i < bottom->v[0]->count; i++)
    dx[i] = sigmoid_loss_ignored(s, t[i]) ? 0.0f : (sigmoid_caffe(x[i]) - t[i]) * scale;
  return CREMA_OK;
}

const layer_ops sigmoid_cross_entropy_loss_layer_ops =
    LOSS_LAYER_OPS("SigmoidCrossEntropyLoss", 1, 1u << 1,
                   sigmoid_loss_setup, sigmoid_loss_reshape, sigmoid_loss_forward,
                   sigmoid_loss_backward, free_priv);

/* ---- EuclideanLoss --------------------------------------------------------- */

typedef struct euclidean_state {
  blob *diff; /* bottom 0 - bottom 1 */
} euclidean_state;

static crema_status euclidean_setup(layer *l, const blob_list *bottom, const blob_list *top,
                                    crema_error *err) {
  euclidean_state *s = crema_calloc(1, sizeof *s, err);
  if (!s)
    return CREMA_ERR_NOMEM;
  l->priv = s;
  if (!(s->diff = blob_create(NULL, err)))
    return CREMA_ERR_NOMEM;
  s->diff->wants_diff = 0;
  return CREMA_OK;
}

static crema_status euclidean_reshape(layer *l, const blob_list *bottom, const blob_list *top,
                                      crema_error *err) {
  euclidean_state *s = l->priv;
  CREMA_TRY(loss_reshape_common(l, bottom, top, err));
  size_t a = blob_count_from(bottom->v[0], 1), b = blob_count_from(bottom->v[1], 1);
  if (a != b)
    return layer_fail(l, err, CREMA_ERR_SHAPE,
                      "inputs must have the same dimension per item (%zu and %zu)", a, b);
  return blob_reshape_like(s->diff, bottom->v[0], err);
}

static crema_status euclidean_forward(layer *l, const blob_list *bottom, const blob_list *top,
                                      crema_error *err) {
  euclidean_state *s = l->priv;
  const float *a = bottom->v[0]->data, *b = bottom->v[1]->data;
  float *d = s->diff->data;
  double dot = 0.0;
  for (size_t i = 0; i < s->diff->count; i++) {
    d[i] = a[i] - b[i];
    dot += (double)d[i] * d[i];
  }
  top->v[0]->data[0] = (float)(dot / outer_dim(bottom->v[0]) / 2.0);
  return CREMA_OK;
}

static crema_status euclidean_backward(layer *l, const blob_list *top,
                                       const int *propagate_down, const blob_list *bottom,
                                       crema_error *err) {
  const euclidean_state *s = l->priv;
  for (int k = 0; k < 2; k++) {
    if (!propagate_down[k])
      continue;
    int num = outer_dim(bottom->v[k]);
    float alpha = (k == 0 ? 1.0f : -1.0f) * top->v[0]->diff[0] / (float)(num ? num : 1);
    float *dx = bottom->v[k]->diff;
    for (size_t i = 0; i < s->diff->count; i++)
      dx[i] = alpha * s->diff->data[i];
  }
  return CREMA_OK;
}

static void euclidean_destroy(layer *l) {
  euclidean_state *s = l->priv;
  if (s)
    blob_free(s->diff);
  free(s);
}

/* Caffe lets force_backward reach both inputs of this loss. */
const layer_ops euclidean_loss_layer_ops =
    LOSS_LAYER_OPS("EuclideanLoss", 1, 0,
                   euclidean_setup, euclidean_reshape, euclidean_forward, euclidean_backward,
                   euclidean_destroy);

/* ---- ClassBalancedSigmoidCrossEntropyLoss ------------------------------------
 * HED's class-balanced loss (the patent's eq. 1): per item, positives are
 * weighted by beta = |negatives| / |positives + negatives| and negatives by
 * 1 - beta; targets other than exactly 0 or 1 are ignored. */

typedef struct balanced_state {
  size_t outer, inner;
  /* Each weighted element's sigmoid, from forward's exp for backward (as
   * Caffe's sigmoid losses keep their sigmoid layer's output). */
  float *sig;
  size_t sig_cap;
} balanced_state;

static crema_status balanced_setup(layer *l, const blob_list *bottom, const blob_list *top,
                                   crema_error *err) {
  if (!(l->priv = crema_calloc(1, sizeof(balanced_state), err)))
    return CREMA_ERR_NOMEM;
  return CREMA_OK;
}

static crema_status balanced_reshape(layer *l, const blob_list *bottom, const blob_list *top,
                                     crema_error *err) {
  balanced_state *s = l->priv;
  size_t outer, inner;
  CREMA_TRY(loss_reshape_items(l, bottom, top, &outer, &inner, err));
  const size_t n = bottom->v[0]->count;
  if (n > s->sig_cap) {
    float *sig = crema_calloc(n, sizeof(float), err);
    if (!sig)
      return CREMA_ERR_NOMEM;
    free(s->sig);
    s->sig = sig;
    s->sig_cap = n;
  }
  /* Only once the buffer holds them: a failed reshape keeps the old shape. */
  s->outer = outer;
  s->inner = inner;
  return CREMA_OK;
}

static void balanced_destroy(layer *l) {
  balanced_state *s = l->priv;
  if (s)
    free(s->sig);
  free(s);
}

/* beta of one item; 0 positives and negatives gives an item without loss. */
static float balanced_beta(const float *t, size_t n, int *any) {
  size_t pos = 0, neg = 0;
  for (size_t j = 0; j < n; j++) {
    if (t[j] == 1.0f)
      pos++;
    else if (t[j] == 0.0f)
      neg++;
  }
  *any = pos + neg > 0;
  return *any ? (float)neg / (float)(pos + neg) : 0.0f;
}

static crema_status balanced_forward(layer *l, const blob_list *bottom, const blob_list *top,
                                     crema_error *err) {
  const balanced_state *s = l->priv;
  const float *x = bottom->v[0]->data, *t = bottom->v[1]->data;
  double loss = 0.0;
  for (size_t n = 0; n < s->outer; n++) {
    const size_t base = n * s->inner;
    int any;
    const float beta = balanced_beta(t + base, s->inner, &any);
    if (any)
      loss = ew_balanced_sigmoid_ce_add(loss, x + base, t + base, s->inner, beta,
                                        s->sig + base);
  }
  top->v[0]->data[0] = s->outer ? (float)(loss / (double)s->outer) : 0.0f;
  return CREMA_OK;
}

static crema_status balanced_backward(layer *l, const blob_list *top, const int *propagate_down,
                                      const blob_list *bottom, crema_error *err) {
  CREMA_TRY(loss_no_label_backward(l, propagate_down, err));
  if (!propagate_down[0])
    return CREMA_OK;
  const balanced_state *s = l->priv;
  const float *t = bottom->v[1]->data;
  float scale = s->outer ? top->v[0]->diff[0] / (float)s->outer : 0.0f;
  for (size_t n = 0; n < s->outer; n++) {
    const size_t base = n * s->inner;
    int any;
    /* An item without positives or negatives has no weighted element,
     * so it passes no gradient. */
    const float beta = balanced_beta(t + base, s->inner, &any);
    ew_balanced_sigmoid_ce_grad(t + base, s->sig + base, s->inner, beta, scale,
                                bottom->v[0]->diff + base);
  }
  return CREMA_OK;
}

const layer_ops class_balanced_sigmoid_cross_entropy_loss_layer_ops =
    LOSS_LAYER_OPS("ClassBalancedSigmoidCrossEntropyLoss", 1, 1u << 1,
                   balanced_setup, balanced_reshape, balanced_forward, balanced_backward,
                   balanced_destroy);
