/* The network: FilterNet rules, in-place tops, split insertion, the
 * need-backward analysis, loss weights, shared parameters, weights loading
 * and saving, reshape, the inference memory plan, the public API, and
 * errors on bad inputs. */
#include "config.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "caffe.pb-c.h"
#include "core/memcap.h"
#include "crema.h"
#include "graph/api.h"
#include "graph/net.h"
#include "graph/weights.h"
#include "io/blobproto.h"
#include "io/text.h"
#include "io/upgrade.h"
#include "layers/conv.h"
#include "tests/unit/testutil.h"

/* Builds a net from text; returns the status and leaves the message in err. */
static crema_status build(const char *text, Caffe__Phase phase, int backward, net **out,
                          crema_error *err) {
  Caffe__NetParameter *p = test_parse_net_text(text);
  net_options o;
  net_options_init(&o, phase);
  o.backward = backward;
  crema_status st = net_create(p, &o, out, err);
  protobuf_c_message_free_unpacked(&p->base, NULL);
  return st;
}

static net *build_ok(const char *text, Caffe__Phase phase, int backward) {
  net *n = NULL;
  crema_error err = {0};
  crema_status st = build(text, phase, backward, &n, &err);
  ck_assert_msg(st == CREMA_OK, "net_create: %s", err.message);
  return n;
}

static void expect_error(const char *text, Caffe__Phase phase, crema_status want,
                         const char *needle) {
  net *n = NULL;
  crema_error err = {0};
  crema_status st = build(text, phase, 0, &n, &err);
  ck_assert_msg(st == want, "status %d (%s), expected %d", st, err.message, want);
  ck_assert_ptr_null(n);
  ck_assert_msg(strstr(err.message, needle), "message '%s' lacks '%s'", err.message, needle);
}

static void fill(blob *b, float start, float step) {
  for (size_t k = 0; k < b->count; k++)
    b->data[k] = start + step * (float)k;
}

#define INPUT_2x3 "layer { name: 'data' type: 'Input' top: 'data' " \
                  "input_param { shape { dim: 2 dim: 3 } } }\n"

/* ---- FilterNet ---------------------------------------------------------- */

static const char *filter_net =
    INPUT_2x3
    "layer { name: 'r_train' type: 'ReLU' bottom: 'data' top: 'a' include { phase: TRAIN } }\n"
    "layer { name: 'r_test' type: 'ReLU' bottom: 'data' top: 'a' include { phase: TEST } }\n"
    "layer { name: 'r_deploy' type: 'ReLU' bottom: 'a' top: 'b' include { stage: 'deploy' } }\n"
    "layer { name: 'r_other' type: 'ReLU' bottom: 'a' top: 'b' "
    "  include { not_stage: 'deploy' } }\n"
    "layer { name: 'r_high' type: 'ReLU' bottom: 'b' top: 'c' include { min_level: 2 } }\n"
    "layer { name: 'r_low' type: 'ReLU' bottom: 'b' top: 'c' exclude { min_level: 2 } }\n";

static net *build_state(Caffe__Phase phase, int level, const char *stage) {
  Caffe__NetParameter *p = test_parse_net_text(filter_net);
  net_options o;
  net_options_init(&o, phase);
  o.has_level = 1;
  o.level = level;
  const char *stages[1] = {stage};
  if (stage) {
    o.stages = stages;
    o.nstages = 1;
  }
  net *n = NULL;
  crema_error err = {0};
  ck_assert_msg(net_create(p, &o, &n, &err) == CREMA_OK, "%s", err.message);
  protobuf_c_message_free_unpacked(&p->base, NULL);
  return n;
}

START_TEST(test_filter_rules) {
  net *n = build_state(CAFFE__PHASE__TRAIN, 0, NULL);
  ck_assert_int_eq(n->nlayers, 4);
  ck_assert_int_ge(net_layer_index(n, "r_train"), 0);
  ck_assert_int_lt(net_layer_index(n, "r_test"), 0);
  ck_assert_int_ge(net_layer_index(n, "r_other"), 0);
  ck_assert_int_lt(net_layer_index(n, "r_deploy"), 0);
  ck_assert_int_ge(net_layer_index(n, "r_low"), 0);
  net_free(n);

  n = build_state(CAFFE__PHASE__TEST, 3, "deploy");
  ck_assert_int_ge(net_layer_index(n, "r_test"), 0);
  ck_assert_int_lt(net_layer_index(n, "r_train"), 0);
  ck_assert_int_ge(net_layer_index(n, "r_deploy"), 0);
  ck_assert_int_lt(net_layer_index(n, "r_other"), 0);
  ck_assert_int_ge(net_layer_index(n, "r_high"), 0);
  ck_assert_int_lt(net_layer_index(n, "r_low"), 0);
  net_free(n);

  expect_error(INPUT_2x3 "layer { name: 'r' type: 'ReLU' bottom: 'data' top: 'data' "
                         "include { phase: TRAIN } exclude { phase: TEST } }",
               CAFFE__PHASE__TRAIN, CREMA_ERR_INVALID, "either include rules or exclude");
}
END_TEST

/* ---- wiring ------------------------------------------------------------- */

START_TEST(test_in_place_and_outputs) {
  net *n = build_ok(INPUT_2x3
                    "layer { name: 'r' type: 'ReLU' bottom: 'data' top: 'x' }\n"
                    "layer { name: 'r2' type: 'ReLU' bottom: 'x' top: 'x' }\n"
                    "layer { name: 's' type: 'Sigmoid' bottom: 'x' top: 'z' }\n",
                    CAFFE__PHASE__TRAIN, 0);
  int r2 = net_layer_index(n, "r2");
  ck_assert_ptr_eq(n->tops[r2].v[0], n->bottoms[r2].v[0]);
  ck_assert_int_eq(n->nblobs, 3);
  ck_assert_int_eq(n->ninputs, 1);
  ck_assert_str_eq(n->blobs[n->input_ids[0]]->name, "data");
  ck_assert_int_eq(n->noutputs, 1);
  ck_assert_str_eq(n->blobs[n->output_ids[0]]->name, "z");
  net_free(n);

  expect_error(INPUT_2x3 "layer { name: 'r' type: 'ReLU' bottom: 'data' top: 'y' }\n"
                         "layer { name: 's' type: 'ReLU' bottom: 'data' top: 'y' }\n",
               CAFFE__PHASE__TRAIN, CREMA_ERR_INVALID, "'y' is already produced");
}
END_TEST

