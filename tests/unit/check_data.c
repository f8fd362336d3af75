/* The data pipeline: LMDB source and writer, Datum decoding, the
 * DataTransformer, the Data layer (against Caffe's outputs), and the
 * convert-imageset / compute-image-mean tools. */
#include "config.h"

#include <check.h>
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "caffe.pb-c.h"
#include "data/datum.h"
#include "data/lmdb_source.h"
#include "data/transform.h"
#include "graph/net.h"
#include "io/blobproto.h"
#include "io/file.h"
#include "io/image.h"
#include "io/text.h"
#include "io/upgrade.h"
#include "layers/layer.h"
#include "tests/unit/testutil.h"

/* ---- helpers ---- */

static const char *fixture(const char *rel) {
  static char path[1024];
  const char *root = getenv("CREMA_TEST_DATA");
  ck_assert_msg(root != NULL, "CREMA_TEST_DATA is not set");
  snprintf(path, sizeof path, "%s/%s", root, rel);
  return path;
}

static void run_ok(const char *cmd) {
  int rc = system(cmd);
  ck_assert_msg(rc == 0, "command failed (%d): %s", rc, cmd);
}

static int run_status(const char *cmd) {
  int rc = system(cmd);
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static const char *crema_bin(void) {
  const char *bin = getenv("CREMA_BIN");
  ck_assert_msg(bin != NULL, "CREMA_BIN is not set");
  return bin;
}

/* A copy, so that LMDB's lock file never lands in the source tree. */
static void copy_tree(const char *src, const char *dst) {
  char cmd[2048];
  snprintf(cmd, sizeof cmd, "cp -r '%s' '%s' && chmod -R u+w '%s'", src, dst, dst);
  run_ok(cmd);
}

static void write_file(const char *path, const void *data, size_t len) {
  FILE *f = fopen(path, "wb");
  ck_assert_ptr_nonnull(f);
  ck_assert_uint_eq(fwrite(data, 1, len, f), len);
  fclose(f);
}

static void put_datum(lmdb_writer *w, const char *key, const Caffe__Datum *d) {
  unsigned char *buf;
  size_t len;
  crema_error err = {0};
  ck_assert_int_eq(datum_pack(d, &buf, &len, &err), CREMA_OK);
  ck_assert_msg(lmdb_writer_put(w, key, strlen(key), buf, len, &err) == CREMA_OK, "%s",
                err.message);
  free(buf);
}

/* A raw record c x h x w whose bytes are base + index, labelled label. */
static void put_raw(lmdb_writer *w, const char *key, int c, int h, int wd, int base, int label) {
  Caffe__Datum d;
  caffe__datum__init(&d);
  size_t n = (size_t)c * h * wd;
  unsigned char *bytes = malloc(n);
  for (size_t i = 0; i < n; i++)
    bytes[i] = (unsigned char)(base + i);
  d.has_channels = d.has_height = d.has_width = d.has_data = d.has_label = 1;
  d.channels = c;
  d.height = h;
  d.width = wd;
  d.data.data = bytes;
  d.data.len = n;
  d.label = label;
  put_datum(w, key, &d);
  free(bytes);
}

static lmdb_writer *new_db(const char *path) {
  lmdb_writer *w;
  crema_error err = {0};
  ck_assert_msg(lmdb_writer_create(path, &w, &err) == CREMA_OK, "%s", err.message);
  return w;
}

static void finish_db(lmdb_writer *w) {
  crema_error err = {0};
  ck_assert_msg(lmdb_writer_finish(w, &err) == CREMA_OK, "%s", err.message);
}

/* ---- a Data layer built from text ---- */

typedef struct data_fixture {
  Caffe__LayerParameter *param;
  layer_ctx ctx;
  layer *l;
  blob *tops[2];
  blob_list top;
} data_fixture;

static crema_status data_open(data_fixture *f, const char *text, Caffe__Phase phase, int ntops,
                              crema_error *err) {
  memset(f, 0, sizeof *f);
  ProtobufCMessage *m;
  ck_assert_msg(txt_parse(text, strlen(text), "layer", &caffe__layer_parameter__descriptor, &m,
                          err) == CREMA_OK,
                "%s", err->message);
  f->param = (Caffe__LayerParameter *)m;
  rng_seed(&f->ctx.rng, 1701);
  ck_assert_int_eq(layer_create(f->param, phase, &f->ctx, &f->l, err), CREMA_OK);
  for (int i = 0; i < ntops; i++)
    f->tops[i] = blob_create(i ? "label" : "data", err);
  f->top.v = f->tops;
  f->top.n = ntops;
  blob_list bottom = {NULL, 0};
  return f->l->ops->setup(f->l, &bottom, &f->top, err);
}

static crema_status data_forward(data_fixture *f, crema_error *err) {
  blob_list bottom = {NULL, 0};
  return f->l->ops->forward(f->l, &bottom, &f->top, err);
}

static void data_close(data_fixture *f) {
  layer_free(f->l);
  for (int i = 0; i < 2; i++)
    blob_free(f->tops[i]);
  free(f->ctx.workspace);
  protobuf_c_message_free_unpacked(&f->param->base, NULL);
}

static char *data_layer_text(const char *source, int batch, const char *transform) {
  static char text[2048];
  snprintf(text, sizeof text,
           "name: 'data' type: 'Data' top: 'data' top: 'label' "
           "data_param { source: '%s' batch_size: %d backend: LMDB } %s",
           source, batch, transform ? transform : "");
  return text;
}

/* ---- golden cases: Caffe's Data layer outputs ---- */

static void expect_blob_near(const blob *got, const char *ref_path) {
  blob *ref = blob_create("ref", NULL);
  crema_error err = {0};
  int has_diff;
  ck_assert_msg(blob_read_file(ref_path, ref, &has_diff, &err) == CREMA_OK, "%s", err.message);
  char a[64], b[64];
  ck_assert_msg(blob_same_shape(got, ref), "%s: shape %s, Caffe %s", ref_path,
                blob_shape_string(got, a, sizeof a), blob_shape_string(ref, b, sizeof b));
  float max_ref = 0.f, max_diff = 0.f;
  for (size_t i = 0; i < ref->count; i++) {
    max_ref = fmaxf(max_ref, fabsf(ref->data[i]));
    max_diff = fmaxf(max_diff, fabsf(ref->data[i] - got->data[i]));
  }
  ck_assert_msg(max_diff <= 1e-4f * max_ref, "%s: max diff %g (max |caffe| %g)", ref_path,
                max_diff, max_ref);
  blob_free(ref);
}

static void run_golden_case(const char *name) {
  char src[512], dst[512];
  snprintf(src, sizeof src, "%s", fixture("golden/data"));
  snprintf(src + strlen(src), sizeof src - strlen(src), "/%s", name);
  snprintf(dst, sizeof dst, "%s/%s", test_scratch_dir(), name);
  copy_tree(src, dst);
  ck_assert_int_eq(chdir(dst), 0); /* source and mean_file are relative, as in Caffe */
  crema_error err = {0};
  Caffe__NetParameter *np;
  ck_assert_msg(net_param_read_text("net.prototxt", CREMA_LOG_INFO, &np, &err) == CREMA_OK, "%s", err.message);
  net_options opts;
  net_options_init(&opts, CAFFE__PHASE__TEST);
  opts.keep_all = 1;
  net *n;
  ck_assert_msg(net_create(np, &opts, &n, &err) == CREMA_OK, "%s", err.message);
  protobuf_c_message_free_unpacked(&np->base, NULL);
  for (int k = 0; k < 4; k++) {
    ck_assert_msg(net_forward(n, NULL, &err) == CREMA_OK, "%s", err.message);
    char ref[256];
    snprintf(ref, sizeof ref, "forward%d/blobs/data.binaryproto", k);
    expect_blob_near(net_blob_by_name(n, "data"), ref);
    snprintf(ref, sizeof ref, "forward%d/blobs/label.binaryproto", k);
    expect_blob_near(net_blob_by_name(n, "label"), ref);
  }
  net_free(n);
  ck_assert_int_eq(chdir(test_start_dir()), 0);
}

START_TEST(golden_mean_file_crop) { run_golden_case("data_mean_file_crop"); }
END_TEST

START_TEST(golden_mean_values_crop) { run_golden_case("data_mean_values_crop"); }
END_TEST

START_TEST(compute_image_mean_matches_caffe) {
  char src[512];
  snprintf(src, sizeof src, "%s", fixture("golden/data/data_mean_file_crop"));
  copy_tree(src, test_scratch_path("case"));
  char cmd[2048];
  snprintf(cmd, sizeof cmd,
           "'%s' compute-image-mean '%s/case/db_lmdb' '%s/mean.binaryproto' 2>/dev/null",
           crema_bin(), test_scratch_dir(), test_scratch_dir());
  run_ok(cmd);
  file_view a, b;
  crema_error err = {0};
  ck_assert_int_eq(file_view_open(test_scratch_path("mean.binaryproto"), 1 << 20, &a, &err), CREMA_OK);
  ck_assert_int_eq(file_view_open(test_scratch_path("case/mean.binaryproto"), 1 << 20, &b, &err),
                   CREMA_OK);
  ck_assert_uint_eq(a.size, b.size);
  ck_assert_int_eq(memcmp(a.data, b.data, a.size), 0);
  file_view_close(&a);
  file_view_close(&b);
  snprintf(cmd, sizeof cmd,
           "'%s' compute-image-mean --backend=leveldb '%s/case/db_lmdb' 2>&1 | grep -q "
           "'LEVELDB is not supported'",
           crema_bin(), test_scratch_dir());
  run_ok(cmd);
}
END_TEST

/* ---- LMDB source and writer ---- */

START_TEST(lmdb_key_order_and_wrap) {
  lmdb_writer *w = new_db(test_scratch_path("db"));
  put_raw(w, "b", 1, 1, 1, 2, 2);
  put_raw(w, "c", 1, 1, 1, 3, 3);
  put_raw(w, "a", 1, 1, 1, 1, 1);
  finish_db(w);
  crema_error err = {0};
  lmdb_source *s, *t;
  ck_assert_int_eq(lmdb_source_open(test_scratch_path("db"), &s, &err), CREMA_OK);
  ck_assert_int_eq(lmdb_source_open(test_scratch_path("db"), &t, &err), CREMA_OK); /* two readers */
  ck_assert_uint_eq(lmdb_source_count(s), 3);
  const char *order = "abcab";
  for (int i = 0; order[i]; i++) {
    const void *k;
    size_t len;
    lmdb_source_key(s, &k, &len);
    ck_assert_uint_eq(len, 1);
    ck_assert_int_eq(*(const char *)k, order[i]);
    int wrapped;
    ck_assert_int_eq(lmdb_source_next(s, &wrapped, &err), CREMA_OK);
    ck_assert_int_eq(wrapped, order[i] == 'c');
  }
  lmdb_source_close(t);
  lmdb_source_close(s);

  ck_assert_int_eq(lmdb_source_open(test_scratch_path("missing"), &s, &err), CREMA_ERR_NOT_FOUND);
  ck_assert_ptr_nonnull(strstr(err.message, "missing"));
  ck_assert_int_ne(lmdb_writer_create(test_scratch_path("db"), &w, &err), CREMA_OK);
  ck_assert_ptr_nonnull(strstr(err.message, "already exists"));
  w = new_db(test_scratch_path("empty"));
  finish_db(w);
  ck_assert_int_ne(lmdb_source_open(test_scratch_path("empty"), &s, &err), CREMA_OK);
  ck_assert_ptr_nonnull(strstr(err.message, "no records"));
}
END_TEST

START_TEST(lmdb_writer_grows_the_map) {
  /* 40 records of 2 MiB overflow the initial 64 MiB map. */
  lmdb_writer *w = new_db(test_scratch_path("big"));
  size_t n = (size_t)2 << 20;
  unsigned char *value = calloc(n, 1);
  crema_error err = {0};
  for (int i = 0; i < 40; i++) {
    char key[16];
    snprintf(key, sizeof key, "%08d", i);
    value[0] = (unsigned char)i;
    ck_assert_msg(lmdb_writer_put(w, key, strlen(key), value, n, &err) == CREMA_OK, "%s",
                  err.message);
  }
  free(value);
  finish_db(w);
  lmdb_source *s;
  ck_assert_int_eq(lmdb_source_open(test_scratch_path("big"), &s, &err), CREMA_OK);
  ck_assert_uint_eq(lmdb_source_count(s), 40);
  const void *v;
  size_t len;
  lmdb_source_value(s, &v, &len);
  ck_assert_uint_eq(len, n);
  lmdb_source_close(s);
}
END_TEST

static void read_only_open_check(const char *db) {
  crema_error err = {0};
  lmdb_source *s;
  ck_assert_msg(lmdb_source_open(db, &s, &err) == CREMA_OK, "%s", err.message);
  ck_assert_uint_eq(lmdb_source_count(s), 10);
  lmdb_source_close(s);
}

START_TEST(read_only_database_directory) {
  char src[512];
  snprintf(src, sizeof src, "%s", fixture("golden/data/data_mean_values_crop/db_lmdb"));
  copy_tree(src, test_scratch_path("ro"));
  chmod(test_scratch_path("ro/data.mdb"), 0444);
  chmod(test_scratch_path("ro"), 0555);
  chmod(test_scratch_dir(), 0755);
  if (geteuid() != 0) {
    read_only_open_check(test_scratch_path("ro"));
  } else {
    /* root writes anywhere: the read-only case is run as nobody. */
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
      if (setgid(65534) != 0 || setuid(65534) != 0)
        _exit(3);
      crema_error err = {0};
      lmdb_source *s;
      if (lmdb_source_open(test_scratch_path("ro"), &s, &err) != CREMA_OK) {
        fprintf(stderr, "%s\n", err.message);
        _exit(1);
      }
      int ok = lmdb_source_count(s) == 10;
      lmdb_source_close(s);
      _exit(ok ? 0 : 2);
    }
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "read-only open failed (%d)",
                  status);
  }
  struct stat st;
  ck_assert_int_ne(stat(test_scratch_path("ro/lock.mdb"), &st), 0);
}
END_TEST

