/* src/dist/ through the in-process backend: sums and broadcasts reach every
 * rank with the same bits, and a failing rank releases the others. */
#include "config.h"

#include <check.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/lmdb_source.h"
#include "dist/dist.h"
#include "io/text.h"
#include "solver/solver.h"
#include "tests/unit/testutil.h"

#define MAX_RANKS 4

typedef struct rank_run rank_run;
typedef void (*rank_body)(rank_run *r);

struct rank_run {
  dist *comm;
  rank_body body;
  void *shared;                     /* the test's data */
  crema_status status;
  crema_error err;
  pthread_t thread;
};

static void *rank_main(void *arg) {
  rank_run *r = arg;
  r->body(r);
  return NULL;
}

/* Runs body on size threads, one per rank, and frees the group. */
static void run_ranks(int size, rank_body body, void *shared, rank_run *runs) {
  dist *comms[MAX_RANKS];
  crema_error err = {0};
  ck_assert_int_eq(dist_threads_create(size, comms, &err), CREMA_OK);
  for (int r = 0; r < size; r++) {
    runs[r] = (rank_run){.comm = comms[r], .body = body, .shared = shared};
    ck_assert_int_eq(pthread_create(&runs[r].thread, NULL, rank_main, &runs[r]), 0);
  }
  for (int r = 0; r < size; r++) {
    pthread_join(runs[r].thread, NULL);
    dist_free(runs[r].comm);
  }
}

/* ---- sums ---------------------------------------------------------------- */

enum { SUM_N = 1001 }; /* not a multiple of the rank counts */

typedef struct sum_case {
  float out[MAX_RANKS][SUM_N];
} sum_case;

static float contribution(int rank, size_t i) {
  return (float)(rank + 1) * 0.1f + (float)i * 1e-3f * (float)(rank % 2 ? -1 : 1);
}

static void sum_body(rank_run *r) {
  sum_case *c = r->shared;
  float *buf = c->out[r->comm->rank];
  for (size_t i = 0; i < SUM_N; i++)
    buf[i] = contribution(r->comm->rank, i);
  /* Twice, so the second sum reuses the scratch of the first. */
  r->status = dist_allreduce_sum(r->comm, buf, SUM_N, &r->err);
  if (r->status == CREMA_OK)
    r->status = dist_allreduce_sum(r->comm, buf, SUM_N / 2, &r->err);
}

static void check_sums(int size) {
  static sum_case c;
  rank_run runs[MAX_RANKS];
  run_ranks(size, sum_body, &c, runs);
  for (int r = 0; r < size; r++)
    ck_assert_msg(runs[r].status == CREMA_OK, "rank %d: %s", r, runs[r].err.message);
  for (size_t i = 0; i < SUM_N; i++) {
    float once = contribution(0, i);
    for (int r = 1; r < size; r++)
      once += contribution(r, i);
    /* The first half was summed twice: size copies of the first sum. */
    float want = once;
    if (i < SUM_N / 2) {
      want = once;
      for (int r = 1; r < size; r++)
        want += once;
    }
    for (int r = 0; r < size; r++)
      ck_assert_msg(memcmp(&c.out[r][i], &want, sizeof want) == 0,
                    "size %d rank %d element %zu: %.9g, expected %.9g", size, r, i,
                    (double)c.out[r][i], (double)want);
  }
}

START_TEST(sum_reaches_every_rank_bit_for_bit) {
  for (int size = 1; size <= MAX_RANKS; size++)
    check_sums(size);
}
END_TEST

/* ---- broadcasts ---------------------------------------------------------- */

typedef struct bcast_case {
  int values[MAX_RANKS][3];
} bcast_case;

static void bcast_body(rank_run *r) {
  bcast_case *c = r->shared;
  int *v = c->values[r->comm->rank];
  for (int k = 0; k < 3; k++)
    v[k] = 100 * r->comm->rank + k;
  r->status = dist_broadcast(r->comm, v, sizeof c->values[0], &r->err);
}

