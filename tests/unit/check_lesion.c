/* The lesion application: the networks of models/lesion (shapes at 224, 512
 * and non-square sizes; the deconvolution arithmetic), the image operations,
 * lesion-db's databases and segmentation with the bundled model. */
#include "config.h"

#include <check.h>
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "caffe.pb-c.h"
#include "data/datum.h"
#include "data/lmdb_source.h"
#include "graph/net.h"
#include "graph/weights.h"
#include "io/image.h"
#include "io/upgrade.h"
#include "lesion/dataset.h"
#include "lesion/files.h"
#include "lesion/imageops.h"
#include "lesion/segment.h"
#include "tests/unit/testutil.h"

/* ---- fixtures ---- */

static void setup_scratch(void) { test_scratch_make("check-lesion"); }

static void teardown_scratch(void) { test_scratch_remove(); }

/* models/<rel> of the source tree (CREMA_TEST_DATA is its tests/data). */
static const char *model_file(const char *rel) {
  static char paths[4][1024];
  static int next;
  const char *data = getenv("CREMA_TEST_DATA");
  ck_assert_msg(data != NULL, "CREMA_TEST_DATA is not set");
  char *p = paths[next++ % 4];
  snprintf(p, 1024, "%s/../../models/%s", data, rel);
  return p;
}

static net *build_net(const char *path, Caffe__Phase phase) {
  crema_error err = {0};
  Caffe__NetParameter *param = NULL;
  ck_assert_msg(net_param_read(path, CREMA_LOG_INFO, &param, &err) == CREMA_OK, "%s", err.message);
  net_options o;
  net_options_init(&o, phase);
  net *n = NULL;
  crema_status st = net_create(param, &o, &n, &err);
  protobuf_c_message_free_unpacked(&param->base, NULL);
  ck_assert_msg(st == CREMA_OK, "%s", err.message);
  return n;
}

static void assert_shape(const net *n, const char *name, int a, int b, int c, int d) {
  const blob *bl = net_blob_by_name(n, name);
  ck_assert_msg(bl != NULL, "no blob %s", name);
  ck_assert_int_eq(bl->num_axes, 4);
  ck_assert_msg(bl->shape[0] == a && bl->shape[1] == b && bl->shape[2] == c && bl->shape[3] == d,
                "%s is %dx%dx%dx%d, expected %dx%dx%dx%d", name, bl->shape[0], bl->shape[1],
                bl->shape[2], bl->shape[3], a, b, c, d);
}

static void reshape_input(net *n, int h, int w) {
  crema_error err = {0};
  blob *in = net_blob_by_name(n, "data");
  int dims[4] = {1, 3, h, w};
  ck_assert(blob_reshape(in, 4, dims, &err) == CREMA_OK);
  ck_assert_msg(net_reshape(n, &err) == CREMA_OK, "%s", err.message);
}

static const char *const sides[] = {"conv2_2", "conv3_3", "conv4_3", "conv5_3", "conv5_4"};
static const int side_stride[] = {2, 4, 8, 16, 16};

/* Every side's maps and the fused outputs are h x w; the trunk as VGG. */
static void assert_lesion_shapes(const net *n, int batch, int h, int w, int width_div) {
  char name[64];
  for (int i = 0; i < 5; i++) {
    snprintf(name, sizeof name, "%s_side", sides[i]);
    assert_shape(n, name, batch, 16, h / side_stride[i], w / side_stride[i]);
    snprintf(name, sizeof name, "%s_up", sides[i]);
    assert_shape(n, name, batch, 16, h, w);
  }
  assert_shape(n, "conv1_2", batch, 64 / width_div, h, w);
  assert_shape(n, "conv5_3", batch, 512 / width_div, h / 16, w / 16);
  assert_shape(n, "conv5_4", batch, 512 / width_div, h / 16, w / 16);
  assert_shape(n, "border_concat", batch, 64, h, w);
  assert_shape(n, "lesion_concat", batch, 64, h, w);
  assert_shape(n, "fuse_concat", batch, 128, h, w);
  assert_shape(n, "fuse_score", batch, 1, h, w);
  assert_shape(n, "border_score", batch, 1, h, w);
  assert_shape(n, "lesion_score", batch, 1, h, w);
}