/* ---- the Data layer ---- */

START_TEST(leveldb_is_rejected) {
  data_fixture f;
  crema_error err = {0};
  ck_assert_int_eq(data_open(&f,
                             "name: 'data' type: 'Data' top: 'data' "
                             "data_param { source: 'x' batch_size: 1 }",
                             CAFFE__PHASE__TEST, 1, &err),
                   CREMA_ERR_UNSUPPORTED);
  ck_assert_msg(strstr(err.message, "LEVELDB is not supported") != NULL, "%s", err.message);
  ck_assert_ptr_nonnull(strstr(err.message, "convert"));
  data_close(&f);
}
END_TEST

START_TEST(corrupt_records_name_database_and_key) {
  lmdb_writer *w = new_db(test_scratch_path("db"));
  put_raw(w, "k0_good", 3, 4, 4, 0, 7);
  Caffe__Datum d;
  caffe__datum__init(&d);
  unsigned char ten[10] = {0};
  d.has_channels = d.has_height = d.has_width = d.has_data = 1;
  d.channels = 3, d.height = 4, d.width = 4;
  d.data.data = ten;
  d.data.len = sizeof ten;
  put_datum(w, "k1_short", &d);
  const unsigned char garbage[] = {0xff, 0xff, 0xff, 0xff, 0x0f};
  crema_error err = {0};
  ck_assert_int_eq(lmdb_writer_put(w, "k2_garbage", 10, garbage, sizeof garbage, &err),
                   CREMA_OK);
  finish_db(w);

  data_fixture f;
  ck_assert_msg(data_open(&f, data_layer_text(test_scratch_path("db"), 1, NULL), CAFFE__PHASE__TEST, 2,
                          &err) == CREMA_OK,
                "%s", err.message);
  ck_assert_int_eq(data_forward(&f, &err), CREMA_OK);
  ck_assert_float_eq(f.tops[1]->data[0], 7.f);
  for (int i = 0; i < 2; i++) { /* the error stays until the layer is gone */
    ck_assert_int_ne(data_forward(&f, &err), CREMA_OK);
    ck_assert_msg(strstr(err.message, "key 'k1_short'") && strstr(err.message, test_scratch_dir()) &&
                      strstr(err.message, "10 data bytes") && strstr(err.message, "'data'"),
                  "%s", err.message);
  }
  data_close(&f);

  /* A first record that is not a Datum fails setup. */
  w = new_db(test_scratch_path("db2"));
  ck_assert_int_eq(lmdb_writer_put(w, "only", 4, garbage, sizeof garbage, &err), CREMA_OK);
  finish_db(w);
  ck_assert_int_ne(data_open(&f, data_layer_text(test_scratch_path("db2"), 2, NULL), CAFFE__PHASE__TEST,
                             2, &err),
                   CREMA_OK);
  ck_assert_msg(strstr(err.message, "key 'only'") && strstr(err.message, "not a Datum"), "%s",
                err.message);
  data_close(&f);

  /* An encoded record with a broken image. */
  w = new_db(test_scratch_path("db3"));
  caffe__datum__init(&d);
  unsigned char png_start[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13};
  d.has_data = d.has_encoded = 1;
  d.encoded = 1;
  d.data.data = png_start;
  d.data.len = sizeof png_start;
  put_datum(w, "enc", &d);
  finish_db(w);
  ck_assert_int_ne(data_open(&f, data_layer_text(test_scratch_path("db3"), 2, NULL), CAFFE__PHASE__TEST,
                             2, &err),
                   CREMA_OK);
  ck_assert_msg(strstr(err.message, "key 'enc'") && strstr(err.message, "corrupt PNG"), "%s",
                err.message);
  data_close(&f);
}
END_TEST

