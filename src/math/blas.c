#include "config.h"

#include <cblas.h>
#include <pthread.h>
#include <string.h>

#include "core/parallel.h"
#include "math/blas.h"

/* OpenBLAS runs on the calling thread (blas_threads_enter); large
 * products are split here over the team, by blocks of the output. */

int blas_threads_enter(void) {
  const int saved = openblas_get_num_threads();
  if (saved != 1)
    openblas_set_num_threads(1);
  return saved;
}

void blas_threads_leave(int saved) {
  if (saved != 1 && saved > 0)
    openblas_set_num_threads(saved);
}

/* OpenBLAS's own (exported) shutdown of its worker threads; weak, so that
 * another CBLAS links as well. */
extern int blas_thread_shutdown_(void) __attribute__((weak));
static pthread_once_t blas_stop_once = PTHREAD_ONCE_INIT;

static void stop_blas_workers(void) {
  openblas_set_num_threads(1);
  if (blas_thread_shutdown_)
    blas_thread_shutdown_();
}

void blas_stop_workers(void) { pthread_once(&blas_stop_once, stop_blas_workers); }

/* Multiply-adds below which a product runs on one thread (waking the
 * team's workers costs about as much as 10^5 of them). */
#define BLAS_PARALLEL_MIN 5e5
/* Output columns or rows per unit of work: whole register blocks. */
#define BLAS_UNIT 16

typedef struct gemm_job {
  int ta, tb, m, n, k;
  float alpha, beta;
  const float *a, *b;
  float *c;
  int lda, ldb, ldc;
  int split_n; /* split C by columns, else by rows */
} gemm_job;

static void unit_share(int total, int tid, int nthreads, int *lo, int *hi) {
  long a, b;
  par_split((total + BLAS_UNIT - 1) / BLAS_UNIT, tid, nthreads, &a, &b);
  *lo = (int)(a * BLAS_UNIT);
  *hi = (int)(b * BLAS_UNIT) < total ? (int)(b * BLAS_UNIT) : total;
}

static void sgemm_block(const gemm_job *j, int m, int n, const float *a, const float *b,
                        float *c) {
  cblas_sgemm(CblasRowMajor, j->ta ? CblasTrans : CblasNoTrans,
              j->tb ? CblasTrans : CblasNoTrans, m, n, j->k, j->alpha, a, j->lda, b, j->ldb,
              j->beta, c, j->ldc);
}

static void gemm_member(par_team *team, int tid, int nthreads, void *ctx) {
  const gemm_job *j = ctx;
  int lo, hi;
  if (j->split_n) {
    unit_share(j->n, tid, nthreads, &lo, &hi);
    if (lo < hi)
      sgemm_block(j, j->m, hi - lo, j->a, j->tb ? j->b + (size_t)lo * j->ldb : j->b + lo,
                  j->c + lo);
  } else {
    unit_share(j->m, tid, nthreads, &lo, &hi);
    if (lo < hi)
      sgemm_block(j, hi - lo, j->n, j->ta ? j->a + lo : j->a + (size_t)lo * j->lda, j->b,
                  j->c + (size_t)lo * j->ldc);
  }
}

/* y = alpha op(A) x + beta y for row-major A (rows x cols, leading
 * dimension lda), split by blocks of y. */
typedef struct gemv_job {
  int trans, rows, cols, lda;
  float alpha, beta;
  const float *a, *x;
  float *y;
} gemv_job;

static void gemv_member(par_team *team, int tid, int nthreads, void *ctx) {
  const gemv_job *j = ctx;
  int lo, hi;
  if (j->trans) {
    unit_share(j->cols, tid, nthreads, &lo, &hi);
    if (lo < hi)
      cblas_sgemv(CblasRowMajor, CblasTrans, j->rows, hi - lo, j->alpha, j->a + lo, j->lda,
                  j->x, 1, j->beta, j->y + lo, 1);
  } else {
    unit_share(j->rows, tid, nthreads, &lo, &hi);
    if (lo < hi)
      cblas_sgemv(CblasRowMajor, CblasNoTrans, hi - lo, j->cols, j->alpha,
                  j->a + (size_t)lo * j->lda, j->lda, j->x, 1, j->beta, j->y + lo, 1);
  }
}

static int team_for(double work) {
  int n = par_threads();
  return work >= BLAS_PARALLEL_MIN ? n : 1;
}

static void gemv_ld(int trans, int rows, int cols, float alpha, const float *a, int lda,
                    const float *x, float beta, float *y) {
  gemv_job j = {trans, rows, cols, lda, alpha, beta, a, x, y};
  par_run(team_for((double)rows * cols), gemv_member, &j);
}

/* A product with one row or one column is a matrix-vector product.  For a
 * fully connected layer at batch 1, sgemm would first copy (pack) the whole
 * weight matrix, doubling the memory traffic of a memory-bound layer; Caffe
 * takes gemv there too. */
