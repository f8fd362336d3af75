/* Winograd F(4x4,3x3) weight gradient.
 *
 * Per tile the forward pass computes Y = A^T [U . V] A with U = G g G^T and
 * V = B^T d B, so dL/dU = (A dY A^T) . V summed over tiles, and
 * dL/dg = G^T (dL/dU) G.  The sum over tiles is, for each of the 36
 * transformed points xi, a matrix product
 *     dU[xi] (K x C) = Mdy[xi] (K x tiles) * V[xi]^T (tiles x C),
 * which takes 36 multiply-adds per tile and channel pair where im2col +
 * SGEMM takes 144 (9 taps x 16 outputs).  B^T, A and G^T are the
 * forward's (math/winograd_points.h), and the sums over tiles run in
 * chains as the forward's over channels.
 *
 * Work goes in blocks of tiles so the scratch stays a few MB at any image
 * size, and in passes over chunks of output channels so dU stays bounded
 * for wide layers; dU accumulates over a pass's blocks and is mapped back
 * to the 3x3 filters once per pass.  Members of a team are dealt slices
 * of the tiles, each slice with a dU of its own (summed in order when
 * mapped back); when all tiles fit one block, passes of output channels,
 * each product block's dU mapped back at once (see tiles_body and
 * rows_body).  The transforms write the operands in the layout the
 * product kernel streams: V as panels of 16 input channels per tile, Mdy
 * as rows of tiles per output channel.
 *
 * The kernels are written with GCC vector types and compiled for AVX2+FMA
 * and for the baseline ISA; the choice is made at run time. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/parallel.h"
#include "math/simd.h"
#include "math/winograd_points.h"
#include "math/winograd_wgrad.h"


/* Scratch budgets (floats) of one member: transformed inputs of a block
 * (8 MB), transformed output gradients of a block, and the dU of a pass;
 * 15 MB in all. */
#define WG_V_FLOATS ((size_t)2 << 20)
#define WG_M_FLOATS ((size_t)3 << 18)
#define WG_DU_FLOATS ((size_t)1 << 20)
/* Tiles per block at most: keeps one xi's operands of a block in L2. */
#define WG_MAX_TILE_BLOCK 256
/* Tiles per block below which a block is not shrunk to save a pass. */
#define WG_MIN_TILE_BLOCK 64
/* Multiply-adds below which the team is not worth starting. */
#define WG_PARALLEL_MIN 5e6


#define WG_INLINE SIMD_INLINE

/* ---- shuffles beyond math/simd.h's ---- */


/* r[0..3] hold 8 consecutive groups of 4 values; col[j] = value j of each
 * group, in group order. */
WG_INLINE void deinterleave4(const v8 *r, v8 *col) {
  v8 a = unpack_lo(r[0], r[1]), b = unpack_hi(r[0], r[1]);
  v8 c = unpack_lo(r[2], r[3]), d = unpack_hi(r[2], r[3]);
  /* Groups come out in the order 0 2 4 6 1 3 5 7. */
  v8 p0 = pairs_lo(a, c), p1 = pairs_hi(a, c), p2 = pairs_lo(b, d), p3 = pairs_hi(b, d);
  col[0] = __builtin_shufflevector(p0, p0, 0, 4, 1, 5, 2, 6, 3, 7);
  col[1] = __builtin_shufflevector(p1, p1, 0, 4, 1, 5, 2, 6, 3, 7);
  col[2] = __builtin_shufflevector(p2, p2, 0, 4, 1, 5, 2, 6, 3, 7);
  col[3] = __builtin_shufflevector(p3, p3, 0, 4, 1, 5, 2, 6, 3, 7);
}

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
  int simd;       /* conv_geom.simd */
  int slices;     /* tiles_body: runs of tiles with a dU each, dealt to members */
} wg_plan;


static size_t clamp_multiple(size_t budget, size_t per, size_t m, size_t lo, size_t hi) {
  size_t n = budget / per / m * m;
  if (n < lo)
    n = lo;
  return n > hi ? hi : n;
}

/* Threads the gradient may use. */
static int wg_threads(const wg_plan *p) {
  int n = p->threads < PAR_MAX_THREADS ? p->threads : PAR_MAX_THREADS;
  return n < 1 ? 1 : n;
}

/* Passes of output channels a member is dealt on average when members
 * split the channels (rows_body), at least. */
