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

/* Vector values only cross always-inlined helpers, never a real call. */
#pragma GCC diagnostic ignored "-Wpsabi"

#define WINO_INLINE static inline __attribute__((always_inline))

WINO_INLINE v8 ld8(const float *p) {
  v8 v;
  memcpy(&v, p, sizeof v);
  return v;
}

WINO_INLINE void st8(float *p, v8 v) { memcpy(p, &v, sizeof v); }

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

/* ---- shuffles: GCC vector builtins, which become vunpck/vshufps/
 * vperm2f128 with AVX2 and pairs of SSE shuffles in the portable build ---- */

typedef int v8i __attribute__((vector_size(32)));
typedef float v4 __attribute__((vector_size(16)));

WINO_INLINE v8 unpack_lo(v8 a, v8 b) {
  return __builtin_shuffle(a, b, (v8i){0, 8, 1, 9, 4, 12, 5, 13});
}

WINO_INLINE v8 unpack_hi(v8 a, v8 b) {
  return __builtin_shuffle(a, b, (v8i){2, 10, 3, 11, 6, 14, 7, 15});
}

/* Low (high) pair of each 128-bit half of a, then of b. */
WINO_INLINE v8 pairs_lo(v8 a, v8 b) {
  return __builtin_shuffle(a, b, (v8i){0, 1, 8, 9, 4, 5, 12, 13});
}

WINO_INLINE v8 pairs_hi(v8 a, v8 b) {
  return __builtin_shuffle(a, b, (v8i){2, 3, 10, 11, 6, 7, 14, 15});
}

WINO_INLINE v8 halves_lo(v8 a, v8 b) {
  return __builtin_shuffle(a, b, (v8i){0, 1, 2, 3, 8, 9, 10, 11});
}

WINO_INLINE v8 halves_hi(v8 a, v8 b) {
  return __builtin_shuffle(a, b, (v8i){4, 5, 6, 7, 12, 13, 14, 15});
}

/* d[j] = column j of the 8 x 8 matrix whose rows are r[0..7] (callers
 * that use fewer columns let the compiler drop the rest). */
WINO_INLINE void transpose8(const v8 *r, v8 *d) {
  v8 t0 = unpack_lo(r[0], r[1]), t1 = unpack_hi(r[0], r[1]);
  v8 t2 = unpack_lo(r[2], r[3]), t3 = unpack_hi(r[2], r[3]);
  v8 t4 = unpack_lo(r[4], r[5]), t5 = unpack_hi(r[4], r[5]);
  v8 t6 = unpack_lo(r[6], r[7]), t7 = unpack_hi(r[6], r[7]);
  v8 u0 = pairs_lo(t0, t2), u1 = pairs_hi(t0, t2), u2 = pairs_lo(t1, t3), u3 = pairs_hi(t1, t3);
  v8 u4 = pairs_lo(t4, t6), u5 = pairs_hi(t4, t6), u6 = pairs_lo(t5, t7), u7 = pairs_hi(t5, t7);
  d[0] = halves_lo(u0, u4);
  d[1] = halves_lo(u1, u5);
  d[2] = halves_lo(u2, u6);
  d[3] = halves_lo(u3, u7);
  d[4] = halves_hi(u0, u4);
  d[5] = halves_hi(u1, u5);
  d[6] = halves_hi(u2, u6);
  d[7] = halves_hi(u3, u7);
}

/* ---- filter transform: U = G g G^T, 8 input channels per vector ---- */

/* Component a of G times the column (g0, g1, g2). */
WINO_INLINE v8 filter_comp(int a, v8 g0, v8 g1, v8 g2) {
  switch (a) {
  case 0:
    return 0.25f * g0;
  case 1:
    return (-1.0f / 6) * (g0 + g1 + g2);
  case 2:
    return (-1.0f / 6) * (g0 + g2 - g1);
  case 3:
    return (1.0f / 24) * g0 + (1.0f / 12) * g1 + (1.0f / 6) * g2;
  case 4:
    return (1.0f / 24) * g0 - (1.0f / 12) * g1 + (1.0f / 6) * g2;
  default:
    return g2;
  }
}

/* Transformed filters of output channel k, input channels [c0, c0 + n)
 * (n <= 8): u[xi * xi_stride + c - c0]. */
