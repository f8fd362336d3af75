/* crema evaluate: the ISIC challenge's segmentation metrics over two
 * folders of masks. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/flags.h"
#include "core/log.h"
#include "io/file.h"
#include "lesion/metrics.h"

static const char usage[] =
    "crema evaluate --truth DIR --pred DIR [--csv FILE] [--threshold T] [--only-predicted]";
static const char description[] =
    "Scores predicted lesion masks against ground truth with the ISIC challenge's\n"
    "metrics: Jaccard, Dice, accuracy, sensitivity, specificity and the thresholded\n"
    "Jaccard (a Jaccard below 0.65 counts as 0), per image and as the mean.  Every\n"
    "ID_segmentation.png of --truth is compared with the file of the same name in\n"
    "--pred; a pixel is lesion when its value exceeds --threshold (ISIC: > 128).\n"
    "When truth and prediction are both empty, Jaccard and Dice are 1 (as the ISIC\n"
    "scoring code); sensitivity is 1 without lesion pixels in the truth, specificity\n"
    "1 without background.  A missing prediction, or one that cannot be read or\n"
    "whose size differs from the truth's, scores 0 on every metric, is listed, and\n"
    "makes the exit status 1; a size mismatch is named as such, with both sizes and\n"
    "the file.  With --only-predicted the masks of --truth without a prediction are\n"
    "left out (counted on stderr), so that a run over part of the set is scored on\n"
    "what it predicted.  Other files in --truth are skipped (non-images with a\n"
    "message).";

static void print_row(const char *id, int width, const metrics_scores *s) {
  printf("%-*s %8.4f %8.4f %9.4f %12.4f %12.4f %12.4f\n", width, id, s->jaccard, s->dice,
         s->accuracy, s->sensitivity, s->specificity, s->threshold_jaccard);
}

static void print_table(const metrics_report *r) {
  int width = 12;
  for (size_t i = 0; i < r->n; i++) {
    int w = (int)strlen(r->items[i].id);
    if (w > width)
      width = w < 64 ? w : 64;
  }
  char mean_label[64];
  snprintf(mean_label, sizeof mean_label, "mean (%zu)", r->n);
  if ((int)strlen(mean_label) > width)
    width = (int)strlen(mean_label);
  printf("%-*s %8s %8s %9s %12s %12s %12s\n", width, "image", "jaccard", "dice", "accuracy",
         "sensitivity", "specificity", "thr_jaccard");
  for (size_t i = 0; i < r->n; i++) {
    const metrics_item *it = &r->items[i];
    if (it->outcome == METRICS_SCORED)
      print_row(it->id, width, &it->scores);
    else
      printf("%-*s %s\n", width, it->id,
             it->outcome == METRICS_MISSING ? "missing prediction (scored 0)"
             : it->size_mismatch            ? "size mismatch (scored 0)"
                                            : "unreadable prediction (scored 0)");
  }
  print_row(mean_label, width, &r->mean);
}

static void print_problems(const metrics_report *r) {
  if (r->missing) {
    printf("missing predictions (%zu):", r->missing);
    for (size_t i = 0; i < r->n; i++)
      if (r->items[i].outcome == METRICS_MISSING)
        printf(" %s", r->items[i].id);
    printf("\n");
  }
  for (size_t i = 0; i < r->n; i++)
    if (r->items[i].outcome == METRICS_FAILED)
      printf("failed prediction %s: %s\n", r->items[i].id, r->items[i].problem);
}

static crema_status write_csv(const metrics_report *r, const char *path, crema_error *err) {
  char *text;
  size_t len;
  CREMA_TRY(metrics_report_csv(r, &text, &len, err));
  crema_status st = file_write_atomic(path, text, len, err);
  free(text);
  return st;
}

/* Returns 0 when every image was scored, 1 otherwise (or on error). */
static int run_evaluate(const char *truth, const char *pred, const char *csv, int threshold,
                        int only_predicted, crema_error *err) {
  metrics_report r;
  if (metrics_evaluate_dirs(truth, pred, threshold, &r, err) != CREMA_OK)
    return cli_report("evaluate", err);
  for (size_t i = 0; i < r.nnotes; i++)
    LOG_WARN("%s", r.notes[i]);
  if (only_predicted) {
    metrics_report_drop_missing(&r);
    if (r.n == 0) {
      metrics_report_free(&r);
      crema_fail(err, CREMA_ERR_NOT_FOUND, "no prediction in '%s' for the masks of '%s'", pred,
                 truth);
      return cli_report("evaluate", err);
    }
    if (r.unpredicted)
      LOG_INFO("%zu truth mask%s without a prediction left out (--only-predicted)",
               r.unpredicted, r.unpredicted == 1 ? "" : "s");
  }
  print_table(&r);
  print_problems(&r);
  int rc = r.missing || r.failed ? 1 : 0;
  if (csv && *csv && write_csv(&r, csv, err) != CREMA_OK)
    rc = cli_report("evaluate", err);
  metrics_report_free(&r);
  return rc;
}

int cmd_evaluate(int argc, char **argv) {
  const char *truth = "", *pred = "", *csv = "";
  int threshold = METRICS_DEFAULT_THRESHOLD, only_predicted = 0;
  const flag_spec specs[] = {
      {"truth", FLAG_STRING, &truth, "folder of ground-truth masks (ID_segmentation.png)"},
      {"pred", FLAG_STRING, &pred, "folder of predicted masks with the same names"},
      {"csv", FLAG_STRING, &csv, "also write the table to this CSV file"},
      {"threshold", FLAG_INT, &threshold,
       "a pixel is lesion when its value exceeds this (default 128)"},
      {"only-predicted", FLAG_BOOL, &only_predicted,
       "score only the truth masks that have a prediction"},
  };
  const int nspecs = (int)(sizeof specs / sizeof specs[0]);
  crema_error err = {CREMA_OK, ""};
  flag_result res;
  if (flags_parse(argc, argv, specs, nspecs, &res, &err) != CREMA_OK)
    return cli_report("evaluate", &err);
  int rc = 0;
  if (res.help) {
    flags_print_usage(stdout, usage, description, specs, nspecs);
  } else if (res.npositional != 0 || !*truth || !*pred) {
    fprintf(stderr, "crema evaluate: expected --truth DIR and --pred DIR (and no arguments); "
                    "see --help\n");
    rc = 2;
  } else {
    rc = run_evaluate(truth, pred, csv, threshold, only_predicted, &err);
  }
  flags_result_free(&res);
  return rc;
}
