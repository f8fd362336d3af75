/* The ISIC challenge's segmentation metrics (2016-2018 task 1), per image
 * and as the mean over images.
 *
 * A pixel is lesion when its 8-bit value exceeds the threshold (128 by
 * default: the ISIC scoring code's `value > 128`).  The degenerate cases
 * follow the ISIC scoring code: Jaccard and Dice are 1 when truth and
 * prediction are both empty; sensitivity is 1 when the truth has no lesion
 * pixel and specificity 1 when it has no background pixel.  The thresholded
 * Jaccard is the Jaccard when it is at least 0.65, else 0.  A missing or
 * unreadable prediction (or one whose size differs from its truth) scores 0
 * on every metric and is listed. */
#ifndef CREMA_LESION_METRICS_H
#define CREMA_LESION_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "io/image.h"

#define METRICS_DEFAULT_THRESHOLD 128
#define METRICS_JACCARD_CUTOFF 0.65

typedef struct metrics_confusion {
  uint64_t tp, fp, fn, tn;
} metrics_confusion;

typedef struct metrics_scores {
  double jaccard, dice, accuracy, sensitivity, specificity, threshold_jaccard;
} metrics_scores;

/* Counts pixel agreement of two one-channel masks of the same size. */
crema_status metrics_count(const image *truth, const image *pred, int threshold,
                           metrics_confusion *out, crema_error *err);
void metrics_from_confusion(const metrics_confusion *c, metrics_scores *out);

typedef enum metrics_outcome {
  METRICS_SCORED,
  METRICS_MISSING, /* no ID_segmentation.png among the predictions */
  METRICS_FAILED   /* unreadable prediction, or a size other than the truth's */
} metrics_outcome;

typedef struct metrics_item {
  char *id;
  metrics_outcome outcome;
  char *problem; /* why it failed (NULL when scored or missing) */
  int size_mismatch; /* failed because its size differs from the truth's */
  metrics_confusion confusion;
  metrics_scores scores; /* all 0 unless scored */
} metrics_item;

typedef struct metrics_report {
  metrics_item *items; /* by ID, in byte order */
  size_t n;
  metrics_scores mean; /* over all items, failed ones counting 0 */
  size_t missing, failed;
  size_t unpredicted; /* missing items dropped by metrics_report_drop_missing */
  char **notes; /* files skipped in the truth folder, and why */
  size_t nnotes;
} metrics_report;

/* Scores every ID_segmentation.png of truth_dir against the file of the
 * same name in pred_dir.  Files in truth_dir that are not masks are noted
 * and skipped (other images silently, as ISIC folders hold them beside the
 * masks), as are masks that cannot be decoded.  Fails only when a folder
 * cannot be read, memory runs out, or truth_dir holds no mask. */
crema_status metrics_evaluate_dirs(const char *truth_dir, const char *pred_dir, int threshold,
                                   metrics_report *out, crema_error *err);
void metrics_report_free(metrics_report *r);

/* Removes the items without a prediction (counting them in unpredicted)
 * and recomputes the mean over those left: a score of the predictions
 * present, e.g. of a run over part of the truth set.  The mean of an
 * empty report is 0. */
void metrics_report_drop_missing(metrics_report *r);

/* The report as CSV (header, one row per image, then the mean row);
 * *out is malloc'd and NUL-terminated. */
crema_status metrics_report_csv(const metrics_report *r, char **out, size_t *len, crema_error *err);

#endif
