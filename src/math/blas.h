/* Thin wrappers over CBLAS with Caffe's (row-major) conventions. */
#ifndef CREMA_MATH_BLAS_H
#define CREMA_MATH_BLAS_H

#include <stddef.h>

/* OpenBLAS's threads and crema's: crema splits its own BLAS calls over its
 * team (core/parallel.h), so OpenBLAS must run on the calling thread while
 * crema works.  After every call OpenBLAS's idle workers spin for about
 * 0.1 s, yielding the core in a loop: next to a team of ours on 2 cores
 * that cost a quarter of VGG-16's forward time.  The setting is
 * process-wide, so crema sets it only around its own work, and a host
 * program's BLAS keeps the threads it chose:
 *     const int blas = blas_threads_enter();
 *     ... forward, backward, an update ...
 *     blas_threads_leave(blas);
 * Scopes nest.  Two host threads running crema at once may each see the
 * other's setting for a moment: products stay right, only slower. */
int blas_threads_enter(void);
void blas_threads_leave(int saved);

/* Sets OpenBLAS to one thread for good and stops the workers it started
 * when it was loaded: they spin the same way through the first 0.1 s of
 * the process, most of loading a model.  Only for programs that are
 * OpenBLAS's sole user (the crema command, the benchmark): OpenBLAS's
 * shutdown hangs if another thread is inside a threaded OpenBLAS call, so
 * the library never calls it.  OpenBLAS restarts them if it is given more
 * threads. */
void blas_stop_workers(void);

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
