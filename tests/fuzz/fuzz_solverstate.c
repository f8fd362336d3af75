/* libFuzzer harness for .solverstate files: read, find the learned net, and
 * copy the history into the blobs a small solver keeps (2x3 and 3), as a
 * resume does. */
#include "config.h"

#include "fuzz.h"

#include "core/blob.h"
#include "solver/state.h"

static void copy_history(const Caffe__SolverState *st, const char *path) {
  crema_error err;
  blob *h[2] = {blob_create("h0", &err), blob_create("h1", &err)};
  const int s0[2] = {2, 3}, s1[1] = {3};
  if (h[0] && h[1] && blob_reshape(h[0], 2, s0, &err) == CREMA_OK &&
      blob_reshape(h[1], 1, s1, &err) == CREMA_OK) {
    crema_status s = solver_state_copy_history(st, path, h, 2, &err);
    fuzz_expect_message(s, &err);
  }
  blob_free(h[0]);
  blob_free(h[1]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *path = fuzz_write_file(data, size, ".solverstate");
  crema_error err;
  Caffe__SolverState *st = NULL;
  crema_status s = solver_state_read(path, &st, &err);
  fuzz_expect_message(s, &err);
  if (s != CREMA_OK)
    return 0;
  char *net = solver_state_learned_net_path(st, path, &err);
  if (!net)
    fuzz_expect_message(CREMA_ERR_INVALID, &err);
  free(net);
  copy_history(st, path);
  protobuf_c_message_free_unpacked(&st->base, NULL);
  return 0;
}
