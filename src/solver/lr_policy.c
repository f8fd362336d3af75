#include "config.h"

#include <math.h>
#include <string.h>

#include "core/log.h"
#include "solver/lr_policy.h"

/* Caffe computes in float (its Dtype) where its operands are float and lets
 * pow/exp promote to double; the results are rounded back to float. */

static const char *policy_name(const Caffe__SolverParameter *p) {
  return p->lr_policy ? p->lr_policy : "";
}

/* The checks Caffe's GetLearningRate makes, before training.  Caffe checks
 * nothing for multistep, poly and sigmoid: a negative gamma is how a
 * sigmoid schedule decreases, and stepsize 0 centres it at iteration 0. */
static const struct policy_needs {
  const char *name;
  int gamma, stepsize;
} policies[] = {
    {"fixed", 0, 0},     {"step", 1, 1}, {"exp", 1, 0},     {"inv", 1, 0},
    {"multistep", 0, 0}, {"poly", 0, 0}, {"sigmoid", 0, 0},
};

crema_status lr_policy_check(const Caffe__SolverParameter *p, crema_error *err) {
  const char *name = policy_name(p);
  const struct policy_needs *needs = NULL;
  for (size_t i = 0; i < sizeof policies / sizeof policies[0]; i++)
    if (!strcmp(policies[i].name, name))
      needs = &policies[i];
  if (!needs)
    return crema_fail(err, CREMA_ERR_INVALID,
                      "solver: %s learning rate policy '%s' (expected fixed, step, exp, inv, "
                      "multistep, poly or sigmoid)", p->lr_policy ? "unknown" : "missing", name);
  if (needs->stepsize && p->stepsize <= 0)
    return crema_fail(err, CREMA_ERR_INVALID,
                      "solver: lr_policy '%s' needs stepsize > 0, got %d", name, p->stepsize);
  if (needs->gamma && !(p->gamma >= 0))
    return crema_fail(err, CREMA_ERR_INVALID, "solver: lr_policy '%s' needs gamma >= 0, got %g",
                      name, (double)p->gamma);
  return CREMA_OK;
}

static float rate_step(const Caffe__SolverParameter *p, int iter, int *current_step) {
  *current_step = iter / p->stepsize;
  return (float)((double)p->base_lr * pow((double)p->gamma, (double)*current_step));
}

static float rate_multistep(const Caffe__SolverParameter *p, int iter, int *current_step,
                            crema_log_level level) {
  if (*current_step >= 0 && (size_t)*current_step < p->n_stepvalue &&
      iter >= p->stepvalue[*current_step]) {
    ++*current_step;
    LOG_INFO_AT(level, "MultiStep Status: Iteration %d, step = %d", iter, *current_step);
  }
  return (float)((double)p->base_lr * pow((double)p->gamma, (double)*current_step));
}

static float rate_inv(const Caffe__SolverParameter *p, int iter) {
  float base = 1.0f + p->gamma * (float)iter;
  return (float)((double)p->base_lr * pow((double)base, (double)-p->power));
}

static float rate_poly(const Caffe__SolverParameter *p, int iter) {
  float base = 1.0f - (float)iter / (float)p->max_iter;
  return (float)((double)p->base_lr * pow((double)base, (double)p->power));
}

static float rate_sigmoid(const Caffe__SolverParameter *p, int iter) {
  float x = -p->gamma * ((float)iter - (float)p->stepsize);
  return (float)((double)p->base_lr * (1.0 / (1.0 + exp((double)x))));
}

crema_status lr_policy_rate(const Caffe__SolverParameter *p, int iter, int *current_step,
                            crema_log_level level, float *rate, crema_error *err) {
  CREMA_TRY(lr_policy_check(p, err));
  const char *name = policy_name(p);
  if (!strcmp(name, "fixed"))
    *rate = p->base_lr;
  else if (!strcmp(name, "step"))
    *rate = rate_step(p, iter, current_step);
  else if (!strcmp(name, "exp"))
    *rate = (float)((double)p->base_lr * pow((double)p->gamma, (double)iter));
  else if (!strcmp(name, "inv"))
    *rate = rate_inv(p, iter);
  else if (!strcmp(name, "multistep"))
    *rate = rate_multistep(p, iter, current_step, level);
  else if (!strcmp(name, "poly"))
    *rate = rate_poly(p, iter);
  else
    *rate = rate_sigmoid(p, iter);
  return CREMA_OK;
}