/* Each item of a TRAIN batch with crop and mirror is a crop of its record,
 * possibly mirrored; the same seed gives the same batch. */
START_TEST(train_crop_and_mirror) {
  lmdb_writer *w = new_db(test_scratch_path("db"));
  for (int i = 0; i < 4; i++) {
    char key[8];
    snprintf(key, sizeof key, "%d", i);
    put_raw(w, key, 2, 5, 6, 10 * i, i);
  }
  finish_db(w);
  const char *text = data_layer_text(test_scratch_path("db"), 4,
                                     "transform_param { crop_size: 3 mirror: true scale: 2 }");
  data_fixture f, g;
  crema_error err = {0};
  ck_assert_msg(data_open(&f, text, CAFFE__PHASE__TRAIN, 2, &err) == CREMA_OK, "%s",
                err.message);
  ck_assert_int_eq(data_open(&g, text, CAFFE__PHASE__TRAIN, 2, &err), CREMA_OK);
  int mirrored = 0, plain = 0;
  for (int step = 0; step < 3; step++) {
    ck_assert_int_eq(data_forward(&f, &err), CREMA_OK);
    ck_assert_int_eq(data_forward(&g, &err), CREMA_OK);
    ck_assert_int_eq(f.tops[0]->shape[2], 3);
    ck_assert_int_eq(memcmp(f.tops[0]->data, g.tops[0]->data, f.tops[0]->count * sizeof(float)),
                     0);
    for (int n = 0; n < 4; n++) {
      const float *item = f.tops[0]->data + n * 18;
      int found = 0;
      for (int h = 0; h <= 2 && !found; h++)
        for (int wo = 0; wo <= 3 && !found; wo++)
          for (int m = 0; m < 2 && !found; m++) {
            int ok = 1;
            for (int c = 0; c < 2 && ok; c++)
              for (int y = 0; y < 3 && ok; y++)
                for (int x = 0; x < 3 && ok; x++) {
                  int sx = m ? wo + 2 - x : wo + x;
                  float v = 2.f * (float)((10 * n + (c * 5 + h + y) * 6 + sx) & 255);
                  ok = item[(c * 3 + y) * 3 + x] == v;
                }
            if (ok) {
              found = 1;
              mirrored += m;
              plain += !m;
            }
          }
      ck_assert_msg(found, "item %d is no crop of its record", n);
    }
  }
  ck_assert_int_gt(mirrored, 0);
  ck_assert_int_gt(plain, 0);
  data_close(&f);
  data_close(&g);
}
END_TEST

