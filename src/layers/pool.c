/* Pooling (MAX and AVE) over the two spatial axes of an N x C x H x W blob,
 * as Caffe's PoolingLayer: output size rounded up (or down with round_mode
 * FLOOR), the last window clipped to start inside the image plus its
 * padding, averages divided by the window's size clipped to the padded
 * image, and the argmax kept for the backward pass (in top[1] when the
 * layer has a second top, as Caffe's mask output). */
#include "config.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/parallel.h"
#include "layers/layer.h"
#include "layers/registry.h"
#include "math/blas.h"

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

/* One window of one plane, clipped to the image. */
typedef struct window {
  int h0, h1, w0, w1;
} window;

static window max_window(const pool_priv *p, int ph, int pw) {
  window w;
  w.h0 = ph * p->stride_h - p->pad_h;
  w.w0 = pw * p->stride_w - p->pad_w;
  w.h1 = w.h0 + p->kernel_h < p->height ? w.h0 + p->kernel_h : p->height;
  w.w1 = w.w0 + p->kernel_w < p->width ? w.w0 + p->kernel_w : p->width;
  if (w.h0 < 0)
    w.h0 = 0;
  if (w.w0 < 0)
    w.w0 = 0;
  return w;
}

/* The averaging window: its divisor counts the padding but not what lies
 * beyond it. */
static window ave_window(const pool_priv *p, int ph, int pw, int *size) {
  window w;
  w.h0 = ph * p->stride_h - p->pad_h;
  w.w0 = pw * p->stride_w - p->pad_w;
  int hlim = p->height + p->pad_h, wlim = p->width + p->pad_w;
  w.h1 = w.h0 + p->kernel_h < hlim ? w.h0 + p->kernel_h : hlim;
  w.w1 = w.w0 + p->kernel_w < wlim ? w.w0 + p->kernel_w : wlim;
  *size = (w.h1 - w.h0) * (w.w1 - w.w0);
  if (w.h0 < 0)
    w.h0 = 0;
  if (w.w0 < 0)
    w.w0 = 0;
  if (w.h1 > p->height)
    w.h1 = p->height;
  if (w.w1 > p->width)
    w.w1 = p->width;
  return w;
}

static inline void pick_larger(float v, int at, float *best, int *arg) {
  int larger = v > *best;
  *best = larger ? v : *best;
  *arg = larger ? at : *arg;
}

/* Output o's maximum and where it was (the mask top holds it as a float). */
static inline void store_max(int o, float best, int arg, float *restrict y, int *restrict mask,
                             float *restrict fmask) {
  y[o] = best;
  if (fmask)
    fmask[o] = (float)arg;
  else
    mask[o] = arg;
}

/* Whether the windows are 2x2 with stride 2 and no padding (VGG's and
 * most nets' pooling). */
static int windows_2x2(const pool_priv *p) {
  return p->kernel_h == 2 && p->kernel_w == 2 && p->stride_h == 2 && p->stride_w == 2 &&
         p->pad_h == 0 && p->pad_w == 0;
}

/* windows_2x2: the four candidates in Caffe's scan order, without the
 * general window bookkeeping.  Returns how many leading outputs of row ph
 * it produced. */
static int max_2x2_row(const pool_priv *p, const float *restrict x, int ph, float *restrict y,
                       int *restrict mask, float *restrict fmask) {
  if (!windows_2x2(p) || 2 * ph + 1 >= p->height)
    return 0;
  int full = p->width / 2 < p->pooled_w ? p->width / 2 : p->pooled_w;
  const int top = 2 * ph * p->width;
  const float *restrict r0 = x + top, *restrict r1 = r0 + p->width;
  for (int pw = 0; pw < full; pw++) {
    int c = 2 * pw;
    /* Selects rather than branches: which candidate wins is data and
     * mispredicts half the time. */
    float best = -FLT_MAX;
    int arg = -1;
    pick_larger(r0[c], top + c, &best, &arg);
    pick_larger(r0[c + 1], top + c + 1, &best, &arg);
    pick_larger(r1[c], top + p->width + c, &best, &arg);
    pick_larger(r1[c + 1], top + p->width + c + 1, &best, &arg);
    store_max(ph * p->pooled_w + pw, best, arg, y, mask, fmask);
  }
  return full;
}

