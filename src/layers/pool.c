/* Pooling (MAX and AVE) over the two spatial axes of an N x C x H x W blob,
 * as Caffe's PoolingLayer: output size rounded up (or down with round_mode
 * FLOOR), the last window clipped to start inside the image plus its
 * padding, averages divided by the window's size clipped to the padded
 * image, and the argmax kept for the backward pass (in top[1] when the
 * layer has a second top, as Caffe's mask output). */
#include "config.h"

#include <math.h>
#include <stdlib.h>

#include "layers/layer.h"
#include "layers/registry.h"
#include "math/pooling.h"

#define POOL_MAX_PARAM (1 << 24)

typedef struct pool_priv {
  Caffe__PoolingParameter__PoolMethod method;
  int global;
  int floor_mode;
  int kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w;
  int num, channels, height, width, pooled_h, pooled_w;
  int *mask;          /* argmax per output when there is no mask top */
  size_t mask_cap;
} pool_priv;

static crema_status check_range(layer *l, const char *name, uint32_t v, crema_error *err) {
  if (v > POOL_MAX_PARAM)
    return layer_fail(l, err, CREMA_ERR_INVALID, "%s %u is out of range", name, (unsigned)v);
  return CREMA_OK;
}

static crema_status read_window(layer *l, const Caffe__PoolingParameter *pp, pool_priv *p,
                                crema_error *err) {
  if (pp->global_pooling) {
    if (pp->has_kernel_size || pp->has_kernel_h || pp->has_kernel_w)
      return layer_fail(l, err, CREMA_ERR_INVALID,
                        "with global_pooling: true the filter size cannot be specified");
  } else {
    if (pp->has_kernel_size == (pp->has_kernel_h && pp->has_kernel_w))
      return layer_fail(l, err, CREMA_ERR_INVALID,
                        "filter size is kernel_size OR kernel_h and kernel_w; not both");
    CREMA_TRY(check_range(l, "kernel_size", pp->kernel_size, err));
    CREMA_TRY(check_range(l, "kernel_h", pp->kernel_h, err));
    CREMA_TRY(check_range(l, "kernel_w", pp->kernel_w, err));
    p->kernel_h = (int)(pp->has_kernel_size ? pp->kernel_size : pp->kernel_h);
    p->kernel_w = (int)(pp->has_kernel_size ? pp->kernel_size : pp->kernel_w);
    if (p->kernel_h <= 0 || p->kernel_w <= 0)
      return layer_fail(l, err, CREMA_ERR_INVALID, "filter dimensions cannot be zero");
  }
  if (!((!pp->has_pad && pp->has_pad_h && pp->has_pad_w) || (!pp->has_pad_h && !pp->has_pad_w)))
    return layer_fail(l, err, CREMA_ERR_INVALID, "pad is pad OR pad_h and pad_w are required");
  if (!((!pp->has_stride && pp->has_stride_h && pp->has_stride_w) ||
        (!pp->has_stride_h && !pp->has_stride_w)))
    return layer_fail(l, err, CREMA_ERR_INVALID,
                      "stride is stride OR stride_h and stride_w are required");
  CREMA_TRY(check_range(l, "pad", pp->has_pad_h ? (pp->pad_h > pp->pad_w ? pp->pad_h : pp->pad_w)
                                                : pp->pad, err));
  CREMA_TRY(check_range(l, "stride", pp->has_stride_h
                                         ? (pp->stride_h > pp->stride_w ? pp->stride_h
                                                                        : pp->stride_w)
                                         : pp->stride, err));
  p->pad_h = (int)(pp->has_pad_h ? pp->pad_h : pp->pad);
  p->pad_w = (int)(pp->has_pad_h ? pp->pad_w : pp->pad);
  p->stride_h = (int)(pp->has_stride_h ? pp->stride_h : pp->stride);
  p->stride_w = (int)(pp->has_stride_h ? pp->stride_w : pp->stride);
  if (p->stride_h <= 0 || p->stride_w <= 0)
    return layer_fail(l, err, CREMA_ERR_INVALID, "stride must be positive");
  if (p->global && (p->pad_h || p->pad_w || p->stride_h != 1 || p->stride_w != 1))
    return layer_fail(l, err, CREMA_ERR_INVALID,
                      "with global_pooling: true only pad = 0 and stride = 1 are allowed");
  if (!p->global && (p->pad_h >= p->kernel_h || p->pad_w >= p->kernel_w))
    return layer_fail(l, err, CREMA_ERR_INVALID, "pad %dx%d must be smaller than kernel %dx%d",
                      p->pad_h, p->pad_w, p->kernel_h, p->kernel_w);
  return CREMA_OK;
}

