/* The retrieval report: a self-contained HTML page (images embedded as
 * data: URIs) showing each query and its nearest database images as
 * thumbnails with their diagnoses and scores and, when spatial features
 * are given, heat maps of the regions that made each pair similar; and
 * the TSV listing (query, rank, key, score, label). */
#ifndef CREMA_RETRIEVAL_REPORT_H
#define CREMA_RETRIEVAL_REPORT_H

#include <stddef.h>

#include "core/error.h"
#include "retrieval/features.h"
#include "retrieval/knn.h"
#include "retrieval/measures.h"

/* A growing text buffer. */
typedef struct strbuf {
  char *s;
  size_t len, cap;
  int failed; /* an allocation failed: the text is incomplete */
} strbuf;

void sb_printf(strbuf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
void sb_free(strbuf *b);

/* How a descriptor pools a record's spatial features X (C x S, channel
 * after channel, as a C x H x W blob holds them) into the part of it the
 * heat maps explain: their average over locations (C values, Pooling AVE)
 * or the sum over locations of their outer products (C*C values, i*C + j,
 * Bilinear of the blob with itself).  Any elementwise rescaling after the
 * pooling (SignedSqrt, L2Normalize, a scale) is allowed. */
typedef enum heat_pool { HEAT_AVERAGE, HEAT_BILINEAR } heat_pool;

typedef struct report_input {
  const feature_set *db, *queries;
  const knn_hit *hits; /* per query, `stride` entries, found[i] of them valid */
  const size_t *found;
  size_t stride, k;    /* the first k of each query's results are shown */
  const char *metric;  /* "cosine" or "l2" */
  const char *const *class_names; /* label -> name; NULL or short: the number */
  int nclass_names;
  const char *images, *query_images; /* directories of the images; may be NULL */
  /* Spatial features (C x H x W per record, records in the order of db and
   * queries) for the heat maps; both or neither.  The descriptors' values
   * heat_offset.. are their pooling `pool` (see report_contrib). */
  const feature_set *db_heat, *query_heat;
  heat_pool pool;
  size_t heat_offset;
  size_t max_queries;  /* queries shown in the page */
  const retrieval_measures *measures; /* may be NULL */
  int thumb;           /* thumbnail size in pixels */
} report_input;

/* The TSV listing of every query's first k results, with a header line. */
crema_status report_tsv(const report_input *in, strbuf *out, crema_error *err);

/* The HTML page. */
crema_status report_html(const report_input *in, strbuf *out, crema_error *err);

/* Values the pooled part of a descriptor has for c channels. */
size_t heat_pool_size(heat_pool pool, size_t c);

/* The share of each of b's s locations in the inner product of the
 * pooled parts (heat_pool_size values each) of descriptors da and db, b's
 * spatial features xb (c x s).  With P the pooling of xb, db = r o P
 * elementwise (r = db / P, 0 where P is 0), so that
 *   da . db = sum_t c_t,  c_t = sum_i da_i r_i phi_t,i,
 * phi_t = x_t / s (average) or x_t x_t^T (bilinear): the location's term
 * of the pooling.  contrib receives the s values c_t (their sum is
 * da . db up to rounding). */
crema_status report_contrib(const float *da, const float *db, const float *xb, size_t c,
                            size_t s, heat_pool pool, float *contrib, crema_error *err);

#endif