static int gemm_as_gemv(int trans_a, int trans_b, int M, int N, int K, float alpha,
                        const float *A, int lda, const float *B, int ldb, float beta, float *C,
                        int ldc) {
  if (M == 1) {
    /* The row of op(A) is contiguous when A is not transposed, or is a
     * column of a one-column matrix with lda 1. */
    if (trans_a && lda != 1)
      return 0;
    if (trans_b)
      gemv_ld(0, N, K, alpha, B, ldb, A, beta, C);
    else
      gemv_ld(1, K, N, alpha, B, ldb, A, beta, C);
    return 1;
  }
  if (N == 1 && ldc == 1 && (trans_b || ldb == 1)) {
    if (trans_a)
      gemv_ld(1, K, M, alpha, A, lda, B, beta, C);
    else
      gemv_ld(0, M, K, alpha, A, lda, B, beta, C);
    return 1;
  }
  return 0;
}

/* A product with K = 1 is an outer product: each row of C is a scaled
 * copy of B's row.  The gradient of a 1x1 convolution to one map (the
 * lesion nets' score layers) is one, 16 to 128 rows of 50176 at 224x224;
 * sgemm took 4-5x the time of writing C there. */
typedef struct outer_job {
  int trans_a, trans_b, n, lda, ldb, ldc;
  float alpha, beta;
  const float *a, *b;
  float *c;
} outer_job;

static void outer_rows(long lo, long hi, void *ctx) {
  const outer_job *j = ctx;
  const float alpha = j->alpha, beta = j->beta;
  for (long i = lo; i < hi; i++) {
    const float ai = j->trans_a ? j->a[i] : j->a[(size_t)i * j->lda];
    float *restrict c = j->c + (size_t)i * j->ldc;
    const float *restrict b = j->b;
    const size_t step = j->trans_b ? (size_t)j->ldb : 1;
    /* alpha (a b), as sgemm scales the sum of products; the common cases
     * as loops of their own so that they vectorise. */
    if (step == 1 && alpha == 1.0f && beta == 0.0f) {
      for (int k = 0; k < j->n; k++)
        c[k] = ai * b[k];
      continue;
    }
    for (int k = 0; k < j->n; k++) {
      float t = ai * b[(size_t)k * step];
      if (alpha != 1.0f)
        t *= alpha;
      c[k] = beta == 0.0f ? t : beta * c[k] + t;
    }
  }
}

static void outer_product(int trans_a, int trans_b, int M, int N, float alpha, const float *A,
                          int lda, const float *B, int ldb, float beta, float *C, int ldc) {
  outer_job j = {trans_a, trans_b, N, lda, ldb, ldc, alpha, beta, A, B, C};
  par_for(M, par_min_items(N > 0 ? (size_t)N : 1), outer_rows, &j);
}

void math_gemm_ld(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A,
                  int lda, const float *B, int ldb, float beta, float *C, int ldc) {
  if (K > 0 && gemm_as_gemv(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc))
    return;
  if (K == 1) {
    outer_product(trans_a, trans_b, M, N, alpha, A, lda, B, ldb, beta, C, ldc);
    return;
  }
  gemm_job j = {trans_a, trans_b, M, N, K, alpha, beta, A, B, C, lda, ldb, ldc, N >= M};
  int nth = team_for((double)M * N * K);
  if ((j.split_n ? N : M) < 2 * BLAS_UNIT)
    nth = 1;
  par_run(nth, gemm_member, &j);
}

void math_gemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A,
               const float *B, float beta, float *C) {
  math_gemm_ld(trans_a, trans_b, M, N, K, alpha, A, trans_a ? M : K, B, trans_b ? K : N, beta, C,
               N);
}

void math_gemv(int trans_a, int M, int N, float alpha, const float *A, const float *x,
               float beta, float *y) {
  gemv_ld(trans_a, M, N, alpha, A, N, x, beta, y);
}

/* y = alpha x + beta y over a vector, the operations the solvers' updates
 * are made of: memory-bound, so split over the team when long (VGG-16's
 * parameters are 138M values, swept several times per iteration). */
typedef struct vec_job {
  int n;
  float alpha, beta;
  const float *x; /* NULL: scale only */
  float *y;
} vec_job;

#define VEC_PARALLEL_MIN PAR_ELEMENTWISE_MIN

static void vec_member(par_team *team, int tid, int nthreads, void *ctx) {
  const vec_job *j = ctx;
  int lo, hi;
  unit_share(j->n, tid, nthreads, &lo, &hi);
  if (lo >= hi)
    return;
  if (j->beta != 1.0f)
    cblas_sscal(hi - lo, j->beta, j->y + lo, 1);
  if (j->x)
    cblas_saxpy(hi - lo, j->alpha, j->x + lo, 1, j->y + lo, 1);
}

static void vec_run(int n, float alpha, const float *x, float beta, float *y) {
  vec_job j = {n, alpha, beta, x, y};
  par_run(n >= VEC_PARALLEL_MIN ? par_threads() : 1, vec_member, &j);
}

void math_axpy(int n, float alpha, const float *x, float *y) { vec_run(n, alpha, x, 1.0f, y); }

void math_axpby(int n, float alpha, const float *x, float beta, float *y) {
  vec_run(n, alpha, x, beta, y);
}

void math_scal(int n, float alpha, float *x) { vec_run(n, 0.0f, NULL, alpha, x); }

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
