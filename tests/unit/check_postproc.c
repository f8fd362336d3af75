/* Lesion mask post-processing (crema segment --keep, --fill-holes) on
 * small hand-drawn masks. */
#include "config.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "lesion/postproc.h"

/* Masks drawn as strings of '.' (0) and '#' (non-zero), row after row. */
static unsigned char *draw(const char *rows, int n) {
  ck_assert_int_eq((int)strlen(rows), n);
  unsigned char *m = malloc((size_t)n);
  ck_assert_ptr_nonnull(m);
  for (int i = 0; i < n; i++)
    m[i] = rows[i] == '#' ? 200 : 0;
  return m;
}

static void expect(const unsigned char *m, const char *rows, int n) {
  for (int i = 0; i < n; i++)
    ck_assert_msg(m[i] == (rows[i] == '#' ? 255 : 0), "pixel %d is %d, expected %c", i, m[i],
                  rows[i]);
}

/* A large blob at the left edge, a small one in the centre, a diagonal
 * pair (8-connected: one component). */
static const char blobs[] = "##......"
                            "##......"
                            "##..#..."
                            "##...#.."
                            "##......"
                            "##......";

START_TEST(keep_largest) {
  crema_error err = {0};
  unsigned char *m = draw(blobs, 48);
  ck_assert_int_eq(lesion_keep_component(m, 8, 6, LESION_KEEP_LARGEST, &err), CREMA_OK);
  expect(m, "##......##......##......##......##......##......", 48);
  free(m);
}
END_TEST

START_TEST(keep_centre) {
  crema_error err = {0};
  unsigned char *m = draw(blobs, 48);
  ck_assert_int_eq(lesion_keep_component(m, 8, 6, LESION_KEEP_CENTRE, &err), CREMA_OK);
  expect(m, "....................#........#..................", 48);
  free(m);
}
END_TEST

START_TEST(keep_all_and_empty) {
  crema_error err = {0};
  unsigned char *m = draw(blobs, 48);
  ck_assert_int_eq(lesion_keep_component(m, 8, 6, LESION_KEEP_ALL, &err), CREMA_OK);
  expect(m, blobs, 48);
  memset(m, 0, 48);
  ck_assert_int_eq(lesion_keep_component(m, 8, 6, LESION_KEEP_LARGEST, &err), CREMA_OK);
  expect(m, "................................................", 48);
  ck_assert_int_eq(lesion_keep_component(m, 0, 6, LESION_KEEP_LARGEST, &err), CREMA_ERR_INVALID);
  free(m);
}
END_TEST

/* A ring with a hole, and a notch open to the edge (not a hole). */
START_TEST(fill_holes) {
  crema_error err = {0};
  unsigned char *m = draw(".#####.."
                          ".#...#.."
                          ".#...#.."
                          ".#####.."
                          "......#."
                          ".....#.#",
                          48);
  ck_assert_int_eq(lesion_fill_holes(m, 8, 6, &err), CREMA_OK);
  expect(m,
         ".#####.."
         ".#####.."
         ".#####.."
         ".#####.."
         "......#."
         ".....#.#",
         48);
  free(m);
}
END_TEST

START_TEST(parse_keep) {
  crema_error err = {0};
  lesion_keep k;
  ck_assert_int_eq(lesion_parse_keep("center", &k, &err), CREMA_OK);
  ck_assert_int_eq(k, LESION_KEEP_CENTRE);
  ck_assert_int_eq(lesion_parse_keep("largest", &k, &err), CREMA_OK);
  ck_assert_int_eq(k, LESION_KEEP_LARGEST);
  ck_assert_int_eq(lesion_parse_keep("biggest", &k, &err), CREMA_ERR_INVALID);
  ck_assert_ptr_nonnull(strstr(err.message, "largest"));
}
END_TEST

static Suite *postproc_suite(void) {
  Suite *s = suite_create("postproc");
  TCase *tc = tcase_create("masks");
  tcase_add_test(tc, keep_largest);
  tcase_add_test(tc, keep_centre);
  tcase_add_test(tc, keep_all_and_empty);
  tcase_add_test(tc, fill_holes);
  tcase_add_test(tc, parse_keep);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(postproc_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
