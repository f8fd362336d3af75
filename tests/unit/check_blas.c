/* The BLAS wrappers against a double-precision reference: every
 * transposition, one-row and one-column products (which go to gemv),
 * products with K = 1 (outer products),
 * operands that are blocks of larger matrices, alpha and beta, and teams
 * of 1 to 3 threads splitting the output by rows or by columns; the
 * vector operations of the solvers, split likewise. */
#include "config.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include <cblas.h>

#include "core/parallel.h"
#include "math/blas.h"

static void fill(float *x, size_t n, unsigned seed) {
  unsigned s = seed * 2654435761u + 7u;
  for (size_t i = 0; i < n; i++) {
    s = s * 1103515245u + 12345u;
    x[i] = (float)((s >> 8) & 0xffff) / 32768.0f - 1.0f;
  }
}

typedef struct shape {
  int m, n, k;
  int pad; /* extra leading-dimension columns of every operand */
} shape;

static const shape shapes[] = {
    {1, 1, 1, 0},     {1, 37, 19, 0},   {23, 1, 17, 0},  {5, 7, 3, 2},
    {1, 600, 4000, 0}, /* batch-1 fully connected layer: gemv, split */
    {900, 1, 3000, 3}, /* one output column: gemv, split */
    {64, 300, 200, 0}, /* split by columns */
    {400, 40, 150, 5}, /* split by rows, blocks of larger matrices */
    {33, 35, 0, 1},    /* K = 0: C = beta C */
    {7, 33, 1, 2},     /* K = 1: an outer product */
    {16, 50000, 1, 0}, /* K = 1, split by rows (a 1x1 convolution's data gradient) */
};