#define WG_ROW_PASSES 4

/* Filters of a pass per chunk of pass_filters dealt in tiles_body. */
#define WG_FILTER_CHUNK 64

/* Runs of tiles each member of tiles_body is dealt on average on images
 * of at least WG_MIN_SLICE_TILES tiles a run; one run a member below. */
#define WG_MEMBER_SLICES 2
#define WG_MIN_SLICE_TILES 128

/* Whether the gradient runs as rows_body: all tiles are one block (at
 * most WG_MAX_TILE_BLOCK), and the team splits the output channels.  A
 * lone member takes this way too, for its products' dU that stays in L1. */
static int split_rows(const wg_plan *p, int nth) {
  return p->tiles <= p->tile_block && p->kout >= KR * nth;
}

/* Members of the team: all threads when they split the channels, else no
 * more than there are panels of tiles to share. */
static int wg_members(const wg_plan *p) {
  const int n = wg_threads(p);
  if (split_rows(p, n))
    return n;
  long panels = (p->tiles + LANES - 1) / LANES;
  return panels < n ? (int)panels : n;
}

/* Blocks and passes for scratch budgets divided by share. */
static void plan_blocks(wg_plan *p, size_t share) {
  size_t t_all = round_up((size_t)p->tiles, LANES);
  size_t tb_max = t_all < WG_MAX_TILE_BLOCK ? t_all : WG_MAX_TILE_BLOCK;
  p->tile_block =
      (int)clamp_multiple(WG_V_FLOATS / share, (size_t)NXI * p->cpad, LANES, LANES, tb_max);
  size_t k_all = round_up((size_t)p->kout, KR);
  size_t kch = clamp_multiple(WG_DU_FLOATS / share, (size_t)NXI * p->cpad, KR, KR, k_all);
  /* Smaller blocks rather than a second pass, which would transform every
   * input again. */
  size_t tb_m = clamp_multiple(WG_M_FLOATS / share, (size_t)NXI * kch, LANES, WG_MIN_TILE_BLOCK,
                               (size_t)p->tile_block);
  if (tb_m < (size_t)p->tile_block)
    p->tile_block = (int)tb_m;
  size_t kch_m =
      clamp_multiple(WG_M_FLOATS / share, (size_t)NXI * p->tile_block, KR, KR, k_all);
  if (kch_m < kch)
    kch = kch_m;
  /* Even passes: 100 channels in chunks of 54 would leave a thin second
   * pass. */
  size_t passes = (k_all + kch - 1) / kch;
  p->kch = (int)round_up((k_all / KR + passes - 1) / passes * KR, KR);
}

/* All the tiles in one block when they are few and V fits its budget:
 * rows_body then transforms V once, and Mdy's budget bounds the channels
 * of a pass rather than the tiles of a block.  VGG's 56x56 layers (196
 * tiles) took 0.65-0.75x tiles_body's time so, on one thread and two. */
static void one_block(wg_plan *p) {
  size_t t_all = round_up((size_t)p->tiles, LANES);
  if ((size_t)p->tile_block >= t_all || t_all > WG_MAX_TILE_BLOCK ||
      t_all * NXI * p->cpad > WG_V_FLOATS)
    return;
  size_t kch_m = clamp_multiple(WG_M_FLOATS, (size_t)NXI * t_all, KR, KR,
                                round_up((size_t)p->kout, KR));
  p->tile_block = (int)t_all;
  if (kch_m < (size_t)p->kch)
    p->kch = (int)kch_m;
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
  p->simd = g->simd;
  plan_blocks(p, 1);
  one_block(p);
  const int n = wg_members(p);
  if (split_rows(p, n) && n > 1) {
    /* Passes small enough that each member is dealt a few. */
    size_t share = ((size_t)(p->kout + KR - 1) / KR + WG_ROW_PASSES * (size_t)n - 1) /
                   (WG_ROW_PASSES * (size_t)n) * KR;
    if (share < (size_t)p->kch)
      p->kch = (int)share;
  } else if (n > 2) {
    /* Members that split the tiles each hold a V, Mdy and dU: beyond two,
     * their budgets shrink so that the scratch stays near two members'
     * (a 64-thread host would otherwise ask for 1 GB). */
    plan_blocks(p, (size_t)n / 2);
  }
  /* More slices than members only where their dUs fit the members'
   * budgets (the early, narrow layers, which have the most tiles). */
  p->slices = n;
  if (n > 1 && !split_rows(p, n) && p->tiles >= (long)n * WG_MEMBER_SLICES * WG_MIN_SLICE_TILES &&
      (size_t)NXI * p->kch * p->cpad * WG_MEMBER_SLICES <= WG_DU_FLOATS)
    p->slices = n * WG_MEMBER_SLICES;
}

