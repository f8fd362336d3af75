/* Neuron, element-wise, shape and input layers: hand-computed forward
 * passes, numeric gradient checks, in-place runs against out-of-place ones,
 * and errors on bad parameters. */
#include "config.h"

#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "caffe.pb-c.h"
#include "core/blob.h"
#include "core/rng.h"
#include "layers/layer.h"
#include "tests/unit/gradcheck.h"

#define MAXB 8

/* A layer with its blobs, built from prototxt text. */
typedef struct harness {
  Caffe__LayerParameter *param;
  layer_ctx ctx;
  layer *l;
  blob *bottom[MAXB], *top[MAXB];
  blob_list bl, tl;
  crema_error err;
} harness;

/* Creates the layer and its bottoms (shapes[i] with naxes[i] dims, zero
 * data) and ntops tops; with in_place, top 0 is bottom 0. */
static void h_make(harness *h, const char *text, Caffe__Phase phase, int nb, const int *naxes,
                   const int (*shapes)[6], int nt, int in_place) {
  memset(h, 0, sizeof *h);
  h->param = gc_parse_layer(text);
  rng_seed(&h->ctx.rng, 1701);
  ck_assert_msg(layer_create(h->param, phase, &h->ctx, &h->l, &h->err) == CREMA_OK, "%s",
                h->err.message);
  for (int i = 0; i < nb; i++) {
    ck_assert((h->bottom[i] = blob_create("b", &h->err)) != NULL);
    ck_assert_msg(blob_reshape(h->bottom[i], naxes[i], shapes[i], &h->err) == CREMA_OK, "%s",
                  h->err.message);
  }
  for (int i = 0; i < nt; i++)
    if (!(in_place && i == 0))
      ck_assert((h->top[i] = blob_create("t", &h->err)) != NULL);
  if (in_place)
    h->top[0] = h->bottom[0];
  h->bl = (blob_list){h->bottom, nb};
  h->tl = (blob_list){h->top, nt};
}

static crema_status h_try_setup(harness *h) {
  crema_status st = h->l->ops->setup(h->l, &h->bl, &h->tl, &h->err);
  if (st == CREMA_OK)
    st = h->l->ops->reshape(h->l, &h->bl, &h->tl, &h->err);
  return st;
}

static void h_setup(harness *h) {
  ck_assert_msg(h_try_setup(h) == CREMA_OK, "%s", h->err.message);
}

static void h_forward(harness *h) {
  ck_assert_msg(h->l->ops->forward(h->l, &h->bl, &h->tl, &h->err) == CREMA_OK, "%s",
                h->err.message);
}

static void h_backward(harness *h, const int *prop) {
  int all[MAXB] = {1, 1, 1, 1, 1, 1, 1, 1};
  ck_assert_msg(h->l->ops->backward(h->l, &h->tl, prop ? prop : all, &h->bl, &h->err) ==
                    CREMA_OK,
                "%s", h->err.message);
}

static void h_free(harness *h) {
  for (int i = 0; i < h->tl.n; i++)
    if (h->top[i] != h->bottom[0])
      blob_free(h->top[i]);
  for (int i = 0; i < h->bl.n; i++)
    blob_free(h->bottom[i]);
  layer_free(h->l);
  free(h->ctx.workspace);
  protobuf_c_message_free_unpacked(&h->param->base, NULL);
}

static void set_floats(float *dst, const float *v, size_t n) {
  memcpy(dst, v, n * sizeof(float));
}

static void expect_floats(const float *got, const float *want, size_t n, float tol) {
  for (size_t i = 0; i < n; i++)
    ck_assert_msg(fabsf(got[i] - want[i]) <= tol * fmaxf(1.0f, fabsf(want[i])),
                  "element %zu: got %.9g, want %.9g", i, (double)got[i], (double)want[i]);
}

static void expect_shape(const blob *b, int n, const int *dims) {
  ck_assert_int_eq(b->num_axes, n);
  for (int i = 0; i < n; i++)
    ck_assert_int_eq(b->shape[i], dims[i]);
}

/* One element-wise layer on a 1-D input: forward must give want. */
static void neuron_forward_case(const char *text, Caffe__Phase phase, const float *x,
                                const float *want, int n, float tol) {
  harness h;
  const int shape[1][6] = {{n}};
  const int naxes[1] = {1};
  h_make(&h, text, phase, 1, naxes, shape, 1, 0);
  set_floats(h.bottom[0]->data, x, (size_t)n);
  h_setup(&h);
  h_forward(&h);
  expect_floats(h.top[0]->data, want, (size_t)n, tol);
  h_free(&h);
}

static void expect_setup_error(const char *text, int nb, const int *naxes,
                               const int (*shapes)[6], int nt, const char *needle) {
  harness h;
  h_make(&h, text, CAFFE__PHASE__TRAIN, nb, naxes, shapes, nt, 0);
  ck_assert_int_ne(h_try_setup(&h), CREMA_OK);
  ck_assert_msg(strstr(h.err.message, needle) != NULL, "message '%s' lacks '%s'", h.err.message,
                needle);
  h_free(&h);
}

/* Runs the layer out of place and in place on the same input and top
 * gradient: outputs, bottom gradients and parameter gradients must agree. */
static void check_in_place(const char *text, Caffe__Phase phase, int nb, const int *naxes,
                           const int (*shapes)[6], float lo, float hi) {
  harness a, b;
  h_make(&a, text, phase, nb, naxes, shapes, 1, 0);
  h_make(&b, text, phase, nb, naxes, shapes, 1, 1);
  crema_rng r;
  rng_seed(&r, 99);
  for (int i = 0; i < nb; i++)
    for (size_t k = 0; k < a.bottom[i]->count; k++)
      a.bottom[i]->data[k] = b.bottom[i]->data[k] = rng_uniform(&r, lo, hi);
  h_setup(&a);
  h_setup(&b);
  h_forward(&a);
  h_forward(&b);
  const size_t n = a.top[0]->count;
  expect_floats(b.top[0]->data, a.top[0]->data, n, 0.0f);
  for (size_t k = 0; k < n; k++)
    a.top[0]->diff[k] = b.top[0]->diff[k] = rng_uniform(&r, -1.0f, 1.0f);
  for (int p = 0; p < a.l->nblobs; p++) {
    blob_zero_diff(a.l->blobs[p]);
    blob_zero_diff(b.l->blobs[p]);
  }
  h_backward(&a, NULL);
  h_backward(&b, NULL);
  for (int i = 0; i < nb; i++)
    expect_floats(b.bottom[i]->diff, a.bottom[i]->diff, a.bottom[i]->count, 1e-6f);
  for (int p = 0; p < a.l->nblobs; p++)
    expect_floats(b.l->blobs[p]->diff, a.l->blobs[p]->diff, a.l->blobs[p]->count, 1e-5f);
  h_free(&a);
  h_free(&b);
}

static void gradcheck_text(const char *text, int nb, const int *naxes, const int (*shapes)[6],
                           int nt, const gc_options *o, gc_prepare_fn prepare, void *user) {
  Caffe__LayerParameter *p = gc_parse_layer(text);
  gc_check_layer(p, nb, naxes, shapes, nt, o, prepare, user);
  protobuf_c_message_free_unpacked(&p->base, NULL);
}