/* ---- the networks ---- */

/* Caffe's max pooling, kernel 2 stride 2 (rounding up). */
static int pool_out(int in) { return (in - 2 + 1) / 2 + 1; }

/* Deconvolution with kernel 2f, stride f, pad f/2 maps n to exactly f*n,
 * and pooling halves every multiple of 16 exactly down to conv5. */
START_TEST(deconvolution_arithmetic) {
  for (int size = 16; size <= 4096; size += 16)
    for (int f = 2; f <= 16; f *= 2) {
      int in = size;
      for (int k = f; k > 1; k /= 2)
        in = pool_out(in);
      ck_assert_int_eq(in, size / f);
      int out = (in - 1) * f - 2 * (f / 2) + 2 * f;
      ck_assert_int_eq(out, size);
    }
  /* Other sizes do not come back whole: why S must be a multiple of 16. */
  ck_assert_int_ne(pool_out(pool_out(pool_out(100))) * 8, 100);
}
END_TEST

START_TEST(deploy_shapes_224_512_and_non_square) {
  net *n = build_net(model_file("lesion/deploy.prototxt"), CAFFE__PHASE__TEST);
  assert_lesion_shapes(n, 1, 224, 224, 1);
  assert_shape(n, "conv5_4", 1, 512, 14, 14);
  const char *outs[] = {"fuse_prob", "border_prob", "lesion_prob"};
  ck_assert_int_eq(n->noutputs, 3);
  for (int i = 0; i < 3; i++) {
    int found = 0;
    for (int k = 0; k < 3; k++)
      found |= !strcmp(n->blobs[n->output_ids[k]]->name, outs[i]);
    ck_assert_msg(found, "%s is not an output", outs[i]);
    assert_shape(n, outs[i], 1, 1, 224, 224);
  }
  /* The deconvolutions are the fixed bilinear kind, one filter per map. */
  int up = net_layer_index(n, "conv5_4_up");
  ck_assert_int_ge(up, 0);
  ck_assert_int_eq(n->layers[up]->nblobs, 1);
  blob *w = n->layers[up]->blobs[0];
  ck_assert_int_eq(w->shape[0], 16);
  ck_assert_int_eq(w->shape[1], 1);
  ck_assert_int_eq(w->shape[2], 32);
  /* Stock Caffe types only. */
  static const char *const stock[] = {"Input", "Convolution", "ReLU", "Pooling", "Deconvolution",
                                      "Power", "Concat", "Sigmoid", "Split"};
  for (int i = 0; i < n->nlayers; i++) {
    int ok = 0;
    for (size_t k = 0; k < sizeof stock / sizeof *stock; k++)
      ok |= !strcmp(n->lparams[i]->type, stock[k]);
    ck_assert_msg(ok, "layer %s has type %s", n->lparams[i]->name, n->lparams[i]->type);
  }
  reshape_input(n, 512, 512);
  assert_lesion_shapes(n, 1, 512, 512, 1);
  assert_shape(n, "fuse_prob", 1, 1, 512, 512);
  reshape_input(n, 320, 480);
  assert_lesion_shapes(n, 1, 320, 480, 1);
  net_free(n);
}
END_TEST

/* A small ISIC-style pair: a skin-coloured image with a dark ellipse and
 * its 0/255 mask. */
static void write_pair(const char *dir, const char *id, int w, int h, const char *ext) {
  crema_error err = {0};
  image img, mask;
  ck_assert(image_alloc(&img, w, h, 3, &err) == CREMA_OK);
  ck_assert(image_alloc(&mask, w, h, 1, &err) == CREMA_OK);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      double dx = (x - 0.45 * w) / (0.25 * w), dy = (y - 0.55 * h) / (0.3 * h);
      int in = dx * dx + dy * dy <= 1;
      unsigned char *p = img.pixels + ((size_t)y * w + x) * 3;
      p[0] = in ? 90 : 220;
      p[1] = in ? 50 : 170;
      p[2] = in ? 30 : 150;
      mask.pixels[(size_t)y * w + x] = in ? 255 : 0;
    }
  char path[600];
  snprintf(path, sizeof path, "%s/%s.%s", dir, id, ext);
  ck_assert_msg(image_write_file(path, &img, &err) == CREMA_OK, "%s", err.message);
  snprintf(path, sizeof path, "%s/%s_segmentation.png", dir, id);
  ck_assert_msg(image_write_file(path, &mask, &err) == CREMA_OK, "%s", err.message);
  image_free(&img);
  image_free(&mask);
}