/* Distance between the planes of two points: an odd number of cache
 * lines.  A transform writes one line to each of the 36 planes at once; at
 * a multiple of 4 KB apart they would all fall in one L1 set. */
static size_t plane_stride(size_t floats) {
  size_t lines = (floats + ALIGN_FLOATS - 1) / ALIGN_FLOATS;
  return (lines | 1) * ALIGN_FLOATS;
}

static size_t v_stride(const wg_plan *p) {
  return plane_stride((size_t)p->cpad * p->tile_block);
}

static size_t m_stride(const wg_plan *p) {
  return plane_stride((size_t)p->kch * p->tile_block);
}

static size_t v_floats(const wg_plan *p) { return NXI * v_stride(p); }

static size_t m_floats(const wg_plan *p) { return NXI * m_stride(p); }

static size_t du_floats(const wg_plan *p) {
  return round_up((size_t)NXI * p->kch * p->cpad, ALIGN_FLOATS);
}

/* The transforms work on 8 lanes per vector, each half of a panel in
 * turn: GCC splits 16-float vectors into 16-byte pieces through the stack.
 * Lanes are input channels for V, tiles for Mdy. */
#define HALF 8

/* ---- input transform: V = B^T d B ---- */

/* d[point] = the 6x6 input block of tile t in channels [0, n) of img (n
 * <= 8); positions outside the image and lanes past n read zero. */
WG_INLINE void gather_inputs(const wg_plan *p, const float *img, long t, int n, v8 *d) {
  const size_t plane = (size_t)p->height * p->width;
  int y0 = (int)(t / p->tiles_w) * 4 - p->pad_h;
  int x0 = (int)(t % p->tiles_w) * 4 - p->pad_w;
  if (n == HALF && y0 >= 0 && x0 >= 0 && y0 + WT <= p->height && x0 + 8 <= p->width) {
    /* Rows of 8 channels transposed in registers (8 values read, 6 used). */
    for (int i = 0; i < WT; i++) {
      v8 r[8];
      const float *src = img + (size_t)(y0 + i) * p->width + x0;
      for (int l = 0; l < 8; l++) {
        r[l] = ld8(src + l * plane);
        /* Too many rows at once for the hardware prefetcher; tiles 4
         * and 5 ahead read this line's successor. */
        __builtin_prefetch(src + l * plane + 16);
      }
      v8 col[8];
      transpose8(r, col);
      for (int j = 0; j < WT; j++)
        d[i * WT + j] = col[j];
    }
    return;
  }
  float buf[NXI * HALF] __attribute__((aligned(32)));
  memset(buf, 0, sizeof buf);
  for (int l = 0; l < n; l++) {
    const float *src = img + l * plane;
    for (int i = 0; i < WT; i++) {
      int y = y0 + i;
      if (y < 0 || y >= p->height)
        continue;
      for (int j = 0; j < WT; j++) {
        int x = x0 + j;
        if (x >= 0 && x < p->width)
          buf[(i * WT + j) * HALF + l] = src[(size_t)y * p->width + x];
      }
    }
  }
  for (int i = 0; i < NXI; i++)
    d[i] = ld8(buf + i * HALF);
}

/* v[xi * xi_stride + lane] for tile t, channels [0, n) of img (n <= 16). */
WG_INLINE void input_tile_body(const wg_plan *p, const float *img, long t, int n, float *v,
                               size_t xi_stride) {
  const size_t plane = (size_t)p->height * p->width;
  for (int h = 0; h < LANES; h += HALF) {
    v8 d[NXI], r[NXI], o[NXI];
    int nh = n - h < 0 ? 0 : (n - h > HALF ? HALF : n - h);
    gather_inputs(p, img + (size_t)h * plane, t, nh, d);
    for (int i = 0; i < WT; i++) {
      const v8 *row = d + i * WT;
      wino_input_1d(row[0], row[1], row[2], row[3], row[4], row[5], r + i * WT, 1);
    }
    for (int b = 0; b < WT; b++)
      wino_input_1d(r[b], r[WT + b], r[2 * WT + b], r[3 * WT + b], r[4 * WT + b], r[5 * WT + b],
               o + b, WT);
    for (int xi = 0; xi < NXI; xi++)
      st8(v + xi * xi_stride + h, o[xi]);
  }
}

