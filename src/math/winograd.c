/* Winograd F(4x4,3x3) convolution (Lavin & Gray, 2015).
 *
 * Each 4x4 block of output (a tile) comes from a 6x6 block of input.  Input
 * tiles and filters are mapped to a 6x6 transformed domain where the
 * convolution becomes 36 independent matrix products over channels,
 *     M[xi] (K x tiles) = U[xi] (K x C) * V[xi] (C x tiles),
 * after which each 6x6 block of M maps back to a 4x4 output tile: 36
 * multiply-adds per tile and channel pair instead of 144.  The transform
 * matrices (B^T, G, A^T) follow from the interpolation points, chosen in
 * math/winograd_points.h for accuracy; the products sum their channels in
 * chains (WINO_CHAIN) for the same reason.
 *
 * Work goes in blocks of tiles so the scratch stays a few MB at any image
 * size.  On a large image each member of the team takes whole blocks:
 * input transform, filter transform, products and output transform with
 * nothing shared and no barrier.  When there are too few tiles for that
 * (deep layers), the team transforms each block's inputs together and
 * each member then takes its share of output channels through the rest.
 * Each member goes through the output channels in chunks whose
 * transformed filters stay in its L2 while it sweeps the block's tiles;
 * the transforms write the operands directly in the layout the product
 * kernel streams (panels of 16 tiles, rows of 6 output channels), so
 * there is no packing pass.  The planes of the 36 points are an odd
 * number of cache lines apart: at multiples of 4 KB, the 36 lines a
 * transform touches at once would all compete for one L1 set.
 *
 * The transforms take 8 tiles (or 8 filters) per vector and stream each
 * result out as soon as it is computed.  Each row of 8 input tiles comes
 * in as 8 unaligned loads of 8 pixels and one 8 x 8 transpose; each row
 * of 8 output tiles goes out the same way, as 8 stores of 4 pixels.
 * Tiles cut by the image's edge go through a small zero-padded patch.
 *
 * Filters are transformed for every block of tiles and every call: with
 * 8 filters per vector (the 8 consecutive taps of each loaded at once and
 * transposed) that is a few percent of the products even for the 16
 * tiles of VGG-16's conv5 at 224.  Caching them would take 4x the
 * weights' memory (36 values per 9) and would have to be invalidated
 * whenever the solver or a weight load changes the weights.
 *
 * The kernels are written with GCC vector types and compiled twice, for
 * AVX2+FMA and for the baseline ISA; the choice is made at run time. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/parallel.h"
#include "math/conv_engine.h"
#include "math/simd.h"
#include "math/winograd_points.h"
#include "math/winograd_wgrad.h"


/* Transformed inputs of one block of tiles (8 MB, split between the
 * members when each transforms its own blocks).  Larger blocks mean
 * fewer filter transforms; smaller ones stay closer to the caches. */
#define WINO_V_FLOATS ((size_t)2 << 20)
/* Tiles per block at most: bounds each member's products. */
#define WINO_MAX_TILE_BLOCK 256
/* A member's transformed filters, 36 x rows x input channels per pass
 * (330 KB) stay in L2 while it sweeps the block's tiles, and one point's
 * slice of them with one panel of V in L1.  Measured: 128 input channels
 * per pass beat 256 and 512 (whose panels spill out of L1), and more
 * than 18 rows per chunk did not pay. */
#define WINO_U_FLOATS ((size_t)NXI * 18 * 128)
#define WINO_KC 128
#define WINO_MAX_ROWS 96
/* Tiles per member from which the team splits the image (each member its
 * own blocks, no barriers) rather than each block's output channels.
 * Splitting output channels scaled worst on the largest images (VGG-16's
 * conv1_2 ran slower on 2 threads than on 1): every member reads the
 * whole shared V for each chunk of its rows, and the team meets at two
 * barriers per block. */
#define WINO_SPLIT_TILES 64
/* Chunks of a block's input channels a member transforms on average when
 * members share the blocks. */
#define WINO_INPUT_CHUNKS 4
/* Multiply-adds of products below which a convolution is not split over
 * threads (about a millisecond of work). */
#define WINO_PARALLEL_MIN 5e6