START_TEST(test_split_insertion) {
  /* force_backward: without a loss or parameters nothing needs a gradient. */
  net *n = build_ok("force_backward: true\n" INPUT_2x3
                    "layer { name: 'c' type: 'ReLU' bottom: 'data' top: 'c' }\n"
                    "layer { name: 's1' type: 'Sigmoid' bottom: 'c' top: 'a' }\n"
                    "layer { name: 's2' type: 'TanH' bottom: 'c' top: 'b' }\n"
                    "layer { name: 'e' type: 'Eltwise' bottom: 'a' bottom: 'b' bottom: 'c' "
                    "  top: 'y' }\n",
                    CAFFE__PHASE__TRAIN, 0);
  int sp = net_layer_index(n, "c_c_0_split");
  ck_assert_int_eq(sp, 2);
  ck_assert_str_eq(n->layers[sp]->ops->type, "Split");
  ck_assert_int_eq(n->tops[sp].n, 3);
  ck_assert_str_eq(n->tops[sp].v[0]->name, "c_c_0_split_0");
  ck_assert_str_eq(n->tops[sp].v[2]->name, "c_c_0_split_2");
  int s2 = net_layer_index(n, "s2");
  ck_assert_str_eq(n->bottoms[s2].v[0]->name, "c_c_0_split_1");
  int e = net_layer_index(n, "e");
  ck_assert_str_eq(n->bottoms[e].v[2]->name, "c_c_0_split_2");
  /* Split tops alias the bottom's data; their diffs add up in backward. */
  fill(net_blob_by_name(n, "data"), -1.0f, 0.3f);
  crema_error err = {0};
  ck_assert_int_eq(net_forward(n, NULL, &err), CREMA_OK);
  blob *c = net_blob_by_name(n, "c"), *y = net_blob_by_name(n, "y");
  for (size_t k = 0; k < y->count; k++)
    y->diff[k] = 1.0f;
  ck_assert_int_eq(net_backward(n, &err), CREMA_OK);
  for (size_t k = 0; k < c->count; k++) {
    float x = c->data[k], s = 1.0f / (1.0f + expf(-x)), t = tanhf(x);
    float want = s * (1 - s) + (1 - t * t) + 1.0f;
    ck_assert_float_eq_tol(c->diff[k], want, 1e-5f);
  }
  net_free(n);

  /* The input blob fans out too: the split is named after the Input layer. */
  n = build_ok(INPUT_2x3 "layer { name: 'a' type: 'ReLU' bottom: 'data' top: 'a' }\n"
                         "layer { name: 'b' type: 'ReLU' bottom: 'data' top: 'b' }\n",
               CAFFE__PHASE__TEST, 0);
  ck_assert_int_ge(net_blob_index(n, "data_data_0_split_1"), 0);
  net_free(n);
}
END_TEST

/* ---- need-backward and loss weights ------------------------------------- */

static const char *ip_loss_net =
    "layer { name: 'data' type: 'Input' top: 'data' top: 'label' "
    "  input_param { shape { dim: 2 dim: 4 } shape { dim: 2 } } }\n"
    "layer { name: 'ip1' type: 'InnerProduct' bottom: 'data' top: 'h' %s "
    "  inner_product_param { num_output: 3 weight_filler { type: 'gaussian' std: 0.5 } } }\n"
    "layer { name: 'ip2' type: 'InnerProduct' bottom: 'h' top: 'o' "
    "  inner_product_param { num_output: 3 weight_filler { type: 'gaussian' std: 0.5 } } }\n"
    "layer { name: 'side' type: 'Sigmoid' bottom: 'data' top: 'side' }\n"
    "layer { name: 'loss' type: 'SoftmaxWithLoss' bottom: 'o' bottom: 'label' top: 'loss' "
    "  %s }\n";

static net *build_ip_loss(const char *ip1_extra, const char *loss_extra, const char *head) {
  char text[2048];
  snprintf(text, sizeof text, "%s", head ? head : "");
  size_t used = strlen(text);
  snprintf(text + used, sizeof text - used, ip_loss_net, ip1_extra, loss_extra);
  return build_ok(text, CAFFE__PHASE__TRAIN, 0);
}

START_TEST(test_need_backward) {
  net *n = build_ip_loss("", "", NULL);
  int ip1 = net_layer_index(n, "ip1"), side = net_layer_index(n, "side");
  int loss = net_layer_index(n, "loss");
  ck_assert_int_eq(n->layer_need_backward[ip1], 1);
  ck_assert_int_eq(n->bottom_need_backward[ip1][0], 0); /* data needs no gradient */
  ck_assert_int_eq(n->layer_need_backward[side], 0);    /* feeds no loss */
  ck_assert_int_eq(n->layer_need_backward[loss], 1);
  ck_assert_int_eq(n->bottom_need_backward[loss][1], 0);
  ck_assert_float_eq(n->blob_loss_weight[net_blob_index(n, "loss")], 1.0f);
  net_free(n);

  /* lr_mult 0 on ip1: no parameter gradient, and nothing below needs one. */
  n = build_ip_loss("param { lr_mult: 0 } param { lr_mult: 0 }", "", NULL);
  ip1 = net_layer_index(n, "ip1");
  ck_assert_int_eq(n->layer_need_backward[ip1], 0);
  ck_assert_int_eq(n->layers[ip1]->param_propagate_down[0], 0);
  ck_assert_int_eq(n->layer_need_backward[net_layer_index(n, "ip2")], 1);
  net_free(n);

  /* propagate_down: false stops the gradient at the loss (which, as in
   * Caffe, still runs its backward, with no bottom to write). */
  n = build_ip_loss("", "propagate_down: false propagate_down: false", NULL);
  ck_assert_int_eq(n->layer_need_backward[net_layer_index(n, "ip2")], 0);
  ck_assert_int_eq(n->bottom_need_backward[net_layer_index(n, "loss")][0], 0);
  net_free(n);

  /* force_backward: every layer, every bottom but the loss's labels. */
  n = build_ip_loss("", "", "force_backward: true\n");
  ip1 = net_layer_index(n, "ip1");
  loss = net_layer_index(n, "loss");
  ck_assert_int_eq(n->bottom_need_backward[ip1][0], 1);
  ck_assert_int_eq(n->layer_need_backward[net_layer_index(n, "side")], 1);
  ck_assert_int_eq(n->bottom_need_backward[loss][1], 0);
  net_free(n);
}
END_TEST

START_TEST(test_loss_weights) {
  /* A non-loss top weighted 2 and also fed forward: Caffe moves the weight
   * to the first top of the split. */
  net *n = build_ok("force_backward: true\n" INPUT_2x3
                    "layer { name: 'r' type: 'ReLU' bottom: 'data' top: 'r' loss_weight: 2 }\n"
                    "layer { name: 'e' type: 'Eltwise' bottom: 'r' bottom: 'data' top: 'e' "
                    "  loss_weight: 0.5 }\n",
                    CAFFE__PHASE__TRAIN, 0);
  int sp = net_layer_index(n, "r_r_0_split");
  ck_assert_int_ge(sp, 0);
  ck_assert_float_eq(n->top_loss_weight[sp][0], 2.0f);
  ck_assert_float_eq(n->top_loss_weight[sp][1], 0.0f);
  ck_assert_float_eq(n->top_loss_weight[net_layer_index(n, "r")][0], 0.0f);
  blob *d = net_blob_by_name(n, "data");
  fill(d, -2.5f, 1.0f); /* -2.5 .. 2.5 */
  crema_error err = {0};
  float loss = 0;
  ck_assert_int_eq(net_forward(n, &loss, &err), CREMA_OK);
  double want = 0;
  for (size_t k = 0; k < d->count; k++) {
    float r = d->data[k] > 0 ? d->data[k] : 0;
    want += 2.0 * r + 0.5 * (r + d->data[k]);
  }
  ck_assert_double_eq_tol(loss, want, 1e-5);
  ck_assert_int_eq(net_backward(n, &err), CREMA_OK);
  blob *r = net_blob_by_name(n, "r");
  /* d loss / d r = 2 (own weight) + 0.5 (through the sum). */
  for (size_t k = 0; k < r->count; k++)
    ck_assert_float_eq_tol(r->diff[k], 2.5f, 1e-6f);
  net_free(n);

  expect_error(INPUT_2x3 "layer { name: 'r' type: 'ReLU' bottom: 'data' top: 'r' "
                         "loss_weight: 1 loss_weight: 2 }",
               CAFFE__PHASE__TRAIN, CREMA_ERR_INVALID, "once per top");
}
END_TEST

/* ---- shared parameters --------------------------------------------------- */

static const char *shared_net =
    INPUT_2x3
    "layer { name: 'a' type: 'InnerProduct' bottom: 'data' top: 'a' param { name: 'w' } "
    "  param { name: 'bias' } inner_product_param { num_output: 3 "
    "  weight_filler { type: 'gaussian' std: 1 } } }\n"
    "layer { name: 'b' type: 'InnerProduct' bottom: 'a' top: 'b' param { name: 'w' %s } "
    "  param { name: 'bias' } inner_product_param { num_output: %d %s } }\n";