static void write_text(const char *path, const char *text) {
  FILE *f = fopen(path, "wb");
  ck_assert_ptr_nonnull(f);
  fputs(text, f);
  fclose(f);
}

static void set_sources(Caffe__NetParameter *p, const char *db_dir) {
  for (size_t i = 0; i < p->n_layer; i++) {
    Caffe__DataParameter *d = p->layer[i]->data_param;
    if (!d || !d->source)
      continue;
    const char *base = strrchr(d->source, '/');
    base = base ? base + 1 : d->source;
    char path[600];
    snprintf(path, sizeof path, "%s/%s", db_dir, base);
    free(d->source);
    d->source = strdup(path);
  }
}

static net *build_train_net(const char *model, const char *db_dir, Caffe__Phase phase) {
  crema_error err = {0};
  Caffe__NetParameter *param = NULL;
  ck_assert_msg(net_param_read(model, CREMA_LOG_INFO, &param, &err) == CREMA_OK, "%s", err.message);
  set_sources(param, db_dir);
  net_options o;
  net_options_init(&o, phase);
  net *n = NULL;
  crema_status st = net_create(param, &o, &n, &err);
  protobuf_c_message_free_unpacked(&param->base, NULL);
  ck_assert_msg(st == CREMA_OK, "%s", err.message);
  return n;
}

static void make_db(int size, int augment, double val_fraction, int npairs) {
  crema_error err = {0};
  char imgs[512];
  snprintf(imgs, sizeof imgs, "%s", test_scratch_path("pairs"));
  mkdir(imgs, 0700);
  for (int i = 0; i < npairs; i++) {
    char id[32];
    snprintf(id, sizeof id, "ISIC_%07d", i);
    write_pair(imgs, id, 150 + 10 * i, 110 + 7 * i, i % 2 ? "png" : "jpg");
  }
  lesion_db_options o;
  lesion_db_options_init(&o);
  o.size = size;
  o.augment = augment;
  o.val_fraction = val_fraction;
  lesion_db_report r;
  ck_assert_msg(lesion_db_build(imgs, test_scratch_path("db"), &o, &r, &err) == CREMA_OK, "%s",
                err.message);
}

START_TEST(train_val_shapes_224) {
  make_db(224, 0, 0.5, 2);
  net *n = build_train_net(model_file("lesion/train_val.prototxt"), test_scratch_path("db"),
                           CAFFE__PHASE__TRAIN);
  assert_lesion_shapes(n, 2, 224, 224, 1);
  assert_shape(n, "data", 2, 3, 224, 224);
  assert_shape(n, "label", 2, 2, 224, 224);
  assert_shape(n, "mask", 2, 1, 224, 224);
  assert_shape(n, "border", 2, 1, 224, 224);
  char name[64];
  for (int i = 0; i < 5; i++) {
    snprintf(name, sizeof name, "%s_score", sides[i]);
    assert_shape(n, name, 2, 1, 224, 224);
  }
  /* Eight class-balanced losses, the border one on the band. */
  int losses = 0;
  for (int i = 0; i < n->nlayers; i++)
    if (!strcmp(n->lparams[i]->type, "ClassBalancedSigmoidCrossEntropyLoss")) {
      losses++;
      ck_assert_float_eq(n->top_loss_weight[i][0], 1.0f);
    }
  ck_assert_int_eq(losses, 8);
  int bl = net_layer_index(n, "border_loss");
  ck_assert_int_ge(bl, 0);
  ck_assert_str_eq(n->lparams[bl]->bottom[1], "border");
  /* The Deconvolution weights are not learned. */
  int up = net_layer_index(n, "conv2_2_up");
  ck_assert_float_eq(n->lparams[up]->param[0]->lr_mult, 0.0f);
  net_free(n);
  n = build_train_net(model_file("lesion/train_val.prototxt"), test_scratch_path("db"),
                      CAFFE__PHASE__TEST);
  assert_lesion_shapes(n, 1, 224, 224, 1);
  net_free(n);
}
END_TEST

