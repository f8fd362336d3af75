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
   * queries) for the heat maps; both or neither. */
  const feature_set *db_heat, *query_heat;
  size_t max_queries;  /* queries shown in the page */
  const retrieval_measures *measures; /* may be NULL */
  int thumb;           /* thumbnail size in pixels */
} report_input;

/* The TSV listing of every query's first k results, with a header line. */
crema_status report_tsv(const report_input *in, strbuf *out, crema_error *err);

/* The HTML page. */
crema_status report_html(const report_input *in, strbuf *out, crema_error *err);

/* The heat map of b's locations in the pair (a, b) of spatial features
 * (C x S each): h(t) = sum_s (a_s . b_t)^2, the share of location t in the
 * bilinear similarity of the pair; scaled to a maximum of 1.  heat holds
 * S_b values. */
void report_pair_heat(const float *a, size_t sa, const float *b, size_t sb, size_t c,
                      float *heat);

#endif