START_TEST(test_shared_params) {
  char text[1024];
  snprintf(text, sizeof text, "force_backward: true\n");
  snprintf(text + strlen(text), sizeof text - strlen(text), shared_net, "", 3, "");
  net *n = build_ok(text, CAFFE__PHASE__TRAIN, 0);
  layer *a = n->layers[net_layer_index(n, "a")], *b = n->layers[net_layer_index(n, "b")];
  ck_assert_ptr_eq(a->blobs[0]->data, b->blobs[0]->data);
  ck_assert_ptr_eq(a->blobs[0]->diff, b->blobs[0]->diff);
  ck_assert_ptr_eq(a->blobs[1]->data, b->blobs[1]->data);
  ck_assert_int_eq(n->nlearnable, 2);
  /* Gradients of both uses accumulate in the one diff. */
  fill(net_blob_by_name(n, "data"), 0.1f, 0.2f);
  crema_error err = {0};
  ck_assert_int_eq(net_forward(n, NULL, &err), CREMA_OK);
  blob *out = net_blob_by_name(n, "b");
  for (size_t k = 0; k < out->count; k++)
    out->diff[k] = 1.0f;
  ck_assert_int_eq(net_backward(n, &err), CREMA_OK);
  float sum = 0;
  for (size_t k = 0; k < a->blobs[1]->count; k++)
    sum += a->blobs[1]->diff[k];
  ck_assert_float_ne(sum, 0.0f);
  net_clear_param_diffs(n);
  ck_assert_float_eq(a->blobs[1]->diff[0], 0.0f);
  net_free(n);

  /* Strict mode compares shapes, permissive mode only counts. */
  snprintf(text, sizeof text, shared_net, "", 4, "");
  expect_error(text, CAFFE__PHASE__TRAIN, CREMA_ERR_SHAPE, "shared parameter 'w' has shape");
  snprintf(text, sizeof text, shared_net, "share_mode: PERMISSIVE", 4, "");
  expect_error(text, CAFFE__PHASE__TRAIN, CREMA_ERR_SHAPE, "values here");
  snprintf(text, sizeof text, shared_net, "lr_mult: 3", 3, "");
  n = build_ok(text, CAFFE__PHASE__TRAIN, 0);
  ck_assert_float_eq(n->learnable[0].lr_mult, 3.0f);
  net_free(n);
}
END_TEST

/* ---- bad inputs ---------------------------------------------------------- */

START_TEST(test_bad_inputs) {
  expect_error(INPUT_2x3 "layer { name: 'conv1_1' type: 'ReLU' bottom: 'nothing' top: 'x' }",
               CAFFE__PHASE__TEST, CREMA_ERR_NOT_FOUND,
               "layer 'conv1_1' (ReLU): unknown bottom blob 'nothing'");
  expect_error(INPUT_2x3 "layer { name: 'py' type: 'Python' bottom: 'data' top: 'x' }",
               CAFFE__PHASE__TEST, CREMA_ERR_UNSUPPORTED, "'Python'");
  expect_error(INPUT_2x3 "layer { name: 'e' type: 'ReLU' bottom: 'data' top: 'x' }\n"
                         "layer { name: 's' type: 'Softmax' bottom: 'x' bottom: 'data' "
                         "  top: 'y' }",
               CAFFE__PHASE__TEST, CREMA_ERR_INVALID, "layer 's' (Softmax): takes 1 bottom");
  expect_error(INPUT_2x3 "layer { name: 'r' type: 'ReLU' bottom: 'data' top: 'x' "
                         "propagate_down: true propagate_down: false }",
               CAFFE__PHASE__TEST, CREMA_ERR_INVALID, "propagate_down");
  expect_error(INPUT_2x3 "layer { name: 'ip' type: 'InnerProduct' bottom: 'data' top: 'x' "
                         "param { } param { } param { } inner_product_param { num_output: 1 } }",
               CAFFE__PHASE__TEST, CREMA_ERR_INVALID, "3 param specs");
  expect_error(INPUT_2x3 "layer { name: 'e' type: 'Eltwise' bottom: 'data' bottom: 'x' "
                         "  top: 'y' }\n"
                         "layer { name: 'r' type: 'ReLU' bottom: 'data' top: 'x' }",
               CAFFE__PHASE__TEST, CREMA_ERR_NOT_FOUND, "unknown bottom blob 'x'");
}
END_TEST

START_TEST(test_fig4_fragment) {
  char *path = test_data_path("corpus/patent/fig4.prototxt");
  Caffe__NetParameter *p = NULL;
  crema_error err = {0};
  ck_assert_int_eq(net_param_read_text(path, CREMA_LOG_INFO, &p, &err), CREMA_OK);
  free(path);
  net_options o;
  net_options_init(&o, CAFFE__PHASE__TEST);
  net *n = NULL;
  ck_assert_int_eq(net_create(p, &o, &n, &err), CREMA_ERR_NOT_FOUND);
  ck_assert_ptr_null(n);
  ck_assert_msg(strstr(err.message, "layer 'conv1_1' (Convolution): unknown bottom blob 'data'"),
                "%s", err.message);
  protobuf_c_message_free_unpacked(&p->base, NULL);
}
END_TEST

/* ---- weights ------------------------------------------------------------- */

static const char *two_ip_net =
    "name: 'two'\n"
    "layer { name: 'data' type: 'Input' top: 'data' input_param { shape { dim: 1 dim: 4 } } }\n"
    "layer { name: 'fc6' type: 'InnerProduct' bottom: 'data' top: 'fc6' "
    "  inner_product_param { num_output: %d weight_filler { type: 'gaussian' std: 1 } "
    "  bias_filler { type: 'gaussian' std: 1 } } }\n"
    "layer { name: 'fc7' type: 'InnerProduct' bottom: 'fc6' top: 'fc7' "
    "  inner_product_param { num_output: 2 weight_filler { type: 'gaussian' std: 1 } } }\n";

static net *build_two_ip(int fc6_out, uint32_t seed) {
  char text[1024];
  snprintf(text, sizeof text, two_ip_net, fc6_out);
  Caffe__NetParameter *p = test_parse_net_text(text);
  net_options o;
  net_options_init(&o, CAFFE__PHASE__TRAIN);
  o.seed = seed;
  net *n = NULL;
  crema_error err = {0};
  ck_assert_msg(net_create(p, &o, &n, &err) == CREMA_OK, "%s", err.message);
  protobuf_c_message_free_unpacked(&p->base, NULL);
  return n;
}

static void tmp_path(char *buf, size_t size, const char *name) {
  const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
  snprintf(buf, size, "%s/crema-check-net-%d-%s", dir, (int)getpid(), name);
}

START_TEST(test_weights_round_trip) {
  net *a = build_two_ip(3, 1), *b = build_two_ip(3, 2);
  layer *a6 = a->layers[net_layer_index(a, "fc6")], *b6 = b->layers[net_layer_index(b, "fc6")];
  ck_assert_float_ne(a6->blobs[0]->data[0], b6->blobs[0]->data[0]);
  char path[512], pair[1100];
  tmp_path(path, sizeof path, "w.caffemodel");
  crema_error err = {0};
  ck_assert_msg(net_save_weights(a, path, &err) == CREMA_OK, "%s", err.message);
  snprintf(pair, sizeof pair, "%s,%s", path, path);
  ck_assert_msg(net_load_weights(b, pair, &err) == CREMA_OK, "%s", err.message);
  for (int j = 0; j < 2; j++)
    ck_assert_int_eq(memcmp(a6->blobs[j]->data, b6->blobs[j]->data,
                            a6->blobs[j]->count * sizeof(float)), 0);

  /* The weights of another net: fc6 differs in shape. */
  net *c = build_two_ip(5, 1);
  ck_assert_int_eq(net_load_weights(c, path, &err), CREMA_ERR_SHAPE);
  ck_assert_msg(strstr(err.message, "layer 'fc6' (InnerProduct): blob 0 has shape 3x4 in the "
                                    "weights, 5x4 in the net"), "%s", err.message);
  ck_assert_int_ne(net_load_weights(c, "/nonexistent/w.caffemodel", &err), CREMA_OK);
  ck_assert_msg(strstr(err.message, "/nonexistent/w.caffemodel"), "%s", err.message);
  unlink(path);
  net_free(a);
  net_free(b);
  net_free(c);
}
END_TEST