/* ---- output gradient transform: A dY A^T ---- */


/* d[point] = the 4x4 output gradient of tiles [t0, t0 + 8) in plane dy;
 * positions past the output and lanes past the last tile read zero. */
WG_INLINE void gather_grads(const wg_plan *p, const float *dy, long t0, v8 *d) {
  int oy = (int)(t0 / p->tiles_w) * 4, ox = (int)(t0 % p->tiles_w) * 4;
  if (oy + 4 <= p->out_h && ox + 32 <= p->out_w) {
    /* 8 tiles side by side in one row of tiles: each of their rows is 32
     * consecutive values, de-interleaved in registers. */
    for (int i = 0; i < 4; i++) {
      const float *src = dy + (size_t)(oy + i) * p->out_w + ox;
      v8 r[4];
      for (int q = 0; q < 4; q++)
        r[q] = ld8(src + 8 * q);
      deinterleave4(r, d + i * 4);
    }
    return;
  }
  float buf[16 * HALF] __attribute__((aligned(32)));
  memset(buf, 0, sizeof buf);
  for (int l = 0; l < HALF && t0 + l < p->tiles; l++) {
    long t = t0 + l;
    int ty = (int)(t / p->tiles_w) * 4, tx = (int)(t % p->tiles_w) * 4;
    int rows = p->out_h - ty < 4 ? p->out_h - ty : 4;
    int cols = p->out_w - tx < 4 ? p->out_w - tx : 4;
    const float *src = dy + (size_t)ty * p->out_w + tx;
    for (int i = 0; i < rows; i++, src += p->out_w)
      for (int j = 0; j < cols; j++)
        buf[(i * 4 + j) * HALF + l] = src[j];
  }
  for (int i = 0; i < 16; i++)
    d[i] = ld8(buf + i * HALF);
}

/* m[xi * xi_stride + lane] for tiles [t0, t0 + 16) of plane dy. */
WG_INLINE void grad_panel_body(const wg_plan *p, const float *dy, long t0, float *m,
                               size_t xi_stride) {
  for (int h = 0; h < LANES; h += HALF) {
    v8 d[16], r[4 * WT], o[NXI];
    gather_grads(p, dy, t0 + h, d);
    for (int i = 0; i < 4; i++)
      wino_grad_1d(d[i * 4], d[i * 4 + 1], d[i * 4 + 2], d[i * 4 + 3], r + i * WT, 1);
    for (int b = 0; b < WT; b++)
      wino_grad_1d(r[b], r[WT + b], r[2 * WT + b], r[3 * WT + b], o + b, WT);
    for (int xi = 0; xi < NXI; xi++)
      st8(m + xi * xi_stride + h, o[xi]);
  }
}

/* ---- products: a 6 x 16 register block, reduction over tiles ---- */

/* c (6 rows of 16, ldc apart) = (or +=, when acc) a (6 rows of n tiles,
 * lda apart) times b (n x 16): wino_product_6x16, in chains. */

/* ---- filter gradient: G^T dU G, 8 input channels per vector ---- */

/* wd[lane * 9 + tap] += (G^T dU G)[tap] for lanes [0, n), dU read at
 * du[xi * xi_stride + lane]. */
