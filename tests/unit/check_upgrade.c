/* Caffe's legacy upgrades: V0 and V1 nets, data transformation fields, net
 * inputs, BatchNorm params and solver types, checked against expected
 * upgraded definitions (tests/data/upgrade, and the golden VGG-16 V1 files
 * with Caffe's own upgrade). */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "caffe.pb-c.h"
#include "io/binary.h"
#include "io/blobproto.h"
#include "io/pbutil.h"
#include "io/text.h"
#include "io/upgrade.h"
#include "tests/unit/testutil.h"

static Caffe__NetParameter *parse_net(const char *rel) {
  char *path = test_data_path("%s", rel);
  Caffe__NetParameter *net = test_parse_net_file(path);
  free(path);
  return net;
}

static Caffe__NetParameter *read_upgraded(const char *rel) {
  char *path = test_data_path("%s", rel);
  crema_error err = {0};
  Caffe__NetParameter *net = NULL;
  crema_status st = net_param_read(path, CREMA_LOG_INFO, &net, &err);
  ck_assert_msg(st == CREMA_OK, "%s", err.message);
  free(path);
  return net;
}

static void free_net(Caffe__NetParameter *net) {
  protobuf_c_message_free_unpacked(&net->base, NULL);
}

static void assert_same_net(Caffe__NetParameter *got, Caffe__NetParameter *want) {
  if (!pb_message_equal(&got->base, &want->base)) {
    char *text = NULL;
    crema_error err = {0};
    txt_print(&got->base, &text, NULL, &err);
    fprintf(stderr, "upgraded net differs from the expected one:\n%s\n", text ? text : "");
    free(text);
    ck_abort_msg("upgraded net differs from the expected one");
  }
}

static void check_upgrade_pair(const char *input, const char *expected) {
  Caffe__NetParameter *got = read_upgraded(input);
  Caffe__NetParameter *want = parse_net(expected);
  assert_same_net(got, want);
  /* A second pass changes nothing.  (It may still report work: like Caffe,
   * a BatchNorm layer with three param specs always gets them frozen.) */
  crema_error err = {0};
  ck_assert_int_eq(upgrade_net(got, input, CREMA_LOG_INFO, NULL, &err), CREMA_OK);
  assert_same_net(got, want);
  free_net(got);
  free_net(want);
}

static void check_upgrade_fails(const char *input, const char *needle) {
  char *path = test_data_path("%s", input);
  crema_error err = {0};
  Caffe__NetParameter *net = (Caffe__NetParameter *)1;
  crema_status st = net_param_read(path, CREMA_LOG_INFO, &net, &err);
  ck_assert_int_ne(st, CREMA_OK);
  ck_assert_ptr_null(net);
  ck_assert_msg(strstr(err.message, needle) != NULL, "message '%s' lacks '%s'", err.message,
                needle);
  ck_assert_msg(strstr(err.message, input) != NULL, "message '%s' does not name the file",
                err.message);
  free(path);
}

START_TEST(vgg16_v1_prototxt_matches_caffe) {
  check_upgrade_pair("nets/vgg16_w8_v1/net.prototxt", "nets/vgg16_w8_v1/upgraded.prototxt");
}
END_TEST

START_TEST(v0_padding_layers_fold_into_conv_and_pool) {
  check_upgrade_pair("upgrade/v0_padding.prototxt", "upgrade/v0_padding.expected.prototxt");
}
END_TEST

START_TEST(v0_inputs_window_and_image_settings) {
  check_upgrade_pair("upgrade/v0_inputs.prototxt", "upgrade/v0_inputs.expected.prototxt");
}
END_TEST

START_TEST(v1_param_specs_and_transformation_fields) {
  check_upgrade_pair("upgrade/v1_fields.prototxt", "upgrade/v1_fields.expected.prototxt");
}
END_TEST

START_TEST(input_shape_and_batch_norm) {
  check_upgrade_pair("upgrade/batchnorm_input.prototxt",
                     "upgrade/batchnorm_input.expected.prototxt");
}
END_TEST

START_TEST(current_net_is_left_alone) {
  Caffe__NetParameter *net = parse_net("nets/vgg16_w8_v1/upgraded.prototxt");
  Caffe__NetParameter *copy = (Caffe__NetParameter *)pb_message_clone(&net->base, NULL);
  ck_assert_ptr_nonnull(copy);
  int upgraded = -1;
  crema_error err = {0};
  ck_assert_int_eq(upgrade_net(net, "upgraded.prototxt", CREMA_LOG_INFO, &upgraded, &err),
                   CREMA_OK);
  ck_assert_int_eq(upgraded, 0);
  ck_assert(pb_message_equal(&net->base, &copy->base));
  free_net(net);
  free_net(copy);
}
END_TEST