/* Two Data layers over databases of equal length stay in step. */
START_TEST(layers_advance_in_lockstep) {
  lmdb_writer *a = new_db(test_scratch_path("a")), *b = new_db(test_scratch_path("b"));
  for (int i = 0; i < 5; i++) {
    char key[8];
    snprintf(key, sizeof key, "%02d", i);
    put_raw(a, key, 1, 2, 2, i, i);
    put_raw(b, key, 1, 2, 2, 100 + i, 100 + i);
  }
  finish_db(a);
  finish_db(b);
  data_fixture fa, fb;
  crema_error err = {0};
  ck_assert_int_eq(data_open(&fa, data_layer_text(test_scratch_path("a"), 2, NULL), CAFFE__PHASE__TEST,
                             2, &err),
                   CREMA_OK);
  ck_assert_int_eq(data_open(&fb, data_layer_text(test_scratch_path("b"), 2, NULL), CAFFE__PHASE__TEST,
                             2, &err),
                   CREMA_OK);
  for (int step = 0; step < 7; step++) {
    ck_assert_int_eq(data_forward(&fa, &err), CREMA_OK);
    ck_assert_int_eq(data_forward(&fb, &err), CREMA_OK);
    for (int i = 0; i < 2; i++) {
      float la = fa.tops[1]->data[i];
      ck_assert_float_eq(la, (float)((2 * step + i) % 5));
      ck_assert_float_eq(fb.tops[1]->data[i], 100.f + la);
    }
  }
  data_close(&fa);
  data_close(&fb);
}
END_TEST