WG_INLINE void filter_grad_body(const float *du, size_t xi_stride, int n, float *wd) {
  for (int h = 0; h < LANES && h < n; h += HALF) {
    v8 h6[WT * 3], o[9];
    float g[9 * HALF] __attribute__((aligned(32)));
    for (int a = 0; a < WT; a++) {
      const float *row = du + (size_t)a * WT * xi_stride + h;
      wino_filter_grad_1d(ld8(row), ld8(row + xi_stride), ld8(row + 2 * xi_stride),
                     ld8(row + 3 * xi_stride), ld8(row + 4 * xi_stride),
                     ld8(row + 5 * xi_stride), h6 + a * 3, 1);
    }
    for (int j = 0; j < 3; j++)
      wino_filter_grad_1d(h6[j], h6[3 + j], h6[6 + j], h6[9 + j], h6[12 + j], h6[15 + j], o + j, 3);
    int nh = n - h > HALF ? HALF : n - h;
    float *dst = wd + (size_t)h * 9;
    if (nh == HALF) {
      /* Each lane's 9 taps are consecutive in w_diff: taps 0-7 of the
       * 8 lanes transposed in registers, tap 8 one by one. */
      v8 t[8];
      transpose8(o, t);
      st8(g, o[8]);
      for (int l = 0; l < HALF; l++) {
        st8(dst + l * 9, ld8(dst + l * 9) + t[l]);
        dst[l * 9 + 8] += g[l];
      }
      continue;
    }
    for (int i = 0; i < 9; i++)
      st8(g + i * HALF, o[i]);
    for (int l = 0; l < nh; l++)
      for (int i = 0; i < 9; i++)
        dst[l * 9 + i] += g[i * HALF + l];
  }
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
    wino_product_6x16(n, a, lda, b, c, ldc, acc);                                              \
  }                                                                                            \
  attr static void filter_grad_##suffix(const float *du, size_t xi_stride, int n, float *wd) { \
    filter_grad_body(du, xi_stride, n, wd);                                                    \
  }                                                                                            \
  static const wg_kernels kernels_##suffix = {input_tile_##suffix, grad_panel_##suffix,        \
                                              product_block_##suffix, filter_grad_##suffix};

WG_VARIANT(generic, )
#ifdef SIMD_HAVE_AVX2
WG_VARIANT(avx2, SIMD_AVX2)
#endif

/* CREMA_SIMD_GENERIC forces the portable kernels (math/simd.h). */
static const wg_kernels *pick_kernels(int simd) {
  return SIMD_PICK(simd, &kernels_generic, &kernels_avx2);
}

/* ---- the blocked loop: slices of tiles or passes of channels, dealt ---- */

typedef struct wg_job {
  const wg_plan *p;
  const wg_kernels *kern;
  const float *in, *out_diff;
  float *w_diff, *ws;
  par_dealer inputs, rows; /* rows_body's chunks of V and of output channels */
  long input_chunks;       /* the chunks V is cut in, whatever the team's size */
  par_dealer slices, filters; /* tiles_body's */
} wg_job;

/* One member's pass over one block of a slice's tiles. */
typedef struct wg_step {
  const float *in, *dy;
  long t0;
  int nt;   /* tiles in the block */
  int k0;   /* first output channel of the pass */
  int rows; /* output channels in the pass */
} wg_step;

/* Items [lo, hi) of V[xi][panel][tile][lane] for the block, numbered
 * panel by panel: the panel's rows stay in cache from one tile to the
 * next, and each point's values go to consecutive lines. */
static void block_inputs(const wg_job *j, const wg_step *st, float *v, long lo, long hi) {
  const wg_plan *p = j->p;
  const size_t plane = (size_t)p->height * p->width;
  const size_t xi_stride = v_stride(p);
  for (long i = lo; i < hi; i++) {
    int pn = (int)(i / st->nt), t = (int)(i % st->nt);
    int c0 = pn * LANES;
    int n = p->cin - c0 < LANES ? p->cin - c0 : LANES;
    j->kern->input_tile(p, st->in + (size_t)c0 * plane, st->t0 + t, n,
                        v + ((size_t)pn * p->tile_block + t) * LANES, xi_stride);
  }
}

static long block_input_items(const wg_plan *p, const wg_step *st) {
  return (long)(p->cpad / LANES) * st->nt;
}

/* Mdy[xi][row][tile] for the pass's output channels; rows up to the next
 * whole product block are zero. */
static void block_grads(const wg_job *j, const wg_step *st, float *m) {
  const wg_plan *p = j->p;
  const size_t plane = (size_t)p->out_h * p->out_w;
  const size_t xi_stride = m_stride(p);
  const int rows = (int)round_up((size_t)st->rows, KR);
  for (int r = 0; r < rows; r++)
    for (int t = 0; t < st->nt; t += LANES) {
      float *dst = m + (size_t)r * p->tile_block + t;
      if (r >= st->rows) {
        for (int xi = 0; xi < NXI; xi++)
          memset(dst + xi * xi_stride, 0, LANES * sizeof(float));
        continue;
      }
      j->kern->grad_panel(p, st->dy + (size_t)(st->k0 + r) * plane, st->t0 + t, dst, xi_stride);
    }
}

