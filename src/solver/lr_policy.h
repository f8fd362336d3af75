/* Learning rate policies, as Caffe's SGDSolver::GetLearningRate:
 *   fixed      base_lr
 *   step       base_lr * gamma ^ floor(iter / stepsize)
 *   exp        base_lr * gamma ^ iter
 *   inv        base_lr * (1 + gamma * iter) ^ (-power)
 *   multistep  base_lr * gamma ^ (number of stepvalues reached)
 *   poly       base_lr * (1 - iter / max_iter) ^ power
 *   sigmoid    base_lr / (1 + exp(-gamma * (iter - stepsize)))
 */
#ifndef CREMA_SOLVER_LR_POLICY_H
#define CREMA_SOLVER_LR_POLICY_H

#include "caffe.pb-c.h"
#include "core/error.h"
#include "crema.h"

/* Checks that the policy is known and its parameters are usable, so that
 * training never fails half way through. */
crema_status lr_policy_check(const Caffe__SolverParameter *p, crema_error *err);

/* The rate at iteration iter.  *current_step is the solver's step counter:
 * "step" sets it, "multistep" advances it by at most one per call (and logs
 * it under LEVEL, as Caffe), the others leave it alone. */
crema_status lr_policy_rate(const Caffe__SolverParameter *p, int iter, int *current_step,
                            crema_log_level level, float *rate, crema_error *err);

#endif