/* ---- convert-imageset -> Data layer ---- */

static void write_image_file(const char *name, const image *img) {
  crema_error err = {0};
  ck_assert_msg(image_write_file(test_scratch_path(name), img, &err) == CREMA_OK, "%s", err.message);
}

static void random_image(image *img, int w, int h, int c, unsigned seed) {
  ck_assert_int_eq(image_alloc(img, w, h, c, NULL), CREMA_OK);
  uint32_t s = seed * 747796405u + 2891336453u;
  for (size_t i = 0; i < (size_t)w * h * c; i++) {
    s = s * 1103515245u + 12345u;
    img->pixels[i] = (unsigned char)(s >> 16);
  }
}

/* Runs convert-imageset on the list and checks one Data-layer batch over
 * all records against the images decoded (and resized) here. */
static void check_round_trip(const char *flags, const char *db, int n, const char *ext,
                             image_color color, int rw, int rh) {
  char cmd[2048];
  snprintf(cmd, sizeof cmd, "'%s' convert-imageset %s '%s/' '%s' '%s' 2>/dev/null", crema_bin(),
           flags, test_scratch_dir(), test_scratch_path(ext), test_scratch_path(db));
  run_ok(cmd);
  data_fixture f;
  crema_error err = {0};
  ck_assert_msg(data_open(&f, data_layer_text(test_scratch_path(db), n, NULL), CAFFE__PHASE__TEST, 2,
                          &err) == CREMA_OK,
                "%s", err.message);
  ck_assert_msg(data_forward(&f, &err) == CREMA_OK, "%s", err.message);
  for (int i = 0; i < n; i++) {
    char name[32];
    snprintf(name, sizeof name, "img%d.%s", i, ext);
    image img, sized;
    ck_assert_int_eq(image_read_file(test_scratch_path(name), color, &img, &err), CREMA_OK);
    if (rw) {
      ck_assert_int_eq(image_resize(&img, rw, rh, &sized, &err), CREMA_OK);
      image_free(&img);
      img = sized;
    }
    size_t item = (size_t)img.channels * img.height * img.width;
    ck_assert_uint_eq(f.tops[0]->count, item * n);
    float *expect = malloc(item * sizeof(float));
    ck_assert_int_eq(image_to_caffe(&img, NULL, 0, 1.f, expect, &err), CREMA_OK);
    ck_assert_msg(!memcmp(expect, f.tops[0]->data + i * item, item * sizeof(float)),
                  "%s: record %d differs from the image", db, i);
    ck_assert_float_eq(f.tops[1]->data[i], (float)(10 + i));
    free(expect);
    image_free(&img);
  }
  data_close(&f);
}