/* dU is laid out [row][panel][xi][lane], so that each filter's 36
 * points are contiguous for the final transform. */
static size_t du_offset(const wg_plan *p, int row, int panel, int xi) {
  return (((size_t)row * (p->cpad / LANES) + panel) * NXI + xi) * LANES;
}

/* dU[xi] (+)= Mdy[xi] V[xi]^T for every point xi. */
static void block_products(const wg_job *j, const wg_step *st, const float *m, const float *v,
                           float *du, int acc) {
  const wg_plan *p = j->p;
  const int rows = (int)round_up((size_t)st->rows, KR);
  const int panels = p->cpad / LANES;
  const size_t ldc = du_offset(p, 1, 0, 0);
  for (int xi = 0; xi < NXI; xi++) {
    const float *mxi = m + (size_t)xi * m_stride(p);
    const float *vxi = v + (size_t)xi * v_stride(p);
    for (int pn = 0; pn < panels; pn++)
      for (int r = 0; r < rows; r += KR)
        j->kern->product_block(st->nt, mxi + (size_t)r * p->tile_block, (size_t)p->tile_block,
                               vxi + (size_t)pn * LANES * p->tile_block,
                               du + du_offset(p, r, pn, xi), ldc, acc);
  }
}

/* dU of one product block: KR filters' 36 points for one panel of
 * input channels, laid out as du_offset's [row][xi][lane]. */
#define BLOCK_DU_FLOATS ((size_t)KR * NXI * LANES)

/* Floats of one member's scratch: its V and Mdy, next to a dU per slice
 * (tiles_body); when members split the output channels (rows_body), its
 * Mdy and one product block's dU next to a shared V. */
static size_t member_floats(const wg_plan *p) {
  return round_up(v_floats(p) + m_floats(p), ALIGN_FLOATS);
}

static size_t rows_member_floats(const wg_plan *p) {
  return round_up(m_floats(p) + BLOCK_DU_FLOATS, ALIGN_FLOATS);
}

/* w_diff += G^T (sum of the dUs, in order) G for the pass's filters
 * [lo, hi), numbered by (row, panel). */
static void pass_filters(const wg_job *j, const wg_step *st, float *const *du, int slices,
                         float *w_diff, long lo, long hi) {
  const wg_plan *p = j->p;
  const int panels = p->cpad / LANES;
  float sum[NXI * LANES] __attribute__((aligned(64)));
  for (long i = lo; i < hi; i++) {
    int r = (int)(i / panels), pn = (int)(i % panels), c0 = pn * LANES;
    int n = p->cin - c0 < LANES ? p->cin - c0 : LANES;
    const size_t off = du_offset(p, r, pn, 0);
    const float *src = du[0] + off;
    if (slices > 1) {
      memcpy(sum, src, sizeof sum);
      for (int t = 1; t < slices; t++)
        for (int k = 0; k < NXI * LANES; k++)
          sum[k] += du[t][off + k];
      src = sum;
    }
    j->kern->filter_grad(src, LANES, n, w_diff + ((size_t)(st->k0 + r) * p->cin + c0) * 9);
  }
}

/* w_diff += G^T dU G for the whole pass when all tiles are one block
 * (rows_body): each KR x LANES product block's dU is transformed while it
 * is in L1, instead of the pass's dU (megabytes for 512 channels) being
 * written out and read back.  Panel by panel, so that the panel's V stays
 * in cache over the pass's rows.  The same products and transforms as
 * block_products and pass_filters, so the same bits. */
static void pass_products_filters(const wg_job *j, const wg_step *st, const float *m,
                                  const float *v, float *du, float *w_diff) {
  const wg_plan *p = j->p;
  const int rows = (int)round_up((size_t)st->rows, KR);
  const int panels = p->cpad / LANES;
  const size_t row_floats = (size_t)NXI * LANES;
  for (int pn = 0; pn < panels; pn++) {
    const int c0 = pn * LANES;
    const int n = p->cin - c0 < LANES ? p->cin - c0 : LANES;
    for (int r = 0; r < rows; r += KR) {
      for (int xi = 0; xi < NXI; xi++)
        j->kern->product_block(st->nt, m + (size_t)xi * m_stride(p) + (size_t)r * p->tile_block,
                               (size_t)p->tile_block,
                               v + (size_t)xi * v_stride(p) + (size_t)pn * LANES * p->tile_block,
                               du + (size_t)xi * LANES, row_floats, 0);
      for (int k = 0; k < KR && r + k < st->rows; k++)
        j->kern->filter_grad(du + (size_t)k * row_floats, LANES, n,
                             w_diff + ((size_t)(st->k0 + r + k) * p->cin + c0) * 9);
    }
  }
}

