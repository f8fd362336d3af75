/* ISIC segmentation metrics against hand-computed values on tiny masks,
 * and the folder evaluation's edge cases. */
#include "config.h"

#include <check.h>
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "io/file.h"
#include "io/image.h"
#include "lesion/metrics.h"
#include "tests/unit/testutil.h"

#define EPS 1e-12

/* ---- helpers ---- */

/* A w x h one-channel mask from a string of '.' (0) and '#' (255). */
static void mask_from(image *m, int w, int h, const char *rows) {
  crema_error err = {0};
  ck_assert_int_eq(image_alloc(m, w, h, 1, &err), CREMA_OK);
  ck_assert_int_eq((int)strlen(rows), w * h);
  for (int i = 0; i < w * h; i++)
    m->pixels[i] = rows[i] == '#' ? 255 : 0;
}

static metrics_scores score(const char *truth, const char *pred, metrics_confusion *c) {
  image t, p;
  mask_from(&t, 4, 4, truth);
  mask_from(&p, 4, 4, pred);
  metrics_confusion cc;
  crema_error err = {0};
  ck_assert_msg(metrics_count(&t, &p, METRICS_DEFAULT_THRESHOLD, &cc, &err) == CREMA_OK, "%s",
                err.message);
  image_free(&t);
  image_free(&p);
  metrics_scores s;
  metrics_from_confusion(&cc, &s);
  if (c)
    *c = cc;
  return s;
}

#define ASSERT_NEAR(a, b)                                                                          \
  ck_assert_msg(fabs((a) - (b)) < EPS, "%s = %.15g, expected %.15g", #a, (double)(a), (double)(b))

/* ---- per-image metrics ---- */

START_TEST(hand_computed_4x4) {
  /* truth: 2x2 square; prediction: 3 of its pixels and 1 outside.
   * TP 3, FP 1, FN 1, TN 11. */
  metrics_confusion c;
  metrics_scores s = score("...."
                           ".##."
                           ".##."
                           "....",
                           "...."
                           ".###"
                           "..#."
                           "....",
                           &c);
  ck_assert_uint_eq(c.tp, 3);
  ck_assert_uint_eq(c.fp, 1);
  ck_assert_uint_eq(c.fn, 1);
  ck_assert_uint_eq(c.tn, 11);
  ASSERT_NEAR(s.jaccard, 3.0 / 5.0);
  ASSERT_NEAR(s.dice, 6.0 / 8.0);
  ASSERT_NEAR(s.accuracy, 14.0 / 16.0);
  ASSERT_NEAR(s.sensitivity, 3.0 / 4.0);
  ASSERT_NEAR(s.specificity, 11.0 / 12.0);
  ASSERT_NEAR(s.threshold_jaccard, 0.0); /* 0.6 < 0.65 */
}
END_TEST

START_TEST(threshold_jaccard_keeps_good_scores) {
  /* TP 4, FP 1: Jaccard 0.8 survives the 0.65 cut. */
  metrics_scores s = score("...."
                           ".##."
                           ".##."
                           "....",
                           "...."
                           ".###"
                           ".##."
                           "....",
                           NULL);
  ASSERT_NEAR(s.jaccard, 0.8);
  ASSERT_NEAR(s.threshold_jaccard, 0.8);
  ASSERT_NEAR(s.dice, 8.0 / 9.0);
  ASSERT_NEAR(s.sensitivity, 1.0);
  ASSERT_NEAR(s.specificity, 11.0 / 12.0);
  /* Exactly 0.65 is kept: 13 of 20 (a 5x4 mask). */
  metrics_confusion c = {13, 4, 3, 0};
  metrics_from_confusion(&c, &s);
  ASSERT_NEAR(s.jaccard, 0.65);
  ASSERT_NEAR(s.threshold_jaccard, 0.65);
}
END_TEST

START_TEST(degenerate_cases_follow_isic) {
  /* Both empty: a perfect answer. */
  metrics_scores s = score("................", "................", NULL);
  ASSERT_NEAR(s.jaccard, 1.0);
  ASSERT_NEAR(s.dice, 1.0);
  ASSERT_NEAR(s.threshold_jaccard, 1.0);
  ASSERT_NEAR(s.accuracy, 1.0);
  ASSERT_NEAR(s.sensitivity, 1.0);
  ASSERT_NEAR(s.specificity, 1.0);
  /* Empty truth, two false positives. */
  s = score("................", "##..............", NULL);
  ASSERT_NEAR(s.jaccard, 0.0);
  ASSERT_NEAR(s.dice, 0.0);
  ASSERT_NEAR(s.sensitivity, 1.0);
  ASSERT_NEAR(s.specificity, 14.0 / 16.0);
  ASSERT_NEAR(s.accuracy, 14.0 / 16.0);
  /* Empty prediction of a lesion. */
  s = score("####............", "................", NULL);
  ASSERT_NEAR(s.jaccard, 0.0);
  ASSERT_NEAR(s.sensitivity, 0.0);
  ASSERT_NEAR(s.specificity, 1.0);
  /* All lesion, all predicted: specificity has no background. */
  s = score("################", "################", NULL);
  ASSERT_NEAR(s.jaccard, 1.0);
  ASSERT_NEAR(s.specificity, 1.0);
}
END_TEST

START_TEST(pixels_above_threshold_are_lesion) {
  /* 128 is background and 129 lesion, as ISIC's `> 128`. */
  image t, p;
  mask_from(&t, 2, 1, "##");
  mask_from(&p, 2, 1, "..");
  p.pixels[0] = 128;
  p.pixels[1] = 129;
  crema_error err = {0};
  metrics_confusion c;
  ck_assert(metrics_count(&t, &p, 128, &c, &err) == CREMA_OK);
  ck_assert_uint_eq(c.tp, 1);
  ck_assert_uint_eq(c.fn, 1);
  ck_assert(metrics_count(&t, &p, 127, &c, &err) == CREMA_OK);
  ck_assert_uint_eq(c.tp, 2);
  image_free(&t);
  image_free(&p);
}
END_TEST

START_TEST(size_mismatch_is_an_error) {
  image t, p;
  mask_from(&t, 2, 2, "#..#");
  mask_from(&p, 4, 1, "#..#");
  crema_error err = {0};
  metrics_confusion c;
  ck_assert_int_eq(metrics_count(&t, &p, 128, &c, &err), CREMA_ERR_SHAPE);
  ck_assert(strstr(err.message, "4x1") && strstr(err.message, "2x2"));
  image_free(&t);
  image_free(&p);
}
END_TEST

/* ---- folders ---- */

static void setup_scratch(void) {
  test_scratch_make("check-metrics");
  ck_assert_int_eq(mkdir(test_scratch_path("truth"), 0700), 0);
  ck_assert_int_eq(mkdir(test_scratch_path("pred"), 0700), 0);
}

static void teardown_scratch(void) { test_scratch_remove(); }

static void put_mask(const char *sub, const char *name, int w, int h, const char *rows) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s/%s", test_scratch_dir(), sub, name);
  image m;
  mask_from(&m, w, h, rows);
  crema_error err = {0};
  ck_assert_msg(image_write_file(path, &m, &err) == CREMA_OK, "%s", err.message);
  image_free(&m);
}

