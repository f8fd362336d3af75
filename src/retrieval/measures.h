/* The measures by which dermoscopic image retrieval is judged: precision
 * of the first and of the k first results, mean average precision over
 * the whole ranking, the accuracy of a majority vote of the k nearest and,
 * for a binary label (malignant or not), the area under the ROC curve of
 * the share of malignant images among the k nearest. */
#ifndef CREMA_RETRIEVAL_MEASURES_H
#define CREMA_RETRIEVAL_MEASURES_H

#include <stddef.h>

#include "core/error.h"

typedef struct retrieval_eval {
  size_t k;
  /* Labels counted as positive (malignant) for the AUC; none: no AUC. */
  const int *positive;
  int npositive;
  /* Sums over queries so far. */
  size_t queries, queries_with_relevant;
  double p1, pk, ap, vote_correct;
  /* Per query, for the AUC: the share of positives among the k nearest
   * and whether the query is positive. */
  double *scores;
  unsigned char *truth;
  size_t cap;
} retrieval_eval;

typedef struct retrieval_measures {
  size_t queries, k;
  double p1, pk, map, knn_accuracy;
  int has_auc;
  double auc;
  size_t positives, negatives;
} retrieval_measures;

void retrieval_eval_init(retrieval_eval *e, size_t k, const int *positive, int npositive);
void retrieval_eval_free(retrieval_eval *e);

/* Adds one query of label `label` whose database results, nearest first,
 * have the labels ranked[0..m) (the whole database but the query itself,
 * for the mean average precision). */
crema_status retrieval_eval_add(retrieval_eval *e, int label, const int *ranked, size_t m,
                                crema_error *err);

/* The majority label of the first k of ranked (ties: the label met first). */
int retrieval_vote(const int *ranked, size_t k);

/* Area under the ROC curve of scores against truth (ties count 1/2);
 * -1 without both classes. */
double retrieval_auc(const double *scores, const unsigned char *truth, size_t n);

void retrieval_eval_result(const retrieval_eval *e, retrieval_measures *out);

#endif