#define WINO_INLINE SIMD_INLINE

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
  int tile_block;                /* tiles per block, a multiple of 8 */
  int kc;                        /* input channels per product pass */
  int rows;                      /* output channels per chunk at most (KR multiple) */
  int threads;                   /* team size the scratch is laid out for */
  int simd;                      /* conv_geom.simd */
  int split_tiles;               /* members take whole blocks (else output channels) */
  /* Filter (o, i) of group grp starts at w + grp*group_stride + o*stride_out
   * + i*stride_in; flipped: read rotated by 180 degrees. */
  size_t group_stride, stride_out, stride_in;
  int flip;
  int relu;                      /* output through Caffe's ReLU (conv_geom.relu) */
} wino_plan;


static void plan_blocks(wino_plan *p) {
  const size_t nth = (size_t)p->threads;
  p->kc = p->cin < WINO_KC ? p->cin : WINO_KC;
  size_t rows_all = round_up((size_t)p->kout, KR);
  size_t rows = WINO_U_FLOATS / ((size_t)NXI * p->kc) / KR * KR;
  if (rows < KR)
    rows = KR;
  if (rows > WINO_MAX_ROWS)
    rows = WINO_MAX_ROWS;
  p->rows = (int)(rows < rows_all ? rows : rows_all);
  /* Large images: members share nothing, so they neither wait for each
   * other nor read each other's transformed inputs. */
  p->split_tiles = nth > 1 && (size_t)p->tiles >= nth * WINO_SPLIT_TILES;
  size_t v_budget = p->split_tiles ? WINO_V_FLOATS / nth : WINO_V_FLOATS;
  size_t tb = v_budget / ((size_t)NXI * p->cin) / LANES * LANES;
  if (tb < LANES)
    tb = LANES;
  if (tb > WINO_MAX_TILE_BLOCK)
    tb = WINO_MAX_TILE_BLOCK;
  /* Even blocks, a whole number per member.  Blocks of whole panels
   * leave at most one half panel (whose products run at 3/4 speed);
   * members that split the tiles are better balanced by halves. */
  size_t blocks = ((size_t)p->tiles + tb - 1) / tb;
  if (p->split_tiles)
    blocks = round_up(blocks, nth);
  size_t unit = p->split_tiles ? 8 : LANES;
  p->tile_block = (int)round_up(((size_t)p->tiles + blocks - 1) / blocks, unit);
}

static void plan_common(const conv_geom *g, wino_plan *p) {
  p->threads = g->threads > 1 ? g->threads : 1;
  p->simd = g->simd;
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
  p->relu = g->relu;
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
  p->relu = 0;
  plan_common(g, p);
}

/* Distance between two points' planes: whole cache lines, and an odd
 * number of them, so that the 36 lines a transform writes or reads at
 * once fall in different cache sets (with plane sizes that are multiples
 * of 4 KB they would all compete for one L1 set; measured: 5-25% off
 * VGG-16's layers). */
static size_t plane_stride(size_t floats) { return round_up(floats, 32) + ALIGN_FLOATS; }

/* Lanes of a block's panels: the last panel may be half used. */
static size_t block_lanes(const wino_plan *p) { return round_up((size_t)p->tile_block, LANES); }

static size_t v_stride(const wino_plan *p) {
  return plane_stride((size_t)p->cin * block_lanes(p));
}

static size_t u_stride(const wino_plan *p) { return plane_stride((size_t)p->rows * p->kc); }

static size_t m_stride(const wino_plan *p) {
  return plane_stride((size_t)p->rows * block_lanes(p));
}

static size_t v_floats(const wino_plan *p) { return NXI * v_stride(p); }

static size_t u_floats(const wino_plan *p) { return NXI * u_stride(p); }

static size_t m_floats(const wino_plan *p) { return NXI * m_stride(p); }

/* Scratch layout: V (shared, or one per member when they split the
 * tiles), then per member its filters U and products M. */
static size_t plan_workspace(const wino_plan *p) {
  size_t member = u_floats(p) + m_floats(p) + (p->split_tiles ? v_floats(p) : 0);
  return (p->split_tiles ? 0 : v_floats(p)) + (size_t)p->threads * member + ALIGN_FLOATS;
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
  size_t a = plan_workspace(&f), c = plan_workspace(&b), d = wino_wgrad_workspace(g);
  if (c > a)
    a = c;
  return a > d ? a : d;
}

typedef float v4 __attribute__((vector_size(16)));

/* ---- filter transform: U = G g G^T, 8 input channels per vector ---- */

