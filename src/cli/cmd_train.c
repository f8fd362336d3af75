/* crema train: train or finetune a model, as `caffe train`.  Started by
 * mpirun (a crema configured --with-mpi), each process is one rank of
 * data-parallel training (src/dist/, solver.h). */
#include "config.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/common.h"
#include "cli/flags.h"
#include "core/clock.h"
#include "core/log.h"
#include "dist/dist.h"
#include "solver/signals.h"
#include "solver/solver.h"

typedef struct train_flags {
  const char *solver;
  const char *weights;
  const char *snapshot;
  const char *sigint_effect;
  const char *sighup_effect;
  const char *stage;
  const char *gpu;
  int level;
} train_flags;

/* The solver's progress hook: cli_progress_show on a terminal. */
static void show_progress(void *ctx, int iter, int max_iter) {
  cli_progress_show(ctx, iter, max_iter);
}

static void free_string_list(char **v, size_t n) {
  for (size_t i = 0; i < n; i++)
    free(v[i]);
  free(v);
}

/* Caffe's train sets train_state.level from -level (default 0) and adds the
 * -stage list, overriding what the net's own state says. */
static crema_status apply_train_state(Caffe__SolverParameter *p, const train_flags *f,
                                      crema_error *err) {
  if (!p->train_state) {
    p->train_state = crema_malloc(sizeof *p->train_state, err);
    if (!p->train_state)
      return CREMA_ERR_NOMEM;
    caffe__net_state__init(p->train_state);
  }
  Caffe__NetState *st = p->train_state;
  st->has_level = 1;
  st->level = f->level;
  for (const char *s = f->stage; s && *s;) {
    const char *comma = strchr(s, ',');
    size_t len = comma ? (size_t)(comma - s) : strlen(s);
    if (len) {
      char **grown = realloc(st->stage, (st->n_stage + 1) * sizeof *grown);
      if (!grown)
        return crema_fail(err, CREMA_ERR_NOMEM, "out of memory");
      st->stage = grown;
      char *name = crema_malloc(len + 1, err);
      if (!name)
        return CREMA_ERR_NOMEM;
      memcpy(name, s, len);
      name[len] = '\0';
      st->stage[st->n_stage++] = name;
    }
    s = comma ? comma + 1 : NULL;
  }
  return CREMA_OK;
}

/* As Caffe: a snapshot to resume drops the solver's weights; --weights
 * replaces them. */
static crema_status apply_weights_flag(Caffe__SolverParameter *p, const train_flags *f,
                                       crema_error *err) {
  if (!f->snapshot && !f->weights)
    return CREMA_OK;
  free_string_list(p->weights, p->n_weights);
  p->weights = NULL;
  p->n_weights = 0;
  if (f->snapshot)
    return CREMA_OK;
  p->weights = crema_calloc(1, sizeof *p->weights, err);
  if (!p->weights)
    return CREMA_ERR_NOMEM;
  p->weights[0] = crema_strdup(f->weights, err);
  if (!p->weights[0])
    return CREMA_ERR_NOMEM;
  p->n_weights = 1;
  return CREMA_OK;
}

static crema_status load_solver_param(const train_flags *f, Caffe__SolverParameter **out,
                                      crema_error *err) {
  CREMA_TRY(solver_param_load(f->solver, CREMA_LOG_INFO, out, err));
  crema_status st = apply_train_state(*out, f, err);
  if (st == CREMA_OK)
    st = apply_weights_flag(*out, f, err);
  if (st != CREMA_OK) {
    protobuf_c_message_free_unpacked(&(*out)->base, NULL);
    *out = NULL;
  }
  return st;
}

static crema_status run_training(solver *s, const train_flags *f, crema_error *err) {
  if (f->snapshot) {
    LOG_INFO("Resuming from %s", f->snapshot);
    CREMA_TRY(solver_restore(s, f->snapshot, err));
  }
  cli_progress progress = {"train", "iterations", now_seconds(), s->iter};
  if (isatty(STDERR_FILENO)) {
    s->progress = show_progress;
    s->progress_ctx = &progress;
  }
  LOG_INFO("Starting Optimization");
  crema_status st = solver_solve(s, err);
  s->progress = NULL;
  if (st == CREMA_OK)
    LOG_INFO("Optimization Done.");
  return st;
}