START_TEST(unknown_v0_type_is_an_error) {
  check_upgrade_fails("upgrade/v0_bad_type.prototxt", "unknown layer type 'warp_drive'");
}
END_TEST

START_TEST(padding_into_relu_is_an_error) {
  check_upgrade_fails("upgrade/v0_bad_padding.prototxt", "'relu1'");
}
END_TEST

START_TEST(layer_and_layers_together_is_an_error) {
  check_upgrade_fails("upgrade/mixed_layers.prototxt", "both 'layer'");
}
END_TEST

/* Builds nets in memory for the cases no file needs to show. */
static Caffe__NetParameter *parse_string(const char *text) {
  crema_error err = {0};
  ProtobufCMessage *msg = NULL;
  crema_status st =
      txt_parse(text, strlen(text), "inline", &caffe__net_parameter__descriptor, &msg, &err);
  ck_assert_msg(st == CREMA_OK, "%s", err.message);
  return (Caffe__NetParameter *)msg;
}

START_TEST(inputs_without_shapes_are_dropped) {
  Caffe__NetParameter *net =
      parse_string("input: 'data' layer { name: 'r' type: 'ReLU' bottom: 'data' top: 'r' }");
  crema_error err = {0};
  int upgraded = 0;
  ck_assert_int_eq(upgrade_net(net, "inline", CREMA_LOG_INFO, &upgraded, &err), CREMA_OK);
  ck_assert_int_eq(upgraded, 1);
  ck_assert_uint_eq(net->n_input, 0);
  ck_assert_uint_eq(net->n_layer, 1);
  ck_assert_str_eq(net->layer[0]->name, "r");
  free_net(net);
}
END_TEST

START_TEST(too_few_input_dims_is_an_error) {
  Caffe__NetParameter *net =
      parse_string("input: 'a' input: 'b' input_dim: 1 input_dim: 2 input_dim: 3 input_dim: 4");
  crema_error err = {0};
  ck_assert_int_eq(upgrade_net(net, "inline", CREMA_LOG_INFO, NULL, &err), CREMA_ERR_INVALID);
  ck_assert_msg(strstr(err.message, "input_dim") != NULL, "%s", err.message);
  free_net(net);
}
END_TEST

START_TEST(v0_unknown_bottom_is_an_error) {
  Caffe__NetParameter *net =
      parse_string("layers { layer { name: 'r' type: 'relu' } bottom: 'nowhere' top: 'r' }");
  crema_error err = {0};
  ck_assert_int_eq(upgrade_net(net, "inline", CREMA_LOG_INFO, NULL, &err), CREMA_ERR_INVALID);
  ck_assert_msg(strstr(err.message, "'nowhere'") != NULL, "%s", err.message);
  free_net(net);
}
END_TEST

START_TEST(v0_misplaced_setting_is_reported_not_fatal) {
  /* Caffe logs "Unknown parameter num_output for layer type relu" and goes
   * on without the setting. */
  Caffe__NetParameter *net = parse_string(
      "input: 'x' input_dim: 1 input_dim: 1 input_dim: 1 input_dim: 1 "
      "layers { layer { name: 'r' type: 'relu' num_output: 3 } bottom: 'x' top: 'x' }");
  crema_error err = {0};
  ck_assert_int_eq(upgrade_net(net, "inline", CREMA_LOG_INFO, NULL, &err), CREMA_OK);
  ck_assert_uint_eq(net->n_layer, 2);
  ck_assert_str_eq(net->layer[1]->type, "ReLU");
  ck_assert_ptr_null(net->layer[1]->convolution_param);
  free_net(net);
}
END_TEST

/* The notices and the misplaced setting's report follow the caller's log
 * level: at CREMA_LOG_NONE nothing reaches stderr. */
START_TEST(upgrade_logs_under_the_callers_level) {
  Caffe__NetParameter *net = parse_string(
      "input: 'x' input_dim: 1 input_dim: 1 input_dim: 1 input_dim: 1 "
      "layers { layer { name: 'r' type: 'relu' num_output: 3 } bottom: 'x' top: 'x' }");
  FILE *log = tmpfile();
  ck_assert_ptr_nonnull(log);
  fflush(stderr);
  const int saved = dup(STDERR_FILENO);
  ck_assert_int_ge(dup2(fileno(log), STDERR_FILENO), 0);
  crema_error err = {0};
  crema_status st = upgrade_net(net, "inline", CREMA_LOG_NONE, NULL, &err);
  fflush(stderr);
  dup2(saved, STDERR_FILENO);
  close(saved);
  ck_assert_int_eq(st, CREMA_OK);
  ck_assert_int_eq(fseek(log, 0, SEEK_END), 0);
  ck_assert_int_eq(ftell(log), 0);
  fclose(log);
  free_net(net);
}
END_TEST