START_TEST(convert_imageset_round_trip) {
  FILE *png_list = fopen(test_scratch_path("png"), "w"), *jpg_list = fopen(test_scratch_path("jpg"), "w");
  for (int i = 0; i < 3; i++) {
    char name[32];
    image img;
    random_image(&img, 7, 5, 3, (unsigned)i);
    snprintf(name, sizeof name, "img%d.png", i);
    write_image_file(name, &img);
    fprintf(png_list, "%s %d\n", name, 10 + i);
    snprintf(name, sizeof name, "img%d.jpg", i);
    write_image_file(name, &img);
    fprintf(jpg_list, "%s %d\n", name, 10 + i);
    image_free(&img);
  }
  fclose(png_list);
  fclose(jpg_list);
  check_round_trip("", "png_raw", 3, "png", IMAGE_COLOR, 0, 0);
  check_round_trip("--encoded", "png_enc", 3, "png", IMAGE_NATIVE, 0, 0);
  check_round_trip("", "jpg_raw", 3, "jpg", IMAGE_COLOR, 0, 0);
  check_round_trip("--encoded", "jpg_enc", 3, "jpg", IMAGE_NATIVE, 0, 0);
  check_round_trip("--gray --resize_width=4 --resize_height=3", "png_gray", 3, "png",
                   IMAGE_GRAY, 4, 3);
  check_round_trip("--encode_type=png --resize_width=9 --resize_height=6", "jpg_png", 3, "jpg",
                   IMAGE_COLOR, 9, 6);

  /* Keys are %08d_<name> in list order. */
  crema_error err = {0};
  lmdb_source *s;
  ck_assert_int_eq(lmdb_source_open(test_scratch_path("png_raw"), &s, &err), CREMA_OK);
  char key[64];
  ck_assert_str_eq(lmdb_source_key_string(s, key, sizeof key), "00000000_img0.png");
  lmdb_source_close(s);

  char cmd[2048];
  snprintf(cmd, sizeof cmd,
           "'%s' convert-imageset --backend=leveldb '%s/' '%s' '%s' 2>&1 | grep -q 'LEVELDB is "
           "not supported'",
           crema_bin(), test_scratch_dir(), test_scratch_path("png"), test_scratch_path("ldb"));
  run_ok(cmd);
  snprintf(cmd, sizeof cmd, "'%s' convert-imageset '%s/' '%s' '%s' 2>/dev/null", crema_bin(),
           test_scratch_dir(), test_scratch_path("png"), test_scratch_path("png_raw"));
  ck_assert_int_ne(run_status(cmd), 0); /* the database exists */
}
END_TEST

