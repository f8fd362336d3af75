/* The cases of BVLC Caffe's own upgrade test suite (test_upgrade_proto.cpp):
 * the padding pass, V0 -> V1 and V1 -> V2 on their nets, every V1 layer type,
 * every legacy solver type; plus the full upgrade of the same nets as
 * upgrade_net_proto_text makes it.  The nets are in
 * tests/data/upgrade/caffe_suite as <case>.v0 (input), .pad (after the
 * padding pass), .v1, .v2 and .upgraded (after the full upgrade). */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "caffe.pb-c.h"
#include "io/pbutil.h"
#include "io/text.h"
#include "io/upgrade.h"
#include "tests/unit/testutil.h"

static Caffe__NetParameter *load(const char *name) {
  char *path = test_data_path("upgrade/caffe_suite/%s.prototxt", name);
  Caffe__NetParameter *net = test_parse_net_file(path);
  free(path);
  return net;
}

static void free_net(Caffe__NetParameter *net) {
  protobuf_c_message_free_unpacked(&net->base, NULL);
}

static void assert_equal_to(Caffe__NetParameter *got, const char *expected_name) {
  Caffe__NetParameter *want = load(expected_name);
  if (!pb_message_equal(&got->base, &want->base)) {
    char *text = NULL;
    crema_error err = {0};
    txt_print(&got->base, &text, NULL, &err);
    fprintf(stderr, "differs from %s:\n%s\n", expected_name, text ? text : "");
    free(text);
    ck_abort_msg("upgraded net differs from %s", expected_name);
  }
  free_net(want);
}

typedef crema_status (*net_pass)(Caffe__NetParameter *net, const char *path, crema_error *err);

static crema_status padding_pass(Caffe__NetParameter *net, const char *path, crema_error *err) {
  return upgrade_net_v0_padding(net, path, err);
}

static crema_status v0_pass(Caffe__NetParameter *net, const char *path, crema_error *err) {
  int compatible = 0;
  crema_status st = upgrade_net_v0_to_v1(net, path, CREMA_LOG_INFO, &compatible, err);
  ck_assert_int_eq(compatible, 1);
  return st;
}

static crema_status v1_pass(Caffe__NetParameter *net, const char *path, crema_error *err) {
  int compatible = 0;
  crema_status st = upgrade_net_v1_to_v2(net, path, CREMA_LOG_INFO, &compatible, err);
  ck_assert_int_eq(compatible, 1);
  return st;
}

static crema_status full_upgrade(Caffe__NetParameter *net, const char *path, crema_error *err) {
  return upgrade_net(net, path, CREMA_LOG_INFO, NULL, err);
}

/* Runs one pass on input and compares with expected; then, as Caffe's
 * padding test does, checks that running it again changes nothing. */
static void check_pass(net_pass pass, const char *input, const char *expected, int idempotent) {
  Caffe__NetParameter *net = load(input);
  crema_error err = {0};
  ck_assert_msg(pass(net, input, &err) == CREMA_OK, "%s", err.message);
  assert_equal_to(net, expected);
  if (idempotent) {
    ck_assert_msg(pass(net, input, &err) == CREMA_OK, "%s", err.message);
    assert_equal_to(net, expected);
  }
  free_net(net);
}

/* ---- PaddingLayerUpgradeTest ---- */

START_TEST(padding_simple) { check_pass(padding_pass, "simple.v0", "simple.pad", 1); }
END_TEST

START_TEST(padding_two_tops) { check_pass(padding_pass, "twotops.v0", "twotops.pad", 1); }
END_TEST

START_TEST(padding_imagenet) { check_pass(padding_pass, "imagenet.v0", "imagenet.pad", 1); }
END_TEST

/* ---- NetUpgradeTest ---- */

START_TEST(net_simple) {
  check_pass(v0_pass, "simple.v0", "simple.v1", 0);
  check_pass(v1_pass, "simple.v1", "simple.v2", 0);
  check_pass(full_upgrade, "simple.v0", "simple.v2", 1);
}
END_TEST

START_TEST(net_all_params) {
  check_pass(v0_pass, "allparams.v0", "allparams.v1", 0);
  check_pass(full_upgrade, "allparams.v0", "allparams.upgraded", 1);
}
END_TEST

START_TEST(net_imagenet) {
  check_pass(v0_pass, "imagenet.v0", "imagenet.v1", 0);
  check_pass(v1_pass, "imagenet.v1", "imagenet.v2", 0);
  check_pass(full_upgrade, "imagenet.v0", "imagenet.v2", 1);
  check_pass(full_upgrade, "imagenet.v1", "imagenet.v2", 1);
}
END_TEST

