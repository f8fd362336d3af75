/* The bilinear pooling family (Bilinear, CompactBilinear, SignedSqrt,
 * L2Normalize): forward passes against double-precision references
 * written independently of the layers (CompactBilinear's as the fork
 * states it: count sketches, then a circular convolution), numeric
 * gradient checks, the fork's hash draws against glibc's own rand(), and
 * bad input. */
#include "config.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layers/layer.h"
#include "tests/unit/gradcheck.h"

/* ---- a layer run by hand -------------------------------------------------------------------- */

typedef gc_run run;

/* Bottoms of the given 4-D shapes, uniform in [lo, hi) from seed. */
static void run_init(run *r, const char *text, int nbottom, const int (*shapes)[4], float lo,
                     float hi, unsigned seed) {
  gc_run_open(r, text, CAFFE__PHASE__TEST);
  crema_rng g;
  rng_seed(&g, seed);
  for (int i = 0; i < nbottom; i++) {
    r->bottom[i] = blob_create("bottom", &r->err);
    ck_assert_int_eq(blob_reshape(r->bottom[i], 4, shapes[i], &r->err), CREMA_OK);
    for (size_t k = 0; k < r->bottom[i]->count; k++)
      r->bottom[i]->data[k] = rng_uniform(&g, lo, hi);
  }
  r->top[0] = blob_create("top", &r->err);
  r->b = (blob_list){r->bottom, nbottom};
  r->t = (blob_list){r->top, 1};
}

/* max |got - want| <= tol * max |want| (the project's agreement rule). */
static void check_close(const float *got, const double *want, size_t n, double tol,
                        const char *what) {
  double err = 0.0, scale = 0.0;
  size_t worst = 0;
  for (size_t i = 0; i < n; i++) {
    scale = fmax(scale, fabs(want[i]));
    if (fabs(got[i] - want[i]) > err) {
      err = fabs(got[i] - want[i]);
      worst = i;
    }
  }
  ck_assert_msg(err <= tol * scale, "%s: element %zu is %.9g, reference %.9g (max |ref| %.9g)",
                what, worst, (double)got[worst], want[worst], scale);
}

static void grad_check(const char *text, int nbottom, const int (*shapes)[4],
                       const gc_options *o) {
  Caffe__LayerParameter *p = gc_parse_layer(text);
  const int axes[2] = {4, 4};
  int s6[2][6] = {{0}};
  for (int i = 0; i < nbottom; i++)
    memcpy(s6[i], shapes[i], sizeof shapes[i]);
  gc_check_layer(p, nbottom, axes, (const int(*)[6])s6, 1, o, NULL, NULL);
  protobuf_c_message_free_unpacked(&p->base, NULL);
}

/* ---- Bilinear ------------------------------------------------------------------------------- */

START_TEST(bilinear_forward_reference) {
  const int shapes[2][4] = {{3, 4, 5, 6}, {3, 7, 5, 6}};
  run r;
  run_init(&r, "name: 'b' type: 'Bilinear'", 2, shapes, -1.0f, 1.0f, 5);
  gc_run_forward(&r);
  const int want_shape[4] = {3, 28, 1, 1};
  ck_assert_int_eq(r.top[0]->num_axes, 4);
  for (int i = 0; i < 4; i++)
    ck_assert_int_eq(r.top[0]->shape[i], want_shape[i]);
  double ref[3 * 28];
  for (int n = 0; n < 3; n++)
    for (int i = 0; i < 4; i++)
      for (int j = 0; j < 7; j++) {
        double s = 0.0;
        for (int t = 0; t < 30; t++)
          s += (double)r.bottom[0]->data[(n * 4 + i) * 30 + t] *
               r.bottom[1]->data[(n * 7 + j) * 30 + t];
        ref[n * 28 + i * 7 + j] = s;
      }
  check_close(r.top[0]->data, ref, 3 * 28, 1e-6, "Bilinear");
  gc_run_free(&r);
}
END_TEST

START_TEST(bilinear_gradients) {
  const int shapes[2][4] = {{2, 3, 4, 3}, {2, 2, 4, 3}};
  gc_options o = gc_default_options();
  o.step = 1e-2f;
  grad_check("name: 'b' type: 'Bilinear'", 2, shapes, &o);
  o.check_bottoms = 2;
  grad_check("name: 'b' type: 'Bilinear'", 2, shapes, &o);
}
END_TEST

