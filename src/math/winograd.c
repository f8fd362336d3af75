/* Winograd F(4x4,3x3) convolution (Lavin & Gray, 2015).
 *
 * Each 4x4 block of output (a tile) comes from a 6x6 block of input.  Input
 * tiles and filters are mapped to a 6x6 transformed domain where the
 * convolution becomes 36 independent matrix products over channels,
 *     M[xi] (K x tiles) = U[xi] (K x C) * V[xi] (C x tiles),
 * after which each 6x6 block of M maps back to a 4x4 output tile: 36
 * multiply-adds per tile and channel pair instead of 144.
 *
 * Work goes in blocks of tiles so the scratch stays a few MB at any image
 * size: the team transforms a block's inputs together, then each member
 * takes its share of output channels through filter transform, products
 * and output transform in chunks that stay in its own caches (one barrier
 * per block, no contention on OpenBLAS's threads).  The transforms write
 * the operands directly in the layout the product kernel streams (panels
 * of 16 tiles, rows of 6 output channels), so there is no packing pass.
 *
 * Filters are transformed at every call.  That is 10-15% of the engine's
 * time on VGG-16, but caching them would take 4x the weights' memory
 * (36 values per 9) and would have to be invalidated whenever the solver
 * or a weight load changes the weights.
 *
 * The kernels are written with GCC vector types and compiled twice, for
 * AVX2+FMA and for the baseline ISA; the choice is made at run time. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "math/conv_engine.h"
#include "math/parallel.h"

#define WT 6       /* transformed tile side */
#define NXI 36     /* transformed points */
#define LANES 16   /* tiles per panel */
#define KR 6       /* output channels per panel */

/* Transformed inputs of one block of tiles, shared by the team (8 MB). */
#define WINO_V_FLOATS ((size_t)2 << 20)
/* Tiles per block at most: bounds each member's products. */
#define WINO_MAX_TILE_BLOCK 512
/* Output channels a member carries through the products at once, and
 * input channels per pass: its transformed filters (36 x KCH x KC floats,
 * 330 KB) stay in L2 while it sweeps the block's tiles. */
#define KCH 18
#define KC 128
/* Multiply-adds of products below which a convolution is not split over
 * threads (about a millisecond of work). */
#define WINO_PARALLEL_MIN 2e7

typedef float v8 __attribute__((vector_size(32)));
typedef float v16 __attribute__((vector_size(64)));

/* Vector values only cross always-inlined helpers, never a real call. */
#pragma GCC diagnostic ignored "-Wpsabi"

#define WINO_INLINE static inline __attribute__((always_inline))

WINO_INLINE v8 ld8(const float *p) {
  v8 v;
  memcpy(&v, p, sizeof v);
  return v;
}

WINO_INLINE void st8(float *p, v8 v) { memcpy(p, &v, sizeof v); }

WINO_INLINE v16 ld16(const float *p) {
  v16 v;
  memcpy(&v, p, sizeof v);
  return v;
}

WINO_INLINE void st16(float *p, v16 v) { memcpy(p, &v, sizeof v); }

/* One convolution as the engine runs it: either the layer's forward
 * convolution or, for the data gradient, the convolution of the output
 * gradient with the flipped, transposed filters. */
typedef struct wino_plan {
  int group;
  int cin, kout;                 /* channels per group */
  int height, width;             /* input */
  int pad_h, pad_w;
  int out_h, out_w;
  int tiles_w;
  long tiles;
  int tile_block;                /* tiles per block, a multiple of LANES */
  int kc;                        /* input channels per product pass */
  int threads;                   /* team size the scratch is laid out for */
  /* Filter (o, i) of group grp starts at w + grp*group_stride + o*stride_out
   * + i*stride_in; flipped: read rotated by 180 degrees. */
  size_t group_stride, stride_out, stride_in;
  int flip;
} wino_plan;

static size_t round_up(size_t n, size_t m) { return (n + m - 1) / m * m; }

