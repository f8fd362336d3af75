/* Retrieval measures: P@1, P@k, mAP, k-nearest vote accuracy, AUC. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "retrieval/measures.h"

void retrieval_eval_init(retrieval_eval *e, size_t k, const int *positive, int npositive) {
  memset(e, 0, sizeof *e);
  e->k = k;
  e->positive = positive;
  e->npositive = npositive;
}

void retrieval_eval_free(retrieval_eval *e) {
  free(e->scores);
  free(e->truth);
  memset(e, 0, sizeof *e);
}

static int is_positive(const retrieval_eval *e, int label) {
  for (int i = 0; i < e->npositive; i++)
    if (e->positive[i] == label)
      return 1;
  return 0;
}

int retrieval_vote(const int *ranked, size_t k) {
  int best = ranked[0];
  size_t best_count = 0;
  /* Candidates in rank order, so the first met wins a tie. */
  for (size_t i = 0; i < k; i++) {
    size_t c = 0;
    for (size_t j = 0; j < k; j++)
      c += ranked[j] == ranked[i];
    if (c > best_count) {
      best_count = c;
      best = ranked[i];
    }
  }
  return best;
}

/* Average precision over the whole ranking; -1 when nothing is relevant. */
static double average_precision(int label, const int *ranked, size_t m) {
  double sum = 0.0;
  size_t hits = 0;
  for (size_t j = 0; j < m; j++)
    if (ranked[j] == label) {
      hits++;
      sum += (double)hits / (double)(j + 1);
    }
  return hits ? sum / (double)hits : -1.0;
}

crema_status retrieval_eval_add(retrieval_eval *e, int label, const int *ranked, size_t m,
                                crema_error *err) {
  if (m == 0)
    return crema_fail(err, CREMA_ERR_INVALID, "a query has no database result to judge");
  const size_t k = e->k < m ? e->k : m;
  size_t same = 0, pos = 0;
  for (size_t j = 0; j < k; j++) {
    same += ranked[j] == label;
    pos += (size_t)is_positive(e, ranked[j]);
  }
  e->p1 += ranked[0] == label;
  e->pk += (double)same / (double)k;
  e->vote_correct += retrieval_vote(ranked, k) == label;
  const double ap = average_precision(label, ranked, m);
  if (ap >= 0.0) {
    e->ap += ap;
    e->queries_with_relevant++;
  }
  if (e->npositive > 0) {
    if (e->queries == e->cap) {
      size_t cap = e->cap ? 2 * e->cap : 256;
      double *s = realloc(e->scores, cap * sizeof *s);
      if (s)
        e->scores = s;
      unsigned char *t = s ? realloc(e->truth, cap) : NULL;
      if (!t)
        return crema_fail(err, CREMA_ERR_NOMEM, "out of memory for %zu queries", cap);
      e->truth = t;
      e->cap = cap;
    }
    e->scores[e->queries] = (double)pos / (double)k;
    e->truth[e->queries] = (unsigned char)is_positive(e, label);
  }
  e->queries++;
  return CREMA_OK;
}

typedef struct scored {
  double s;
  unsigned char t;
} scored;

static int cmp_scored(const void *a, const void *b) {
  const double x = ((const scored *)a)->s, y = ((const scored *)b)->s;
  return (x > y) - (x < y);
}

/* Mann-Whitney: the chance that a positive outscores a negative, ties
 * counting one half, from the ranks of the sorted scores. */
double retrieval_auc(const double *scores, const unsigned char *truth, size_t n) {
  scored *v = malloc((n ? n : 1) * sizeof *v);
  if (!v)
    return -1.0;
  size_t npos = 0;
  for (size_t i = 0; i < n; i++) {
    v[i].s = scores[i];
    v[i].t = truth[i];
    npos += truth[i] != 0;
  }
  const size_t nneg = n - npos;
  if (npos == 0 || nneg == 0) {
    free(v);
    return -1.0;
  }
  qsort(v, n, sizeof *v, cmp_scored);
  double rank_sum = 0.0;
  for (size_t i = 0; i < n;) {
    size_t j = i;
    while (j < n && v[j].s == v[i].s)
      j++;
    const double mid = (double)(i + 1 + j) / 2.0; /* mean rank of the tie, 1-based */
    for (size_t t = i; t < j; t++)
      if (v[t].t)
        rank_sum += mid;
    i = j;
  }
  free(v);
  return (rank_sum - (double)npos * (double)(npos + 1) / 2.0) / ((double)npos * (double)nneg);
}

void retrieval_eval_result(const retrieval_eval *e, retrieval_measures *out) {
  memset(out, 0, sizeof *out);
  out->queries = e->queries;
  out->k = e->k;
  if (e->queries == 0)
    return;
  const double nq = (double)e->queries;
  out->p1 = e->p1 / nq;
  out->pk = e->pk / nq;
  out->knn_accuracy = e->vote_correct / nq;
  out->map = e->queries_with_relevant ? e->ap / (double)e->queries_with_relevant : 0.0;
  if (e->npositive > 0) {
    for (size_t i = 0; i < e->queries; i++)
      e->truth[i] ? out->positives++ : out->negatives++;
    out->auc = retrieval_auc(e->scores, e->truth, e->queries);
    out->has_auc = out->auc >= 0.0;
  }
}
