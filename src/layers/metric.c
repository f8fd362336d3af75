/* Metrics without a backward pass: Accuracy and ArgMax (after Caffe's). */
#include "config.h"

#include <math.h>
#include <stdlib.h>

#include "layers/layer.h"
#include "layers/registry.h"

/* ---- Accuracy -------------------------------------------------------------
 * A prediction is correct when fewer than top_k other classes score at least
 * as high as the true class (Caffe's counting rule, ties count against). */

typedef struct accuracy_state {
  int top_k, has_ignore, ignore_label;
  size_t outer, inner, num_labels;
  float *class_counts; /* per class, when the per-class top is requested */
} accuracy_state;

static crema_status accuracy_setup(layer *l, const blob_list *bottom, const blob_list *top,
                                   crema_error *err) {
  accuracy_state *s = crema_calloc(1, sizeof *s, err);
  if (!s)
    return CREMA_ERR_NOMEM;
  l->priv = s;
  Caffe__AccuracyParameter def = CAFFE__ACCURACY_PARAMETER__INIT;
  const Caffe__AccuracyParameter *p =
      l->param->accuracy_param ? l->param->accuracy_param : &def;
  if (p->top_k > 0x7fffffffu)
    return layer_fail(l, err, CREMA_ERR_INVALID, "top_k %u is too large", p->top_k);
  s->top_k = (int)p->top_k;
  s->has_ignore = p->has_ignore_label;
  s->ignore_label = p->ignore_label;
  return CREMA_OK;
}

static int accuracy_axis_param(const layer *l) {
  const Caffe__AccuracyParameter *p = l->param->accuracy_param;
  return p && p->has_axis ? p->axis : 1;
}

static crema_status accuracy_reshape(layer *l, const blob_list *bottom, const blob_list *top,
                                     crema_error *err) {
  accuracy_state *s = l->priv;
  const blob *x = bottom->v[0], *labels = bottom->v[1];
  if (labels->count == 0 || (size_t)s->top_k > x->count / labels->count)
    return layer_fail(l, err, CREMA_ERR_SHAPE,
                      "top_k (%d) must be less than or equal to the number of classes "
                      "(%zu predictions for %zu labels)",
                      s->top_k, x->count, labels->count);
  int axis;
  if (blob_canonical_axis(x, accuracy_axis_param(l), &axis, NULL) != CREMA_OK)
    return layer_fail(l, err, CREMA_ERR_SHAPE, "label axis %d is out of range for %d axes",
                      accuracy_axis_param(l), x->num_axes);
  s->outer = blob_count_range(x, 0, axis);
  s->inner = blob_count_from(x, axis + 1);
  s->num_labels = (size_t)x->shape[axis];
  if (s->outer * s->inner != labels->count)
    return layer_fail(l, err, CREMA_ERR_SHAPE,
                      "number of labels (%zu) must match number of predictions (%zu x %zu); "
                      "e.g. with label axis 1 and predictions N x C x H x W, the label count "
                      "must be N*H*W",
                      labels->count, s->outer, s->inner);
  CREMA_TRY(blob_reshape(top->v[0], 0, NULL, err));
  if (top->n > 1) {
    int n = x->shape[axis];
    CREMA_TRY(blob_reshape(top->v[1], 1, &n, err));
    free(s->class_counts);
    if (!(s->class_counts = crema_calloc(s->num_labels ? s->num_labels : 1, sizeof(float), err)))
      return CREMA_ERR_NOMEM;
  }
  return CREMA_OK;
}

static crema_status accuracy_label(layer *l, const accuracy_state *s, float v, int *out,
                                   crema_error *err) {
  if (!(v > -2147483648.0f && v < 2147483648.0f))
    return layer_fail(l, err, CREMA_ERR_INVALID, "label %g is not a class index", (double)v);
  *out = (int)v;
  if (s->has_ignore && *out == s->ignore_label)
    return CREMA_OK;
  if (*out < 0 || (size_t)*out >= s->num_labels)
    return layer_fail(l, err, CREMA_ERR_INVALID, "label %d is out of range [0, %zu)", *out,
                      s->num_labels);
  return CREMA_OK;
}

