#include "config.h"

#include <cblas.h>
#include <string.h>

#include "math/blas.h"

/* A product with one row or one column is a matrix-vector product.  For a
 * fully connected layer at batch 1, sgemm would first copy (pack) the whole
 * weight matrix, doubling the memory traffic of a memory-bound layer; Caffe
 * takes gemv there too. */
static int gemm_as_gemv(int trans_a, int trans_b, int M, int N, int K, float alpha,
                        const float *A, const float *B, float beta, float *C) {
  if (M == 1) {
    /* The row of op(A) is contiguous either way (lda is K, or M = 1). */
    if (trans_b)
      cblas_sgemv(CblasRowMajor, CblasNoTrans, N, K, alpha, B, K, A, 1, beta, C, 1);
    else
      cblas_sgemv(CblasRowMajor, CblasTrans, K, N, alpha, B, N, A, 1, beta, C, 1);
    return 1;
  }
  if (N == 1) {
    /* Likewise the column of op(B) (ldb is 1, or K). */
    if (trans_a)
      cblas_sgemv(CblasRowMajor, CblasTrans, K, M, alpha, A, M, B, 1, beta, C, 1);
    else
      cblas_sgemv(CblasRowMajor, CblasNoTrans, M, K, alpha, A, K, B, 1, beta, C, 1);
    return 1;
  }
  return 0;
}

void math_gemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A,
               const float *B, float beta, float *C) {
  if (K > 0 && gemm_as_gemv(trans_a, trans_b, M, N, K, alpha, A, B, beta, C))
    return;
  int lda = trans_a ? M : K;
  int ldb = trans_b ? K : N;
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
              trans_b ? CblasTrans : CblasNoTrans, M, N, K, alpha, A, lda, B, ldb, beta, C, N);
}

void math_gemv(int trans_a, int M, int N, float alpha, const float *A, const float *x,
               float beta, float *y) {
  cblas_sgemv(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, M, N, alpha, A, N, x, 1, beta,
              y, 1);
}

void math_axpy(int n, float alpha, const float *x, float *y) { cblas_saxpy(n, alpha, x, 1, y, 1); }

void math_axpby(int n, float alpha, const float *x, float beta, float *y) {
  cblas_sscal(n, beta, y, 1);
  cblas_saxpy(n, alpha, x, 1, y, 1);
}

void math_scal(int n, float alpha, float *x) { cblas_sscal(n, alpha, x, 1); }

float math_dot(int n, const float *x, const float *y) { return cblas_sdot(n, x, 1, y, 1); }

float math_asum(int n, const float *x) { return cblas_sasum(n, x, 1); }

void math_set(size_t n, float v, float *x) {
  if (v == 0.0f) {
    memset(x, 0, n * sizeof(float));
    return;
  }
  for (size_t i = 0; i < n; i++)
    x[i] = v;
}

void math_copy(size_t n, const float *x, float *y) {
  if (x != y)
    memmove(y, x, n * sizeof(float));
}
