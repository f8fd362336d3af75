/* Exact nearest neighbours of query vectors in a database of vectors,
 * computed as blocked matrix products (SGEMM): every database row is read
 * once per block of queries, in blocks that stay in cache while their
 * norms and scores are taken. */
#ifndef CREMA_RETRIEVAL_KNN_H
#define CREMA_RETRIEVAL_KNN_H

#include <stddef.h>

#include "core/error.h"

typedef enum knn_metric {
  KNN_COSINE, /* score: cosine similarity, higher is nearer */
  KNN_L2      /* score: Euclidean distance, lower is nearer */
} knn_metric;

typedef struct knn_hit {
  size_t index; /* database row */
  float score;
} knn_hit;

/* For each of nq queries (rows of q, nq x dim) the k nearest of the n
 * database rows (db, n x dim), nearest first; equal scores keep the lower
 * row first.  exclude (may be NULL) names per query a database row to
 * skip, or (size_t)-1.  hits holds nq x k entries; found[i] receives how
 * many query i got (fewer than k when the database is smaller).  Zero
 * vectors have cosine 0 with everything. */
crema_status knn_search(const float *db, size_t n, size_t dim, const float *q, size_t nq,
                        knn_metric metric, size_t k, const size_t *exclude, knn_hit *hits,
                        size_t *found, crema_error *err);

#endif
