/* Depthwise convolution (group == input channels == output channels).
 *
 * Each channel is convolved with its own filter.  Through im2col + SGEMM
 * that is one product per channel with a single output row: the column
 * matrix is written and read again for a handful of multiply-adds per
 * value.  The segmentation nets' bilinear upsampling layers (Deconvolution
 * with group = channels, kernel 2f, stride f) spent 6 ms each there at
 * 224x224.  Here every operation is a plain loop over the taps that touch
 * the image, so the cost is the multiply-adds themselves.
 *
 * A deconvolution's forward pass is this engine's data gradient: each input
 * value of the underlying convolution's output side is scattered through
 * the filter into the image, as col2im would. */
#include "config.h"

#include <stddef.h>
#include <string.h>

#include "core/parallel.h"
#include "math/activation.h"
#include "math/conv_engine.h"

/* Multiply-adds below which one thread does the whole image (a tenth of
 * a millisecond: the team's workers wake in microseconds). */
#define DEPTHWISE_PARALLEL_MIN 2e5

static int depthwise_supports(const conv_geom *g) {
  const im2col_shape *s = &g->in;
  return g->group == s->channels && g->out_channels == s->channels && s->out_h > 0 &&
         s->out_w > 0;
}

/* With one output row per group, SGEMM never runs at speed: whenever the
 * geometry is depthwise this engine is the faster one. */
static int depthwise_preferred(const conv_geom *g) { return depthwise_supports(g); }

/* The columns [*lo, *hi) of kernel row or column taps that land inside an
 * image of size n for output position o. */
static void tap_range(int o, int stride, int pad, int dilation, int kernel, int n, int *lo,
                      int *hi) {
  int start = o * stride - pad;
  int a = 0, b = kernel;
  /* start + k * dilation in [0, n) */
  if (start < 0)
    a = (-start + dilation - 1) / dilation;
  if (start + (b - 1) * dilation >= n)
    b = start >= n ? 0 : (n - 1 - start) / dilation + 1;
  *lo = a;
  *hi = b > a ? b : a;
}

/* The output columns [lo, hi) whose taps all land inside the row: there
 * the range is the whole kernel, without tap_range's divisions (which cost
 * more than the multiply-adds for a kernel of 4). */
typedef struct col_taps {
  int lo, hi;
  int stride, pad, dilation, kernel, width;
} col_taps;

static col_taps col_taps_of(const im2col_shape *s) {
  col_taps c = {0, 0, s->stride_w, s->pad_w, s->dilation_w, s->kernel_w, s->width};
  int last = s->width - 1 + s->pad_w - (s->kernel_w - 1) * s->dilation_w;
  c.lo = s->pad_w > 0 ? (s->pad_w + s->stride_w - 1) / s->stride_w : 0;
  c.hi = last >= 0 ? last / s->stride_w + 1 : 0;
  if (c.hi > s->out_w)
    c.hi = s->out_w;
  if (c.lo > c.hi)
    c.lo = c.hi;
  return c;
}

static inline void col_range(const col_taps *c, int ox, int *lo, int *hi) {
  if (ox >= c->lo && ox < c->hi) {
    *lo = 0;
    *hi = c->kernel;
  } else {
    tap_range(ox, c->stride, c->pad, c->dilation, c->kernel, c->width, lo, hi);
  }
}

typedef enum { DW_FORWARD, DW_DATA, DW_WEIGHTS } dw_op;

typedef struct dw_job {
  const conv_geom *g;
  dw_op op;
  const float *a, *b, *bias; /* operands as the op names them */
  float *out;
  par_dealer channels; /* dealt to the team one by one */
} dw_job;

/* Runs BODY for every output position (oy, ox) with the taps that land
 * in the image, [ky0, ky1) x [kx0, kx1), and the image offset `at` of tap
 * (0, 0) (which may lie outside the image; taps in range never do); tap
 * (ky, kx) reads at + ky * row_step + kx * dilation_w. */