/* G g G^T for the taps g[0..8] of 8 filters: u[xi * xi_stride + lane]. */
WINO_INLINE void filter_transform(const v8 *g, float *u, size_t xi_stride) {
#pragma GCC unroll 6
  for (int a = 0; a < WT; a++) {
    /* Row a of G g, then times G^T: six values streamed out. */
    v8 h0 = wino_filter_comp(a, g[0], g[3], g[6]);
    v8 h1 = wino_filter_comp(a, g[1], g[4], g[7]);
    v8 h2 = wino_filter_comp(a, g[2], g[5], g[8]);
#pragma GCC unroll 6
    for (int b = 0; b < WT; b++)
      st8(u + (size_t)(a * WT + b) * xi_stride, wino_filter_comp(b, h0, h1, h2));
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
#pragma GCC unroll 8
    for (int l = 0; l < 8; l++)
      r[l] = ld8(base + l * s + off);
    transpose8(r, t);
    v8 x = {base[last],         base[s + last],     base[2 * s + last], base[3 * s + last],
            base[4 * s + last], base[5 * s + last], base[6 * s + last], base[7 * s + last]};
    if (p->flip) {
#pragma GCC unroll 8
      for (int i = 0; i < 8; i++)
        g[i] = t[7 - i];
    } else {
#pragma GCC unroll 8
      for (int i = 0; i < 8; i++)
        g[i] = t[i];
    }
    g[8] = x;
    filter_transform(g, u, xi_stride);
    return;
  }
  float tap[9][8] __attribute__((aligned(32)));
  float out[NXI][8] __attribute__((aligned(32)));
  memset(tap, 0, sizeof tap);
  const int f = p->flip ? 8 : 0, d = p->flip ? -1 : 1;
  for (int l = 0; l < n; l++)
    for (int i = 0; i < 9; i++)
      tap[i][l] = base[l * s + f + i * d];
  for (int i = 0; i < 9; i++)
    g[i] = ld8(tap[i]);
  filter_transform(g, out[0], 8);
  for (int xi = 0; xi < NXI; xi++)
    memcpy(u + (size_t)xi * xi_stride, out[xi], (size_t)n * sizeof(float));
}

/* ---- input transform: V = B^T d B, 8 tiles per vector ---- */

/* Zero rows for lanes past the last tile. */
static const float zero_row[8];

/* Input tile at (y0, x0) in a zero-padded 6 x 8 patch. */
WINO_INLINE void input_patch(const wino_plan *p, const float *img, int y0, int x0, float *patch) {
  int xa = x0 < 0 ? -x0 : 0, xb = p->width - x0 < 8 ? p->width - x0 : 8;
  for (int i = 0; i < WT; i++) {
    int y = y0 + i;
    float *dst = patch + i * 8;
    memset(dst, 0, 8 * sizeof(float));
    if (y < 0 || y >= p->height)
      continue;
    const float *row = img + (size_t)y * p->width + x0;
    for (int j = xa; j < xb; j++)
      dst[j] = row[j];
  }
}

/* V[xi] (8 lanes at v + xi * xi_stride) of the 8 tiles whose pixel rows
 * i start at src[l] + i * ld[l]: each row of the 8 tiles is loaded as 8
 * vectors of 8 pixels and transposed into 6 pixel-column vectors. */
WINO_INLINE void input_transform(const float *const *src, const size_t *ld, float *v,
                                 size_t xi_stride) {
  v8 h[NXI];
#pragma GCC unroll 6
  for (int i = 0; i < WT; i++) {
    v8 r[8], d[8];
#pragma GCC unroll 8
    for (int l = 0; l < 8; l++)
      r[l] = ld8(src[l] + i * ld[l]);
    transpose8(r, d);
    wino_input_1d(d[0], d[1], d[2], d[3], d[4], d[5], h + i * WT, 1);
  }
#pragma GCC unroll 6
  for (int b = 0; b < WT; b++) {
    v8 o[WT];
    wino_input_1d(h[b], h[WT + b], h[2 * WT + b], h[3 * WT + b], h[4 * WT + b], h[5 * WT + b], o, 1);
#pragma GCC unroll 6
    for (int a = 0; a < WT; a++)
      st8(v + (size_t)(a * WT + b) * xi_stride, o[a]);
  }
}

/* V[xi] for tiles [t0, t0 + n) (n <= 8) of one channel: 8 lanes at
 * v + xi * xi_stride, zero past n.  Tiles that reach out of the image
 * read a padded copy. */