START_TEST(convert_imageset_label_map) {
  image mask;
  ck_assert_int_eq(image_alloc(&mask, 4, 2, 1, NULL), CREMA_OK);
  memcpy(mask.pixels, (unsigned char[]){0, 255, 255, 0, 1, 0, 0, 128}, 8);
  write_image_file("m0.png", &mask);
  image_free(&mask);
  write_file(test_scratch_path("masks"), "m0.png\n", 7);
  char cmd[2048];
  snprintf(cmd, sizeof cmd, "'%s' convert-imageset --label-map '%s/' '%s' '%s' 2>/dev/null",
           crema_bin(), test_scratch_dir(), test_scratch_path("masks"), test_scratch_path("labels"));
  run_ok(cmd);
  data_fixture f;
  crema_error err = {0};
  ck_assert_int_eq(chdir(test_scratch_dir()), 0); /* a relative source, as in Caffe */
  ck_assert_msg(data_open(&f,
                          "name: 'label' type: 'Data' top: 'label' data_param { source: "
                          "'labels' batch_size: 1 backend: LMDB }",
                          CAFFE__PHASE__TEST, 1, &err) == CREMA_OK,
                "%s", err.message);
  ck_assert_int_eq(data_forward(&f, &err), CREMA_OK);
  const float expect[8] = {0, 1, 1, 0, 1, 0, 0, 1};
  ck_assert_uint_eq(f.tops[0]->count, 8);
  ck_assert_int_eq(f.tops[0]->shape[1], 1);
  for (int i = 0; i < 8; i++)
    ck_assert_float_eq(f.tops[0]->data[i], expect[i]);
  data_close(&f);
  ck_assert_int_eq(chdir(test_start_dir()), 0);
}
END_TEST