/* The bundled variant trains: one forward/backward gives finite losses and
 * gradients reaching conv1_1. */
START_TEST(bundled_train_val_runs) {
  make_db(128, 1, 0, 3);
  net *n = build_train_net(model_file("lesion/bundled/train_val.prototxt"), test_scratch_path("db"),
                           CAFFE__PHASE__TRAIN);
  assert_lesion_shapes(n, 4, 128, 128, 8);
  crema_error err = {0};
  float loss = 0;
  ck_assert_msg(net_forward(n, &loss, &err) == CREMA_OK, "%s", err.message);
  ck_assert(isfinite(loss) && loss > 0);
  ck_assert_msg(net_backward(n, &err) == CREMA_OK, "%s", err.message);
  int c = net_layer_index(n, "conv1_1");
  blob *w = n->layers[c]->blobs[0];
  double g = 0;
  for (size_t i = 0; i < w->count; i++)
    g += fabs(w->diff[i]);
  ck_assert(isfinite(g) && g > 0);
  net_free(n);
}
END_TEST

/* ---- image operations ---- */

START_TEST(border_band_of_a_square) {
  crema_error err = {0};
  enum { W = 14, H = 12 };
  unsigned char mask[W * H] = {0}, band[W * H];
  for (int y = 2; y < 9; y++)
    for (int x = 3; x < 10; x++)
      mask[y * W + x] = 1;
  ck_assert(lesion_border_band(mask, W, H, 0, band, &err) == CREMA_OK);
  /* Radius 0: the pixels on both sides of the boundary, but not the
   * outside diagonal corner. */
  ck_assert_int_eq(band[2 * W + 3], 1);
  ck_assert_int_eq(band[1 * W + 3], 1);
  ck_assert_int_eq(band[3 * W + 4], 0);
  ck_assert_int_eq(band[1 * W + 2], 0);
  ck_assert_int_eq(band[0], 0);
  ck_assert(lesion_border_band(mask, W, H, 1, band, &err) == CREMA_OK);
  ck_assert_int_eq(band[3 * W + 4], 1);
  ck_assert_int_eq(band[1 * W + 2], 1);
  ck_assert_int_eq(band[0], 0);
  ck_assert_int_eq(band[5 * W + 6], 0); /* three pixels inside every edge */
  ck_assert(lesion_border_band(mask, W, H, 2, band, &err) == CREMA_OK);
  ck_assert_int_eq(band[5 * W + 6], 0);
  ck_assert(lesion_border_band(mask, W, H, 3, band, &err) == CREMA_OK);
  ck_assert_int_eq(band[5 * W + 6], 1);
  /* A mask touching the image's edge has no boundary there. */
  memset(mask, 1, sizeof mask);
  ck_assert(lesion_border_band(mask, W, H, 2, band, &err) == CREMA_OK);
  for (int i = 0; i < W * H; i++)
    ck_assert_int_eq(band[i], 0);
}
END_TEST

START_TEST(flip_rotate_and_resize) {
  crema_error err = {0};
  image img;
  ck_assert(image_alloc(&img, 3, 2, 1, &err) == CREMA_OK);
  for (int i = 0; i < 6; i++)
    img.pixels[i] = (unsigned char)i; /* rows 0 1 2 / 3 4 5 */
  ck_assert(lesion_rotate90(&img, 1, &err) == CREMA_OK);
  ck_assert_int_eq(img.width, 2);
  ck_assert_int_eq(img.height, 3);
  static const unsigned char ccw[6] = {2, 5, 1, 4, 0, 3};
  ck_assert_mem_eq(img.pixels, ccw, 6);
  ck_assert(lesion_rotate90(&img, 3, &err) == CREMA_OK);
  lesion_flip(&img);
  static const unsigned char flipped[6] = {2, 1, 0, 5, 4, 3};
  ck_assert_mem_eq(img.pixels, flipped, 6);
  image_free(&img);

  /* Shrinking by more than 2x averages blocks first: a fine stripe pattern
   * becomes nearly uniform grey (plain bilinear would give 100 or 200). */
  ck_assert(image_alloc(&img, 400, 300, 3, &err) == CREMA_OK);
  for (int y = 0; y < 300; y++)
    for (int x = 0; x < 400; x++)
      memset(img.pixels + ((size_t)y * 400 + x) * 3, x % 2 ? 200 : 100, 3);
  image small;
  ck_assert(lesion_resize(&img, 32, 32, &small, &err) == CREMA_OK);
  for (int i = 0; i < 32 * 32 * 3; i++)
    ck_assert_int_le(abs(small.pixels[i] - 150), 10);
  image_free(&small);
  image_free(&img);
}
END_TEST

