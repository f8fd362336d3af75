/* Direct convolution for images with few channels (a net's first layer).
 *
 * With 3 input channels and a 3x3 kernel, im2col + SGEMM multiplies by a
 * matrix only 27 deep: OpenBLAS spends more time packing than multiplying,
 * and VGG-16's conv1_1 ran at a tenth of the machine's speed.  Here each
 * output value is accumulated in registers, in blocks of 4 output channels
 * x 16 output columns: one broadcast weight and two input loads per 8
 * multiply-adds.  For each output row, the input rows it reads are copied
 * with their zero padding into a small buffer of the thread's own (a few
 * rows: scratch grows with the width only).
 *
 * Forward only, stride 1, no dilation, one group; the gradients stay with
 * gemm (the first layer's data gradient is never needed).  The kernels are
 * compiled for AVX2+FMA and for the baseline ISA; the choice is made at run
 * time, and "auto" prefers this engine only where AVX2 is there. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "core/parallel.h"
#include "math/activation.h"
#include "math/conv_engine.h"
#include "math/simd.h"

#define XB 16 /* output columns per block: two 8-float vectors */
#define OCB 4 /* output channels per block */
/* Input channels up to which the engine applies: beyond that im2col's
 * matrix is deep enough for SGEMM to run at full speed. */
#define DIRECT_MAX_CHANNELS 4

#define DIRECT_INLINE SIMD_INLINE

/* The rows one output row reads, zero-padded: channels x kernel_h rows,
 * each wide enough that the last block of columns reads inside it. */
static int padded_width(const conv_geom *g) {
  const im2col_shape *s = &g->in;
  int cols = (s->out_w + XB - 1) / XB * XB;
  int w = s->width + 2 * s->pad_w;
  return w < cols + s->kernel_w - 1 ? cols + s->kernel_w - 1 : w;
}

static size_t rows_floats(const conv_geom *g) {
  return (size_t)g->in.channels * g->in.kernel_h * padded_width(g);
}

static int direct_supports(const conv_geom *g) {
  const im2col_shape *s = &g->in;
  return g->group == 1 && s->channels <= DIRECT_MAX_CHANNELS && s->stride_h == 1 &&
         s->stride_w == 1 && s->dilation_h == 1 && s->dilation_w == 1 && s->out_h > 0 &&
         s->out_w > 0;
}

static size_t direct_workspace(const conv_geom *g) {
  return rows_floats(g) * (size_t)(g->threads > 1 ? g->threads : 1);
}

/* The input rows output row oy reads, into buf (row (c, i) at
 * (c * kernel_h + i) * wp). */
static void gather_rows(const conv_geom *g, const float *in, int oy, int wp, float *buf) {
  const im2col_shape *s = &g->in;
  memset(buf, 0, rows_floats(g) * sizeof(float));
  for (int c = 0; c < s->channels; c++)
    for (int i = 0; i < s->kernel_h; i++) {
      int y = oy - s->pad_h + i;
      if (y >= 0 && y < s->height)
        memcpy(buf + ((size_t)c * s->kernel_h + i) * wp + s->pad_w,
               in + ((size_t)c * s->height + y) * s->width, (size_t)s->width * sizeof(float));
    }
}

/* The weights of output channel k for tap t sit at w[k * taps + t]. */
typedef struct direct_job {
  const conv_geom *g;
  int wp;   /* padded row length */
  int taps; /* weights per output channel */
  const float *in, *w, *bias;
  float *out, *ws;
} direct_job;

/* Columns [ox, ox + XB) of channels [k, k + OCB) of the output row whose
 * input rows are in buf: results go to dst rows (XB floats each, OCB of
 * them). */
DIRECT_INLINE void block_4x16(const direct_job *j, const float *buf, int k, int ox, float *dst) {
  const im2col_shape *s = &j->g->in;
  const int taps = j->taps;
  const float *w0 = j->w + (size_t)k * taps, *w1 = w0 + taps, *w2 = w1 + taps, *w3 = w2 + taps;
  v8 a0 = {0}, b0 = {0}, a1 = {0}, b1 = {0}, a2 = {0}, b2 = {0}, a3 = {0}, b3 = {0};
  int t = 0;
  for (int c = 0; c < s->channels; c++)
    for (int i = 0; i < s->kernel_h; i++) {
      const float *row = buf + ((size_t)c * s->kernel_h + i) * j->wp + ox;
      for (int q = 0; q < s->kernel_w; q++, t++) {
        v8 lo = ld8(row + q), hi = ld8(row + q + 8);
        float u;
        u = w0[t], a0 += u * lo, b0 += u * hi;
        u = w1[t], a1 += u * lo, b1 += u * hi;
        u = w2[t], a2 += u * lo, b2 += u * hi;
        u = w3[t], a3 += u * lo, b3 += u * hi;
      }
    }
  st8(dst, a0), st8(dst + 8, b0);
  st8(dst + XB, a1), st8(dst + XB + 8, b1);
  st8(dst + 2 * XB, a2), st8(dst + 2 * XB + 8, b2);
  st8(dst + 3 * XB, a3), st8(dst + 3 * XB + 8, b3);
}