/* One bottom of the common 2x3x4x5 shape. */
static const int one4[1] = {4};
static const int shape2345[1][6] = {{2, 3, 4, 5}};

static void gradcheck_simple(const char *text, const gc_options *o) {
  gradcheck_text(text, 1, one4, shape2345, 1, o, NULL, NULL);
}

static gc_options kinked_at_zero(void) {
  gc_options o = gc_default_options();
  o.kink = 0.0f;
  o.kink_range = 0.01f;
  return o;
}

static gc_options in_range(float lo, float hi) {
  gc_options o = gc_default_options();
  o.min_value = lo;
  o.max_value = hi;
  return o;
}

/* ------------------------------------------------------------------ */
/* Neuron layers */

START_TEST(test_relu_forward) {
  const float x[] = {-2.0f, -0.5f, 0.0f, 1.5f};
  const float y0[] = {0.0f, 0.0f, 0.0f, 1.5f};
  const float y1[] = {-0.2f, -0.05f, 0.0f, 1.5f};
  neuron_forward_case("name: 'r' type: 'ReLU'", CAFFE__PHASE__TRAIN, x, y0, 4, 1e-7f);
  neuron_forward_case("name: 'r' type: 'ReLU' relu_param { negative_slope: 0.1 }",
                      CAFFE__PHASE__TRAIN, x, y1, 4, 1e-6f);
}
END_TEST

START_TEST(test_relu_gradient) {
  gc_options o = kinked_at_zero();
  gradcheck_simple("name: 'r' type: 'ReLU'", &o);
  gradcheck_simple("name: 'r' type: 'ReLU' relu_param { negative_slope: 0.1 }", &o);
  check_in_place("name: 'r' type: 'ReLU' relu_param { negative_slope: 0.1 }",
                 CAFFE__PHASE__TRAIN, 1, one4, shape2345, -1.0f, 1.0f);
  /* A negative slope flips signs: the input must be kept. */
  check_in_place("name: 'r' type: 'ReLU' relu_param { negative_slope: -0.3 }",
                 CAFFE__PHASE__TRAIN, 1, one4, shape2345, -1.0f, 1.0f);
}
END_TEST

START_TEST(test_prelu_forward) {
  harness h;
  const int shape[1][6] = {{1, 2, 2}};
  const int naxes[1] = {3};
  h_make(&h, "name: 'p' type: 'PReLU'", CAFFE__PHASE__TRAIN, 1, naxes, shape, 1, 0);
  const float x[] = {-1.0f, 2.0f, -4.0f, 3.0f};
  set_floats(h.bottom[0]->data, x, 4);
  h_setup(&h);
  ck_assert_int_eq(h.l->nblobs, 1);
  ck_assert_int_eq(h.l->blobs[0]->num_axes, 1);
  ck_assert_int_eq(h.l->blobs[0]->shape[0], 2);
  expect_floats(h.l->blobs[0]->data, (const float[]){0.25f, 0.25f}, 2, 0.0f);
  h.l->blobs[0]->data[1] = 0.5f;
  h_forward(&h);
  expect_floats(h.top[0]->data, (const float[]){-0.25f, 2.0f, -2.0f, 3.0f}, 4, 1e-7f);
  /* Slope gradients add up over the batch and accumulate across calls. */
  set_floats(h.top[0]->diff, (const float[]){1.0f, 1.0f, 2.0f, 1.0f}, 4);
  blob_zero_diff(h.l->blobs[0]);
  h_backward(&h, NULL);
  h_backward(&h, NULL);
  expect_floats(h.l->blobs[0]->diff, (const float[]){-2.0f, -16.0f}, 2, 1e-6f);
  expect_floats(h.bottom[0]->diff, (const float[]){0.25f, 1.0f, 1.0f, 1.0f}, 4, 1e-7f);
  h_free(&h);

  h_make(&h, "name: 'p' type: 'PReLU' prelu_param { channel_shared: true "
             "filler { type: 'constant' value: 0.5 } }",
         CAFFE__PHASE__TRAIN, 1, naxes, shape, 1, 0);
  set_floats(h.bottom[0]->data, x, 4);
  h_setup(&h);
  ck_assert_int_eq(h.l->blobs[0]->num_axes, 0);
  h_forward(&h);
  expect_floats(h.top[0]->data, (const float[]){-0.5f, 2.0f, -2.0f, 3.0f}, 4, 1e-7f);
  h_free(&h);
}
END_TEST

START_TEST(test_prelu_gradient) {
  gc_options o = kinked_at_zero();
  const char *uniform =
      "name: 'p' type: 'PReLU' prelu_param { filler { type: 'uniform' min: 0.1 max: 0.4 } }";
  gradcheck_simple(uniform, &o);
  gradcheck_simple("name: 'p' type: 'PReLU' prelu_param { channel_shared: true }", &o);
  const int two[1] = {2};
  const int shape_nc[1][6] = {{4, 3}};
  gradcheck_text(uniform, 1, two, shape_nc, 1, &o, NULL, NULL);
  check_in_place(uniform, CAFFE__PHASE__TRAIN, 1, one4, shape2345, -1.0f, 1.0f);
  check_in_place("name: 'p' type: 'PReLU' prelu_param { channel_shared: true }",
                 CAFFE__PHASE__TRAIN, 1, one4, shape2345, -1.0f, 1.0f);
}
END_TEST

START_TEST(test_elu) {
  const float x[] = {-1.0f, 0.0f, 2.0f};
  const float y[] = {0.5f * (expf(-1.0f) - 1.0f), 0.0f, 2.0f};
  neuron_forward_case("name: 'e' type: 'ELU' elu_param { alpha: 0.5 }", CAFFE__PHASE__TRAIN, x, y,
                      3, 1e-6f);
  gc_options o = kinked_at_zero();
  gradcheck_simple("name: 'e' type: 'ELU'", &o);
  gradcheck_simple("name: 'e' type: 'ELU' elu_param { alpha: 0.5 }", &o);
  check_in_place("name: 'e' type: 'ELU' elu_param { alpha: 0.5 }", CAFFE__PHASE__TRAIN, 1, one4,
                 shape2345, -1.0f, 1.0f);
}
END_TEST

START_TEST(test_sigmoid_tanh) {
  const float x[] = {-2.0f, 0.0f, 3.0f, -30.0f};
  float ys[4], yt[4];
  for (int i = 0; i < 4; i++) {
    ys[i] = (float)(1.0 / (1.0 + exp(-(double)x[i])));
    yt[i] = tanhf(x[i]);
  }
  neuron_forward_case("name: 's' type: 'Sigmoid'", CAFFE__PHASE__TRAIN, x, ys, 4, 1e-6f);
  neuron_forward_case("name: 't' type: 'TanH'", CAFFE__PHASE__TRAIN, x, yt, 4, 1e-6f);
  gc_options o = in_range(-3.0f, 3.0f);
  gradcheck_simple("name: 's' type: 'Sigmoid'", &o);
  gradcheck_simple("name: 't' type: 'TanH'", &o);
  check_in_place("name: 's' type: 'Sigmoid'", CAFFE__PHASE__TRAIN, 1, one4, shape2345, -3, 3);
  check_in_place("name: 't' type: 'TanH'", CAFFE__PHASE__TRAIN, 1, one4, shape2345, -3, 3);
}
END_TEST

