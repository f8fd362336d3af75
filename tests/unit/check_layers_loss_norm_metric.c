/* Softmax, the loss layers, LRN/BatchNorm/MVN, Accuracy/ArgMax and
 * Reduction: forward passes worked by hand and numeric gradient checks. */
#include "config.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layers/layer.h"
#include "tests/unit/gradcheck.h"

#define ck_near(got, want, tol)                                                          \
  ck_assert_msg(fabs((double)(got) - (double)(want)) <= (tol) * fmax(1.0, fabs((double)(want))), \
                "%s = %.9g, expected %.9g", #got, (double)(got), (double)(want))

/* ---- a layer run by hand -------------------------------------------------------------------- */

typedef gc_run run;

/* Parses the layer and creates bottoms of the given shapes (dims listed in
 * shapes, num_axes[i] per bottom) filled from values (one array per bottom,
 * may be NULL). */
static void run_init(run *r, const char *text, Caffe__Phase phase, int nbottom,
                     const int *num_axes, const int *shapes, const float *const *values,
                     int ntop) {
  gc_run_open(r, text, phase);
  for (int i = 0; i < nbottom; i++) {
    r->bottom[i] = blob_create("bottom", &r->err);
    ck_assert_int_eq(blob_reshape(r->bottom[i], num_axes[i], shapes, &r->err), CREMA_OK);
    shapes += num_axes[i];
    if (values && values[i])
      memcpy(r->bottom[i]->data, values[i], r->bottom[i]->count * sizeof(float));
  }
  for (int i = 0; i < ntop; i++)
    r->top[i] = blob_create("top", &r->err);
  r->b = (blob_list){r->bottom, nbottom};
  r->t = (blob_list){r->top, ntop};
}

/* Runs backward with top 0's diff set to w (the loss weight for losses). */
static crema_status run_backward(run *r, float w, const int *prop) {
  for (size_t i = 0; i < r->top[0]->count; i++)
    r->top[0]->diff[i] = w;
  return r->l->ops->backward(r->l, &r->t, prop, &r->b, &r->err);
}

/* ---- gradient checks ------------------------------------------------------------------------ */

typedef struct labels {
  int classes;      /* > 0: integer labels in [0, classes); 0: binary targets */
  int ignore;       /* label written at every `every`-th position (when every > 0) */
  int every;
  float other;      /* binary targets: value written at every `every`-th position */
} labels;

static void prepare_labels(blob **bottoms, int nbottoms, void *user) {
  const labels *lb = user;
  blob *t = bottoms[1];
  for (size_t i = 0; i < t->count; i++) {
    if (lb->every > 0 && i % (size_t)lb->every == 3)
      t->data[i] = lb->classes > 0 ? (float)lb->ignore : lb->other;
    else if (lb->classes > 0)
      t->data[i] = (float)((i * 7 + 3) % (size_t)lb->classes);
    else
      t->data[i] = (float)((i * 5 + i / 3) % 3 == 0);
  }
}

static void grad_check(const char *text, int nbottom, const int *num_axes,
                       const int (*shapes)[6], int ntop, const gc_options *o, labels *lb) {
  Caffe__LayerParameter *p = gc_parse_layer(text);
  gc_check_layer(p, nbottom, num_axes, shapes, ntop, o, lb ? prepare_labels : NULL, lb);
  protobuf_c_message_free_unpacked(&p->base, NULL);
}

static void grad_check1(const char *text, int n, int c, int h, int w, const gc_options *o) {
  const int axes[] = {4};
  const int shapes[][6] = {{n, c, h, w}};
  grad_check(text, 1, axes, shapes, 1, o, NULL);
}

/* A loss on scores (n, c, h, w) and labels of the given shape; only bottom 0
 * is checked. */
static void loss_check(const char *text, const int *score, int label_axes, const int *label,
                       labels *lb) {
  gc_options o = gc_default_options();
  o.check_bottoms = 1;
  const int axes[] = {4, label_axes};
  int shapes[2][6] = {{score[0], score[1], score[2], score[3]}};
  memcpy(shapes[1], label, (size_t)label_axes * sizeof(int));
  grad_check(text, 2, axes, (const int(*)[6])shapes, 1, &o, lb);
}

/* ---- Softmax -------------------------------------------------------------------------------- */

START_TEST(softmax_forward_by_hand) {
  const float x[] = {1, 2, 3, 0, 0, 0};
  const float *v[] = {x};
  const int axes[] = {2}, shape[] = {2, 3};
  run r;
  run_init(&r, "name: 'sm' type: 'Softmax'", CAFFE__PHASE__TEST, 1, axes, shape, v, 1);
  gc_run_forward(&r);
  double z = exp(1) + exp(2) + exp(3);
  ck_near(r.top[0]->data[0], exp(1) / z, 1e-6);
  ck_near(r.top[0]->data[2], exp(3) / z, 1e-6);
  ck_near(r.top[0]->data[4], 1.0 / 3, 1e-6);
  gc_run_free(&r);
}
END_TEST

START_TEST(softmax_axis_out_of_range_fails) {
  const int axes[] = {2}, shape[] = {2, 3};
  run r;
  run_init(&r, "name: 'sm' type: 'Softmax' softmax_param { axis: 2 }", CAFFE__PHASE__TEST, 1,
           axes, shape, NULL, 1);
  ck_assert_int_eq(gc_run_setup(&r), CREMA_ERR_SHAPE);
  ck_assert_ptr_nonnull(strstr(r.err.message, "layer 'sm' (Softmax)"));
  gc_run_free(&r);
}
END_TEST

START_TEST(softmax_gradients) {
  gc_options o = gc_default_options();
  grad_check1("name: 'sm' type: 'Softmax'", 2, 4, 3, 2, &o);
  grad_check1("name: 'sm' type: 'Softmax' softmax_param { axis: 2 }", 2, 3, 4, 2, &o);
  grad_check1("name: 'sm' type: 'Softmax' softmax_param { axis: -1 }", 2, 3, 2, 4, &o);
}
END_TEST

/* ---- SoftmaxWithLoss ------------------------------------------------------------------------ */

/* Scores for 2 items x 3 classes; labels 0 and 2. */
static const float sm_x[] = {1, 2, 3, 0, 1, 0};

static double sm_logp(int item, int cls) {
  const float *x = sm_x + 3 * item;
  return x[cls] - log(exp(x[0]) + exp(x[1]) + exp(x[2]));
}

static void softmax_loss_case(const char *loss_param, const float *label, double want) {
  char text[256];
  snprintf(text, sizeof text, "name: 'loss' type: 'SoftmaxWithLoss' %s", loss_param);
  const float *v[] = {sm_x, label};
  const int axes[] = {2, 1}, shapes[] = {2, 3, 2};
  run r;
  run_init(&r, text, CAFFE__PHASE__TRAIN, 2, axes, shapes, v, 1);
  gc_run_forward(&r);
  ck_assert_int_eq(r.top[0]->num_axes, 0);
  ck_near(r.top[0]->data[0], want, 1e-6);
  gc_run_free(&r);
}

START_TEST(softmax_loss_normalizations) {
  const float both[] = {0, 2}, one_ignored[] = {0, 5};
  double l0 = -sm_logp(0, 0), l1 = -sm_logp(1, 2);
  softmax_loss_case("", both, (l0 + l1) / 2);
  softmax_loss_case("loss_param { ignore_label: 5 }", one_ignored, l0);
  softmax_loss_case("loss_param { ignore_label: 5 normalization: FULL }", one_ignored, l0 / 2);
  softmax_loss_case("loss_param { ignore_label: 5 normalization: BATCH_SIZE }", one_ignored,
                    l0 / 2);
  softmax_loss_case("loss_param { normalization: NONE }", both, l0 + l1);
  /* The legacy flag: normalize false = BATCH_SIZE, true = VALID. */
  softmax_loss_case("loss_param { ignore_label: 5 normalize: false }", one_ignored, l0 / 2);
  softmax_loss_case("loss_param { ignore_label: 5 normalize: true }", one_ignored, l0);
  /* normalization wins over normalize. */
  softmax_loss_case("loss_param { ignore_label: 5 normalize: false normalization: VALID }",
                    one_ignored, l0);
  /* All ignored: the normaliser is clamped to 1. */
  const float none[] = {5, 5};
  softmax_loss_case("loss_param { ignore_label: 5 }", none, 0.0);
}
END_TEST

START_TEST(softmax_loss_backward_and_probabilities) {
  const float label[] = {0, 2};
  const float *v[] = {sm_x, label};
  const int axes[] = {2, 1}, shapes[] = {2, 3, 2};
  run r;
  run_init(&r, "name: 'loss' type: 'SoftmaxWithLoss'", CAFFE__PHASE__TRAIN, 2, axes, shapes, v,
           2);
  gc_run_forward(&r);
  ck_assert_int_eq(r.top[1]->count, 6);
  ck_near(r.top[1]->data[1], exp(sm_logp(0, 1)), 1e-6);
  int prop[] = {1, 0};
  ck_assert_int_eq(run_backward(&r, 3.0f, prop), CREMA_OK);
  /* (p - onehot) * weight / 2 valid labels. */
  ck_near(r.bottom[0]->diff[0], (exp(sm_logp(0, 0)) - 1) * 1.5, 1e-6);
  ck_near(r.bottom[0]->diff[4], exp(sm_logp(1, 1)) * 1.5, 1e-6);
  ck_near(r.bottom[0]->diff[5], (exp(sm_logp(1, 2)) - 1) * 1.5, 1e-6);
  int both[] = {1, 1};
  ck_assert_int_eq(run_backward(&r, 1.0f, both), CREMA_ERR_UNSUPPORTED);
  ck_assert_ptr_nonnull(strstr(r.err.message, "label"));
  gc_run_free(&r);
}
END_TEST

START_TEST(softmax_loss_rejects_bad_labels) {
  const float label[] = {0, 3};
  const float *v[] = {sm_x, label};
  const int axes[] = {2, 1}, shapes[] = {2, 3, 2};
  run r;
  run_init(&r, "name: 'loss' type: 'SoftmaxWithLoss'", CAFFE__PHASE__TRAIN, 2, axes, shapes, v,
           1);
  ck_assert_int_eq(gc_run_setup(&r), CREMA_OK);
  ck_assert_int_eq(r.l->ops->forward(r.l, &r.b, &r.t, &r.err), CREMA_ERR_INVALID);
  ck_assert_ptr_nonnull(strstr(r.err.message, "out of range"));
  gc_run_free(&r);

  const int bad[] = {2, 1}, bad_shapes[] = {2, 3, 3};
  run_init(&r, "name: 'loss' type: 'SoftmaxWithLoss'", CAFFE__PHASE__TRAIN, 2, bad,
           bad_shapes, NULL, 1);
  ck_assert_int_eq(gc_run_setup(&r), CREMA_ERR_SHAPE);
  gc_run_free(&r);
}
END_TEST

START_TEST(softmax_loss_gradients) {
  const int score[] = {2, 5, 2, 3}, label[] = {2, 1, 2, 3};
  labels lb = {5, 0, 0, 0};
  loss_check("name: 'loss' type: 'SoftmaxWithLoss'", score, 4, label, &lb);
  labels ign = {5, -1, 4, 0};
  const char *modes[] = {"VALID", "FULL", "BATCH_SIZE", "NONE"};
  for (int i = 0; i < 4; i++) {
    char text[160];
    snprintf(text, sizeof text,
             "name: 'loss' type: 'SoftmaxWithLoss' "
             "loss_param { ignore_label: -1 normalization: %s }",
             modes[i]);
    loss_check(text, score, 4, label, &ign);
  }
  /* Softmax over axis 2: labels are (2, 5, 3). */
  const int score2[] = {2, 5, 4, 3}, label2[] = {2, 5, 3};
  labels four = {4, 0, 0, 0};
  loss_check("name: 'loss' type: 'SoftmaxWithLoss' softmax_param { axis: 2 }", score2, 3,
             label2, &four);
}
END_TEST

/* ---- SigmoidCrossEntropyLoss ---------------------------------------------------------------- */

static double sce(double x, double t) {
  double s = 1.0 / (1.0 + exp(-x));
  return -(t * log(s) + (1 - t) * log(1 - s));
}

START_TEST(sigmoid_loss_forward_backward) {
  const float x[] = {0, 1, -2, 3}, t[] = {1, 0, 1, -1};
  const float *v[] = {x, t};
  const int axes[] = {2, 2}, shapes[] = {2, 2, 2, 2};
  double l[4];
  for (int i = 0; i < 4; i++)
    l[i] = sce(x[i], t[i]);
  /* Default: divided by the batch size, every target counts. */
  run r;
  run_init(&r, "name: 'loss' type: 'SigmoidCrossEntropyLoss'", CAFFE__PHASE__TRAIN, 2, axes,
           shapes, v, 1);
  gc_run_forward(&r);
  double all = 0;
  for (int i = 0; i < 4; i++)
    all += -(x[i] * t[i] - log(1 + exp(x[i])));
  ck_near(r.top[0]->data[0], all / 2, 1e-6);
  gc_run_free(&r);
  /* ignore_label -1 with VALID: three targets count. */
  run_init(&r,
           "name: 'loss' type: 'SigmoidCrossEntropyLoss' "
           "loss_param { ignore_label: -1 normalization: VALID }",
           CAFFE__PHASE__TRAIN, 2, axes, shapes, v, 1);
  gc_run_forward(&r);
  ck_near(r.top[0]->data[0], (l[0] + l[1] + l[2]) / 3, 1e-6);
  int prop[] = {1, 0};
  ck_assert_int_eq(run_backward(&r, 2.0f, prop), CREMA_OK);
  ck_near(r.bottom[0]->diff[0], (0.5 - 1) * 2 / 3, 1e-6);
  ck_near(r.bottom[0]->diff[1], 1 / (1 + exp(-1.0)) * 2 / 3, 1e-6);
  ck_near(r.bottom[0]->diff[3], 0.0, 1e-7);
  int both[] = {1, 1};
  ck_assert_int_eq(run_backward(&r, 1.0f, both), CREMA_ERR_UNSUPPORTED);
  gc_run_free(&r);
  /* Legacy normalize: true = VALID. */
  run_init(&r,
           "name: 'loss' type: 'SigmoidCrossEntropyLoss' "
           "loss_param { ignore_label: -1 normalize: true }",
           CAFFE__PHASE__TRAIN, 2, axes, shapes, v, 1);
  gc_run_forward(&r);
  ck_near(r.top[0]->data[0], (l[0] + l[1] + l[2]) / 3, 1e-6);
  gc_run_free(&r);
}
END_TEST

START_TEST(sigmoid_loss_gradients) {
  const int score[] = {2, 3, 2, 4}, label[] = {2, 3, 2, 4};
  labels bin = {0, 0, 0, 0};
  loss_check("name: 'loss' type: 'SigmoidCrossEntropyLoss'", score, 4, label, &bin);
  labels ign = {0, 0, 5, -1.0f};
  loss_check(
      "name: 'loss' type: 'SigmoidCrossEntropyLoss' loss_param { ignore_label: -1 "
      "normalization: VALID }",
      score, 4, label, &ign);
  loss_check(
      "name: 'loss' type: 'SigmoidCrossEntropyLoss' loss_param { ignore_label: -1 "
      "normalization: FULL }",
      score, 4, label, &ign);
}
END_TEST

/* ---- EuclideanLoss -------------------------------------------------------------------------- */

START_TEST(euclidean_loss_forward_backward) {
  const float a[] = {1, 2, 3, 4}, b[] = {0, 2, 5, 1};
  const float *v[] = {a, b};
  const int axes[] = {2, 2}, shapes[] = {2, 2, 2, 2};
  run r;
  run_init(&r, "name: 'loss' type: 'EuclideanLoss'", CAFFE__PHASE__TRAIN, 2, axes, shapes, v,
           1);
  gc_run_forward(&r);
  ck_near(r.top[0]->data[0], (1 + 0 + 4 + 9) / 2.0 / 2.0, 1e-6);
  int prop[] = {1, 1};
  ck_assert_int_eq(run_backward(&r, 2.0f, prop), CREMA_OK);
  ck_near(r.bottom[0]->diff[2], -2.0 * 2 / 2, 1e-6);
  ck_near(r.bottom[1]->diff[2], 2.0 * 2 / 2, 1e-6);
  ck_near(r.bottom[1]->diff[3], -3.0 * 2 / 2, 1e-6);
  gc_run_free(&r);
}
END_TEST

START_TEST(euclidean_loss_gradients) {
  gc_options o = gc_default_options();
  const int axes[] = {4, 4};
  const int shapes[][6] = {{2, 3, 2, 2}, {2, 3, 2, 2}};
  grad_check("name: 'loss' type: 'EuclideanLoss'", 2, axes, shapes, 1, &o, NULL);
}
END_TEST

/* ---- ClassBalancedSigmoidCrossEntropyLoss --------------------------------------------------- */

START_TEST(balanced_loss_by_hand) {
  /* Item 0: one positive, three negatives at x = 0: beta = 3/4.
   * Item 1: targets 1, 1, 0, 0.5 (ignored): beta = 1/3; s(ln 3) = 3/4. */
  const float l3 = (float)log(3.0);
  const float x[] = {0, 0, 0, 0, l3, 0, -l3, 5};
  const float t[] = {1, 0, 0, 0, 1, 1, 0, 0.5f};
  const float *v[] = {x, t};
  const int axes[] = {2, 2}, shapes[] = {2, 4, 2, 4};
  run r;
  run_init(&r, "name: 'loss' type: 'ClassBalancedSigmoidCrossEntropyLoss'", CAFFE__PHASE__TRAIN,
           2, axes, shapes, v, 1);
  gc_run_forward(&r);
  double ln2 = log(2.0), ln43 = log(4.0 / 3.0);
  double item0 = 0.75 * ln2 + 0.25 * 3 * ln2;
  double item1 = (ln43 + ln2) / 3 + 2.0 / 3 * ln43;
  ck_near(r.top[0]->data[0], (item0 + item1) / 2, 1e-6);
  int prop[] = {1, 0};
  ck_assert_int_eq(run_backward(&r, 1.0f, prop), CREMA_OK);
  const double want[] = {-0.1875, 0.0625, 0.0625, 0.0625, -1.0 / 24, -1.0 / 12, 1.0 / 12, 0};
  for (int i = 0; i < 8; i++)
    ck_near(r.bottom[0]->diff[i], want[i], 1e-6);
  ck_assert_int_eq(run_backward(&r, 1.0f, (int[]){1, 1}), CREMA_ERR_UNSUPPORTED);
  gc_run_free(&r);
}
END_TEST

START_TEST(balanced_loss_infinite_logits) {
  /* Backward keeps forward's sigmoid; infinite logits still get the
   * sigmoid's limits (and a NaN logit a NaN gradient), as with tanh. */
  const float inf = INFINITY;
  const float x[] = {inf, -inf, inf, NAN};
  const float t[] = {0, 1, 1, 0};
  const float *v[] = {x, t};
  const int axes[] = {2, 2}, shapes[] = {1, 4, 1, 4};
  run r;
  run_init(&r, "name: 'loss' type: 'ClassBalancedSigmoidCrossEntropyLoss'", CAFFE__PHASE__TRAIN,
           2, axes, shapes, v, 1);
  gc_run_forward(&r);
  int prop[] = {1, 0};
  ck_assert_int_eq(run_backward(&r, 1.0f, prop), CREMA_OK);
  /* beta = 2/4: every target weighs 1/2. */
  ck_near(r.bottom[0]->diff[0], 0.5, 1e-6);
  ck_near(r.bottom[0]->diff[1], -0.5, 1e-6);
  ck_near(r.bottom[0]->diff[2], 0.0, 1e-6);
  ck_assert(isnan(r.bottom[0]->diff[3]));
  gc_run_free(&r);
}
END_TEST

START_TEST(balanced_loss_item_without_targets) {
  /* The second item has only ignored targets: no loss, zero gradient, but it
   * still counts in N. */
  const float x[] = {0, 0, 1, -1};
  const float t[] = {1, 0, 2, 0.5f};
  const float *v[] = {x, t};
  const int axes[] = {2, 2}, shapes[] = {2, 2, 2, 2};
  run r;
  run_init(&r, "name: 'loss' type: 'ClassBalancedSigmoidCrossEntropyLoss'", CAFFE__PHASE__TRAIN,
           2, axes, shapes, v, 1);
  gc_run_forward(&r);
  ck_near(r.top[0]->data[0], (0.5 * log(2.0) * 2) / 2, 1e-6);
  ck_assert_int_eq(run_backward(&r, 0.5f, (int[]){1, 0}), CREMA_OK);
  ck_near(r.bottom[0]->diff[0], 0.5 / 2 * 0.5 * (0.5 - 1), 1e-6);
  ck_near(r.bottom[0]->diff[2], 0.0, 1e-7);
  ck_near(r.bottom[0]->diff[3], 0.0, 1e-7);
  gc_run_free(&r);
}
END_TEST

/* Items large enough to be summed in chunks over the team: loss and
 * gradient against a plain double-precision loop. */
START_TEST(balanced_loss_large_items) {
  enum { ITEMS = 2, INNER = 3 * 4096 + 77 };
  float *x = malloc(sizeof(float) * ITEMS * INNER), *t = malloc(sizeof(float) * ITEMS * INNER);
  ck_assert(x && t);
  for (int i = 0; i < ITEMS * INNER; i++) {
    x[i] = (float)((i * 37 % 1001) - 500) / 125.0f;
    t[i] = i % 7 == 0 ? 1.0f : i % 11 == 0 ? 0.5f : 0.0f;
  }
  const float *v[] = {x, t};
  const int axes[] = {2, 2}, shapes[] = {ITEMS, INNER, ITEMS, INNER};
  run r;
  run_init(&r, "name: 'loss' type: 'ClassBalancedSigmoidCrossEntropyLoss'", CAFFE__PHASE__TRAIN,
           2, axes, shapes, v, 1);
  gc_run_forward(&r);
  ck_assert_int_eq(run_backward(&r, 1.0f, (int[]){1, 0}), CREMA_OK);
  double loss = 0;
  for (int n = 0; n < ITEMS; n++) {
    const float *xn = x + n * INNER, *tn = t + n * INNER;
    double pos = 0, neg = 0;
    for (int j = 0; j < INNER; j++)
      pos += tn[j] == 1.0f, neg += tn[j] == 0.0f;
    double beta = neg / (pos + neg);
    for (int j = 0; j < INNER; j++) {
      double w = tn[j] == 1.0f ? beta : tn[j] == 0.0f ? 1 - beta : 0;
      double s = 1 / (1 + exp(-(double)xn[j]));
      loss -= w * (tn[j] * log(s) + (1 - tn[j]) * log(1 - s));
      ck_near(r.bottom[0]->diff[n * INNER + j], w * (s - tn[j]) / ITEMS, 1e-6);
    }
  }
  ck_near(r.top[0]->data[0], loss / ITEMS, 1e-5 * loss / ITEMS);
  gc_run_free(&r);
  free(x);
  free(t);
}
END_TEST

START_TEST(balanced_loss_gradients) {
  const int score[] = {3, 1, 4, 5}, label[] = {3, 1, 4, 5};
  labels bin = {0, 0, 0, 0};
  loss_check("name: 'loss' type: 'ClassBalancedSigmoidCrossEntropyLoss'", score, 4, label, &bin);
  labels ign = {0, 0, 4, 0.5f};
  loss_check("name: 'loss' type: 'ClassBalancedSigmoidCrossEntropyLoss'", score, 4, label, &ign);
}
END_TEST

/* ---- LRN ------------------------------------------------------------------------------------ */

START_TEST(lrn_across_by_hand) {
  const float x[] = {1, 2, 3};
  const float *v[] = {x};
  const int axes[] = {4}, shape[] = {1, 3, 1, 1};
  run r;
  run_init(&r,
           "name: 'lrn' type: 'LRN' lrn_param { local_size: 3 alpha: 0.3 beta: 0.75 k: 2 }",
           CAFFE__PHASE__TEST, 1, axes, shape, v, 1);
  gc_run_forward(&r);
  /* Windows {0,1}, {0,1,2}, {1,2} of squares 1, 4, 9; alpha / 3 = 0.1. */
  ck_near(r.top[0]->data[0], 1 * pow(2 + 0.1 * 5, -0.75), 1e-6);
  ck_near(r.top[0]->data[1], 2 * pow(2 + 0.1 * 14, -0.75), 1e-6);
  ck_near(r.top[0]->data[2], 3 * pow(2 + 0.1 * 13, -0.75), 1e-6);
  gc_run_free(&r);
}
END_TEST

START_TEST(lrn_within_by_hand) {
  /* A 2x3 plane, 3x3 windows (pad 1): the divisor is 9 even at the border,
   * and k is not used (Caffe's power layer shifts by 1). */
  const float x[] = {1, 2, 3, 4, 5, 6};
  const float *v[] = {x};
  const int axes[] = {4}, shape[] = {1, 1, 2, 3};
  run r;
  run_init(&r,
           "name: 'lrn' type: 'LRN' lrn_param { local_size: 3 alpha: 0.9 beta: 0.5 k: 7 "
           "norm_region: WITHIN_CHANNEL }",
           CAFFE__PHASE__TEST, 1, axes, shape, v, 1);
  gc_run_forward(&r);
  double s0 = 1 + 4 + 16 + 25, s1 = 1 + 4 + 9 + 16 + 25 + 36;
  ck_near(r.top[0]->data[0], 1 * pow(1 + 0.9 * s0 / 9, -0.5), 1e-6);
  ck_near(r.top[0]->data[4], 5 * pow(1 + 0.9 * s1 / 9, -0.5), 1e-6);
  gc_run_free(&r);
}
END_TEST

START_TEST(lrn_rejects_bad_parameters) {
  const int axes[] = {4}, shape[] = {1, 3, 1, 1};
  run r;
  run_init(&r, "name: 'lrn' type: 'LRN' lrn_param { local_size: 4 }", CAFFE__PHASE__TEST, 1,
           axes, shape, NULL, 1);
  ck_assert_int_eq(gc_run_setup(&r), CREMA_ERR_INVALID);
  ck_assert_ptr_nonnull(strstr(r.err.message, "odd"));
  gc_run_free(&r);
  const int axes3[] = {3};
  run_init(&r, "name: 'lrn' type: 'LRN'", CAFFE__PHASE__TEST, 1, axes3, shape, NULL, 1);
  ck_assert_int_eq(gc_run_setup(&r), CREMA_ERR_SHAPE);
  gc_run_free(&r);
}
END_TEST

START_TEST(lrn_gradients) {
  gc_options o = gc_default_options();
  grad_check1("name: 'lrn' type: 'LRN' lrn_param { local_size: 3 alpha: 0.5 beta: 0.75 }", 2, 7,
              3, 3, &o);
  grad_check1("name: 'lrn' type: 'LRN' lrn_param { local_size: 5 alpha: 2 beta: 0.6 k: 1.5 }",
              2, 4, 2, 3, &o);
  grad_check1(
      "name: 'lrn' type: 'LRN' lrn_param { local_size: 3 alpha: 2 beta: 0.75 "
      "norm_region: WITHIN_CHANNEL }",
      2, 2, 4, 5, &o);
  grad_check1(
      "name: 'lrn' type: 'LRN' lrn_param { local_size: 5 alpha: 3 beta: 0.4 "
      "norm_region: WITHIN_CHANNEL }",
      1, 2, 3, 6, &o);
}
END_TEST

/* ---- BatchNorm ------------------------------------------------------------------------------ */

START_TEST(batch_norm_batch_statistics) {
  /* Two items, two channels, two pixels: channel 0 = {1, 2, 3, 6}, channel 1 = {0, 0, 4, 4}. */
  const float x[] = {1, 2, 0, 0, 3, 6, 4, 4};
  const float *v[] = {x};
  const int axes[] = {3}, shape[] = {2, 2, 2};
  run r;
  run_init(&r,
           "name: 'bn' type: 'BatchNorm' batch_norm_param { eps: 0.5 "
           "moving_average_fraction: 0.9 }",
           CAFFE__PHASE__TRAIN, 1, axes, shape, v, 1);
  gc_run_forward(&r);
  double sd0 = sqrt(3.5 + 0.5), sd1 = sqrt(4 + 0.5);
  ck_near(r.top[0]->data[0], (1 - 3) / sd0, 1e-6);
  ck_near(r.top[0]->data[5], (6 - 3) / sd0, 1e-6);
  ck_near(r.top[0]->data[2], (0 - 2) / sd1, 1e-6);
  ck_assert_int_eq(r.l->nblobs, 3);
  ck_near(r.l->blobs[0]->data[0], 3, 1e-6);
  ck_near(r.l->blobs[1]->data[0], 3.5 * 4 / 3, 1e-6);
  ck_near(r.l->blobs[1]->data[1], 4.0 * 4 / 3, 1e-6);
  ck_near(r.l->blobs[2]->data[0], 1, 1e-6);
  ck_assert_int_eq(r.l->ops->forward(r.l, &r.b, &r.t, &r.err), CREMA_OK);
  ck_near(r.l->blobs[0]->data[0], 3 + 0.9 * 3, 1e-6);
  ck_near(r.l->blobs[2]->data[0], 1.9, 1e-6);
  gc_run_free(&r);
}
END_TEST

START_TEST(batch_norm_global_statistics) {
  const float x[] = {1, 2, 3, 4};
  const float *v[] = {x};
  const int axes[] = {2}, shape[] = {2, 2};
  run r;
  /* TEST phase: stored statistics by default. */
  run_init(&r, "name: 'bn' type: 'BatchNorm'", CAFFE__PHASE__TEST, 1, axes, shape, v, 1);
  ck_assert_int_eq(gc_run_setup(&r), CREMA_OK);
  r.l->blobs[0]->data[0] = 2;
  r.l->blobs[0]->data[1] = 4;
  r.l->blobs[1]->data[0] = 8;
  r.l->blobs[1]->data[1] = 2;
  r.l->blobs[2]->data[0] = 2;
  ck_assert_int_eq(r.l->ops->forward(r.l, &r.b, &r.t, &r.err), CREMA_OK);
  double sd0 = sqrt(4 + 1e-5), sd1 = sqrt(1 + 1e-5);
  ck_near(r.top[0]->data[0], (1 - 1) / sd0, 1e-6);
  ck_near(r.top[0]->data[1], (2 - 2) / sd1, 1e-6);
  ck_near(r.top[0]->data[2], (3 - 1) / sd0, 1e-6);
  ck_near(r.top[0]->data[3], (4 - 2) / sd1, 1e-6);
  ck_assert_int_eq(run_backward(&r, 1.0f, (int[]){1}), CREMA_OK);
  ck_near(r.bottom[0]->diff[2], 1 / sd0, 1e-6);
  /* The statistics are not updated. */
  ck_near(r.l->blobs[2]->data[0], 2, 1e-7);
  gc_run_free(&r);
}
END_TEST

START_TEST(batch_norm_rejects_learnable_statistics) {
  const int axes[] = {2}, shape[] = {2, 2};
  run r;
  run_init(&r, "name: 'bn' type: 'BatchNorm' param { lr_mult: 0 } param { lr_mult: 1 }",
           CAFFE__PHASE__TEST, 1, axes, shape, NULL, 1);
  ck_assert_int_eq(gc_run_setup(&r), CREMA_ERR_INVALID);
  ck_assert_ptr_nonnull(strstr(r.err.message, "lr_mult"));
  gc_run_free(&r);
}
END_TEST

START_TEST(batch_norm_gradients) {
  gc_options o = gc_default_options();
  grad_check1("name: 'bn' type: 'BatchNorm'", 2, 3, 2, 3, &o);
  grad_check1("name: 'bn' type: 'BatchNorm' batch_norm_param { eps: 0.01 }", 3, 2, 1, 2, &o);
  /* Stored statistics (all zero: the output is x / sqrt(eps)). */
  o.phase = CAFFE__PHASE__TEST;
  grad_check1("name: 'bn' type: 'BatchNorm' batch_norm_param { eps: 0.25 }", 2, 3, 2, 2, &o);
}
END_TEST

/* ---- MVN ------------------------------------------------------------------------------------ */

START_TEST(mvn_by_hand) {
  const float x[] = {1, 2, 3, 4, 10, 10, 10, 14};
  const float *v[] = {x};
  const int axes[] = {4}, shape[] = {1, 2, 2, 2};
  run r;
  run_init(&r, "name: 'mvn' type: 'MVN' mvn_param { eps: 0.5 }", CAFFE__PHASE__TEST, 1, axes,
           shape, v, 1);
  gc_run_forward(&r);
  double sd0 = sqrt(1.25) + 0.5, sd1 = sqrt(3.0) + 0.5;
  ck_near(r.top[0]->data[0], -1.5 / sd0, 1e-6);
  ck_near(r.top[0]->data[3], 1.5 / sd0, 1e-6);
  ck_near(r.top[0]->data[7], 3 / sd1, 1e-6);
  gc_run_free(&r);
  run_init(&r,
           "name: 'mvn' type: 'MVN' "
           "mvn_param { normalize_variance: false across_channels: true }",
           CAFFE__PHASE__TEST, 1, axes, shape, v, 1);
  gc_run_forward(&r);
  ck_near(r.top[0]->data[0], 1 - 6.75, 1e-6);
  ck_near(r.top[0]->data[7], 14 - 6.75, 1e-6);
  gc_run_free(&r);
}
END_TEST

START_TEST(mvn_gradients) {
  gc_options o = gc_default_options();
  grad_check1("name: 'mvn' type: 'MVN'", 2, 3, 2, 3, &o);
  grad_check1("name: 'mvn' type: 'MVN' mvn_param { across_channels: true }", 2, 3, 2, 2, &o);
  grad_check1("name: 'mvn' type: 'MVN' mvn_param { normalize_variance: false }", 2, 3, 2, 2, &o);
  grad_check1(
      "name: 'mvn' type: 'MVN' mvn_param { normalize_variance: false across_channels: true }", 2,
      2, 3, 2, &o);
}
END_TEST

/* ---- Accuracy and ArgMax -------------------------------------------------------------------- */

/* Three items, four classes. */
static const float acc_x[] = {0.1f, 0.5f, 0.3f, 0.1f,   /* best 1, then 2 */
                              0.9f, 0.0f, 0.05f, 0.05f, /* best 0 */
                              0.2f, 0.2f, 0.3f, 0.3f};  /* ties */

static void accuracy_case(const char *param, const float *label, double want, const float *per) {
  char text[200];
  snprintf(text, sizeof text, "name: 'acc' type: 'Accuracy' %s", param);
  const float *v[] = {acc_x, label};
  const int axes[] = {2, 1}, shapes[] = {3, 4, 3};
  run r;
  run_init(&r, text, CAFFE__PHASE__TEST, 2, axes, shapes, v, per ? 2 : 1);
  gc_run_forward(&r);
  ck_assert_int_eq(r.top[0]->num_axes, 0);
  ck_near(r.top[0]->data[0], want, 1e-6);
  if (per) {
    ck_assert_int_eq(r.top[1]->count, 4);
    for (int i = 0; i < 4; i++)
      ck_near(r.top[1]->data[i], per[i], 1e-6);
  }
  gc_run_free(&r);
}

START_TEST(accuracy_by_hand) {
  const float truth[] = {1, 2, 3};
  /* Item 2: class 3 ties with class 2, which counts as better: top-1 miss.
   * Item 1: classes 0 and 3 count as better than class 2: top-2 miss. */
  accuracy_case("", truth, 1.0 / 3, NULL);
  accuracy_case("accuracy_param { top_k: 2 }", truth, 2.0 / 3, NULL);
  const float l2[] = {2, 2, 0};
  const float per[] = {0, 0, 0.5, 0};
  accuracy_case("accuracy_param { top_k: 2 }", l2, 1.0 / 3, per);
  const float ignored[] = {1, 7, 7};
  accuracy_case("accuracy_param { ignore_label: 7 }", ignored, 1.0, NULL);
  accuracy_case("accuracy_param { ignore_label: 1 }", (const float[]){1, 1, 1}, 0.0, NULL);
}
END_TEST

START_TEST(accuracy_rejects_bad_input) {
  const float label[] = {1, 4, 0};
  const float *v[] = {acc_x, label};
  const int axes[] = {2, 1}, shapes[] = {3, 4, 3};
  run r;
  run_init(&r, "name: 'acc' type: 'Accuracy'", CAFFE__PHASE__TEST, 2, axes, shapes, v, 1);
  ck_assert_int_eq(gc_run_setup(&r), CREMA_OK);
  ck_assert_int_eq(r.l->ops->forward(r.l, &r.b, &r.t, &r.err), CREMA_ERR_INVALID);
  gc_run_free(&r);
  run_init(&r, "name: 'acc' type: 'Accuracy' accuracy_param { top_k: 5 }", CAFFE__PHASE__TEST,
           2, axes, shapes, v, 1);
  ck_assert_int_eq(gc_run_setup(&r), CREMA_ERR_SHAPE);
  gc_run_free(&r);
}
END_TEST

START_TEST(argmax_by_hand) {
  const float *v[] = {acc_x};
  const int axes[] = {2}, shape[] = {3, 4};
  run r;
  run_init(&r, "name: 'am' type: 'ArgMax'", CAFFE__PHASE__TEST, 1, axes, shape, v, 1);
  gc_run_forward(&r);
  ck_assert_int_eq(r.top[0]->num_axes, 3);
  ck_assert_int_eq(r.top[0]->shape[0], 3);
  ck_assert_int_eq(r.top[0]->count, 3);
  ck_near(r.top[0]->data[0], 1, 0);
  ck_near(r.top[0]->data[1], 0, 0);
  ck_near(r.top[0]->data[2], 3, 0); /* ties go to the larger index */
  gc_run_free(&r);

  run_init(&r, "name: 'am' type: 'ArgMax' argmax_param { top_k: 2 out_max_val: true }",
           CAFFE__PHASE__TEST, 1, axes, shape, v, 1);
  gc_run_forward(&r);
  ck_assert_int_eq(r.top[0]->shape[1], 2);
  ck_assert_int_eq(r.top[0]->shape[2], 2);
  const float want[] = {1, 2, 0.5f, 0.3f, 0, 3, 0.9f, 0.05f, 3, 2, 0.3f, 0.3f};
  for (int i = 0; i < 12; i++)
    ck_near(r.top[0]->data[i], want[i], 1e-7);
  gc_run_free(&r);

  /* Along axis 0 of the 3 x 4 input. */
  run_init(&r, "name: 'am' type: 'ArgMax' argmax_param { axis: 0 }", CAFFE__PHASE__TEST, 1,
           axes, shape, v, 1);
  gc_run_forward(&r);
  ck_assert_int_eq(r.top[0]->shape[0], 1);
  ck_assert_int_eq(r.top[0]->shape[1], 4);
  const float along[] = {1, 0, 2, 2};
  for (int i = 0; i < 4; i++)
    ck_near(r.top[0]->data[i], along[i], 0);
  gc_run_free(&r);

  run_init(&r, "name: 'am' type: 'ArgMax' argmax_param { axis: 1 out_max_val: true }",
           CAFFE__PHASE__TEST, 1, axes, shape, v, 1);
  gc_run_forward(&r);
  ck_near(r.top[0]->data[1], 0.9f, 0);
  gc_run_free(&r);

  run_init(&r, "name: 'am' type: 'ArgMax' argmax_param { top_k: 5 axis: 1 }",
           CAFFE__PHASE__TEST, 1, axes, shape, v, 1);
  ck_assert_int_ne(gc_run_setup(&r), CREMA_OK);
  gc_run_free(&r);
}
END_TEST

/* ---- Reduction ------------------------------------------------------------------------------ */

START_TEST(reduction_by_hand) {
  const float x[] = {1, -2, 3, -4, 5, -6};
  const float *v[] = {x};
  const int axes[] = {2}, shape[] = {2, 3};
  struct {
    const char *param;
    int top_axes;
    double want[2];
  } cases[] = {
      {"operation: SUM", 0, {-3}},
      {"operation: ASUM axis: 1", 1, {6, 15}},
      {"operation: SUMSQ axis: -1 coeff: 0.5", 1, {7, 38.5}},
      {"operation: MEAN axis: 1 coeff: 2", 1, {4.0 / 3, -10.0 / 3}},
      {"operation: MEAN", 0, {-0.5}},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char text[160];
    snprintf(text, sizeof text, "name: 'r' type: 'Reduction' reduction_param { %s }",
             cases[i].param);
    run r;
    run_init(&r, text, CAFFE__PHASE__TEST, 1, axes, shape, v, 1);
    gc_run_forward(&r);
    ck_assert_int_eq(r.top[0]->num_axes, cases[i].top_axes);
    for (size_t j = 0; j < r.top[0]->count; j++)
      ck_near(r.top[0]->data[j], cases[i].want[j], 1e-6);
    gc_run_free(&r);
  }
}
END_TEST

START_TEST(reduction_gradients) {
  const char *ops[] = {"SUM", "ASUM", "SUMSQ", "MEAN"};
  const int axis[] = {0, 1, -1, 2};
  for (int i = 0; i < 4; i++)
    for (int a = 0; a < 4; a++) {
      gc_options o = gc_default_options();
      o.kink = 0.0f;
      o.kink_range = i == 1 ? 2e-2f : -1.0f;
      char text[160];
      snprintf(text, sizeof text,
               "name: 'r' type: 'Reduction' reduction_param { operation: %s axis: %d coeff: %s }",
               ops[i], axis[a], a % 2 ? "-1.5" : "1");
      grad_check1(text, 2, 3, 2, 2, &o);
    }
}
END_TEST

static Suite *layers_loss_norm_metric_suite(void) {
  Suite *s = suite_create("layers_loss_norm_metric");
  TCase *t = tcase_create("softmax");
  tcase_add_test(t, softmax_forward_by_hand);
  tcase_add_test(t, softmax_axis_out_of_range_fails);
  tcase_add_test(t, softmax_gradients);
  suite_add_tcase(s, t);
  t = tcase_create("loss");
  tcase_add_test(t, softmax_loss_normalizations);
  tcase_add_test(t, softmax_loss_backward_and_probabilities);
  tcase_add_test(t, softmax_loss_rejects_bad_labels);
  tcase_add_test(t, softmax_loss_gradients);
  tcase_add_test(t, sigmoid_loss_forward_backward);
  tcase_add_test(t, sigmoid_loss_gradients);
  tcase_add_test(t, euclidean_loss_forward_backward);
  tcase_add_test(t, euclidean_loss_gradients);
  tcase_add_test(t, balanced_loss_by_hand);
  tcase_add_test(t, balanced_loss_infinite_logits);
  tcase_add_test(t, balanced_loss_item_without_targets);
  tcase_add_test(t, balanced_loss_gradients);
  tcase_add_test(t, balanced_loss_large_items);
  suite_add_tcase(s, t);
  t = tcase_create("norm");
  tcase_add_test(t, lrn_across_by_hand);
  tcase_add_test(t, lrn_within_by_hand);
  tcase_add_test(t, lrn_rejects_bad_parameters);
  tcase_add_test(t, lrn_gradients);
  tcase_add_test(t, batch_norm_batch_statistics);
  tcase_add_test(t, batch_norm_global_statistics);
  tcase_add_test(t, batch_norm_rejects_learnable_statistics);
  tcase_add_test(t, batch_norm_gradients);
  tcase_add_test(t, mvn_by_hand);
  tcase_add_test(t, mvn_gradients);
  suite_add_tcase(s, t);
  t = tcase_create("metric");
  tcase_add_test(t, accuracy_by_hand);
  tcase_add_test(t, accuracy_rejects_bad_input);
  tcase_add_test(t, argmax_by_hand);
  tcase_add_test(t, reduction_by_hand);
  tcase_add_test(t, reduction_gradients);
  suite_add_tcase(s, t);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(layers_loss_norm_metric_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
