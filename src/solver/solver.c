#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/options.h"
#include "graph/weights.h"
#include "io/binary.h"
#include "io/file.h"
#include "io/text.h"
#include "io/upgrade.h"
#include "math/blas.h"
#include "solver/lr_policy.h"
#include "solver/solver.h"
#include "solver/state.h"

/* ---- solver file ------------------------------------------------------ */

static char *path_without_extension(const char *path, crema_error *err) {
  const char *base = strrchr(path, '/');
  base = base ? base + 1 : path;
  const char *dot = strrchr(base, '.');
  size_t len = dot && dot != base ? (size_t)(dot - path) : strlen(path);
  char *out = crema_malloc(len + 1, err);
  if (out) {
    memcpy(out, path, len);
    out[len] = '\0';
  }
  return out;
}

static int is_directory(const char *path) {
  struct stat st;
  return path[0] && stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Caffe's UpgradeSnapshotPrefixProperty. */
static crema_status default_snapshot_prefix(Caffe__SolverParameter *p, const char *path,
                                            crema_log_level level, crema_error *err) {
  char *stem_path = path_without_extension(path, err);
  if (!stem_path)
    return CREMA_ERR_NOMEM;
  char *prefix = NULL;
  if (!p->snapshot_prefix) {
    prefix = stem_path;
    stem_path = NULL;
    LOG_INFO_AT(level, "snapshot_prefix was not specified and is set to %s", prefix);
  } else if (is_directory(p->snapshot_prefix)) {
    const char *stem = strrchr(stem_path, '/');
    stem = stem ? stem + 1 : stem_path;
    size_t plen = strlen(p->snapshot_prefix);
    size_t len = plen + 1 + strlen(stem) + 1;
    prefix = crema_malloc(len, err);
    if (!prefix) {
      free(stem_path);
      return CREMA_ERR_NOMEM;
    }
    int has_slash = plen > 0 && p->snapshot_prefix[plen - 1] == '/';
    snprintf(prefix, len, "%s%s%s", p->snapshot_prefix, has_slash ? "" : "/", stem);
    LOG_INFO_AT(level, "snapshot_prefix is a directory and is set to %s", prefix);
  }
  free(stem_path);
  if (prefix) {
    free(p->snapshot_prefix);
    p->snapshot_prefix = prefix;
  }
  return CREMA_OK;
}

crema_status solver_param_load(const char *path, crema_log_level level,
                               Caffe__SolverParameter **out, crema_error *err) {
  CREMA_TRY(solver_param_read_text(path, level, out, err));
  crema_status st = default_snapshot_prefix(*out, path, level, err);
  if (st != CREMA_OK) {
    protobuf_c_message_free_unpacked(&(*out)->base, NULL);
    *out = NULL;
  }
  return st;
}

/* ---- construction ----------------------------------------------------- */

static void log_solver_param(const Caffe__SolverParameter *p, crema_log_level level) {
  if (level > CREMA_LOG_INFO)
    return;
  char *text = NULL;
  crema_error ignored = {0};
  if (txt_print(&p->base, &text, NULL, &ignored) == CREMA_OK) {
    LOG_INFO("Initializing solver from parameters: \n%s", text);
    free(text);
  }
}

/* The NetState of a solver's net, merged as Caffe: the phase's default,
 * then the net's own state, then the solver's train_state / test_state
 * (later fields win; stages accumulate). */
typedef struct merged_state {
  net_options opts;
  const char **stages;
} merged_state;

static int distributed(const solver *s) {
  return s->comm && s->comm->size > 1;
}

static int is_root(const solver *s) {
  return !s->comm || s->comm->rank == 0;
}

/* The train net of a rank reads its shard of the data. */
static crema_status merge_state(merged_state *m, const solver *s, Caffe__Phase phase,
                                uint32_t seed, const Caffe__NetState *from_net,
                                const Caffe__NetState *from_solver, crema_error *err) {
  net_options_init(&m->opts, phase);
  m->opts.seed = seed;
  m->opts.observable = s->observable;
  m->opts.run = s->opts;
  m->opts.backward = phase == CAFFE__PHASE__TRAIN;
  if (phase == CAFFE__PHASE__TRAIN && s->comm) {
    m->opts.shard_rank = s->comm->rank;
    m->opts.shard_count = s->comm->size;
  }
  m->stages = NULL;
  const Caffe__NetState *layers[2] = {from_net, from_solver};
  size_t nstages = 0;
  for (int i = 0; i < 2; i++) {
    const Caffe__NetState *st = layers[i];
    if (!st)
      continue;
    if (st->has_phase)
      m->opts.phase = st->phase;
    if (st->has_level) {
      m->opts.has_level = 1;
      m->opts.level = st->level;
    }
    nstages += st->n_stage;
  }
  if (nstages == 0)
    return CREMA_OK;
  m->stages = crema_calloc(nstages, sizeof *m->stages, err);
  if (!m->stages)
    return CREMA_ERR_NOMEM;
  for (int i = 0; i < 2; i++)
    for (size_t k = 0; layers[i] && k < layers[i]->n_stage; k++)
      m->stages[m->opts.nstages++] = layers[i]->stage[k];
  m->opts.stages = m->stages;
  return CREMA_OK;
}

static crema_status build_net(const solver *s, const Caffe__NetParameter *np, Caffe__Phase phase,
                              uint32_t seed, const Caffe__NetState *solver_state, net **out,
                              crema_error *err) {
  merged_state m;
  CREMA_TRY(merge_state(&m, s, phase, seed, np->state, solver_state, err));
  crema_status st = net_open_param(np, NULL, s->weights, &m.opts, out, err);
  free(m.stages);
  return st;
}

static crema_status build_net_from_file(const solver *s, const char *path, Caffe__Phase phase,
                                        uint32_t seed, const Caffe__NetState *solver_state,
                                        net **out, crema_error *err) {
  Caffe__NetParameter *np = NULL;
  CREMA_TRY(net_param_read_text(path, s->opts.log_level, &np, err));
  crema_status st = build_net(s, np, phase, seed, solver_state, out, err);
  protobuf_c_message_free_unpacked(&np->base, NULL);
  return st;
}

static crema_status init_train_net(solver *s, uint32_t seed, crema_error *err) {
  const Caffe__SolverParameter *p = s->param;
  int count = !!p->net + !!p->net_param + !!p->train_net + !!p->train_net_param;
  if (count != 1)
    return crema_fail(err, CREMA_ERR_INVALID,
                      "solver: %s (net, net_param, train_net, train_net_param)",
                      count ? "more than one train net is specified"
                            : "no train net is specified: set one of these fields");
  if (p->train_net_param) {
    LOG_INFO_AT(s->opts.log_level, "Creating training net specified in train_net_param.");
    return build_net(s, p->train_net_param, CAFFE__PHASE__TRAIN, seed, p->train_state,
                     &s->train, err);
  }
  if (p->net_param) {
    LOG_INFO_AT(s->opts.log_level, "Creating training net specified in net_param.");
    return build_net(s, p->net_param, CAFFE__PHASE__TRAIN, seed, p->train_state, &s->train,
                     err);
  }
  const char *file = p->train_net ? p->train_net : p->net;
  LOG_INFO_AT(s->opts.log_level, "Creating training net from %s file: %s",
              p->train_net ? "train_net" : "net", file);
  return build_net_from_file(s, file, CAFFE__PHASE__TRAIN, seed, p->train_state, &s->train,
                             err);
}

static crema_status check_test_counts(const Caffe__SolverParameter *p, int *ninstances,
                                      crema_error *err) {
  const int generic = !!p->net + !!p->net_param;
  const int specific = (int)(p->n_test_net_param + p->n_test_net);
  const int iters = (int)p->n_test_iter;
  if ((generic && iters < specific) || (!generic && iters != specific))
    return crema_fail(err, CREMA_ERR_INVALID,
                      "solver: test_iter must be specified for each test network "
                      "(%d test_iter for %d test nets)", iters, specific);
  *ninstances = generic ? iters : specific;
  if (p->n_test_state && (int)p->n_test_state != *ninstances)
    return crema_fail(err, CREMA_ERR_INVALID,
                      "solver: test_state must be unspecified or specified once per test net "
                      "(%zu for %d test nets)", p->n_test_state, *ninstances);
  if (*ninstances && p->test_interval <= 0)
    return crema_fail(err, CREMA_ERR_INVALID,
                      "solver: test nets need test_interval > 0, got %d", p->test_interval);
  for (int i = 0; i < iters; i++)
    if (p->test_iter[i] <= 0)
      return crema_fail(err, CREMA_ERR_INVALID, "solver: test_iter %d must be > 0, got %d", i,
                        p->test_iter[i]);
  return CREMA_OK;
}

static crema_status init_test_net(solver *s, int i, uint32_t seed, crema_error *err) {
  const Caffe__SolverParameter *p = s->param;
  const Caffe__NetState *ts = p->n_test_state ? p->test_state[i] : NULL;
  const int nparams = (int)p->n_test_net_param;
  const int nfiles = (int)p->n_test_net;
  crema_status st;
  if (i < nparams) {
    LOG_INFO_AT(s->opts.log_level, "Creating test net (#%d) specified by test_net_param", i);
    st = build_net(s, p->test_net_param[i], CAFFE__PHASE__TEST, seed, ts, &s->tests[i], err);
  } else if (i < nparams + nfiles) {
    const char *file = p->test_net[i - nparams];
    LOG_INFO_AT(s->opts.log_level, "Creating test net (#%d) specified by test_net file: %s", i, file);
    st = build_net_from_file(s, file, CAFFE__PHASE__TEST, seed, ts, &s->tests[i], err);
  } else if (p->net_param) {
    LOG_INFO_AT(s->opts.log_level, "Creating test net (#%d) specified by net_param", i);
    st = build_net(s, p->net_param, CAFFE__PHASE__TEST, seed, ts, &s->tests[i], err);
  } else {
    LOG_INFO_AT(s->opts.log_level, "Creating test net (#%d) specified by net file: %s", i, p->net);
    st = build_net_from_file(s, p->net, CAFFE__PHASE__TEST, seed, ts, &s->tests[i], err);
  }
  if (st != CREMA_OK)
    crema_error_prefix(err, "test net #%d: ", i);
  return st;
}

static crema_status init_test_nets(solver *s, uint32_t seed, crema_error *err) {
  int n = 0;
  CREMA_TRY(check_test_counts(s->param, &n, err));
  if (n == 0 || !is_root(s))
    return CREMA_OK; /* only rank 0 tests */
  s->tests = crema_calloc((size_t)n, sizeof *s->tests, err);
  if (!s->tests)
    return CREMA_ERR_NOMEM;
  s->ntests = n;
  for (int i = 0; i < n; i++)
    CREMA_TRY(init_test_net(s, i, seed, err));
  return CREMA_OK;
}

static crema_status collect_learnable(solver *s, crema_error *err) {
  const net *n = s->train;
  s->nparams = n->nlearnable;
  s->params = crema_calloc((size_t)(n->nlearnable ? n->nlearnable : 1), sizeof *s->params, err);
  if (!s->params)
    return CREMA_ERR_NOMEM;
  for (int i = 0; i < n->nlearnable; i++) {
    const net_learnable *l = &n->learnable[i];
    s->params[i].b = l->b;
    s->params[i].lr_mult = l->lr_mult;
    s->params[i].decay_mult = l->decay_mult;
    if (!l->b->diff && l->b->count)
      return crema_fail(err, CREMA_ERR_INVALID, "solver: parameter %d of layer '%s' has no "
                        "gradient buffer", l->index, n->layers[l->layer]->name);
  }
  return CREMA_OK;
}

static crema_status check_snapshot_settings(const Caffe__SolverParameter *p, crema_error *err) {
  if (p->snapshot_format == CAFFE__SOLVER_PARAMETER__SNAPSHOT_FORMAT__HDF5)
    return crema_fail(err, CREMA_ERR_UNSUPPORTED,
                      "solver: snapshot_format HDF5 is not supported by crema; use "
                      "snapshot_format: BINARYPROTO");
  if (p->snapshot < 0)
    return crema_fail(err, CREMA_ERR_INVALID, "solver: snapshot must be >= 0, got %d",
                      p->snapshot);
  if (p->snapshot && !p->snapshot_prefix)
    return crema_fail(err, CREMA_ERR_INVALID,
                      "solver: snapshot is specified but snapshot_prefix is not");
  if (p->snapshot) {
    /* Caffe's CheckSnapshotWritePermissions: fail now, not after hours. */
    size_t len = strlen(p->snapshot_prefix) + 32;
    char *probe = crema_malloc(len, err);
    if (!probe)
      return CREMA_ERR_NOMEM;
    snprintf(probe, len, "%s_iter_0.tempfile", p->snapshot_prefix);
    FILE *f = fopen(probe, "wb");
    if (f) {
      fclose(f);
      remove(probe);
    }
    free(probe);
    if (!f)
      return crema_fail(err, CREMA_ERR_IO,
                        "solver: cannot write to snapshot prefix '%s'; make sure that the "
                        "directory exists and is writeable", p->snapshot_prefix);
  }
  return CREMA_OK;
}

static crema_status check_solver_param(solver *s, crema_error *err) {
  const Caffe__SolverParameter *p = s->param;
  if (p->average_loss < 1)
    return crema_fail(err, CREMA_ERR_INVALID, "solver: average_loss must be >= 1, got %d",
                      p->average_loss);
  if (p->display < 0 || p->max_iter < 0 || p->test_interval < 0)
    return crema_fail(err, CREMA_ERR_INVALID,
                      "solver: display, max_iter and test_interval must be >= 0");
  if (p->iter_size < 1)
    return crema_fail(err, CREMA_ERR_INVALID, "solver: iter_size must be >= 1, got %d",
                      p->iter_size);
  CREMA_TRY(solver_type_parse(p->type, &s->type, err));
  CREMA_TRY(lr_policy_check(p, err));
  return check_snapshot_settings(p, err);
}

static uint32_t solver_seed(const Caffe__SolverParameter *p) {
  if (p->random_seed >= 0)
    return (uint32_t)p->random_seed;
  /* Caffe seeds from entropy when random_seed is negative. */
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint32_t)ts.tv_nsec ^ (uint32_t)ts.tv_sec ^ ((uint32_t)getpid() << 16);
}