static crema_status accuracy_forward(layer *l, const blob_list *bottom, const blob_list *top,
                                     crema_error *err) {
  accuracy_state *s = l->priv;
  const float *x = bottom->v[0]->data, *label = bottom->v[1]->data;
  float *per_class = top->n > 1 ? top->v[1]->data : NULL;
  size_t dim = s->num_labels * s->inner;
  if (per_class)
    for (size_t c = 0; c < s->num_labels; c++)
      per_class[c] = s->class_counts[c] = 0.0f;
  float correct = 0.0f;
  long count = 0;
  for (size_t i = 0; i < s->outer; i++)
    for (size_t j = 0; j < s->inner; j++) {
      int lab = 0;
      CREMA_TRY(accuracy_label(l, s, label[i * s->inner + j], &lab, err));
      if (s->has_ignore && lab == s->ignore_label)
        continue;
      if (per_class)
        s->class_counts[lab] += 1.0f;
      const float *scores = x + i * dim + j;
      float truth = scores[(size_t)lab * s->inner];
      int better = -1; /* the true class counts itself */
      for (size_t k = 0; k < s->num_labels && better < s->top_k; k++)
        better += scores[k * s->inner] >= truth;
      if (better < s->top_k) {
        correct += 1.0f;
        if (per_class)
          per_class[lab] += 1.0f;
      }
      count++;
    }
  top->v[0]->data[0] = count == 0 ? 0.0f : correct / (float)count;
  if (per_class)
    for (size_t c = 0; c < s->num_labels; c++)
      per_class[c] = s->class_counts[c] == 0.0f ? 0.0f : per_class[c] / s->class_counts[c];
  return CREMA_OK;
}

static void accuracy_destroy(layer *l) {
  accuracy_state *s = l->priv;
  if (s)
    free(s->class_counts);
  free(s);
}

const layer_ops accuracy_layer_ops = {
    .type = "Accuracy",
    .min_bottoms = 2, .max_bottoms = 2,
    .min_tops = 1, .max_tops = 2,
    /* No gradient exists; force_backward must not ask for one. */
    .no_force_backward = 3u,
    .setup = accuracy_setup,
    .reshape = accuracy_reshape,
    .forward = accuracy_forward,
    .destroy = accuracy_destroy,
};

/* ---- ArgMax -----------------------------------------------------------------
 * Indices (and with out_max_val the values) of the top_k largest entries,
 * per item over the flattened item or along `axis`.  Ties go to the larger
 * index, as Caffe's sort of (value, index) pairs in descending order. */

typedef struct argmax_pair {
  float value;
  int index;
} argmax_pair;

typedef struct argmax_state {
  int out_max_val, top_k, has_axis, axis;
  argmax_pair *pairs;
  size_t pairs_cap;
} argmax_state;

static crema_status argmax_setup(layer *l, const blob_list *bottom, const blob_list *top,
                                 crema_error *err) {
  argmax_state *s = crema_calloc(1, sizeof *s, err);
  if (!s)
    return CREMA_ERR_NOMEM;
  l->priv = s;
  Caffe__ArgMaxParameter def = CAFFE__ARG_MAX_PARAMETER__INIT;
  const Caffe__ArgMaxParameter *p = l->param->argmax_param ? l->param->argmax_param : &def;
  if (p->top_k < 1 || p->top_k > 0x7fffffffu)
    return layer_fail(l, err, CREMA_ERR_INVALID, "top_k must be at least 1 (got %u)",
                      p->top_k);
  s->out_max_val = p->out_max_val;
  s->top_k = (int)p->top_k;
  s->has_axis = p->has_axis;
  const blob *x = bottom->v[0];
  if (s->has_axis && blob_canonical_axis(x, p->axis, &s->axis, NULL) != CREMA_OK)
    return layer_fail(l, err, CREMA_ERR_INVALID, "axis %d is out of range for %d axes",
                      p->axis, x->num_axes);
  return CREMA_OK;
}