WINO_INLINE void input_group_body(const wino_plan *p, const float *img, long t0, int n, float *v,
                                  size_t xi_stride) {
  const float *src[8];
  size_t ld[8];
  long ty = t0 / p->tiles_w, tx = t0 % p->tiles_w;
  int y0 = (int)ty * 4 - p->pad_h, x0 = (int)tx * 4 - p->pad_w;
  if (n == 8 && tx + 8 <= p->tiles_w && y0 >= 0 && x0 >= 0 && y0 + WT <= p->height &&
      x0 + 4 * 7 + 8 <= p->width) {
    /* Most of a large image: 8 tiles of one row, 4 pixels apart. */
    const float *base = img + (size_t)y0 * p->width + x0;
#pragma GCC unroll 8
    for (int l = 0; l < 8; l++) {
      src[l] = base + 4 * l;
      ld[l] = (size_t)p->width;
    }
    input_transform(src, ld, v, xi_stride);
    return;
  }
  float patch[8][WT * 8] __attribute__((aligned(32)));
  for (int l = 0; l < 8; l++) {
    if (l >= n) {
      src[l] = zero_row;
      ld[l] = 0;
      continue;
    }
    y0 = (int)ty * 4 - p->pad_h, x0 = (int)tx * 4 - p->pad_w;
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
  input_transform(src, ld, v, xi_stride);
}

/* ---- the 36 products: a 6 x 16 register block over all channels ---- */

/* m (6 x 16, rows ldm apart) = (or +=, when acc) u (6 rows of kc values,
 * ldu apart) times v (kc x 16): wino_product_6x16, in chains. */

/* The same for the first 8 lanes of the panel only: six accumulators for
 * a chain of WINO_CHAIN channels, six for the chains' sum. */
WINO_INLINE void product_half_body(int kc, const float *u, size_t ldu, const float *v, float *m,
                                   size_t ldm, int acc) {
  v8 s0 = {0}, s1 = {0}, s2 = {0}, s3 = {0}, s4 = {0}, s5 = {0};
  const float *u0 = u, *u1 = u + ldu, *u2 = u + 2 * ldu, *u3 = u + 3 * ldu;
  const float *u4 = u + 4 * ldu, *u5 = u + 5 * ldu;
  for (int c0 = 0; c0 < kc; c0 += WINO_CHAIN) {
    const int end = kc - c0 < WINO_CHAIN ? kc : c0 + WINO_CHAIN;
    v8 a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0}, a4 = {0}, a5 = {0};
    for (int c = c0; c < end; c++, v += LANES) {
      v8 b = ld8(v);
      a0 += u0[c] * b, a1 += u1[c] * b, a2 += u2[c] * b;
      a3 += u3[c] * b, a4 += u4[c] * b, a5 += u5[c] * b;
    }
    s0 += a0, s1 += a1, s2 += a2, s3 += a3, s4 += a4, s5 += a5;
  }
  if (acc) {
    s0 += ld8(m), s1 += ld8(m + ldm), s2 += ld8(m + 2 * ldm);
    s3 += ld8(m + 3 * ldm), s4 += ld8(m + 4 * ldm), s5 += ld8(m + 5 * ldm);
  }
  st8(m, s0), st8(m + ldm, s1), st8(m + 2 * ldm, s2);
  st8(m + 3 * ldm, s3), st8(m + 4 * ldm, s4), st8(m + 5 * ldm, s5);
}

/* ---- output transform: Y = A^T M A, plus bias ---- */

WINO_INLINE void st4(float *p, v4 v) { memcpy(p, &v, sizeof v); }

/* Y = A^T M A + bias (through the ReLU if relu) for 8 tiles (m points at lane 0 of point 0; points
 * are xi_stride apart): row q of tile l goes to dst[l] + q * ld[l].  Each
 * output row of the 8 tiles is transposed into one 4-pixel store per
 * tile. */
