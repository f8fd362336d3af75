/* Pooling's kernels (layers/pool.c is the layer): MAX and AVE windows over
 * each plane of an N x C x H x W blob, as Caffe's PoolingLayer computes
 * them, the planes split over the thread team (core/parallel.h).  A plane
 * is computed the same way whichever member takes it. */
#include "config.h"

#include <float.h>
#include <string.h>

#include "core/parallel.h"
#include "math/pooling.h"

/* One window of one plane, clipped to the image. */
typedef struct window {
  int h0, h1, w0, w1;
} window;

static window max_window(const pool_geom *p, int ph, int pw) {
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
static window ave_window(const pool_geom *p, int ph, int pw, int *size) {
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
static int windows_2x2(const pool_geom *p) {
  return p->kernel_h == 2 && p->kernel_w == 2 && p->stride_h == 2 && p->stride_w == 2 &&
         p->pad_h == 0 && p->pad_w == 0;
}

/* windows_2x2: the four candidates in Caffe's scan order, without the
 * general window bookkeeping.  Returns how many leading outputs of row ph
 * it produced. */
static int max_2x2_row(const pool_geom *p, const float *restrict x, int ph, float *restrict y,
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

static void max_forward_plane(const pool_geom *p, const float *restrict x, float *restrict y,
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

static void ave_forward_plane(const pool_geom *p, const float *restrict x, float *restrict y) {
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


static void max_backward_plane(const pool_geom *p, const float *restrict dy,
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

static void ave_backward_plane(const pool_geom *p, const float *restrict dy,
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
static int tiles_2x2(const pool_geom *p) {
  return windows_2x2(p) && p->height == 2 * p->pooled_h && p->width == 2 * p->pooled_w;
}

/* max_backward_plane for tiles_2x2 with the layer's own mask: each
 * window's four gradients, dy at its argmax and 0 elsewhere (everywhere
 * when it had none). */
static void max_backward_2x2(const pool_geom *p, const float *restrict dy,
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


/* One pass over the planes, which are independent: the team splits them.
 * Forward, x is the bottom's data and y the top's; backward, x is the
 * top's gradient and y the bottom's.  The argmax is in mask, or in fmask
 * (a mask top) when that is not NULL. */
typedef struct pool_pass {
  const pool_geom *p;
  const float *x;
  float *y, *fmask;
  int *mask;
  int is_max;
  void (*plane)(const struct pool_pass *j, size_t i);
} pool_pass;

static void forward_plane(const pool_pass *j, size_t i) {
  const pool_geom *p = j->p;
  size_t in_plane = (size_t)p->height * p->width, out_plane = (size_t)p->pooled_h * p->pooled_w;
  if (j->is_max)
    max_forward_plane(p, j->x + i * in_plane, j->y + i * out_plane,
                      j->fmask ? NULL : j->mask + i * out_plane,
                      j->fmask ? j->fmask + i * out_plane : NULL);
  else
    ave_forward_plane(p, j->x + i * in_plane, j->y + i * out_plane);
}

static void backward_plane(const pool_pass *j, size_t i) {
  const pool_geom *p = j->p;
  size_t in_plane = (size_t)p->height * p->width, out_plane = (size_t)p->pooled_h * p->pooled_w;
  const float *dy = j->x + i * out_plane;
  float *dx = j->y + i * in_plane;
  /* A mask top could have been changed since forward: it keeps the
   * general path, which adds wherever it points. */
  if (j->is_max && !j->fmask && tiles_2x2(p)) {
    max_backward_2x2(p, dy, j->mask + i * out_plane, dx);
    return;
  }
  memset(dx, 0, in_plane * sizeof(float));
  if (j->is_max)
    max_backward_plane(p, dy, j->fmask ? NULL : j->mask + i * out_plane,
                       j->fmask ? j->fmask + i * out_plane : NULL, dx);
  else
    ave_backward_plane(p, dy, dx);
}

static void pool_planes(long lo, long hi, void *ctx) {
  const pool_pass *j = ctx;
  for (long i = lo; i < hi; i++)
    j->plane(j, (size_t)i);
}

/* Input values below which one thread pools the whole blob (waking the
 * team costs microseconds). */
#define POOL_PARALLEL_MIN ((size_t)1 << 18)

static void pool_run(const pool_pass *j, size_t planes) {
  const pool_geom *p = j->p;
  size_t in_plane = (size_t)p->height * p->width;
  long min_planes = (long)(POOL_PARALLEL_MIN / (in_plane ? in_plane : 1));
  par_for((long)planes, min_planes, pool_planes, (void *)j);
}

void pool_max_forward(const pool_geom *g, size_t planes, const float *x, float *y, int *mask,
                      float *fmask) {
  const pool_pass j = {g, x, y, fmask, mask, 1, forward_plane};
  pool_run(&j, planes);
}

void pool_ave_forward(const pool_geom *g, size_t planes, const float *x, float *y) {
  const pool_pass j = {g, x, y, NULL, NULL, 0, forward_plane};
  pool_run(&j, planes);
}

void pool_max_backward(const pool_geom *g, size_t planes, const float *dy, const int *mask,
                       const float *fmask, float *dx) {
  const pool_pass j = {g, dy, dx, (float *)fmask, (int *)mask, 1, backward_plane};
  pool_run(&j, planes);
}

void pool_ave_backward(const pool_geom *g, size_t planes, const float *dy, float *dx) {
  const pool_pass j = {g, dy, dx, NULL, NULL, 0, backward_plane};
  pool_run(&j, planes);
}