/* Caffe rebuilds a V0 net from its name, layers, inputs and force_backward:
 * anything else, current-format layers included, is dropped. */
START_TEST(net_v0_drops_other_fields) {
  static const char text[] =
      "name: 'n' force_backward: true debug_info: true state { phase: TEST }\n"
      "input: 'd' input_dim: 1 input_dim: 1 input_dim: 2 input_dim: 2\n"
      "input_shape { dim: 5 }\n"
      "layer { name: 'current' type: 'ReLU' }\n"
      "layers { layer { name: 'r' type: 'relu' } bottom: 'd' top: 'd' }\n";
  static const char expected[] =
      "name: 'n' force_backward: true\n"
      "input: 'd' input_dim: 1 input_dim: 1 input_dim: 2 input_dim: 2\n"
      "layers { name: 'r' type: RELU bottom: 'd' top: 'd' }\n";
  ProtobufCMessage *got = NULL, *want = NULL;
  crema_error err = {0};
  ck_assert(txt_parse(text, strlen(text), "inline", &caffe__net_parameter__descriptor, &got,
                      &err) == CREMA_OK);
  ck_assert(txt_parse(expected, strlen(expected), "inline", &caffe__net_parameter__descriptor,
                      &want, &err) == CREMA_OK);
  ck_assert_int_eq(v0_pass((Caffe__NetParameter *)got, "inline", &err), CREMA_OK);
  ck_assert(pb_message_equal(got, want));
  protobuf_c_message_free_unpacked(got, NULL);
  protobuf_c_message_free_unpacked(want, NULL);
}
END_TEST

/* Each V1 enum value names a V2 type; the layer V1 -> V2 makes carries it. */
static const struct {
  const char *v1;
  const char *v2;
} v1_types[] = {
    {"NONE", ""},
    {"ABSVAL", "AbsVal"},
    {"ACCURACY", "Accuracy"},
    {"ARGMAX", "ArgMax"},
    {"BNLL", "BNLL"},
    {"CONCAT", "Concat"},
    {"CONTRASTIVE_LOSS", "ContrastiveLoss"},
    {"CONVOLUTION", "Convolution"},
    {"DECONVOLUTION", "Deconvolution"},
    {"DATA", "Data"},
    {"DROPOUT", "Dropout"},
    {"DUMMY_DATA", "DummyData"},
    {"EUCLIDEAN_LOSS", "EuclideanLoss"},
    {"ELTWISE", "Eltwise"},
    {"EXP", "Exp"},
    {"FLATTEN", "Flatten"},
    {"HDF5_DATA", "HDF5Data"},
    {"HDF5_OUTPUT", "HDF5Output"},
    {"HINGE_LOSS", "HingeLoss"},
    {"IM2COL", "Im2col"},
    {"IMAGE_DATA", "ImageData"},
    {"INFOGAIN_LOSS", "InfogainLoss"},
    {"INNER_PRODUCT", "InnerProduct"},
    {"LRN", "LRN"},
    {"MEMORY_DATA", "MemoryData"},
    {"MULTINOMIAL_LOGISTIC_LOSS", "MultinomialLogisticLoss"},
    {"MVN", "MVN"},
    {"POOLING", "Pooling"},
    {"POWER", "Power"},
    {"RELU", "ReLU"},
    {"SIGMOID", "Sigmoid"},
    {"SIGMOID_CROSS_ENTROPY_LOSS", "SigmoidCrossEntropyLoss"},
    {"SILENCE", "Silence"},
    {"SOFTMAX", "Softmax"},
    {"SOFTMAX_LOSS", "SoftmaxWithLoss"},
    {"SPLIT", "Split"},
    {"SLICE", "Slice"},
    {"TANH", "TanH"},
    {"WINDOW_DATA", "WindowData"},
    {"THRESHOLD", "Threshold"},
};