/* ---- transformer details ---- */

START_TEST(transformer_mean_value_checks) {
  Caffe__TransformationParameter p;
  caffe__transformation_parameter__init(&p);
  float means[2] = {1, 2};
  p.n_mean_value = 2;
  p.mean_value = means;
  data_transformer t;
  crema_error err = {0};
  ck_assert_int_eq(transformer_init(&t, &p, CAFFE__PHASE__TEST, &err), CREMA_OK);
  unsigned char bytes[3] = {5, 6, 7};
  datum_pixels px = {.channels = 3, .height = 1, .width = 1, .bytes = bytes};
  float out[3];
  ck_assert_int_ne(transformer_apply(&t, &px, out, &err), CREMA_OK);
  ck_assert_ptr_nonnull(strstr(err.message, "mean_value"));
  transformer_free(&t);
  p.n_mean_value = 1;
  p.scale = 0.5f;
  ck_assert_int_eq(transformer_init(&t, &p, CAFFE__PHASE__TEST, &err), CREMA_OK);
  ck_assert_int_eq(transformer_apply(&t, &px, out, &err), CREMA_OK);
  ck_assert_float_eq(out[0], 2.f);
  ck_assert_float_eq(out[2], 3.f);
  transformer_free(&t);
  p.crop_size = 2;
  ck_assert_int_eq(transformer_init(&t, &p, CAFFE__PHASE__TEST, &err), CREMA_OK);
  ck_assert_int_ne(transformer_apply(&t, &px, out, &err), CREMA_OK);
  ck_assert_ptr_nonnull(strstr(err.message, "crop_size"));
  transformer_free(&t);
}
END_TEST

static void setup_scratch(void) { test_scratch_make("check-data"); }
static void teardown_scratch(void) { test_scratch_remove(); }

static Suite *data_suite(void) {
  Suite *s = suite_create("data");
  TCase *tc = tcase_create("golden");
  tcase_add_checked_fixture(tc, setup_scratch, teardown_scratch);
  tcase_add_test(tc, golden_mean_file_crop);
  tcase_add_test(tc, golden_mean_values_crop);
  tcase_add_test(tc, compute_image_mean_matches_caffe);
  suite_add_tcase(s, tc);
  tc = tcase_create("lmdb");
  tcase_add_checked_fixture(tc, setup_scratch, teardown_scratch);
  tcase_add_test(tc, lmdb_key_order_and_wrap);
  tcase_add_test(tc, lmdb_writer_grows_the_map);
  tcase_add_test(tc, read_only_database_directory);
  tcase_set_timeout(tc, 120);
  suite_add_tcase(s, tc);
  tc = tcase_create("layer");
  tcase_add_checked_fixture(tc, setup_scratch, teardown_scratch);
  tcase_add_test(tc, leveldb_is_rejected);
  tcase_add_test(tc, corrupt_records_name_database_and_key);
  tcase_add_test(tc, train_crop_and_mirror);
  tcase_add_test(tc, layers_advance_in_lockstep);
  tcase_add_test(tc, transformer_mean_value_checks);
  suite_add_tcase(s, tc);
  tc = tcase_create("tools");
  tcase_add_checked_fixture(tc, setup_scratch, teardown_scratch);
  tcase_add_test(tc, convert_imageset_round_trip);
  tcase_add_test(tc, convert_imageset_label_map);
  tcase_set_timeout(tc, 120);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(data_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