static void put_text(const char *sub, const char *name, const char *text) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s/%s", test_scratch_dir(), sub, name);
  crema_error err = {0};
  ck_assert(file_write_atomic(path, text, strlen(text), &err) == CREMA_OK);
}

static const char *sub(const char *name) { return test_scratch_path(name); }

START_TEST(folders_with_missing_failed_and_stray_files) {
  const char *sq = ".....##..##....."; /* 2x2 square, 4x4 */
  put_mask("truth", "ISIC_0000001_segmentation.png", 4, 4, sq);
  put_mask("truth", "ISIC_0000002_segmentation.png", 4, 4, sq);
  put_mask("truth", "ISIC_0000003_segmentation.png", 4, 4, sq);
  put_mask("truth", "ISIC_0000004_segmentation.png", 4, 4, sq);
  put_text("truth", "ISIC_0000005_segmentation.png", "not a png");
  put_text("truth", "README.txt", "masks");
  put_mask("truth", "ISIC_0000001.png", 4, 4, sq); /* an input image: silently skipped */
  /* 1: perfect; 2: missing; 3: wrong size; 4: Jaccard 0.6 -> thresholded 0. */
  put_mask("pred", "ISIC_0000001_segmentation.png", 4, 4, sq);
  put_mask("pred", "ISIC_0000003_segmentation.png", 2, 2, "####");
  put_mask("pred", "ISIC_0000004_segmentation.png", 4, 4, ".....###..#.....");
  put_mask("pred", "ISIC_0000004_overlay.png", 4, 4, sq);

  metrics_report r;
  crema_error err = {0};
  ck_assert_msg(metrics_evaluate_dirs(sub("truth"), sub("pred"), 128, &r, &err) == CREMA_OK, "%s",
                err.message);
  ck_assert_uint_eq(r.n, 4);
  ck_assert_uint_eq(r.missing, 1);
  ck_assert_uint_eq(r.failed, 1);
  ck_assert_str_eq(r.items[0].id, "ISIC_0000001");
  ck_assert_int_eq(r.items[0].outcome, METRICS_SCORED);
  ck_assert_int_eq(r.items[1].outcome, METRICS_MISSING);
  ck_assert_int_eq(r.items[2].outcome, METRICS_FAILED);
  ck_assert(strstr(r.items[2].problem, "2x2"));
  ck_assert_int_eq(r.items[3].outcome, METRICS_SCORED);
  ASSERT_NEAR(r.items[3].scores.jaccard, 0.6);
  ASSERT_NEAR(r.items[2].scores.accuracy, 0.0);
  /* Means over all four, missing and failed counting 0. */
  ASSERT_NEAR(r.mean.jaccard, (1.0 + 0.6) / 4);
  ASSERT_NEAR(r.mean.threshold_jaccard, 1.0 / 4);
  ASSERT_NEAR(r.mean.dice, (1.0 + 0.75) / 4);
  ASSERT_NEAR(r.mean.accuracy, (1.0 + 14.0 / 16.0) / 4);
  /* Notes: the undecodable mask and README.txt, not the input image. */
  ck_assert_uint_eq(r.nnotes, 2);
  ck_assert(strstr(r.notes[0], "ISIC_0000005_segmentation.png"));
  ck_assert(strstr(r.notes[1], "README.txt"));

  char *csv;
  size_t len;
  ck_assert(metrics_report_csv(&r, &csv, &len, &err) == CREMA_OK);
  ck_assert_uint_eq(strlen(csv), len);
  ck_assert(!strncmp(csv,
                     "image,jaccard,dice,accuracy,sensitivity,specificity,"
                     "threshold_jaccard,status\n",
                     76));
  ck_assert(strstr(csv, "\nISIC_0000001,1.000000,1.000000,1.000000,1.000000,1.000000,"
                        "1.000000,ok\n"));
  ck_assert(strstr(csv, "\nISIC_0000002,0.000000,0.000000,0.000000,0.000000,0.000000,"
                        "0.000000,missing\n"));
  ck_assert(strstr(csv, ",failed\n"));
  ck_assert(strstr(csv, "\nmean,0.400000,0.437500,"));
  int lines = 0;
  for (const char *c = csv; *c; c++)
    lines += *c == '\n';
  ck_assert_int_eq(lines, 6);
  free(csv);
  metrics_report_free(&r);
}
END_TEST

