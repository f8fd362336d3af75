/* Nearest-neighbour search speed: Q queries against N x DIM features in
 * memory (random values), the median of R searches.  Run by
 * bench/retrieve; issue 16's target is one query against 100,000 x 2048
 * features well under a second on 2 cores.
 *
 *   retrieve_bench [--n N] [--dim D] [--queries Q] [--k K] [--reps R] [--metric cosine|l2] */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/parallel.h"
#include "math/blas.h"
#include "retrieval/knn.h"

static int cmp_double(const void *a, const void *b) {
  const double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv) {
  long n = 100000, dim = 2048, nq = 1, k = 16, reps = 5;
  const char *metric = "cosine";
  for (int i = 1; i + 1 < argc; i += 2) {
    long *v = !strcmp(argv[i], "--n")         ? &n
              : !strcmp(argv[i], "--dim")     ? &dim
              : !strcmp(argv[i], "--queries") ? &nq
              : !strcmp(argv[i], "--k")       ? &k
              : !strcmp(argv[i], "--reps")    ? &reps
                                              : NULL;
    if (v)
      *v = atol(argv[i + 1]);
    else if (!strcmp(argv[i], "--metric"))
      metric = argv[i + 1];
    else {
      fprintf(stderr, "retrieve_bench: unknown flag %s\n", argv[i]);
      return 2;
    }
  }
  if (n <= 0 || dim <= 0 || nq <= 0 || k <= 0 || reps <= 0) {
    fprintf(stderr, "retrieve_bench: sizes must be positive\n");
    return 2;
  }
  blas_stop_workers();
  float *db = malloc((size_t)n * (size_t)dim * sizeof(float));
  float *q = malloc((size_t)nq * (size_t)dim * sizeof(float));
  knn_hit *hits = malloc((size_t)nq * (size_t)k * sizeof(knn_hit));
  size_t *found = malloc((size_t)nq * sizeof(size_t));
  double *times = malloc((size_t)reps * sizeof(double));
  if (!db || !q || !hits || !found || !times) {
    fprintf(stderr, "retrieve_bench: out of memory\n");
    return 1;
  }
  /* Non-negative values, as after a ReLU and pooling. */
  uint32_t s = 12345;
  for (size_t i = 0; i < (size_t)n * (size_t)dim; i++) {
    s = s * 1664525u + 1013904223u;
    db[i] = (float)(s >> 8) / 16777216.0f;
  }
  for (size_t i = 0; i < (size_t)nq * (size_t)dim; i++) {
    s = s * 1664525u + 1013904223u;
    q[i] = (float)(s >> 8) / 16777216.0f;
  }
  const knn_metric m = strcmp(metric, "l2") ? KNN_COSINE : KNN_L2;
  crema_error err = {0};
  for (long r = 0; r < reps; r++) {
    const double t0 = now_seconds();
    if (knn_search(db, (size_t)n, (size_t)dim, q, (size_t)nq, m, (size_t)k, NULL, hits, found,
                   &err) != CREMA_OK) {
      fprintf(stderr, "retrieve_bench: %s\n", err.message);
      return 1;
    }
    times[r] = (now_seconds() - t0) * 1e3;
  }
  qsort(times, (size_t)reps, sizeof *times, cmp_double);
  printf("search %ld queries x %ld features of %ld, k %ld, %s, %d threads: median %.1f ms "
         "(min %.1f, max %.1f, %ld runs)\n",
         nq, n, dim, k, metric, par_threads(), times[reps / 2], times[0], times[reps - 1], reps);
  free(db);
  free(q);
  free(hits);
  free(found);
  free(times);
  return 0;
}
