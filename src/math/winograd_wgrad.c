/* Winograd F(4x4,3x3) weight gradient.
 *
 * Per tile the forward pass computes Y = A^T [U . V] A with U = G g G^T and
 * V = B^T d B, so dL/dU = (A dY A^T) . V summed over tiles, and
 * dL/dg = G^T (dL/dU) G.  The sum over tiles is, for each of the 36
 * transformed points xi, a matrix product
 *     dU[xi] (K x C) = Mdy[xi] (K x tiles) * V[xi]^T (tiles x C),
 * which takes 36 multiply-adds per tile and channel pair where im2col +
 * SGEMM takes 144 (9 taps x 16 outputs).
 *
 * Work goes in blocks of tiles so the scratch stays a few MB at any image
 * size, and in passes over chunks of output channels so dU stays bounded
 * for wide layers; dU accumulates over a pass's blocks and is mapped back
 * to the 3x3 filters once per pass.  The team transforms a block's inputs
 * and output gradients together, then splits the 36 products by xi (an
 * even split for 2, 3, 4 or 6 threads, and no two members write the same
 * dU).  The transforms write the operands in the layout the product kernel
 * streams: V as panels of 16 input channels per tile, Mdy as rows of tiles
 * per output channel.
 *
 * The kernels are written with GCC vector types and compiled for AVX2+FMA
 * and for the baseline ISA; the choice is made at run time. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "math/parallel.h"
#include "math/winograd_wgrad.h"

#define WT 6     /* transformed tile side */
#define NXI 36   /* transformed points */
#define LANES 16 /* input channels per V panel, tiles per Mdy vector */
#define KR 6     /* output channels per product block */

/* Scratch budgets (floats): transformed inputs of a block (8 MB),
 * transformed output gradients of a block, and the dU of a pass; 15 MB in
 * all. */
#define WG_V_FLOATS ((size_t)2 << 20)
#define WG_M_FLOATS ((size_t)3 << 18)
#define WG_DU_FLOATS ((size_t)1 << 20)
/* Tiles per block at most: keeps one xi's operands of a block in L2. */
#define WG_MAX_TILE_BLOCK 256
/* Multiply-adds below which the team is not worth starting. */
#define WG_PARALLEL_MIN 2e7

typedef float v8 __attribute__((vector_size(32)));
typedef float v16 __attribute__((vector_size(64)));

/* Vector values only cross always-inlined helpers, never a real call. */
#pragma GCC diagnostic ignored "-Wpsabi"

#define WG_INLINE static inline __attribute__((always_inline))

WG_INLINE v8 ld8(const float *p) {
  v8 v;
  memcpy(&v, p, sizeof v);
  return v;
}

WG_INLINE void st8(float *p, v8 v) { memcpy(p, &v, sizeof v); }

WG_INLINE v16 ld16(const float *p) {
  v16 v;
  memcpy(&v, p, sizeof v);
  return v;
}

WG_INLINE void st16(float *p, v16 v) { memcpy(p, &v, sizeof v); }

typedef struct wg_plan {
  int group;
  int cin, kout;     /* channels per group */
  int cpad;          /* cin rounded up to whole panels */
  int height, width; /* input */
  int pad_h, pad_w;
  int out_h, out_w;
  int tiles_w;
  long tiles;
  int tile_block; /* tiles per block, a multiple of LANES */
  int kch;        /* output channels per pass, a multiple of KR */
  int threads;
} wg_plan;

static size_t round_up(size_t n, size_t m) { return (n + m - 1) / m * m; }

static size_t clamp_multiple(size_t budget, size_t per, size_t m, size_t lo, size_t hi) {
  size_t n = budget / per / m * m;
  if (n < lo)
    n = lo;
  return n > hi ? hi : n;
}

