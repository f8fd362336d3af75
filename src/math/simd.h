/* 8-float vectors for the convolution kernels (GCC vector extensions).
 *
 * Kernels are written once as always-inlined bodies over these helpers and
 * compiled twice, into functions with target("avx2,fma") and into baseline
 * ones; simd_use_avx2 picks between them at run time.  The helpers carry
 * no target of their own, so they inline into either. */
#ifndef CREMA_MATH_SIMD_H
#define CREMA_MATH_SIMD_H

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "crema.h"

typedef float v8 __attribute__((vector_size(32)));
typedef int v8i __attribute__((vector_size(32)));

/* Vector values only cross always-inlined helpers, never a real call. */
#pragma GCC diagnostic ignored "-Wpsabi"

#define SIMD_INLINE static inline __attribute__((always_inline))

/* Where the AVX2+FMA variants can be compiled, the attribute that makes
 * a function one. */
#if defined(__x86_64__) && defined(__GNUC__)
#define SIMD_HAVE_AVX2 1
#define SIMD_AVX2 __attribute__((target("avx2,fma")))
#endif

/* Unaligned load and store. */
SIMD_INLINE v8 ld8(const float *p) {
  v8 v;
  memcpy(&v, p, sizeof v);
  return v;
}

SIMD_INLINE void st8(float *p, v8 v) { memcpy(p, &v, sizeof v); }

/* relu_caffe (math/activation.h) with slope 0, lane by lane, to the bit. */
SIMD_INLINE v8 relu8(v8 x) {
  const v8 zero = {0};
  v8 pos = (v8)((v8i)x & ~(x < zero));
  v8 neg = (v8)((v8i)x & ~(zero < x));
  return pos + 0.0f * neg;
}

/* ---- shuffles: vunpck/vshufps/vperm2f128 with AVX2, pairs of SSE
 * shuffles in the portable build (__builtin_shufflevector: GCC >= 12 and
 * clang, which builds the fuzzing harnesses) ---- */

SIMD_INLINE v8 unpack_lo(v8 a, v8 b) {
  return __builtin_shufflevector(a, b, 0, 8, 1, 9, 4, 12, 5, 13);
}

SIMD_INLINE v8 unpack_hi(v8 a, v8 b) {
  return __builtin_shufflevector(a, b, 2, 10, 3, 11, 6, 14, 7, 15);
}

/* Low (high) pair of each 128-bit half of a, then of b. */
SIMD_INLINE v8 pairs_lo(v8 a, v8 b) {
  return __builtin_shufflevector(a, b, 0, 1, 8, 9, 4, 5, 12, 13);
}

SIMD_INLINE v8 pairs_hi(v8 a, v8 b) {
  return __builtin_shufflevector(a, b, 2, 3, 10, 11, 6, 7, 14, 15);
}

SIMD_INLINE v8 halves_lo(v8 a, v8 b) {
  return __builtin_shufflevector(a, b, 0, 1, 2, 3, 8, 9, 10, 11);
}

SIMD_INLINE v8 halves_hi(v8 a, v8 b) {
  return __builtin_shufflevector(a, b, 4, 5, 6, 7, 12, 13, 14, 15);
}

/* d[j] = column j of the 8 x 8 matrix whose rows are r[0..7] (callers
 * that use fewer columns let the compiler drop the rest). */
SIMD_INLINE void transpose8(const v8 *r, v8 *d) {
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

/* The register-blocked product of the Winograd engines: c (6 rows of 16,
 * ldc apart) = (or +=, when acc) a (6 rows of n values, lda apart) times
 * b (n rows of 16, contiguous).  12 accumulators, one broadcast and two
 * loads per 12 multiply-adds. */
SIMD_INLINE void simd_product_6x16(int n, const float *a, size_t lda, const float *b, float *c,
                                   size_t ldc, int acc) {
  v8 a0l = {0}, a0h = {0}, a1l = {0}, a1h = {0}, a2l = {0}, a2h = {0};
  v8 a3l = {0}, a3h = {0}, a4l = {0}, a4h = {0}, a5l = {0}, a5h = {0};
  const float *r0 = a, *r1 = a + lda, *r2 = a + 2 * lda, *r3 = a + 3 * lda;
  const float *r4 = a + 4 * lda, *r5 = a + 5 * lda;
  for (int t = 0; t < n; t++, b += 16) {
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

/* Whether to run the AVX2+FMA variants: the CPU has them and simd (a
 * crema_simd, from the net's options) is not CREMA_SIMD_GENERIC, which
 * forces the portable kernels, to test them on any machine. */
static inline int simd_use_avx2(int simd) {
  if (simd == CREMA_SIMD_GENERIC)
    return 0;
#ifdef SIMD_HAVE_AVX2
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  return 0;
#endif
}

/* The AVX2 variant when simd_use_avx2(simd) says so, else the portable
 * one; where AVX2 variants cannot be compiled the avx2 argument is not
 * even expanded. */
#ifdef SIMD_HAVE_AVX2
#define SIMD_PICK(simd, generic, avx2) (simd_use_avx2(simd) ? (avx2) : (generic))
#else
#define SIMD_PICK(simd, generic, avx2) (generic)
#endif

#endif