static void plan_blocks(wino_plan *p) {
  size_t t_all = round_up((size_t)p->tiles, LANES);
  size_t tb = WINO_V_FLOATS / ((size_t)NXI * p->cin) / LANES * LANES;
  if (tb < LANES)
    tb = LANES;
  if (tb > WINO_MAX_TILE_BLOCK)
    tb = WINO_MAX_TILE_BLOCK;
  if (tb > t_all)
    tb = t_all;
  p->tile_block = (int)tb;
  p->kc = p->cin < KC ? p->cin : KC;
}

static void plan_common(const conv_geom *g, wino_plan *p) {
  p->threads = g->threads > 1 ? g->threads : 1;
  p->tiles_w = (p->out_w + 3) / 4;
  p->tiles = (long)((p->out_h + 3) / 4) * p->tiles_w;
  plan_blocks(p);
}

static void plan_forward(const conv_geom *g, wino_plan *p) {
  const im2col_shape *s = &g->in;
  p->group = g->group;
  p->cin = s->channels / g->group;
  p->kout = g->out_channels / g->group;
  p->height = s->height;
  p->width = s->width;
  p->pad_h = s->pad_h;
  p->pad_w = s->pad_w;
  p->out_h = s->out_h;
  p->out_w = s->out_w;
  p->group_stride = (size_t)p->kout * p->cin * 9;
  p->stride_out = (size_t)p->cin * 9;
  p->stride_in = 9;
  p->flip = 0;
  plan_common(g, p);
}

/* The data gradient of a 3x3 stride-1 convolution with padding pad is the
 * convolution of the output gradient with the filters transposed and
 * flipped, padded by 2 - pad. */
static void plan_backward_data(const conv_geom *g, wino_plan *p) {
  const im2col_shape *s = &g->in;
  p->group = g->group;
  p->cin = g->out_channels / g->group;
  p->kout = s->channels / g->group;
  p->height = s->out_h;
  p->width = s->out_w;
  p->pad_h = 2 - s->pad_h;
  p->pad_w = 2 - s->pad_w;
  p->out_h = s->height;
  p->out_w = s->width;
  p->group_stride = (size_t)p->kout * p->cin * 9;
  p->stride_out = 9;
  p->stride_in = (size_t)p->kout * 9;
  p->flip = 1;
  plan_common(g, p);
}

/* Floats of slack to align the scratch to a cache line: a 32-byte load
 * that straddles two lines costs two. */
#define ALIGN_FLOATS 16

/* Scratch layout: V (shared), then per member its filters U and products
 * M; every part a whole number of cache lines. */
static size_t v_floats(const wino_plan *p) {
  return round_up((size_t)NXI * p->cin * p->tile_block, ALIGN_FLOATS);
}

static size_t u_floats(const wino_plan *p) {
  return round_up((size_t)NXI * KCH * p->kc, ALIGN_FLOATS);
}

static size_t m_floats(const wino_plan *p) {
  return round_up((size_t)NXI * KCH * p->tile_block, ALIGN_FLOATS);
}

static size_t plan_workspace(const wino_plan *p) {
  return v_floats(p) + (size_t)p->threads * (u_floats(p) + m_floats(p)) + ALIGN_FLOATS;
}

static float *align_line(float *ws) {
  uintptr_t a = (uintptr_t)ws;
  return (float *)((a + 63) & ~(uintptr_t)63);
}

static int winograd_supports(const conv_geom *g) {
  const im2col_shape *s = &g->in;
  return s->kernel_h == 3 && s->kernel_w == 3 && s->stride_h == 1 && s->stride_w == 1 &&
         s->dilation_h == 1 && s->dilation_w == 1 && s->pad_h <= 2 && s->pad_w <= 2;
}

static size_t winograd_workspace(const conv_geom *g) {
  wino_plan f, b;
  plan_forward(g, &f);
  plan_backward_data(g, &b);
  size_t a = plan_workspace(&f), c = plan_workspace(&b);
  return a > c ? a : c;
}

/* ---- filter transform: U = G g G^T, 16 input channels per vector ---- */

