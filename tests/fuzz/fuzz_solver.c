/* libFuzzer harness for solver prototxt: parse, the legacy upgrades
 * (solver_type enum to type), and the learning rate policy's checks and
 * rates, which training relies on never failing half way. */
#include "config.h"

#include "fuzz.h"

#include "caffe.pb-c.h"
#include "io/text.h"
#include "io/upgrade.h"
#include "solver/lr_policy.h"

static void rates(const Caffe__SolverParameter *p) {
  crema_error err;
  crema_status st = lr_policy_check(p, &err);
  fuzz_expect_message(st, &err);
  if (st != CREMA_OK)
    return;
  const int iters[] = {0, 1, 2, 3, 100, p->max_iter, 2147483647};
  int step = 0;
  for (size_t i = 0; i < sizeof iters / sizeof iters[0]; i++) {
    float rate;
    st = lr_policy_rate(p, iters[i], &step, CREMA_LOG_NONE, &rate, &err);
    fuzz_expect_message(st, &err);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *text = malloc(size ? size : 1); /* exact size: overreads are caught */
  if (!text)
    return 0;
  memcpy(text, data, size);
  crema_error err;
  ProtobufCMessage *m = NULL;
  crema_status st = txt_parse(text, size, "fuzz.prototxt", &caffe__solver_parameter__descriptor,
                              &m, &err);
  fuzz_expect_message(st, &err);
  if (st == CREMA_OK) {
    Caffe__SolverParameter *p = (Caffe__SolverParameter *)m;
    st = upgrade_solver(p, "fuzz.prototxt", CREMA_LOG_NONE, NULL, &err);
    fuzz_expect_message(st, &err);
    if (st == CREMA_OK)
      rates(p);
    protobuf_c_message_free_unpacked(m, NULL);
  }
  free(text);
  return 0;
}
