/* SolverState files (round trip, learned_net lookup, atomic writes under
 * SIGKILL) and the SIGINT/SIGHUP guard. */
#include "config.h"

#include <check.h>
#include <dirent.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "solver/signals.h"
#include "solver/state.h"

static void fmt(char *out, size_t size, const char *f, ...) {
  va_list ap;
  va_start(ap, f);
  int n = vsnprintf(out, size, f, ap);
  va_end(ap);
  ck_assert(n >= 0 && (size_t)n < size);
}

static void make_tmpdir(char *out, size_t size) {
  fmt(out, size, "%s/crema-state-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
  ck_assert_ptr_nonnull(mkdtemp(out));
}

static void remove_dir(const char *dir) {
  DIR *d = opendir(dir);
  if (!d)
    return;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.' && (!e->d_name[1] || (e->d_name[1] == '.' && !e->d_name[2])))
      continue;
    char p[4096];
    fmt(p, sizeof p, "%s/%s", dir, e->d_name);
    unlink(p);
  }
  closedir(d);
  rmdir(dir);
}

static blob *make_blob(int n0, int n1, float start) {
  crema_error err = {0};
  blob *b = blob_create(NULL, &err);
  ck_assert_ptr_nonnull(b);
  b->wants_diff = 0;
  int shape[] = {n0, n1};
  ck_assert_int_eq(blob_reshape(b, n1 ? 2 : 1, shape, &err), CREMA_OK);
  for (size_t i = 0; i < b->count; i++)
    b->data[i] = start + (float)i;
  return b;
}

START_TEST(state_round_trips) {
  char dir[4096], path[4096];
  make_tmpdir(dir, sizeof dir);
  fmt(path, sizeof path, "%s/snap_iter_6.solverstate", dir);
  blob *h[2] = {make_blob(2, 3, 1), make_blob(4, 0, -5)};
  crema_error err = {0};
  ck_assert_msg(solver_state_write(path, 6, "snap_iter_6.caffemodel", 1, h, 2, &err) == CREMA_OK,
                "%s", err.message);
  Caffe__SolverState *st = NULL;
  ck_assert_int_eq(solver_state_read(path, &st, &err), CREMA_OK);
  ck_assert(st->has_iter && st->iter == 6);
  ck_assert(st->has_current_step && st->current_step == 1);
  ck_assert_str_eq(st->learned_net, "snap_iter_6.caffemodel");
  ck_assert_uint_eq(st->n_history, 2);
  ck_assert_uint_eq(st->history[1]->n_data, 4);
  ck_assert_uint_eq(st->history[0]->n_diff, 0);

  blob *back[2] = {make_blob(2, 3, 0), make_blob(4, 0, 0)};
  ck_assert_int_eq(solver_state_copy_history(st, path, back, 2, &err), CREMA_OK);
  for (int k = 0; k < 2; k++)
    for (size_t i = 0; i < h[k]->count; i++)
      ck_assert_float_eq(back[k]->data[i], h[k]->data[i]);

  /* Another solver type (one history set) or another net: clear errors. */
  ck_assert_int_eq(solver_state_copy_history(st, path, back, 1, &err), CREMA_ERR_SHAPE);
  ck_assert_ptr_nonnull(strstr(err.message, "2 history blobs"));
  blob *wrong[2] = {make_blob(3, 2, 0), back[1]};
  ck_assert_int_eq(solver_state_copy_history(st, path, wrong, 2, &err), CREMA_ERR_SHAPE);
  ck_assert_ptr_nonnull(strstr(err.message, "history blob 0"));
  blob_free(wrong[0]);

  protobuf_c_message_free_unpacked(&st->base, NULL);
  for (int k = 0; k < 2; k++) {
    blob_free(h[k]);
    blob_free(back[k]);
  }
  remove_dir(dir);
}
END_TEST

START_TEST(corrupt_state_is_an_error) {
  char dir[4096], path[4096];
  make_tmpdir(dir, sizeof dir);
  fmt(path, sizeof path, "%s/bad.solverstate", dir);
  FILE *f = fopen(path, "wb");
  fputs("\x1a\xff\xff\xff\x0f garbage", f);
  fclose(f);
  crema_error err = {0};
  Caffe__SolverState *st = NULL;
  ck_assert_int_ne(solver_state_read(path, &st, &err), CREMA_OK);
  ck_assert_ptr_nonnull(strstr(err.message, "bad.solverstate"));
  ck_assert_int_ne(solver_state_read("/nonexistent/x.solverstate", &st, &err), CREMA_OK);
  remove_dir(dir);
}
END_TEST