START_TEST(net_every_v1_layer_type) {
  const ProtobufCEnumDescriptor *d = &caffe__v1_layer_parameter__layer_type__descriptor;
  size_t n_types = sizeof v1_types / sizeof v1_types[0];
  ck_assert_uint_eq(d->n_values, n_types);
  for (size_t i = 0; i < n_types; i++) {
    const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value_by_name(d, v1_types[i].v1);
    ck_assert_msg(v != NULL, "caffe.proto lacks V1 type %s", v1_types[i].v1);
    const char *name = upgrade_v1_type_name(v->value);
    ck_assert_msg(name && !strcmp(name, v1_types[i].v2), "%s -> '%s', expected '%s'",
                  v1_types[i].v1, name ? name : "(null)", v1_types[i].v2);
    char text[128];
    snprintf(text, sizeof text, "layers { name: 'l' type: %s }", v1_types[i].v1);
    ProtobufCMessage *msg = NULL;
    crema_error err = {0};
    ck_assert_msg(txt_parse(text, strlen(text), "inline", &caffe__net_parameter__descriptor, &msg,
                            &err) == CREMA_OK,
                  "%s", err.message);
    Caffe__NetParameter *net = (Caffe__NetParameter *)msg;
    ck_assert_int_eq(upgrade_net(net, "inline", CREMA_LOG_INFO, NULL, &err), CREMA_OK);
    ck_assert_uint_eq(net->n_layer, 1);
    ck_assert_str_eq(net->layer[0]->type, v1_types[i].v2);
    free_net(net);
  }
  ck_assert_ptr_null(upgrade_v1_type_name(4096));
}
END_TEST

/* ---- SolverTypeUpgradeTest ---- */

static Caffe__SolverParameter *parse_solver(const char *text) {
  ProtobufCMessage *msg = NULL;
  crema_error err = {0};
  ck_assert_msg(txt_parse(text, strlen(text), "inline", &caffe__solver_parameter__descriptor,
                          &msg, &err) == CREMA_OK,
                "%s", err.message);
  return (Caffe__SolverParameter *)msg;
}

START_TEST(solver_every_type) {
  static const char *const old_types[] = {"SGD", "ADAGRAD", "NESTEROV",
                                          "RMSPROP", "ADADELTA", "ADAM"};
  static const char *const new_types[] = {"SGD", "AdaGrad", "Nesterov",
                                          "RMSProp", "AdaDelta", "Adam"};
  static const char common[] =
      "net: 'examples/mnist/lenet_train_test.prototxt'\n"
      "weights: 'examples/mnist/lenet_train_test1.caffemodel'\n"
      "weights: 'examples/mnist/lenet_train_test2.caffemodel'\n"
      "test_iter: 100 test_interval: 500 base_lr: 0.01 momentum: 0.0\n"
      "weight_decay: 0.0005 lr_policy: 'inv' gamma: 0.0001 power: 0.75\n"
      "display: 100 max_iter: 10000 snapshot: 5000\n"
      "snapshot_prefix: 'examples/mnist/lenet_rmsprop' solver_mode: GPU\n";
  for (int i = 0; i < 6; i++) {
    char input[1024], expected[1024];
    snprintf(input, sizeof input, "%ssolver_type: %s\n", common, old_types[i]);
    snprintf(expected, sizeof expected, "%stype: '%s'\n", common, new_types[i]);
    Caffe__SolverParameter *got = parse_solver(input);
    Caffe__SolverParameter *want = parse_solver(expected);
    int upgraded = 0;
    crema_error err = {0};
    ck_assert_int_eq(upgrade_solver(got, "inline", CREMA_LOG_INFO, &upgraded, &err), CREMA_OK);
    ck_assert_int_eq(upgraded, 1);
    ck_assert_msg(pb_message_equal(&got->base, &want->base), "solver_type %s", old_types[i]);
    protobuf_c_message_free_unpacked(&got->base, NULL);
    protobuf_c_message_free_unpacked(&want->base, NULL);
  }
}
END_TEST

static Suite *caffe_upgrade_suite(void) {
  Suite *s = suite_create("caffe upgrade suite");
  TCase *padding = tcase_create("PaddingLayerUpgradeTest");
  tcase_add_test(padding, padding_simple);
  tcase_add_test(padding, padding_two_tops);
  tcase_add_test(padding, padding_imagenet);
  suite_add_tcase(s, padding);
  TCase *net = tcase_create("NetUpgradeTest");
  tcase_add_test(net, net_simple);
  tcase_add_test(net, net_all_params);
  tcase_add_test(net, net_imagenet);
  tcase_add_test(net, net_every_v1_layer_type);
  tcase_add_test(net, net_v0_drops_other_fields);
  suite_add_tcase(s, net);
  TCase *solver = tcase_create("SolverTypeUpgradeTest");
  tcase_add_test(solver, solver_every_type);
  suite_add_tcase(s, solver);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(caffe_upgrade_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