START_TEST(test_absval) {
  const float x[] = {-2.5f, 0.0f, 1.25f};
  const float y[] = {2.5f, 0.0f, 1.25f};
  neuron_forward_case("name: 'a' type: 'AbsVal'", CAFFE__PHASE__TRAIN, x, y, 3, 0.0f);
  gc_options o = kinked_at_zero();
  gradcheck_simple("name: 'a' type: 'AbsVal'", &o);
  check_in_place("name: 'a' type: 'AbsVal'", CAFFE__PHASE__TRAIN, 1, one4, shape2345, -1, 1);
}
END_TEST

START_TEST(test_exp) {
  const float x[] = {0.5f, -1.0f, 0.0f};
  /* 2^(1 + 3x) */
  const float y[] = {powf(2.0f, 2.5f), 0.25f, 2.0f};
  neuron_forward_case("name: 'e' type: 'Exp' exp_param { base: 2 scale: 3 shift: 1 }",
                      CAFFE__PHASE__TRAIN, x, y, 3, 1e-6f);
  const float ye[] = {expf(0.5f), expf(-1.0f), 1.0f};
  neuron_forward_case("name: 'e' type: 'Exp'", CAFFE__PHASE__TRAIN, x, ye, 3, 1e-6f);
  gradcheck_simple("name: 'e' type: 'Exp'", NULL);
  gradcheck_simple("name: 'e' type: 'Exp' exp_param { base: 2 scale: 0.5 shift: 1 }", NULL);
  check_in_place("name: 'e' type: 'Exp' exp_param { base: 2 scale: 0.5 shift: 1 }",
                 CAFFE__PHASE__TRAIN, 1, one4, shape2345, -1, 1);
}
END_TEST

START_TEST(test_log) {
  const float x[] = {4.5f, 0.0f, 49.5f};
  /* log10(1 + 2x) */
  const float y[] = {1.0f, 0.0f, 2.0f};
  neuron_forward_case("name: 'l' type: 'Log' log_param { base: 10 scale: 2 shift: 1 }",
                      CAFFE__PHASE__TRAIN, x, y, 3, 1e-6f);
  const float xe[] = {1.0f, 2.0f};
  const float ye[] = {0.0f, logf(2.0f)};
  neuron_forward_case("name: 'l' type: 'Log'", CAFFE__PHASE__TRAIN, xe, ye, 2, 1e-6f);
  gc_options o = in_range(0.5f, 2.0f);
  gradcheck_simple("name: 'l' type: 'Log'", &o);
  gradcheck_simple("name: 'l' type: 'Log' log_param { base: 2 scale: 0.5 shift: 1 }", NULL);
  check_in_place("name: 'l' type: 'Log' log_param { base: 2 scale: 0.5 shift: 1 }",
                 CAFFE__PHASE__TRAIN, 1, one4, shape2345, -1, 1);
}
END_TEST

START_TEST(test_bnll) {
  const float x[] = {0.0f, 100.0f, -100.0f, 1.0f};
  const float y[] = {logf(2.0f), 100.0f, 0.0f, (float)log1p(exp(1.0))};
  neuron_forward_case("name: 'b' type: 'BNLL'", CAFFE__PHASE__TRAIN, x, y, 4, 1e-6f);
  gc_options o = in_range(-3.0f, 3.0f);
  gradcheck_simple("name: 'b' type: 'BNLL'", &o);
  check_in_place("name: 'b' type: 'BNLL'", CAFFE__PHASE__TRAIN, 1, one4, shape2345, -3, 3);
}
END_TEST

/* Moves values off Clip's kinks at -0.5 and 0.5. */
static void away_from_clip_kinks(blob **b, int n, void *user) {
  for (size_t i = 0; i < b[0]->count; i++) {
    float *v = &b[0]->data[i];
    if (fabsf(*v - 0.5f) < 0.02f || fabsf(*v + 0.5f) < 0.02f)
      *v *= 0.9f;
  }
}

START_TEST(test_clip) {
  const float x[] = {-3.0f, -1.0f, 0.5f, 2.0f, 5.0f};
  const float y[] = {-1.0f, -1.0f, 0.5f, 2.0f, 2.0f};
  neuron_forward_case("name: 'c' type: 'Clip' clip_param { min: -1 max: 2 }",
                      CAFFE__PHASE__TRAIN, x, y, 5, 0.0f);
  const char *text = "name: 'c' type: 'Clip' clip_param { min: -0.5 max: 0.5 }";
  gradcheck_text(text, 1, one4, shape2345, 1, NULL, away_from_clip_kinks, NULL);
  check_in_place(text, CAFFE__PHASE__TRAIN, 1, one4, shape2345, -1, 1);
  const int s1[1][6] = {{3}};
  const int n1[1] = {1};
  expect_setup_error("name: 'c' type: 'Clip'", 1, n1, s1, 1, "clip_param");
}
END_TEST

START_TEST(test_swish) {
  const float x[] = {1.0f, -2.0f, 0.0f};
  float y[3];
  for (int i = 0; i < 3; i++)
    y[i] = x[i] / (1.0f + expf(-2.0f * x[i]));
  neuron_forward_case("name: 's' type: 'Swish' swish_param { beta: 2 }", CAFFE__PHASE__TRAIN, x,
                      y, 3, 1e-6f);
  gc_options o = in_range(-3.0f, 3.0f);
  gradcheck_simple("name: 's' type: 'Swish'", &o);
  gradcheck_simple("name: 's' type: 'Swish' swish_param { beta: 2 }", &o);
  check_in_place("name: 's' type: 'Swish' swish_param { beta: 2 }", CAFFE__PHASE__TRAIN, 1, one4,
                 shape2345, -3, 3);
}
END_TEST

START_TEST(test_threshold) {
  const float x[] = {0.2f, 0.5f, 0.7f, -1.0f};
  const float y[] = {0.0f, 0.0f, 1.0f, 0.0f};
  neuron_forward_case("name: 't' type: 'Threshold' threshold_param { threshold: 0.5 }",
                      CAFFE__PHASE__TRAIN, x, y, 4, 0.0f);
  const float y0[] = {1.0f, 1.0f, 1.0f, 0.0f};
  neuron_forward_case("name: 't' type: 'Threshold'", CAFFE__PHASE__TRAIN, x, y0, 4, 0.0f);
}
END_TEST

START_TEST(test_dropout_test_phase) {
  const float x[] = {1.0f, -2.0f, 3.0f};
  neuron_forward_case("name: 'd' type: 'Dropout' dropout_param { dropout_ratio: 0.3 }",
                      CAFFE__PHASE__TEST, x, x, 3, 0.0f);
  gc_options o = gc_default_options();
  o.phase = CAFFE__PHASE__TEST;
  gradcheck_simple("name: 'd' type: 'Dropout'", &o);
  check_in_place("name: 'd' type: 'Dropout'", CAFFE__PHASE__TEST, 1, one4, shape2345, -1, 1);
}
END_TEST