/* Slice s of the tiles, [*lo, *hi), and the tiles per block that cut it
 * into even blocks. */
static int slice_tiles(const wg_plan *p, int s, long *lo, long *hi) {
  par_split(p->tiles, s, p->slices, lo, hi);
  long n = *hi - *lo, blocks = (n + p->tile_block - 1) / p->tile_block;
  return blocks > 0 ? (int)round_up((size_t)((n + blocks - 1) / blocks), LANES) : 0;
}

/* Members split the tiles: they are dealt slices of them, each summed in
 * a dU of its own over its blocks, and then filters, for which they add
 * the slices' dUs in order.  Who works a slice does not change its sum.
 * Splitting the 36 products of each block among members instead, as
 * before, left every operand half in the other core's cache: with two
 * threads each member ran 40% slower than one alone. */
static void tiles_body(par_team *team, int tid, int nth, void *ctx) {
  wg_job *j = ctx;
  const wg_plan *p = j->p;
  float *base = align_line(j->ws);
  float *du_of[PAR_MAX_THREADS * WG_MEMBER_SLICES];
  for (int t = 0; t < p->slices; t++)
    du_of[t] = base + (size_t)nth * member_floats(p) + (size_t)t * du_floats(p);
  float *v = base + (size_t)tid * member_floats(p);
  float *m = v + v_floats(p);
  const int panels = p->cpad / LANES;
  /* The slice whose V (a single block) this member holds, if any. */
  int v_slice = -1;
  for (int grp = 0; grp < p->group; grp++, v_slice = -1) {
    wg_step st;
    st.in = j->in + (size_t)grp * p->cin * p->height * p->width;
    st.dy = j->out_diff + (size_t)grp * p->kout * p->out_h * p->out_w;
    float *w_diff = j->w_diff + (size_t)grp * p->kout * p->cin * 9;
    for (st.k0 = 0; st.k0 < p->kout; st.k0 += p->kch) {
      st.rows = p->kout - st.k0 < p->kch ? p->kout - st.k0 : p->kch;
      const long filters = (long)st.rows * panels;
      /* Nobody deals filters between the last pass's second par_sync and
       * this pass's first. */
      if (tid == 0)
        par_dealer_reset(&j->filters, (filters + WG_FILTER_CHUNK - 1) / WG_FILTER_CHUNK);
      for (long s; (s = par_deal(&j->slices)) >= 0;) {
        long t_lo, t_hi;
        const int block = slice_tiles(p, (int)s, &t_lo, &t_hi);
        float *du = du_of[s];
        if (t_lo == t_hi)
          memset(du, 0, du_floats(p) * sizeof(float));
        for (st.t0 = t_lo; st.t0 < t_hi; st.t0 += block) {
          st.nt = (int)(t_hi - st.t0 < block ? t_hi - st.t0 : block);
          if (v_slice != s || t_hi - t_lo > block)
            block_inputs(j, &st, v, 0, block_input_items(p, &st));
          v_slice = t_hi - t_lo > block ? -1 : (int)s;
          block_grads(j, &st, m);
          block_products(j, &st, m, v, du, st.t0 > t_lo);
        }
      }
      par_sync_redeal(team, tid, &j->slices, p->slices);
      for (long c; (c = par_deal(&j->filters)) >= 0;) {
        long lo = c * WG_FILTER_CHUNK, hi = lo + WG_FILTER_CHUNK < filters ? lo + WG_FILTER_CHUNK
                                                                            : filters;
        pass_filters(j, &st, du_of, p->slices, w_diff, lo, hi);
      }
      /* The dUs are rewritten by the next pass only once all are read. */
      par_sync(team);
    }
  }
}

/* Chunks of V a rows_body member is dealt on average. */
#define WG_INPUT_CHUNKS 8