WINO_INLINE void filter_group_body(const wino_plan *p, const float *w, int k, int c0, int n,
                                   float *u, size_t xi_stride) {
  const float *base = w + (size_t)k * p->stride_out + (size_t)c0 * p->stride_in;
  const size_t s = p->stride_in;
  v8 g[9];
  if (n == 8) {
    /* Eight consecutive taps of each filter (1..8 when flipped), turned
     * into one vector per tap; the ninth tap is gathered. */
    v8 r[8], t[8];
    const int off = p->flip ? 1 : 0, last = p->flip ? 0 : 8;
    for (int l = 0; l < 8; l++)
      r[l] = ld8(base + l * s + off);
    transpose8(r, t);
    v8 x = {base[last],         base[s + last],     base[2 * s + last], base[3 * s + last],
            base[4 * s + last], base[5 * s + last], base[6 * s + last], base[7 * s + last]};
    for (int i = 0; i < 8; i++)
      g[i] = p->flip ? t[7 - i] : t[i];
    g[8] = x;
  } else {
    float tap[9][8] __attribute__((aligned(32)));
    memset(tap, 0, sizeof tap);
    const int f = p->flip ? 8 : 0, d = p->flip ? -1 : 1;
    for (int l = 0; l < n; l++)
      for (int i = 0; i < 9; i++)
        tap[i][l] = base[l * s + f + i * d];
    for (int i = 0; i < 9; i++)
      g[i] = ld8(tap[i]);
  }
  for (int a = 0; a < WT; a++) {
    /* Row a of G g, then times G^T: six values streamed out. */
    v8 h0 = filter_comp(a, g[0], g[3], g[6]);
    v8 h1 = filter_comp(a, g[1], g[4], g[7]);
    v8 h2 = filter_comp(a, g[2], g[5], g[8]);
    for (int b = 0; b < WT; b++) {
      v8 o = filter_comp(b, h0, h1, h2);
      float *dst = u + (size_t)(a * WT + b) * xi_stride;
      if (n == 8) {
        st8(dst, o);
      } else {
        float tmp[8] __attribute__((aligned(32)));
        st8(tmp, o);
        memcpy(dst, tmp, (size_t)n * sizeof(float));
      }
    }
  }
}

/* ---- input transform: V = B^T d B, 8 tiles per vector ---- */

WINO_INLINE void input_1d(v8 d0, v8 d1, v8 d2, v8 d3, v8 d4, v8 d5, v8 *o, int step) {
  o[0] = 4.0f * d0 - 5.0f * d2 + d4;
  o[step] = d3 + d4 - 4.0f * (d1 + d2);
  o[2 * step] = 4.0f * (d1 - d2) + d4 - d3;
  o[3 * step] = 2.0f * (d3 - d1) + d4 - d2;
  o[4 * step] = 2.0f * (d1 - d3) + d4 - d2;
  o[5 * step] = 4.0f * d1 - 5.0f * d3 + d5;
}

/* Zero rows for lanes past the last tile. */
static const float zero_row[8];

/* Input tile at (y0, x0) in a zero-padded 6 x 8 patch. */
WINO_INLINE void input_patch(const wino_plan *p, const float *img, int y0, int x0, float *patch) {
  for (int i = 0; i < WT; i++) {
    int y = y0 + i;
    int row_in = y >= 0 && y < p->height;
    for (int j = 0; j < 8; j++) {
      int x = x0 + j;
      patch[i * 8 + j] = row_in && x >= 0 && x < p->width ? img[(size_t)y * p->width + x] : 0.0f;
    }
  }
}

/* V[xi] for tiles [t0, t0 + n) (n <= 8) of one channel: 8 lanes at
 * v + xi * xi_stride, zero past n.  Each image row of the 8 tiles is
 * loaded as 8 vectors of 8 pixels and transposed into 6 pixel-column
 * vectors; tiles that reach out of the image read a padded copy. */