WINO_INLINE void filter_1d(v16 g0, v16 g1, v16 g2, v16 *u, int step) {
  v16 a = (1.0f / 24) * g0 + (1.0f / 6) * g2, b = (1.0f / 12) * g1;
  v16 c = (-1.0f / 6) * (g0 + g2), d = (-1.0f / 6) * g1;
  u[0] = 0.25f * g0;
  u[step] = c + d;
  u[2 * step] = c - d;
  u[3 * step] = a + b;
  u[4 * step] = a - b;
  u[5 * step] = g2;
}

/* Transformed filters of output channel k, input channels [c0, c0 + n)
 * (n <= LANES): u[xi * xi_stride + c - c0]. */
WINO_INLINE void filter_lanes_body(const wino_plan *p, const float *w, int k, int c0, int n,
                                   float *u, size_t xi_stride) {
  float g[9 * LANES] __attribute__((aligned(64)));
  v16 t[WT * 3], o[NXI];
  const float *base = w + (size_t)k * p->stride_out + (size_t)c0 * p->stride_in;
  if (n < LANES)
    memset(g, 0, sizeof g);
  /* Tap i of lane l sits at g[i * LANES + l]; flipped filters read the
   * taps in reverse. */
  const int f = p->flip ? 8 : 0, d = p->flip ? -1 : 1;
  for (int l = 0; l < n; l++) {
    const float *src = base + (size_t)l * p->stride_in + f;
    g[l] = src[0];
    g[LANES + l] = src[d];
    g[2 * LANES + l] = src[2 * d];
    g[3 * LANES + l] = src[3 * d];
    g[4 * LANES + l] = src[4 * d];
    g[5 * LANES + l] = src[5 * d];
    g[6 * LANES + l] = src[6 * d];
    g[7 * LANES + l] = src[7 * d];
    g[8 * LANES + l] = src[8 * d];
  }
  for (int j = 0; j < 3; j++)
    filter_1d(ld16(g + j * LANES), ld16(g + (3 + j) * LANES), ld16(g + (6 + j) * LANES), t + j,
              3);
  for (int a = 0; a < WT; a++)
    filter_1d(t[a * 3], t[a * 3 + 1], t[a * 3 + 2], o + a * WT, 1);
  if (n == LANES) {
    for (int xi = 0; xi < NXI; xi++)
      st16(u + xi * xi_stride, o[xi]);
  } else {
    for (int xi = 0; xi < NXI; xi++) {
      float tmp[LANES] __attribute__((aligned(64)));
      st16(tmp, o[xi]);
      memcpy(u + xi * xi_stride, tmp, (size_t)n * sizeof(float));
    }
  }
}

/* ---- input transform: V = B^T d B, 16 tiles per vector ---- */

WINO_INLINE void input_1d(v16 d0, v16 d1, v16 d2, v16 d3, v16 d4, v16 d5, v16 *o, int step) {
  o[0] = 4.0f * d0 - 5.0f * d2 + d4;
  o[step] = d3 + d4 - 4.0f * (d1 + d2);
  o[2 * step] = 4.0f * (d1 - d2) + d4 - d3;
  o[3 * step] = 2.0f * (d3 - d1) + d4 - d2;
  o[4 * step] = 2.0f * (d1 - d3) + d4 - d2;
  o[5 * step] = 4.0f * d1 - 5.0f * d3 + d5;
}

/* Gathers the 6x6 input blocks of tiles [t0, t0 + LANES) of one channel
 * into d[point][lane]; positions outside the image and lanes past the last
 * tile read zero. */
WINO_INLINE void gather_tiles(const wino_plan *p, const float *img, long t0, float *d) {
  for (int l = 0; l < LANES; l++) {
    long t = t0 + l;
    if (t >= p->tiles) {
      for (int i = 0; i < NXI; i++)
        d[i * LANES + l] = 0.0f;
      continue;
    }
    int y0 = (int)(t / p->tiles_w) * 4 - p->pad_h;
    int x0 = (int)(t % p->tiles_w) * 4 - p->pad_w;
    if (y0 >= 0 && x0 >= 0 && y0 + WT <= p->height && x0 + WT <= p->width) {
      const float *src = img + (size_t)y0 * p->width + x0;
      for (int i = 0; i < WT; i++, src += p->width)
        for (int j = 0; j < WT; j++)
          d[(i * WT + j) * LANES + l] = src[j];
      continue;
    }
    for (int i = 0; i < WT; i++) {
      int y = y0 + i;
      int row_in = y >= 0 && y < p->height;
      for (int j = 0; j < WT; j++) {
        int x = x0 + j;
        d[(i * WT + j) * LANES + l] =
            row_in && x >= 0 && x < p->width ? img[(size_t)y * p->width + x] : 0.0f;
      }
    }
  }
}

