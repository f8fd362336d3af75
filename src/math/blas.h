/* Thin wrappers over CBLAS with Caffe's (row-major) conventions. */
#ifndef CREMA_MATH_BLAS_H
#define CREMA_MATH_BLAS_H

#include <stddef.h>

/* C = alpha * op(A) * op(B) + beta * C; op(A) is M x K, op(B) is K x N,
 * all row-major (caffe_cpu_gemm). */
void math_gemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A,
               const float *B, float beta, float *C);
/* The same with explicit leading dimensions, so that a block of a larger
 * matrix can be an operand or the result. */
void math_gemm_ld(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A,
                  int lda, const float *B, int ldb, float beta, float *C, int ldc);
/* y = alpha * op(A) * x + beta * y, A is M x N row-major (caffe_cpu_gemv). */
void math_gemv(int trans_a, int M, int N, float alpha, const float *A, const float *x,
               float beta, float *y);
void math_axpy(int n, float alpha, const float *x, float *y);
/* y = alpha * x + beta * y */
void math_axpby(int n, float alpha, const float *x, float beta, float *y);
void math_scal(int n, float alpha, float *x);
float math_dot(int n, const float *x, const float *y);
float math_asum(int n, const float *x);
void math_set(size_t n, float v, float *x);
void math_copy(size_t n, const float *x, float *y);

#endif
