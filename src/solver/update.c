#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/parallel.h"
#include "math/blas.h"
#include "solver/update.h"

/* Element-wise steps mirror Caffe's sequence of BLAS-like calls so the float
 * rounding matches: each intermediate is stored as float. */

static const char *const type_names[] = {"SGD", "Nesterov", "AdaGrad", "RMSProp", "AdaDelta",
                                         "Adam"};

crema_status solver_type_parse(const char *name, solver_type *out, crema_error *err) {
  for (int i = 0; i < (int)(sizeof type_names / sizeof type_names[0]); i++)
    if (name && !strcmp(name, type_names[i])) {
      *out = (solver_type)i;
      return CREMA_OK;
    }
  return crema_fail(err, CREMA_ERR_INVALID,
                    "solver: unknown solver type '%s' (expected SGD, Nesterov, AdaGrad, RMSProp, "
                    "AdaDelta or Adam)", name ? name : "");
}

const char *solver_type_name(solver_type t) { return type_names[t]; }

static crema_status check_hyper_params(solver_type t, const Caffe__SolverParameter *p,
                                       crema_error *err) {
  const char *reg = p->regularization_type ? p->regularization_type : "L2";
  if (strcmp(reg, "L1") && strcmp(reg, "L2"))
    return crema_fail(err, CREMA_ERR_INVALID,
                      "solver: unknown regularization_type '%s' (expected L1 or L2)", reg);
  if (p->iter_size < 1)
    return crema_fail(err, CREMA_ERR_INVALID, "solver: iter_size must be >= 1, got %d",
                      p->iter_size);
  if (t == SOLVER_ADAGRAD && p->momentum != 0)
    return crema_fail(err, CREMA_ERR_INVALID,
                      "solver: momentum cannot be used with AdaGrad (got momentum %g)",
                      (double)p->momentum);
  if (t == SOLVER_RMSPROP && p->momentum != 0)
    return crema_fail(err, CREMA_ERR_INVALID,
                      "solver: momentum cannot be used with RMSProp (got momentum %g)",
                      (double)p->momentum);
  if (t == SOLVER_RMSPROP && !(p->rms_decay >= 0 && p->rms_decay < 1))
    return crema_fail(err, CREMA_ERR_INVALID,
                      "solver: rms_decay should lie between 0 and 1, got %g",
                      (double)p->rms_decay);
  return CREMA_OK;
}

static crema_status new_history_blob(const blob *like, blob **out, crema_error *err) {
  blob *h = blob_create(NULL, err);
  if (!h)
    return CREMA_ERR_NOMEM;
  h->wants_diff = 0;
  crema_status st = blob_reshape(h, like->num_axes, like->shape, err);
  if (st != CREMA_OK) {
    blob_free(h);
    return st;
  }
  if (h->count)
    memset(h->data, 0, h->count * sizeof(float));
  *out = h;
  return CREMA_OK;
}

crema_status update_rule_init(update_rule *u, const Caffe__SolverParameter *p,
                              const learnable *params, int nparams, crema_error *err) {
  memset(u, 0, sizeof *u);
  solver_type t;
  CREMA_TRY(solver_type_parse(p->type, &t, err));
  CREMA_TRY(check_hyper_params(t, p, err));
  u->type = t;
  u->param = p;
  u->l1 = p->regularization_type && !strcmp(p->regularization_type, "L1");
  u->nparams = nparams;
  int sets = (t == SOLVER_ADADELTA || t == SOLVER_ADAM) ? 2 : 1;
  u->history = crema_calloc((size_t)sets * (size_t)(nparams ? nparams : 1), sizeof(blob *), err);
  if (!u->history)
    return CREMA_ERR_NOMEM;
  size_t max_count = 1;
  for (int s = 0; s < sets; s++)
    for (int i = 0; i < nparams; i++) {
      crema_status st = new_history_blob(params[i].b, &u->history[u->nhistory], err);
      if (st != CREMA_OK) {
        update_rule_free(u);
        return st;
      }
      u->nhistory++;
      if (params[i].b->count > max_count)
        max_count = params[i].b->count;
    }
  u->update = crema_calloc(max_count, sizeof(float), err);
  u->temp = u->update ? crema_calloc(max_count, sizeof(float), err) : NULL;
  if (!u->temp) {
    update_rule_free(u);
    return CREMA_ERR_NOMEM;
  }
  return CREMA_OK;
}

void update_rule_free(update_rule *u) {
  for (int i = 0; i < u->nhistory; i++)
    blob_free(u->history[i]);
  free(u->history);
  free(u->update);
  free(u->temp);
  memset(u, 0, sizeof *u);
}