/* The solver's weights files (each entry may list several, separated by
 * commas) as the one list every net opens with, logged as Caffe's
 * CopyLayers logs them.  None on ranks other than 0: rank 0's weights
 * are sent to them. */
static crema_status list_weights(solver *s, crema_error *err) {
  if (!is_root(s) || s->param->n_weights == 0)
    return CREMA_OK;
  size_t len = 1;
  for (size_t w = 0; w < s->param->n_weights; w++)
    if (!size_add(len, strlen(s->param->weights[w]) + 1, &len))
      return crema_fail(err, CREMA_ERR_NOMEM, "solver: weights list too long");
  if (!(s->weights = crema_malloc(len, err)))
    return CREMA_ERR_NOMEM;
  s->weights[0] = '\0';
  for (size_t w = 0; w < s->param->n_weights; w++) {
    if (w)
      strcat(s->weights, ",");
    strcat(s->weights, s->param->weights[w]);
  }
  for (const char *p = s->weights; *p;) {
    size_t n = strcspn(p, ",");
    if (n)
      LOG_INFO_AT(s->opts.log_level, "Finetuning from %.*s", (int)n, p);
    p += n + (p[n] == ',');
  }
  return CREMA_OK;
}

/* One buffer for every param diff and the loss, so that an iteration
 * needs a single sum. */