/* One blob as both bottoms (outside a net, which would insert a split):
 * the gradient is the sum of both, G X + G' X. */
START_TEST(bilinear_same_bottom_twice) {
  const int shapes[1][4] = {{1, 3, 2, 2}};
  run r;
  run_init(&r, "name: 'b' type: 'Bilinear'", 1, shapes, -1.0f, 1.0f, 9);
  r.bottom[1] = r.bottom[0];
  r.b.n = 2;
  gc_run_forward(&r);
  crema_rng g;
  rng_seed(&g, 3);
  for (int k = 0; k < 9; k++)
    r.top[0]->diff[k] = rng_uniform(&g, -1.0f, 1.0f);
  const int prop[2] = {1, 1};
  ck_assert_int_eq(r.l->ops->backward(r.l, &r.t, prop, &r.b, &r.err), CREMA_OK);
  const float *x = r.bottom[0]->data, *gd = r.top[0]->diff;
  double want[12];
  for (int i = 0; i < 3; i++)
    for (int t = 0; t < 4; t++) {
      double s = 0.0;
      for (int j = 0; j < 3; j++)
        s += ((double)gd[i * 3 + j] + gd[j * 3 + i]) * x[j * 4 + t];
      want[i * 4 + t] = s;
    }
  check_close(r.bottom[0]->diff, want, 12, 1e-6, "Bilinear same-bottom gradient");
  r.bottom[1] = NULL;
  gc_run_free(&r);
}
END_TEST

START_TEST(bilinear_rejects_bad_shapes) {
  const int shapes[2][4] = {{2, 3, 4, 4}, {2, 3, 4, 5}};
  run r;
  run_init(&r, "name: 'b' type: 'Bilinear'", 2, shapes, 0.0f, 1.0f, 1);
  ck_assert_int_ne(gc_run_setup(&r), CREMA_OK);
  ck_assert_msg(strstr(r.err.message, "layer 'b' (Bilinear)") &&
                    strstr(r.err.message, "2x3x4x4 and 2x3x4x5"),
                "%s", r.err.message);
  gc_run_free(&r);
  const int three[2][4] = {{2, 3, 4, 4}, {2, 3, 4, 4}};
  run_init(&r, "name: 'b' type: 'Bilinear'", 2, three, 0.0f, 1.0f, 1);
  ck_assert_int_eq(blob_reshape(r.bottom[1], 3, three[1], &r.err), CREMA_OK);
  ck_assert_int_ne(gc_run_setup(&r), CREMA_OK);
  ck_assert_msg(strstr(r.err.message, "4 axes"), "%s", r.err.message);
  gc_run_free(&r);
}
END_TEST

/* ---- CompactBilinear ------------------------------------------------------------------------ */

/* The fork's draws, taken from glibc's rand() itself (the test program's
 * own state, which the layer must not use). */
static void fork_draws(int c1, int c2, int d, int *h1, int *s1, int *h2, int *s2) {
  srand(1);
  for (int k = 0; k < c1; k++)
    h1[k] = rand() % d;
  for (int k = 0; k < c1; k++)
    s1[k] = 2 * (rand() % 2) - 1;
  for (int k = 0; k < c2; k++)
    h2[k] = rand() % d;
  for (int k = 0; k < c2; k++)
    s2[k] = 2 * (rand() % 2) - 1;
}

/* The fork's definition in double: count sketches of both bottoms at each
 * location, their circular convolution times num_output (its inverse FFT
 * is unnormalised), summed over locations when pooled. */
