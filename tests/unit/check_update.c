/* Solver update rules and gradient preprocessing against hand-worked steps. */
#include "config.h"

#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "solver/update.h"

typedef struct fixture {
  Caffe__SolverParameter p;
  blob *b;
  learnable prm;
  update_rule u;
} fixture;

/* One parameter blob [1, -2] with the given solver type. */
static void setup_fixture(fixture *f, const char *type) {
  crema_error err = {0};
  caffe__solver_parameter__init(&f->p);
  f->p.type = (char *)type;
  f->b = blob_create("w", &err);
  ck_assert_ptr_nonnull(f->b);
  int shape[] = {2};
  ck_assert_int_eq(blob_reshape(f->b, 1, shape, &err), CREMA_OK);
  f->b->data[0] = 1;
  f->b->data[1] = -2;
  f->prm.b = f->b;
  f->prm.lr_mult = 1;
  f->prm.decay_mult = 1;
}

static void init_rule(fixture *f) {
  crema_error err = {0};
  ck_assert_msg(update_rule_init(&f->u, &f->p, &f->prm, 1, &err) == CREMA_OK, "%s",
                err.message);
}

static void step(fixture *f, float g0, float g1, float rate, int iter) {
  f->b->diff[0] = g0;
  f->b->diff[1] = g1;
  update_apply(&f->u, &f->prm, 1, rate, iter, 0);
}

static void teardown_fixture(fixture *f) {
  update_rule_free(&f->u);
  blob_free(f->b);
}

#define ck_assert_near(got, want)                                               \
  ck_assert_msg(fabs((double)(got) - (want)) <= 1e-5 * fabs(want) + 1e-7,       \
                "got %.9g, expected %.9g", (double)(got), (double)(want))

START_TEST(sgd_accumulates_momentum) {
  fixture f;
  setup_fixture(&f, "SGD");
  f.p.momentum = 0.9f;
  init_rule(&f);
  ck_assert_int_eq(f.u.nhistory, 1);
  step(&f, 0.5f, 1, 0.1f, 0);
  ck_assert_near(f.b->data[0], 0.95);
  ck_assert_near(f.b->data[1], -2.1);
  step(&f, 0.5f, 1, 0.1f, 1);
  ck_assert_near(f.u.history[0]->data[0], 0.095);
  ck_assert_near(f.b->data[0], 0.855);
  ck_assert_near(f.b->data[1], -2.29);
  teardown_fixture(&f);
}
END_TEST

/* Plain SGD may zero the diffs as it updates; data and history are the
 * same bits, and the diffs Caffe leaves (the steps) come back from the
 * history.  Other rules keep the step in the diff. */
START_TEST(sgd_can_clear_diffs) {
  fixture a, b;
  setup_fixture(&a, "SGD");
  setup_fixture(&b, "SGD");
  a.p.momentum = b.p.momentum = 0.9f;
  a.p.weight_decay = b.p.weight_decay = 0.01f;
  init_rule(&a);
  init_rule(&b);
  for (int it = 0; it < 3; it++) {
    a.b->diff[0] = b.b->diff[0] = 0.5f + (float)it;
    a.b->diff[1] = b.b->diff[1] = -1.5f;
    ck_assert_int_eq(update_apply(&a.u, &a.prm, 1, 0.1f, it, 0), 0);
    ck_assert_int_eq(update_apply(&b.u, &b.prm, 1, 0.1f, it, 1), 1);
    ck_assert(b.b->diff[0] == 0.0f && b.b->diff[1] == 0.0f);
    ck_assert(!memcmp(a.b->data, b.b->data, 2 * sizeof(float)));
    ck_assert(!memcmp(a.u.history[0]->data, b.u.history[0]->data, 2 * sizeof(float)));
  }
  update_restore_diffs(&b.u, &b.prm, 1);
  ck_assert(!memcmp(a.b->diff, b.b->diff, 2 * sizeof(float)));
  teardown_fixture(&a);
  teardown_fixture(&b);

  fixture c;
  setup_fixture(&c, "Adam");
  init_rule(&c);
  c.b->diff[0] = 0.5f;
  c.b->diff[1] = 1;
  ck_assert_int_eq(update_apply(&c.u, &c.prm, 1, 0.1f, 0, 1), 0);
  ck_assert(c.b->diff[0] != 0.0f);
  teardown_fixture(&c);
}
END_TEST

