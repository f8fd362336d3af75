/* Synthetic dermoscopy images: determinism, masks, lesion size, names. */
#include "config.h"

#include <check.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "io/file.h"
#include "io/image.h"
#include "lesion/synth.h"
#include "tests/unit/testutil.h"

/* ---- scratch directory (testutil.h) ---- */

static void setup_scratch(void) { test_scratch_make("check-synth"); }

static void teardown_scratch(void) { test_scratch_remove(); }

/* ---- helpers ---- */

static void render(uint32_t seed, uint32_t number, int size, synth_sample *s) {
  crema_error err = {0};
  ck_assert_msg(synth_render(seed, number, size, s, &err) == CREMA_OK, "%s", err.message);
}

static int same_image(const image *a, const image *b) {
  return a->width == b->width && a->height == b->height && a->channels == b->channels &&
         !memcmp(a->pixels, b->pixels, (size_t)a->width * a->height * a->channels);
}

static size_t mask_count(const image *m) {
  size_t n = 0;
  for (size_t i = 0; i < (size_t)m->width * m->height; i++)
    n += m->pixels[i] != 0;
  return n;
}

static int mask_touches_border(const image *m) {
  int w = m->width, h = m->height;
  for (int i = 0; i < w; i++)
    if (m->pixels[i] || m->pixels[(size_t)(h - 1) * w + i])
      return 1;
  for (int j = 0; j < h; j++)
    if (m->pixels[(size_t)j * w] || m->pixels[(size_t)j * w + w - 1])
      return 1;
  return 0;
}

static int files_equal(const char *a, const char *b) {
  crema_error err = {0};
  file_view va, vb;
  ck_assert_msg(file_view_open(a, 1u << 30, &va, &err) == CREMA_OK, "%s", err.message);
  ck_assert_msg(file_view_open(b, 1u << 30, &vb, &err) == CREMA_OK, "%s", err.message);
  int eq = va.size == vb.size && !memcmp(va.data, vb.data, va.size);
  file_view_close(&va);
  file_view_close(&vb);
  return eq;
}

/* ---- tests ---- */

START_TEST(same_seed_same_pixels_and_bytes) {
  for (uint32_t number = 0; number < 4; number++) {
    synth_sample a, b;
    render(42, number, 96, &a);
    render(42, number, 96, &b);
    ck_assert(same_image(&a.rgb, &b.rgb));
    ck_assert(same_image(&a.mask, &b.mask));
    ck_assert_int_eq(a.jpeg_quality, b.jpeg_quality);
    for (int f = 0; f < 2; f++) {
      crema_error err = {0};
      unsigned char *da, *db;
      size_t la, lb;
      ck_assert(synth_encode(&a, f ? SYNTH_PNG : SYNTH_JPEG, &da, &la, &err) == CREMA_OK);
      ck_assert(synth_encode(&b, f ? SYNTH_PNG : SYNTH_JPEG, &db, &lb, &err) == CREMA_OK);
      ck_assert_uint_eq(la, lb);
      ck_assert(!memcmp(da, db, la));
      free(da);
      free(db);
    }
    synth_sample_free(&a);
    synth_sample_free(&b);
  }
}
END_TEST

START_TEST(seeds_and_numbers_give_different_images) {
  synth_sample a, b, c;
  render(1, 0, 64, &a);
  render(2, 0, 64, &b);
  render(1, 1, 64, &c);
  ck_assert(!same_image(&a.rgb, &b.rgb));
  ck_assert(!same_image(&a.rgb, &c.rgb));
  synth_sample_free(&a);
  synth_sample_free(&b);
  synth_sample_free(&c);
}
END_TEST

/* Every mask is one channel of 0 and 255, the lesion covers 5-60% of the
 * image, the sizes vary, and some lesions run off the image. */