static Caffe__BlobProto *legacy_proto(int num, int ch, int h, int w) {
  Caffe__BlobProto *bp = calloc(1, sizeof *bp);
  caffe__blob_proto__init(bp);
  bp->has_num = bp->has_channels = bp->has_height = bp->has_width = 1;
  bp->num = num;
  bp->channels = ch;
  bp->height = h;
  bp->width = w;
  bp->n_data = (size_t)num * ch * h * w;
  bp->data = calloc(bp->n_data, sizeof(float));
  for (size_t k = 0; k < bp->n_data; k++)
    bp->data[k] = (float)k;
  return bp;
}

START_TEST(test_weights_legacy_shapes) {
  net *n = build_two_ip(3, 1);
  Caffe__NetParameter src;
  caffe__net_parameter__init(&src);
  Caffe__LayerParameter lp;
  caffe__layer_parameter__init(&lp);
  lp.name = "fc6";
  Caffe__BlobProto *blobs[2] = {legacy_proto(1, 1, 3, 4), legacy_proto(1, 1, 1, 3)};
  lp.blobs = blobs;
  lp.n_blobs = 2;
  Caffe__LayerParameter other;
  caffe__layer_parameter__init(&other);
  other.name = "not_in_net";
  Caffe__LayerParameter *layers[2] = {&other, &lp};
  src.layer = layers;
  src.n_layer = 2;
  crema_error err = {0};
  ck_assert_msg(net_copy_trained_layers(n, &src, &err) == CREMA_OK, "%s", err.message);
  layer *fc6 = n->layers[net_layer_index(n, "fc6")];
  ck_assert_float_eq(fc6->blobs[0]->data[11], 11.0f);
  ck_assert_float_eq(fc6->blobs[1]->data[2], 2.0f);

  /* Legacy dims must match from the end: 1x3x1x4 is not 3x4. */
  protobuf_c_message_free_unpacked(&blobs[0]->base, NULL);
  blobs[0] = legacy_proto(1, 3, 1, 4);
  ck_assert_int_eq(net_copy_trained_layers(n, &src, &err), CREMA_ERR_SHAPE);
  ck_assert_msg(strstr(err.message, "blob 0 has shape 1x3x1x4 in the weights, 3x4 in the net"),
                "%s", err.message);
  lp.n_blobs = 1;
  ck_assert_int_eq(net_copy_trained_layers(n, &src, &err), CREMA_ERR_SHAPE);
  ck_assert_msg(strstr(err.message, "1 blobs"), "%s", err.message);
  protobuf_c_message_free_unpacked(&blobs[0]->base, NULL);
  protobuf_c_message_free_unpacked(&blobs[1]->base, NULL);
  net_free(n);
}
END_TEST

/* ---- reshape and the memory plan ---------------------------------------- */

START_TEST(test_reshape) {
  net *n = build_two_ip(3, 1);
  blob *d = net_blob_by_name(n, "data"), *out = net_blob_by_name(n, "fc7");
  ck_assert_int_eq(out->shape[0], 1);
  crema_error err = {0};
  ck_assert_int_eq(blob_reshape4(d, 5, 4, 1, 1, &err), CREMA_OK);
  fill(d, 0.0f, 0.1f);
  /* forward notices the new input shape. */
  ck_assert_int_eq(net_forward(n, NULL, &err), CREMA_OK);
  ck_assert_int_eq(out->shape[0], 5);
  ck_assert_int_eq(out->shape[1], 2);
  float row4[2] = {out->data[8], out->data[9]};
  /* Row 4 alone gives the same output. */
  int one[2] = {1, 4};
  ck_assert_int_eq(blob_reshape(d, 2, one, &err), CREMA_OK);
  fill(d, 1.6f, 0.1f);
  ck_assert_int_eq(net_reshape(n, &err), CREMA_OK);
  ck_assert_int_eq(out->shape[0], 1);
  ck_assert_int_eq(net_forward(n, NULL, &err), CREMA_OK);
  ck_assert_float_eq_tol(out->data[0], row4[0], 1e-5f);
  ck_assert_float_eq_tol(out->data[1], row4[1], 1e-5f);
  net_free(n);
}
END_TEST

static net *open_vgg(int keep_all) {
  char *path = test_data_path("nets/vgg16_w8_v1/net.prototxt");
  Caffe__NetParameter *p = NULL;
  crema_error err = {0};
  ck_assert_msg(net_param_read_text(path, CREMA_LOG_INFO, &p, &err) == CREMA_OK, "%s", err.message);
  free(path);
  net_options o;
  net_options_init(&o, CAFFE__PHASE__TEST);
  o.keep_all = keep_all;
  net *n = NULL;
  ck_assert_msg(net_create(p, &o, &n, &err) == CREMA_OK, "%s", err.message);
  protobuf_c_message_free_unpacked(&p->base, NULL);
  char *wpath = test_data_path("nets/vgg16_w8_v1/legacy_v1.caffemodel");
  ck_assert_msg(net_load_weights(n, wpath, &err) == CREMA_OK, "%s", err.message);
  free(wpath);
  return n;
}

static void load_ref(const char *rel, blob **out) {
  char *path = test_data_path("%s", rel);
  crema_error err = {0};
  *out = blob_create(NULL, &err);
  ck_assert_msg(blob_read_file(path, *out, NULL, &err) == CREMA_OK, "%s", err.message);
  free(path);
}

START_TEST(test_memory_plan_vgg) {
  net *planned = open_vgg(0), *full = open_vgg(1);
  ck_assert_ptr_nonnull(planned->plan);
  ck_assert_ptr_null(full->plan);
  size_t act = 0, unshared = 0, act_full = 0;
  net_memory_use(planned, &act, &unshared);
  net_memory_use(full, &act_full, NULL);
  /* No diffs, and the 20-odd activations fit in a few buffers: the peak is
   * conv1_1 and conv1_2 alive together, plus the input. */
  ck_assert_msg(act * 2 < unshared, "plan uses %zu of %zu bytes", act, unshared);
  ck_assert_msg(act * 2 < act_full, "plan uses %zu, unplanned %zu bytes", act, act_full);
  size_t floor_bytes = 2 * net_blob_by_name(planned, "conv1_1")->count * sizeof(float) +
                       net_blob_by_name(planned, "data")->count * sizeof(float);
  ck_assert_msg(act < floor_bytes + floor_bytes / 20, "plan uses %zu, the floor is %zu", act,
                floor_bytes);
  for (int b = 0; b < planned->nblobs; b++)
    ck_assert_ptr_null(planned->blobs[b]->diff);

  blob *data = NULL, *prob = NULL;
  load_ref("nets/vgg16_w8_v1/blobs/data.binaryproto", &data);
  load_ref("nets/vgg16_w8_v1/blobs/prob.binaryproto", &prob);
  crema_error err = {0};
  for (int rep = 0; rep < 2; rep++) {
    blob *in = net_blob_by_name(planned, "data");
    ck_assert_int_eq(blob_reshape_like(in, data, &err), CREMA_OK);
    memcpy(in->data, data->data, data->count * sizeof(float));
    ck_assert_int_eq(net_forward(planned, NULL, &err), CREMA_OK);
    blob *out = net_blob_by_name(planned, "prob");
    ck_assert(blob_same_shape(out, prob));
    for (size_t k = 0; k < prob->count; k++)
      ck_assert_float_eq_tol(out->data[k], prob->data[k], 1e-5f);
  }
  ck_assert_int_eq(net_backward(planned, &err), CREMA_ERR_INVALID);
  ck_assert_msg(strstr(err.message, "inference"), "%s", err.message);
  blob_free(data);
  blob_free(prob);
  net_free(planned);
  net_free(full);
}
END_TEST

