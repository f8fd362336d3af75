/* The wire-format weights loader (io/weights_source.c) against the
 * unpacking path: same values for V2, V1/legacy-dims, double and unpacked
 * encodings; same errors; no crash on truncated or corrupted files; `crema
 * init` and its --v1 layout. */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "caffe.pb-c.h"
#include "graph/net.h"
#include "graph/weights.h"
#include "io/binary.h"
#include "io/file.h"
#include "io/text.h"
#include "io/upgrade.h"
#include "tests/unit/testutil.h"

static const char small_net[] =
    "name: 'small'\n"
    "layer { name: 'data' type: 'Input' top: 'data'\n"
    "  input_param { shape { dim: 2 dim: 3 dim: 6 dim: 6 } } }\n"
    "layer { name: 'conv' type: 'Convolution' bottom: 'data' top: 'conv'\n"
    "  convolution_param { num_output: 4 kernel_size: 3\n"
    "    weight_filler { type: 'gaussian' std: 1 } bias_filler { type: 'uniform' } } }\n"
    "layer { name: 'ip' type: 'InnerProduct' bottom: 'conv' top: 'ip'\n"
    "  inner_product_param { num_output: 5 weight_filler { type: 'xavier' }\n"
    "    bias_filler { type: 'gaussian' } } }\n";

static char tmpdir[64];

