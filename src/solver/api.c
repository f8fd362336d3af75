/* The public solver API (src/crema.h) over solver/solver.h. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "crema.h"
#include "graph/api.h"
#include "solver/solver.h"

struct crema_solver {
  solver *s;
  crema_net *train;  /* handles on the solver's nets (not owning them) */
  crema_net **tests;
};

void crema_solver_config_init(crema_solver_config *cfg) { memset(cfg, 0, sizeof *cfg); }

/* pycaffe's SGDSolver(file), AdamSolver(file), ... build that solver
 * whatever type the file names. */
static crema_status set_type(Caffe__SolverParameter *p, const char *type, crema_error *err) {
  solver_type t;
  CREMA_TRY(solver_type_parse(type, &t, err));
  char *copy = crema_strdup(type, err);
  if (!copy)
    return CREMA_ERR_NOMEM;
  if (p->type != caffe__solver_parameter__type__default_value)
    free(p->type);
  p->type = copy;
  return CREMA_OK;
}

static crema_status wrap_nets(crema_solver *cs, crema_error *err) {
  CREMA_TRY(api_net_wrap(cs->s->train, 0, &cs->train, err));
  if (cs->s->ntests == 0)
    return CREMA_OK;
  cs->tests = crema_calloc((size_t)cs->s->ntests, sizeof *cs->tests, err);
  if (!cs->tests)
    return CREMA_ERR_NOMEM;
  for (int i = 0; i < cs->s->ntests; i++)
    CREMA_TRY(api_net_wrap(cs->s->tests[i], 0, &cs->tests[i], err));
  return CREMA_OK;
}

crema_status crema_solver_open(const char *solver_path, const crema_solver_config *cfg,
                               crema_solver **out, crema_error *err) {
  if (!solver_path || !out)
    return crema_fail(err, CREMA_ERR_INVALID, "crema_solver_open: solver path and output required");
  *out = NULL;
  crema_solver_config defaults;
  if (!cfg) {
    crema_solver_config_init(&defaults);
    cfg = &defaults;
  }
  crema_options env;
  const crema_options *run = cfg->options;
  if (!run) {
    crema_options_from_env(&env);
    run = &env;
  }
  Caffe__SolverParameter *param = NULL;
  CREMA_TRY(solver_param_load(solver_path, run->log_level, &param, err));
  crema_status st = cfg->type ? set_type(param, cfg->type, err) : CREMA_OK;
  if (st == CREMA_OK && cfg->has_seed && !param->has_random_seed) {
    param->has_random_seed = 1;
    param->random_seed = cfg->seed;
  }
  if (st != CREMA_OK) {
    protobuf_c_message_free_unpacked(&param->base, NULL);
    return st;
  }
  crema_solver *cs = crema_calloc(1, sizeof *cs, err);
  if (!cs) {
    protobuf_c_message_free_unpacked(&param->base, NULL);
    return CREMA_ERR_NOMEM;
  }
  st = solver_create_nets(param, cfg->observable, run, &cs->s, err);
  if (st == CREMA_OK)
    st = wrap_nets(cs, err);
  if (st != CREMA_OK) {
    crema_error_prefix(err, "%s: ", solver_path);
    crema_solver_close(cs);
    return st;
  }
  *out = cs;
  return CREMA_OK;
}

void crema_solver_close(crema_solver *cs) {
  if (!cs)
    return;
  crema_net_close(cs->train);
  for (int i = 0; cs->tests && i < cs->s->ntests; i++)
    crema_net_close(cs->tests[i]);
  free(cs->tests);
  solver_free(cs->s);
  free(cs);
}

const char *crema_solver_type(const crema_solver *cs) {
  return cs ? solver_type_name(cs->s->type) : NULL;
}

crema_net *crema_solver_net(crema_solver *cs) { return cs ? cs->train : NULL; }

int crema_solver_num_test_nets(const crema_solver *cs) { return cs ? cs->s->ntests : 0; }

crema_net *crema_solver_test_net(crema_solver *cs, int i) {
  return cs && i >= 0 && i < cs->s->ntests ? cs->tests[i] : NULL;
}

int crema_solver_iter(const crema_solver *cs) { return cs ? cs->s->iter : 0; }

crema_status crema_solver_step(crema_solver *cs, int iters, crema_error *err) {
  if (!cs || iters < 0)
    return crema_fail(err, CREMA_ERR_INVALID, "crema_solver_step: a solver and iters >= 0");
  crema_status st = solver_step(cs->s, iters, err);
  /* Hosts read the parameter diffs between steps, as Caffe leaves them. */
  solver_settle_diffs(cs->s);
  return st;
}

crema_status crema_solver_solve(crema_solver *cs, const char *resume_path, crema_error *err) {
  if (!cs)
    return crema_fail(err, CREMA_ERR_INVALID, "crema_solver_solve: no solver");
  if (resume_path)
    CREMA_TRY(crema_solver_restore(cs, resume_path, err));
  crema_status st = solver_solve(cs->s, err);
  solver_settle_diffs(cs->s);
  return st;
}

crema_status crema_solver_restore(crema_solver *cs, const char *state_path, crema_error *err) {
  if (!cs || !state_path)
    return crema_fail(err, CREMA_ERR_INVALID, "crema_solver_restore: solver and path required");
  return solver_restore(cs->s, state_path, err);
}

crema_status crema_solver_snapshot(crema_solver *cs, crema_error *err) {
  if (!cs)
    return crema_fail(err, CREMA_ERR_INVALID, "crema_solver_snapshot: no solver");
  return solver_snapshot(cs->s, err);
}