START_TEST(masks_binary_and_lesion_fraction_in_bounds) {
  double lo = 1.0, hi = 0.0;
  int touching = 0, types[7] = {0};
  const int count = 120;
  for (int k = 0; k < count; k++) {
    synth_sample s;
    render(7, (uint32_t)k, 64, &s);
    ck_assert_int_eq(s.mask.channels, 1);
    ck_assert_int_eq(s.mask.width, 64);
    ck_assert_int_eq(s.rgb.channels, 3);
    for (size_t i = 0; i < 64 * 64; i++)
      ck_assert(s.mask.pixels[i] == 0 || s.mask.pixels[i] == 255);
    double f = mask_count(&s.mask) / (64.0 * 64.0);
    ck_assert_msg(f >= SYNTH_MIN_FRACTION && f <= SYNTH_MAX_FRACTION,
                  "image %d: lesion fraction %.3f", k, f);
    lo = f < lo ? f : lo;
    hi = f > hi ? f : hi;
    touching += mask_touches_border(&s.mask);
    ck_assert(s.fitzpatrick >= 1 && s.fitzpatrick <= 6);
    types[s.fitzpatrick]++;
    ck_assert(s.jpeg_quality >= 60 && s.jpeg_quality <= 95);
    synth_sample_free(&s);
  }
  ck_assert_msg(lo < 0.15 && hi > 0.4, "fractions only span %.3f..%.3f", lo, hi);
  ck_assert_msg(touching > 0 && touching < count, "%d of %d lesions touch the border", touching,
                count);
  for (int t = 1; t <= 6; t++)
    ck_assert_msg(types[t] > 0, "no image of skin type %d", t);
}
END_TEST

/* The lesion is darker than the skin around it: the mask marks what is
 * visible. */
START_TEST(lesion_darker_than_skin) {
  int darker = 0;
  for (uint32_t k = 0; k < 20; k++) {
    synth_sample s;
    render(3, k, 128, &s);
    double in = 0, out = 0;
    size_t nin = 0, nout = 0;
    for (size_t i = 0; i < 128 * 128; i++) {
      const unsigned char *p = s.rgb.pixels + i * 3;
      double lum = 0.3 * p[0] + 0.59 * p[1] + 0.11 * p[2];
      if (s.mask.pixels[i]) {
        in += lum;
        nin++;
      } else if (lum > 40) { /* outside the dark vignette */
        out += lum;
        nout++;
      }
    }
    darker += nin && nout && in / nin < out / nout;
    synth_sample_free(&s);
  }
  ck_assert_int_ge(darker, 18);
}
END_TEST

START_TEST(isic_names_and_set_files) {
  char id[16];
  synth_id(1234, id, sizeof id);
  ck_assert_str_eq(id, "ISIC_0001234");
  synth_id(SYNTH_MAX_NUMBER, id, sizeof id);
  ck_assert_str_eq(id, "ISIC_9999999");

  crema_error err = {0};
  ck_assert_msg(synth_write_set(test_scratch_dir(), 5, 10, 3, 48, SYNTH_JPEG, &err) == CREMA_OK, "%s",
                err.message);
  ck_assert_msg(synth_write_set(test_scratch_dir(), 5, 12, 1, 48, SYNTH_PNG, &err) == CREMA_OK, "%s",
                err.message);
  struct stat st;
  ck_assert_int_eq(stat(test_scratch_path("ISIC_0000010.jpg"), &st), 0);
  ck_assert_int_eq(stat(test_scratch_path("ISIC_0000011_segmentation.png"), &st), 0);
  ck_assert_int_eq(stat(test_scratch_path("ISIC_0000012.png"), &st), 0);
  ck_assert_int_ne(stat(test_scratch_path("ISIC_0000013.jpg"), &st), 0);

  image img, mask;
  ck_assert(image_read_file(test_scratch_path("ISIC_0000010.jpg"), IMAGE_NATIVE, &img, &err) == CREMA_OK);
  ck_assert_int_eq(img.width, 48);
  ck_assert_int_eq(img.channels, 3);
  image_free(&img);
  ck_assert(image_read_file(test_scratch_path("ISIC_0000010_segmentation.png"), IMAGE_NATIVE, &mask,
                            &err) == CREMA_OK);
  ck_assert_int_eq(mask.channels, 1);

  /* A file holds what synth_render/synth_encode give for its number. */
  synth_sample s;
  render(5, 10, 48, &s);
  ck_assert(same_image(&s.mask, &mask));
  unsigned char *data;
  size_t len;
  ck_assert(synth_encode(&s, SYNTH_JPEG, &data, &len, &err) == CREMA_OK);
  file_view v;
  ck_assert(file_view_open(test_scratch_path("ISIC_0000010.jpg"), 1u << 30, &v, &err) == CREMA_OK);
  ck_assert(v.size == len && !memcmp(v.data, data, len));
  file_view_close(&v);
  free(data);
  synth_sample_free(&s);
  image_free(&mask);

  /* No temporary files are left behind. */
  ck_assert_int_ne(stat(test_scratch_path(".ISIC_0000010.jpg.tmp"), &st), 0);
}
END_TEST

