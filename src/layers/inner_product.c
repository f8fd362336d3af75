/* InnerProduct, as Caffe's: the bottom is an M x K matrix (K = product of
 * the axes from `axis` on), the weights N x K (K x N with transpose: true),
 * top = bottom * W^T + bias, shaped bottom[0..axis) x N. */
#include "config.h"

#include <stdlib.h>

#include "layers/layer.h"
#include "layers/registry.h"
#include "math/blas.h"

typedef struct ip_priv {
  int axis;
  int m, n, k;
  int transpose;
  int bias_term;
} ip_priv;

static crema_status ip_setup(layer *l, const blob_list *bottom, const blob_list *top,
                             crema_error *err) {
  Caffe__InnerProductParameter defaults;
  const Caffe__InnerProductParameter *ip = l->param->inner_product_param;
  if (!ip) {
    caffe__inner_product_parameter__init(&defaults);
    ip = &defaults;
  }
  ip_priv *p = crema_calloc(1, sizeof *p, err);
  if (!p)
    return CREMA_ERR_NOMEM;
  l->priv = p;
  if (!ip->has_num_output || ip->num_output == 0 || ip->num_output > 0x7fffffffu)
    return layer_fail(l, err, CREMA_ERR_INVALID, "num_output must be a positive int (got %u)",
                      (unsigned)ip->num_output);
  p->n = (int)ip->num_output;
  p->bias_term = ip->bias_term;
  p->transpose = ip->transpose;
  crema_status st = blob_canonical_axis(bottom->v[0], ip->axis, &p->axis, err);
  if (st != CREMA_OK) {
    crema_error_prefix(err, "layer '%s' (%s): axis: ", l->name, l->ops->type);
    return st;
  }
  p->k = (int)blob_count_from(bottom->v[0], p->axis);
  CREMA_TRY(layer_alloc_blobs(l, p->bias_term ? 2 : 1, err));
  int wshape[2] = {p->transpose ? p->k : p->n, p->transpose ? p->n : p->k};
  CREMA_TRY(layer_make_param(l, 0, 2, wshape, ip->weight_filler, err));
  if (p->bias_term)
    CREMA_TRY(layer_make_param(l, 1, 1, &p->n, ip->bias_filler, err));
  return CREMA_OK;
}

static crema_status ip_reshape(layer *l, const blob_list *bottom, const blob_list *top,
                               crema_error *err) {
  ip_priv *p = l->priv;
  const blob *b = bottom->v[0];
  char s[128];
  if (p->axis >= b->num_axes || blob_count_from(b, p->axis) != (size_t)p->k)
    return layer_fail(l, err, CREMA_ERR_SHAPE,
                      "bottom %s does not give %d inputs from axis %d, as the weights expect",
                      blob_shape_string(b, s, sizeof s), p->k, p->axis);
  p->m = (int)blob_count_range(b, 0, p->axis);
  int shape[BLOB_MAX_AXES];
  for (int i = 0; i < p->axis; i++)
    shape[i] = b->shape[i];
  shape[p->axis] = p->n;
  return blob_reshape(top->v[0], p->axis + 1, shape, err);
}

static crema_status ip_forward(layer *l, const blob_list *bottom, const blob_list *top,
                               crema_error *err) {
  ip_priv *p = l->priv;
  float *restrict y = top->v[0]->data;
  math_gemm(0, !p->transpose, p->m, p->n, p->k, 1.0f, bottom->v[0]->data, l->blobs[0]->data,
            0.0f, y);
  if (p->bias_term) {
    const float *restrict bias = l->blobs[1]->data;
    for (int i = 0; i < p->m; i++)
      for (int j = 0; j < p->n; j++)
        y[(size_t)i * p->n + j] += bias[j];
  }
  return CREMA_OK;
}

static crema_status ip_backward(layer *l, const blob_list *top, const int *propagate_down,
                                const blob_list *bottom, crema_error *err) {
  ip_priv *p = l->priv;
  const float *dy = top->v[0]->diff;
  const float *x = bottom->v[0]->data;
  if (l->param_propagate_down[0]) {
    CREMA_TRY(blob_ensure_diff(l->blobs[0], err));
    if (p->transpose)
      math_gemm(1, 0, p->k, p->n, p->m, 1.0f, x, dy, 1.0f, l->blobs[0]->diff);
    else
      math_gemm(1, 0, p->n, p->k, p->m, 1.0f, dy, x, 1.0f, l->blobs[0]->diff);
  }
  if (p->bias_term && l->param_propagate_down[1]) {
    CREMA_TRY(blob_ensure_diff(l->blobs[1], err));
    float *restrict db = l->blobs[1]->diff;
    for (int i = 0; i < p->m; i++)
      for (int j = 0; j < p->n; j++)
        db[j] += dy[(size_t)i * p->n + j];
  }
  if (propagate_down[0]) {
    CREMA_TRY(blob_ensure_diff(bottom->v[0], err));
    math_gemm(0, p->transpose, p->m, p->k, p->n, 1.0f, dy, l->blobs[0]->data, 0.0f,
              bottom->v[0]->diff);
  }
  return CREMA_OK;
}

static void ip_destroy(layer *l) { free(l->priv); }

const layer_ops inner_product_layer_ops = {
    .type = "InnerProduct",
    .min_bottoms = 1, .max_bottoms = 1, .min_tops = 1, .max_tops = 1,
    .setup = ip_setup, .reshape = ip_reshape, .forward = ip_forward,
    .backward = ip_backward, .destroy = ip_destroy,
};