START_TEST(nesterov_looks_ahead) {
  fixture f;
  setup_fixture(&f, "Nesterov");
  f.p.momentum = 0.9f;
  init_rule(&f);
  step(&f, 0.5f, 1, 0.1f, 0);
  ck_assert_near(f.b->data[0], 1 - 1.9 * 0.05);
  /* h = 0.05 + 0.9 * 0.05 = 0.095; step = 1.9 * 0.095 - 0.9 * 0.05 */
  step(&f, 0.5f, 1, 0.1f, 1);
  ck_assert_near(f.b->data[0], 1 - 0.095 - (1.9 * 0.095 - 0.045));
  teardown_fixture(&f);
}
END_TEST

START_TEST(adagrad_divides_by_root_of_sum) {
  fixture f;
  setup_fixture(&f, "AdaGrad");
  init_rule(&f);
  step(&f, 0.5f, 2, 0.1f, 0);
  ck_assert_near(f.b->data[0], 0.9);
  ck_assert_near(f.b->data[1], -2.1);
  /* history 0.25 + 0.25 = 0.5: step = 0.1 * 0.5 / sqrt(0.5) */
  step(&f, 0.5f, 2, 0.1f, 1);
  ck_assert_near(f.u.history[0]->data[0], 0.5);
  ck_assert_near(f.b->data[0], 0.9 - 0.1 * 0.5 / sqrt(0.5));
  teardown_fixture(&f);
}
END_TEST

START_TEST(rmsprop_uses_decayed_mean) {
  fixture f;
  setup_fixture(&f, "RMSProp");
  f.p.rms_decay = 0.9f;
  init_rule(&f);
  step(&f, 0.5f, 1, 0.1f, 0);
  ck_assert_near(f.u.history[0]->data[0], 0.025);
  ck_assert_near(f.b->data[0], 1 - 0.1 * 0.5 / (sqrt(0.025) + 1e-8));
  teardown_fixture(&f);
}
END_TEST

START_TEST(adadelta_keeps_two_histories) {
  fixture f;
  setup_fixture(&f, "AdaDelta");
  f.p.momentum = 0.95f;
  f.p.delta = 1e-6f;
  init_rule(&f);
  ck_assert_int_eq(f.u.nhistory, 2);
  step(&f, 0.5f, 1, 1.0f, 0);
  const double hg = 0.05 * 0.25;
  const double dx = 0.5 * sqrt(1e-6 / (1e-6 + hg));
  ck_assert_near(f.u.history[0]->data[0], hg);
  ck_assert_near(f.u.history[1]->data[0], 0.05 * dx * dx);
  ck_assert_near(f.b->data[0], 1 - dx);
  teardown_fixture(&f);
}
END_TEST

START_TEST(adam_first_step_is_lr_times_sign) {
  fixture f;
  setup_fixture(&f, "Adam");
  f.p.momentum = 0.9f;
  init_rule(&f);
  step(&f, 0.5f, -3, 0.01f, 0);
  ck_assert_int_eq(f.u.nhistory, 2);
  ck_assert_near(f.u.history[0]->data[0], 0.05);
  ck_assert_near(f.u.history[1]->data[1], 0.001 * 9);
  ck_assert_near(f.b->data[0], 0.99);
  ck_assert_near(f.b->data[1], -1.99);
  /* Second step, same gradient: m = 0.095, v = 0.0004998, t = 2. */
  step(&f, 0.5f, -3, 0.01f, 1);
  const double m = 0.095, v = 0.999 * 0.00025 + 0.001 * 0.25;
  const double corr = sqrt(1 - 0.999 * 0.999) / (1 - 0.81);
  ck_assert_near(f.b->data[0], 0.99 - 0.01 * corr * m / (sqrt(v) + 1e-8));
  teardown_fixture(&f);
}
END_TEST

START_TEST(lr_mult_scales_the_rate) {
  fixture f;
  setup_fixture(&f, "SGD");
  f.prm.lr_mult = 2;
  init_rule(&f);
  step(&f, 0.5f, 1, 0.1f, 0);
  ck_assert_near(f.b->data[0], 0.9);
  teardown_fixture(&f);
}
END_TEST