static void run(const shape *q, int ta, int tb, int threads, float alpha, float beta) {
  const int team = par_threads_enter(threads);
  int m = q->m, n = q->n, k = q->k;
  /* Stored shapes of A (m x k, or k x m when transposed) and B. */
  int ar = ta ? k : m, ac = ta ? m : k, br = tb ? n : k, bc = tb ? k : n;
  int lda = ac + q->pad, ldb = bc + q->pad, ldc = n + q->pad;
  size_t na = (size_t)(ar ? ar : 1) * lda, nb = (size_t)(br ? br : 1) * ldb;
  size_t nc = (size_t)m * ldc;
  float *a = malloc(na * sizeof(float)), *b = malloc(nb * sizeof(float));
  float *c = malloc(nc * sizeof(float)), *c0 = malloc(nc * sizeof(float));
  ck_assert(a && b && c && c0);
  fill(a, na, 1), fill(b, nb, 2), fill(c0, nc, 3);
  for (size_t i = 0; i < nc; i++)
    c[i] = c0[i];
  math_gemm_ld(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  double worst = 0, scale = 1e-30;
  for (int i = 0; i < m; i++)
    for (int j = 0; j < ldc; j++) {
      double want = c0[(size_t)i * ldc + j];
      if (j < n) {
        double s = 0;
        for (int p = 0; p < k; p++)
          s += (double)(ta ? a[(size_t)p * lda + i] : a[(size_t)i * lda + p]) *
               (tb ? b[(size_t)j * ldb + p] : b[(size_t)p * ldb + j]);
        want = alpha * s + beta * want;
      }
      worst = fmax(worst, fabs(c[(size_t)i * ldc + j] - want));
      scale = fmax(scale, fabs(want));
    }
  ck_assert_msg(worst <= 1e-5 * scale,
                "%dx%dx%d ta %d tb %d threads %d alpha %g beta %g: max diff %g of %g", m, n, k,
                ta, tb, threads, (double)alpha, (double)beta, worst, scale);
  free(a), free(b), free(c), free(c0);
  par_threads_leave(team);
}

START_TEST(test_gemm_ld) {
  const shape *q = &shapes[_i];
  for (int threads = 1; threads <= 3; threads++)
    for (int t = 0; t < 4; t++) {
      run(q, t & 1, t >> 1, threads, 0.75f, -0.5f);
      /* What the layers pass: plain products. */
      run(q, t & 1, t >> 1, threads, 1.0f, 0.0f);
    }
}
END_TEST

START_TEST(test_gemv) {
  const int rows = 700, cols = 3001;
  float *a = malloc((size_t)rows * cols * sizeof(float)), *x = malloc(cols * sizeof(float));
  float *y = malloc(cols * sizeof(float)), *y0 = malloc(cols * sizeof(float));
  ck_assert(a && x && y && y0);
  fill(a, (size_t)rows * cols, 4), fill(x, cols, 5), fill(y0, cols, 6);
  const int team = par_threads_enter(2);
  for (int trans = 0; trans < 2; trans++) {
    int out = trans ? cols : rows, in = trans ? rows : cols;
    for (int i = 0; i < out; i++)
      y[i] = y0[i];
    math_gemv(trans, rows, cols, 2.0f, a, x, 0.5f, y);
    for (int i = 0; i < out; i++) {
      double s = 0;
      for (int p = 0; p < in; p++)
        s += (double)(trans ? a[(size_t)p * cols + i] : a[(size_t)i * cols + p]) * x[p];
      double want = 2.0 * s + 0.5 * y0[i];
      ck_assert_msg(fabs(y[i] - want) <= 1e-4 * fmax(1.0, fabs(want)), "trans %d, %d: %g vs %g",
                    trans, i, (double)y[i], want);
    }
  }
  par_threads_leave(team);
  free(a), free(x), free(y), free(y0);
}
END_TEST

/* The vector operations of the solvers' updates, long enough to be split. */
START_TEST(test_vector_ops) {
  const int n = (1 << 20) + 77;
  float *x = malloc((size_t)n * sizeof(float)), *y = malloc((size_t)n * sizeof(float));
  float *y0 = malloc((size_t)n * sizeof(float));
  ck_assert(x && y && y0);
  fill(x, (size_t)n, 7), fill(y0, (size_t)n, 8);
  const int team = par_threads_enter(2);
  for (int op = 0; op < 3; op++) {
    for (int i = 0; i < n; i++)
      y[i] = y0[i];
    if (op == 0)
      math_axpy(n, 0.5f, x, y);
    else if (op == 1)
      math_axpby(n, 0.5f, x, -2.0f, y);
    else
      math_scal(n, 3.0f, y);
    for (int i = 0; i < n; i++) {
      float want = op == 0 ? 0.5f * x[i] + y0[i]
                           : op == 1 ? 0.5f * x[i] + -2.0f * y0[i] : 3.0f * y0[i];
      ck_assert_msg(fabsf(y[i] - want) <= 1e-6f, "op %d, %d: %g vs %g", op, i, (double)y[i],
                    (double)want);
    }
  }
  par_threads_leave(team);
  free(x), free(y), free(y0);
}
END_TEST

/* Stopping OpenBLAS's start-up workers (the crema command does) is
 * idempotent, leaves crema's products right, and OpenBLAS still runs
 * threaded when given threads again (it restarts its workers). */
START_TEST(test_stop_blas_workers) {
  blas_stop_workers();
  blas_stop_workers();
  run(&shapes[0], 0, 1, 2, 1.0f, 0.0f);
  const int n = 384;
  float *a = malloc((size_t)n * n * sizeof(float)), *b = malloc((size_t)n * n * sizeof(float));
  float *c1 = malloc((size_t)n * n * sizeof(float)), *c2 = malloc((size_t)n * n * sizeof(float));
  ck_assert(a && b && c1 && c2);
  for (int i = 0; i < n * n; i++) {
    a[i] = (float)((i * 7) % 13) - 6.0f;
    b[i] = (float)((i * 5) % 11) - 5.0f;
  }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c1, n);
  openblas_set_num_threads(2);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c2, n);
  openblas_set_num_threads(1);
  for (int i = 0; i < n * n; i++) /* small integers: exact either way */
    ck_assert_float_eq(c1[i], c2[i]);
  free(a), free(b), free(c1), free(c2);
}
END_TEST

static Suite *blas_suite(void) {
  Suite *s = suite_create("blas");
  TCase *t = tcase_create("blas");
  tcase_set_timeout(t, 120);
  tcase_add_loop_test(t, test_gemm_ld, 0, (int)(sizeof shapes / sizeof shapes[0]));
  tcase_add_test(t, test_gemv);
  tcase_add_test(t, test_vector_ops);
  tcase_add_test(t, test_stop_blas_workers);
  suite_add_tcase(s, t);
  return s;
}

int main(void) {
  SRunner *r = srunner_create(blas_suite());
  srunner_run_all(r, CK_NORMAL);
  int failed = srunner_ntests_failed(r);
  srunner_free(r);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