WINO_INLINE void output_transform(const float *m, size_t xi_stride, float bias, int relu,
                                  float *const *dst, const size_t *ld) {
  v8 s[4 * WT];
#pragma GCC unroll 6
  for (int b = 0; b < WT; b++) {
    v8 o[4];
    wino_output_1d(ld8(m + (size_t)b * xi_stride), ld8(m + (size_t)(WT + b) * xi_stride),
              ld8(m + (size_t)(2 * WT + b) * xi_stride), ld8(m + (size_t)(3 * WT + b) * xi_stride),
              ld8(m + (size_t)(4 * WT + b) * xi_stride), ld8(m + (size_t)(5 * WT + b) * xi_stride),
              o);
    for (int q = 0; q < 4; q++)
      s[q * WT + b] = o[q];
  }
#pragma GCC unroll 4
  for (int q = 0; q < 4; q++) {
    v8 o[4];
    const v8 *sq = s + q * WT;
    wino_output_1d(sq[0], sq[1], sq[2], sq[3], sq[4], sq[5], o);
    for (int j = 0; j < 4; j++)
      o[j] = relu ? relu8(o[j] + bias) : o[j] + bias;
    v8 lo01 = unpack_lo(o[0], o[1]), lo23 = unpack_lo(o[2], o[3]);
    v8 hi01 = unpack_hi(o[0], o[1]), hi23 = unpack_hi(o[2], o[3]);
    /* Tile l's row q in the low half of r[l % 4] (l < 4), the high half
     * for l + 4. */
    v8 r[4] = {pairs_lo(lo01, lo23), pairs_hi(lo01, lo23), pairs_lo(hi01, hi23),
               pairs_hi(hi01, hi23)};
#pragma GCC unroll 4
    for (int l = 0; l < 4; l++) {
      st4(dst[l] + q * ld[l], __builtin_shufflevector(r[l], r[l], 0, 1, 2, 3));
      st4(dst[l + 4] + q * ld[l + 4], __builtin_shufflevector(r[l], r[l], 4, 5, 6, 7));
    }
  }
}

/* Output channel plane out gets tiles [t0, t0 + n) (n <= 8) from M;
 * tiles cut by the image's edge go through a patch. */
WINO_INLINE void output_group_body(const wino_plan *p, const float *m, size_t xi_stride,
                                   float bias, long t0, int n, float *out) {
  float *dst[8];
  size_t ld[8];
  long ty = t0 / p->tiles_w, tx = t0 % p->tiles_w;
  int oy = (int)ty * 4, ox = (int)tx * 4;
  if (n == 8 && tx + 8 <= p->tiles_w && oy + 4 <= p->out_h && ox + 32 <= p->out_w) {
    float *base = out + (size_t)oy * p->out_w + ox;
#pragma GCC unroll 8
    for (int l = 0; l < 8; l++) {
      dst[l] = base + 4 * l;
      ld[l] = (size_t)p->out_w;
    }
    output_transform(m, xi_stride, bias, p->relu, dst, ld);
    return;
  }
  float patch[8][16] __attribute__((aligned(32)));
  int rows[8], cols[8];
  for (int l = 0; l < 8; l++) {
    rows[l] = cols[l] = 0;
    dst[l] = patch[l];
    ld[l] = 4;
    if (l >= n)
      continue;
    oy = (int)ty * 4, ox = (int)tx * 4;
    rows[l] = p->out_h - oy < 4 ? p->out_h - oy : 4;
    cols[l] = p->out_w - ox < 4 ? p->out_w - ox : 4;
    if (rows[l] == 4 && cols[l] == 4) {
      dst[l] = out + (size_t)oy * p->out_w + ox;
      ld[l] = (size_t)p->out_w;
    }
    if (++tx == p->tiles_w)
      tx = 0, ty++;
  }
  output_transform(m, xi_stride, bias, p->relu, dst, ld);
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
  void (*product_half)(int kc, const float *u, size_t ldu, const float *v, float *m, size_t ldm,
                       int acc);
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
    wino_product_6x16(kc, u, ldu, v, m, ldm, acc);                                          \
  }                                                                                         \
  attr static void product_half_##suffix(int kc, const float *u, size_t ldu, const float *v,  \
                                         float *m, size_t ldm, int acc) {                   \
    product_half_body(kc, u, ldu, v, m, ldm, acc);                                          \
  }                                                                                         \
  attr static void output_group_##suffix(const wino_plan *p, const float *m,                \
                                         size_t xi_stride, float bias, long t0, int n,      \
                                         float *out) {                                      \
    output_group_body(p, m, xi_stride, bias, t0, n, out);                                   \
  }                                                                                         \
  static const wino_kernels kernels_##suffix = {filter_group_##suffix, input_group_##suffix,   \
                                                product_block_##suffix, product_half_##suffix,    \
                                                output_group_##suffix};

WINO_VARIANT(generic, )
#ifdef SIMD_HAVE_AVX2
WINO_VARIANT(avx2, SIMD_AVX2)
#endif

/* CREMA_SIMD_GENERIC forces the portable kernels (math/simd.h). */
static const wino_kernels *pick_kernels(int simd) {
  return SIMD_PICK(simd, &kernels_generic, &kernels_avx2);
}

/* ---- the blocked loop, shared by the team ---- */