/* V[xi][panel][c][lane] for one channel and one panel. */
WINO_INLINE void input_panel_body(const wino_plan *p, const float *img, long t0, float *v,
                                  size_t xi_stride) {
  float d[NXI * LANES] __attribute__((aligned(64)));
  v16 r[NXI], o[NXI];
  gather_tiles(p, img, t0, d);
  for (int i = 0; i < WT; i++) {
    const float *row = d + i * WT * LANES;
    input_1d(ld16(row), ld16(row + LANES), ld16(row + 2 * LANES), ld16(row + 3 * LANES),
             ld16(row + 4 * LANES), ld16(row + 5 * LANES), r + i * WT, 1);
  }
  for (int b = 0; b < WT; b++)
    input_1d(r[b], r[WT + b], r[2 * WT + b], r[3 * WT + b], r[4 * WT + b], r[5 * WT + b], o + b,
             WT);
  for (int xi = 0; xi < NXI; xi++)
    st16(v + xi * xi_stride, o[xi]);
}

/* ---- the 36 products: a 6 x 16 register block over all channels ---- */

/* m (6 x 16, rows ldm apart) = (or +=, when acc) u (6 rows of kc values,
 * ldu apart) times v (kc x 16). */
WINO_INLINE void product_block_body(int kc, const float *u, size_t ldu, const float *v, float *m,
                                    size_t ldm, int acc) {
  v8 a0l = {0}, a0h = {0}, a1l = {0}, a1h = {0}, a2l = {0}, a2h = {0};
  v8 a3l = {0}, a3h = {0}, a4l = {0}, a4h = {0}, a5l = {0}, a5h = {0};
  const float *u0 = u, *u1 = u + ldu, *u2 = u + 2 * ldu, *u3 = u + 3 * ldu;
  const float *u4 = u + 4 * ldu, *u5 = u + 5 * ldu;
  for (int c = 0; c < kc; c++, v += LANES) {
    v8 bl = ld8(v), bh = ld8(v + 8);
    float x;
    x = u0[c], a0l += x * bl, a0h += x * bh;
    x = u1[c], a1l += x * bl, a1h += x * bh;
    x = u2[c], a2l += x * bl, a2h += x * bh;
    x = u3[c], a3l += x * bl, a3h += x * bh;
    x = u4[c], a4l += x * bl, a4h += x * bh;
    x = u5[c], a5l += x * bl, a5h += x * bh;
  }
  if (acc) {
    float *r = m;
    a0l += ld8(r), a0h += ld8(r + 8), r += ldm;
    a1l += ld8(r), a1h += ld8(r + 8), r += ldm;
    a2l += ld8(r), a2h += ld8(r + 8), r += ldm;
    a3l += ld8(r), a3h += ld8(r + 8), r += ldm;
    a4l += ld8(r), a4h += ld8(r + 8), r += ldm;
    a5l += ld8(r), a5h += ld8(r + 8);
  }
  st8(m, a0l), st8(m + 8, a0h), m += ldm;
  st8(m, a1l), st8(m + 8, a1h), m += ldm;
  st8(m, a2l), st8(m + 8, a2h), m += ldm;
  st8(m, a3l), st8(m + 8, a3h), m += ldm;
  st8(m, a4l), st8(m + 8, a4h), m += ldm;
  st8(m, a5l), st8(m + 8, a5h);
}

/* ---- output transform: Y = A^T M A, plus bias ---- */

WINO_INLINE void output_1d(v16 m0, v16 m1, v16 m2, v16 m3, v16 m4, v16 m5, v16 *o, int step) {
  v16 s12 = m1 + m2, d12 = m1 - m2, s34 = m3 + m4, d34 = m3 - m4;
  o[0] = m0 + s12 + s34;
  o[step] = d12 + 2.0f * d34;
  o[2 * step] = s12 + 4.0f * s34;
  o[3 * step] = d12 + 8.0f * d34 + m5;
}