static crema_status alloc_sum_buffer(solver *s, crema_error *err) {
  size_t n = 1;
  for (int i = 0; i < s->nparams; i++)
    if (!size_add(n, s->params[i].b->count, &n))
      return crema_fail(err, CREMA_ERR_NOMEM, "solver: too many parameters to sum");
  s->sum_buf = crema_calloc(n, sizeof(float), err);
  if (!s->sum_buf)
    return CREMA_ERR_NOMEM;
  s->sum_len = n;
  return CREMA_OK;
}

static crema_status solver_init(solver *s, crema_error *err) {
  log_solver_param(s->param, s->opts.log_level);
  CREMA_TRY(check_solver_param(s, err));
  if (s->param->solver_mode == CAFFE__SOLVER_PARAMETER__SOLVER_MODE__GPU)
    LOG_WARN_AT(s->opts.log_level, "solver_mode GPU requested: crema runs on the CPU");
  /* Each rank draws its own dropout masks and crops, as Caffe's. */
  const uint32_t seed = solver_seed(s->param) + (s->comm ? (uint32_t)s->comm->rank : 0u);
  CREMA_TRY(list_weights(s, err));
  CREMA_TRY(init_train_net(s, seed, err));
  CREMA_TRY(init_test_nets(s, seed, err));
  LOG_INFO_AT(s->opts.log_level, "Solver scaffolding done.");
  CREMA_TRY(collect_learnable(s, err));
  CREMA_TRY(update_rule_init(&s->rule, s->param, s->params, s->nparams, err));
  s->rule.log_level = s->opts.log_level;
  s->losses = crema_calloc((size_t)s->param->average_loss, sizeof(float), err);
  if (!s->losses)
    return CREMA_ERR_NOMEM;
  return distributed(s) ? alloc_sum_buffer(s, err) : CREMA_OK;
}