START_TEST(folder_errors) {
  metrics_report r;
  crema_error err = {0};
  /* No masks at all. */
  put_text("truth", "notes.txt", "x");
  ck_assert_int_eq(metrics_evaluate_dirs(sub("truth"), sub("pred"), 128, &r, &err),
                   CREMA_ERR_NOT_FOUND);
  ck_assert(strstr(err.message, "no ground-truth masks"));
  ck_assert_int_eq(metrics_evaluate_dirs(sub("nope"), sub("pred"), 128, &r, &err), CREMA_ERR_IO);
  ck_assert(strstr(err.message, "nope"));
  ck_assert_int_eq(metrics_evaluate_dirs(sub("truth"), sub("nope"), 128, &r, &err), CREMA_ERR_IO);
  ck_assert(strstr(err.message, "nope"));
  ck_assert_int_eq(metrics_evaluate_dirs(sub("truth"), sub("pred"), 255, &r, &err),
                   CREMA_ERR_INVALID);
}
END_TEST

START_TEST(csv_quotes_odd_ids) {
  char id[] = "a,\"b\"";
  metrics_item item = {0};
  item.id = id;
  item.outcome = METRICS_SCORED;
  metrics_report r = {0};
  r.items = &item;
  r.n = 1;
  char *csv;
  size_t len;
  crema_error err = {0};
  ck_assert(metrics_report_csv(&r, &csv, &len, &err) == CREMA_OK);
  ck_assert(strstr(csv, "\n\"a,\"\"b\"\"\",0.000000"));
  free(csv);
}
END_TEST

static Suite *metrics_suite(void) {
  Suite *s = suite_create("metrics");
  TCase *tc = tcase_create("image");
  tcase_add_test(tc, hand_computed_4x4);
  tcase_add_test(tc, threshold_jaccard_keeps_good_scores);
  tcase_add_test(tc, degenerate_cases_follow_isic);
  tcase_add_test(tc, pixels_above_threshold_are_lesion);
  tcase_add_test(tc, size_mismatch_is_an_error);
  tcase_add_test(tc, csv_quotes_odd_ids);
  suite_add_tcase(s, tc);
  tc = tcase_create("folders");
  tcase_add_checked_fixture(tc, setup_scratch, teardown_scratch);
  tcase_add_test(tc, folders_with_missing_failed_and_stray_files);
  tcase_add_test(tc, folder_errors);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(metrics_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