typedef struct wino_job {
  const wino_plan *p;
  const wino_kernels *kern;
  const float *in, *w, *bias;
  float *out, *ws;
  /* Members split the tiles: (group, block) items.  Members share the
   * blocks: each block's chunks of output channels, and of its input
   * channels to transform.  Counted for the planned team, whatever the
   * size of the one that runs. */
  par_dealer items, inputs;
  long chunks, in_chunks;
} wino_job;

/* V for tiles [t0, t0 + nt): part `part` of the input channels split in
 * `parts`. */
static void block_inputs(const wino_job *j, const float *in, long t0, int nt, float *v, int part,
                         int parts) {
  const wino_plan *p = j->p;
  const size_t plane = (size_t)p->height * p->width;
  const size_t xi_stride = v_stride(p);
  long lo, hi;
  par_split(p->cin, part, parts, &lo, &hi);
  /* The image rows the block reads are fetched one channel ahead, spread
   * over the current channel's groups: the hardware prefetcher only
   * catches up with each channel's rows after the first misses
   * (measured: 8-10% off VGG-16's conv1_2 and conv2_2). */
  long y_lo = t0 / p->tiles_w * 4 - p->pad_h;
  long y_hi = (t0 + nt - 1) / p->tiles_w * 4 + WT - p->pad_h;
  if (y_lo < 0)
    y_lo = 0;
  if (y_hi > p->height)
    y_hi = p->height;
  const size_t span = y_hi > y_lo ? (size_t)(y_hi - y_lo) * p->width : 0;
  const int groups = (nt + 7) / 8;
  for (long c = lo; c < hi; c++) {
    const float *next = c + 1 < hi ? in + (c + 1) * plane + (size_t)y_lo * p->width : NULL;
    for (int g = 0; g < groups; g++) {
      if (next)
        for (size_t f = span * g / groups / 16 * 16; f < span * (g + 1) / groups; f += 16)
          __builtin_prefetch(next + f);
      j->kern->input_group(p, in + c * plane, t0 + g * 8, nt - g * 8 < 8 ? nt - g * 8 : 8,
                           v + ((size_t)(g / 2) * p->cin + c) * LANES + g % 2 * 8, xi_stride);
    }
  }
}

/* A member's chunk of output channels [k0, k0 + rows) (rows <= p->rows,
 * a multiple of KR) for input channels [c0, c0 + kc): U[xi][r][c]; rows
 * past kout are zero. */