static void max_forward_plane(const pool_priv *p, const float *restrict x, float *restrict y,
                              int *restrict mask, float *restrict fmask) {
  for (int ph = 0; ph < p->pooled_h; ph++) {
    for (int pw = max_2x2_row(p, x, ph, y, mask, fmask); pw < p->pooled_w; pw++) {
      window w = max_window(p, ph, pw);
      float best = -FLT_MAX;
      int arg = -1;
      for (int h = w.h0; h < w.h1; h++) {
        const float *restrict row = x + (size_t)h * p->width;
        for (int c = w.w0; c < w.w1; c++)
          pick_larger(row[c], h * p->width + c, &best, &arg);
      }
      store_max(ph * p->pooled_w + pw, best, arg, y, mask, fmask);
    }
  }
}

static void ave_forward_plane(const pool_priv *p, const float *restrict x, float *restrict y) {
  for (int ph = 0; ph < p->pooled_h; ph++) {
    for (int pw = 0; pw < p->pooled_w; pw++) {
      int size;
      window w = ave_window(p, ph, pw, &size);
      float sum = 0.0f;
      for (int h = w.h0; h < w.h1; h++) {
        const float *restrict row = x + (size_t)h * p->width;
        for (int c = w.w0; c < w.w1; c++)
          sum += row[c];
      }
      y[ph * p->pooled_w + pw] = sum / (float)size;
    }
  }
}

/* One pass over the planes, which are independent: the team splits them.
 * Forward, x is the bottom's data and y the top's; backward, x is the
 * top's gradient and y the bottom's. */
typedef struct pool_job {
  const pool_priv *p;
  const float *x;
  float *y, *fmask;
  int is_max;
  void (*plane)(const struct pool_job *j, size_t i);
} pool_job;

static void forward_plane(const pool_job *j, size_t i) {
  const pool_priv *p = j->p;
  size_t in_plane = (size_t)p->height * p->width, out_plane = (size_t)p->pooled_h * p->pooled_w;
  if (j->is_max)
    max_forward_plane(p, j->x + i * in_plane, j->y + i * out_plane,
                      j->fmask ? NULL : p->mask + i * out_plane,
                      j->fmask ? j->fmask + i * out_plane : NULL);
  else
    ave_forward_plane(p, j->x + i * in_plane, j->y + i * out_plane);
}

static void pool_planes(long lo, long hi, void *ctx) {
  const pool_job *j = ctx;
  for (long i = lo; i < hi; i++)
    j->plane(j, (size_t)i);
}

/* Input values below which one thread pools the whole blob (waking the
 * team costs microseconds). */
#define POOL_PARALLEL_MIN ((size_t)1 << 18)

static void pool_run(pool_job *j) {
  const pool_priv *p = j->p;
  size_t in_plane = (size_t)p->height * p->width;
  long min_planes = (long)(POOL_PARALLEL_MIN / (in_plane ? in_plane : 1));
  par_for((long)p->num * p->channels, min_planes, pool_planes, j);
}

static crema_status pool_forward(layer *l, const blob_list *bottom, const blob_list *top,
                                 crema_error *err) {
  pool_priv *p = l->priv;
  int is_max = p->method == CAFFE__POOLING_PARAMETER__POOL_METHOD__MAX;
  pool_job j = {p, bottom->v[0]->data, top->v[0]->data,
                is_max && top->n > 1 ? top->v[1]->data : NULL, is_max, forward_plane};
  pool_run(&j);
  return CREMA_OK;
}