START_TEST(broadcast_copies_rank_0) {
  static bcast_case c;
  rank_run runs[MAX_RANKS];
  run_ranks(3, bcast_body, &c, runs);
  for (int r = 0; r < 3; r++) {
    ck_assert_msg(runs[r].status == CREMA_OK, "rank %d: %s", r, runs[r].err.message);
    for (int k = 0; k < 3; k++)
      ck_assert_int_eq(c.values[r][k], k);
  }
}
END_TEST

/* ---- failures ------------------------------------------------------------ */

/* Rank 1 fails before its first sum; the others are waiting in theirs (or
 * get there later) and must return its message instead of hanging. */
static void abort_body(rank_run *r) {
  float v[4] = {1, 2, 3, 4};
  if (r->comm->rank == 1) {
    dist_abort(r->comm, "layer 'data' (Data): database 'x' is corrupt");
    r->status = CREMA_ERR_IO;
    return;
  }
  r->status = dist_allreduce_sum(r->comm, v, 4, &r->err);
  if (r->status == CREMA_OK)
    r->status = dist_broadcast(r->comm, v, sizeof v, &r->err);
}

START_TEST(a_failing_rank_releases_the_others) {
  rank_run runs[MAX_RANKS];
  run_ranks(3, abort_body, NULL, runs);
  for (int r = 0; r < 3; r += 2) {
    ck_assert_int_ne(runs[r].status, CREMA_OK);
    ck_assert_msg(strstr(runs[r].err.message, "rank 1 failed: layer 'data' (Data): database") !=
                      NULL, "rank %d: %s", r, runs[r].err.message);
  }
}
END_TEST

START_TEST(bad_group_size_is_an_error) {
  dist *comms[1];
  crema_error err = {0};
  ck_assert_int_eq(dist_threads_create(0, comms, &err), CREMA_ERR_INVALID);
  ck_assert_ptr_nonnull(strstr(err.message, "at least one rank"));
}
END_TEST

START_TEST(launcher_environment) {
  unsetenv("OMPI_COMM_WORLD_SIZE");
  unsetenv("PMI_SIZE");
  unsetenv("PMIX_SIZE");
  ck_assert_int_eq(dist_launched_size(), 1);
  setenv("PMI_SIZE", "3", 1);
  ck_assert_int_eq(dist_launched_size(), 3);
  setenv("OMPI_COMM_WORLD_SIZE", "junk", 1);
  ck_assert_int_eq(dist_launched_size(), 3);
  setenv("OMPI_COMM_WORLD_SIZE", "2", 1);
  ck_assert_int_eq(dist_launched_size(), 2);
  unsetenv("OMPI_COMM_WORLD_SIZE");
  unsetenv("PMI_SIZE");
}
END_TEST

/* ---- the distributed solver ---------------------------------------------- */

/* The small classifier of the golden solver cases over their LMDB, with
 * momentum and weight decay (history that must travel on resume) and
 * fillers (rank 1's seed differs: rank 0's weights must reach it). */
static Caffe__SolverParameter *small_solver(const char *source, int batch, int iter_size,
                                            int max_iter, const char *snapshot_prefix) {
  char text[4096];
  snprintf(text, sizeof text,
           "net_param { name: 'small'\n"
           " layer { name: 'data' type: 'Data' top: 'data' top: 'label'\n"
           "   transform_param { scale: 0.00390625 }\n"
           "   data_param { source: '%s' batch_size: %d backend: LMDB } }\n"
           " layer { name: 'conv1' type: 'Convolution' bottom: 'data' top: 'conv1'\n"
           "   convolution_param { num_output: 4 kernel_size: 3 pad: 1\n"
           "     weight_filler { type: 'xavier' } bias_filler { type: 'constant' value: 0.1 } } }\n"
           " layer { name: 'relu1' type: 'ReLU' bottom: 'conv1' top: 'conv1' }\n"
           " layer { name: 'ip' type: 'InnerProduct' bottom: 'conv1' top: 'ip'\n"
           "   inner_product_param { num_output: 10 weight_filler { type: 'xavier' } } }\n"
           " layer { name: 'loss' type: 'SoftmaxWithLoss' bottom: 'ip' bottom: 'label'\n"
           "   top: 'loss' } }\n"
           "type: 'SGD' base_lr: 0.05 momentum: 0.9 weight_decay: 0.0005 lr_policy: 'fixed'\n"
           "iter_size: %d max_iter: %d display: 0 random_seed: 1 snapshot_after_train: false\n"
           "solver_mode: CPU %s%s%s",
           source, batch, iter_size, max_iter, snapshot_prefix ? "snapshot: 6 snapshot_prefix: '" : "",
           snapshot_prefix ? snapshot_prefix : "", snapshot_prefix ? "'" : "");
  ProtobufCMessage *m = NULL;
  crema_error err = {0};
  ck_assert_msg(txt_parse(text, strlen(text), "solver", &caffe__solver_parameter__descriptor, &m,
                          &err) == CREMA_OK, "%s", err.message);
  return (Caffe__SolverParameter *)m;
}