START_TEST(learned_net_is_found_next_to_the_state) {
  char dir[4096], state_path[4096], cwd[4096];
  make_tmpdir(dir, sizeof dir);
  ck_assert_ptr_nonnull(getcwd(cwd, sizeof cwd));
  fmt(state_path, sizeof state_path, "%s/snap_iter_6.solverstate", dir);
  Caffe__SolverState st;
  caffe__solver_state__init(&st);
  st.learned_net = (char *)"crema_no_such_model_here.caffemodel";
  crema_error err = {0};
  char *p = solver_state_learned_net_path(&st, state_path, &err);
  char want[4096];
  fmt(want, sizeof want, "%s/crema_no_such_model_here.caffemodel", dir);
  ck_assert_str_eq(p, want);
  free(p);
  /* A name that exists from the working directory is used as stored. */
  ck_assert_int_eq(chdir(dir), 0);
  FILE *f = fopen("crema_no_such_model_here.caffemodel", "wb");
  fclose(f);
  p = solver_state_learned_net_path(&st, "/elsewhere/x.solverstate", &err);
  ck_assert_str_eq(p, "crema_no_such_model_here.caffemodel");
  free(p);
  /* A state given without a directory: the name as stored. */
  p = solver_state_learned_net_path(&st, "x.solverstate", &err);
  ck_assert_str_eq(p, "crema_no_such_model_here.caffemodel");
  free(p);
  ck_assert_int_eq(chdir(cwd), 0);
  remove_dir(dir);
}
END_TEST

/* Writes a large state to path over and over until killed. */
static void write_forever(const char *path, blob **h, int n) {
  crema_error err = {0};
  for (int i = 0;; i++)
    if (solver_state_write(path, i, "big.caffemodel", 0, h, n, &err) != CREMA_OK)
      _exit(3);
}

/* The final name is absent or holds a whole, readable state. */
static void check_absent_or_complete(const char *path, size_t count) {
  struct stat sb;
  if (stat(path, &sb) != 0)
    return;
  crema_error err = {0};
  Caffe__SolverState *st = NULL;
  ck_assert_msg(solver_state_read(path, &st, &err) == CREMA_OK, "truncated snapshot: %s",
                err.message);
  ck_assert_uint_eq(st->n_history, 1);
  ck_assert_uint_eq(st->history[0]->n_data, count);
  protobuf_c_message_free_unpacked(&st->base, NULL);
}

START_TEST(sigkill_never_leaves_a_truncated_snapshot) {
  char dir[4096], path[4096];
  make_tmpdir(dir, sizeof dir);
  fmt(path, sizeof path, "%s/snap_iter_1.solverstate", dir);
  blob *h[1] = {make_blob(1024, 4096, 0)}; /* 16 MiB of history */
  const int delays_ms[] = {1, 5, 20, 60, 150, 300};
  for (size_t k = 0; k < sizeof delays_ms / sizeof delays_ms[0]; k++) {
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0)
      write_forever(path, h, 1);
    struct timespec ts = {0, delays_ms[k] * 1000000L};
    nanosleep(&ts, NULL);
    ck_assert_int_eq(kill(pid, SIGKILL), 0);
    int status = 0;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFSIGNALED(status), "the writer stopped by itself (status %d)", status);
    check_absent_or_complete(path, h[0]->count);
  }
  blob_free(h[0]);
  remove_dir(dir);
}
END_TEST

START_TEST(signals_map_to_actions) {
  crema_error err = {0};
  solver_action a;
  ck_assert_int_eq(solver_action_parse("snapshot", &a, &err), CREMA_OK);
  ck_assert_int_eq(a, SOLVER_ACTION_SNAPSHOT);
  ck_assert_int_eq(solver_action_parse("stop", &a, &err), CREMA_OK);
  ck_assert_int_eq(a, SOLVER_ACTION_STOP);
  ck_assert_int_eq(solver_action_parse("none", &a, &err), CREMA_OK);
  ck_assert_int_eq(a, SOLVER_ACTION_NONE);
  ck_assert_int_eq(solver_action_parse("pause", &a, &err), CREMA_ERR_INVALID);
  ck_assert_ptr_nonnull(strstr(err.message, "pause"));

  struct sigaction before;
  sigaction(SIGINT, NULL, &before);
  signal_guard g;
  ck_assert_int_eq(signal_guard_install(&g, SOLVER_ACTION_STOP, SOLVER_ACTION_SNAPSHOT, &err),
                   CREMA_OK);
  ck_assert_int_eq(signal_guard_poll(&g), SOLVER_ACTION_NONE);
  raise(SIGHUP);
  ck_assert_int_eq(signal_guard_poll(&g), SOLVER_ACTION_SNAPSHOT);
  ck_assert_int_eq(signal_guard_poll(&g), SOLVER_ACTION_NONE);
  raise(SIGINT);
  ck_assert_int_eq(signal_guard_poll(&g), SOLVER_ACTION_STOP);
  /* Both pending: SIGHUP is reported first, as Caffe. */
  raise(SIGINT);
  raise(SIGHUP);
  ck_assert_int_eq(signal_guard_poll(&g), SOLVER_ACTION_SNAPSHOT);
  ck_assert_int_eq(signal_guard_poll(&g), SOLVER_ACTION_STOP);
  signal_guard_remove(&g);
  struct sigaction now;
  sigaction(SIGINT, NULL, &now);
  ck_assert_ptr_eq((void *)now.sa_handler, (void *)before.sa_handler);
}
END_TEST

static Suite *state_suite(void) {
  Suite *s = suite_create("solver_state");
  TCase *tc = tcase_create("state");
  tcase_add_test(tc, state_round_trips);
  tcase_add_test(tc, corrupt_state_is_an_error);
  tcase_add_test(tc, learned_net_is_found_next_to_the_state);
  tcase_add_test(tc, sigkill_never_leaves_a_truncated_snapshot);
  tcase_add_test(tc, signals_map_to_actions);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(state_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