crema_status solver_create(Caffe__SolverParameter *param, solver **out, crema_error *err) {
  crema_options run;
  crema_options_from_env(&run);
  return solver_create_nets(param, 0, &run, out, err);
}

/* ---- data-parallel collectives --------------------------------------- */

/* Every rank raises a flag or not; *first is the first rank that raised
 * it (-1: none). */
static crema_status first_flagged(dist *comm, int flag, int *first, crema_error *err) {
  *first = -1;
  float *flags = crema_calloc((size_t)comm->size, sizeof *flags, err);
  if (!flags)
    return CREMA_ERR_NOMEM; /* the others wait; the caller aborts */
  flags[comm->rank] = flag != 0;
  crema_status st = dist_allreduce_sum(comm, flags, (size_t)comm->size, err);
  for (int r = 0; st == CREMA_OK && r < comm->size && *first < 0; r++)
    if (flags[r] != 0)
      *first = r;
  free(flags);
  return st;
}

/* Every rank reports whether its step succeeded: all fail if one did, the
 * others naming the first rank that failed (its own message says why). */
static crema_status agree(dist *comm, crema_status st, const char *what, crema_error *err) {
  crema_error flag_err = {0};
  int first;
  crema_status flag_st = first_flagged(comm, st != CREMA_OK, &first, &flag_err);
  if (st != CREMA_OK)
    return st;
  if (flag_st != CREMA_OK) {
    *err = flag_err;
    return flag_st;
  }
  if (first >= 0)
    return crema_fail(err, CREMA_ERR_INTERRUPTED, "rank %d failed %s", first, what);
  return CREMA_OK;
}

/* FNV-1a over the bits of the trained parameters (lr_mult != 0: BatchNorm's
 * statistics follow each rank's own data, as in Caffe). */
static uint64_t trained_hash(const solver *s) {
  uint64_t h = 14695981039346656037u;
  for (int i = 0; i < s->nparams; i++) {
    if (s->params[i].lr_mult == 0)
      continue;
    const unsigned char *p = (const unsigned char *)s->params[i].b->data;
    for (size_t k = 0; k < s->params[i].b->count * sizeof(float); k++)
      h = (h ^ p[k]) * 1099511628211u;
  }
  return h;
}

/* After training: the replicas should hold rank 0's weights bit for bit
 * (the same sums, the same update).  Ranks on CPUs that round differently
 * may drift apart, which is worth a warning: rank 0's weights are saved. */
static crema_status check_replicas(solver *s, crema_error *err) {
  const uint64_t mine = trained_hash(s);
  uint64_t root = mine;
  CREMA_TRY(dist_broadcast(s->comm, &root, sizeof root, err));
  int first;
  CREMA_TRY(first_flagged(s->comm, mine != root, &first, err));
  if (first < 0)
    LOG_INFO_AT(s->opts.log_level, "The trained weights are identical on all %d ranks", s->comm->size);
  else
    LOG_WARN_AT(s->opts.log_level, "The trained weights of rank %d differ from rank 0's; rank 0's are saved", first);
  return CREMA_OK;
}

static crema_status broadcast_blob(dist *comm, blob *b, crema_error *err) {
  return dist_broadcast(comm, b->data, b->count * sizeof(float), err);
}