/* Reshaping a planned net re-plans the pool: a larger batch still gives the
 * per-image results. */
START_TEST(test_memory_plan_reshape) {
  char *path = test_data_path("nets/lesion_w8_deploy/net.prototxt");
  Caffe__NetParameter *p = NULL;
  crema_error err = {0};
  ck_assert_int_eq(net_param_read_text(path, CREMA_LOG_INFO, &p, &err), CREMA_OK);
  free(path);
  net_options o;
  net_options_init(&o, CAFFE__PHASE__TEST);
  net *n = NULL;
  ck_assert_msg(net_create(p, &o, &n, &err) == CREMA_OK, "%s", err.message);
  protobuf_c_message_free_unpacked(&p->base, NULL);
  ck_assert_ptr_nonnull(n->plan);
  path = test_data_path("nets/lesion_w8_train/net.caffemodel");
  ck_assert_msg(net_load_weights(n, path, &err) == CREMA_OK, "%s", err.message);
  free(path);
  blob *data = NULL, *fuse = NULL;
  load_ref("nets/lesion_w8_deploy/blobs/data.binaryproto", &data);
  load_ref("nets/lesion_w8_deploy/blobs/fuse_score_prob.binaryproto", &fuse);
  blob *in = net_blob_by_name(n, "data");
  /* Batch 4: the two reference images twice. */
  int shape[4] = {2 * data->shape[0], data->shape[1], data->shape[2], data->shape[3]};
  ck_assert_int_eq(blob_reshape(in, 4, shape, &err), CREMA_OK);
  memcpy(in->data, data->data, data->count * sizeof(float));
  memcpy(in->data + data->count, data->data, data->count * sizeof(float));
  ck_assert_int_eq(net_forward(n, NULL, &err), CREMA_OK);
  blob *out = net_blob_by_name(n, "fuse_score_prob");
  ck_assert_int_eq((int)out->count, (int)(2 * fuse->count));
  for (size_t k = 0; k < out->count; k++)
    ck_assert_float_eq_tol(out->data[k], fuse->data[k % fuse->count], 1e-5f);
  blob_free(data);
  blob_free(fuse);
  net_free(n);
}
END_TEST

/* ---- the public API ------------------------------------------------------- */

START_TEST(test_api_lenet_classes) {
  char *model = test_data_path("nets/lenet_real/net.prototxt");
  char *weights = test_data_path("nets/lenet_real/lenet_iter_10000.caffemodel");
  crema_net *cn = NULL;
  crema_error err = {0};
  ck_assert_msg(crema_net_open(model, weights, CREMA_TEST, &cn, &err) == CREMA_OK, "%s",
                err.message);
  ck_assert_int_eq(crema_net_num_inputs(cn), 1);
  ck_assert_str_eq(crema_net_input_name(cn, 0), "data");
  ck_assert_int_eq(crema_net_num_outputs(cn), 1);
  ck_assert_str_eq(crema_net_output_name(cn, 0), "prob");
  ck_assert_ptr_null(crema_net_output_name(cn, 1));
  blob *digits = NULL;
  load_ref("nets/lenet_real/blobs/data.binaryproto", &digits);
  ck_assert_int_eq(crema_net_reshape_input(cn, "data", digits->num_axes, digits->shape, &err),
                   CREMA_OK);
  float *in = NULL;
  size_t count = 0;
  ck_assert_int_eq(crema_net_blob_data(cn, "data", &in, &count, &err), CREMA_OK);
  ck_assert_int_eq((int)count, (int)digits->count);
  memcpy(in, digits->data, count * sizeof(float));
  float loss = -1;
  ck_assert_int_eq(crema_net_forward(cn, &loss, &err), CREMA_OK);
  ck_assert_float_eq(loss, 0.0f);
  int axes = 0, dims[4];
  ck_assert_int_eq(crema_net_blob_shape(cn, "prob", &axes, dims, 4, &err), CREMA_OK);
  ck_assert_int_eq(axes, 2);
  ck_assert_int_eq(dims[0], 2);
  ck_assert_int_eq(dims[1], 10);
  float *prob = NULL;
  ck_assert_int_eq(crema_net_blob_data(cn, "prob", &prob, &count, &err), CREMA_OK);
  int want[2] = {1, 0};
  for (int i = 0; i < 2; i++) {
    int best = 0;
    for (int c = 1; c < 10; c++)
      if (prob[i * 10 + c] > prob[i * 10 + best])
        best = c;
    ck_assert_int_eq(best, want[i]);
  }
  ck_assert_int_eq(crema_net_blob_data(cn, "nope", &prob, &count, &err), CREMA_ERR_NOT_FOUND);
  ck_assert_int_eq(crema_net_reshape_input(cn, "prob", 2, dims, &err), CREMA_ERR_INVALID);
  ck_assert_int_eq(crema_net_backward(cn, &err), CREMA_ERR_INVALID);
  char out[512];
  tmp_path(out, sizeof out, "lenet.caffemodel");
  ck_assert_msg(crema_net_save(cn, out, &err) == CREMA_OK, "%s", err.message);
  crema_net_close(cn);
  /* The saved weights reload and give the same classes. */
  ck_assert_msg(crema_net_open(model, out, CREMA_TEST, &cn, &err) == CREMA_OK, "%s",
                err.message);
  unlink(out);
  crema_net_close(cn);
  blob_free(digits);
  free(model);
  free(weights);

  ck_assert_int_ne(crema_net_open("/nonexistent.prototxt", NULL, CREMA_TEST, &cn, &err),
                   CREMA_OK);
  ck_assert_ptr_null(cn);
}
END_TEST

START_TEST(test_api_train_backward) {
  char *model = test_data_path("nets/lesion_w8_train/net.prototxt");
  char *weights = test_data_path("nets/lesion_w8_train/net.caffemodel");
  crema_net *cn = NULL;
  crema_error err = {0};
  ck_assert_msg(crema_net_open(model, weights, CREMA_TRAIN, &cn, &err) == CREMA_OK, "%s",
                err.message);
  blob *data = NULL, *label = NULL, *loss_ref = NULL;
  load_ref("nets/lesion_w8_train/blobs/data.binaryproto", &data);
  load_ref("nets/lesion_w8_train/blobs/label.binaryproto", &label);
  load_ref("nets/lesion_w8_train/blobs/fuse_score_loss.binaryproto", &loss_ref);
  float *p = NULL;
  size_t count = 0;
  ck_assert_int_eq(crema_net_blob_data(cn, "data", &p, &count, &err), CREMA_OK);
  memcpy(p, data->data, count * sizeof(float));
  ck_assert_int_eq(crema_net_blob_data(cn, "label", &p, &count, &err), CREMA_OK);
  memcpy(p, label->data, count * sizeof(float));
  float loss = 0;
  ck_assert_int_eq(crema_net_forward(cn, &loss, &err), CREMA_OK);
  ck_assert(loss > loss_ref->data[0]); /* the sum of eight weighted losses */
  ck_assert_int_eq(crema_net_backward(cn, &err), CREMA_OK);
  crema_net_close(cn);
  blob_free(data);
  blob_free(label);
  blob_free(loss_ref);
  free(model);
  free(weights);
}
END_TEST