static void compact_reference(const run *r, int d, int pool, double *out) {
  const blob *a = r->bottom[0], *b = r->bottom[1];
  const int n = a->shape[0], c1 = a->shape[1], c2 = b->shape[1];
  const int hw = a->shape[2] * a->shape[3];
  int h1[64], s1[64], h2[64], s2[64];
  ck_assert(c1 <= 64 && c2 <= 64);
  fork_draws(c1, c2, d, h1, s1, h2, s2);
  double *p1 = calloc((size_t)d, sizeof(double)), *p2 = calloc((size_t)d, sizeof(double));
  const size_t per = (size_t)d * (pool ? 1 : hw);
  memset(out, 0, (size_t)n * per * sizeof(double));
  for (int i = 0; i < n; i++)
    for (int t = 0; t < hw; t++) {
      memset(p1, 0, (size_t)d * sizeof(double));
      memset(p2, 0, (size_t)d * sizeof(double));
      for (int c = 0; c < c1; c++)
        p1[h1[c]] += s1[c] * (double)a->data[((size_t)i * c1 + c) * hw + t];
      for (int c = 0; c < c2; c++)
        p2[h2[c]] += s2[c] * (double)b->data[((size_t)i * c2 + c) * hw + t];
      for (int k = 0; k < d; k++) {
        double y = 0.0;
        for (int u = 0; u < d; u++)
          y += p1[u] * p2[((k - u) % d + d) % d];
        out[i * per + (pool ? (size_t)k : (size_t)k * hw + t)] += d * y;
      }
    }
  free(p1);
  free(p2);
}

START_TEST(compact_forward_reference) {
  const int shapes[2][4] = {{2, 5, 3, 4}, {2, 9, 3, 4}};
  const struct {
    const char *text;
    int d, pool;
  } cases[] = {
      {"name: 'cb' type: 'CompactBilinear' compact_bilinear_param { num_output: 16 }", 16, 1},
      {"name: 'cb' type: 'CompactBilinear' compact_bilinear_param { num_output: 7 "
       "sum_pool: false }",
       7, 0},
      {"name: 'cb' type: 'CompactBilinear' compact_bilinear_param { num_output: 64 "
       "sum_pool: true }",
       64, 1},
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    run r;
    run_init(&r, cases[c].text, 2, shapes, -1.0f, 1.0f, 11 + (unsigned)c);
    /* The layer must leave the process's rand() sequence alone. */
    srand(77);
    const int first = rand();
    srand(77);
    gc_run_forward(&r);
    ck_assert_int_eq(rand(), first);
    ck_assert_int_eq(r.top[0]->shape[1], cases[c].d);
    ck_assert_int_eq(r.top[0]->shape[2], cases[c].pool ? 1 : 3);
    ck_assert_int_eq(r.top[0]->shape[3], cases[c].pool ? 1 : 4);
    double *ref = malloc(r.top[0]->count * sizeof(double));
    compact_reference(&r, cases[c].d, cases[c].pool, ref);
    check_close(r.top[0]->data, ref, r.top[0]->count, 1e-5, cases[c].text);
    free(ref);
    gc_run_free(&r);
  }
}
END_TEST

/* Hashes and signs wide enough to exercise the generator well past its
 * 344-value warm-up: a 1 x 1 location of one-hot inputs reads them back. */
START_TEST(compact_draws_match_glibc) {
  enum { C1 = 300, C2 = 200, D = 1000 };
  int h1[C1], s1[C1], h2[C2], s2[C2];
  srand(1);
  for (int k = 0; k < C1; k++)
    h1[k] = rand() % D;
  for (int k = 0; k < C1; k++)
    s1[k] = 2 * (rand() % 2) - 1;
  for (int k = 0; k < C2; k++)
    h2[k] = rand() % D;
  for (int k = 0; k < C2; k++)
    s2[k] = 2 * (rand() % 2) - 1;
  const int shapes[2][4] = {{1, C1, 1, 1}, {1, C2, 1, 1}};
  char text[160];
  snprintf(text, sizeof text,
           "name: 'cb' type: 'CompactBilinear' compact_bilinear_param { num_output: %d }", D);
  run r;
  run_init(&r, text, 2, shapes, 0.0f, 0.0f, 1);
  /* Channel i of bottom 0 and channel j of bottom 1 set to 1: the top is
   * D s1[i] s2[j] at (h1[i] + h2[j]) mod D. */
  const int probes[][2] = {{0, 0}, {17, 3}, {299, 199}, {150, 100}, {298, 1}};
  ck_assert_msg(gc_run_setup(&r) == CREMA_OK, "%s", r.err.message); /* setup runs once */
  for (size_t q = 0; q < sizeof probes / sizeof probes[0]; q++) {
    const int i = probes[q][0], j = probes[q][1];
    memset(r.bottom[0]->data, 0, C1 * sizeof(float));
    memset(r.bottom[1]->data, 0, C2 * sizeof(float));
    r.bottom[0]->data[i] = 1.0f;
    r.bottom[1]->data[j] = 1.0f;
    ck_assert_int_eq(r.l->ops->forward(r.l, &r.b, &r.t, &r.err), CREMA_OK);
    const int bin = (h1[i] + h2[j]) % D;
    for (int k = 0; k < D; k++)
      ck_assert_msg(r.top[0]->data[k] == (k == bin ? (float)(D * s1[i] * s2[j]) : 0.0f),
                    "probe (%d, %d): bin %d holds %g", i, j, k, (double)r.top[0]->data[k]);
  }
  gc_run_free(&r);
}
END_TEST