static crema_status argmax_reshape(layer *l, const blob_list *bottom, const blob_list *top,
                                   crema_error *err) {
  argmax_state *s = l->priv;
  const blob *x = bottom->v[0];
  int shape[BLOB_MAX_AXES];
  int num_axes;
  size_t dim;
  if (s->has_axis) {
    if (s->axis >= x->num_axes)
      return layer_fail(l, err, CREMA_ERR_SHAPE, "axis %d is out of range for %d axes",
                        s->axis, x->num_axes);
    dim = (size_t)x->shape[s->axis];
    num_axes = x->num_axes;
    for (int i = 0; i < num_axes; i++)
      shape[i] = x->shape[i];
    shape[s->axis] = s->top_k;
  } else {
    if (x->num_axes < 1)
      return layer_fail(l, err, CREMA_ERR_SHAPE, "input must have at least one axis");
    dim = blob_count_from(x, 1);
    num_axes = x->num_axes < 3 ? 3 : x->num_axes;
    for (int i = 0; i < num_axes; i++)
      shape[i] = 1;
    shape[0] = x->shape[0];
    shape[1] = s->out_max_val ? 2 : 1;
    shape[2] = s->top_k;
  }
  if ((size_t)s->top_k > dim)
    return layer_fail(l, err, CREMA_ERR_SHAPE,
                      "top_k (%d) must be less than or equal to the %zu values it chooses from",
                      s->top_k, dim);
  if (dim > s->pairs_cap) {
    argmax_pair *p = crema_calloc(dim, sizeof *p, err);
    if (!p)
      return CREMA_ERR_NOMEM;
    free(s->pairs);
    s->pairs = p;
    s->pairs_cap = dim;
  }
  return blob_reshape(top->v[0], num_axes, shape, err);
}

static int argmax_pair_descending(const void *a, const void *b) {
  const argmax_pair *p = a, *q = b;
  /* NaN sorts last so that the order stays total. */
  if (isnan(p->value) || isnan(q->value)) {
    if (!isnan(q->value))
      return 1;
    if (!isnan(p->value))
      return -1;
  } else if (p->value != q->value)
    return p->value < q->value ? 1 : -1;
  return p->index < q->index ? 1 : p->index > q->index ? -1 : 0;
}

static crema_status argmax_forward(layer *l, const blob_list *bottom, const blob_list *top,
                                   crema_error *err) {
  argmax_state *s = l->priv;
  const blob *x = bottom->v[0];
  float *y = top->v[0]->data;
  size_t dim, stride;
  if (s->has_axis) {
    dim = (size_t)x->shape[s->axis];
    stride = blob_count_from(x, s->axis + 1);
  } else {
    dim = blob_count_from(x, 1);
    stride = 1;
  }
  if (dim == 0)
    return CREMA_OK;
  size_t k = (size_t)s->top_k, rows = x->count / dim;
  for (size_t i = 0; i < rows; i++) {
    size_t outer = i / stride, inner = i % stride;
    for (size_t j = 0; j < dim; j++) {
      s->pairs[j].value = x->data[(outer * dim + j) * stride + inner];
      s->pairs[j].index = (int)j;
    }
    qsort(s->pairs, dim, sizeof *s->pairs, argmax_pair_descending);
    for (size_t j = 0; j < k; j++) {
      size_t along = (outer * k + j) * stride + inner;
      if (s->out_max_val && !s->has_axis) {
        y[2 * i * k + j] = (float)s->pairs[j].index;
        y[2 * i * k + k + j] = s->pairs[j].value;
      } else {
        y[along] = s->out_max_val ? s->pairs[j].value : (float)s->pairs[j].index;
      }
    }
  }
  return CREMA_OK;
}

static void argmax_destroy(layer *l) {
  argmax_state *s = l->priv;
  if (s)
    free(s->pairs);
  free(s);
}

const layer_ops argmax_layer_ops = {
    .type = "ArgMax",
    .min_bottoms = 1, .max_bottoms = 1,
    .min_tops = 1, .max_tops = 1,
    .no_force_backward = 1u,
    .setup = argmax_setup,
    .reshape = argmax_reshape,
    .forward = argmax_forward,
    .destroy = argmax_destroy,
};