static crema_status train(const train_flags *f, dist *comm, crema_error *err) {
  if (!f->solver)
    return crema_fail(err, CREMA_ERR_INVALID, "need a solver definition to train (--solver)");
  if (f->snapshot && f->weights)
    return crema_fail(err, CREMA_ERR_INVALID,
                      "give a snapshot to resume training or weights to finetune but not both");
  solver_action on_int, on_hup;
  CREMA_TRY(solver_action_parse(f->sigint_effect, &on_int, err));
  CREMA_TRY(solver_action_parse(f->sighup_effect, &on_hup, err));
  if (f->gpu && *f->gpu)
    LOG_WARN("--gpu %s ignored: crema runs on the CPU", f->gpu);
  LOG_INFO("Use CPU.");
  Caffe__SolverParameter *param = NULL;
  CREMA_TRY(load_solver_param(f, &param, err));
  signal_guard guard;
  crema_status st = signal_guard_install(&guard, on_int, on_hup, err);
  if (st != CREMA_OK) {
    protobuf_c_message_free_unpacked(&param->base, NULL);
    return st;
  }
  solver *s = NULL;
  if (comm) {
    LOG_INFO("Data-parallel training on %d ranks (%s): each rank reads 1/%d of the TRAIN "
             "records, the effective batch is %d x batch_size", comm->size, comm->ops->name,
             comm->size, comm->size);
    st = solver_create_dist(param, comm, &s, err);
  } else {
    st = solver_create(param, &s, err);
  }
  if (st == CREMA_OK) {
    s->poll = signal_guard_poll;
    s->poll_ctx = &guard;
    st = run_training(s, f, err);
  }
  solver_free(s);
  signal_guard_remove(&guard);
  return st;
}

/* The group of ranks when mpirun started this process, else NULL. */
static crema_status open_comm(dist **out, crema_error *err) {
  *out = NULL;
  const int launched = dist_launched_size();
  if (launched <= 1)
    return CREMA_OK;
#ifdef HAVE_MPI
  return dist_mpi_open(out, err);
#else
  return crema_fail(err, CREMA_ERR_UNSUPPORTED,
                    "started by an MPI launcher with %d ranks, but this crema was built without "
                    "MPI: configure it with --with-mpi (Debian package libopenmpi-dev)",
                    launched);
#endif
}

/* Only rank 0 logs: the others' stderr goes to /dev/null until they have
 * an error to report.  Returns the saved descriptor (-1: unchanged). */
static int silence_stderr(void) {
  fflush(stderr);
  const int saved = dup(STDERR_FILENO);
  const int null = open("/dev/null", O_WRONLY);
  if (saved < 0 || null < 0 || dup2(null, STDERR_FILENO) < 0) {
    if (saved >= 0)
      close(saved);
    if (null >= 0)
      close(null);
    return -1;
  }
  close(null);
  return saved;
}

static void restore_stderr(int saved) {
  if (saved < 0)
    return;
  fflush(stderr);
  dup2(saved, STDERR_FILENO);
  close(saved);
}

/* Trains as one rank of comm (or alone when comm is NULL).  A failing rank
 * reports, then ends the others (which may wait for it in a sum). */
static int train_as_rank(const train_flags *f, dist *comm) {
  crema_error err = {0};
  const int saved = comm && comm->rank != 0 ? silence_stderr() : -1;
  crema_status st = train(f, comm, &err);
  restore_stderr(saved);
  if (st == CREMA_OK) {
    dist_free(comm);
    return 0;
  }
  if (comm && comm->rank != 0)
    crema_error_prefix(&err, "rank %d: ", comm->rank);
  const int code = cli_report("train", &err);
  if (comm)
    dist_abort(comm, err.message);
  dist_free(comm);
  return code;
}

int cmd_train(int argc, char **argv) {
  train_flags f = {.sigint_effect = "stop", .sighup_effect = "snapshot"};
  const flag_spec specs[] = {
      {"solver", FLAG_STRING, &f.solver, "the solver definition (prototxt)"},
      {"weights", FLAG_STRING, &f.weights,
       "pretrained weights to finetune from, separated by ','; not with --snapshot"},
      {"snapshot", FLAG_STRING, &f.snapshot, "a .solverstate to resume training from"},
      {"sigint_effect", FLAG_STRING, &f.sigint_effect,
       "action on SIGINT: snapshot, stop or none (default stop)"},
      {"sighup_effect", FLAG_STRING, &f.sighup_effect,
       "action on SIGHUP: snapshot, stop or none (default snapshot)"},
      {"level", FLAG_INT, &f.level, "the train net's state level (default 0)"},
      {"stage", FLAG_STRING, &f.stage, "the train net's stages, separated by ','"},
      {"gpu", FLAG_STRING, &f.gpu, "accepted for Caffe compatibility; crema runs on the CPU"},
  };
  const int nspecs = (int)(sizeof specs / sizeof specs[0]);
  int code;
  if (!cli_parse_flags("train", argc, argv, specs, nspecs, "crema train --solver SOLVER [flags]",
                       "Trains or finetunes a model as `caffe train` does: snapshots to "
                       "<prefix>_iter_<N>.caffemodel/.solverstate, resumes from a .solverstate.",
                       &code))
    return code;
  crema_error err = {0};
  dist *comm = NULL;
  if (open_comm(&comm, &err) != CREMA_OK)
    return cli_report("train", &err);
  return train_as_rank(&f, comm);
}