START_TEST(test_dropout_train_phase) {
  harness h;
  const int shape[1][6] = {{100, 100}};
  const int naxes[1] = {2};
  h_make(&h, "name: 'd' type: 'Dropout' dropout_param { dropout_ratio: 0.3 }",
         CAFFE__PHASE__TRAIN, 1, naxes, shape, 1, 0);
  for (size_t i = 0; i < h.bottom[0]->count; i++)
    h.bottom[0]->data[i] = 1.0f + (float)(i % 7);
  h_setup(&h);
  h_forward(&h);
  const float scale = (float)(1.0 / (1.0 - (double)0.3f));
  size_t kept = 0;
  for (size_t i = 0; i < h.top[0]->count; i++) {
    float y = h.top[0]->data[i];
    ck_assert(y == 0.0f || y == h.bottom[0]->data[i] * scale);
    kept += y != 0.0f;
    h.top[0]->diff[i] = 0.5f;
  }
  ck_assert_msg(kept > 6800 && kept < 7200, "kept %zu of 10000", kept);
  h_backward(&h, NULL);
  for (size_t i = 0; i < h.top[0]->count; i++)
    ck_assert(h.bottom[0]->diff[i] == (h.top[0]->data[i] != 0.0f ? 0.5f * scale : 0.0f));
  /* The same seed draws the same mask in place. */
  harness g;
  h_make(&g, "name: 'd' type: 'Dropout' dropout_param { dropout_ratio: 0.3 }",
         CAFFE__PHASE__TRAIN, 1, naxes, shape, 1, 1);
  for (size_t i = 0; i < g.bottom[0]->count; i++)
    g.bottom[0]->data[i] = 1.0f + (float)(i % 7);
  h_setup(&g);
  h_forward(&g);
  expect_floats(g.top[0]->data, h.top[0]->data, h.top[0]->count, 0.0f);
  h_free(&g);
  h_free(&h);
  const int s1[1][6] = {{3}};
  const int n1[1] = {1};
  expect_setup_error("name: 'd' type: 'Dropout' dropout_param { dropout_ratio: 1 }", 1, n1, s1,
                     1, "dropout_ratio");
}
END_TEST

/* ------------------------------------------------------------------ */
/* Eltwise, Scale, Bias, Power */

static const int three2[3] = {2, 2, 2};
static const int shapes_2x3[3][6] = {{2, 3}, {2, 3}, {2, 3}};

static void eltwise_case(const char *text, const float *want, const float *dy,
                         const float (*want_dx)[6]) {
  harness h;
  h_make(&h, text, CAFFE__PHASE__TRAIN, 3, three2, shapes_2x3, 1, 0);
  set_floats(h.bottom[0]->data, (const float[]){1, 2, 3, -1, 5, 0}, 6);
  set_floats(h.bottom[1]->data, (const float[]){4, 2, -1, -2, 0.5f, 0}, 6);
  set_floats(h.bottom[2]->data, (const float[]){2, 0.5f, 3, 3, 1, 0}, 6);
  h_setup(&h);
  h_forward(&h);
  expect_floats(h.top[0]->data, want, 6, 1e-6f);
  set_floats(h.top[0]->diff, dy, 6);
  h_backward(&h, NULL);
  for (int k = 0; k < 3; k++)
    expect_floats(h.bottom[k]->diff, want_dx[k], 6, 1e-6f);
  h_free(&h);
}

START_TEST(test_eltwise_forward_backward) {
  const float dy[6] = {1, 2, 3, 4, 5, 6};
  /* SUM with coefficients 1, -2, 0.5 */
  eltwise_case("name: 'e' type: 'Eltwise' eltwise_param { operation: SUM coeff: 1 coeff: -2 "
               "coeff: 0.5 }",
               (const float[]){-6, -1.75f, 6.5f, 4.5f, 4.5f, 0}, dy,
               (const float[][6]){{1, 2, 3, 4, 5, 6},
                                  {-2, -4, -6, -8, -10, -12},
                                  {0.5f, 1, 1.5f, 2, 2.5f, 3}});
  eltwise_case("name: 'e' type: 'Eltwise' eltwise_param { operation: PROD }",
               (const float[]){8, 2, -9, 6, 2.5f, 0}, dy,
               (const float[][6]){{8, 2, -9, -24, 2.5f, 0},
                                  {2, 2, 27, -12, 25, 0},
                                  {4, 8, -9, 8, 12.5f, 0}});
  /* MAX: ties between bottoms 0 and 1 go to 1; later ties stay earlier. */
  eltwise_case("name: 'e' type: 'Eltwise' eltwise_param { operation: MAX }",
               (const float[]){4, 2, 3, 3, 5, 0}, dy,
               (const float[][6]){{0, 0, 3, 0, 5, 0}, {1, 2, 0, 0, 0, 6}, {0, 0, 0, 4, 0, 0}});
}
END_TEST

/* Spreads the bottoms of Eltwise MAX apart so that no element sits near a
 * tie. */
static void separate_bottoms(blob **b, int n, void *user) {
  for (int k = 0; k < n; k++)
    for (size_t i = 0; i < b[k]->count; i++)
      b[k]->data[i] += 3.0f * (float)((i + (size_t)k) % (size_t)n);
}

START_TEST(test_eltwise_gradient) {
  const int n3[3] = {4, 4, 4};
  const int s3[3][6] = {{2, 3, 4, 5}, {2, 3, 4, 5}, {2, 3, 4, 5}};
  gradcheck_text("name: 'e' type: 'Eltwise' eltwise_param { operation: SUM coeff: 1 coeff: -2 "
                 "coeff: 0.5 }",
                 3, n3, s3, 1, NULL, NULL, NULL);
  gradcheck_text("name: 'e' type: 'Eltwise'", 3, n3, s3, 1, NULL, NULL, NULL);
  gradcheck_text("name: 'e' type: 'Eltwise' eltwise_param { operation: PROD }", 3, n3, s3, 1,
                 NULL, NULL, NULL);
  gc_options o = in_range(0.5f, 1.5f);
  gradcheck_text("name: 'e' type: 'Eltwise' eltwise_param { operation: PROD "
                 "stable_prod_grad: false }",
                 3, n3, s3, 1, &o, NULL, NULL);
  gradcheck_text("name: 'e' type: 'Eltwise' eltwise_param { operation: MAX }", 3, n3, s3, 1,
                 NULL, separate_bottoms, NULL);
  gradcheck_text("name: 'e' type: 'Eltwise' eltwise_param { operation: MAX }", 2, n3, s3, 1,
                 NULL, separate_bottoms, NULL);
}
END_TEST

START_TEST(test_eltwise_errors) {
  expect_setup_error("name: 'e' type: 'Eltwise' eltwise_param { coeff: 1 coeff: 2 }", 3, three2,
                     shapes_2x3, 1, "coefficients");
  expect_setup_error("name: 'e' type: 'Eltwise' eltwise_param { operation: PROD coeff: 1 "
                     "coeff: 2 coeff: 3 }",
                     3, three2, shapes_2x3, 1, "SUM");
  const int bad[2][6] = {{2, 3}, {3, 2}};
  expect_setup_error("name: 'e' type: 'Eltwise'", 2, three2, bad, 1, "bottom 1 has shape 3x2");
}
END_TEST