#define FOR_EACH_WINDOW(s, BODY)                                                               \
  do {                                                                                         \
    const col_taps cols_ = col_taps_of(s);                                                    \
    const ptrdiff_t row_step = (ptrdiff_t)(s)->dilation_h * (s)->width;                       \
    for (int oy = 0; oy < (s)->out_h; oy++) {                                                  \
      int ky0, ky1;                                                                            \
      tap_range(oy, (s)->stride_h, (s)->pad_h, (s)->dilation_h, (s)->kernel_h, (s)->height,   \
                &ky0, &ky1);                                                                   \
      for (int ox = 0; ox < (s)->out_w; ox++) {                                                \
        int kx0, kx1;                                                                          \
        col_range(&cols_, ox, &kx0, &kx1);                                                     \
        const ptrdiff_t at = (ptrdiff_t)(oy * (s)->stride_h - (s)->pad_h) * (s)->width +      \
                             ox * (s)->stride_w - (s)->pad_w;                                  \
        const size_t o = (size_t)oy * (s)->out_w + ox;                                         \
        BODY;                                                                                  \
      }                                                                                        \
    }                                                                                          \
  } while (0)

/* The sum of w[k] * x[k] over a window's taps [kx0, kx1) of rows
 * [ky0, ky1), contiguous along a row (dilation 1), in 8 running sums: a
 * single sum made every multiply-add wait for the one before, and the
 * upsampling layers' backward (kernels of 8 to 32 taps a row) ran at a
 * third of the speed.  Caffe's SGEMM sums in its own blocked order too. */
static float window_dot(const float *w, int kernel_w, const float *x, ptrdiff_t at,
                        ptrdiff_t row_step, int ky0, int ky1, int kx0, int kx1) {
  float a[8] = {0};
  const int n = kx1 - kx0;
  for (int ky = ky0; ky < ky1; ky++) {
    /* The offset first: x + at alone may point before the image. */
    const float *wr = w + (size_t)ky * kernel_w + kx0, *xr = x + (at + ky * row_step + kx0);
    int k = 0;
    for (; k + 8 <= n; k += 8)
      for (int l = 0; l < 8; l++)
        a[l] += wr[k + l] * xr[k + l];
    for (; k + 4 <= n; k += 4)
      for (int l = 0; l < 4; l++)
        a[l] += wr[k + l] * xr[k + l];
    for (; k < n; k++)
      a[0] += wr[k] * xr[k];
  }
  return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
}

/* out plane = conv(x plane, filter) (+ bias), through a fused ReLU. */
static void forward_channel(const conv_geom *g, const float *x, const float *w, float bias,
                            float *y) {
  const int relu = g->relu;
  const im2col_shape *s = &g->in;
  const int dense = s->dilation_w == 1;
  FOR_EACH_WINDOW(s, {
    float acc = 0.0f;
    if (dense) {
      acc = window_dot(w, s->kernel_w, x, at, row_step, ky0, ky1, kx0, kx1);
    } else {
      for (int ky = ky0; ky < ky1; ky++)
        for (int kx = kx0; kx < kx1; kx++)
          acc += w[ky * s->kernel_w + kx] * x[at + ky * row_step + kx * s->dilation_w];
    }
    y[o] = relu ? relu_caffe(acc + bias, 0.0f) : acc + bias;
  });
}

/* The output positions [*lo, *hi) (of out_n) whose tap at offset off
 * (kernel index times dilation) lands inside an image of size n. */
static void out_range(int n, int stride, int pad, int off, int out_n, int *lo, int *hi) {
  int first = pad - off, last = n - 1 + pad - off;
  *lo = first > 0 ? (first + stride - 1) / stride : 0;
  *hi = last >= 0 ? last / stride + 1 : 0;
  if (*hi > out_n)
    *hi = out_n;
  if (*lo > *hi)
    *lo = *hi;
}

/* dx plane = the output gradient scattered back through the filter, in
 * col2im's order (kernel row and column outermost), so the sums round as
 * Caffe's do.  Along the innermost loop the stores are stride apart and
 * never the same value twice: scattering each gradient value through the
 * whole filter instead made neighbouring additions wait on each other's
 * stores, 3x slower. */
static void data_by_taps(const conv_geom *g, const float *dy, const float *w, float *dx) {
  const im2col_shape *s = &g->in;
  memset(dx, 0, (size_t)s->height * s->width * sizeof(float));
  for (int ky = 0; ky < s->kernel_h; ky++) {
    int oy0, oy1;
    out_range(s->height, s->stride_h, s->pad_h, ky * s->dilation_h, s->out_h, &oy0, &oy1);
    for (int kx = 0; kx < s->kernel_w; kx++) {
      int ox0, ox1;
      out_range(s->width, s->stride_w, s->pad_w, kx * s->dilation_w, s->out_w, &ox0, &ox1);
      const float wv = w[(size_t)ky * s->kernel_w + kx];
      const int xoff = kx * s->dilation_w - s->pad_w;
      for (int oy = oy0; oy < oy1; oy++) {
        float *restrict row =
            dx + (size_t)(oy * s->stride_h - s->pad_h + ky * s->dilation_h) * s->width + xoff;
        const float *restrict dyr = dy + (size_t)oy * s->out_w;
        for (int ox = ox0; ox < ox1; ox++)
          row[ox * s->stride_w] += wv * dyr[ox];
      }
    }
  }
}

