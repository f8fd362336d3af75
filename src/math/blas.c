#include "config.h"

#include <cblas.h>
#include <string.h>

#include "math/blas.h"

void math_gemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A,
               const float *B, float beta, float *C) {
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