START_TEST(l2_and_l1_decay) {
  fixture f;
  setup_fixture(&f, "SGD");
  f.p.weight_decay = 0.1f;
  f.prm.decay_mult = 2;
  init_rule(&f);
  f.b->diff[0] = 0.5f;
  f.b->diff[1] = 1;
  update_regularize(&f.u, &f.prm);
  ck_assert_near(f.b->diff[0], 0.5 + 0.2 * 1);
  ck_assert_near(f.b->diff[1], 1 + 0.2 * -2);
  update_rule_free(&f.u);
  f.p.regularization_type = (char *)"L1";
  init_rule(&f);
  f.b->diff[0] = 0.5f;
  f.b->diff[1] = 1;
  update_regularize(&f.u, &f.prm);
  ck_assert_near(f.b->diff[0], 0.7);
  ck_assert_near(f.b->diff[1], 0.8);
  /* decay_mult 0: untouched. */
  f.prm.decay_mult = 0;
  update_regularize(&f.u, &f.prm);
  ck_assert_near(f.b->diff[0], 0.7);
  teardown_fixture(&f);
}
END_TEST

START_TEST(clip_scales_global_norm) {
  fixture f;
  setup_fixture(&f, "SGD");
  f.p.clip_gradients = 1;
  init_rule(&f);
  f.b->diff[0] = 3;
  f.b->diff[1] = 4;
  update_clip_gradients(&f.u, &f.prm, 1);
  ck_assert_near(f.b->diff[0], 0.6);
  ck_assert_near(f.b->diff[1], 0.8);
  /* Below the threshold: untouched. */
  update_clip_gradients(&f.u, &f.prm, 1);
  ck_assert_near(f.b->diff[0], 0.6);
  teardown_fixture(&f);
}
END_TEST

START_TEST(iter_size_normalises) {
  fixture f;
  setup_fixture(&f, "SGD");
  f.p.iter_size = 4;
  init_rule(&f);
  f.b->diff[0] = 2;
  update_normalize(&f.u, &f.prm);
  ck_assert_near(f.b->diff[0], 0.5);
  teardown_fixture(&f);
}
END_TEST

START_TEST(bad_settings_are_errors) {
  fixture f;
  crema_error err = {0};
  setup_fixture(&f, "Adamax");
  ck_assert_int_eq(update_rule_init(&f.u, &f.p, &f.prm, 1, &err), CREMA_ERR_INVALID);
  ck_assert_ptr_nonnull(strstr(err.message, "Adamax"));
  f.p.type = (char *)"SGD";
  f.p.regularization_type = (char *)"L3";
  ck_assert_int_eq(update_rule_init(&f.u, &f.p, &f.prm, 1, &err), CREMA_ERR_INVALID);
  ck_assert_ptr_nonnull(strstr(err.message, "L3"));
  f.p.regularization_type = (char *)"L2";
  f.p.type = (char *)"AdaGrad";
  f.p.momentum = 0.9f;
  ck_assert_int_eq(update_rule_init(&f.u, &f.p, &f.prm, 1, &err), CREMA_ERR_INVALID);
  f.p.type = (char *)"RMSProp";
  f.p.rms_decay = 1.5f;
  ck_assert_int_eq(update_rule_init(&f.u, &f.p, &f.prm, 1, &err), CREMA_ERR_INVALID);
  teardown_fixture(&f);
}
END_TEST

static Suite *update_suite(void) {
  Suite *s = suite_create("update");
  TCase *tc = tcase_create("rules");
  tcase_add_test(tc, sgd_accumulates_momentum);
  tcase_add_test(tc, sgd_can_clear_diffs);
  tcase_add_test(tc, nesterov_looks_ahead);
  tcase_add_test(tc, adagrad_divides_by_root_of_sum);
  tcase_add_test(tc, rmsprop_uses_decayed_mean);
  tcase_add_test(tc, adadelta_keeps_two_histories);
  tcase_add_test(tc, adam_first_step_is_lr_times_sign);
  tcase_add_test(tc, lr_mult_scales_the_rate);
  tcase_add_test(tc, l2_and_l1_decay);
  tcase_add_test(tc, clip_scales_global_norm);
  tcase_add_test(tc, iter_size_normalises);
  tcase_add_test(tc, bad_settings_are_errors);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(update_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
