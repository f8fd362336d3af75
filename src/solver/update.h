/* The update rules of Caffe's solvers (SGD, Nesterov, AdaGrad, RMSProp,
 * AdaDelta, Adam) and the gradient preprocessing they share: clipping,
 * iter_size normalisation and L1/L2 regularisation.
 *
 * The history blobs are laid out as Caffe's history_ vector, which is what a
 * .solverstate stores: one blob per learnable parameter, in the net's order;
 * AdaDelta and Adam append a second set (AdaDelta: squared gradients first,
 * then squared updates; Adam: first moments m, then second moments v). */
#ifndef CREMA_SOLVER_UPDATE_H
#define CREMA_SOLVER_UPDATE_H

#include "caffe.pb-c.h"
#include "core/blob.h"
#include "core/error.h"
#include "crema.h"

typedef enum solver_type {
  SOLVER_SGD,
  SOLVER_NESTEROV,
  SOLVER_ADAGRAD,
  SOLVER_RMSPROP,
  SOLVER_ADADELTA,
  SOLVER_ADAM
} solver_type;

/* A learnable parameter blob with its ParamSpec multipliers.  Shared
 * parameters appear once (their owner), as in Caffe's learnable_params(). */
typedef struct learnable {
  blob *b;
  float lr_mult;
  float decay_mult;
} learnable;

typedef struct update_rule {
  solver_type type;
  const Caffe__SolverParameter *param; /* borrowed */
  int l1;                              /* regularization_type "L1" (else L2) */
  int nparams;
  blob **history;                      /* nhistory = nparams or 2 * nparams */
  int nhistory;
  float *update;                       /* scratch, as Caffe's update_ / temp_ */
  float *temp;
  crema_log_level log_level; /* of the clipping notice; CREMA_LOG_INFO after init */
} update_rule;

/* "SGD", "Nesterov", ... (Caffe's registered solver names). */
crema_status solver_type_parse(const char *name, solver_type *out, crema_error *err);
const char *solver_type_name(solver_type t);

/* Checks the hyper-parameters and creates zeroed history blobs shaped like
 * the parameters. */
crema_status update_rule_init(update_rule *u, const Caffe__SolverParameter *p,
                              const learnable *params, int nparams, crema_error *err);
void update_rule_free(update_rule *u);

/* Scales all diffs down when their global L2 norm exceeds clip_gradients
 * (logged as Caffe does). */
void update_clip_gradients(const update_rule *u, const learnable *params, int nparams);
/* Divides diff by iter_size (gradients were accumulated over iter_size
 * forward/backward passes). */
void update_normalize(const update_rule *u, const learnable *prm);
/* diff += weight_decay * decay_mult * data (L2) or * sign(data) (L1). */
void update_regularize(const update_rule *u, const learnable *prm);
/* Turns param i's diff into the step to subtract from its data, updating
 * the history.  rate is the policy's rate (lr_mult is applied here); iter is
 * the solver's iteration (Adam's bias correction uses iter + 1). */
void update_compute_value(update_rule *u, int i, const learnable *prm, float rate, int iter);

/* All of Caffe's ApplyUpdate after the learning rate: clip, then for each
 * parameter normalise, regularise, compute the step, and data -= diff.
 * With clear_diffs the update may zero the diffs as it goes instead of
 * leaving the step in them (it is then in the history too: plain SGD),
 * which saves the next iteration's clearing pass; returns whether it did
 * (see update_restore_diffs). */
int update_apply(update_rule *u, const learnable *params, int nparams, float rate, int iter,
                 int clear_diffs);

/* Puts back the diffs Caffe leaves after an update that update_apply
 * cleared instead: each parameter's step, its history. */
void update_restore_diffs(const update_rule *u, const learnable *params, int nparams);

#endif