static void plan_of(const conv_geom *g, wg_plan *p) {
  const im2col_shape *s = &g->in;
  p->group = g->group;
  p->cin = s->channels / g->group;
  p->kout = g->out_channels / g->group;
  p->cpad = (int)round_up((size_t)p->cin, LANES);
  p->height = s->height;
  p->width = s->width;
  p->pad_h = s->pad_h;
  p->pad_w = s->pad_w;
  p->out_h = s->out_h;
  p->out_w = s->out_w;
  p->tiles_w = (p->out_w + 3) / 4;
  p->tiles = (long)((p->out_h + 3) / 4) * p->tiles_w;
  p->threads = g->threads > 1 ? g->threads : 1;
  size_t t_all = round_up((size_t)p->tiles, LANES);
  size_t tb_max = t_all < WG_MAX_TILE_BLOCK ? t_all : WG_MAX_TILE_BLOCK;
  p->tile_block = (int)clamp_multiple(WG_V_FLOATS, (size_t)NXI * p->cpad, LANES, LANES, tb_max);
  size_t k_all = round_up((size_t)p->kout, KR);
  size_t kch = clamp_multiple(WG_DU_FLOATS, (size_t)NXI * p->cpad, KR, KR, k_all);
  size_t kch_m = clamp_multiple(WG_M_FLOATS, (size_t)NXI * p->tile_block, KR, KR, k_all);
  if (kch_m < kch)
    kch = kch_m;
  /* Even passes: 100 channels in chunks of 54 would leave a thin second
   * pass. */
  size_t passes = (k_all + kch - 1) / kch;
  p->kch = (int)round_up((k_all / KR + passes - 1) / passes * KR, KR);
}

/* Floats of slack to align the scratch to a cache line. */
#define ALIGN_FLOATS 16

static size_t v_floats(const wg_plan *p) {
  return round_up((size_t)NXI * p->cpad * p->tile_block, ALIGN_FLOATS);
}

static size_t m_floats(const wg_plan *p) {
  return round_up((size_t)NXI * p->kch * p->tile_block, ALIGN_FLOATS);
}

static size_t du_floats(const wg_plan *p) {
  return round_up((size_t)NXI * p->kch * p->cpad, ALIGN_FLOATS);
}

size_t wino_wgrad_workspace(const conv_geom *g) {
  wg_plan p;
  plan_of(g, &p);
  return v_floats(&p) + m_floats(&p) + du_floats(&p) + ALIGN_FLOATS;
}

static float *align_line(float *ws) {
  uintptr_t a = (uintptr_t)ws;
  return (float *)((a + 63) & ~(uintptr_t)63);
}

/* ---- input transform: V = B^T d B, 16 input channels per vector ---- */

WG_INLINE void input_1d(v16 d0, v16 d1, v16 d2, v16 d3, v16 d4, v16 d5, v16 *o, int step) {
  o[0] = 4.0f * d0 - 5.0f * d2 + d4;
  o[step] = d3 + d4 - 4.0f * (d1 + d2);
  o[2 * step] = 4.0f * (d1 - d2) + d4 - d3;
  o[3 * step] = 2.0f * (d3 - d1) + d4 - d2;
  o[4 * step] = 2.0f * (d1 - d3) + d4 - d2;
  o[5 * step] = 4.0f * d1 - 5.0f * d3 + d5;
}

/* d[point][lane] = the 6x6 input block of tile t in channels [0, n) of
 * img; positions outside the image and lanes past n read zero. */
WG_INLINE void gather_inputs(const wg_plan *p, const float *img, long t, int n, float *d) {
  const size_t plane = (size_t)p->height * p->width;
  int y0 = (int)(t / p->tiles_w) * 4 - p->pad_h;
  int x0 = (int)(t % p->tiles_w) * 4 - p->pad_w;
  if (n < LANES)
    memset(d, 0, sizeof(float) * NXI * LANES);
  if (y0 >= 0 && x0 >= 0 && y0 + WT <= p->height && x0 + WT <= p->width) {
    for (int l = 0; l < n; l++) {
      const float *src = img + l * plane + (size_t)y0 * p->width + x0;
      for (int i = 0; i < WT; i++, src += p->width)
        for (int j = 0; j < WT; j++)
          d[(i * WT + j) * LANES + l] = src[j];
    }
    return;
  }
  for (int l = 0; l < n; l++) {
    const float *src = img + l * plane;
    for (int i = 0; i < WT; i++) {
      int y = y0 + i;
      int row_in = y >= 0 && y < p->height;
      for (int j = 0; j < WT; j++) {
        int x = x0 + j;
        d[(i * WT + j) * LANES + l] =
            row_in && x >= 0 && x < p->width ? src[(size_t)y * p->width + x] : 0.0f;
      }
    }
  }
}

