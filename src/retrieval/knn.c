/* Exact k nearest neighbours by blocked SGEMM.
 *
 * Queries are taken KNN_QUERY_BLOCK at a time; for each block the database
 * is walked in blocks of KNN_DB_BLOCK rows: their squared norms, then one
 * product of the query block with the rows' transpose gives all dot
 * products, from which cosine similarities or distances follow.  Each
 * query keeps its k best in a heap whose root is the worst kept, so a row
 * that cannot enter costs one comparison. */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "math/blas.h"
#include "retrieval/knn.h"

/* A block of 1024 rows of 2048 floats is 8 MB: still in the last-level
 * cache when its scores are taken right after the product. */
#define KNN_DB_BLOCK 1024
#define KNN_QUERY_BLOCK 64

/* a is nearer than b: a better score, or an equal one at a lower row. */
static int nearer(const knn_hit *a, const knn_hit *b, int lower_better) {
  if (a->score != b->score)
    return lower_better ? a->score < b->score : a->score > b->score;
  return a->index < b->index;
}

typedef struct topk {
  knn_hit *h;
  size_t n, k;
  int lower_better;
} topk;

static void swap_hits(knn_hit *a, knn_hit *b) {
  knn_hit t = *a;
  *a = *b;
  *b = t;
}

/* Heap order: every parent is farther than its children (root = worst). */
static void sift_down(topk *t, size_t i) {
  for (;;) {
    size_t worst = i, l = 2 * i + 1, r = l + 1;
    if (l < t->n && nearer(&t->h[worst], &t->h[l], t->lower_better))
      worst = l;
    if (r < t->n && nearer(&t->h[worst], &t->h[r], t->lower_better))
      worst = r;
    if (worst == i)
      return;
    swap_hits(&t->h[i], &t->h[worst]);
    i = worst;
  }
}

static void topk_push(topk *t, size_t index, float score) {
  knn_hit c = {index, score};
  if (t->n < t->k) {
    size_t i = t->n++;
    t->h[i] = c;
    while (i > 0 && nearer(&t->h[(i - 1) / 2], &t->h[i], t->lower_better)) {
      swap_hits(&t->h[(i - 1) / 2], &t->h[i]);
      i = (i - 1) / 2;
    }
  } else if (t->k > 0 && nearer(&c, &t->h[0], t->lower_better)) {
    t->h[0] = c;
    sift_down(t, 0);
  }
}

static int cmp_lower(const void *a, const void *b) {
  return nearer(a, b, 1) ? -1 : nearer(b, a, 1) ? 1 : 0;
}

static int cmp_higher(const void *a, const void *b) {
  return nearer(a, b, 0) ? -1 : nearer(b, a, 0) ? 1 : 0;
}

/* In float, 8 running sums that vectorize: a scalar double loop took as
 * long as the product itself.  Only selection uses it; the kept pairs
 * are scored again in double. */
static float squared_norm(const float *x, size_t dim) {
  float acc[8] = {0};
  size_t j = 0;
  for (; j + 8 <= dim; j += 8)
    for (int l = 0; l < 8; l++)
      acc[l] += x[j + l] * x[j + l];
  float s = 0.0f;
  for (; j < dim; j++)
    s += x[j] * x[j];
  for (int l = 0; l < 8; l++)
    s += acc[l];
  return s;
}

/* The score of a selected pair again, in double and from the vectors
 * themselves: |q|^2 + |x|^2 - 2 q.x loses the small distances of near
 * duplicates to cancellation. */
static float exact_score(const float *q, const float *x, size_t dim, knn_metric metric) {
  double qq = 0.0, xx = 0.0, qx = 0.0, d2 = 0.0;
  for (size_t j = 0; j < dim; j++) {
    const double a = q[j], b = x[j];
    qq += a * a;
    xx += b * b;
    qx += a * b;
    d2 += (a - b) * (a - b);
  }
  if (metric == KNN_L2)
    return (float)sqrt(d2);
  return qq > 0.0 && xx > 0.0 ? (float)(qx / sqrt(qq * xx)) : 0.0f;
}

/* Scores of one query against a block of rows from their dot products. */
static void score_block(const float *dots, size_t rows, size_t first, float qnorm2,
                        const float *norm2, knn_metric metric, size_t skip, topk *t) {
  const float qinv = qnorm2 > 0.0f ? 1.0f / sqrtf(qnorm2) : 0.0f;
  for (size_t r = 0; r < rows; r++) {
    if (first + r == skip)
      continue;
    float s;
    if (metric == KNN_L2) {
      s = qnorm2 + norm2[r] - 2.0f * dots[r];
      s = s > 0.0f ? s : 0.0f;
    } else {
      s = norm2[r] > 0.0f ? dots[r] * qinv / sqrtf(norm2[r]) : 0.0f;
    }
    topk_push(t, first + r, s);
  }
}

crema_status knn_search(const float *db, size_t n, size_t dim, const float *q, size_t nq,
                        knn_metric metric, size_t k, const size_t *exclude, knn_hit *hits,
                        size_t *found, crema_error *err) {
  if (dim == 0 || dim > 0x7fffffff)
    return crema_fail(err, CREMA_ERR_INVALID, "vectors of %zu values", dim);
  float *norm2 = crema_malloc(KNN_DB_BLOCK * sizeof(float), err);
  float *dots = crema_malloc((size_t)KNN_QUERY_BLOCK * KNN_DB_BLOCK * sizeof(float), err);
  float *qn = crema_malloc(KNN_QUERY_BLOCK * sizeof(float), err);
  if (!norm2 || !dots || !qn) {
    free(norm2);
    free(dots);
    free(qn);
    return CREMA_ERR_NOMEM;
  }
  const int lower_better = metric == KNN_L2;
  const int blas = blas_threads_enter(); /* crema's own products (math/blas.h) */
  for (size_t q0 = 0; q0 < nq; q0 += KNN_QUERY_BLOCK) {
    const size_t qb = nq - q0 < KNN_QUERY_BLOCK ? nq - q0 : KNN_QUERY_BLOCK;
    for (size_t i = 0; i < qb; i++) {
      found[q0 + i] = 0;
      qn[i] = squared_norm(q + (q0 + i) * dim, dim);
    }
    for (size_t r0 = 0; r0 < n; r0 += KNN_DB_BLOCK) {
      const size_t rb = n - r0 < KNN_DB_BLOCK ? n - r0 : KNN_DB_BLOCK;
      const float *x = db + r0 * dim;
      for (size_t r = 0; r < rb; r++)
        norm2[r] = squared_norm(x + r * dim, dim);
      math_gemm(0, 1, (int)qb, (int)rb, (int)dim, 1.0f, q + q0 * dim, x, 0.0f, dots);
      for (size_t i = 0; i < qb; i++) {
        topk t = {hits + (q0 + i) * k, found[q0 + i], k, lower_better};
        score_block(dots + i * rb, rb, r0, qn[i], norm2, metric,
                    exclude ? exclude[q0 + i] : (size_t)-1, &t);
        found[q0 + i] = t.n;
      }
    }
    for (size_t i = 0; i < qb; i++) {
      knn_hit *h = hits + (q0 + i) * k;
      for (size_t j = 0; j < found[q0 + i]; j++)
        h[j].score = exact_score(q + (q0 + i) * dim, db + h[j].index * dim, dim, metric);
      qsort(h, found[q0 + i], sizeof *h, lower_better ? cmp_lower : cmp_higher);
    }
  }
  blas_threads_leave(blas);
  free(norm2);
  free(dots);
  free(qn);
  return CREMA_OK;
}