START_TEST(compact_gradients) {
  const int shapes[2][4] = {{2, 3, 3, 2}, {2, 4, 3, 2}};
  gc_options o = gc_default_options();
  /* Outputs are num_output times the products: a small step keeps the
   * central difference exact for this quadratic layer. */
  grad_check("name: 'cb' type: 'CompactBilinear' compact_bilinear_param { num_output: 6 }", 2,
             shapes, &o);
  grad_check("name: 'cb' type: 'CompactBilinear' "
             "compact_bilinear_param { num_output: 5 sum_pool: false }",
             2, shapes, &o);
  o.check_bottoms = 2;
  grad_check("name: 'cb' type: 'CompactBilinear' compact_bilinear_param { num_output: 6 }", 2,
             shapes, &o);
}
END_TEST

START_TEST(compact_rejects_bad_parameters) {
  const int shapes[2][4] = {{1, 2, 2, 2}, {1, 3, 2, 2}};
  const char *bad[] = {
      "name: 'cb' type: 'CompactBilinear'",
      "name: 'cb' type: 'CompactBilinear' compact_bilinear_param { sum_pool: false }",
      "name: 'cb' type: 'CompactBilinear' compact_bilinear_param { num_output: 0 }",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    run r;
    run_init(&r, bad[i], 2, shapes, 0.0f, 1.0f, 1);
    ck_assert_int_ne(gc_run_setup(&r), CREMA_OK);
    ck_assert_msg(strstr(r.err.message, "layer 'cb' (CompactBilinear)") &&
                      strstr(r.err.message, "num_output"),
                  "%s", r.err.message);
    gc_run_free(&r);
  }
  /* In place. */
  run r;
  run_init(&r, "name: 'cb' type: 'CompactBilinear' compact_bilinear_param { num_output: 4 }", 2,
           shapes, 0.0f, 1.0f, 1);
  r.t.v = &r.bottom[0];
  ck_assert_int_ne(gc_run_setup(&r), CREMA_OK);
  ck_assert_msg(strstr(r.err.message, "in place"), "%s", r.err.message);
  r.t.v = &r.top[0];
  gc_run_free(&r);
}
END_TEST

/* ---- SignedSqrt ----------------------------------------------------------------------------- */

START_TEST(signed_sqrt_forward_backward_reference) {
  const int shapes[1][4] = {{2, 3, 4, 5}};
  run r;
  run_init(&r, "name: 's' type: 'SignedSqrt'", 1, shapes, -4.0f, 4.0f, 21);
  r.bottom[0]->data[0] = 0.0f;
  r.bottom[0]->data[1] = -0.0f;
  gc_run_forward(&r);
  const size_t n = r.top[0]->count;
  double *ref = calloc(n, sizeof(double));
  for (size_t i = 0; i < n; i++) {
    const double x = r.bottom[0]->data[i];
    ref[i] = x >= 0 ? sqrt(x) : -sqrt(-x);
  }
  check_close(r.top[0]->data, ref, n, 1e-6, "SignedSqrt forward");
  /* The fork's backward, epsilon 0.03 included: finite at 0. */
  crema_rng g;
  rng_seed(&g, 4);
  for (size_t i = 0; i < n; i++)
    r.top[0]->diff[i] = rng_uniform(&g, -1.0f, 1.0f);
  const int prop[1] = {1};
  ck_assert_int_eq(r.l->ops->backward(r.l, &r.t, prop, &r.b, &r.err), CREMA_OK);
  for (size_t i = 0; i < n; i++)
    ref[i] = 0.5 * r.top[0]->diff[i] / (fabs(ref[i]) + 0.03);
  check_close(r.bottom[0]->diff, ref, n, 1e-6, "SignedSqrt backward");
  ck_assert(isfinite(r.bottom[0]->diff[0]) && isfinite(r.bottom[0]->diff[1]));
  free(ref);
  gc_run_free(&r);
}
END_TEST