/* v[xi * xi_stride + lane] for tile t, channels [0, n) of img. */
WG_INLINE void input_tile_body(const wg_plan *p, const float *img, long t, int n, float *v,
                               size_t xi_stride) {
  float d[NXI * LANES] __attribute__((aligned(64)));
  v16 r[NXI], o[NXI];
  gather_inputs(p, img, t, n, d);
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

/* ---- output gradient transform: A dY A^T, 16 tiles per vector ---- */

WG_INLINE void grad_1d(v16 y0, v16 y1, v16 y2, v16 y3, v16 *o, int step) {
  v16 e = y0 + y2, f = y1 + y3, h = y0 + 4.0f * y2, k = 2.0f * y1 + 8.0f * y3;
  o[0] = y0;
  o[step] = e + f;
  o[2 * step] = e - f;
  o[3 * step] = h + k;
  o[4 * step] = h - k;
  o[5 * step] = y3;
}

/* d[point][lane] = the 4x4 output gradient of tiles [t0, t0 + LANES) in
 * plane dy; positions past the output and lanes past the last tile read
 * zero. */
WG_INLINE void gather_grads(const wg_plan *p, const float *dy, long t0, float *d) {
  for (int l = 0; l < LANES; l++) {
    long t = t0 + l;
    if (t >= p->tiles) {
      for (int i = 0; i < 16; i++)
        d[i * LANES + l] = 0.0f;
      continue;
    }
    int oy = (int)(t / p->tiles_w) * 4, ox = (int)(t % p->tiles_w) * 4;
    int rows = p->out_h - oy < 4 ? p->out_h - oy : 4;
    int cols = p->out_w - ox < 4 ? p->out_w - ox : 4;
    const float *src = dy + (size_t)oy * p->out_w + ox;
    for (int i = 0; i < 4; i++, src += p->out_w)
      for (int j = 0; j < 4; j++)
        d[(i * 4 + j) * LANES + l] = i < rows && j < cols ? src[j] : 0.0f;
  }
}

/* m[xi * xi_stride + lane] for tiles [t0, t0 + LANES) of plane dy. */
WG_INLINE void grad_panel_body(const wg_plan *p, const float *dy, long t0, float *m,
                               size_t xi_stride) {
  float d[16 * LANES] __attribute__((aligned(64)));
  v16 r[4 * WT], o[NXI];
  gather_grads(p, dy, t0, d);
  for (int i = 0; i < 4; i++) {
    const float *row = d + i * 4 * LANES;
    grad_1d(ld16(row), ld16(row + LANES), ld16(row + 2 * LANES), ld16(row + 3 * LANES),
            r + i * WT, 1);
  }
  for (int b = 0; b < WT; b++)
    grad_1d(r[b], r[WT + b], r[2 * WT + b], r[3 * WT + b], o + b, WT);
  for (int xi = 0; xi < NXI; xi++)
    st16(m + xi * xi_stride, o[xi]);
}

/* ---- products: a 6 x 16 register block, reduction over tiles ---- */

/* c (6 rows of 16, ldc apart) = (or +=, when acc) a (6 rows of n tiles,
 * lda apart) times b (n x 16). */
WG_INLINE void product_block_body(int n, const float *a, size_t lda, const float *b, float *c,
                                  size_t ldc, int acc) {
  v8 a0l = {0}, a0h = {0}, a1l = {0}, a1h = {0}, a2l = {0}, a2h = {0};
  v8 a3l = {0}, a3h = {0}, a4l = {0}, a4h = {0}, a5l = {0}, a5h = {0};
  const float *r0 = a, *r1 = a + lda, *r2 = a + 2 * lda, *r3 = a + 3 * lda;
  const float *r4 = a + 4 * lda, *r5 = a + 5 * lda;
  for (int t = 0; t < n; t++, b += LANES) {
    v8 bl = ld8(b), bh = ld8(b + 8);
    float x;
    x = r0[t], a0l += x * bl, a0h += x * bh;
    x = r1[t], a1l += x * bl, a1h += x * bh;
    x = r2[t], a2l += x * bl, a2h += x * bh;
    x = r3[t], a3l += x * bl, a3h += x * bh;
    x = r4[t], a4l += x * bl, a4h += x * bh;
    x = r5[t], a5l += x * bl, a5h += x * bh;
  }
  if (acc) {
    float *r = c;
    a0l += ld8(r), a0h += ld8(r + 8), r += ldc;
    a1l += ld8(r), a1h += ld8(r + 8), r += ldc;
    a2l += ld8(r), a2h += ld8(r + 8), r += ldc;
    a3l += ld8(r), a3h += ld8(r + 8), r += ldc;
    a4l += ld8(r), a4h += ld8(r + 8), r += ldc;
    a5l += ld8(r), a5h += ld8(r + 8);
  }
  st8(c, a0l), st8(c + 8, a0h), c += ldc;
  st8(c, a1l), st8(c + 8, a1h), c += ldc;
  st8(c, a2l), st8(c + 8, a2h), c += ldc;
  st8(c, a3l), st8(c + 8, a3h), c += ldc;
  st8(c, a4l), st8(c + 8, a4h), c += ldc;
  st8(c, a5l), st8(c + 8, a5h);
}

/* ---- filter gradient: G^T dU G, 16 input channels per vector ---- */

WG_INLINE void filter_grad_1d(v16 x0, v16 x1, v16 x2, v16 x3, v16 x4, v16 x5, v16 *o,
                              int step) {
  v16 s12 = x1 + x2, d12 = x2 - x1, s34 = x3 + x4, d34 = x3 - x4;
  o[0] = 0.25f * x0 - (1.0f / 6) * s12 + (1.0f / 24) * s34;
  o[step] = (1.0f / 6) * d12 + (1.0f / 12) * d34;
  o[2 * step] = (1.0f / 6) * (s34 - s12) + x5;
  /* 3 outputs per row of 6: steps of the caller's choosing. */
}

/* wd[lane * 9 + tap] += (G^T dU G)[tap] for lanes [0, n), dU read at
 * du[xi * xi_stride + lane]. */
WG_INLINE void filter_grad_body(const float *du, size_t xi_stride, int n, float *wd) {
  v16 h[WT * 3], o[9];
  float g[9 * LANES] __attribute__((aligned(64)));
  for (int a = 0; a < WT; a++) {
    const float *row = du + (size_t)a * WT * xi_stride;
    filter_grad_1d(ld16(row), ld16(row + xi_stride), ld16(row + 2 * xi_stride),
                   ld16(row + 3 * xi_stride), ld16(row + 4 * xi_stride),
                   ld16(row + 5 * xi_stride), h + a * 3, 1);
  }
  for (int j = 0; j < 3; j++)
    filter_grad_1d(h[j], h[3 + j], h[6 + j], h[9 + j], h[12 + j], h[15 + j], o + j, 3);
  for (int i = 0; i < 9; i++)
    st16(g + i * LANES, o[i]);
  for (int l = 0; l < n; l++)
    for (int i = 0; i < 9; i++)
      wd[l * 9 + i] += g[i * LANES + l];
}

/* ---- ISA variants ---- */

typedef struct wg_kernels {
  void (*input_tile)(const wg_plan *p, const float *img, long t, int n, float *v,
                     size_t xi_stride);
  void (*grad_panel)(const wg_plan *p, const float *dy, long t0, float *m, size_t xi_stride);
  void (*product_block)(int n, const float *a, size_t lda, const float *b, float *c,
                        size_t ldc, int acc);
  void (*filter_grad)(const float *du, size_t xi_stride, int n, float *wd);
} wg_kernels;

#define WG_VARIANT(suffix, attr)                                                               \
  attr static void input_tile_##suffix(const wg_plan *p, const float *img, long t, int n,      \
                                       float *v, size_t xi_stride) {                           \
    input_tile_body(p, img, t, n, v, xi_stride);                                               \
  }                                                                                            \
  attr static void grad_panel_##suffix(const wg_plan *p, const float *dy, long t0, float *m,   \
                                       size_t xi_stride) {                                     \
    grad_panel_body(p, dy, t0, m, xi_stride);                                                  \
  }                                                                                            \
  attr static void product_block_##suffix(int n, const float *a, size_t lda, const float *b,   \
                                          float *c, size_t ldc, int acc) {                     \
    product_block_body(n, a, lda, b, c, ldc, acc);                                             \
  }                                                                                            \
  attr static void filter_grad_##suffix(const float *du, size_t xi_stride, int n, float *wd) { \
    filter_grad_body(du, xi_stride, n, wd);                                                    \
  }                                                                                            \
  static const wg_kernels kernels_##suffix = {input_tile_##suffix, grad_panel_##suffix,        \
                                              product_block_##suffix, filter_grad_##suffix};