START_TEST(map_resampling) {
  crema_error err = {0};
  float src[4] = {0, 1, 0, 1}; /* 2x2: left 0, right 1 */
  float dst[16];
  ck_assert(lesion_map_resize(src, 2, 2, dst, 4, 4, &err) == CREMA_OK);
  /* cv::resize's centres: 0, 0.25, 0.75, 1 across. */
  ck_assert_float_eq_tol(dst[0], 0.f, 1e-6);
  ck_assert_float_eq_tol(dst[1], 0.25f, 1e-6);
  ck_assert_float_eq_tol(dst[2], 0.75f, 1e-6);
  ck_assert_float_eq_tol(dst[3], 1.f, 1e-6);
  image out;
  ck_assert(image_alloc(&out, 4, 4, 1, &err) == CREMA_OK);
  ck_assert(lesion_map_to_image(src, 2, 2, -1, &out, &err) == CREMA_OK);
  ck_assert_int_eq(out.pixels[1], 64);
  ck_assert_int_eq(out.pixels[3], 255);
  ck_assert(lesion_map_to_image(src, 2, 2, 0.5f, &out, &err) == CREMA_OK);
  ck_assert_int_eq(out.pixels[1], 0);
  ck_assert_int_eq(out.pixels[2], 255);
  image_free(&out);
  ck_assert(lesion_map_resize(src, 0, 2, dst, 4, 4, &err) != CREMA_OK);
}
END_TEST

START_TEST(companion_names_and_ids) {
  ck_assert(lesion_is_companion_name("ISIC_0000000_segmentation.png"));
  ck_assert(lesion_is_companion_name("ISIC_0000000_superpixels.png"));
  ck_assert(lesion_is_companion_name("a_overlay.png"));
  ck_assert(!lesion_is_companion_name("ISIC_0000000.jpg"));
  ck_assert(lesion_has_image_extension("x.JPEG"));
  ck_assert(!lesion_has_image_extension("x.txt"));
  crema_error err = {0};
  char *id = lesion_image_id("dir.d/ISIC_1.jpg", &err);
  ck_assert_str_eq(id, "ISIC_1");
  free(id);
}
END_TEST

/* ---- lesion-db ---- */

typedef struct db_records {
  char keys[64][96];
  int n;
} db_records;

static void read_keys(const char *path, db_records *r) {
  crema_error err = {0};
  lmdb_source *s;
  ck_assert_msg(lmdb_source_open(path, &s, &err) == CREMA_OK, "%s", err.message);
  r->n = (int)lmdb_source_count(s);
  ck_assert_int_le(r->n, 64);
  for (int i = 0; i < r->n; i++) {
    const void *k;
    size_t len;
    lmdb_source_key(s, &k, &len);
    ck_assert_uint_lt(len, 96);
    memcpy(r->keys[i], k, len);
    r->keys[i][len] = '\0';
    ck_assert(lmdb_source_next(s, NULL, &err) == CREMA_OK);
  }
  lmdb_source_close(s);
}