void update_clip_gradients(const update_rule *u, const learnable *params, int nparams) {
  const float clip = u->param->clip_gradients;
  if (clip < 0)
    return;
  float sumsq = 0;
  for (int i = 0; i < nparams; i++) {
    const blob *b = params[i].b;
    sumsq += math_dot((int)b->count, b->diff, b->diff);
  }
  const float norm = sqrtf(sumsq);
  if (!(norm > clip))
    return;
  const float scale = clip / norm;
  LOG_INFO_AT(u->log_level, "Gradient clipping: scaling down gradients (L2 norm %g > %g) by scale factor %g",
              (double)norm, (double)clip, (double)scale);
  for (int i = 0; i < nparams; i++)
    math_scal((int)params[i].b->count, scale, params[i].b->diff);
}

void update_normalize(const update_rule *u, const learnable *prm) {
  if (u->param->iter_size == 1)
    return;
  math_scal((int)prm->b->count, 1.0f / (float)u->param->iter_size, prm->b->diff);
}

void update_regularize(const update_rule *u, const learnable *prm) {
  const float local_decay = u->param->weight_decay * prm->decay_mult;
  if (local_decay == 0)
    return;
  const blob *b = prm->b;
  const int n = (int)b->count;
  if (!u->l1) {
    math_axpy(n, local_decay, b->data, b->diff);
    return;
  }
  for (int j = 0; j < n; j++)
    u->temp[j] = (float)((0 < b->data[j]) - (b->data[j] < 0));
  math_axpy(n, local_decay, u->temp, b->diff);
}

/* history = local_rate * g + momentum * history; step = history. */
static void compute_sgd(update_rule *u, int i, float *g, int n, float local_rate) {
  float *h = u->history[i]->data;
  math_axpby(n, local_rate, g, u->param->momentum, h);
  memcpy(g, h, (size_t)n * sizeof(float));
}

/* Steps back by the old momentum, then over-steps with the new one. */
static void compute_nesterov(update_rule *u, int i, float *g, int n, float local_rate) {
  const float momentum = u->param->momentum;
  float *h = u->history[i]->data;
  memcpy(u->update, h, (size_t)n * sizeof(float));
  math_axpby(n, local_rate, g, momentum, h);
  math_axpby(n, 1.0f + momentum, h, -momentum, u->update);
  memcpy(g, u->update, (size_t)n * sizeof(float));
}

static void compute_adagrad(update_rule *u, int i, float *g, int n, float local_rate) {
  const float delta = u->param->delta;
  float *h = u->history[i]->data;
  float *upd = u->update;
  for (int j = 0; j < n; j++) {
    upd[j] = g[j] * g[j];
    h[j] = upd[j] + h[j];
  }
  for (int j = 0; j < n; j++) {
    upd[j] = sqrtf(h[j]);
    upd[j] = upd[j] + delta;
    upd[j] = g[j] / upd[j];
  }
  math_axpby(n, local_rate, upd, 0.0f, g);
}

static void compute_rmsprop(update_rule *u, int i, float *g, int n, float local_rate) {
  const float delta = u->param->delta;
  const float decay = u->param->rms_decay;
  float *h = u->history[i]->data;
  float *upd = u->update;
  for (int j = 0; j < n; j++)
    upd[j] = g[j] * g[j];
  math_axpby(n, 1.0f - decay, upd, decay, h);
  for (int j = 0; j < n; j++) {
    upd[j] = sqrtf(h[j]);
    upd[j] = upd[j] + delta;
    upd[j] = g[j] / upd[j];
  }
  math_axpby(n, local_rate, upd, 0.0f, g);
}

/* history[i]: running mean of squared gradients; history[nparams + i]:
 * running mean of squared updates. */
static void compute_adadelta(update_rule *u, int i, float *g, int n, float local_rate) {
  const float delta = u->param->delta;
  const float momentum = u->param->momentum;
  float *hg = u->history[i]->data;
  float *hu = u->history[u->nparams + i]->data;
  float *upd = u->update, *tmp = u->temp;
  for (int j = 0; j < n; j++)
    upd[j] = g[j] * g[j];
  math_axpby(n, 1.0f - momentum, upd, momentum, hg);
  for (int j = 0; j < n; j++) {
    tmp[j] = delta;
    upd[j] = tmp[j] + hu[j];
    tmp[j] = tmp[j] + hg[j];
    upd[j] = upd[j] / tmp[j];
    upd[j] = sqrtf(upd[j]);
    g[j] = g[j] * upd[j];
    upd[j] = g[j] * g[j];
  }
  math_axpby(n, 1.0f - momentum, upd, momentum, hu);
  for (int j = 0; j < n; j++)
    g[j] = local_rate * g[j];
}

/* history[i]: first moment m; history[nparams + i]: second moment v. */
static void compute_adam(update_rule *u, int i, float *g, int n, float local_rate, int iter) {
  const float beta1 = u->param->momentum;
  const float beta2 = u->param->momentum2;
  const float eps_hat = u->param->delta;
  float *m = u->history[i]->data;
  float *v = u->history[u->nparams + i]->data;
  float *t = u->temp;
  const double step = (double)iter + 1;
  const float correction =
      (float)(sqrt(1.0 - pow((double)beta2, step)) / (1.0 - pow((double)beta1, step)));
  math_axpby(n, 1.0f - beta1, g, beta1, m);
  for (int j = 0; j < n; j++)
    t[j] = g[j] * g[j];
  math_axpby(n, 1.0f - beta2, t, beta2, v);
  for (int j = 0; j < n; j++) {
    t[j] = sqrtf(v[j]);
    t[j] = t[j] + eps_hat;
    t[j] = m[j] / t[j];
  }
  const float scale = local_rate * correction;
  for (int j = 0; j < n; j++)
    g[j] = scale * t[j];
}

