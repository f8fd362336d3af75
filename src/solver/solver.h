/* Training, as Caffe's Solver / SGDSolver: builds the train and test nets
 * from a SolverParameter, runs Step (test, forward/backward over iter_size,
 * smoothed loss, display, update, snapshot) until max_iter, snapshots to
 * <prefix>_iter_<N>.caffemodel / .solverstate, and resumes from them. */
#ifndef CREMA_SOLVER_SOLVER_H
#define CREMA_SOLVER_SOLVER_H

#include "caffe.pb-c.h"
#include "core/error.h"
#include "dist/dist.h"
#include "graph/net.h"
#include "solver/signals.h"
#include "solver/update.h"

/* Asked once per iteration (and per test batch) whether to stop or
 * snapshot; see signals.h for the SIGINT/SIGHUP implementation. */
typedef solver_action (*solver_poll_fn)(void *ctx);
/* Told after every iteration (for a progress display). */
typedef void (*solver_progress_fn)(void *ctx, int iter, int max_iter);

typedef struct solver {
  Caffe__SolverParameter *param;  /* owned */
  solver_type type;
  net *train;
  net **tests;
  int ntests;
  learnable *params;              /* the train net's learnable parameters */
  int nparams;
  update_rule rule;               /* history blobs */
  int iter;                       /* number of updates done */
  int current_step;               /* lr policy state */
  float rate;                     /* learning rate of the last update */
  /* The last update left the param diffs zero rather than holding its
   * step (update_apply): the next iteration need not clear them, and
   * whoever shows them must first put the steps back. */
  int diffs_cleared;
  int observable;                 /* nets built with net_options.observable */
  /* Runtime settings of its nets and its own update loops; opts.conv_engine
   * is the solver's copy. */
  crema_options opts;
  char *conv_engine;
  /* param->weights as one comma-separated list, which every net opens
   * with (graph/weights.h's net_open_param); NULL: none, or not rank 0. */
  char *weights;

  /* Data-parallel training (NULL: one process).  Every rank builds the
   * train net with its shard of the data and seed random_seed + rank;
   * rank 0 alone loads weights and snapshots, has test nets, polls for
   * requests and logs what the others would repeat.  Each iteration's
   * gradients (and loss) are summed over the ranks with one sum. */
  dist *comm;                     /* borrowed */
  float *sum_buf;                 /* the param diffs and the loss, packed */
  size_t sum_len;

  float *losses;                  /* the last average_loss losses */
  int nlosses;
  float smoothed_loss;
  double timer_start;
  int iterations_last;

  int requested_early_exit;
  solver_poll_fn poll;
  void *poll_ctx;
  solver_progress_fn progress;
  void *progress_ctx;
} solver;

/* Reads a solver prototxt (legacy solver_type upgraded; a missing
 * snapshot_prefix becomes the solver file's name without extension, a
 * directory prefix gets the file's stem appended, as Caffe). */
crema_status solver_param_load(const char *path, crema_log_level level,
                               Caffe__SolverParameter **out, crema_error *err);

/* Builds the solver; takes ownership of param (freed even on failure).
 * Nets named by file are read relative to the working directory, as Caffe.
 * Loads the weights listed in param->weights (comma-separated lists
 * allowed) into the train and test nets.  The runtime options are the
 * environment's (crema_options_from_env, read here once), as the crema
 * command's. */
crema_status solver_create(Caffe__SolverParameter *param, solver **out, crema_error *err);
/* The same with the runtime options run (NULL: the defaults) and, with
 * observable = 1, every net built with net_options.observable (a host
 * such as the Python module reads the test nets' blobs and runs layer
 * ranges). */
crema_status solver_create_nets(Caffe__SolverParameter *param, int observable,
                                const crema_options *run, solver **out, crema_error *err);
/* solver_create for one rank of data-parallel training: collective (every rank
 * of comm calls it).  Only rank 0 loads param->weights; its weights then
 * reach every rank.  A rank's failure fails every rank's call (naming the
 * rank), so that all can stop. */
crema_status solver_create_dist(Caffe__SolverParameter *param, dist *comm, solver **out,
                                crema_error *err);
void solver_free(solver *s);

/* Restores iter, current_step, history and the weights of learned_net from
 * a .solverstate (learned_net is looked up as stored, then next to the
 * .solverstate).  With a communicator it is collective: rank 0 reads the
 * files and sends what it read to every rank. */
crema_status solver_restore(solver *s, const char *state_path, crema_error *err);

/* Trains up to max_iter, snapshots after training, runs the final display
 * forward and test.  Returns CREMA_OK also when stopped by a request
 * (s->requested_early_exit is then set). */
crema_status solver_solve(solver *s, crema_error *err);
/* iters iterations of Caffe's Step.  The param diffs may be left zero
 * (s->diffs_cleared); solver_settle_diffs gives Caffe's. */
crema_status solver_step(solver *s, int iters, crema_error *err);
/* The param diffs as Caffe leaves them after an update: each step. */
void solver_settle_diffs(solver *s);
/* Writes the .caffemodel (with the diffs if snapshot_diff) and .solverstate
 * for the current iteration (on rank 0 only: the others return CREMA_OK). */
crema_status solver_snapshot(solver *s, crema_error *err);
/* One pass over every test net. */
crema_status solver_test_all(solver *s, crema_error *err);

#endif