START_TEST(lesion_db_pairs_keys_and_labels) {
  crema_error err = {0};
  char imgs[512];
  snprintf(imgs, sizeof imgs, "%s", test_scratch_path("pairs"));
  mkdir(imgs, 0700);
  for (int i = 0; i < 5; i++) {
    char id[32];
    snprintf(id, sizeof id, "ISIC_%07d", i);
    write_pair(imgs, id, 60 + 9 * i, 45 + 5 * i, i % 2 ? "png" : "jpg");
  }
  /* Skipped: an image without a mask, a corrupt image, a mask of another
   * size; ignored: a text file and superpixels. */
  write_pair(imgs, "nomask", 40, 40, "png");
  remove(test_scratch_path("pairs/nomask_segmentation.png"));
  write_pair(imgs, "corrupt", 40, 40, "jpg");
  write_text(test_scratch_path("pairs/corrupt.jpg"), "not a jpeg");
  write_pair(imgs, "mismatch", 40, 40, "png");
  write_pair(imgs, "other", 30, 30, "png");
  rename(test_scratch_path("pairs/other_segmentation.png"), test_scratch_path("pairs/mismatch_segmentation.png"));
  remove(test_scratch_path("pairs/other.png"));
  write_text(test_scratch_path("pairs/metadata.csv"), "id\n");
  write_text(test_scratch_path("pairs/ISIC_0000000_superpixels.png"), "x");

  lesion_db_options o;
  lesion_db_options_init(&o);
  o.size = 32;
  o.augment = 2;
  o.val_fraction = 0.2;
  o.seed = 7;
  lesion_db_report r;
  ck_assert_msg(lesion_db_build(imgs, test_scratch_path("db"), &o, &r, &err) == CREMA_OK, "%s",
                err.message);
  ck_assert_uint_eq(r.failed, 3);
  ck_assert_uint_eq(r.val_images, 1);
  ck_assert_uint_eq(r.train_images, 4);
  ck_assert_uint_eq(r.train_records, 12);
  ck_assert_uint_eq(r.val_records, 1);
  ck_assert_int_eq(r.border, 1);

  db_records a, b;
  read_keys(test_scratch_path("db/images_lmdb"), &a);
  read_keys(test_scratch_path("db/labels_lmdb"), &b);
  ck_assert_int_eq(a.n, 12);
  ck_assert_int_eq(b.n, 12);
  for (int i = 0; i < 12; i++) {
    ck_assert_str_eq(a.keys[i], b.keys[i]);
    /* Numbered in a shuffle of the 18 training slots (6 pairs with masks x
     * 3; the two unreadable ones leave gaps). */
    ck_assert_int_lt(atoi(a.keys[i]), 18);
    ck_assert(i == 0 || atoi(a.keys[i]) > atoi(a.keys[i - 1]));
  }
  read_keys(test_scratch_path("db/val_labels_lmdb"), &b);
  ck_assert_int_eq(b.n, 1);

  /* Label records: 2 channels, 32x32, mask 0/1 with a band at its edge. */
  lmdb_source *s;
  ck_assert(lmdb_source_open(test_scratch_path("db/labels_lmdb"), &s, &err) == CREMA_OK);
  for (int rec = 0; rec < 12; rec++) {
    const void *v;
    size_t len;
    lmdb_source_value(s, &v, &len);
    Caffe__Datum *d;
    ck_assert(datum_parse(v, len, &d, &err) == CREMA_OK);
    ck_assert_int_eq(d->channels, 2);
    ck_assert_int_eq(d->height, 32);
    ck_assert_int_eq(d->width, 32);
    ck_assert_uint_eq(d->data.len, 2 * 32 * 32);
    const unsigned char *m = d->data.data, *band = m + 32 * 32;
    int on = 0, banded = 0, band_inside = 0;
    for (int i = 0; i < 32 * 32; i++) {
      ck_assert_int_le(m[i], 1);
      ck_assert_int_le(band[i], 1);
      on += m[i];
      banded += band[i];
      band_inside += band[i] && m[i];
    }
    ck_assert_int_gt(on, 50);
    ck_assert_int_lt(on, 32 * 32 - 50);
    ck_assert_int_gt(banded, 20);
    ck_assert_int_gt(band_inside, 0);
    ck_assert_int_lt(band_inside, banded);
    protobuf_c_message_free_unpacked(&d->base, NULL);
    ck_assert(lmdb_source_next(s, NULL, &err) == CREMA_OK);
  }
  lmdb_source_close(s);
  /* Image records: 3-channel 32x32. */
  ck_assert(lmdb_source_open(test_scratch_path("db/images_lmdb"), &s, &err) == CREMA_OK);
  const void *v;
  size_t len;
  lmdb_source_value(s, &v, &len);
  Caffe__Datum *d;
  ck_assert(datum_parse(v, len, &d, &err) == CREMA_OK);
  ck_assert_int_eq(d->channels, 3);
  ck_assert_uint_eq(d->data.len, 3 * 32 * 32);
  protobuf_c_message_free_unpacked(&d->base, NULL);
  lmdb_source_close(s);

  /* Existing databases are not overwritten; no pairs is an error. */
  ck_assert(lesion_db_build(imgs, test_scratch_path("db"), &o, &r, &err) != CREMA_OK);
  mkdir(test_scratch_path("empty"), 0700);
  ck_assert(lesion_db_build(test_scratch_path("empty"), test_scratch_path("db2"), &o, &r, &err) ==
            CREMA_ERR_NOT_FOUND);
  o.size = 8;
  ck_assert(lesion_db_build(imgs, test_scratch_path("db3"), &o, &r, &err) == CREMA_ERR_INVALID);
}
END_TEST