static crema_status pool_setup(layer *l, const blob_list *bottom, const blob_list *top,
                               crema_error *err) {
  Caffe__PoolingParameter defaults;
  const Caffe__PoolingParameter *pp = l->param->pooling_param;
  if (!pp) {
    caffe__pooling_parameter__init(&defaults);
    pp = &defaults;
  }
  pool_priv *p = crema_calloc(1, sizeof *p, err);
  if (!p)
    return CREMA_ERR_NOMEM;
  l->priv = p;
  p->method = pp->pool;
  p->global = pp->global_pooling;
  p->floor_mode = pp->round_mode == CAFFE__POOLING_PARAMETER__ROUND_MODE__FLOOR;
  if (p->method == CAFFE__POOLING_PARAMETER__POOL_METHOD__STOCHASTIC)
    return layer_fail(l, err, CREMA_ERR_UNSUPPORTED,
                      "STOCHASTIC pooling runs only on GPUs in Caffe; use MAX or AVE");
  if (p->method != CAFFE__POOLING_PARAMETER__POOL_METHOD__MAX &&
      p->method != CAFFE__POOLING_PARAMETER__POOL_METHOD__AVE)
    return layer_fail(l, err, CREMA_ERR_INVALID, "unknown pooling method %d", (int)p->method);
  if (top->n > 1 && p->method != CAFFE__POOLING_PARAMETER__POOL_METHOD__MAX)
    return layer_fail(l, err, CREMA_ERR_INVALID, "only MAX pooling has a second (mask) top");
  return read_window(l, pp, p, err);
}

/* Caffe computes the pooled size in float before rounding. */
static int pooled_size(const pool_priv *p, int in, int pad, int kernel, int stride) {
  float q = (float)((long long)in + 2LL * pad - kernel) / (float)stride;
  long long out = (long long)(p->floor_mode ? floorf(q) : ceilf(q)) + 1;
  /* With padding, the last window must start inside the image or its
   * leading padding. */
  if ((p->pad_h || p->pad_w) && (out - 1) * stride >= (long long)in + pad)
    out--;
  return out > 0 && out <= 0x7fffffff ? (int)out : 0;
}