WG_VARIANT(generic, )
#if defined(__x86_64__) && defined(__GNUC__)
#define WG_HAVE_AVX2 1
WG_VARIANT(avx2, __attribute__((target("avx2,fma"))))
#endif

/* CREMA_SIMD=generic forces the portable kernels, as for the other
 * Winograd kernels. */
static const wg_kernels *pick_kernels(void) {
  const char *simd = getenv("CREMA_SIMD");
  if (simd && !strcmp(simd, "generic"))
    return &kernels_generic;
#ifdef WG_HAVE_AVX2
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    return &kernels_avx2;
#endif
  return &kernels_generic;
}

/* ---- the blocked loop, shared by the team ---- */

typedef struct wg_job {
  const wg_plan *p;
  const wg_kernels *kern;
  const float *in, *out_diff;
  float *w_diff, *ws;
} wg_job;

/* The pieces of one group's pass over one block. */
typedef struct wg_step {
  const float *in, *dy;
  long t0;
  int nt;   /* tiles in the block */
  int k0;   /* first output channel of the pass */
  int rows; /* output channels in the pass */
} wg_step;

/* V[xi][panel][tile][lane] for the block, split by (tile, panel). */
static void block_inputs(const wg_job *j, const wg_step *st, float *v, int tid, int nth) {
  const wg_plan *p = j->p;
  const size_t plane = (size_t)p->height * p->width;
  const size_t xi_stride = (size_t)p->cpad * p->tile_block;
  const int panels = p->cpad / LANES;
  long lo, hi;
  par_split((long)st->nt * panels, tid, nth, &lo, &hi);
  for (long i = lo; i < hi; i++) {
    int t = (int)(i / panels), pn = (int)(i % panels);
    int c0 = pn * LANES;
    int n = p->cin - c0 < LANES ? p->cin - c0 : LANES;
    j->kern->input_tile(p, st->in + (size_t)c0 * plane, st->t0 + t, n,
                        v + ((size_t)pn * p->tile_block + t) * LANES, xi_stride);
  }
}