START_TEST(test_scale_forward) {
  harness h;
  const int shape[1][6] = {{2, 3, 2}};
  const int n1[1] = {3};
  h_make(&h, "name: 's' type: 'Scale' scale_param { axis: 1 num_axes: 1 bias_term: true }",
         CAFFE__PHASE__TRAIN, 1, n1, shape, 1, 0);
  for (int i = 0; i < 12; i++)
    h.bottom[0]->data[i] = (float)i;
  h_setup(&h);
  ck_assert_int_eq(h.l->nblobs, 2);
  expect_shape(h.l->blobs[0], 1, (const int[]){3});
  expect_shape(h.l->blobs[1], 1, (const int[]){3});
  expect_floats(h.l->blobs[0]->data, (const float[]){1, 1, 1}, 3, 0.0f);
  expect_floats(h.l->blobs[1]->data, (const float[]){0, 0, 0}, 3, 0.0f);
  set_floats(h.l->blobs[0]->data, (const float[]){2, -1, 0.5f}, 3);
  set_floats(h.l->blobs[1]->data, (const float[]){1, 10, 100}, 3);
  h_forward(&h);
  expect_floats(h.top[0]->data,
                (const float[]){1, 3, 8, 7, 102, 102.5f, 13, 15, 2, 1, 105, 105.5f}, 12, 1e-6f);
  for (int i = 0; i < 12; i++)
    h.top[0]->diff[i] = 1.0f;
  blob_zero_diff(h.l->blobs[0]);
  blob_zero_diff(h.l->blobs[1]);
  h_backward(&h, NULL);
  /* d scale[c] = sum of x over channel c; d bias[c] = count per channel */
  expect_floats(h.l->blobs[0]->diff, (const float[]){0 + 1 + 6 + 7, 2 + 3 + 8 + 9,
                                                     4 + 5 + 10 + 11},
                3, 1e-6f);
  expect_floats(h.l->blobs[1]->diff, (const float[]){4, 4, 4}, 3, 0.0f);
  expect_floats(h.bottom[0]->diff,
                (const float[]){2, 2, -1, -1, 0.5f, 0.5f, 2, 2, -1, -1, 0.5f, 0.5f}, 12, 0.0f);
  h_free(&h);
}
END_TEST

START_TEST(test_scale_gradient) {
  const char *texts[] = {
      "name: 's' type: 'Scale' scale_param { filler { type: 'uniform' min: -1 max: 1 } }",
      "name: 's' type: 'Scale' scale_param { axis: 1 num_axes: 2 bias_term: true "
      "filler { type: 'gaussian' std: 1 } bias_filler { type: 'gaussian' std: 1 } }",
      "name: 's' type: 'Scale' scale_param { axis: 0 num_axes: -1 "
      "filler { type: 'uniform' min: -1 max: 1 } }",
      "name: 's' type: 'Scale' scale_param { num_axes: 0 bias_term: true "
      "filler { type: 'constant' value: 1.5 } }",
      "name: 's' type: 'Scale' scale_param { axis: -1 num_axes: 1 "
      "filler { type: 'uniform' min: -1 max: 1 } }",
  };
  for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
    gradcheck_simple(texts[i], NULL);
    check_in_place(texts[i], CAFFE__PHASE__TRAIN, 1, one4, shape2345, -1, 1);
  }
  /* Factors from a second bottom. */
  const int n2[2] = {4, 2};
  const int axis0[2][6] = {{2, 3, 4, 5}, {2, 3}};
  const int axis1[2][6] = {{2, 3, 4, 5}, {3, 4}};
  const int n2s[2] = {4, 0};
  const int scalar[2][6] = {{2, 3, 4, 5}, {0}};
  gradcheck_text("name: 's' type: 'Scale' scale_param { axis: 0 }", 2, n2, axis0, 1, NULL, NULL,
                 NULL);
  gradcheck_text("name: 's' type: 'Scale' scale_param { axis: 1 bias_term: true "
                 "bias_filler { type: 'uniform' min: -1 max: 1 } }",
                 2, n2, axis1, 1, NULL, NULL, NULL);
  gradcheck_text("name: 's' type: 'Scale'", 2, n2s, scalar, 1, NULL, NULL, NULL);
  check_in_place("name: 's' type: 'Scale' scale_param { axis: 1 bias_term: true }",
                 CAFFE__PHASE__TRAIN, 2, n2, axis1, -1, 1);
}
END_TEST

START_TEST(test_scale_errors) {
  const int n2[2] = {4, 2};
  const int bad[2][6] = {{2, 3, 4, 5}, {3, 5}};
  expect_setup_error("name: 's' type: 'Scale' scale_param { axis: 1 }", 2, n2, bad, 1,
                     "does not match");
  expect_setup_error("name: 's' type: 'Scale' scale_param { axis: 3 num_axes: 2 }", 1, one4,
                     shape2345, 1, "extend past");
  expect_setup_error("name: 's' type: 'Scale' scale_param { axis: 4 }", 1, one4, shape2345, 1,
                     "axis 4 out of range");
  expect_setup_error("name: 'b' type: 'Bias' bias_param { num_axes: -2 }", 1, one4, shape2345, 1,
                     "num_axes");
}
END_TEST

START_TEST(test_bias) {
  harness h;
  const int n2[2] = {2, 1};
  const int shapes[2][6] = {{2, 3}, {3}};
  h_make(&h, "name: 'b' type: 'Bias'", CAFFE__PHASE__TRAIN, 2, n2, shapes, 1, 0);
  set_floats(h.bottom[0]->data, (const float[]){1, 2, 3, 4, 5, 6}, 6);
  set_floats(h.bottom[1]->data, (const float[]){10, 20, 30}, 3);
  h_setup(&h);
  ck_assert_int_eq(h.l->nblobs, 0);
  h_forward(&h);
  expect_floats(h.top[0]->data, (const float[]){11, 22, 33, 14, 25, 36}, 6, 0.0f);
  set_floats(h.top[0]->diff, (const float[]){1, 2, 3, 4, 5, 6}, 6);
  h_backward(&h, NULL);
  expect_floats(h.bottom[1]->diff, (const float[]){5, 7, 9}, 3, 0.0f);
  expect_floats(h.bottom[0]->diff, (const float[]){1, 2, 3, 4, 5, 6}, 6, 0.0f);
  h_free(&h);

  const char *texts[] = {
      "name: 'b' type: 'Bias' bias_param { filler { type: 'gaussian' std: 1 } }",
      "name: 'b' type: 'Bias' bias_param { axis: 0 num_axes: 2 }",
      "name: 'b' type: 'Bias' bias_param { axis: 2 num_axes: -1 }",
      "name: 'b' type: 'Bias' bias_param { num_axes: 0 }",
  };
  for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
    gradcheck_simple(texts[i], NULL);
    check_in_place(texts[i], CAFFE__PHASE__TRAIN, 1, one4, shape2345, -1, 1);
  }
  const int n2b[2] = {4, 2};
  const int axis1[2][6] = {{2, 3, 4, 5}, {3, 4}};
  gradcheck_text("name: 'b' type: 'Bias' bias_param { axis: 1 }", 2, n2b, axis1, 1, NULL, NULL,
                 NULL);
  check_in_place("name: 'b' type: 'Bias' bias_param { axis: 1 }", CAFFE__PHASE__TRAIN, 2, n2b,
                 axis1, -1, 1);
}
END_TEST