/* The same, one gradient value at a time through the whole filter row:
 * for kernels wider than the gradient's rows (a 16x upsampling of a 14x14
 * map), where the loops above would run a few iterations each. */
static void data_by_values(const conv_geom *g, const float *dy, const float *w, float *dx) {
  const im2col_shape *s = &g->in;
  memset(dx, 0, (size_t)s->height * s->width * sizeof(float));
  FOR_EACH_WINDOW(s, {
    const float v = dy[o];
    for (int ky = ky0; ky < ky1; ky++)
      for (int kx = kx0; kx < kx1; kx++)
        dx[at + ky * row_step + kx * s->dilation_w] += w[ky * s->kernel_w + kx] * v;
  });
}

static void data_channel(const conv_geom *g, const float *dy, const float *w, float *dx) {
  if (g->in.kernel_w <= g->in.out_w)
    data_by_taps(g, dy, w, dx);
  else
    data_by_values(g, dy, w, dx);
}

/* dw filter += correlation of the input with the output gradient. */
static void weights_channel(const conv_geom *g, const float *x, const float *dy, float *dw) {
  const im2col_shape *s = &g->in;
  FOR_EACH_WINDOW(s, {
    const float v = dy[o];
    for (int ky = ky0; ky < ky1; ky++)
      for (int kx = kx0; kx < kx1; kx++)
        dw[ky * s->kernel_w + kx] += x[at + ky * row_step + kx * s->dilation_w] * v;
  });
}

static void dw_member(par_team *team, int tid, int nthreads, void *ctx) {
  dw_job *j = ctx;
  const im2col_shape *s = &j->g->in;
  const size_t in_plane = (size_t)s->height * s->width, out_plane = (size_t)s->out_h * s->out_w;
  const size_t taps = (size_t)s->kernel_h * s->kernel_w;
  for (long c; (c = par_deal(&j->channels)) >= 0;) {
    switch (j->op) {
    case DW_FORWARD:
      forward_channel(j->g, j->a + c * in_plane, j->b + c * taps, j->bias ? j->bias[c] : 0.0f,
                      j->out + c * out_plane);
      break;
    case DW_DATA:
      data_channel(j->g, j->a + c * out_plane, j->b + c * taps, j->out + c * in_plane);
      break;
    case DW_WEIGHTS:
      weights_channel(j->g, j->a + c * in_plane, j->b + c * out_plane, j->out + c * taps);
      break;
    }
  }
}

static void dw_run(const conv_geom *g, dw_op op, const float *a, const float *b,
                   const float *bias, float *out) {
  const im2col_shape *s = &g->in;
  double work = (double)s->channels * s->kernel_h * s->kernel_w * (double)s->out_h * s->out_w;
  int nth = g->threads > 1 && work >= DEPTHWISE_PARALLEL_MIN ? g->threads : 1;
  dw_job j = {g, op, a, b, bias, out};
  par_dealer_reset(&j.channels, s->channels);
  par_run(nth, dw_member, &j);
}

static void depthwise_forward(const conv_geom *g, const float *in, const float *w,
                              const float *bias, float *out, float *ws) {
  dw_run(g, DW_FORWARD, in, w, bias, out);
}

static void depthwise_backward_data(const conv_geom *g, const float *out_diff, const float *w,
                                    float *in_diff, float *ws) {
  dw_run(g, DW_DATA, out_diff, w, NULL, in_diff);
}

static void depthwise_backward_weights(const conv_geom *g, const float *in,
                                       const float *out_diff, float *w_diff, float *ws) {
  dw_run(g, DW_WEIGHTS, in, out_diff, NULL, w_diff);
}

const conv_engine conv_engine_depthwise = {
    .name = "depthwise",
    .supports = depthwise_supports,
    .preferred = depthwise_preferred,
    .workspace = NULL,
    .forward = depthwise_forward,
    .backward_data = depthwise_backward_data,
    .backward_weights = depthwise_backward_weights,
};