/* Mdy[xi][row][tile] for the pass's output channels, split by (row,
 * panel of tiles); rows past the pass's channels are zero. */
static void block_grads(const wg_job *j, const wg_step *st, float *m, int tid, int nth) {
  const wg_plan *p = j->p;
  const size_t plane = (size_t)p->out_h * p->out_w;
  const size_t xi_stride = (size_t)p->kch * p->tile_block;
  const int rows = (int)round_up((size_t)st->rows, KR);
  const int panels = (st->nt + LANES - 1) / LANES;
  long lo, hi;
  par_split((long)rows * panels, tid, nth, &lo, &hi);
  for (long i = lo; i < hi; i++) {
    int r = (int)(i / panels), pn = (int)(i % panels);
    float *dst = m + (size_t)r * p->tile_block + (size_t)pn * LANES;
    if (r >= st->rows) {
      for (int xi = 0; xi < NXI; xi++)
        memset(dst + xi * xi_stride, 0, LANES * sizeof(float));
      continue;
    }
    j->kern->grad_panel(p, st->dy + (size_t)(st->k0 + r) * plane, st->t0 + (long)pn * LANES,
                        dst, xi_stride);
  }
}

/* dU is laid out [row][panel][xi][lane], so that each filter's 36
 * points are contiguous for the final transform. */
static size_t du_offset(const wg_plan *p, int row, int panel, int xi) {
  return (((size_t)row * (p->cpad / LANES) + panel) * NXI + xi) * LANES;
}