/* Output channel plane out gets tiles [t0, t0 + LANES) from M (m points at
 * the panel's first lane of point 0; points are xi_stride apart). */
WINO_INLINE void output_panel_body(const wino_plan *p, const float *m, size_t xi_stride,
                                   float bias, long t0, float *out) {
  v16 s[WT * 4], o[16];
  float y[16 * LANES] __attribute__((aligned(64)));
  for (int i = 0; i < WT; i++) {
    const float *row = m + (size_t)i * WT * xi_stride;
    output_1d(ld16(row), ld16(row + xi_stride), ld16(row + 2 * xi_stride),
              ld16(row + 3 * xi_stride), ld16(row + 4 * xi_stride), ld16(row + 5 * xi_stride),
              s + i * 4, 1);
  }
  for (int q = 0; q < 4; q++)
    output_1d(s[q], s[4 + q], s[8 + q], s[12 + q], s[16 + q], s[20 + q], o + q, 4);
  for (int i = 0; i < 16; i++)
    st16(y + i * LANES, o[i] + bias);
  for (int l = 0; l < LANES; l++) {
    long t = t0 + l;
    if (t >= p->tiles)
      break;
    int oy = (int)(t / p->tiles_w) * 4, ox = (int)(t % p->tiles_w) * 4;
    int rows = p->out_h - oy < 4 ? p->out_h - oy : 4;
    int cols = p->out_w - ox < 4 ? p->out_w - ox : 4;
    float *dst = out + (size_t)oy * p->out_w + ox;
    for (int i = 0; i < rows; i++, dst += p->out_w)
      for (int j = 0; j < cols; j++)
        dst[j] = y[(i * 4 + j) * LANES + l];
  }
}

/* ---- ISA variants ---- */

typedef struct wino_kernels {
  void (*filter_lanes)(const wino_plan *p, const float *w, int k, int c0, int n, float *u,
                       size_t xi_stride);
  void (*input_panel)(const wino_plan *p, const float *img, long t0, float *v, size_t xi_stride);
  void (*product_block)(int kc, const float *u, size_t ldu, const float *v, float *m,
                        size_t ldm, int acc);
  void (*output_panel)(const wino_plan *p, const float *m, size_t xi_stride, float bias, long t0,
                       float *out);
} wino_kernels;

#define WINO_VARIANT(suffix, attr)                                                          \
  attr static void filter_lanes_##suffix(const wino_plan *p, const float *w, int k, int c0,  \
                                         int n, float *u, size_t xi_stride) {               \
    filter_lanes_body(p, w, k, c0, n, u, xi_stride);                                        \
  }                                                                                         \
  attr static void input_panel_##suffix(const wino_plan *p, const float *img, long t0,      \
                                        float *v, size_t xi_stride) {                       \
    input_panel_body(p, img, t0, v, xi_stride);                                            \
  }                                                                                         \
  attr static void product_block_##suffix(int kc, const float *u, size_t ldu, const float *v, \
                                          float *m, size_t ldm, int acc) {                  \
    product_block_body(kc, u, ldu, v, m, ldm, acc);                                         \
  }                                                                                         \
  attr static void output_panel_##suffix(const wino_plan *p, const float *m,                \
                                         size_t xi_stride, float bias, long t0, float *out) { \
    output_panel_body(p, m, xi_stride, bias, t0, out);                                      \
  }                                                                                         \
  static const wino_kernels kernels_##suffix = {filter_lanes_##suffix, input_panel_##suffix,   \
                                                product_block_##suffix, output_panel_##suffix};

WINO_VARIANT(generic, )
#if defined(__x86_64__) && defined(__GNUC__)
#define WINO_HAVE_AVX2 1
WINO_VARIANT(avx2, __attribute__((target("avx2,fma"))))
#endif

/* CREMA_SIMD=generic forces the portable kernels (to test them on any
 * machine). */