/* Rank 0's iteration, lr step, weights and history to every rank. */
static crema_status broadcast_state(solver *s, crema_error *err) {
  int head[2] = {s->iter, s->current_step};
  CREMA_TRY(dist_broadcast(s->comm, head, sizeof head, err));
  s->iter = head[0];
  s->current_step = head[1];
  for (int i = 0; i < s->nparams; i++)
    CREMA_TRY(broadcast_blob(s->comm, s->params[i].b, err));
  for (int i = 0; i < s->rule.nhistory; i++)
    CREMA_TRY(broadcast_blob(s->comm, s->rule.history[i], err));
  return CREMA_OK;
}

/* Caffe's multi-GPU reduction: the ranks' summed diffs times 1/ranks, the
 * gradient of the union of their batches.  The loss travels with them so
 * that every rank smooths and shows the loss of that union. */
static crema_status sum_over_ranks(solver *s, float *loss, crema_error *err) {
  float *buf = s->sum_buf;
  size_t at = 0;
  for (int i = 0; i < s->nparams; i++) {
    const blob *b = s->params[i].b;
    memcpy(buf + at, b->diff, b->count * sizeof(float));
    at += b->count;
  }
  buf[at] = *loss;
  CREMA_TRY(dist_allreduce_sum(s->comm, buf, s->sum_len, err));
  const float scale = 1.0f / (float)s->comm->size;
  at = 0;
  for (int i = 0; i < s->nparams; i++) {
    blob *b = s->params[i].b;
    for (size_t j = 0; j < b->count; j++)
      b->diff[j] = buf[at + j] * scale;
    at += b->count;
  }
  *loss = buf[at] * scale;
  return CREMA_OK;
}

/* The solver's copy of run (NULL: the defaults). */
static crema_status set_run_options(solver *s, const crema_options *run, crema_error *err) {
  crema_options_init(&s->opts);
  if (!run)
    return CREMA_OK;
  s->opts = *run;
  s->opts.conv_engine = NULL;
  if (run->conv_engine && !(s->conv_engine = crema_strdup(run->conv_engine, err)))
    return CREMA_ERR_NOMEM;
  s->opts.conv_engine = s->conv_engine;
  return CREMA_OK;
}

static crema_status solver_new(Caffe__SolverParameter *param, int observable,
                               const crema_options *run, dist *comm, solver **out,
                               crema_error *err) {
  *out = NULL;
  solver *s = crema_calloc(1, sizeof *s, err);
  crema_status st = CREMA_ERR_NOMEM;
  if (s) {
    s->param = param;
    s->observable = observable;
    s->comm = comm;
    st = set_run_options(s, run, err);
    if (st == CREMA_OK)
      st = solver_init(s, err);
  } else {
    protobuf_c_message_free_unpacked(&param->base, NULL);
  }
  if (comm && comm->size > 1) {
    st = agree(comm, st, "to build the solver", err);
    if (st == CREMA_OK)
      st = broadcast_state(s, err);
  }
  if (st != CREMA_OK) {
    solver_free(s);
    return st;
  }
  *out = s;
  return CREMA_OK;
}

crema_status solver_create_nets(Caffe__SolverParameter *param, int observable,
                                const crema_options *run, solver **out, crema_error *err) {
  return solver_new(param, observable, run, NULL, out, err);
}

crema_status solver_create_dist(Caffe__SolverParameter *param, dist *comm, solver **out,
                                crema_error *err) {
  crema_options run;
  crema_options_from_env(&run);
  return solver_new(param, 0, &run, comm, out, err);
}

void solver_free(solver *s) {
  if (!s)
    return;
  update_rule_free(&s->rule);
  for (int i = 0; i < s->ntests; i++)
    net_free(s->tests[i]);
  free(s->tests);
  net_free(s->train);
  free(s->params);
  free(s->losses);
  free(s->sum_buf);
  free(s->conv_engine);
  free(s->weights);
  if (s->param)
    protobuf_c_message_free_unpacked(&s->param->base, NULL);
  free(s);
}

/* ---- snapshots -------------------------------------------------------- */

static char *snapshot_filename(const solver *s, const char *extension, crema_error *err) {
  size_t len = strlen(s->param->snapshot_prefix) + strlen(extension) + 32;
  char *name = crema_malloc(len, err);
  if (name)
    snprintf(name, len, "%s_iter_%d%s", s->param->snapshot_prefix, s->iter, extension);
  return name;
}

static crema_status save_model(const net *n, const char *path, int with_diff, crema_error *err) {
  if (!with_diff)
    return net_save_weights(n, path, err);
  Caffe__NetParameter *np = NULL;
  CREMA_TRY(net_to_proto(n, 1, &np, err));
  crema_status st = bin_write_file(path, &np->base, err);
  protobuf_c_message_free_unpacked(&np->base, NULL);
  return st;
}

void solver_settle_diffs(solver *s) {
  if (s->diffs_cleared)
    update_restore_diffs(&s->rule, s->params, s->nparams);
  s->diffs_cleared = 0;
}