START_TEST(test_power) {
  const float x[] = {1.0f, 0.0f, -1.0f};
  /* (1 + 3x)^2 */
  const float y[] = {16.0f, 1.0f, 4.0f};
  neuron_forward_case("name: 'p' type: 'Power' power_param { power: 2 scale: 3 shift: 1 }",
                      CAFFE__PHASE__TRAIN, x, y, 3, 1e-6f);
  const float y0[] = {8.0f, 8.0f, 8.0f};
  neuron_forward_case("name: 'p' type: 'Power' power_param { power: 3 scale: 0 shift: 2 }",
                      CAFFE__PHASE__TRAIN, x, y0, 3, 1e-6f);
  const float y1[] = {3.0f, 1.0f, -1.0f};
  neuron_forward_case("name: 'p' type: 'Power' power_param { scale: 2 shift: 1 }",
                      CAFFE__PHASE__TRAIN, x, y1, 3, 1e-6f);
  const char *texts[] = {
      "name: 'p' type: 'Power' power_param { power: 2 scale: 3 shift: 1 }",
      "name: 'p' type: 'Power' power_param { power: 0.5 scale: 0.5 shift: 2 }",
      "name: 'p' type: 'Power' power_param { scale: -2 shift: 1 }",
      "name: 'p' type: 'Power' power_param { power: 0 }",
      "name: 'p' type: 'Power' power_param { power: 3 scale: 0.5 }",
  };
  gc_options o = in_range(0.5f, 1.5f);
  for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
    gradcheck_simple(texts[i], &o);
    check_in_place(texts[i], CAFFE__PHASE__TRAIN, 1, one4, shape2345, 0.5f, 1.5f);
  }
  gradcheck_simple("name: 'p' type: 'Power' power_param { power: 2 shift: -0.5 }", NULL);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Shape layers */

static void fill_iota(blob *b, float start) {
  for (size_t i = 0; i < b->count; i++)
    b->data[i] = start + (float)i;
}

START_TEST(test_concat_forward) {
  harness h;
  const int n2[2] = {3, 3};
  const int shapes[2][6] = {{2, 1, 2}, {2, 2, 2}};
  h_make(&h, "name: 'c' type: 'Concat'", CAFFE__PHASE__TRAIN, 2, n2, shapes, 1, 0);
  fill_iota(h.bottom[0], 0);
  fill_iota(h.bottom[1], 10);
  h_setup(&h);
  expect_shape(h.top[0], 3, (const int[]){2, 3, 2});
  h_forward(&h);
  expect_floats(h.top[0]->data, (const float[]){0, 1, 10, 11, 12, 13, 2, 3, 14, 15, 16, 17}, 12,
                0.0f);
  for (int i = 0; i < 12; i++)
    h.top[0]->diff[i] = h.top[0]->data[i];
  h_backward(&h, NULL);
  expect_floats(h.bottom[0]->diff, h.bottom[0]->data, 4, 0.0f);
  expect_floats(h.bottom[1]->diff, h.bottom[1]->data, 8, 0.0f);
  h_free(&h);

  /* Legacy concat_dim: 0 */
  const int shapes0[2][6] = {{1, 2, 2}, {2, 2, 2}};
  h_make(&h, "name: 'c' type: 'Concat' concat_param { concat_dim: 0 }", CAFFE__PHASE__TRAIN, 2,
         n2, shapes0, 1, 0);
  fill_iota(h.bottom[0], 0);
  fill_iota(h.bottom[1], 10);
  h_setup(&h);
  expect_shape(h.top[0], 3, (const int[]){3, 2, 2});
  h_forward(&h);
  expect_floats(h.top[0]->data, (const float[]){0, 1, 2, 3, 10, 11, 12, 13, 14, 15, 16, 17}, 12,
                0.0f);
  h_free(&h);
}
END_TEST

START_TEST(test_concat_slice_gradient) {
  const int n3[3] = {4, 4, 4};
  const int ax0[3][6] = {{1, 3, 2, 3}, {2, 3, 2, 3}, {3, 3, 2, 3}};
  const int ax1[3][6] = {{2, 1, 2, 3}, {2, 2, 2, 3}, {2, 4, 2, 3}};
  const int ax2[3][6] = {{2, 3, 3, 3}, {2, 3, 1, 3}, {2, 3, 2, 3}};
  gradcheck_text("name: 'c' type: 'Concat' concat_param { axis: 0 }", 3, n3, ax0, 1, NULL, NULL,
                 NULL);
  gradcheck_text("name: 'c' type: 'Concat'", 3, n3, ax1, 1, NULL, NULL, NULL);
  gradcheck_text("name: 'c' type: 'Concat' concat_param { axis: -2 }", 3, n3, ax2, 1, NULL, NULL,
                 NULL);
  gradcheck_text("name: 'c' type: 'Concat'", 1, n3, ax1, 1, NULL, NULL, NULL);
  const int s6[1][6] = {{6, 4, 5, 3}};
  gradcheck_text("name: 's' type: 'Slice' slice_param { axis: 0 slice_point: 1 slice_point: 3 }",
                 1, n3, s6, 3, NULL, NULL, NULL);
  gradcheck_text("name: 's' type: 'Slice' slice_param { slice_point: 3 }", 1, n3, s6, 2, NULL,
                 NULL, NULL);
  gradcheck_text("name: 's' type: 'Slice' slice_param { axis: 2 }", 1, n3, s6, 5, NULL, NULL,
                 NULL);
  gradcheck_text("name: 's' type: 'Slice' slice_param { slice_dim: 1 }", 1, n3, s6, 2, NULL,
                 NULL, NULL);
}
END_TEST

START_TEST(test_slice_forward) {
  harness h;
  const int n1[1] = {2};
  const int shape[1][6] = {{2, 5}};
  h_make(&h, "name: 's' type: 'Slice' slice_param { axis: 1 slice_point: 1 slice_point: 4 }",
         CAFFE__PHASE__TRAIN, 1, n1, shape, 3, 0);
  fill_iota(h.bottom[0], 0);
  h_setup(&h);
  expect_shape(h.top[0], 2, (const int[]){2, 1});
  expect_shape(h.top[1], 2, (const int[]){2, 3});
  expect_shape(h.top[2], 2, (const int[]){2, 1});
  h_forward(&h);
  expect_floats(h.top[0]->data, (const float[]){0, 5}, 2, 0.0f);
  expect_floats(h.top[1]->data, (const float[]){1, 2, 3, 6, 7, 8}, 6, 0.0f);
  expect_floats(h.top[2]->data, (const float[]){4, 9}, 2, 0.0f);
  h_free(&h);
  expect_setup_error("name: 's' type: 'Slice' slice_param { slice_point: 3 slice_point: 2 }", 1,
                     n1, shape, 3, "increase");
  expect_setup_error("name: 's' type: 'Slice' slice_param { slice_point: 3 }", 1, n1, shape, 3,
                     "slice points for 3 tops");
  expect_setup_error("name: 's' type: 'Slice' slice_param { slice_point: 7 }", 1, n1, shape, 2,
                     "past the end");
  expect_setup_error("name: 's' type: 'Slice'", 1, n1, shape, 2, "evenly divide");
  expect_setup_error("name: 's' type: 'Slice' slice_param { axis: 1 slice_dim: 1 }", 1, n1,
                     shape, 2, "not both");
  const int n2[2] = {2, 2};
  const int bad[2][6] = {{2, 5}, {3, 5}};
  expect_setup_error("name: 'c' type: 'Concat'", 2, n2, bad, 1, "incompatible");
  expect_setup_error("name: 'c' type: 'Concat' concat_param { concat_dim: 2 }", 2, n2, bad, 1,
                     "out of range");
}
END_TEST