/* dU[xi] (+)= Mdy[xi] V[xi]^T for this member's points xi. */
static void block_products(const wg_job *j, const wg_step *st, const float *m, const float *v,
                           float *du, int acc, int tid, int nth) {
  const wg_plan *p = j->p;
  const int rows = (int)round_up((size_t)st->rows, KR);
  const int panels = p->cpad / LANES;
  const size_t ldc = du_offset(p, 1, 0, 0);
  long lo, hi;
  par_split(NXI, tid, nth, &lo, &hi);
  for (long xi = lo; xi < hi; xi++) {
    const float *mxi = m + (size_t)xi * p->kch * p->tile_block;
    const float *vxi = v + (size_t)xi * p->cpad * p->tile_block;
    for (int pn = 0; pn < panels; pn++)
      for (int r = 0; r < rows; r += KR)
        j->kern->product_block(st->nt, mxi + (size_t)r * p->tile_block, (size_t)p->tile_block,
                               vxi + (size_t)pn * LANES * p->tile_block,
                               du + du_offset(p, r, pn, (int)xi), ldc, acc);
  }
}

/* w_diff += G^T dU G for the pass's filters, split by (row, panel). */
static void pass_filters(const wg_job *j, const wg_step *st, const float *du, float *w_diff,
                         int tid, int nth) {
  const wg_plan *p = j->p;
  const int panels = p->cpad / LANES;
  long lo, hi;
  par_split((long)st->rows * panels, tid, nth, &lo, &hi);
  for (long i = lo; i < hi; i++) {
    int r = (int)(i / panels), pn = (int)(i % panels), c0 = pn * LANES;
    int n = p->cin - c0 < LANES ? p->cin - c0 : LANES;
    j->kern->filter_grad(du + du_offset(p, r, pn, 0), LANES, n,
                         w_diff + ((size_t)(st->k0 + r) * p->cin + c0) * 9);
  }
}

static void wg_body(par_team *team, int tid, int nth, void *ctx) {
  const wg_job *j = ctx;
  const wg_plan *p = j->p;
  float *v = align_line(j->ws);
  float *m = v + v_floats(p);
  float *du = m + m_floats(p);
  const long blocks = (p->tiles + p->tile_block - 1) / p->tile_block;
  for (int grp = 0; grp < p->group; grp++) {
    wg_step st;
    st.in = j->in + (size_t)grp * p->cin * p->height * p->width;
    st.dy = j->out_diff + (size_t)grp * p->kout * p->out_h * p->out_w;
    float *w_diff = j->w_diff + (size_t)grp * p->kout * p->cin * 9;
    for (st.k0 = 0; st.k0 < p->kout; st.k0 += p->kch) {
      st.rows = p->kout - st.k0 < p->kch ? p->kout - st.k0 : p->kch;
      for (long b = 0; b < blocks; b++) {
        st.t0 = b * p->tile_block;
        st.nt = (int)(p->tiles - st.t0 < p->tile_block ? p->tiles - st.t0 : p->tile_block);
        /* With one block, V stays valid across the passes. */
        if (st.k0 == 0 || blocks > 1)
          block_inputs(j, &st, v, tid, nth);
        block_grads(j, &st, m, tid, nth);
        par_sync(team);
        block_products(j, &st, m, v, du, b > 0, tid, nth);
        /* V and Mdy are rewritten for the next block only once everyone
         * is done. */
        par_sync(team);
      }
      /* dU is next written after the next block's first barrier, which
       * every member reaches only once its filters are done. */
      pass_filters(j, &st, du, w_diff, tid, nth);
    }
  }
}

void wino_backward_weights(const conv_geom *g, const float *in, const float *out_diff,
                           float *w_diff, float *ws) {
  wg_plan p;
  plan_of(g, &p);
  wg_job j = {&p, pick_kernels(), in, out_diff, w_diff, ws};
  int nth = p.threads;
  double work = (double)NXI * round_up((size_t)p.kout, KR) * p.cpad * (double)p.tiles * p.group;
  if (work < WG_PARALLEL_MIN)
    nth = 1;
  par_run(nth, wg_body, &j);
}

int wino_wgrad_preferred(const conv_geom *g) {
  const im2col_shape *s = &g->in;
  return pick_kernels() != &kernels_generic && s->channels / g->group >= 16 &&
         g->out_channels / g->group >= 16;
}