static const wino_kernels *pick_kernels(void) {
  const char *simd = getenv("CREMA_SIMD");
  if (simd && !strcmp(simd, "generic"))
    return &kernels_generic;
#ifdef WINO_HAVE_AVX2
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    return &kernels_avx2;
#endif
  return &kernels_generic;
}

/* ---- the blocked loop, shared by the team ---- */

typedef struct wino_job {
  const wino_plan *p;
  const wino_kernels *kern;
  const float *in, *w, *bias;
  float *out, *ws;
} wino_job;

/* V for tiles [t0, t0 + panels * LANES), split by input channel. */
static void block_inputs(const wino_job *j, const float *in, long t0, int panels, float *v,
                         int tid, int nth) {
  const wino_plan *p = j->p;
  const size_t plane = (size_t)p->height * p->width;
  const size_t xi_stride = (size_t)(p->tile_block / LANES) * p->cin * LANES;
  long lo, hi;
  par_split(p->cin, tid, nth, &lo, &hi);
  for (long c = lo; c < hi; c++)
    for (int pn = 0; pn < panels; pn++)
      j->kern->input_panel(p, in + c * plane, t0 + (long)pn * LANES,
                           v + ((size_t)pn * p->cin + c) * LANES, xi_stride);
}

/* A member's chunk of output channels [k0, k0 + rows) (rows <= KCH, a
 * multiple of KR) for input channels [c0, c0 + kc): U[xi][r][c]; rows past
 * kout are zero. */
static void chunk_filters(const wino_job *j, const float *w, int k0, int rows, int c0, int kc,
                          float *u) {
  const wino_plan *p = j->p;
  const size_t xi_stride = (size_t)KCH * p->kc;
  for (int r = 0; r < rows; r++) {
    float *row = u + (size_t)r * p->kc;
    if (k0 + r >= p->kout) {
      for (int xi = 0; xi < NXI; xi++)
        memset(row + xi * xi_stride, 0, (size_t)kc * sizeof(float));
      continue;
    }
    for (int c = 0; c < kc; c += LANES)
      j->kern->filter_lanes(p, w, k0 + r, c0 + c, kc - c < LANES ? kc - c : LANES, row + c,
                            xi_stride);
  }
}

/* M[xi][r][tile] (+)= U[xi][r][c] V[xi][c][tile] over one pass of input
 * channels. */
static void chunk_products(const wino_job *j, int rows, int c0, int kc, int panels,
                           const float *u, const float *v, float *m) {
  const wino_plan *p = j->p;
  const size_t panels_max = (size_t)p->tile_block / LANES;
  for (int xi = 0; xi < NXI; xi++) {
    const float *uxi = u + (size_t)xi * KCH * p->kc;
    float *mxi = m + (size_t)xi * KCH * p->tile_block;
    for (int pn = 0; pn < panels; pn++) {
      const float *vp = v + (((size_t)xi * panels_max + pn) * p->cin + c0) * LANES;
      for (int r = 0; r < rows; r += KR)
        j->kern->product_block(kc, uxi + (size_t)r * p->kc, (size_t)p->kc, vp,
                               mxi + (size_t)r * p->tile_block + (size_t)pn * LANES,
                               (size_t)p->tile_block, c0 > 0);
    }
  }
}

static void chunk_outputs(const wino_job *j, int k0, int rows, long t0, int panels,
                          const float *m, const float *bias, float *out) {
  const wino_plan *p = j->p;
  const size_t plane = (size_t)p->out_h * p->out_w;
  const size_t xi_stride = (size_t)KCH * p->tile_block;
  for (int r = 0; r < rows && k0 + r < p->kout; r++) {
    float bk = bias ? bias[k0 + r] : 0.0f;
    for (int pn = 0; pn < panels; pn++)
      j->kern->output_panel(p, m + (size_t)r * p->tile_block + (size_t)pn * LANES, xi_stride, bk,
                            t0 + (long)pn * LANES, out + (size_t)(k0 + r) * plane);
  }
}

/* The team shares the transformed inputs of a block of tiles; then each
 * member takes its own output channels through filters, products and
 * output transform, in chunks small enough to stay in its caches. */