/* Two runs of a set write identical files; a set split with `first` is
 * the same as the whole. */
START_TEST(sets_are_reproducible_and_splittable) {
  crema_error err = {0};
  ck_assert_int_eq(mkdir(test_scratch_path("a"), 0700), 0);
  ck_assert_int_eq(mkdir(test_scratch_path("b"), 0700), 0);
  ck_assert(synth_write_set(test_scratch_path("a"), 9, 0, 4, 64, SYNTH_JPEG, &err) == CREMA_OK);
  ck_assert(synth_write_set(test_scratch_path("b"), 9, 0, 2, 64, SYNTH_JPEG, &err) == CREMA_OK);
  ck_assert(synth_write_set(test_scratch_path("b"), 9, 2, 2, 64, SYNTH_JPEG, &err) == CREMA_OK);
  for (int k = 0; k < 4; k++) {
    char a[64], b[64];
    for (int m = 0; m < 2; m++) {
      const char *fmt = m ? "%s/ISIC_%07d_segmentation.png" : "%s/ISIC_%07d.jpg";
      snprintf(a, sizeof a, fmt, "a", k);
      snprintf(b, sizeof b, fmt, "b", k);
      char pa[512], pb[512];
      snprintf(pa, sizeof pa, "%s", test_scratch_path(a));
      snprintf(pb, sizeof pb, "%s", test_scratch_path(b));
      ck_assert_msg(files_equal(pa, pb), "%s differs from %s", pa, pb);
    }
  }
}
END_TEST

START_TEST(bad_arguments_fail_cleanly) {
  crema_error err = {0};
  synth_sample s;
  ck_assert_int_eq(synth_render(1, 0, 8, &s, &err), CREMA_ERR_INVALID);
  ck_assert(strstr(err.message, "size"));
  ck_assert_int_eq(synth_render(1, 0, SYNTH_MAX_SIZE + 1, &s, &err), CREMA_ERR_INVALID);
  ck_assert_int_eq(synth_write_set(test_scratch_dir(), 1, SYNTH_MAX_NUMBER, 2, 32, SYNTH_JPEG, &err),
                   CREMA_ERR_INVALID);
  ck_assert(strstr(err.message, "seven-digit"));
  ck_assert_int_eq(synth_write_set(test_scratch_path("no/such/dir"), 1, 0, 1, 32, SYNTH_JPEG, &err),
                   CREMA_ERR_IO);
  ck_assert(strstr(err.message, "no/such/dir"));
}
END_TEST

START_TEST(sizes_scale) {
  /* The smallest and a large size render, and a 256 px image is fast. */
  synth_sample s;
  render(11, 0, SYNTH_MIN_SIZE, &s);
  ck_assert_int_eq(s.rgb.width, SYNTH_MIN_SIZE);
  synth_sample_free(&s);
  render(11, 0, 600, &s);
  double f = mask_count(&s.mask) / (600.0 * 600.0);
  ck_assert(f >= SYNTH_MIN_FRACTION && f <= SYNTH_MAX_FRACTION);
  synth_sample_free(&s);
}
END_TEST

/* Labelled sets: each image's diagnosis follows from its patterns by
 * synth_diagnosis's rule, the three diagnoses come about equally often,
 * and the same (seed, number) gives the same patterns and pixels. */
START_TEST(labelled_patterns_imply_diagnosis) {
  crema_error err = {0};
  int counts[SYNTH_NCLASSES] = {0};
  enum { N = 240 };
  for (uint32_t i = 0; i < N; i++) {
    synth_sample s;
    synth_patterns p;
    ck_assert_msg(synth_render_labelled(7, i, 24, &s, &p, &err) == CREMA_OK, "%s", err.message);
    const int d = synth_diagnosis(&p);
    counts[d]++;
    if (d == SYNTH_MEL)
      ck_assert(p.veil || p.streaks);
    else if (d == SYNTH_BKL)
      ck_assert(p.regression && !p.veil && !p.streaks && !p.network && !p.globules);
    else
      ck_assert(d == SYNTH_NV && (p.network || p.globules) && !p.veil && !p.streaks &&
                !p.regression && !p.dots);
    if (i < 3) {
      synth_sample again;
      synth_patterns q;
      ck_assert(synth_render_labelled(7, i, 24, &again, &q, &err) == CREMA_OK);
      ck_assert(!memcmp(&p, &q, sizeof p) && same_image(&s.rgb, &again.rgb));
      synth_sample_free(&again);
    }
    synth_sample_free(&s);
  }
  ck_assert_int_eq(counts[SYNTH_MEL] + counts[SYNTH_NV] + counts[SYNTH_BKL], N);
  for (int d = 0; d < SYNTH_NCLASSES; d++)
    if (d == SYNTH_MEL || d == SYNTH_NV || d == SYNTH_BKL)
      ck_assert_msg(counts[d] > N / 4 && counts[d] < N * 5 / 12, "%s: %d of %d",
                    synth_class_name(d), counts[d], N);
  ck_assert_str_eq(synth_class_name(SYNTH_BKL), "BKL");
}
END_TEST

