/* Learning rate policies against values worked out by hand. */
#include "config.h"

#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "solver/lr_policy.h"

static Caffe__SolverParameter make_param(const char *policy, float base_lr) {
  Caffe__SolverParameter p;
  caffe__solver_parameter__init(&p);
  p.lr_policy = (char *)policy;
  p.has_base_lr = 1;
  p.base_lr = base_lr;
  return p;
}

static float rate_at(const Caffe__SolverParameter *p, int iter, int *step) {
  crema_error err = {0};
  float rate = -1;
  ck_assert_msg(lr_policy_rate(p, iter, step, CREMA_LOG_INFO, &rate, &err) == CREMA_OK, "%s", err.message);
  return rate;
}

#define ck_assert_rate(got, want) \
  ck_assert_msg(fabs((double)(got) - (want)) <= 1e-6 * fabs(want) + 1e-12, \
                "rate %.9g, expected %.9g", (double)(got), (double)(want))

START_TEST(fixed_is_base_lr) {
  Caffe__SolverParameter p = make_param("fixed", 0.05f);
  int step = 0;
  ck_assert_rate(rate_at(&p, 0, &step), 0.05);
  ck_assert_rate(rate_at(&p, 1000, &step), 0.05);
  ck_assert_int_eq(step, 0);
}
END_TEST

START_TEST(step_halves_every_stepsize) {
  Caffe__SolverParameter p = make_param("step", 0.05f);
  p.gamma = 0.5f;
  p.stepsize = 4;
  int step = 0;
  ck_assert_rate(rate_at(&p, 0, &step), 0.05);
  ck_assert_rate(rate_at(&p, 3, &step), 0.05);
  ck_assert_rate(rate_at(&p, 4, &step), 0.025);
  ck_assert_int_eq(step, 1);
  ck_assert_rate(rate_at(&p, 11, &step), 0.0125);
  ck_assert_int_eq(step, 2);
  /* The step is recomputed from iter, whatever current_step was. */
  step = 7;
  ck_assert_rate(rate_at(&p, 5, &step), 0.025);
  ck_assert_int_eq(step, 1);
}
END_TEST

START_TEST(exp_is_gamma_to_the_iter) {
  Caffe__SolverParameter p = make_param("exp", 0.01f);
  p.gamma = 0.95f;
  int step = 0;
  ck_assert_rate(rate_at(&p, 0, &step), 0.01);
  ck_assert_rate(rate_at(&p, 2, &step), 0.01 * 0.9025);
  ck_assert_rate(rate_at(&p, 10, &step), 0.01 * pow(0.95, 10));
}
END_TEST

START_TEST(inv_decays_as_a_power) {
  Caffe__SolverParameter p = make_param("inv", 0.05f);
  p.gamma = 0.1f;
  p.power = 0.75f;
  int step = 0;
  ck_assert_rate(rate_at(&p, 0, &step), 0.05);
  /* (1 + 0.1 * 10) ^ -0.75 = 2 ^ -0.75 */
  ck_assert_rate(rate_at(&p, 10, &step), 0.05 * 0.5946035575013605);
  /* (1 + 0.1 * 30) ^ -0.75 = 4 ^ -0.75 = 2 ^ -1.5 */
  ck_assert_rate(rate_at(&p, 30, &step), 0.05 * 0.35355339059327373);
}
END_TEST

START_TEST(multistep_advances_at_each_stepvalue) {
  Caffe__SolverParameter p = make_param("multistep", 1.0f);
  p.gamma = 0.5f;
  int32_t values[] = {3, 8};
  p.stepvalue = values;
  p.n_stepvalue = 2;
  int step = 0;
  const double want[] = {1, 1, 1, 0.5, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.25};
  const int want_step[] = {0, 0, 0, 1, 1, 1, 1, 1, 2, 2, 2, 2};
  for (int it = 0; it < 12; it++) {
    ck_assert_rate(rate_at(&p, it, &step), want[it]);
    ck_assert_int_eq(step, want_step[it]);
  }
}
END_TEST

START_TEST(multistep_moves_one_step_per_call) {
  /* As Caffe: a solver resumed late catches up one stepvalue per iteration. */
  Caffe__SolverParameter p = make_param("multistep", 1.0f);
  p.gamma = 0.1f;
  int32_t values[] = {2, 4};
  p.stepvalue = values;
  p.n_stepvalue = 2;
  int step = 0;
  ck_assert_rate(rate_at(&p, 10, &step), 0.1);
  ck_assert_rate(rate_at(&p, 11, &step), 0.01);
  ck_assert_rate(rate_at(&p, 12, &step), 0.01);
  ck_assert_int_eq(step, 2);
}
END_TEST