enum { RUN_ITERS = 9, MAX_WEIGHTS = 8192 };

static void remove_db(char *path);

/* The golden cases' 24-record database, copied file by file: LMDB writes a
 * lock file even to read, which must never land in the source tree. */
static char *copy_fixture_db(const char *dir) {
  char *src = test_data_path("golden/solvers/sgd_step_momentum/train_lmdb/data.mdb");
  char *dst = malloc(strlen(dir) + 32);
  ck_assert_ptr_nonnull(dst);
  sprintf(dst, "%s/fixture_lmdb", dir);
  ck_assert_int_eq(mkdir(dst, 0755), 0);
  char file[4096];
  snprintf(file, sizeof file, "%s/data.mdb", dst);
  FILE *in = fopen(src, "rb"), *out = fopen(file, "wb");
  ck_assert(in && out);
  char buf[8192];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, in)) > 0)
    ck_assert_uint_eq(fwrite(buf, 1, n, out), n);
  fclose(in);
  ck_assert_int_eq(fclose(out), 0);
  free(src);
  return dst;
}

/* Its first `records` records in dir/name. */
static char *copy_db(const char *dir, const char *name, int records) {
  char *src = copy_fixture_db(dir);
  char *dst = malloc(strlen(dir) + strlen(name) + 2);
  ck_assert_ptr_nonnull(dst);
  sprintf(dst, "%s/%s", dir, name);
  crema_error err = {0};
  lmdb_source *in = NULL;
  lmdb_writer *out = NULL;
  ck_assert_msg(lmdb_source_open(src, &in, &err) == CREMA_OK, "%s", err.message);
  ck_assert_msg(lmdb_writer_create(dst, &out, &err) == CREMA_OK, "%s", err.message);
  for (int i = 0; i < records; i++) {
    const void *key, *value;
    size_t klen, vlen;
    lmdb_source_key(in, &key, &klen);
    lmdb_source_value(in, &value, &vlen);
    ck_assert_msg(lmdb_writer_put(out, key, klen, value, vlen, &err) == CREMA_OK, "%s",
                  err.message);
    ck_assert_msg(lmdb_source_next(in, NULL, &err) == CREMA_OK, "%s", err.message);
  }
  ck_assert_msg(lmdb_writer_finish(out, &err) == CREMA_OK, "%s", err.message);
  lmdb_source_close(in);
  remove_db(src);
  return dst;
}

static void remove_db(char *path) {
  char file[4096];
  snprintf(file, sizeof file, "%s/data.mdb", path);
  remove(file);
  snprintf(file, sizeof file, "%s/lock.mdb", path);
  remove(file);
  ck_assert_int_eq(rmdir(path), 0);
  free(path);
}

/* What a run leaves: the loss of each iteration and the final weights. */
typedef struct run_result {
  float loss[RUN_ITERS];
  float weights[MAX_WEIGHTS];
  size_t nweights;
} run_result;

static void keep_weights(const solver *s, run_result *out) {
  out->nweights = 0;
  for (int i = 0; i < s->nparams; i++) {
    const blob *b = s->params[i].b;
    ck_assert_uint_le(out->nweights + b->count, MAX_WEIGHTS);
    memcpy(out->weights + out->nweights, b->data, b->count * sizeof(float));
    out->nweights += b->count;
  }
}