/* The same options give the same databases. */
START_TEST(lesion_db_is_reproducible) {
  crema_error err = {0};
  char imgs[512];
  snprintf(imgs, sizeof imgs, "%s", test_scratch_path("pairs"));
  mkdir(imgs, 0700);
  for (int i = 0; i < 3; i++) {
    char id[32];
    snprintf(id, sizeof id, "I%d", i);
    write_pair(imgs, id, 50, 40, "png");
  }
  lesion_db_options o;
  lesion_db_options_init(&o);
  o.size = 16;
  o.augment = 3;
  lesion_db_report r;
  ck_assert(lesion_db_build(imgs, test_scratch_path("a"), &o, &r, &err) == CREMA_OK);
  ck_assert(lesion_db_build(imgs, test_scratch_path("b"), &o, &r, &err) == CREMA_OK);
  lmdb_source *sa, *sb;
  ck_assert(lmdb_source_open(test_scratch_path("a/labels_lmdb"), &sa, &err) == CREMA_OK);
  ck_assert(lmdb_source_open(test_scratch_path("b/labels_lmdb"), &sb, &err) == CREMA_OK);
  for (int i = 0; i < 12; i++) {
    const void *va, *vb;
    size_t la, lb;
    lmdb_source_value(sa, &va, &la);
    lmdb_source_value(sb, &vb, &lb);
    ck_assert_uint_eq(la, lb);
    ck_assert(memcmp(va, vb, la) == 0);
    ck_assert(lmdb_source_next(sa, NULL, &err) == CREMA_OK);
    ck_assert(lmdb_source_next(sb, NULL, &err) == CREMA_OK);
  }
  lmdb_source_close(sa);
  lmdb_source_close(sb);
}
END_TEST

/* ---- segmentation ---- */

static void assert_png_size(const char *path, int w, int h, int channels) {
  crema_error err = {0};
  image img;
  ck_assert_msg(image_read_file(path, IMAGE_NATIVE, &img, &err) == CREMA_OK, "%s", err.message);
  ck_assert_int_eq(img.width, w);
  ck_assert_int_eq(img.height, h);
  ck_assert_int_eq(img.channels, channels);
  image_free(&img);
}