void update_compute_value(update_rule *u, int i, const learnable *prm, float rate, int iter) {
  const float local_rate = rate * prm->lr_mult;
  float *g = prm->b->diff;
  const int n = (int)prm->b->count;
  if (n == 0)
    return;
  switch (u->type) {
    case SOLVER_SGD: compute_sgd(u, i, g, n, local_rate); break;
    case SOLVER_NESTEROV: compute_nesterov(u, i, g, n, local_rate); break;
    case SOLVER_ADAGRAD: compute_adagrad(u, i, g, n, local_rate); break;
    case SOLVER_RMSPROP: compute_rmsprop(u, i, g, n, local_rate); break;
    case SOLVER_ADADELTA: compute_adadelta(u, i, g, n, local_rate); break;
    case SOLVER_ADAM: compute_adam(u, i, g, n, local_rate, iter); break;
  }
}

/* Plain SGD with L2 decay in one pass per parameter: Caffe's sequence
 * (diff += decay * data; history = rate * diff + momentum * history;
 * diff = history; data -= diff) value by value, so each array is read and
 * written once instead of in five sweeps; split over the team for large
 * blobs.  Where OpenBLAS fuses a multiply-add, results may differ from
 * the five-sweep path in the last bit.  The update is memory-bound: a
 * training step of the lesion net moved about 0.8 GB through these
 * sweeps. */
typedef struct sgd_pass {
  float *data, *diff, *history;
  float decay, rate, momentum;
  int clear; /* leave 0 in diff rather than the step */
} sgd_pass;

/* decays and clear are constants at each call, so the compiler makes four
 * branch-free loops it can vectorize (the loop with the tests inside was
 * left scalar, and ran at about half the memory's speed). */
static inline __attribute__((always_inline)) void sgd_loop(const sgd_pass *q, long lo, long hi,
                                                           int decays, int clear) {
  float *restrict data = q->data, *restrict diff = q->diff, *restrict h = q->history;
  const float decay = q->decay, rate = q->rate, momentum = q->momentum;
  for (long j = lo; j < hi; j++) {
    float g = decays ? diff[j] + decay * data[j] : diff[j];
    float v = rate * g + momentum * h[j];
    h[j] = v;
    diff[j] = clear ? 0.0f : v;
    data[j] -= v;
  }
}

static void sgd_range(long lo, long hi, void *ctx) {
  const sgd_pass *q = ctx;
  /* Caffe skips the decay when it is zero (0 * inf would be NaN). */
  const int decays = q->decay != 0.0f;
  if (decays && q->clear)
    sgd_loop(q, lo, hi, 1, 1);
  else if (decays)
    sgd_loop(q, lo, hi, 1, 0);
  else if (q->clear)
    sgd_loop(q, lo, hi, 0, 1);
  else
    sgd_loop(q, lo, hi, 0, 0);
}

static int sgd_in_one_pass(const update_rule *u) {
  return u->type == SOLVER_SGD && !u->l1 && u->param->iter_size == 1;
}

static void sgd_apply_one_pass(update_rule *u, const learnable *params, int nparams,
                               float rate, int clear) {
  for (int i = 0; i < nparams; i++) {
    const learnable *prm = &params[i];
    sgd_pass q = {prm->b->data, prm->b->diff, u->history[i]->data,
                  u->param->weight_decay * prm->decay_mult, rate * prm->lr_mult,
                  u->param->momentum, clear};
    par_for((long)prm->b->count, PAR_ELEMENTWISE_MIN, sgd_range, &q);
  }
}

int update_apply(update_rule *u, const learnable *params, int nparams, float rate, int iter,
                 int clear_diffs) {
  update_clip_gradients(u, params, nparams);
  if (sgd_in_one_pass(u)) {
    sgd_apply_one_pass(u, params, nparams, rate, clear_diffs);
    return clear_diffs;
  }
  for (int i = 0; i < nparams; i++) {
    update_normalize(u, &params[i]);
    update_regularize(u, &params[i]);
    update_compute_value(u, i, &params[i], rate, iter);
  }
  /* Net::Update: data -= diff for every learnable parameter. */
  for (int i = 0; i < nparams; i++)
    math_axpy((int)params[i].b->count, -1.0f, params[i].b->diff, params[i].b->data);
  return 0;
}

void update_restore_diffs(const update_rule *u, const learnable *params, int nparams) {
  for (int i = 0; i < nparams; i++)
    memcpy(params[i].b->diff, u->history[i]->data, params[i].b->count * sizeof(float));
}