START_TEST(v1_none_type_becomes_empty_string) {
  Caffe__NetParameter *net = parse_string("layers { name: 'n' type: NONE }");
  crema_error err = {0};
  ck_assert_int_eq(upgrade_net(net, "inline", CREMA_LOG_INFO, NULL, &err), CREMA_OK);
  ck_assert_uint_eq(net->n_layer, 1);
  ck_assert_str_eq(net->layer[0]->type, "");
  free_net(net);
}
END_TEST

/* ---- binary models ---- */

static void assert_legacy_dims(const Caffe__BlobProto *bp, int n, int c, int h, int w) {
  int axes, dims[BLOB_MAX_AXES];
  crema_error err = {0};
  ck_assert_int_eq(blobproto_shape(bp, &axes, dims, &err), CREMA_OK);
  ck_assert_int_eq(axes, 4);
  ck_assert_msg(dims[0] == n && dims[1] == c && dims[2] == h && dims[3] == w,
                "blob is %dx%dx%dx%d, expected %dx%dx%dx%d", dims[0], dims[1], dims[2], dims[3],
                n, c, h, w);
  ck_assert_uint_eq(bp->n_data, (size_t)n * c * h * w);
}

static const Caffe__LayerParameter *find_layer(const Caffe__NetParameter *net, const char *name) {
  for (size_t i = 0; i < net->n_layer; i++)
    if (net->layer[i]->name && !strcmp(net->layer[i]->name, name))
      return net->layer[i];
  ck_abort_msg("no layer '%s'", name);
  return NULL;
}

START_TEST(vgg16_v1_caffemodel_upgrades) {
  Caffe__NetParameter *model = read_upgraded("nets/vgg16_w8_v1/legacy_v1.caffemodel");
  Caffe__NetParameter *def = parse_net("nets/vgg16_w8_v1/upgraded.prototxt");
  ck_assert_uint_eq(model->n_layers, 0);
  /* Same layers as the upgraded definition, minus its Input layer. */
  ck_assert_uint_eq(model->n_layer + 1, def->n_layer);
  for (size_t i = 0; i < model->n_layer; i++) {
    ck_assert_str_eq(model->layer[i]->name, def->layer[i + 1]->name);
    ck_assert_str_eq(model->layer[i]->type, def->layer[i + 1]->type);
  }
  /* Every convolution's weights are num_output x in x 3 x 3; the input
   * channels follow the previous convolution. */
  int channels = 3;
  for (size_t i = 1; i < def->n_layer; i++) {
    const Caffe__LayerParameter *d = def->layer[i];
    if (strcmp(d->type, "Convolution"))
      continue;
    const Caffe__LayerParameter *m = find_layer(model, d->name);
    int out = (int)d->convolution_param->num_output;
    ck_assert_uint_eq(m->n_blobs, 2);
    assert_legacy_dims(m->blobs[0], out, channels, 3, 3);
    assert_legacy_dims(m->blobs[1], 1, 1, 1, out);
    channels = out;
  }
  assert_legacy_dims(find_layer(model, "conv1_1")->blobs[0], 8, 3, 3, 3);
  /* fc weights keep the published files' 1 x 1 x OUT x IN layout. */
  assert_legacy_dims(find_layer(model, "fc6")->blobs[0], 1, 1, 512, 64 * 2 * 2);
  assert_legacy_dims(find_layer(model, "fc7")->blobs[0], 1, 1, 512, 512);
  assert_legacy_dims(find_layer(model, "fc8")->blobs[0], 1, 1, 1000, 512);
  assert_legacy_dims(find_layer(model, "fc8")->blobs[1], 1, 1, 1, 1000);
  free_net(model);
  free_net(def);
}
END_TEST