START_TEST(segment_outputs_at_input_size) {
  crema_error err = {0};
  char imgs[512];
  snprintf(imgs, sizeof imgs, "%s", test_scratch_path("in"));
  mkdir(imgs, 0700);
  write_pair(imgs, "wide", 201, 75, "jpg");
  write_pair(imgs, "tiny", 13, 29, "png");
  lesion_segment_options o;
  lesion_segment_options_init(&o);
  ck_assert(lesion_parse_scales("0.5,1,1.5", &o, &err) == CREMA_OK);
  ck_assert_int_eq(o.nscales, 3);
  lesion_segmenter *seg;
  ck_assert_msg(lesion_segmenter_open(model_file("lesion/bundled/deploy.prototxt"),
                                      model_file("lesion/bundled/lesion_w8_128.caffemodel"), &o,
                                      &seg, &err) == CREMA_OK,
                "%s", err.message);
  ck_assert_int_eq(lesion_segmenter_size(seg), 128);
  char out[512];
  snprintf(out, sizeof out, "%s", test_scratch_path("out"));
  mkdir(out, 0700);
  ck_assert_msg(lesion_segment_file(seg, test_scratch_path("in/wide.jpg"), out, &err) == CREMA_OK, "%s",
                err.message);
  ck_assert_msg(lesion_segment_file(seg, test_scratch_path("in/tiny.png"), out, &err) == CREMA_OK, "%s",
                err.message);
  assert_png_size(test_scratch_path("out/wide_segmentation.png"), 201, 75, 1);
  assert_png_size(test_scratch_path("out/wide_border.png"), 201, 75, 1);
  assert_png_size(test_scratch_path("out/wide_lesion.png"), 201, 75, 1);
  assert_png_size(test_scratch_path("out/wide_overlay.png"), 201, 75, 3);
  assert_png_size(test_scratch_path("out/tiny_segmentation.png"), 13, 29, 1);
  /* The probabilities of the largest scale's size (128 * 1.5 = 192). */
  image img;
  ck_assert(image_read_file(test_scratch_path("in/wide.jpg"), IMAGE_COLOR, &img, &err) == CREMA_OK);
  lesion_maps maps;
  ck_assert(lesion_segment_image(seg, &img, &maps, &err) == CREMA_OK);
  ck_assert_int_eq(maps.side, 192);
  ck_assert_ptr_nonnull(maps.border);
  for (int i = 0; i < 192 * 192; i++)
    ck_assert(maps.fuse[i] >= 0 && maps.fuse[i] <= 1);
  image_free(&img);
  /* Files that are no images fail with a message naming them. */
  write_text(test_scratch_path("in/broken.jpg"), "\xff\xd8\xff garbage");
  ck_assert(lesion_segment_file(seg, test_scratch_path("in/broken.jpg"), out, &err) != CREMA_OK);
  ck_assert_ptr_nonnull(strstr(err.message, "broken.jpg"));
  ck_assert(lesion_segment_file(seg, test_scratch_path("in/missing.png"), out, &err) != CREMA_OK);
  lesion_segmenter_close(seg);

  /* Bad scales and sizes are refused. */
  ck_assert(lesion_parse_scales("1,x", &o, &err) == CREMA_ERR_INVALID);
  ck_assert(lesion_parse_scales("0", &o, &err) == CREMA_ERR_INVALID);
  ck_assert(lesion_parse_scales("", &o, &err) == CREMA_ERR_INVALID);
  lesion_segment_options_init(&o);
  o.size = 100000;
  ck_assert(lesion_segmenter_open(model_file("lesion/bundled/deploy.prototxt"), NULL, &o, &seg,
                                  &err) == CREMA_ERR_INVALID);
}
END_TEST

static Suite *lesion_suite(void) {
  Suite *s = suite_create("lesion");
  TCase *tc = tcase_create("nets");
  tcase_add_checked_fixture(tc, setup_scratch, teardown_scratch);
  tcase_add_test(tc, deconvolution_arithmetic);
  tcase_add_test(tc, deploy_shapes_224_512_and_non_square);
  tcase_add_test(tc, train_val_shapes_224);
  tcase_add_test(tc, bundled_train_val_runs);
  tcase_set_timeout(tc, 300);
  suite_add_tcase(s, tc);
  tc = tcase_create("imageops");
  tcase_add_test(tc, border_band_of_a_square);
  tcase_add_test(tc, flip_rotate_and_resize);
  tcase_add_test(tc, map_resampling);
  tcase_add_test(tc, companion_names_and_ids);
  suite_add_tcase(s, tc);
  tc = tcase_create("lesion_db");
  tcase_add_checked_fixture(tc, setup_scratch, teardown_scratch);
  tcase_add_test(tc, lesion_db_pairs_keys_and_labels);
  tcase_add_test(tc, lesion_db_is_reproducible);
  suite_add_tcase(s, tc);
  tc = tcase_create("segment");
  tcase_add_checked_fixture(tc, setup_scratch, teardown_scratch);
  tcase_add_test(tc, segment_outputs_at_input_size);
  tcase_set_timeout(tc, 120);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(lesion_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