START_TEST(test_split) {
  harness h;
  const int n1[1] = {2};
  const int shape[1][6] = {{2, 2}};
  h_make(&h, "name: 's' type: 'Split'", CAFFE__PHASE__TRAIN, 1, n1, shape, 3, 0);
  fill_iota(h.bottom[0], 1);
  h_setup(&h);
  h_forward(&h);
  for (int t = 0; t < 3; t++) {
    expect_floats(h.top[t]->data, (const float[]){1, 2, 3, 4}, 4, 0.0f);
    for (int i = 0; i < 4; i++)
      h.top[t]->diff[i] = (float)(t + 1) * (float)(i + 1);
  }
  h_backward(&h, NULL);
  expect_floats(h.bottom[0]->diff, (const float[]){6, 12, 18, 24}, 4, 0.0f);
  h_free(&h);
  gradcheck_simple("name: 's' type: 'Split'", NULL);
  gradcheck_text("name: 's' type: 'Split'", 1, one4, shape2345, 3, NULL, NULL, NULL);
}
END_TEST

START_TEST(test_crop) {
  harness h;
  const int n2[2] = {4, 4};
  const int shapes[2][6] = {{1, 2, 4, 4}, {1, 1, 2, 2}};
  h_make(&h, "name: 'c' type: 'Crop' crop_param { axis: 2 offset: 1 offset: 2 }",
         CAFFE__PHASE__TRAIN, 2, n2, shapes, 1, 0);
  fill_iota(h.bottom[0], 0);
  h_setup(&h);
  expect_shape(h.top[0], 4, (const int[]){1, 2, 2, 2});
  h_forward(&h);
  expect_floats(h.top[0]->data, (const float[]){6, 7, 10, 11, 22, 23, 26, 27}, 8, 0.0f);
  for (int i = 0; i < 8; i++)
    h.top[0]->diff[i] = 1.0f;
  h_backward(&h, NULL);
  float want[32] = {0};
  for (int i = 0; i < 8; i++)
    want[(int)h.top[0]->data[i]] = 1.0f;
  expect_floats(h.bottom[0]->diff, want, 32, 0.0f);
  h_free(&h);

  /* One offset for every axis from 1. */
  h_make(&h, "name: 'c' type: 'Crop' crop_param { axis: 1 offset: 1 }", CAFFE__PHASE__TRAIN, 2,
         n2, shapes, 1, 0);
  fill_iota(h.bottom[0], 0);
  h_setup(&h);
  expect_shape(h.top[0], 4, (const int[]){1, 1, 2, 2});
  h_forward(&h);
  expect_floats(h.top[0]->data, (const float[]){21, 22, 25, 26}, 4, 0.0f);
  h_free(&h);

  const int g2[2][6] = {{2, 3, 9, 9}, {2, 3, 5, 6}};
  gradcheck_text("name: 'c' type: 'Crop' crop_param { axis: 2 offset: 1 offset: 2 }", 2, n2, g2,
                 1, NULL, NULL, NULL);
  const int g3[2][6] = {{3, 4, 6, 7}, {2, 3, 5, 4}};
  gradcheck_text("name: 'c' type: 'Crop' crop_param { axis: 0 offset: 1 }", 2, n2, g3, 1, NULL,
                 NULL, NULL);
  gradcheck_text("name: 'c' type: 'Crop' crop_param { axis: 1 offset: 1 offset: 0 offset: 3 }",
                 2, n2, g3, 1, NULL, NULL, NULL);
  expect_setup_error("name: 'c' type: 'Crop' crop_param { axis: 2 offset: 2 }", 2, n2, g3, 1,
                     "out of bounds");
  expect_setup_error("name: 'c' type: 'Crop' crop_param { axis: 2 offset: 1 offset: 1 "
                     "offset: 1 }",
                     2, n2, g2, 1, "offsets");
}
END_TEST

START_TEST(test_flatten_reshape) {
  harness h;
  h_make(&h, "name: 'f' type: 'Flatten'", CAFFE__PHASE__TRAIN, 1, one4, shape2345, 1, 0);
  fill_iota(h.bottom[0], 0);
  h_setup(&h);
  h_forward(&h);
  expect_shape(h.top[0], 2, (const int[]){2, 60});
  expect_floats(h.top[0]->data, h.bottom[0]->data, 120, 0.0f);
  h_free(&h);

  struct {
    const char *text;
    int n;
    int dims[6];
  } cases[] = {
      {"name: 'f' type: 'Flatten' flatten_param { axis: 1 end_axis: 2 }", 3, {2, 12, 5}},
      {"name: 'f' type: 'Flatten' flatten_param { axis: 0 }", 1, {120}},
      {"name: 'f' type: 'Flatten' flatten_param { axis: -2 }", 3, {2, 3, 20}},
      {"name: 'r' type: 'Reshape' reshape_param { shape { dim: 0 dim: -1 } }", 2, {2, 60}},
      {"name: 'r' type: 'Reshape' reshape_param { shape { dim: 4 dim: 0 dim: -1 } }",
       3,
       {4, 3, 10}},
      {"name: 'r' type: 'Reshape' reshape_param { axis: 1 num_axes: 1 shape { dim: 3 dim: 1 } }",
       5,
       {2, 3, 1, 4, 5}},
      {"name: 'r' type: 'Reshape' reshape_param { axis: -1 shape { dim: 1 } }", 5,
       {2, 3, 4, 5, 1}},
      {"name: 'r' type: 'Reshape' reshape_param { axis: 0 num_axes: 0 shape { dim: 1 } }",
       5,
       {1, 2, 3, 4, 5}},
      {"name: 'r' type: 'Reshape' reshape_param { axis: 2 shape { dim: -1 } }", 3, {2, 3, 20}},
  };
  for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
    h_make(&h, cases[c].text, CAFFE__PHASE__TRAIN, 1, one4, shape2345, 1, 0);
    h_setup(&h);
    h_forward(&h);
    expect_shape(h.top[0], cases[c].n, cases[c].dims);
    ck_assert(h.top[0]->data == h.bottom[0]->data);
    h_free(&h);
    gradcheck_simple(cases[c].text, NULL);
  }
  expect_setup_error("name: 'r' type: 'Reshape' reshape_param { shape { dim: -1 dim: -1 } }", 1,
                     one4, shape2345, 1, "more than one -1");
  expect_setup_error("name: 'r' type: 'Reshape' reshape_param { shape { dim: 7 dim: -1 } }", 1,
                     one4, shape2345, 1, "divisible");
  expect_setup_error("name: 'r' type: 'Reshape' reshape_param { shape { dim: 7 dim: 3 } }", 1,
                     one4, shape2345, 1, "does not hold");
  expect_setup_error("name: 'r' type: 'Reshape' reshape_param { axis: 2 num_axes: 3 "
                     "shape { dim: 1 } }",
                     1, one4, shape2345, 1, "out of range");
}
END_TEST

