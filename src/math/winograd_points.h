/* What the Winograd F(4x4,3x3) engines share: the forward and
 * data-gradient engine (math/winograd.c) and the weight gradient
 * (math/winograd_wgrad.c) use one tile layout (below) and one set of
 * interpolation points, the one place that fixes their transform
 * matrices.
 *
 * F(4,3) evaluates the input and filter polynomials at five points and
 * infinity.  The classic choice, 0, 1, -1, 2, -2, makes the matrices
 * carry 4, 5 and 8 and the filter transform 1/24; on VGG-16's 512-channel
 * layers that lost three decimal digits against a float64 reference, ten
 * times gemm's error, and full-width nets drifted out of the golden
 * tolerance against Caffe.  Replacing 2 by 1/2 balances the magnitudes
 * (Barabasz et al., "Error analysis and improving the accuracy of
 * Winograd convolution", 2020): measured on VGG-16, the largest relative
 * error of a layer's output fell several-fold, and with the products'
 * sums cut into chains of WINO_CHAIN channels (simd_product_6x16) it is
 * on a par with im2col + SGEMM.  Powers of two rescale exactly, so the
 * other choices of scale are equivalent; those below keep the output
 * matrix A^T's last column (0, 0, 0, 1).
 *
 * For the points a_j (0, 1, -1, 1/2, -2) and infinity:
 *   B^T row j = coefficients of prod_{l != j} (x - a_l), row 5 of
 *               prod_l (x - a_l);
 *   G row j   = (1, a_j, a_j^2) / prod_{l != j} (a_j - a_l), row 5 (0, 0, 1);
 *   A^T col j = (1, a_j, a_j^2, a_j^3), col 5 (0, 0, 0, 1).
 *
 *        | 1 -3/2  -2  3/2  1  0 |        |    1     0     0 |
 *        | 0  -1  1/2  5/2  1  0 |        |  1/3   1/3   1/3 |
 *  B^T = | 0   1 -5/2  1/2  1  0 |    G = | -1/3   1/3  -1/3 |
 *        | 0  -2   -1    2  1  0 |        | -16/15 -8/15 -4/15 |
 *        | 0  1/2  -1 -1/2  1  0 |        | 1/15 -2/15  4/15 |
 *        | 0   1 -3/2   -2 3/2 1 |        |    0     0     1 |
 *
 *        | 1  1  1   1    1  0 |
 *  A^T = | 0  1 -1  1/2  -2  0 |
 *        | 0  1  1  1/4   4  0 |
 *        | 0  1 -1  1/8  -8  1 |
 *
 * Y = A^T [(G g G^T) . (B^T d B)] A is the 4x4 correlation of the 6x6
 * input d with the 3x3 filter g.  The tables are what tests check the
 * hand-written one-dimensional transforms below against; the kernels use
 * the transforms, written out so that no multiply by 0 or 1 is left. */
#ifndef CREMA_MATH_WINOGRAD_POINTS_H
#define CREMA_MATH_WINOGRAD_POINTS_H

#include <stddef.h>
#include <stdint.h>

#include "math/simd.h"

/* ---- the layout both engines use ---- */

#define WT 6     /* transformed tile side */
#define NXI 36   /* transformed points */
#define LANES 16 /* lanes of a panel: tiles, or input channels of the weight gradient's V */
#define KR 6     /* output channels per product block */

/* Floats of slack to align the scratch to a cache line: a 32-byte load
 * that straddles two lines costs two. */
#define ALIGN_FLOATS 16

static inline size_t round_up(size_t n, size_t m) { return (n + m - 1) / m * m; }

/* ws rounded up to the next 64-byte line. */
static inline float *align_line(float *ws) {
  uintptr_t a = (uintptr_t)ws;
  return (float *)((a + 63) & ~(uintptr_t)63);
}

/* Channels (or tiles) summed in one chain before the chain's sum is added
 * to the running total: the rounding error of a long sum grows with its
 * length, and the 4608 terms of a 512-channel layer's products were half
 * of what separated Winograd from gemm. */
#define WINO_CHAIN 32

static const double wino_bt[6][6] = {
    {1, -1.5, -2, 1.5, 1, 0},  {0, -1, 0.5, 2.5, 1, 0},  {0, 1, -2.5, 0.5, 1, 0},
    {0, -2, -1, 2, 1, 0},      {0, 0.5, -1, -0.5, 1, 0}, {0, 1, -1.5, -2, 1.5, 1}};