/* All tiles in one block (at most 256, VGG's 56x56 layers and smaller):
 * V is transformed once per group, by the team together; members are
 * then dealt passes of kch output channels, each through its own Mdy,
 * the filters transformed product block by product block
 * (pass_products_filters), so no pass-sized dU is written.  A pass's result
 * does not depend on who works it.  Against tiles_body's dU per pass, this
 * took 0.85-0.95x the time of VGG's 28x28 and 14x14 layers on one thread
 * and on two. */
static void rows_body(par_team *team, int tid, int nth, void *ctx) {
  wg_job *j = ctx;
  const wg_plan *p = j->p;
  /* One shared V, then each member's Mdy and dU. */
  float *v = align_line(j->ws);
  float *m = v + v_floats(p) + (size_t)tid * rows_member_floats(p);
  float *du = m + m_floats(p);
  const long input_chunks = j->input_chunks;
  for (int grp = 0; grp < p->group; grp++) {
    wg_step st = {.t0 = 0, .nt = (int)p->tiles};
    st.in = j->in + (size_t)grp * p->cin * p->height * p->width;
    st.dy = j->out_diff + (size_t)grp * p->kout * p->out_h * p->out_w;
    float *w_diff = j->w_diff + (size_t)grp * p->kout * p->cin * 9;
    for (long c; (c = par_deal(&j->inputs)) >= 0;) {
      long lo, hi;
      par_split(block_input_items(p, &st), (int)c, (int)input_chunks, &lo, &hi);
      block_inputs(j, &st, v, lo, hi);
    }
    par_sync_redeal(team, tid, &j->inputs, input_chunks);
    for (long c; (c = par_deal(&j->rows)) >= 0;) {
      st.k0 = (int)c * p->kch;
      st.rows = p->kout - st.k0 < p->kch ? p->kout - st.k0 : p->kch;
      block_grads(j, &st, m);
      pass_products_filters(j, &st, m, v, du, w_diff);
    }
    /* The next group's V overwrites this one's. */
    par_sync_redeal(team, tid, &j->rows, (p->kout + p->kch - 1) / p->kch);
  }
}


size_t wino_wgrad_workspace(const conv_geom *g) {
  wg_plan p;
  plan_of(g, &p);
  const int n = wg_members(&p);
  if (split_rows(&p, n))
    return v_floats(&p) + rows_member_floats(&p) * n + ALIGN_FLOATS;
  return member_floats(&p) * n + du_floats(&p) * p.slices + ALIGN_FLOATS;
}

void wino_backward_weights(const conv_geom *g, const float *in, const float *out_diff,
                           float *w_diff, float *ws) {
  wg_plan p;
  plan_of(g, &p);
  wg_job j = {&p, pick_kernels(p.simd), in, out_diff, w_diff, ws};
  int nth = wg_members(&p);
  /* The scratch is laid out for the planned team's way of splitting,
   * whichever team runs it. */
  const int by_rows = split_rows(&p, nth);
  double work = (double)NXI * round_up((size_t)p.kout, KR) * p.cpad * (double)p.tiles * p.group;
  if (work < WG_PARALLEL_MIN)
    nth = 1;
  /* Cut for the planned team: the one that runs may be smaller (a job
   * started inside a job runs alone). */
  j.input_chunks = (long)nth * WG_INPUT_CHUNKS;
  par_dealer_reset(&j.inputs, j.input_chunks);
  par_dealer_reset(&j.rows, (p.kout + p.kch - 1) / p.kch);
  par_dealer_reset(&j.slices, p.slices);
  par_run(nth, by_rows ? rows_body : tiles_body, &j);
}

/* Measured against im2col + SGEMM with AVX2 (one thread): 0.35-0.5x its
 * time from 28x28 outputs up, 0.6-0.8x at 14x14 and 12x12, but 1.2-1.3x at
 * 10x10, where the 9 tiles are half padding and the per-filter transforms
 * are no longer small next to the products.  When members shared each
 * block's products a second thread gained almost nothing at 14x14, and
 * gemm kept those layers; with members splitting the output channels
 * there, Winograd was ahead on 2 threads too (5.1-6.2 against 6.4-7.8 ms
 * for 512 channels at 14x14, medians of alternating runs on a busy host). */
int wino_wgrad_preferred(const conv_geom *g) {
  const im2col_shape *s = &g->in;
  return pick_kernels(g->simd) != &kernels_generic && s->channels / g->group >= 16 &&
         g->out_channels / g->group >= 16 && (long)s->out_h * s->out_w >= 144;
}