/* The calls for hosts that drive a net layer by layer (pycaffe's Net). */
START_TEST(test_api_layers_and_ranges) {
  char *model = test_data_path("nets/lenet_real/net.prototxt");
  char *weights = test_data_path("nets/lenet_real/lenet_iter_10000.caffemodel");
  crema_net_config cfg;
  crema_net_config_init(&cfg, CREMA_TEST);
  cfg.observable = 1;
  crema_net *cn = NULL;
  crema_error err = {0};
  ck_assert_msg(crema_net_open_config(model, weights, &cfg, &cn, &err) == CREMA_OK, "%s",
                err.message);
  ck_assert_int_eq(crema_net_num_layers(cn), 9);
  ck_assert_str_eq(crema_net_layer_type(cn, 1), "Convolution");
  ck_assert_int_eq(crema_net_layer_index(cn, "relu1"), 6);
  ck_assert_int_eq(crema_net_layer_num_params(cn, 1), 2);
  ck_assert_int_eq(crema_net_layer_num_params(cn, 6), 0);
  ck_assert_ptr_null(crema_net_layer_param(cn, 6, 0));
  int dims[4];
  ck_assert_int_eq(crema_blob_shape(crema_net_layer_param(cn, 1, 0), dims, 4), 4);
  ck_assert_int_eq(dims[0], 20);
  int ip1 = crema_net_blob_index(cn, "ip1");
  ck_assert_int_eq(crema_net_layer_top(cn, 6, 0), ip1);
  ck_assert_int_eq(crema_net_layer_bottom(cn, 6, 0), ip1);
  ck_assert_int_eq(crema_net_layer_bottom(cn, 6, 1), -1);
  ck_assert_str_eq(crema_net_blob_name(cn, 0), "data");

  blob *digits = NULL, *prob_ref = NULL;
  load_ref("nets/lenet_real/blobs/data.binaryproto", &digits);
  load_ref("nets/lenet_real/blobs/prob.binaryproto", &prob_ref);
  crema_blob *data = crema_net_blob(cn, 0);
  ck_assert_int_eq((int)crema_blob_count(data), (int)digits->count);
  memcpy(crema_blob_data(data), digits->data, digits->count * sizeof(float));
  /* Up to ip1: the in-place ReLU after it has not run (no fusion). */
  ck_assert_msg(crema_net_forward_range(cn, 0, 5, NULL, &err) == CREMA_OK, "%s", err.message);
  crema_blob *b = crema_net_blob(cn, ip1);
  int negative = 0;
  for (size_t k = 0; k < crema_blob_count(b); k++)
    negative += crema_blob_data(b)[k] < 0;
  ck_assert_int_gt(negative, 0);
  ck_assert_int_eq(crema_net_forward_range(cn, 6, 8, NULL, &err), CREMA_OK);
  const float *prob = crema_blob_data(crema_net_blob(cn, crema_net_blob_index(cn, "prob")));
  for (size_t k = 0; k < prob_ref->count; k++)
    ck_assert_float_eq_tol(prob[k], prob_ref->data[k], 1e-5f);
  ck_assert_int_eq(crema_net_forward_range(cn, 5, 2, NULL, &err), CREMA_ERR_INVALID);
  ck_assert_int_eq(crema_net_forward_range(cn, 0, 9, NULL, &err), CREMA_ERR_INVALID);

  /* A batch of one: the next forward reshapes the layers. */
  int one[4] = {1, 1, 28, 28};
  ck_assert_int_eq(crema_blob_reshape(data, 4, one, &err), CREMA_OK);
  ck_assert_int_eq(crema_net_forward_range(cn, 0, 8, NULL, &err), CREMA_OK);
  crema_blob *pb = crema_net_blob(cn, crema_net_blob_index(cn, "prob"));
  ck_assert_int_eq(crema_blob_shape(pb, dims, 4), 2);
  ck_assert_int_eq(dims[0], 1);
  for (int k = 0; k < 10; k++)
    ck_assert_float_eq_tol(crema_blob_data(pb)[k], prob_ref->data[k], 1e-5f);

  /* Observable TEST nets have gradients: without a loss nothing flows. */
  float *diff = NULL;
  ck_assert_int_eq(crema_blob_diff(data, &diff, &err), CREMA_OK);
  ck_assert_int_eq(crema_net_backward_range(cn, 8, 0, &err), CREMA_OK);
  ck_assert_int_eq(crema_net_backward_range(cn, 0, 8, &err), CREMA_ERR_INVALID);
  crema_net_clear_param_diffs(cn);
  ck_assert_int_eq(crema_net_copy_from(cn, "/nonexistent.caffemodel", &err), CREMA_ERR_NOT_FOUND);
  crema_net_close(cn);
  blob_free(digits);
  blob_free(prob_ref);
  free(model);
  free(weights);
}
END_TEST

/* A solver through the public API follows Caffe's trajectory. */
START_TEST(test_api_solver_trajectory) {
  char *dir = test_data_path("golden/solvers/sgd_step_momentum");
  char *init = test_data_path("golden/solvers/sgd_step_momentum/init.caffemodel");
  char *traj = test_data_path("golden/solvers/sgd_step_momentum/trajectory.txt");
  char solver_path[512], prefix[512], cwd[4096];
  tmp_path(solver_path, sizeof solver_path, "solver.prototxt");
  tmp_path(prefix, sizeof prefix, "snap");
  FILE *f = fopen(solver_path, "w");
  ck_assert_ptr_nonnull(f);
  fprintf(f, "net: \"%s/net.prototxt\"\ntype: \"Adam\" base_lr: 0.05 momentum: 0.9 "
          "weight_decay: 0.0005 lr_policy: \"step\" gamma: 0.5 stepsize: 4\nmax_iter: 12\n"
          "display: 0\nsnapshot_prefix: \"%s\"\nrandom_seed: 1\n", dir, prefix);
  fclose(f);
  ck_assert_ptr_nonnull(getcwd(cwd, sizeof cwd));
  ck_assert_int_eq(chdir(dir), 0); /* the net reads train_lmdb from here */
  crema_solver_config cfg;
  crema_solver_config_init(&cfg);
  cfg.type = "SGD"; /* replaces the file's Adam */
  cfg.observable = 1;
  crema_solver *s = NULL;
  crema_error err = {0};
  ck_assert_msg(crema_solver_open(solver_path, &cfg, &s, &err) == CREMA_OK, "%s", err.message);
  ck_assert_str_eq(crema_solver_type(s), "SGD");
  ck_assert_int_eq(crema_solver_num_test_nets(s), 0);
  ck_assert_ptr_null(crema_solver_test_net(s, 0));
  crema_net *train = crema_solver_net(s);
  ck_assert_msg(crema_net_copy_from(train, init, &err) == CREMA_OK, "%s", err.message);
  crema_blob *loss = crema_net_blob(train, crema_net_blob_index(train, "loss"));
  FILE *t = fopen(traj, "r");
  ck_assert_ptr_nonnull(t);
  for (int it = 0; it < 12; it++) {
    int iter = -1;
    float want = 0, lr = 0;
    ck_assert_int_eq(fscanf(t, "%d %f %f", &iter, &want, &lr), 3);
    ck_assert_msg(crema_solver_step(s, 1, &err) == CREMA_OK, "%s", err.message);
    ck_assert_float_eq_tol(crema_blob_data(loss)[0], want, 1e-4f * 2.8f);
  }
  fclose(t);
  ck_assert_int_eq(crema_solver_iter(s), 12);
  ck_assert_int_eq(crema_solver_step(s, -1, &err), CREMA_ERR_INVALID);
  ck_assert_msg(crema_solver_snapshot(s, &err) == CREMA_OK, "%s", err.message);
  crema_solver_close(s);
  ck_assert_int_eq(chdir(cwd), 0);
  char state[600];
  snprintf(state, sizeof state, "%s_iter_12.solverstate", prefix);
  ck_assert_int_eq(unlink(state), 0);
  snprintf(state, sizeof state, "%s_iter_12.caffemodel", prefix);
  ck_assert_int_eq(unlink(state), 0);
  unlink(solver_path);
  cfg.type = "Fancy";
  ck_assert_int_eq(crema_solver_open(solver_path, &cfg, &s, &err), CREMA_ERR_NOT_FOUND);
  ck_assert_ptr_null(s);
  free(dir);
  free(init);
  free(traj);
}
END_TEST