START_TEST(lenet_caffemodel_loads) {
  Caffe__NetParameter *model = read_upgraded("nets/lenet_real/lenet_iter_10000.caffemodel");
  ck_assert_str_eq(model->name, "LeNet");
  const Caffe__LayerParameter *conv1 = find_layer(model, "conv1");
  ck_assert_uint_eq(conv1->n_blobs, 2);
  int axes, dims[BLOB_MAX_AXES];
  crema_error err = {0};
  ck_assert_int_eq(blobproto_shape(conv1->blobs[0], &axes, dims, &err), CREMA_OK);
  ck_assert_int_eq(axes, 4);
  ck_assert_int_eq(dims[0], 20);
  ck_assert_int_eq(dims[1], 1);
  ck_assert_int_eq(dims[2], 5);
  ck_assert_int_eq(dims[3], 5);
  const Caffe__LayerParameter *ip2 = find_layer(model, "ip2");
  ck_assert_int_eq(blobproto_shape(ip2->blobs[0], &axes, dims, &err), CREMA_OK);
  ck_assert_int_eq(axes, 2);
  ck_assert_int_eq(dims[0], 10);
  ck_assert_int_eq(dims[1], 500);
  free_net(model);
}
END_TEST

/* ---- solvers ---- */

static Caffe__SolverParameter *read_solver(const char *rel, crema_status want, const char *needle) {
  char *path = test_data_path("%s", rel);
  crema_error err = {0};
  Caffe__SolverParameter *s = NULL;
  crema_status st = solver_param_read_text(path, CREMA_LOG_INFO, &s, &err);
  ck_assert_msg(st == want, "status %d (%s), expected %d", st, err.message, want);
  if (needle)
    ck_assert_msg(strstr(err.message, needle) != NULL, "%s", err.message);
  free(path);
  return s;
}

START_TEST(solver_type_enum_becomes_string) {
  Caffe__SolverParameter *s =
      read_solver("solvers/legacy_solver_type_enum/solver.prototxt", CREMA_OK, NULL);
  ck_assert_str_eq(s->type, "Nesterov");
  ck_assert(!s->has_solver_type);
  protobuf_c_message_free_unpacked(&s->base, NULL);
}
END_TEST

START_TEST(solver_with_both_types_is_an_error) {
  Caffe__SolverParameter *s =
      read_solver("upgrade/solver_both_types.prototxt", CREMA_ERR_INVALID, "both");
  ck_assert_ptr_null(s);
}
END_TEST

START_TEST(every_solver_type_maps) {
  static const char *names[] = {"SGD", "Nesterov", "AdaGrad", "RMSProp", "AdaDelta", "Adam"};
  for (int t = 0; t < 6; t++) {
    Caffe__SolverParameter s;
    caffe__solver_parameter__init(&s);
    s.has_solver_type = 1;
    s.solver_type = (Caffe__SolverParameter__SolverType)t;
    int upgraded = 0;
    crema_error err = {0};
    ck_assert_int_eq(upgrade_solver(&s, "inline", CREMA_LOG_INFO, &upgraded, &err), CREMA_OK);
    ck_assert_int_eq(upgraded, 1);
    ck_assert_str_eq(s.type, names[t]);
    free(s.type);
  }
}
END_TEST

static Suite *upgrade_suite(void) {
  Suite *s = suite_create("upgrade");
  TCase *tc = tcase_create("nets");
  tcase_add_test(tc, vgg16_v1_prototxt_matches_caffe);
  tcase_add_test(tc, v0_padding_layers_fold_into_conv_and_pool);
  tcase_add_test(tc, v0_inputs_window_and_image_settings);
  tcase_add_test(tc, v1_param_specs_and_transformation_fields);
  tcase_add_test(tc, input_shape_and_batch_norm);
  tcase_add_test(tc, current_net_is_left_alone);
  tcase_add_test(tc, unknown_v0_type_is_an_error);
  tcase_add_test(tc, padding_into_relu_is_an_error);
  tcase_add_test(tc, layer_and_layers_together_is_an_error);
  tcase_add_test(tc, inputs_without_shapes_are_dropped);
  tcase_add_test(tc, too_few_input_dims_is_an_error);
  tcase_add_test(tc, v0_unknown_bottom_is_an_error);
  tcase_add_test(tc, v0_misplaced_setting_is_reported_not_fatal);
  tcase_add_test(tc, upgrade_logs_under_the_callers_level);
  tcase_add_test(tc, v1_none_type_becomes_empty_string);
  suite_add_tcase(s, tc);
  TCase *models = tcase_create("models");
  tcase_add_test(models, vgg16_v1_caffemodel_upgrades);
  tcase_add_test(models, lenet_caffemodel_loads);
  suite_add_tcase(s, models);
  TCase *solvers = tcase_create("solvers");
  tcase_add_test(solvers, solver_type_enum_becomes_string);
  tcase_add_test(solvers, solver_with_both_types_is_an_error);
  tcase_add_test(solvers, every_solver_type_maps);
  suite_add_tcase(s, solvers);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(upgrade_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