START_TEST(poly_reaches_zero_at_max_iter) {
  Caffe__SolverParameter p = make_param("poly", 0.01f);
  p.power = 2;
  p.max_iter = 12;
  int step = 0;
  ck_assert_rate(rate_at(&p, 0, &step), 0.01);
  ck_assert_rate(rate_at(&p, 6, &step), 0.0025);
  ck_assert_rate(rate_at(&p, 9, &step), 0.000625);
  ck_assert_rate(rate_at(&p, 12, &step), 0.0);
}
END_TEST

START_TEST(sigmoid_is_half_at_stepsize) {
  Caffe__SolverParameter p = make_param("sigmoid", 0.1f);
  p.gamma = 0.5f;
  p.stepsize = 6;
  int step = 0;
  ck_assert_rate(rate_at(&p, 6, &step), 0.05);
  ck_assert_rate(rate_at(&p, 0, &step), 0.1 / (1 + exp(3.0)));
  ck_assert_rate(rate_at(&p, 12, &step), 0.1 / (1 + exp(-3.0)));
}
END_TEST

static crema_status try_policy(Caffe__SolverParameter *p, crema_error *err) {
  int step = 0;
  float rate;
  return lr_policy_rate(p, 0, &step, CREMA_LOG_INFO, &rate, err);
}

START_TEST(bad_policies_are_errors) {
  crema_error err = {0};
  Caffe__SolverParameter p = make_param("cosine", 0.1f);
  ck_assert_int_eq(try_policy(&p, &err), CREMA_ERR_INVALID);
  ck_assert_ptr_nonnull(strstr(err.message, "cosine"));
  p = make_param(NULL, 0.1f);
  ck_assert_int_eq(try_policy(&p, &err), CREMA_ERR_INVALID);
  p = make_param("step", 0.1f);
  p.gamma = 0.1f;
  ck_assert_int_eq(try_policy(&p, &err), CREMA_ERR_INVALID);
  ck_assert_ptr_nonnull(strstr(err.message, "stepsize"));
  p = make_param("exp", 0.1f);
  p.gamma = -1;
  ck_assert_int_eq(try_policy(&p, &err), CREMA_ERR_INVALID);
  ck_assert_ptr_nonnull(strstr(err.message, "gamma"));
}
END_TEST

/* Caffe checks nothing for sigmoid: a negative gamma makes it decrease and
 * stepsize 0 centres it at iteration 0.  Multistep takes one step per
 * iteration even when stepvalues repeat. */
START_TEST(sigmoid_and_multistep_edge_cases) {
  Caffe__SolverParameter p = make_param("sigmoid", 0.1f);
  p.gamma = -0.5f;
  int step = 0;
  ck_assert_rate(rate_at(&p, 0, &step), 0.05);
  ck_assert_rate(rate_at(&p, 4, &step), 0.1 / (1 + exp(2.0)));
  p = make_param("multistep", 1.0f);
  p.gamma = 0.5f;
  int values[3] = {2, 2, 3};
  p.stepvalue = values;
  p.n_stepvalue = 3;
  step = 0;
  const double want[6] = {1, 1, 0.5, 0.25, 0.125, 0.125};
  for (int it = 0; it < 6; it++) {
    float rate = 0;
    crema_error err = {0};
    ck_assert_int_eq(lr_policy_rate(&p, it, &step, CREMA_LOG_INFO, &rate, &err), CREMA_OK);
    ck_assert_rate(rate, want[it]);
  }
  ck_assert_int_eq(step, 3);
}
END_TEST

static Suite *lr_policy_suite(void) {
  Suite *s = suite_create("lr_policy");
  TCase *tc = tcase_create("policies");
  tcase_add_test(tc, fixed_is_base_lr);
  tcase_add_test(tc, step_halves_every_stepsize);
  tcase_add_test(tc, exp_is_gamma_to_the_iter);
  tcase_add_test(tc, inv_decays_as_a_power);
  tcase_add_test(tc, multistep_advances_at_each_stepvalue);
  tcase_add_test(tc, multistep_moves_one_step_per_call);
  tcase_add_test(tc, poly_reaches_zero_at_max_iter);
  tcase_add_test(tc, sigmoid_is_half_at_stepsize);
  tcase_add_test(tc, sigmoid_and_multistep_edge_cases);
  tcase_add_test(tc, bad_policies_are_errors);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(lr_policy_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