/* ---- ReLU fusion ---------------------------------------------------------- */

/* A convolution, then ReLU1 written as RELU1 (in place on 'c1', or not),
 * then ReLUs that must not fuse (out of place, leaky, after a
 * deconvolution) and one more that must. */
#define FUSION_NET(RELU1, C1)                                                                \
  "layer { name: 'data' type: 'Input' top: 'data' top: 'target' "                          \
  "  input_param { shape { dim: 2 dim: 3 dim: 10 dim: 9 } shape { dim: 2 dim: 5 dim: 10 "  \
  "dim: 9 } } }\n"                                                                          \
  "layer { name: 'conv1' type: 'Convolution' bottom: 'data' top: 'c1' convolution_param { " \
  "  num_output: 6 kernel_size: 3 pad: 1 weight_filler { type: 'gaussian' std: 0.5 } "      \
  "  bias_filler { type: 'uniform' min: -0.5 max: 0.5 } } }\n" RELU1                       \
  "layer { name: 'conv2' type: 'Convolution' bottom: '" C1 "' top: 'c2' convolution_param { " \
  "  num_output: 5 kernel_size: 1 weight_filler { type: 'gaussian' std: 0.5 } "             \
  "  bias_filler { type: 'constant' value: -0.2 } } }\n"                                    \
  "layer { name: 'relu2' type: 'ReLU' bottom: 'c2' top: 'r2' }\n"                           \
  "layer { name: 'conv3' type: 'Convolution' bottom: 'r2' top: 'c3' convolution_param { "   \
  "  num_output: 5 kernel_size: 3 pad: 1 weight_filler { type: 'gaussian' std: 0.5 } } }\n" \
  "layer { name: 'relu3' type: 'ReLU' bottom: 'c3' top: 'c3' relu_param { negative_slope: 0.1 } }\n" \
  "layer { name: 'deconv4' type: 'Deconvolution' bottom: 'c3' top: 'c4' "                  \
  "  convolution_param { num_output: 5 kernel_size: 3 pad: 1 "                               \
  "  weight_filler { type: 'gaussian' std: 0.5 } bias_filler { type: 'constant' value: -0.3 } } }\n" \
  "layer { name: 'relu4' type: 'ReLU' bottom: 'c4' top: 'c4' }\n"                           \
  "layer { name: 'conv5' type: 'Convolution' bottom: 'c4' top: 'c5' convolution_param { "   \
  "  num_output: 5 kernel_size: 3 pad: 1 weight_filler { type: 'gaussian' std: 0.5 } } }\n" \
  "layer { name: 'relu5' type: 'ReLU' bottom: 'c5' top: 'c5' }\n"                           \
  "layer { name: 'loss' type: 'EuclideanLoss' bottom: 'c5' bottom: 'target' top: 'loss' }\n"

static net *fusion_net(int in_place) {
  net *n = build_ok(in_place ? FUSION_NET("layer { name: 'relu1' type: 'ReLU' bottom: 'c1' "
                                          "top: 'c1' }\n", "c1")
                             : FUSION_NET("layer { name: 'relu1' type: 'ReLU' bottom: 'c1' "
                                          "top: 'r1' }\n", "r1"),
                    CAFFE__PHASE__TRAIN, 1);
  fill(net_blob_by_name(n, "data"), -2.0f, 0.013f);
  fill(net_blob_by_name(n, "target"), 0.5f, -0.001f);
  return n;
}

static void expect_same_floats(const float *a, const float *b, size_t n, const char *what) {
  ck_assert_msg(memcmp(a, b, n * sizeof(float)) == 0, "%s differs", what);
}

START_TEST(test_relu_fusion) {
  net *fused = fusion_net(1), *plain = fusion_net(0);
  ck_assert_int_eq(fused->layers[net_layer_index(fused, "relu1")]->forward_fused, 1);
  ck_assert_int_eq(fused->layers[net_layer_index(fused, "relu5")]->forward_fused, 1);
  const char *unfused[] = {"relu2", "relu3", "relu4"};
  for (int k = 0; k < 3; k++) {
    ck_assert_int_eq(fused->layers[net_layer_index(fused, unfused[k])]->forward_fused, 0);
    ck_assert_int_eq(plain->layers[net_layer_index(plain, unfused[k])]->forward_fused, 0);
  }
  ck_assert_int_eq(plain->layers[net_layer_index(plain, "relu1")]->forward_fused, 0);
  crema_error err = {0};
  float lf = 0, lp = 0;
  for (int iter = 0; iter < 2; iter++) {
    ck_assert_msg(net_forward(fused, &lf, &err) == CREMA_OK, "%s", err.message);
    ck_assert_msg(net_forward(plain, &lp, &err) == CREMA_OK, "%s", err.message);
    ck_assert(lf == lp && lf > 0);
    const blob *c1 = net_blob_by_name(fused, "c1"), *r1 = net_blob_by_name(plain, "r1");
    expect_same_floats(c1->data, r1->data, c1->count, "relu1's output");
    ck_assert_msg(net_backward(fused, &err) == CREMA_OK, "%s", err.message);
    ck_assert_msg(net_backward(plain, &err) == CREMA_OK, "%s", err.message);
    const char *layers[] = {"conv1", "conv2", "conv3", "deconv4", "conv5"};
    for (int k = 0; k < 5; k++) {
      const layer *a = fused->layers[net_layer_index(fused, layers[k])];
      const layer *b = plain->layers[net_layer_index(plain, layers[k])];
      for (int j = 0; j < a->nblobs; j++)
        expect_same_floats(a->blobs[j]->diff, b->blobs[j]->diff, a->blobs[j]->count, layers[k]);
    }
  }
  net_free(fused);
  net_free(plain);
}
END_TEST

/* ---- runtime options ---------------------------------------------------- */

#define OPTIONS_NET                                                                              \
  "name: 'opts' layer { name: 'data' type: 'Input' top: 'data' "                                  \
  "input_param { shape { dim: 2 dim: 16 dim: 20 dim: 20 } } }\n"                                  \
  "layer { name: 'conv' type: 'Convolution' bottom: 'data' top: 'conv' "                          \
  "convolution_param { num_output: 16 kernel_size: 3 pad: 1 "                                     \
  "weight_filler { type: 'gaussian' std: 0.1 } bias_filler { type: 'constant' value: 0.1 } } }\n"

/* The output of a net opened with the engine, kernels and threads of run,
 * on a fixed input; *engine receives the engine its convolution took. */