/* The label files of a labelled set: ISIC 2018's ground-truth CSV, the
 * patterns, and a convert-imageset list, one line per image. */
START_TEST(labelled_set_files) {
  crema_error err = {0};
  ck_assert_msg(synth_write_labelled_set(test_scratch_dir(), 4, 20, 5, 32, SYNTH_JPEG, &err) == CREMA_OK,
                "%s", err.message);
  char line[256];
  FILE *csv = fopen(test_scratch_path("labels.csv"), "r"), *pat = fopen(test_scratch_path("patterns.csv"), "r");
  FILE *list = fopen(test_scratch_path("list.txt"), "r");
  ck_assert(csv && pat && list);
  ck_assert(fgets(line, sizeof line, csv));
  ck_assert_str_eq(line, "image,MEL,NV,BCC,AKIEC,BKL,DF,VASC\n");
  ck_assert(fgets(line, sizeof line, pat));
  ck_assert_str_eq(line, "image,network,globules,dots,streaks,veil,regression,diagnosis\n");
  for (uint32_t i = 20; i < 25; i++) {
    synth_sample s;
    synth_patterns p;
    ck_assert(synth_render_labelled(4, i, 32, &s, &p, &err) == CREMA_OK);
    synth_sample_free(&s);
    const int d = synth_diagnosis(&p);
    char want[256], id[16];
    synth_id(i, id, sizeof id);
    snprintf(want, sizeof want, "%s,%s,%s,0.0,0.0,%s,0.0,0.0\n", id, d == SYNTH_MEL ? "1.0" : "0.0",
             d == SYNTH_NV ? "1.0" : "0.0", d == SYNTH_BKL ? "1.0" : "0.0");
    ck_assert(fgets(line, sizeof line, csv));
    ck_assert_str_eq(line, want);
    snprintf(want, sizeof want, "%s,%d,%d,%d,%d,%d,%d,%s\n", id, p.network, p.globules, p.dots,
             p.streaks, p.veil, p.regression, synth_class_name(d));
    ck_assert(fgets(line, sizeof line, pat));
    ck_assert_str_eq(line, want);
    snprintf(want, sizeof want, "%s.jpg %d\n", id, d);
    ck_assert(fgets(line, sizeof line, list));
    ck_assert_str_eq(line, want);
    struct stat st;
    snprintf(want, sizeof want, "%s.jpg", id);
    ck_assert_int_eq(stat(test_scratch_path(want), &st), 0);
  }
  ck_assert(!fgets(line, sizeof line, csv) && !fgets(line, sizeof line, list));
  fclose(csv);
  fclose(pat);
  fclose(list);
}
END_TEST

static Suite *synth_suite(void) {
  Suite *s = suite_create("synth");
  TCase *tc = tcase_create("render");
  tcase_add_test(tc, same_seed_same_pixels_and_bytes);
  tcase_add_test(tc, seeds_and_numbers_give_different_images);
  tcase_add_test(tc, masks_binary_and_lesion_fraction_in_bounds);
  tcase_add_test(tc, lesion_darker_than_skin);
  tcase_add_test(tc, sizes_scale);
  tcase_add_test(tc, labelled_patterns_imply_diagnosis);
  tcase_set_timeout(tc, 300);
  suite_add_tcase(s, tc);
  tc = tcase_create("files");
  tcase_add_checked_fixture(tc, setup_scratch, teardown_scratch);
  tcase_add_test(tc, isic_names_and_set_files);
  tcase_add_test(tc, sets_are_reproducible_and_splittable);
  tcase_add_test(tc, bad_arguments_fail_cleanly);
  tcase_add_test(tc, labelled_set_files);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(synth_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
