/* Softmax over one axis (Caffe's SoftmaxLayer). */
#include "config.h"

#include <math.h>
#include <stdlib.h>

#include "layers/layer.h"
#include "layers/registry.h"
#include "layers/softmax.h"

void softmax_compute(const float *in, float *out, size_t outer, size_t channels, size_t inner) {
  size_t dim = channels * inner;
  for (size_t i = 0; i < outer; i++) {
    const float *x = in + i * dim;
    float *y = out + i * dim;
    for (size_t k = 0; k < inner; k++) {
      float max = x[k];
      for (size_t c = 1; c < channels; c++)
        if (x[c * inner + k] > max)
          max = x[c * inner + k];
      float sum = 0.0f;
      for (size_t c = 0; c < channels; c++) {
        float e = expf(x[c * inner + k] - max);
        y[c * inner + k] = e;
        sum += e;
      }
      for (size_t c = 0; c < channels; c++)
        y[c * inner + k] /= sum;
    }
  }
}

typedef struct softmax_state {
  size_t outer, channels, inner;
} softmax_state;

static crema_status softmax_setup(layer *l, const blob_list *bottom, const blob_list *top,
                                  crema_error *err) {
  if (!(l->priv = crema_calloc(1, sizeof(softmax_state), err)))
    return CREMA_ERR_NOMEM;
  return CREMA_OK;
}

static int softmax_axis_param(const layer *l) {
  const Caffe__SoftmaxParameter *p = l->param->softmax_param;
  return p && p->has_axis ? p->axis : 1;
}

static crema_status softmax_reshape(layer *l, const blob_list *bottom, const blob_list *top,
                                    crema_error *err) {
  softmax_state *s = l->priv;
  const blob *x = bottom->v[0];
  int axis;
  if (blob_canonical_axis(x, softmax_axis_param(l), &axis, NULL) != CREMA_OK)
    return layer_fail(l, err, CREMA_ERR_SHAPE, "softmax axis %d is out of range for %d axes",
                      softmax_axis_param(l), x->num_axes);
  s->outer = blob_count_range(x, 0, axis);
  s->channels = (size_t)x->shape[axis];
  s->inner = blob_count_from(x, axis + 1);
  return blob_reshape_like(top->v[0], x, err);
}

static crema_status softmax_forward(layer *l, const blob_list *bottom, const blob_list *top,
                                    crema_error *err) {
  const softmax_state *s = l->priv;
  softmax_compute(bottom->v[0]->data, top->v[0]->data, s->outer, s->channels, s->inner);
  return CREMA_OK;
}

/* dx = (dy - <dy, y>) * y, the inner product taken over the softmax axis. */
static crema_status softmax_backward(layer *l, const blob_list *top, const int *propagate_down,
                                     const blob_list *bottom, crema_error *err) {
  if (!propagate_down[0])
    return CREMA_OK;
  const softmax_state *s = l->priv;
  const float *y = top->v[0]->data, *dy = top->v[0]->diff;
  float *dx = bottom->v[0]->diff;
  size_t dim = s->channels * s->inner;
  for (size_t i = 0; i < s->outer; i++)
    for (size_t k = 0; k < s->inner; k++) {
      size_t base = i * dim + k;
      float dot = 0.0f;
      for (size_t c = 0; c < s->channels; c++)
        dot += dy[base + c * s->inner] * y[base + c * s->inner];
      for (size_t c = 0; c < s->channels; c++) {
        size_t at = base + c * s->inner;
        dx[at] = (dy[at] - dot) * y[at];
      }
    }
  return CREMA_OK;
}

static void softmax_destroy(layer *l) {
  free(l->priv);
}

const layer_ops softmax_layer_ops = {
    .type = "Softmax",
    .min_bottoms = 1, .max_bottoms = 1,
    .min_tops = 1, .max_tops = 1,
    .setup = softmax_setup,
    .reshape = softmax_reshape,
    .forward = softmax_forward,
    .backward = softmax_backward,
    .destroy = softmax_destroy,
};