/* The same for a single output channel (the last k % OCB). */
DIRECT_INLINE void block_1x16(const direct_job *j, const float *buf, int k, int ox, float *dst) {
  const im2col_shape *s = &j->g->in;
  const int taps = j->taps;
  const float *w0 = j->w + (size_t)k * taps;
  v8 a0 = {0}, b0 = {0};
  int t = 0;
  for (int c = 0; c < s->channels; c++)
    for (int i = 0; i < s->kernel_h; i++) {
      const float *row = buf + ((size_t)c * s->kernel_h + i) * j->wp + ox;
      for (int q = 0; q < s->kernel_w; q++, t++) {
        float u = w0[t];
        a0 += u * ld8(row + q), b0 += u * ld8(row + q + 8);
      }
    }
  st8(dst, a0), st8(dst + 8, b0);
}

/* Copies n channels of a block to the output, adding the bias (and
 * applying a fused ReLU), keeping only the columns inside the image. */
DIRECT_INLINE void store_block(const direct_job *j, int k, int n, int oy, int ox,
                               const float *blk) {
  const im2col_shape *s = &j->g->in;
  const int relu = j->g->relu;
  int cols = s->out_w - ox < XB ? s->out_w - ox : XB;
  size_t plane = (size_t)s->out_h * s->out_w;
  for (int r = 0; r < n; r++) {
    float b = j->bias ? j->bias[k + r] : 0.0f;
    float *o = j->out + (size_t)(k + r) * plane + (size_t)oy * s->out_w + ox;
    if (cols == XB) {
      v8 lo = ld8(blk + r * XB) + b, hi = ld8(blk + r * XB + 8) + b;
      st8(o, relu ? relu8(lo) : lo);
      st8(o + 8, relu ? relu8(hi) : hi);
    } else {
      for (int x = 0; x < cols; x++)
        o[x] = relu ? relu_caffe(blk[r * XB + x] + b, 0.0f) : blk[r * XB + x] + b;
    }
  }
}

/* Output rows [y0, y1), all channels, with buf as the row buffer. */
DIRECT_INLINE void rows_body(const direct_job *j, int y0, int y1, float *buf) {
  const im2col_shape *s = &j->g->in;
  const int kout = j->g->out_channels;
  float blk[OCB * XB] __attribute__((aligned(32)));
  for (int oy = y0; oy < y1; oy++) {
    gather_rows(j->g, j->in, oy, j->wp, buf);
    for (int ox = 0; ox < s->out_w; ox += XB) {
      int k = 0;
      for (; k + OCB <= kout; k += OCB) {
        block_4x16(j, buf, k, ox, blk);
        store_block(j, k, OCB, oy, ox, blk);
      }
      for (; k < kout; k++) {
        block_1x16(j, buf, k, ox, blk);
        store_block(j, k, 1, oy, ox, blk);
      }
    }
  }
}

static void rows_generic(const direct_job *j, int y0, int y1, float *buf) {
  rows_body(j, y0, y1, buf);
}

#ifdef SIMD_HAVE_AVX2
SIMD_AVX2 static void rows_avx2(const direct_job *j, int y0, int y1,
                                                          float *buf) {
  rows_body(j, y0, y1, buf);
}
#endif

typedef void (*rows_fn)(const direct_job *j, int y0, int y1, float *buf);

/* CREMA_SIMD_GENERIC forces the portable kernel (math/simd.h). */
static rows_fn pick_rows(int simd) { return SIMD_PICK(simd, rows_generic, rows_avx2); }

typedef struct direct_team_job {
  const direct_job *job;
  rows_fn rows;
} direct_team_job;

static void direct_member(par_team *team, int tid, int nthreads, void *ctx) {
  const direct_team_job *t = ctx;
  long lo, hi;
  par_split(t->job->g->in.out_h, tid, nthreads, &lo, &hi);
  t->rows(t->job, (int)lo, (int)hi, t->job->ws + (size_t)tid * rows_floats(t->job->g));
}

/* Multiply-adds below which one thread does the whole image. */
#define DIRECT_PARALLEL_MIN 2e6

static void direct_forward(const conv_geom *g, const float *in, const float *w,
                           const float *bias, float *out, float *ws) {
  const im2col_shape *s = &g->in;
  direct_job j = {g, padded_width(g), s->channels * s->kernel_h * s->kernel_w, in, w, bias, out,
                  ws};
  direct_team_job t = {&j, pick_rows(g->simd)};
  double work = (double)g->out_channels * s->channels * s->kernel_h * s->kernel_w *
                (double)s->out_h * s->out_w;
  int nth = g->threads > 1 && work >= DIRECT_PARALLEL_MIN ? g->threads : 1;
  par_run(nth, direct_member, &t);
}

/* Measured on VGG-16's conv1_1 (3 channels, 224x224): 10 ms with gemm,
 * about 2 with this engine on one core.  Without AVX2 gemm stays. */
static int direct_preferred(const conv_geom *g) {
  return pick_rows(g->simd) != rows_generic && direct_supports(g) && g->out_channels >= OCB &&
         g->in.out_w >= XB;
}

const conv_engine conv_engine_direct = {
    .name = "direct",
    .supports = direct_supports,
    .preferred = direct_preferred,
    .workspace = direct_workspace,
    .forward = direct_forward,
    .backward_data = NULL,
    .backward_weights = NULL,
};