/* Steps one iteration at a time, keeping each (smoothed, average_loss 1)
 * loss from iteration `from` on. */
static crema_status step_all(solver *s, run_result *out, crema_error *err) {
  while (s->iter < s->param->max_iter) {
    const int it = s->iter;
    CREMA_TRY(solver_step(s, 1, err));
    out->loss[it] = s->smoothed_loss;
  }
  keep_weights(s, out);
  return CREMA_OK;
}

static void run_alone(const char *source, int batch, int iter_size, run_result *out) {
  crema_error err = {0};
  solver *s = NULL;
  ck_assert_msg(solver_create(small_solver(source, batch, iter_size, RUN_ITERS, NULL), &s,
                              &err) == CREMA_OK, "%s", err.message);
  ck_assert_msg(step_all(s, out, &err) == CREMA_OK, "%s", err.message);
  solver_free(s);
}

typedef struct dist_train {
  const char *source[MAX_RANKS];   /* per rank (a bad one makes it fail) */
  int batch;
  const char *prefix;              /* snapshots every 3 iterations, or NULL */
  const char *resume;              /* a .solverstate to start from, or NULL */
  run_result result[MAX_RANKS];
} dist_train;

/* One rank: build, (restore,) train; a failure is reported to the group as
 * crema train does. */
static void train_body(rank_run *r) {
  dist_train *t = r->shared;
  const int rank = r->comm->rank;
  solver *s = NULL;
  r->status = solver_create_dist(small_solver(t->source[rank], t->batch, 1, RUN_ITERS,
                                              t->prefix), r->comm, &s, &r->err);
  if (r->status == CREMA_OK && t->resume)
    r->status = solver_restore(s, t->resume, &r->err);
  if (r->status == CREMA_OK)
    r->status = step_all(s, &t->result[rank], &r->err);
  if (r->status != CREMA_OK)
    dist_abort(r->comm, r->err.message);
  solver_free(s);
}

static double rel_diff(const float *a, const float *b, size_t n) {
  double num = 0, den = 0;
  for (size_t i = 0; i < n; i++) {
    num = fmax(num, fabs((double)a[i] - b[i]));
    den = fmax(den, fabs((double)b[i]));
  }
  return den > 0 ? num / den : num;
}

static void check_same_run(const run_result *got, const run_result *want, int from,
                           const char *what) {
  for (int it = from; it < RUN_ITERS; it++)
    ck_assert_msg(fabs((double)got->loss[it] - want->loss[it]) <= 1e-5 * fabs(want->loss[it]),
                  "%s: iteration %d loss %.9g, expected %.9g", what, it, (double)got->loss[it],
                  (double)want->loss[it]);
  ck_assert_uint_eq(got->nweights, want->nweights);
  const double rel = rel_diff(got->weights, want->weights, want->nweights);
  ck_assert_msg(rel <= 1e-5, "%s: final weights differ by rel %g", what, rel);
}

static void run_ranks_checked(dist_train *t, int size) {
  rank_run runs[MAX_RANKS];
  run_ranks(size, train_body, t, runs);
  for (int r = 0; r < size; r++)
    ck_assert_msg(runs[r].status == CREMA_OK, "rank %d: %s", r, runs[r].err.message);
  for (int r = 1; r < size; r++) {
    ck_assert_uint_eq(t->result[r].nweights, t->result[0].nweights);
    ck_assert_msg(memcmp(t->result[r].weights, t->result[0].weights,
                         t->result[0].nweights * sizeof(float)) == 0,
                  "rank %d's weights differ from rank 0's", r);
  }
}

/* 23 records: the ranks' shards cross the end of the database at
 * different records, and must still make up one process's batches. */