START_TEST(test_tile) {
  harness h;
  const int n1[1] = {2};
  const int shape[1][6] = {{2, 3}};
  h_make(&h, "name: 't' type: 'Tile' tile_param { tiles: 2 }", CAFFE__PHASE__TRAIN, 1, n1, shape,
         1, 0);
  fill_iota(h.bottom[0], 0);
  h_setup(&h);
  expect_shape(h.top[0], 2, (const int[]){2, 6});
  h_forward(&h);
  expect_floats(h.top[0]->data, (const float[]){0, 1, 2, 0, 1, 2, 3, 4, 5, 3, 4, 5}, 12, 0.0f);
  fill_iota(h.top[0], 0);
  for (int i = 0; i < 12; i++)
    h.top[0]->diff[i] = h.top[0]->data[i];
  h_backward(&h, NULL);
  expect_floats(h.bottom[0]->diff, (const float[]){3, 5, 7, 15, 17, 19}, 6, 0.0f);
  h_free(&h);
  gradcheck_simple("name: 't' type: 'Tile' tile_param { tiles: 3 }", NULL);
  gradcheck_simple("name: 't' type: 'Tile' tile_param { axis: 0 tiles: 2 }", NULL);
  gradcheck_simple("name: 't' type: 'Tile' tile_param { axis: -1 tiles: 2 }", NULL);
  expect_setup_error("name: 't' type: 'Tile'", 1, n1, shape, 1, "tiles");
  expect_setup_error("name: 't' type: 'Tile' tile_param { tiles: 0 }", 1, n1, shape, 1,
                     "positive");
}
END_TEST

START_TEST(test_silence) {
  harness h;
  const int n2[2] = {1, 2};
  const int shapes[2][6] = {{3}, {2, 2}};
  h_make(&h, "name: 's' type: 'Silence'", CAFFE__PHASE__TRAIN, 2, n2, shapes, 0, 0);
  h_setup(&h);
  h_forward(&h);
  for (int b = 0; b < 2; b++)
    for (size_t i = 0; i < h.bottom[b]->count; i++)
      h.bottom[b]->diff[i] = 7.0f;
  h_backward(&h, (const int[]){1, 0});
  expect_floats(h.bottom[0]->diff, (const float[]){0, 0, 0}, 3, 0.0f);
  expect_floats(h.bottom[1]->diff, (const float[]){7, 7, 7, 7}, 4, 0.0f);
  h_free(&h);
  gradcheck_text("name: 's' type: 'Silence'", 2, n2, shapes, 0, NULL, NULL, NULL);
}
END_TEST

START_TEST(test_input) {
  harness h;
  h_make(&h, "name: 'i' type: 'Input' input_param { shape { dim: 2 dim: 3 } }",
         CAFFE__PHASE__TRAIN, 0, NULL, NULL, 2, 0);
  h_setup(&h);
  expect_shape(h.top[0], 2, (const int[]){2, 3});
  expect_shape(h.top[1], 2, (const int[]){2, 3});
  /* A later reshape keeps a caller's new size. */
  ck_assert(blob_reshape4(h.top[0], 1, 1, 1, 1, &h.err) == CREMA_OK);
  ck_assert(h.l->ops->reshape(h.l, &h.bl, &h.tl, &h.err) == CREMA_OK);
  expect_shape(h.top[0], 4, (const int[]){1, 1, 1, 1});
  h_free(&h);

  h_make(&h, "name: 'i' type: 'Input' input_param { shape { dim: 2 } shape { dim: 4 dim: 1 } }",
         CAFFE__PHASE__TRAIN, 0, NULL, NULL, 2, 0);
  h_setup(&h);
  expect_shape(h.top[0], 1, (const int[]){2});
  expect_shape(h.top[1], 2, (const int[]){4, 1});
  h_forward(&h);
  ck_assert(h.l->ops->backward == NULL);
  h_free(&h);

  expect_setup_error("name: 'i' type: 'Input' input_param { shape { dim: 2 } shape { dim: 4 } }",
                     0, NULL, NULL, 3, "2 shapes for 3 tops");
  expect_setup_error("name: 'i' type: 'Input' input_param { shape { dim: 2 dim: -3 } }", 0, NULL,
                     NULL, 1, "-3");
  expect_setup_error("name: 'i' type: 'Input' input_param { shape { dim: 4000000000 } }", 0, NULL,
                     NULL, 1, "4000000000");
}
END_TEST

static Suite *layers_neuron_eltwise_shape_suite(void) {
  Suite *s = suite_create("layers_neuron_eltwise_shape");
  TCase *n = tcase_create("neuron");
  tcase_add_test(n, test_relu_forward);
  tcase_add_test(n, test_relu_gradient);
  tcase_add_test(n, test_prelu_forward);
  tcase_add_test(n, test_prelu_gradient);
  tcase_add_test(n, test_elu);
  tcase_add_test(n, test_sigmoid_tanh);
  tcase_add_test(n, test_absval);
  tcase_add_test(n, test_exp);
  tcase_add_test(n, test_log);
  tcase_add_test(n, test_bnll);
  tcase_add_test(n, test_clip);
  tcase_add_test(n, test_swish);
  tcase_add_test(n, test_threshold);
  tcase_add_test(n, test_dropout_test_phase);
  tcase_add_test(n, test_dropout_train_phase);
  suite_add_tcase(s, n);
  TCase *e = tcase_create("eltwise");
  tcase_add_test(e, test_eltwise_forward_backward);
  tcase_add_test(e, test_eltwise_gradient);
  tcase_add_test(e, test_eltwise_errors);
  tcase_add_test(e, test_scale_forward);
  tcase_add_test(e, test_scale_gradient);
  tcase_add_test(e, test_scale_errors);
  tcase_add_test(e, test_bias);
  tcase_add_test(e, test_power);
  suite_add_tcase(s, e);
  TCase *sh = tcase_create("shape");
  tcase_add_test(sh, test_concat_forward);
  tcase_add_test(sh, test_concat_slice_gradient);
  tcase_add_test(sh, test_slice_forward);
  tcase_add_test(sh, test_split);
  tcase_add_test(sh, test_crop);
  tcase_add_test(sh, test_flatten_reshape);
  tcase_add_test(sh, test_tile);
  tcase_add_test(sh, test_silence);
  tcase_add_test(sh, test_input);
  suite_add_tcase(s, sh);
  return s;
}

int main(void) {
  SRunner *r = srunner_create(layers_neuron_eltwise_shape_suite());
  srunner_run_all(r, CK_NORMAL);
  int failed = srunner_ntests_failed(r);
  srunner_free(r);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