static const double wino_g[6][3] = {{1, 0, 0},
                                    {1.0 / 3, 1.0 / 3, 1.0 / 3},
                                    {-1.0 / 3, 1.0 / 3, -1.0 / 3},
                                    {-16.0 / 15, -8.0 / 15, -4.0 / 15},
                                    {1.0 / 15, -2.0 / 15, 4.0 / 15},
                                    {0, 0, 1}};

static const double wino_at[4][6] = {{1, 1, 1, 1, 1, 0},
                                     {0, 1, -1, 0.5, -2, 0},
                                     {0, 1, 1, 0.25, 4, 0},
                                     {0, 1, -1, 0.125, -8, 1}};

/* o[i * step] = (B^T d)[i]: the input transform along one axis. */
SIMD_INLINE void wino_input_1d(v8 d0, v8 d1, v8 d2, v8 d3, v8 d4, v8 d5, v8 *o, int step) {
  o[0] = d0 + d4 + 1.5f * (d3 - d1) - 2.0f * d2;
  o[step] = d4 - d1 + 0.5f * d2 + 2.5f * d3;
  o[2 * step] = d4 + d1 - 2.5f * d2 + 0.5f * d3;
  o[3 * step] = d4 - d2 + 2.0f * (d3 - d1);
  o[4 * step] = d4 - d2 + 0.5f * (d1 - d3);
  o[5 * step] = d1 + d5 + 1.5f * (d4 - d2) - 2.0f * d3;
}

/* Component a of G times the column (g0, g1, g2): the filter transform
 * along one axis. */
SIMD_INLINE v8 wino_filter_comp(int a, v8 g0, v8 g1, v8 g2) {
  switch (a) {
  case 0:
    return g0;
  case 1:
    return (1.0f / 3) * (g0 + g1 + g2);
  case 2:
    return (1.0f / 3) * (g1 - g0 - g2);
  case 3:
    return (-16.0f / 15) * g0 - (8.0f / 15) * g1 - (4.0f / 15) * g2;
  case 4:
    return (1.0f / 15) * g0 - (2.0f / 15) * g1 + (4.0f / 15) * g2;
  default:
    return g2;
  }
}

/* o[0..3] = A^T m: the output transform along one axis. */
SIMD_INLINE void wino_output_1d(v8 m0, v8 m1, v8 m2, v8 m3, v8 m4, v8 m5, v8 *o) {
  v8 s12 = m1 + m2, d12 = m1 - m2;
  o[0] = m0 + s12 + m3 + m4;
  o[1] = d12 + 0.5f * m3 - 2.0f * m4;
  o[2] = s12 + 0.25f * m3 + 4.0f * m4;
  o[3] = d12 + 0.125f * m3 - 8.0f * m4 + m5;
}

/* o[j * step] = (A y)[j]: the output gradient's transform along one axis
 * (the transpose of wino_output_1d). */
SIMD_INLINE void wino_grad_1d(v8 y0, v8 y1, v8 y2, v8 y3, v8 *o, int step) {
  v8 e = y0 + y2, f = y1 + y3;
  o[0] = y0;
  o[step] = e + f;
  o[2 * step] = e - f;
  o[3 * step] = y0 + 0.5f * y1 + 0.25f * y2 + 0.125f * y3;
  o[4 * step] = y0 - 2.0f * y1 + 4.0f * y2 - 8.0f * y3;
  o[5 * step] = y3;
}

/* o[k * step] = (G^T x)[k]: the filter gradient's transform along one
 * axis (the transpose of wino_filter_comp). */
SIMD_INLINE void wino_filter_grad_1d(v8 x0, v8 x1, v8 x2, v8 x3, v8 x4, v8 x5, v8 *o,
                                     int step) {
  v8 s12 = x1 + x2, d12 = x1 - x2;
  o[0] = x0 + (1.0f / 3) * d12 - (16.0f / 15) * x3 + (1.0f / 15) * x4;
  o[step] = (1.0f / 3) * s12 - (8.0f / 15) * x3 - (2.0f / 15) * x4;
  o[2 * step] = x5 + (1.0f / 3) * d12 - (4.0f / 15) * (x3 - x4);
}

/* simd_product_6x16 over n channels (or tiles) in chains of WINO_CHAIN,
 * each chain's sum added to c in turn. */
SIMD_INLINE void wino_product_6x16(int n, const float *a, size_t lda, const float *b, float *c,
                                   size_t ldc, int acc) {
  for (int t = 0; t < n; t += WINO_CHAIN)
    simd_product_6x16(n - t < WINO_CHAIN ? n - t : WINO_CHAIN, a + t, lda, b + (size_t)t * 16, c,
                      ldc, acc || t > 0);
}

#endif