START_TEST(two_ranks_train_as_one_process_with_twice_the_batch) {
  char dir[] = "/tmp/check_dist_XXXXXX";
  ck_assert_ptr_nonnull(mkdtemp(dir));
  char *source = copy_db(dir, "odd_lmdb", 23);
  static run_result big, accumulated;
  static dist_train t;
  run_alone(source, 4, 1, &big);
  run_alone(source, 2, 2, &accumulated);
  t = (dist_train){.source = {source, source}, .batch = 2};
  run_ranks_checked(&t, 2);
  check_same_run(&t.result[0], &big, 0, "2 ranks x 2 vs 1 x 4");
  check_same_run(&t.result[0], &accumulated, 0, "2 ranks x 2 vs 1 x 2 x iter_size 2");
  remove_db(source);
  ck_assert_int_eq(rmdir(dir), 0);
}
END_TEST

/* Resumed at iteration 6, where the 24 records start again (a resumed run
 * reads from the first record, as Caffe's). */
START_TEST(resume_under_two_ranks_continues_the_run) {
  char dir[] = "/tmp/check_dist_XXXXXX";
  ck_assert_ptr_nonnull(mkdtemp(dir));
  char *source = copy_db(dir, "train_lmdb", 24);
  char prefix[64], state[96];
  snprintf(prefix, sizeof prefix, "%s/snap", dir);
  snprintf(state, sizeof state, "%s_iter_6.solverstate", prefix);
  static dist_train whole, resumed;
  whole = (dist_train){.source = {source, source}, .batch = 2, .prefix = prefix};
  run_ranks_checked(&whole, 2);
  resumed = (dist_train){.source = {source, source}, .batch = 2, .resume = state};
  run_ranks_checked(&resumed, 2);
  check_same_run(&resumed.result[0], &whole.result[0], 6, "resumed at 6 vs uninterrupted");
  ck_assert_int_eq(memcmp(resumed.result[0].weights, whole.result[0].weights,
                          whole.result[0].nweights * sizeof(float)), 0);
  char path[128];
  snprintf(path, sizeof path, "%s_iter_6.caffemodel", prefix);
  ck_assert_int_eq(remove(path), 0);
  snprintf(path, sizeof path, "%s_iter_6.solverstate", prefix);
  ck_assert_int_eq(remove(path), 0);
  remove_db(source);
  ck_assert_int_eq(rmdir(dir), 0); /* rank 1 wrote nothing */
}
END_TEST

START_TEST(a_rank_that_cannot_build_fails_every_rank) {
  char dir[] = "/tmp/check_dist_XXXXXX";
  ck_assert_ptr_nonnull(mkdtemp(dir));
  char *source = copy_db(dir, "train_lmdb", 4);
  static dist_train t;
  t = (dist_train){.source = {source, "/nonexistent/train_lmdb"}, .batch = 2};
  rank_run runs[MAX_RANKS];
  run_ranks(2, train_body, &t, runs);
  ck_assert_int_ne(runs[1].status, CREMA_OK);
  ck_assert_msg(strstr(runs[1].err.message, "/nonexistent/train_lmdb") != NULL, "%s",
                runs[1].err.message);
  ck_assert_int_ne(runs[0].status, CREMA_OK);
  ck_assert_msg(strstr(runs[0].err.message, "rank 1 failed") != NULL, "%s",
                runs[0].err.message);
  remove_db(source);
  ck_assert_int_eq(rmdir(dir), 0);
}
END_TEST

static Suite *dist_suite(void) {
  Suite *s = suite_create("dist");
  TCase *tc = tcase_create("threads");
  tcase_add_test(tc, sum_reaches_every_rank_bit_for_bit);
  tcase_add_test(tc, broadcast_copies_rank_0);
  tcase_add_test(tc, a_failing_rank_releases_the_others);
  tcase_add_test(tc, bad_group_size_is_an_error);
  tcase_add_test(tc, launcher_environment);
  suite_add_tcase(s, tc);
  TCase *ts = tcase_create("solver");
  tcase_add_test(ts, two_ranks_train_as_one_process_with_twice_the_batch);
  tcase_add_test(ts, resume_under_two_ranks_continues_the_run);
  tcase_add_test(ts, a_rank_that_cannot_build_fails_every_rank);
  suite_add_tcase(s, ts);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(dist_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