static void max_backward_plane(const pool_priv *p, const float *restrict dy,
                               const int *restrict mask, const float *restrict fmask,
                               float *restrict dx) {
  int n = p->pooled_h * p->pooled_w, limit = p->height * p->width;
  for (int o = 0; o < n; o++) {
    /* Windows that saw only -inf or NaN have no argmax and pass nothing. */
    long long idx = fmask ? (long long)fmask[o] : mask[o];
    if (idx >= 0 && idx < limit)
      dx[idx] += dy[o];
  }
}

static void ave_backward_plane(const pool_priv *p, const float *restrict dy,
                               float *restrict dx) {
  for (int ph = 0; ph < p->pooled_h; ph++) {
    for (int pw = 0; pw < p->pooled_w; pw++) {
      int size;
      window w = ave_window(p, ph, pw, &size);
      float g = dy[ph * p->pooled_w + pw] / (float)size;
      for (int h = w.h0; h < w.h1; h++) {
        float *restrict row = dx + (size_t)h * p->width;
        for (int c = w.w0; c < w.w1; c++)
          row[c] += g;
      }
    }
  }
}

/* Whether windows_2x2 tile the plane exactly: each input then lies in one
 * window, and its gradient can be written at once instead of zeroed and
 * then added to. */
static int tiles_2x2(const pool_priv *p) {
  return windows_2x2(p) && p->height == 2 * p->pooled_h && p->width == 2 * p->pooled_w;
}

/* max_backward_plane for tiles_2x2 with the layer's own mask: each
 * window's four gradients, dy at its argmax and 0 elsewhere (everywhere
 * when it had none). */
static void max_backward_2x2(const pool_priv *p, const float *restrict dy,
                             const int *restrict mask, float *restrict dx) {
  const int w = p->width;
  for (int ph = 0; ph < p->pooled_h; ph++) {
    float *restrict r0 = dx + (size_t)2 * ph * w, *restrict r1 = r0 + w;
    const int top = 2 * ph * w;
    for (int pw = 0; pw < p->pooled_w; pw++) {
      const int o = ph * p->pooled_w + pw, c = 2 * pw;
      const int idx = mask[o];
      /* 0 + g as Caffe's zeroed gradient plus dy: -0 becomes +0. */
      const float g = 0.0f + dy[o];
      r0[c] = idx == top + c ? g : 0.0f;
      r0[c + 1] = idx == top + c + 1 ? g : 0.0f;
      r1[c] = idx == top + w + c ? g : 0.0f;
      r1[c + 1] = idx == top + w + c + 1 ? g : 0.0f;
    }
  }
}

static void backward_plane(const pool_job *j, size_t i) {
  const pool_priv *p = j->p;
  size_t in_plane = (size_t)p->height * p->width, out_plane = (size_t)p->pooled_h * p->pooled_w;
  const float *dy = j->x + i * out_plane;
  float *dx = j->y + i * in_plane;
  /* A mask top could have been changed since forward: it keeps the
   * general path, which adds wherever it points. */
  if (j->is_max && !j->fmask && tiles_2x2(p)) {
    max_backward_2x2(p, dy, p->mask + i * out_plane, dx);
    return;
  }
  memset(dx, 0, in_plane * sizeof(float));
  if (j->is_max)
    max_backward_plane(p, dy, j->fmask ? NULL : p->mask + i * out_plane,
                       j->fmask ? j->fmask + i * out_plane : NULL, dx);
  else
    ave_backward_plane(p, dy, dx);
}

static crema_status pool_backward(layer *l, const blob_list *top, const int *propagate_down,
                                  const blob_list *bottom, crema_error *err) {
  if (!propagate_down[0])
    return CREMA_OK;
  pool_priv *p = l->priv;
  CREMA_TRY(blob_ensure_diff(bottom->v[0], err));
  int is_max = p->method == CAFFE__POOLING_PARAMETER__POOL_METHOD__MAX;
  pool_job j = {p, top->v[0]->diff, bottom->v[0]->diff,
                is_max && top->n > 1 ? top->v[1]->data : NULL, is_max, backward_plane};
  pool_run(&j);
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