crema_status solver_snapshot(solver *s, crema_error *err) {
  if (!is_root(s))
    return CREMA_OK;
  if (!s->param->snapshot_prefix)
    return crema_fail(err, CREMA_ERR_INVALID, "solver: cannot snapshot without snapshot_prefix");
  if (s->param->snapshot_diff)
    solver_settle_diffs(s);
  char *model = snapshot_filename(s, ".caffemodel", err);
  char *state = model ? snapshot_filename(s, ".solverstate", err) : NULL;
  crema_status st = state ? CREMA_OK : CREMA_ERR_NOMEM;
  if (st == CREMA_OK) {
    LOG_INFO_AT(s->opts.log_level, "Snapshotting to binary proto file %s", model);
    st = save_model(s->train, model, s->param->snapshot_diff, err);
  }
  if (st == CREMA_OK) {
    LOG_INFO_AT(s->opts.log_level, "Snapshotting solver state to binary proto file %s", state);
    st = solver_state_write(state, s->iter, model, s->current_step, s->rule.history,
                            s->rule.nhistory, err);
  }
  free(model);
  free(state);
  return st;
}

static crema_status restore_local(solver *s, const char *state_path, crema_error *err) {
  if (path_has_suffix(state_path, ".h5"))
    return crema_fail(err, CREMA_ERR_UNSUPPORTED,
                      "%s: HDF5 solver states are not supported by crema", state_path);
  /* The diffs keep the last steps, as Caffe's, before the history they
   * are kept in is replaced. */
  solver_settle_diffs(s);
  Caffe__SolverState *st = NULL;
  CREMA_TRY(solver_state_read(state_path, &st, err));
  crema_status rc = CREMA_OK;
  if (st->iter < 0 || st->current_step < 0)
    rc = crema_fail(err, CREMA_ERR_INVALID, "%s: negative iter (%d) or current_step (%d)",
                    state_path, st->iter, st->current_step);
  if (rc == CREMA_OK && st->learned_net) {
    char *model = solver_state_learned_net_path(st, state_path, err);
    rc = model ? net_load_weights(s->train, model, err) : CREMA_ERR_NOMEM;
    free(model);
  }
  if (rc == CREMA_OK) {
    LOG_INFO_AT(s->opts.log_level, "SGDSolver: restoring history");
    rc = solver_state_copy_history(st, state_path, s->rule.history, s->rule.nhistory, err);
  }
  if (rc == CREMA_OK) {
    s->iter = st->iter;
    s->current_step = st->current_step;
  }
  protobuf_c_message_free_unpacked(&st->base, NULL);
  return rc;
}

crema_status solver_restore(solver *s, const char *state_path, crema_error *err) {
  if (!distributed(s))
    return restore_local(s, state_path, err);
  solver_settle_diffs(s);
  crema_status st = is_root(s) ? restore_local(s, state_path, err) : CREMA_OK;
  int root_st = st;
  CREMA_TRY(dist_broadcast(s->comm, &root_st, sizeof root_st, err));
  if (st != CREMA_OK)
    return st;
  if (root_st != CREMA_OK)
    return crema_fail(err, CREMA_ERR_INTERRUPTED, "rank 0 failed to restore %s", state_path);
  return broadcast_state(s, err);
}

/* ---- testing ---------------------------------------------------------- */

/* Caffe's ShareTrainedLayersWith: test layers use the train layers'
 * parameter values (matched by layer name). */
static crema_status share_trained_layers(net *test, const net *train, crema_error *err) {
  for (int i = 0; i < train->nlayers; i++) {
    const layer *src = train->layers[i];
    if (src->nblobs == 0)
      continue;
    int j = net_layer_index(test, src->name);
    if (j < 0)
      continue;
    layer *dst = test->layers[j];
    if (dst->nblobs != src->nblobs)
      return crema_fail(err, CREMA_ERR_SHAPE,
                        "layer '%s': %d parameter blobs in the test net, %d in the train net",
                        src->name, dst->nblobs, src->nblobs);
    for (int k = 0; k < src->nblobs; k++) {
      if (!blob_same_shape(dst->blobs[k], src->blobs[k])) {
        char a[256], b[256];
        return crema_fail(err, CREMA_ERR_SHAPE,
                          "layer '%s': parameter blob %d has shape %s in the test net, %s in "
                          "the train net", src->name, k,
                          blob_shape_string(dst->blobs[k], a, sizeof a),
                          blob_shape_string(src->blobs[k], b, sizeof b));
      }
      blob_share_data(dst->blobs[k], src->blobs[k]);
    }
  }
  return CREMA_OK;
}

static solver_action poll_request(solver *s) {
  return s->poll ? s->poll(s->poll_ctx) : SOLVER_ACTION_NONE;
}

/* Handles requests that arrive while testing (a stop sets
 * requested_early_exit). */
static crema_status handle_requests_while_testing(solver *s, crema_error *err) {
  for (solver_action a = poll_request(s); a != SOLVER_ACTION_NONE; a = poll_request(s)) {
    if (a == SOLVER_ACTION_SNAPSHOT)
      CREMA_TRY(solver_snapshot(s, err));
    else if (a == SOLVER_ACTION_STOP)
      s->requested_early_exit = 1;
  }
  return CREMA_OK;
}

static size_t output_value_count(const net *n) {
  size_t total = 0;
  for (int j = 0; j < n->noutputs; j++)
    total += n->blobs[n->output_ids[j]]->count;
  return total;
}