static void chunk_filters(const wino_job *j, const float *w, int k0, int rows, int c0, int kc,
                          float *u) {
  const wino_plan *p = j->p;
  const size_t xi_stride = u_stride(p);
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
 * channels: one point at a time, so that point's slices of U and V stay
 * in L2 while the member sweeps them. */
static void chunk_products(const wino_job *j, int rows, int c0, int kc, int nt, const float *u,
                           const float *v, float *m) {
  const wino_plan *p = j->p;
  const size_t ldm = block_lanes(p);
  for (int xi = 0; xi < NXI; xi++) {
    const float *uxi = u + (size_t)xi * u_stride(p);
    float *mxi = m + (size_t)xi * m_stride(p);
    for (int pn = 0; pn * LANES < nt; pn++) {
      const float *vp = v + (size_t)xi * v_stride(p) + ((size_t)pn * p->cin + c0) * LANES;
      /* A last panel of at most 8 tiles takes half the work. */
      void (*product)(int, const float *, size_t, const float *, float *, size_t, int) =
          nt - pn * LANES > 8 ? j->kern->product_block : j->kern->product_half;
      for (int r = 0; r < rows; r += KR)
        product(kc, uxi + (size_t)r * p->kc, (size_t)p->kc, vp,
                mxi + (size_t)r * ldm + (size_t)pn * LANES, ldm, c0 > 0);
    }
  }
}

static void chunk_outputs(const wino_job *j, int k0, int rows, long t0, int nt, const float *m,
                          const float *bias, float *out) {
  const wino_plan *p = j->p;
  const size_t plane = (size_t)p->out_h * p->out_w;
  const size_t xi_stride = m_stride(p);
  for (int r = 0; r < rows && k0 + r < p->kout; r++) {
    float bk = bias ? bias[k0 + r] : 0.0f;
    for (int g = 0; g * 8 < nt; g++)
      j->kern->output_group(p, m + (size_t)r * block_lanes(p) + (size_t)g * 8, xi_stride, bk,
                            t0 + g * 8, nt - g * 8 < 8 ? nt - g * 8 : 8,
                            out + (size_t)(k0 + r) * plane);
  }
}

/* One group's operands. */
typedef struct wino_group {
  const float *in, *w, *bias;
  float *out;
} wino_group;

/* Filters, products and output transform of one block of tiles for the
 * output channel panels [kp_lo, kp_hi), in even chunks of at most
 * p->rows channels.  When one chunk and one pass cover them, U from the
 * previous block (keep_u) is still valid and is not transformed again. */
static void block_products(const wino_job *j, const wino_group *gr, long t0, int nt,
                           long kp_lo, long kp_hi, const float *v, float *u, float *m,
                           int keep_u) {
  const wino_plan *p = j->p;
  long n = kp_hi - kp_lo, per = p->rows / KR;
  long chunks = (n + per - 1) / per;
  if (chunks > 1 || p->kc < p->cin)
    keep_u = 0;
  for (long ch = 0; ch < chunks; ch++) {
    long lo, hi;
    par_split(n, (int)ch, (int)chunks, &lo, &hi);
    int k0 = (int)(kp_lo + lo) * KR, rows = (int)(hi - lo) * KR;
    for (int c0 = 0; c0 < p->cin; c0 += p->kc) {
      int kc = p->cin - c0 < p->kc ? p->cin - c0 : p->kc;
      if (!keep_u)
        chunk_filters(j, gr->w, k0, rows, c0, kc, u);
      chunk_products(j, rows, c0, kc, nt, u, v, m);
    }
    chunk_outputs(j, k0, rows, t0, nt, m, gr->bias, gr->out);
  }
}

/* Tiles in the block starting at t0. */
static int block_tiles(const wino_plan *p, long t0) {
  return (int)(p->tiles - t0 < p->tile_block ? p->tiles - t0 : p->tile_block);
}

static wino_group group_of(const wino_job *j, int grp) {
  const wino_plan *p = j->p;
  wino_group gr = {j->in + (size_t)grp * p->cin * p->height * p->width,
                   j->w + (size_t)grp * p->group_stride,
                   j->bias ? j->bias + (size_t)grp * p->kout : NULL,
                   j->out + (size_t)grp * p->kout * p->out_h * p->out_w};
  return gr;
}

/* Large images: each member transforms and multiplies whole blocks of
 * tiles, taking the next block when done with one rather than a fixed
 * share: on a shared host one core often runs slower for a while, and a
 * fixed share would keep the other waiting.  Each output is still written
 * by one member in a fixed order, so results do not depend on who took
 * what.  U stays valid from one block to the next of the same group. */
static void split_tiles_body(wino_job *j, float *v, float *u, float *m) {
  const wino_plan *p = j->p;
  const long kpanels = (p->kout + KR - 1) / KR;
  const long blocks = (p->tiles + p->tile_block - 1) / p->tile_block;
  int last_grp = -1;
  for (long i; (i = par_deal(&j->items)) >= 0;) {
    int grp = (int)(i / blocks);
    long t0 = i % blocks * p->tile_block;
    int nt = block_tiles(p, t0);
    wino_group gr = group_of(j, grp);
    block_inputs(j, gr.in, t0, nt, v, 0, 1);
    block_products(j, &gr, t0, nt, 0, kpanels, v, u, m, grp == last_grp);
    last_grp = grp;
  }
}

/* Large images: split_tiles_body.  Otherwise the team shares the
 * transformed inputs of each block, and each member takes chunks of output
 * channels through filters, products and output transform, the next
 * chunk whenever it is free. */
static void wino_body(par_team *team, int tid, int nth, void *ctx) {
  wino_job *j = ctx;
  const wino_plan *p = j->p;
  float *base = align_line(j->ws);
  const size_t member = u_floats(p) + m_floats(p) + (p->split_tiles ? v_floats(p) : 0);
  float *v = p->split_tiles ? base + (size_t)tid * member : base;
  float *u = p->split_tiles ? v + v_floats(p) : base + v_floats(p) + (size_t)tid * member;
  float *m = u + u_floats(p);
  if (p->split_tiles) {
    split_tiles_body(j, v, u, m);
    return;
  }
  /* Chunks of input and then of output channels, taken by whichever
   * member is free (see split_tiles_body). */
  const long kpanels = (p->kout + KR - 1) / KR;
  for (int grp = 0; grp < p->group; grp++) {
    wino_group gr = group_of(j, grp);
    for (long t0 = 0; t0 < p->tiles; t0 += p->tile_block) {
      int nt = block_tiles(p, t0);
      for (long c; (c = par_deal(&j->inputs)) >= 0;)
        block_inputs(j, gr.in, t0, nt, v, (int)c, (int)j->in_chunks);
      par_sync_redeal(team, tid, &j->inputs, j->in_chunks);
      for (long c; (c = par_deal(&j->items)) >= 0;) {
        long lo, hi;
        par_split(kpanels, (int)c, (int)j->chunks, &lo, &hi);
        block_products(j, &gr, t0, nt, lo, hi, v, u, m, 0);
      }
      /* V is rewritten for the next block only once everyone is done. */
      par_sync_redeal(team, tid, &j->items, j->chunks);
    }
  }
}

/* Sets up j's dealers for a team of nth. */
static void deal_plan(wino_job *j, int nth) {
  const wino_plan *p = j->p;
  const long kpanels = (p->kout + KR - 1) / KR, per = p->rows / KR;
  if (p->split_tiles) {
    par_dealer_reset(&j->items, (p->tiles + p->tile_block - 1) / p->tile_block * p->group);
    return;
  }
  /* At least two chunks a member where there are panels enough: narrow
   * layers (16 output channels are 3 panels) still need sharing out. */
  j->chunks = (kpanels + per - 1) / per;
  if (j->chunks < 2L * nth)
    j->chunks = kpanels < 2L * nth ? kpanels : 2L * nth;
  /* Input channels in a few chunks a member. */
  j->in_chunks = p->cin < WINO_INPUT_CHUNKS * nth ? p->cin : WINO_INPUT_CHUNKS * nth;
  par_dealer_reset(&j->items, j->chunks);
  par_dealer_reset(&j->inputs, j->in_chunks);
}

static void wino_run(const wino_plan *p, const float *in, const float *w, const float *bias,
                     float *out, float *ws) {
  wino_job j = {p, pick_kernels(p->simd), in, w, bias, out, ws};
  int nth = p->threads;
  int panels = (p->kout + KR - 1) / KR;
  if (!p->split_tiles && nth > panels)
    nth = panels;
  /* Starting a thread and meeting at barriers costs tens of microseconds
   * (much more on a loaded machine): small convolutions run alone. */
  double work = (double)NXI * panels * KR * p->cin * (double)p->tiles * p->group;
  if (work < WINO_PARALLEL_MIN)
    nth = 1;
  deal_plan(&j, nth);
  par_run(nth, wino_body, &j);
}

/* Measured on VGG-16's layers: with AVX2, F(4x4,3x3) takes 0.5-0.8x
 * gemm's time once both channel counts fill the 6 x 16 product block and
 * the image has a few rows of tiles; with 3 input channels (conv1_1) the
 * transforms dominate and gemm wins, at 14x14 they tie.  The portable
 * kernels are far slower than OpenBLAS, so without AVX2 gemm stays. */
static int winograd_preferred(const conv_geom *g) {
  const im2col_shape *s = &g->in;
  return pick_kernels(g->simd) != &kernels_generic && winograd_supports(g) &&
         s->channels / g->group >= 16 &&
         g->out_channels / g->group >= 16 && s->out_h >= 14 && s->out_w >= 14;
}

/* The gradients keep to the same preference (and the weight gradient to
 * wino_wgrad_preferred) even when CREMA_CONV names Winograd.  Their
 * rounding is 3-7x gemm's on every shape measured (the 1/8-width lesion
 * layers at 48x48 and VGG's: rms 4-8e-7 against float64, gemm's 0.6-3e-7),
 * most of it from rounding the transformed operands to float: summing in
 * chains of 8 or in double changed it by 10-20%.  The AdaDelta run of
 * tests/cli/lesion_adadelta.sh, whose first steps set nearly every
 * update to +-sqrt(delta / (1 - momentum)) whatever the gradient's size,
 * magnifies that into its losses, and a near tie in a max pool or a ReLU
 * flips with it: Winograd's gradients on all its 3x3 layers moved the
 * sixth loss 1.6e-3 from gemm's (its weight gradients at 3x3 alone 3.7e-3;
 * gemm's own weight gradients perturbed by 1.2e-7 relative, 2.3e-4 in 2
 * of 8 draws).  Where it is preferred, Winograd is faster; elsewhere it
 * would cost accuracy and no time. */
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
    .data_preferred = winograd_preferred,
    .weights_preferred = wino_wgrad_preferred,
    .workspace = winograd_workspace,
    .forward = winograd_forward,
    .backward_data = winograd_backward_data,
    .backward_weights = wino_backward_weights,
};