static crema_status pool_reshape(layer *l, const blob_list *bottom, const blob_list *top,
                                 crema_error *err) {
  pool_priv *p = l->priv;
  const blob *b = bottom->v[0];
  char s[128];
  if (b->num_axes != 4)
    return layer_fail(l, err, CREMA_ERR_SHAPE,
                      "bottom must have 4 axes (num, channels, height, width), has shape %s",
                      blob_shape_string(b, s, sizeof s));
  p->num = b->shape[0];
  p->channels = b->shape[1];
  p->height = b->shape[2];
  p->width = b->shape[3];
  if (p->global) {
    p->kernel_h = p->height;
    p->kernel_w = p->width;
    if (p->kernel_h <= 0 || p->kernel_w <= 0)
      return layer_fail(l, err, CREMA_ERR_SHAPE, "global pooling of an empty bottom %s",
                        blob_shape_string(b, s, sizeof s));
  }
  if ((long long)p->height + 2LL * p->pad_h + p->stride_h + p->kernel_h > 0x7fffffff ||
      (long long)p->width + 2LL * p->pad_w + p->stride_w + p->kernel_w > 0x7fffffff)
    return layer_fail(l, err, CREMA_ERR_SHAPE, "bottom %s is too large to pool",
                      blob_shape_string(b, s, sizeof s));
  p->pooled_h = pooled_size(p, p->height, p->pad_h, p->kernel_h, p->stride_h);
  p->pooled_w = pooled_size(p, p->width, p->pad_w, p->kernel_w, p->stride_w);
  int padded = p->pad_h || p->pad_w;
  if (p->pooled_h <= 0 || p->pooled_w <= 0 ||
      (padded && (long long)(p->pooled_h - 1) * p->stride_h >= (long long)p->height + p->pad_h) ||
      (padded && (long long)(p->pooled_w - 1) * p->stride_w >= (long long)p->width + p->pad_w))
    return layer_fail(l, err, CREMA_ERR_SHAPE,
                      "kernel %dx%d (pad %dx%d, stride %dx%d) does not fit bottom %s",
                      p->kernel_h, p->kernel_w, p->pad_h, p->pad_w, p->stride_h, p->stride_w,
                      blob_shape_string(b, s, sizeof s));
  CREMA_TRY(blob_reshape4(top->v[0], p->num, p->channels, p->pooled_h, p->pooled_w, err));
  if (top->n > 1)
    CREMA_TRY(blob_reshape_like(top->v[1], top->v[0], err));
  if (p->method == CAFFE__POOLING_PARAMETER__POOL_METHOD__MAX && top->n == 1 &&
      top->v[0]->count > p->mask_cap) {
    size_t bytes;
    if (!size_mul(top->v[0]->count, sizeof(int), &bytes))
      return layer_fail(l, err, CREMA_ERR_NOMEM, "mask size overflows");
    int *m = crema_malloc(bytes, err);
    if (!m)
      return CREMA_ERR_NOMEM;
    free(p->mask);
    p->mask = m;
    p->mask_cap = top->v[0]->count;
  }
  return CREMA_OK;
}

/* The window geometry the kernels (math/pooling.h) take. */
static pool_geom geom_of(const pool_priv *p) {
  pool_geom g = {p->kernel_h, p->kernel_w, p->stride_h, p->stride_w, p->pad_h, p->pad_w,
                 p->height,   p->width,    p->pooled_h, p->pooled_w};
  return g;
}

static crema_status pool_forward(layer *l, const blob_list *bottom, const blob_list *top,
                                 crema_error *err) {
  const pool_priv *p = l->priv;
  const pool_geom g = geom_of(p);
  const size_t planes = (size_t)p->num * p->channels;
  if (p->method == CAFFE__POOLING_PARAMETER__POOL_METHOD__MAX)
    pool_max_forward(&g, planes, bottom->v[0]->data, top->v[0]->data,
                     top->n > 1 ? NULL : p->mask, top->n > 1 ? top->v[1]->data : NULL);
  else
    pool_ave_forward(&g, planes, bottom->v[0]->data, top->v[0]->data);
  return CREMA_OK;
}

static crema_status pool_backward(layer *l, const blob_list *top, const int *propagate_down,
                                  const blob_list *bottom, crema_error *err) {
  if (!propagate_down[0])
    return CREMA_OK;
  const pool_priv *p = l->priv;
  CREMA_TRY(blob_ensure_diff(bottom->v[0], err));
  const pool_geom g = geom_of(p);
  const size_t planes = (size_t)p->num * p->channels;
  if (p->method == CAFFE__POOLING_PARAMETER__POOL_METHOD__MAX)
    pool_max_backward(&g, planes, top->v[0]->diff, top->n > 1 ? NULL : p->mask,
                      top->n > 1 ? top->v[1]->data : NULL, bottom->v[0]->diff);
  else
    pool_ave_backward(&g, planes, top->v[0]->diff, bottom->v[0]->diff);
  return CREMA_OK;
}

static void pool_destroy(layer *l) {
  pool_priv *p = l->priv;
  if (p)
    free(p->mask);
  free(p);
}

const layer_ops pooling_layer_ops = {
    .type = "Pooling",
    .min_bottoms = 1, .max_bottoms = 1, .min_tops = 1, .max_tops = 2,
    .setup = pool_setup, .reshape = pool_reshape, .forward = pool_forward,
    .backward = pool_backward, .destroy = pool_destroy,
};