/* Away from 0 the fork's epsilon moves the gradient by at most
 * 0.03 / (|y| + 0.03) of it: under 2% for |x| >= 2. */
START_TEST(signed_sqrt_gradients) {
  const int shapes[1][4] = {{2, 3, 4, 5}};
  gc_options o = gc_default_options();
  o.min_value = -6.0f;
  o.max_value = 6.0f;
  o.kink = 0.0f;
  o.kink_range = 2.0f;
  o.threshold = 2e-2f;
  grad_check("name: 's' type: 'SignedSqrt'", 1, shapes, &o);
}
END_TEST

/* ---- L2Normalize ---------------------------------------------------------------------------- */

START_TEST(l2_normalize_forward_reference) {
  const int shapes[1][4] = {{3, 4, 2, 3}};
  run r;
  run_init(&r, "name: 'n' type: 'L2Normalize'", 1, shapes, -2.0f, 2.0f, 31);
  /* An all-zero item stays zero (the epsilon keeps it finite). */
  memset(r.bottom[0]->data + 24, 0, 24 * sizeof(float));
  gc_run_forward(&r);
  double ref[72] = {0};
  for (int n = 0; n < 3; n++) {
    double s = 0.0;
    for (int k = 0; k < 24; k++)
      s += (double)r.bottom[0]->data[n * 24 + k] * r.bottom[0]->data[n * 24 + k];
    for (int k = 0; k < 24; k++)
      ref[n * 24 + k] = r.bottom[0]->data[n * 24 + k] / sqrt(s + 1e-7);
  }
  check_close(r.top[0]->data, ref, 72, 1e-6, "L2Normalize");
  for (int k = 24; k < 48; k++)
    ck_assert(r.top[0]->data[k] == 0.0f);
  gc_run_free(&r);
}
END_TEST

START_TEST(l2_normalize_gradients) {
  const int shapes[1][4] = {{2, 3, 2, 2}};
  gc_options o = gc_default_options();
  o.step = 1e-3f;
  grad_check("name: 'n' type: 'L2Normalize'", 1, shapes, &o);
}
END_TEST

START_TEST(normalize_layers_reject_in_place) {
  const char *texts[] = {"name: 'n' type: 'L2Normalize'", "name: 's' type: 'SignedSqrt'"};
  const int shapes[1][4] = {{1, 2, 1, 1}};
  for (int i = 0; i < 2; i++) {
    run r;
    run_init(&r, texts[i], 1, shapes, 0.0f, 1.0f, 1);
    r.t.v = &r.bottom[0];
    ck_assert_int_ne(gc_run_setup(&r), CREMA_OK);
    ck_assert_msg(strstr(r.err.message, "in place"), "%s", r.err.message);
    gc_run_free(&r);
  }
}
END_TEST

static Suite *bilinear_suite(void) {
  Suite *s = suite_create("bilinear");
  TCase *t = tcase_create("bilinear");
  tcase_add_test(t, bilinear_forward_reference);
  tcase_add_test(t, bilinear_gradients);
  tcase_add_test(t, bilinear_same_bottom_twice);
  tcase_add_test(t, bilinear_rejects_bad_shapes);
  suite_add_tcase(s, t);
  t = tcase_create("compact");
  tcase_add_test(t, compact_forward_reference);
  tcase_add_test(t, compact_draws_match_glibc);
  tcase_add_test(t, compact_gradients);
  tcase_add_test(t, compact_rejects_bad_parameters);
  suite_add_tcase(s, t);
  t = tcase_create("normalize");
  tcase_add_test(t, signed_sqrt_forward_backward_reference);
  tcase_add_test(t, signed_sqrt_gradients);
  tcase_add_test(t, l2_normalize_forward_reference);
  tcase_add_test(t, l2_normalize_gradients);
  tcase_add_test(t, normalize_layers_reject_in_place);
  suite_add_tcase(s, t);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(bilinear_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