static float *run_with_options(const crema_options *run, const char **engine) {
  Caffe__NetParameter *p = test_parse_net_text(OPTIONS_NET);
  net_options o;
  net_options_init(&o, CAFFE__PHASE__TEST);
  o.run = *run;
  net *n = NULL;
  crema_error err = {0};
  ck_assert_msg(net_create(p, &o, &n, &err) == CREMA_OK, "%s", err.message);
  protobuf_c_message_free_unpacked(&p->base, NULL);
  blob *in = n->blobs[net_blob_index(n, "data")];
  for (size_t k = 0; k < in->count; k++)
    in->data[k] = (float)((k * 7919) % 101) / 50.0f - 1.0f;
  ck_assert_msg(net_forward(n, NULL, &err) == CREMA_OK, "%s", err.message);
  *engine = conv_layer_engine(n->layers[net_layer_index(n, "conv")]);
  const blob *out = n->blobs[net_blob_index(n, "conv")];
  float *copy = malloc(out->count * sizeof(float));
  ck_assert_ptr_nonnull(copy);
  memcpy(copy, out->data, out->count * sizeof(float));
  net_free(n);
  return copy;
}

/* Two nets in one process with different engines, kernels and threads
 * compute the same, each on the engine its options name, whatever the
 * environment says: the library reads options, not CREMA_CONV. */
START_TEST(test_runtime_options_per_net) {
  setenv("CREMA_CONV", "direct", 1);
  setenv("CREMA_SIMD", "generic", 1);
  static const struct {
    const char *engine;
    crema_simd simd;
    int threads;
  } runs[] = {{"gemm", CREMA_SIMD_AUTO, 1},
              {"winograd", CREMA_SIMD_AUTO, 2},
              {"winograd", CREMA_SIMD_GENERIC, 1},
              {"gemm", CREMA_SIMD_GENERIC, 3}};
  const size_t count = 2 * 16 * 20 * 20;
  float *want = NULL;
  for (size_t r = 0; r < sizeof runs / sizeof runs[0]; r++) {
    crema_options run;
    crema_options_init(&run);
    run.conv_engine = runs[r].engine;
    run.simd = runs[r].simd;
    run.threads = runs[r].threads;
    const char *engine = NULL;
    float *got = run_with_options(&run, &engine);
    ck_assert_ptr_nonnull(engine);
    ck_assert_str_eq(engine, runs[r].engine);
    if (!want) {
      want = got;
      continue;
    }
    double worst = 0, scale = 0;
    for (size_t k = 0; k < count; k++) {
      worst = fmax(worst, fabs((double)got[k] - want[k]));
      scale = fmax(scale, fabs((double)want[k]));
    }
    ck_assert_msg(worst <= 1e-4 * scale, "%s: max diff %g of %g", runs[r].engine, worst, scale);
    free(got);
  }
  free(want);
  unsetenv("CREMA_SIMD");
  unsetenv("CREMA_CONV");
}
END_TEST

/* The same through the public API, two nets open at once; an unknown
 * engine fails the open naming the layer; the memory limit is kept. */
START_TEST(test_api_options) {
  char path[512];
  tmp_path(path, sizeof path, "options.prototxt");
  FILE *f = fopen(path, "w");
  ck_assert_ptr_nonnull(f);
  fputs(OPTIONS_NET, f);
  fclose(f);
  crema_options gemm, wino;
  crema_options_init(&gemm);
  crema_options_init(&wino);
  gemm.conv_engine = "gemm";
  wino.conv_engine = "winograd";
  wino.threads = 2;
  crema_net_config cfg;
  crema_net_config_init(&cfg, CREMA_TEST);
  crema_net *a = NULL, *b = NULL;
  crema_error err = {0};
  cfg.options = &gemm;
  ck_assert_msg(crema_net_open_config(path, NULL, &cfg, &a, &err) == CREMA_OK, "%s", err.message);
  cfg.options = &wino;
  ck_assert_msg(crema_net_open_config(path, NULL, &cfg, &b, &err) == CREMA_OK, "%s", err.message);
  float *in[2], *out[2];
  size_t n_in, n_out;
  crema_net *nets[2] = {a, b};
  for (int i = 0; i < 2; i++) {
    ck_assert_int_eq(crema_net_blob_data(nets[i], "data", &in[i], &n_in, &err), CREMA_OK);
    for (size_t k = 0; k < n_in; k++)
      in[i][k] = (float)((k * 31) % 17) / 8.0f - 1.0f;
  }
  for (int i = 0; i < 2; i++) {
    ck_assert_int_eq(crema_net_forward(nets[i], NULL, &err), CREMA_OK);
    ck_assert_int_eq(crema_net_blob_data(nets[i], "conv", &out[i], &n_out, &err), CREMA_OK);
  }
  double worst = 0, scale = 0;
  for (size_t k = 0; k < n_out; k++) {
    worst = fmax(worst, fabs((double)out[0][k] - out[1][k]));
    scale = fmax(scale, fabs((double)out[0][k]));
  }
  ck_assert_msg(worst <= 1e-4 * scale, "max diff %g of %g", worst, scale);
  ck_assert_str_eq(conv_layer_engine(a->n->layers[1]), "gemm");
  ck_assert_str_eq(conv_layer_engine(b->n->layers[1]), "winograd");
  crema_net_close(a);
  crema_net_close(b);
  crema_options bad;
  crema_options_init(&bad);
  bad.conv_engine = "no-such-engine";
  cfg.options = &bad;
  ck_assert_int_eq(crema_net_open_config(path, NULL, &cfg, &a, &err), CREMA_ERR_INVALID);
  ck_assert_msg(strstr(err.message, "no-such-engine") && strstr(err.message, "'conv'"), "%s",
                err.message);
  crema_options small;
  crema_options_init(&small);
  small.memory_limit = 4096;
  cfg.options = &small;
  ck_assert_int_eq(crema_net_open_config(path, NULL, &cfg, &a, &err), CREMA_ERR_NOMEM);
  ck_assert_msg(strstr(err.message, "memory limit"), "%s", err.message);
  /* The cap on single allocations comes from the options too, and is
   * left unset once the open returns. */
  crema_options capped;
  crema_options_init(&capped);
  capped.max_allocation = 1024;
  cfg.options = &capped;
  ck_assert_int_eq(crema_net_open_config(path, NULL, &cfg, &a, &err), CREMA_ERR_NOMEM);
  ck_assert_msg(strstr(err.message, "more than the memory cap of"), "%s", err.message);
  ck_assert_uint_eq(mem_cap_enter(0), 0);
  unlink(path);
}
END_TEST

static Suite *net_suite(void) {
  Suite *s = suite_create("net");
  TCase *c = tcase_create("construction");
  tcase_add_test(c, test_filter_rules);
  tcase_add_test(c, test_in_place_and_outputs);
  tcase_add_test(c, test_split_insertion);
  tcase_add_test(c, test_need_backward);
  tcase_add_test(c, test_loss_weights);
  tcase_add_test(c, test_shared_params);
  tcase_add_test(c, test_bad_inputs);
  tcase_add_test(c, test_fig4_fragment);
  tcase_add_test(c, test_relu_fusion);
  suite_add_tcase(s, c);
  c = tcase_create("weights");
  tcase_add_test(c, test_weights_round_trip);
  tcase_add_test(c, test_weights_legacy_shapes);
  suite_add_tcase(s, c);
  c = tcase_create("running");
  tcase_add_test(c, test_reshape);
  tcase_add_test(c, test_memory_plan_vgg);
  tcase_add_test(c, test_memory_plan_reshape);
  tcase_add_test(c, test_api_lenet_classes);
  tcase_add_test(c, test_api_train_backward);
  tcase_add_test(c, test_api_layers_and_ranges);
  tcase_add_test(c, test_api_solver_trajectory);
  tcase_add_test(c, test_runtime_options_per_net);
  tcase_add_test(c, test_api_options);
  suite_add_tcase(s, c);
  return s;
}

int main(void) {
  SRunner *r = srunner_create(net_suite());
  srunner_run_all(r, CK_NORMAL);
  int failed = srunner_ntests_failed(r);
  srunner_free(r);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