static void wino_body(par_team *team, int tid, int nth, void *ctx) {
  const wino_job *j = ctx;
  const wino_plan *p = j->p;
  float *v = align_line(j->ws);
  float *u = v + v_floats(p) + (size_t)tid * (u_floats(p) + m_floats(p));
  float *m = u + u_floats(p);
  long kp_lo, kp_hi;
  par_split((p->kout + KR - 1) / KR, tid, nth, &kp_lo, &kp_hi);
  for (int grp = 0; grp < p->group; grp++) {
    const float *in = j->in + (size_t)grp * p->cin * p->height * p->width;
    const float *w = j->w + (size_t)grp * p->group_stride;
    const float *bias = j->bias ? j->bias + (size_t)grp * p->kout : NULL;
    float *out = j->out + (size_t)grp * p->kout * p->out_h * p->out_w;
    for (long t0 = 0; t0 < p->tiles; t0 += p->tile_block) {
      long nt = p->tiles - t0 < p->tile_block ? p->tiles - t0 : p->tile_block;
      int panels = (int)((nt + LANES - 1) / LANES);
      block_inputs(j, in, t0, panels, v, tid, nth);
      par_sync(team);
      for (long kp = kp_lo; kp < kp_hi; kp += KCH / KR) {
        int k0 = (int)kp * KR;
        int rows = (int)(kp_hi - kp < KCH / KR ? kp_hi - kp : KCH / KR) * KR;
        for (int c0 = 0; c0 < p->cin; c0 += p->kc) {
          int kc = p->cin - c0 < p->kc ? p->cin - c0 : p->kc;
          chunk_filters(j, w, k0, rows, c0, kc, u);
          chunk_products(j, rows, c0, kc, panels, u, v, m);
        }
        chunk_outputs(j, k0, rows, t0, panels, m, bias, out);
      }
      /* V is rewritten for the next block only once everyone is done. */
      par_sync(team);
    }
  }
}

static void wino_run(const wino_plan *p, const float *in, const float *w, const float *bias,
                     float *out, float *ws) {
  wino_job j = {p, pick_kernels(), in, w, bias, out, ws};
  int nth = p->threads;
  int panels = (p->kout + KR - 1) / KR;
  if (nth > panels)
    nth = panels;
  /* Starting a thread and meeting at barriers costs tens of microseconds
   * (much more on a loaded machine): small convolutions run alone. */
  double work = (double)NXI * panels * KR * p->cin * (double)p->tiles * p->group;
  if (work < WINO_PARALLEL_MIN)
    nth = 1;
  par_run(nth, wino_body, &j);
}

/* Measured on VGG-16's layers: with AVX2, F(4x4,3x3) takes 0.5-0.8x
 * gemm's time once both channel counts fill the 6 x 16 product block and
 * the image has a few rows of tiles; with 3 input channels (conv1_1) the
 * transforms dominate and gemm wins, at 14x14 they tie.  The portable
 * kernels are far slower than OpenBLAS, so without AVX2 gemm stays. */
static int winograd_preferred(const conv_geom *g) {
  const im2col_shape *s = &g->in;
  return pick_kernels() != &kernels_generic && winograd_supports(g) &&
         s->channels / g->group >= 16 &&
         g->out_channels / g->group >= 16 && s->out_h >= 14 && s->out_w >= 14;
}

static void winograd_forward(const conv_geom *g, const float *in, const float *w,
                             const float *bias, float *out, float *ws) {
  wino_plan p;
  plan_forward(g, &p);
  wino_run(&p, in, w, bias, out, ws);
}

static void winograd_backward_data(const conv_geom *g, const float *out_diff, const float *w,
                                   float *in_diff, float *ws) {
  wino_plan p;
  plan_backward_data(g, &p);
  wino_run(&p, out_diff, w, NULL, in_diff, ws);
}

const conv_engine conv_engine_winograd = {
    .name = "winograd",
    .supports = winograd_supports,
    .preferred = winograd_preferred,
    .workspace = winograd_workspace,
    .forward = winograd_forward,
    .backward_data = winograd_backward_data,
    .backward_weights = NULL,
};