static void log_test_scores(const solver *s, const net *tn, int k, const float *scores) {
  const int iters = s->param->test_iter[k];
  int idx = 0;
  for (int j = 0; j < tn->noutputs; j++) {
    const int id = tn->output_ids[j];
    const float w = tn->blob_loss_weight[id];
    for (size_t c = 0; c < tn->blobs[id]->count; c++, idx++) {
      const float mean = scores[idx] / (float)iters;
      char loss_msg[96] = "";
      if (w != 0)
        snprintf(loss_msg, sizeof loss_msg, " (* %g = %g loss)", (double)w, (double)(w * mean));
      LOG_INFO_AT(s->opts.log_level, "    Test net output #%d: %s = %g%s", idx, tn->blobs[id]->name, (double)mean,
               loss_msg);
    }
  }
}

static crema_status run_test_batches(solver *s, int k, float *scores, float *loss,
                                     crema_error *err) {
  net *tn = s->tests[k];
  for (int i = 0; i < s->param->test_iter[k]; i++) {
    CREMA_TRY(handle_requests_while_testing(s, err));
    if (s->requested_early_exit)
      return CREMA_OK;
    float iter_loss = 0;
    CREMA_TRY(net_forward(tn, &iter_loss, err));
    if (s->param->test_compute_loss)
      *loss += iter_loss;
    int idx = 0;
    for (int j = 0; j < tn->noutputs; j++) {
      const blob *b = tn->blobs[tn->output_ids[j]];
      for (size_t c = 0; c < b->count; c++, idx++)
        scores[idx] = i == 0 ? b->data[c] : scores[idx] + b->data[c];
    }
  }
  return CREMA_OK;
}

static crema_status test_net(solver *s, int k, crema_error *err) {
  LOG_INFO_AT(s->opts.log_level, "Iteration %d, Testing net (#%d)", s->iter, k);
  net *tn = s->tests[k];
  CREMA_TRY(share_trained_layers(tn, s->train, err));
  size_t nscores = output_value_count(tn);
  float *scores = crema_calloc(nscores ? nscores : 1, sizeof(float), err);
  if (!scores)
    return CREMA_ERR_NOMEM;
  float loss = 0;
  crema_status st = run_test_batches(s, k, scores, &loss, err);
  if (st == CREMA_OK && s->requested_early_exit) {
    LOG_INFO_AT(s->opts.log_level, "Test interrupted.");
  } else if (st == CREMA_OK) {
    if (s->param->test_compute_loss)
      LOG_INFO_AT(s->opts.log_level, "Test loss: %g", (double)(loss / (float)s->param->test_iter[k]));
    log_test_scores(s, tn, k, scores);
  }
  free(scores);
  if (st != CREMA_OK)
    crema_error_prefix(err, "test net #%d: ", k);
  return st;
}

crema_status solver_test_all(solver *s, crema_error *err) {
  for (int k = 0; k < s->ntests && !s->requested_early_exit; k++)
    CREMA_TRY(test_net(s, k, err));
  return CREMA_OK;
}

/* ---- training --------------------------------------------------------- */

static void update_smoothed_loss(solver *s, float loss, int start_iter) {
  const int average = s->param->average_loss;
  if (s->nlosses < average) {
    s->losses[s->nlosses++] = loss;
    s->smoothed_loss = (s->smoothed_loss * (float)(s->nlosses - 1) + loss) / (float)s->nlosses;
  } else {
    int idx = (s->iter - start_iter) % average;
    s->smoothed_loss += (loss - s->losses[idx]) / (float)average;
    s->losses[idx] = loss;
  }
}

static void log_train_outputs(const solver *s) {
  const net *n = s->train;
  int score_index = 0;
  for (int j = 0; j < n->noutputs; j++) {
    const int id = n->output_ids[j];
    const blob *b = n->blobs[id];
    const float w = n->blob_loss_weight[id];
    for (size_t c = 0; c < b->count; c++) {
      char loss_msg[96] = "";
      if (w != 0)
        snprintf(loss_msg, sizeof loss_msg, " (* %g = %g loss)", (double)w,
                 (double)(w * b->data[c]));
      LOG_INFO_AT(s->opts.log_level, "    Train net output #%d: %s = %g%s", score_index++, b->name,
               (double)b->data[c], loss_msg);
    }
  }
}

static void display_iteration(solver *s) {
  const double now = now_seconds();
  const float lapse = (float)(now - s->timer_start);
  const float per_s = (float)(s->iter - s->iterations_last) / (lapse != 0 ? lapse : 1);
  LOG_INFO_AT(s->opts.log_level, "Iteration %d (%g iter/s, %gs/%d iters), loss = %g", s->iter, (double)per_s,
           (double)lapse, s->param->display, (double)s->smoothed_loss);
  s->timer_start = now;
  s->iterations_last = s->iter;
  log_train_outputs(s);
}

static crema_status forward_backward(solver *s, float *loss, crema_error *err) {
  CREMA_TRY(net_forward(s->train, loss, err));
  return net_backward(s->train, err);
}

static crema_status apply_update(solver *s, int display, crema_error *err) {
  float rate = 0;
  CREMA_TRY(lr_policy_rate(s->param, s->iter, &s->current_step, s->opts.log_level, &rate, err));
  s->rate = rate;
  if (display)
    LOG_INFO_AT(s->opts.log_level, "Iteration %d, lr = %g", s->iter, (double)rate);
  s->diffs_cleared = update_apply(&s->rule, s->params, s->nparams, rate, s->iter, 1);
  return CREMA_OK;
}