static void make_tmpdir(void) {
  strcpy(tmpdir, "/tmp/crema-wire-XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void remove_tmpdir(void) {
  char cmd[256];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
  ck_assert_int_eq(system(cmd), 0);
}

static const char *tmp_path(char *buf, size_t size, const char *name) {
  snprintf(buf, size, "%s/%s", tmpdir, name);
  return buf;
}

static net *build_net_with(const char *text, const net_options *o) {
  Caffe__NetParameter *p = test_parse_net_text(text);
  crema_error err = {0};
  net *n = NULL;
  crema_status st = net_create(p, o, &n, &err);
  protobuf_c_message_free_unpacked(&p->base, NULL);
  ck_assert_msg(st == CREMA_OK, "%s", err.message);
  return n;
}

static net *build_net(const char *text, uint32_t seed) {
  net_options o;
  net_options_init(&o, CAFFE__PHASE__TEST);
  o.seed = seed;
  return build_net_with(text, &o);
}

static void assert_same_params(const net *a, const net *b) {
  ck_assert_int_eq(a->nlayers, b->nlayers);
  for (int i = 0; i < a->nlayers; i++)
    for (int j = 0; j < a->layers[i]->nblobs; j++) {
      const blob *x = a->layers[i]->blobs[j], *y = b->layers[i]->blobs[j];
      ck_assert_int_eq(x->count, y->count);
      ck_assert_msg(!memcmp(x->data, y->data, x->count * sizeof(float)), "layer %s blob %d",
                    a->layers[i]->name, j);
    }
}

/* Loads path into a net of small_net by the unpacking path. */
static crema_status load_unpacked(net *n, const char *path, crema_error *err) {
  Caffe__NetParameter *p = NULL;
  CREMA_TRY(net_param_read(path, CREMA_LOG_INFO, &p, err));
  crema_status st = net_copy_trained_layers(n, p, err);
  protobuf_c_message_free_unpacked(&p->base, NULL);
  return st;
}

static void write_bytes(const char *path, const void *data, size_t len) {
  crema_error err = {0};
  ck_assert_int_eq(file_write_atomic(path, data, len, &err), CREMA_OK);
}

/* A fresh temporary directory holding path = the weights of small_net
 * built with seed 7, which is returned. */
static net *saved_small_net(char *path, size_t size) {
  make_tmpdir();
  tmp_path(path, size, "w.caffemodel");
  net *src = build_net(small_net, 7);
  crema_error err = {0};
  ck_assert_int_eq(net_save_weights(src, path, &err), CREMA_OK);
  return src;
}

START_TEST(round_trip_v2) {
  char path[256];
  net *src = saved_small_net(path, sizeof path);
  crema_error err = {0};
  net *dst = build_net(small_net, 8);
  ck_assert_int_eq(net_load_weights(dst, path, &err), CREMA_OK);
  assert_same_params(src, dst);
  net_free(src);
  net_free(dst);
  remove_tmpdir();
}
END_TEST

/* A net built for a weights file leaves its constant-zero parameters unset;
 * the file writes those it covers and net_settle_params zeroes the rest,
 * whatever the fresh memory held. */
START_TEST(weights_follow_settles_uncovered) {
  static const char two_convs[] =
      "name: 'two'\n"
      "layer { name: 'data' type: 'Input' top: 'data'\n"
      "  input_param { shape { dim: 2 dim: 3 dim: 6 dim: 6 } } }\n"
      "layer { name: 'conv' type: 'Convolution' bottom: 'data' top: 'conv'\n"
      "  convolution_param { num_output: 4 kernel_size: 3 } }\n"
      "layer { name: 'extra' type: 'Convolution' bottom: 'data' top: 'extra'\n"
      "  convolution_param { num_output: 2 kernel_size: 1 } }\n";
  char path[256];
  net *src = saved_small_net(path, sizeof path);
  crema_error err = {0};
  net_options o;
  net_options_init(&o, CAFFE__PHASE__TEST);
  o.weights_follow = 1;
  net *dst = build_net_with(two_convs, &o);
  layer *conv = dst->layers[net_layer_index(dst, "conv")];
  layer *extra = dst->layers[net_layer_index(dst, "extra")];
  for (int j = 0; j < 2; j++) {
    ck_assert(conv->blobs[j]->unset && extra->blobs[j]->unset);
    /* What fresh memory may hold. */
    for (size_t k = 0; k < extra->blobs[j]->count; k++)
      extra->blobs[j]->data[k] = 13.0f;
  }
  ck_assert_int_eq(net_load_weights(dst, path, &err), CREMA_OK);
  net_settle_params(dst);
  const layer *want = src->layers[net_layer_index(src, "conv")];
  for (int j = 0; j < 2; j++) {
    ck_assert(!conv->blobs[j]->unset && !extra->blobs[j]->unset);
    ck_assert(!memcmp(conv->blobs[j]->data, want->blobs[j]->data,
                      want->blobs[j]->count * sizeof(float)));
    for (size_t k = 0; k < extra->blobs[j]->count; k++)
      ck_assert(extra->blobs[j]->data[k] == 0.0f);
  }
  net_free(src);
  net_free(dst);
  remove_tmpdir();
}
END_TEST

/* The message of net_save_weights rewritten as V1 layers with legacy dims
 * and double values, as old Caffe files hold them. */
static Caffe__NetParameter *v1_double_copy(const net *src) {
  crema_error err = {0};
  Caffe__NetParameter *np = NULL;
  ck_assert_int_eq(net_to_proto(src, 0, &np, &err), CREMA_OK);
  np->layers = calloc(np->n_layer, sizeof *np->layers);
  for (size_t i = 0; i < np->n_layer; i++) {
    Caffe__LayerParameter *l = np->layer[i];
    Caffe__V1LayerParameter *v1 = calloc(1, sizeof *v1);
    caffe__v1_layer_parameter__init(v1);
    v1->name = l->name;
    l->name = NULL;
    v1->blobs = l->blobs;
    v1->n_blobs = l->n_blobs;
    l->blobs = NULL;
    l->n_blobs = 0;
    for (size_t j = 0; j < v1->n_blobs; j++) {
      Caffe__BlobProto *bp = v1->blobs[j];
      int64_t d[4] = {1, 1, 1, 1};
      for (size_t k = 0; k < bp->shape->n_dim; k++)
        d[4 - bp->shape->n_dim + k] = bp->shape->dim[k];
      protobuf_c_message_free_unpacked(&bp->shape->base, NULL);
      bp->shape = NULL;
      bp->has_num = bp->has_channels = bp->has_height = bp->has_width = 1;
      bp->num = (int32_t)d[0];
      bp->channels = (int32_t)d[1];
      bp->height = (int32_t)d[2];
      bp->width = (int32_t)d[3];
      bp->double_data = malloc(bp->n_data * sizeof(double));
      for (size_t k = 0; k < bp->n_data; k++)
        bp->double_data[k] = bp->data[k];
      bp->n_double_data = bp->n_data;
      free(bp->data);
      bp->data = NULL;
      bp->n_data = 0;
    }
    np->layers[np->n_layers++] = v1;
    protobuf_c_message_free_unpacked(&l->base, NULL);
  }
  free(np->layer);
  np->layer = NULL;
  np->n_layer = 0;
  return np;
}

START_TEST(v1_legacy_dims_doubles) {
  make_tmpdir();
  char path[256];
  tmp_path(path, sizeof path, "v1.caffemodel");
  net *src = build_net(small_net, 3);
  Caffe__NetParameter *np = v1_double_copy(src);
  crema_error err = {0};
  ck_assert_int_eq(bin_write_file(path, &np->base, &err), CREMA_OK);
  protobuf_c_message_free_unpacked(&np->base, NULL);
  net *dst = build_net(small_net, 4);
  ck_assert_msg(net_load_weights(dst, path, &err) == CREMA_OK, "%s", err.message);
  assert_same_params(src, dst);
  net_free(src);
  net_free(dst);
  remove_tmpdir();
}
END_TEST

static size_t put_varint(uint8_t *p, uint64_t v) {
  size_t n = 0;
  do {
    p[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
    v >>= 7;
  } while (v);
  return n;
}

/* A file with one layer 'ip' of two blobs, floats unpacked (one fixed32
 * field per value), the shape's dims unpacked too. */
START_TEST(unpacked_encoding) {
  make_tmpdir();
  static const char text[] =
      "layer { name: 'data' type: 'Input' top: 'data' input_param { shape { dim: 1 dim: 3 } } }\n"
      "layer { name: 'ip' type: 'InnerProduct' bottom: 'data' top: 'ip'\n"
      "  inner_product_param { num_output: 2 } }\n";
  uint8_t blobs[2][128];
  size_t blen[2] = {0, 0};
  const int shapes[2][2] = {{2, 3}, {2, 0}};
  for (int b = 0; b < 2; b++) {
    uint8_t shape[16];
    size_t sl = 0;
    for (int k = 0; k < 2 && shapes[b][k]; k++) {
      shape[sl++] = 0x08; /* dim, varint */
      sl += put_varint(shape + sl, (uint64_t)shapes[b][k]);
    }
    uint8_t *p = blobs[b];
    p[blen[b]++] = 0x3a; /* shape */
    blen[b] += put_varint(p + blen[b], sl);
    memcpy(p + blen[b], shape, sl);
    blen[b] += sl;
    int count = shapes[b][0] * (shapes[b][1] ? shapes[b][1] : 1);
    for (int k = 0; k < count; k++) {
      float v = (float)(b * 10 + k) + 0.5f;
      p[blen[b]++] = 0x2d; /* data, fixed32 */
      memcpy(p + blen[b], &v, 4);
      blen[b] += 4;
    }
  }
  uint8_t lbuf[512];
  size_t ll = 0;
  lbuf[ll++] = 0x0a; /* name */
  lbuf[ll++] = 2;
  memcpy(lbuf + ll, "ip", 2);
  ll += 2;
  for (int b = 0; b < 2; b++) {
    lbuf[ll++] = 0x3a; /* blobs (7) */
    ll += put_varint(lbuf + ll, blen[b]);
    memcpy(lbuf + ll, blobs[b], blen[b]);
    ll += blen[b];
  }
  uint8_t file[600];
  size_t fl = 0;
  fl += put_varint(file + fl, (100 << 3) | 2);
  fl += put_varint(file + fl, ll);
  memcpy(file + fl, lbuf, ll);
  fl += ll;
  char path[256];
  tmp_path(path, sizeof path, "unpacked.caffemodel");
  write_bytes(path, file, fl);
  net *a = build_net(text, 1), *b = build_net(text, 1);
  crema_error err = {0};
  ck_assert_msg(net_load_weights(a, path, &err) == CREMA_OK, "%s", err.message);
  ck_assert_msg(load_unpacked(b, path, &err) == CREMA_OK, "%s", err.message);
  assert_same_params(a, b);
  ck_assert_float_eq(a->layers[1]->blobs[0]->data[5], 5.5f);
  ck_assert_float_eq(a->layers[1]->blobs[1]->data[1], 11.5f);
  net_free(a);
  net_free(b);
  remove_tmpdir();
}
END_TEST

START_TEST(errors_match_unpacking) {
  make_tmpdir();
  char path[256];
  tmp_path(path, sizeof path, "w.caffemodel");
  net *src = build_net(small_net, 7);
  crema_error err = {0};
  ck_assert_int_eq(net_save_weights(src, path, &err), CREMA_OK);
  /* Another net whose 'ip' has another shape. */
  static const char other[] =
      "layer { name: 'data' type: 'Input' top: 'data' input_param { shape { dim: 1 dim: 7 } } }\n"
      "layer { name: 'ip' type: 'InnerProduct' bottom: 'data' top: 'ip'\n"
      "  inner_product_param { num_output: 5 } }\n";
  net *a = build_net(other, 1), *b = build_net(other, 1);
  crema_error e1 = {0}, e2 = {0};
  ck_assert_int_eq(net_load_weights(a, path, &e1), CREMA_ERR_SHAPE);
  ck_assert_int_eq(load_unpacked(b, path, &e2), CREMA_ERR_SHAPE);
  ck_assert_ptr_nonnull(strstr(e1.message, "ip"));
  ck_assert_ptr_nonnull(strstr(e1.message, "5x64 in the weights, 5x7 in the net"));
  ck_assert_ptr_nonnull(strstr(e2.message, "5x64 in the weights, 5x7 in the net"));
  net_free(a);
  net_free(b);
  /* Both 'layer' and 'layers' entries. */
  Caffe__NetParameter *np = NULL;
  ck_assert_int_eq(net_to_proto(src, 0, &np, &err), CREMA_OK);
  np->layers = calloc(1, sizeof *np->layers);
  np->layers[0] = calloc(1, sizeof **np->layers);
  caffe__v1_layer_parameter__init(np->layers[0]);
  np->n_layers = 1;
  ck_assert_int_eq(bin_write_file(path, &np->base, &err), CREMA_OK);
  protobuf_c_message_free_unpacked(&np->base, NULL);
  net *c = build_net(small_net, 1);
  ck_assert_int_eq(net_load_weights(c, path, &e1), CREMA_ERR_INVALID);
  ck_assert_ptr_nonnull(strstr(e1.message, "both 'layer'"));
  write_bytes(path, "", 0);
  ck_assert_int_eq(net_load_weights(c, path, &e1), CREMA_ERR_INVALID);
  ck_assert_ptr_nonnull(strstr(e1.message, "empty file"));
  net_free(c);
  net_free(src);
  remove_tmpdir();
}
END_TEST

/* Every truncation and many single-byte corruptions of a valid file load
 * or fail cleanly (ASan checks the reads). */
START_TEST(hostile_files) {
  make_tmpdir();
  char path[256], bad[256];
  tmp_path(path, sizeof path, "w.caffemodel");
  tmp_path(bad, sizeof bad, "bad.caffemodel");
  net *src = build_net(small_net, 7);
  crema_error err = {0};
  ck_assert_int_eq(net_save_weights(src, path, &err), CREMA_OK);
  file_view v;
  ck_assert_int_eq(file_view_open(path, BIN_MAX_FILE_SIZE, &v, &err), CREMA_OK);
  size_t size = v.size;
  uint8_t *bytes = malloc(size);
  memcpy(bytes, v.data, size);
  file_view_close(&v);
  net *dst = build_net(small_net, 1);
  for (size_t cut = 1; cut < size; cut += 1 + cut / 16) {
    write_bytes(bad, bytes, cut);
    net_load_weights(dst, bad, &err);
  }
  uint32_t h = 12345;
  for (int k = 0; k < 300; k++) {
    uint8_t *copy = malloc(size);
    memcpy(copy, bytes, size);
    h = h * 1103515245u + 12345u;
    size_t at = (h >> 8) % size;
    copy[at] = (uint8_t)(h >> 3);
    write_bytes(bad, copy, size);
    crema_status st = net_load_weights(dst, bad, &err);
    ck_assert(st == CREMA_OK || err.message[0] != '\0');
    free(copy);
  }
  free(bytes);
  net_free(dst);
  net_free(src);
  remove_tmpdir();
}
END_TEST

/* The golden VGG-16 (1/8 width) legacy V1 model: both paths agree. */
START_TEST(golden_legacy_vgg) {
  char *model = test_data_path("nets/vgg16_w8_v1/net.prototxt");
  char *weights = test_data_path("nets/vgg16_w8_v1/legacy_v1.caffemodel");
  crema_error err = {0};
  Caffe__NetParameter *p = NULL;
  ck_assert_int_eq(net_param_read(model, CREMA_LOG_INFO, &p, &err), CREMA_OK);
  net_options o;
  net_options_init(&o, CAFFE__PHASE__TEST);
  net *a = NULL, *b = NULL;
  ck_assert_int_eq(net_create(p, &o, &a, &err), CREMA_OK);
  ck_assert_int_eq(net_create(p, &o, &b, &err), CREMA_OK);
  protobuf_c_message_free_unpacked(&p->base, NULL);
  ck_assert_msg(net_load_weights(a, weights, &err) == CREMA_OK, "%s", err.message);
  ck_assert_msg(load_unpacked(b, weights, &err) == CREMA_OK, "%s", err.message);
  assert_same_params(a, b);
  net_free(a);
  net_free(b);
  free(model);
  free(weights);
}
END_TEST

static void run_cli(const char *args) {
  const char *bin = getenv("CREMA_BIN");
  ck_assert_ptr_nonnull(bin);
  char cmd[2048];
  snprintf(cmd, sizeof cmd, "'%s' %s 2>/dev/null", bin, args);
  ck_assert_msg(system(cmd) == 0, "failed: %s", cmd);
}

/* crema init: seeded, V2 and V1 layouts load to the same values. */
START_TEST(init_command) {
  make_tmpdir();
  char model[256], w2[256], w1[256], args[1024];
  tmp_path(model, sizeof model, "net.prototxt");
  tmp_path(w2, sizeof w2, "v2.caffemodel");
  tmp_path(w1, sizeof w1, "v1.caffemodel");
  write_bytes(model, small_net, strlen(small_net));
  snprintf(args, sizeof args, "init --model '%s' --output '%s' --seed 11", model, w2);
  run_cli(args);
  snprintf(args, sizeof args, "init --model '%s' --output '%s' --seed 11 --v1", model, w1);
  run_cli(args);
  net *ref = build_net(small_net, 11), *a = build_net(small_net, 1), *b = build_net(small_net, 1);
  crema_error err = {0};
  ck_assert_msg(net_load_weights(a, w2, &err) == CREMA_OK, "%s", err.message);
  ck_assert_msg(net_load_weights(b, w1, &err) == CREMA_OK, "%s", err.message);
  assert_same_params(ref, a);
  assert_same_params(ref, b);
  Caffe__NetParameter *p = NULL;
  ck_assert_int_eq(bin_read_file(w1, &caffe__net_parameter__descriptor, (ProtobufCMessage **)&p,
                                 &err),
                   CREMA_OK);
  ck_assert_int_eq(p->n_layer, 0);
  ck_assert_uint_gt(p->n_layers, 0);
  int found = 0;
  for (size_t i = 0; i < p->n_layers; i++)
    if (p->layers[i]->name && !strcmp(p->layers[i]->name, "ip")) {
      const Caffe__BlobProto *bp = p->layers[i]->blobs[0];
      ck_assert(bp->has_num && bp->num == 1 && bp->channels == 1 && bp->height == 5 &&
                bp->width == 64 && !bp->shape);
      ck_assert_int_eq(p->layers[i]->type, CAFFE__V1_LAYER_PARAMETER__LAYER_TYPE__INNER_PRODUCT);
      found = 1;
    }
  ck_assert(found);
  protobuf_c_message_free_unpacked(&p->base, NULL);
  net_free(ref);
  net_free(a);
  net_free(b);
  remove_tmpdir();
}
END_TEST

static Suite *wire_suite(void) {
  Suite *s = suite_create("weights_wire");
  TCase *tc = tcase_create("wire");
  tcase_add_test(tc, round_trip_v2);
  tcase_add_test(tc, weights_follow_settles_uncovered);
  tcase_add_test(tc, v1_legacy_dims_doubles);
  tcase_add_test(tc, unpacked_encoding);
  tcase_add_test(tc, errors_match_unpacking);
  tcase_add_test(tc, hostile_files);
  tcase_add_test(tc, golden_legacy_vgg);
  tcase_add_test(tc, init_command);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(wire_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
