/* Embed, as Caffe's: each bottom value is an index into the rows of an
 * input_dim x num_output weight table; top = bottom shape x num_output.
 * Indices are truncated to integers like Caffe's release build; an index
 * outside [0, input_dim) is an error rather than a stray read.  There is no
 * gradient with respect to the indices. */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "layers/layer.h"
#include "layers/registry.h"

typedef struct embed_priv {
  int n;          /* num_output */
  int k;          /* input_dim */
  int bias_term;
  size_t m;       /* number of indices */
} embed_priv;

static crema_status embed_setup(layer *l, const blob_list *bottom, const blob_list *top,
                                crema_error *err) {
  Caffe__EmbedParameter defaults;
  const Caffe__EmbedParameter *ep = l->param->embed_param;
  if (!ep) {
    caffe__embed_parameter__init(&defaults);
    ep = &defaults;
  }
  embed_priv *p = crema_calloc(1, sizeof *p, err);
  if (!p)
    return CREMA_ERR_NOMEM;
  l->priv = p;
  if (!ep->has_num_output || ep->num_output == 0 || ep->num_output > 0x7fffffffu)
    return layer_fail(l, err, CREMA_ERR_INVALID, "num_output must be a positive int (got %u)",
                      (unsigned)ep->num_output);
  if (!ep->has_input_dim || ep->input_dim == 0 || ep->input_dim > 0x7fffffffu)
    return layer_fail(l, err, CREMA_ERR_INVALID, "input_dim must be a positive int (got %u)",
                      (unsigned)ep->input_dim);
  p->n = (int)ep->num_output;
  p->k = (int)ep->input_dim;
  p->bias_term = ep->bias_term;
  CREMA_TRY(layer_alloc_blobs(l, p->bias_term ? 2 : 1, err));
  int wshape[2] = {p->k, p->n};
  CREMA_TRY(layer_make_param(l, 0, 2, wshape, ep->weight_filler, err));
  if (p->bias_term)
    CREMA_TRY(layer_make_param(l, 1, 1, &p->n, ep->bias_filler, err));
  return CREMA_OK;
}

static crema_status embed_reshape(layer *l, const blob_list *bottom, const blob_list *top,
                                  crema_error *err) {
  embed_priv *p = l->priv;
  const blob *b = bottom->v[0];
  if (b->num_axes >= BLOB_MAX_AXES)
    return layer_fail(l, err, CREMA_ERR_SHAPE, "bottom has too many axes (%d)", b->num_axes);
  int shape[BLOB_MAX_AXES];
  memcpy(shape, b->shape, sizeof(int) * (size_t)b->num_axes);
  shape[b->num_axes] = p->n;
  p->m = b->count;
  return blob_reshape(top->v[0], b->num_axes + 1, shape, err);
}

/* The row of index i, or an error naming the offending value. */
static crema_status row_of(layer *l, const embed_priv *p, const float *x, size_t i, int *row,
                           crema_error *err) {
  float v = x[i];
  if (!(v > -1.0f && v < (float)p->k))
    return layer_fail(l, err, CREMA_ERR_INVALID,
                      "bottom value %g at position %zu is not an index in [0, %d)", v, i, p->k);
  *row = (int)v;
  return CREMA_OK;
}

static crema_status embed_forward(layer *l, const blob_list *bottom, const blob_list *top,
                                  crema_error *err) {
  embed_priv *p = l->priv;
  const float *x = bottom->v[0]->data;
  const float *w = l->blobs[0]->data;
  float *y = top->v[0]->data;
  for (size_t i = 0; i < p->m; i++) {
    int row = 0;
    CREMA_TRY(row_of(l, p, x, i, &row, err));
    float *restrict out = y + i * (size_t)p->n;
    memcpy(out, w + (size_t)row * p->n, sizeof(float) * (size_t)p->n);
    if (p->bias_term) {
      const float *restrict bias = l->blobs[1]->data;
      for (int j = 0; j < p->n; j++)
        out[j] += bias[j];
    }
  }
  return CREMA_OK;
}

static crema_status embed_backward(layer *l, const blob_list *top, const int *propagate_down,
                                   const blob_list *bottom, crema_error *err) {
  embed_priv *p = l->priv;
  if (propagate_down[0])
    return layer_fail(l, err, CREMA_ERR_INVALID, "cannot backpropagate to the indices (bottom 0)");
  const float *x = bottom->v[0]->data;
  const float *dy = top->v[0]->diff;
  if (l->param_propagate_down[0]) {
    CREMA_TRY(blob_ensure_diff(l->blobs[0], err));
    float *dw = l->blobs[0]->diff;
    for (size_t i = 0; i < p->m; i++) {
      int row = 0;
      CREMA_TRY(row_of(l, p, x, i, &row, err));
      float *restrict d = dw + (size_t)row * p->n;
      const float *restrict g = dy + i * (size_t)p->n;
      for (int j = 0; j < p->n; j++)
        d[j] += g[j];
    }
  }
  if (p->bias_term && l->param_propagate_down[1]) {
    CREMA_TRY(blob_ensure_diff(l->blobs[1], err));
    float *restrict db = l->blobs[1]->diff;
    for (size_t i = 0; i < p->m; i++)
      for (int j = 0; j < p->n; j++)
        db[j] += dy[i * (size_t)p->n + j];
  }
  return CREMA_OK;
}

static void embed_destroy(layer *l) { free(l->priv); }

const layer_ops embed_layer_ops = {
    .type = "Embed",
    .min_bottoms = 1, .max_bottoms = 1, .min_tops = 1, .max_tops = 1,
    /* force_backward never reaches the indices. */
    .no_force_backward = 1u,
    .setup = embed_setup, .reshape = embed_reshape, .forward = embed_forward,
    .backward = embed_backward, .destroy = embed_destroy,
};