/* Rank 0's signals decide for every rank. */
static crema_status agreed_request(solver *s, solver_action *out, crema_error *err) {
  *out = is_root(s) ? poll_request(s) : SOLVER_ACTION_NONE;
  if (!distributed(s))
    return CREMA_OK;
  int action = (int)*out;
  CREMA_TRY(dist_broadcast(s->comm, &action, sizeof action, err));
  *out = (solver_action)action;
  return CREMA_OK;
}

/* Rank 0 alone tests (the others have no test nets); a stop it received
 * meanwhile stops every rank. */
static crema_status test_and_agree(solver *s, crema_error *err) {
  CREMA_TRY(solver_test_all(s, err));
  if (!distributed(s))
    return CREMA_OK;
  int stop = s->requested_early_exit;
  CREMA_TRY(dist_broadcast(s->comm, &stop, sizeof stop, err));
  s->requested_early_exit = stop;
  return CREMA_OK;
}

static int should_test(const solver *s) {
  const Caffe__SolverParameter *p = s->param;
  return p->test_interval && s->iter % p->test_interval == 0 &&
         (s->iter > 0 || p->test_initialization);
}

static crema_status train_iteration(solver *s, int start_iter, crema_error *err) {
  const Caffe__SolverParameter *p = s->param;
  const int display = p->display && s->iter % p->display == 0;
  float loss = 0;
  for (int i = 0; i < p->iter_size; i++) {
    float l = 0;
    CREMA_TRY(forward_backward(s, &l, err));
    loss += l;
  }
  loss /= (float)p->iter_size;
  if (distributed(s))
    CREMA_TRY(sum_over_ranks(s, &loss, err));
  update_smoothed_loss(s, loss, start_iter);
  if (display)
    display_iteration(s);
  return apply_update(s, display, err);
}

crema_status solver_step(solver *s, int iters, crema_error *err) {
  const int start_iter = s->iter;
  const int stop_iter = s->iter + iters;
  s->nlosses = 0;
  s->smoothed_loss = 0;
  s->timer_start = now_seconds();
  s->iterations_last = s->iter;
  while (s->iter < stop_iter) {
    if (!s->diffs_cleared)
      net_clear_param_diffs(s->train);
    s->diffs_cleared = 0;
    if (should_test(s)) {
      CREMA_TRY(test_and_agree(s, err));
      if (s->requested_early_exit)
        break;
    }
    /* The update's BLAS calls too run on this thread (math/blas.h), and
     * its loops on the solver's team. */
    const int blas = blas_threads_enter();
    const options_scope scope = options_enter(&s->opts);
    crema_status st = train_iteration(s, start_iter, err);
    options_leave(scope);
    blas_threads_leave(blas);
    if (st != CREMA_OK) {
      crema_error_prefix(err, "iteration %d: ", s->iter);
      return st;
    }
    ++s->iter;
    solver_action request;
    CREMA_TRY(agreed_request(s, &request, err));
    if ((s->param->snapshot && s->iter % s->param->snapshot == 0) ||
        request == SOLVER_ACTION_SNAPSHOT)
      CREMA_TRY(solver_snapshot(s, err));
    if (s->progress)
      s->progress(s->progress_ctx, s->iter, s->param->max_iter);
    if (request == SOLVER_ACTION_STOP) {
      s->requested_early_exit = 1;
      break;
    }
  }
  return CREMA_OK;
}

/* Every rank runs it: the loss shown is that of the ranks' batches. */
static crema_status final_display(solver *s, int start_iter, crema_error *err) {
  float loss = 0;
  CREMA_TRY(net_forward(s->train, &loss, err));
  if (distributed(s)) {
    CREMA_TRY(dist_allreduce_sum(s->comm, &loss, 1, err));
    loss *= 1.0f / (float)s->comm->size;
  }
  update_smoothed_loss(s, loss, start_iter);
  LOG_INFO_AT(s->opts.log_level, "Iteration %d, loss = %g", s->iter, (double)s->smoothed_loss);
  return CREMA_OK;
}

crema_status solver_solve(solver *s, crema_error *err) {
  const Caffe__SolverParameter *p = s->param;
  LOG_INFO_AT(s->opts.log_level, "Solving %s", s->train->name ? s->train->name : "");
  LOG_INFO_AT(s->opts.log_level, "Learning Rate Policy: %s", p->lr_policy);
  s->requested_early_exit = 0;
  const int start_iter = s->iter;
  CREMA_TRY(solver_step(s, p->max_iter - s->iter, err));
  if (distributed(s))
    CREMA_TRY(check_replicas(s, err));
  if (p->snapshot_after_train && (!p->snapshot || s->iter % p->snapshot != 0))
    CREMA_TRY(solver_snapshot(s, err));
  if (s->requested_early_exit) {
    LOG_INFO_AT(s->opts.log_level, "Optimization stopped early.");
    return CREMA_OK;
  }
  if (p->display && s->iter % p->display == 0)
    CREMA_TRY(final_display(s, start_iter, err));
  if (p->test_interval && s->iter % p->test_interval == 0)
    CREMA_TRY(solver_test_all(s, err));
  LOG_INFO_AT(s->opts.log_level, "Optimization Done.");
  return CREMA_OK;
}