WINO_INLINE void input_group_body(const wino_plan *p, const float *img, long t0, int n, float *v,
                                  size_t xi_stride) {
  float patch[8][WT * 8] __attribute__((aligned(32)));
  const float *src[8];
  size_t ld[8];
  long ty = t0 / p->tiles_w, tx = t0 % p->tiles_w;
  for (int l = 0; l < 8; l++) {
    if (l >= n) {
      src[l] = zero_row;
      ld[l] = 0;
      continue;
    }
    int y0 = (int)ty * 4 - p->pad_h, x0 = (int)tx * 4 - p->pad_w;
    if (y0 >= 0 && x0 >= 0 && y0 + WT <= p->height && x0 + 8 <= p->width) {
      src[l] = img + (size_t)y0 * p->width + x0;
      ld[l] = (size_t)p->width;
    } else {
      input_patch(p, img, y0, x0, patch[l]);
      src[l] = patch[l];
      ld[l] = 8;
    }
    if (++tx == p->tiles_w)
      tx = 0, ty++;
  }
  v8 h[NXI];
  for (int i = 0; i < WT; i++) {
    v8 r[8], d[8];
    for (int l = 0; l < 8; l++)
      r[l] = ld8(src[l] + i * ld[l]);
    transpose8(r, d);
    input_1d(d[0], d[1], d[2], d[3], d[4], d[5], h + i * WT, 1);
  }
  for (int b = 0; b < WT; b++) {
    v8 o[WT];
    input_1d(h[b], h[WT + b], h[2 * WT + b], h[3 * WT + b], h[4 * WT + b], h[5 * WT + b], o, 1);
    for (int a = 0; a < WT; a++)
      st8(v + (size_t)(a * WT + b) * xi_stride, o[a]);
  }
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

WINO_INLINE void output_1d(v8 m0, v8 m1, v8 m2, v8 m3, v8 m4, v8 m5, v8 *o) {
  v8 s12 = m1 + m2, d12 = m1 - m2, s34 = m3 + m4, d34 = m3 - m4;
  o[0] = m0 + s12 + s34;
  o[1] = d12 + 2.0f * d34;
  o[2] = s12 + 4.0f * s34;
  o[3] = d12 + 8.0f * d34 + m5;
}

WINO_INLINE void st4(float *p, v4 v) { memcpy(p, &v, sizeof v); }

/* Output channel plane out gets tiles [t0, t0 + n) (n <= 8) from M (m
 * points at the group's first lane of point 0; points are xi_stride
 * apart).  Each output row of the 8 tiles is transposed into one 4-pixel
 * store per tile; tiles cut by the image's edge go through a patch. */
WINO_INLINE void output_group_body(const wino_plan *p, const float *m, size_t xi_stride,
                                   float bias, long t0, int n, float *out) {
  float patch[8][16] __attribute__((aligned(32)));
  float *dst[8];
  size_t ld[8];
  int rows[8], cols[8];
  long ty = t0 / p->tiles_w, tx = t0 % p->tiles_w;
  for (int l = 0; l < 8; l++) {
    rows[l] = cols[l] = 0;
    if (l >= n) {
      dst[l] = patch[l];
      ld[l] = 4;
      continue;
    }
    int oy = (int)ty * 4, ox = (int)tx * 4;
    rows[l] = p->out_h - oy < 4 ? p->out_h - oy : 4;
    cols[l] = p->out_w - ox < 4 ? p->out_w - ox : 4;
    if (rows[l] == 4 && cols[l] == 4) {
      dst[l] = out + (size_t)oy * p->out_w + ox;
      ld[l] = (size_t)p->out_w;
    } else {
      dst[l] = patch[l];
      ld[l] = 4;
    }
    if (++tx == p->tiles_w)
      tx = 0, ty++;
  }
  v8 s[4 * WT];
  for (int b = 0; b < WT; b++) {
    v8 o[4];
    output_1d(ld8(m + (size_t)b * xi_stride), ld8(m + (size_t)(WT + b) * xi_stride),
              ld8(m + (size_t)(2 * WT + b) * xi_stride), ld8(m + (size_t)(3 * WT + b) * xi_stride),
              ld8(m + (size_t)(4 * WT + b) * xi_stride), ld8(m + (size_t)(5 * WT + b) * xi_stride),
              o);
    for (int q = 0; q < 4; q++)
      s[q * WT + b] = o[q];
  }
  for (int q = 0; q < 4; q++) {
    v8 o[4];
    const v8 *sq = s + q * WT;
    output_1d(sq[0], sq[1], sq[2], sq[3], sq[4], sq[5], o);
    for (int j = 0; j < 4; j++)
      o[j] += bias;
    v8 lo01 = unpack_lo(o[0], o[1]), lo23 = unpack_lo(o[2], o[3]);
    v8 hi01 = unpack_hi(o[0], o[1]), hi23 = unpack_hi(o[2], o[3]);
    /* Tile l's row q in the low half of r[l % 4] (l < 4), the high half
     * for l + 4. */
    v8 r[4] = {pairs_lo(lo01, lo23), pairs_hi(lo01, lo23), pairs_lo(hi01, hi23),
               pairs_hi(hi01, hi23)};
    for (int l = 0; l < 4; l++) {
      st4(dst[l] + q * ld[l], __builtin_shufflevector(r[l], r[l], 0, 1, 2, 3));
      st4(dst[l + 4] + q * ld[l + 4], __builtin_shufflevector(r[l], r[l], 4, 5, 6, 7));
    }
  }
  for (int l = 0; l < n; l++) {
    if (dst[l] != patch[l])
      continue;
    float *o = out + (size_t)((t0 + l) / p->tiles_w) * 4 * p->out_w +
               (size_t)((t0 + l) % p->tiles_w) * 4;
    for (int i = 0; i < rows[l]; i++)
      memcpy(o + (size_t)i * p->out_w, patch[l] + i * 4, (size_t)cols[l] * sizeof(float));
  }
}

/* ---- ISA variants ---- */

typedef struct wino_kernels {
  void (*filter_group)(const wino_plan *p, const float *w, int k, int c0, int n, float *u,
                       size_t xi_stride);
  void (*input_group)(const wino_plan *p, const float *img, long t0, int n, float *v,
                      size_t xi_stride);
  void (*product_block)(int kc, const float *u, size_t ldu, const float *v, float *m,
                        size_t ldm, int acc);
  void (*output_group)(const wino_plan *p, const float *m, size_t xi_stride, float bias, long t0,
                       int n, float *out);
} wino_kernels;

#define WINO_VARIANT(suffix, attr)                                                          \
  attr static void filter_group_##suffix(const wino_plan *p, const float *w, int k, int c0,  \
                                         int n, float *u, size_t xi_stride) {               \
    filter_group_body(p, w, k, c0, n, u, xi_stride);                                        \
  }                                                                                         \
  attr static void input_group_##suffix(const wino_plan *p, const float *img, long t0, int n, \
                                        float *v, size_t xi_stride) {                       \
    input_group_body(p, img, t0, n, v, xi_stride);                                          \
  }                                                                                         \
  attr static void product_block_##suffix(int kc, const float *u, size_t ldu, const float *v, \
                                          float *m, size_t ldm, int acc) {                  \
    product_block_body(kc, u, ldu, v, m, ldm, acc);                                         \
  }                                                                                         \
  attr static void output_group_##suffix(const wino_plan *p, const float *m,                \
                                         size_t xi_stride, float bias, long t0, int n,      \
                                         float *out) {                                      \
    output_group_body(p, m, xi_stride, bias, t0, n, out);                                   \
  }                                                                                         \
  static const wino_kernels kernels_##suffix = {filter_group_##suffix, input_group_##suffix,   \
                                                product_block_##suffix, output_group_##suffix};

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
    for (int g = 0; g < 2 * panels; g++) {
      long tg = t0 + (long)g * 8;
      int n = p->tiles - tg < 8 ? (int)(p->tiles - tg) : 8;
      j->kern->input_group(p, in + c * plane, tg, n > 0 ? n : 0,
                           v + ((size_t)(g / 2) * p->cin + c) * LANES + g % 2 * 8, xi_stride);
    }
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
    for (int c = 0; c < kc; c += 8)
      j->kern->filter_group(p, w, k0 + r, c0 + c, kc - c < 8 ? kc - c : 8, row + c, xi_stride);
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
    for (int g = 0; g < 2 * panels && t0 + g * 8 < p->tiles; g++) {
      long tg = t0 + (long)g * 8;
      int n = p->tiles - tg < 8 ? (int)(p->tiles - tg) : 8;
      j->kern->output_group(p, m + (size_t)r * p->tile_block + (size_t)g * 8, xi_stride, bk, tg,
                            n, out + (size_t)(k0 + r) * plane);
    }
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
