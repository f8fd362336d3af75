/* Whole-file views, atomic writes, binary protobuf files (including broken
 * ones), BlobProto conversions and .npy files. */
#include "config.h"

#include <check.h>
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "caffe.pb-c.h"
#include "io/binary.h"
#include "io/blobproto.h"
#include "io/file.h"
#include "io/pbutil.h"
#include "tests/unit/testutil.h"

/* ---- a scratch directory per test (testutil.h) ---- */

static void setup_scratch(void) { test_scratch_make("check-binary"); }

static void teardown_scratch(void) { test_scratch_remove(); }

static void write_bytes(const char *path, const void *data, size_t len) {
  FILE *f = fopen(path, "wb");
  ck_assert_ptr_nonnull(f);
  if (len)
    ck_assert_uint_eq(fwrite(data, 1, len, f), len);
  fclose(f);
}

static int count_dir_entries(const char *dir) {
  DIR *d = opendir(dir);
  ck_assert_ptr_nonnull(d);
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL)
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
      n++;
  closedir(d);
  return n;
}

#define ck_assert_msg_has(err, needle) \
  ck_assert_msg(strstr((err).message, (needle)) != NULL, "message '%s' lacks '%s'", \
                (err).message, (needle))

/* ---- file views and atomic writes ---- */

START_TEST(view_reads_whole_file) {
  const char text[] = "hello, world";
  write_bytes(test_scratch_path("a.txt"), text, sizeof text - 1);
  file_view v;
  crema_error err = {0};
  ck_assert_int_eq(file_view_open(test_scratch_path("a.txt"), 1000, &v, &err), CREMA_OK);
  ck_assert_uint_eq(v.size, sizeof text - 1);
  ck_assert(memcmp(v.data, text, v.size) == 0);
  file_view_close(&v);
}
END_TEST

START_TEST(view_of_empty_file_is_empty) {
  write_bytes(test_scratch_path("empty"), NULL, 0);
  file_view v;
  crema_error err = {0};
  ck_assert_int_eq(file_view_open(test_scratch_path("empty"), 1000, &v, &err), CREMA_OK);
  ck_assert_ptr_null(v.data);
  ck_assert_uint_eq(v.size, 0);
  file_view_close(&v);
}
END_TEST

START_TEST(view_errors_are_clear) {
  file_view v;
  crema_error err = {0};
  ck_assert_int_eq(file_view_open(test_scratch_path("missing"), 1000, &v, &err), CREMA_ERR_NOT_FOUND);
  ck_assert_msg_has(err, "missing");
  ck_assert_int_eq(file_view_open(test_scratch_dir(), 1000, &v, &err), CREMA_ERR_IO);
  ck_assert_msg_has(err, "directory");
  write_bytes(test_scratch_path("big"), "0123456789", 10);
  ck_assert_int_eq(file_view_open(test_scratch_path("big"), 9, &v, &err), CREMA_ERR_INVALID);
  ck_assert_msg_has(err, "more than the 9");
  if (geteuid() != 0) { /* root reads anything */
    write_bytes(test_scratch_path("secret"), "x", 1);
    chmod(test_scratch_path("secret"), 0);
    ck_assert_int_eq(file_view_open(test_scratch_path("secret"), 9, &v, &err), CREMA_ERR_IO);
    ck_assert_msg_has(err, "ermission");
  }
}
END_TEST

START_TEST(view_reads_a_pipe) {
  file_view v;
  crema_error err = {0};
  /* /dev/null is a character device: read, not mapped. */
  ck_assert_int_eq(file_view_open("/dev/null", 10, &v, &err), CREMA_OK);
  ck_assert_uint_eq(v.size, 0);
  file_view_close(&v);
}
END_TEST

START_TEST(atomic_write_replaces_and_leaves_no_temp) {
  crema_error err = {0};
  const char *path = test_scratch_path("out.bin");
  ck_assert_int_eq(file_write_atomic(path, "first", 5, &err), CREMA_OK);
  ck_assert_int_eq(file_write_atomic(path, "second!", 7, &err), CREMA_OK);
  file_view v;
  ck_assert_int_eq(file_view_open(path, 100, &v, &err), CREMA_OK);
  ck_assert_uint_eq(v.size, 7);
  ck_assert(memcmp(v.data, "second!", 7) == 0);
  file_view_close(&v);
  ck_assert_int_eq(count_dir_entries(test_scratch_dir()), 1);
  struct stat st;
  ck_assert_int_eq(stat(path, &st), 0);
  ck_assert_msg((st.st_mode & 0444) != 0, "written file is unreadable (mode %o)", st.st_mode);
}
END_TEST

START_TEST(atomic_write_fails_cleanly) {
  crema_error err = {0};
  ck_assert_int_eq(file_write_atomic(test_scratch_path("no/such/dir/x"), "a", 1, &err), CREMA_ERR_IO);
  ck_assert_msg_has(err, "no/such/dir/x");
  /* Renaming onto a directory fails after the temp file was written. */
  mkdir(test_scratch_path("adir"), 0755);
  ck_assert_int_eq(file_write_atomic(test_scratch_path("adir"), "a", 1, &err), CREMA_ERR_IO);
  ck_assert_int_eq(count_dir_entries(test_scratch_dir()), 1);
}
END_TEST

START_TEST(suffix_is_case_insensitive) {
  ck_assert(path_has_suffix("a/b.caffemodel", ".caffemodel"));
  ck_assert(path_has_suffix("B.CaffeModel", ".caffemodel"));
  ck_assert(!path_has_suffix("b.prototxt", ".caffemodel"));
  ck_assert(!path_has_suffix("odel", ".caffemodel"));
  ck_assert(path_has_suffix("x", ""));
}
END_TEST

/* ---- binary protobuf files ---- */

static void expect_bad_binary(const char *path, const char *needle) {
  ProtobufCMessage *msg = (ProtobufCMessage *)1;
  crema_error err = {0};
  ck_assert_int_ne(bin_read_file(path, &caffe__net_parameter__descriptor, &msg, &err), CREMA_OK);
  ck_assert_ptr_null(msg);
  ck_assert_msg_has(err, needle);
}

static unsigned char *read_fixture(const char *rel, size_t *len) {
  char *path = test_data_path("%s", rel);
  file_view v;
  crema_error err = {0};
  ck_assert_msg(file_view_open(path, SIZE_MAX, &v, &err) == CREMA_OK, "%s", err.message);
  unsigned char *copy = malloc(v.size);
  ck_assert_ptr_nonnull(copy);
  memcpy(copy, v.data, v.size);
  *len = v.size;
  file_view_close(&v);
  free(path);
  return copy;
}

START_TEST(truncated_model_is_rejected) {
  size_t len;
  unsigned char *bytes = read_fixture("nets/lenet_real/lenet_iter_10000.caffemodel", &len);
  const size_t cuts[] = {len - 1, len / 2, 3, 1};
  for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
    write_bytes(test_scratch_path("cut.caffemodel"), bytes, cuts[i]);
    expect_bad_binary(test_scratch_path("cut.caffemodel"),
                      "not a Caffe binary model (truncated or corrupt)");
  }
  free(bytes);
}
END_TEST

START_TEST(random_bytes_are_rejected) {
  unsigned char noise[4096];
  uint32_t x = 12345;
  for (size_t i = 0; i < sizeof noise; i++) {
    x = x * 1103515245u + 12345u;
    noise[i] = (unsigned char)(x >> 24);
  }
  /* Start with a field-7 (invalid wire type) key so the bytes cannot parse. */
  noise[0] = 0x3f;
  write_bytes(test_scratch_path("noise.caffemodel"), noise, sizeof noise);
  expect_bad_binary(test_scratch_path("noise.caffemodel"), "not a Caffe binary model");
}
END_TEST

START_TEST(length_prefix_past_end_is_rejected) {
  /* Field 100 (layer), length-delimited, claiming 1000000 bytes. */
  const unsigned char bytes[] = {0xa2, 0x06, 0xc0, 0x84, 0x3d, 0x0a, 0x01, 'x'};
  write_bytes(test_scratch_path("long.caffemodel"), bytes, sizeof bytes);
  expect_bad_binary(test_scratch_path("long.caffemodel"), "truncated or corrupt");
}
END_TEST

START_TEST(empty_missing_and_directory_are_rejected) {
  write_bytes(test_scratch_path("empty.caffemodel"), NULL, 0);
  expect_bad_binary(test_scratch_path("empty.caffemodel"), "empty file");
  expect_bad_binary(test_scratch_path("missing.caffemodel"), "missing.caffemodel");
  expect_bad_binary(test_scratch_dir(), "directory");
}
END_TEST

START_TEST(binary_round_trip) {
  char *path = test_data_path("nets/lenet_real/lenet_iter_10000.caffemodel");
  ProtobufCMessage *msg = NULL, *again = NULL;
  crema_error err = {0};
  ck_assert_msg(bin_read_file(path, &caffe__net_parameter__descriptor, &msg, &err) == CREMA_OK,
                "%s", err.message);
  ck_assert_int_eq(bin_write_file(test_scratch_path("copy.caffemodel"), msg, &err), CREMA_OK);
  ck_assert_int_eq(bin_read_file(test_scratch_path("copy.caffemodel"),
                                 &caffe__net_parameter__descriptor, &again, &err),
                   CREMA_OK);
  ck_assert(pb_message_equal(msg, again));
  protobuf_c_message_free_unpacked(msg, NULL);
  protobuf_c_message_free_unpacked(again, NULL);
  free(path);
}
END_TEST

/* ---- BlobProto ---- */

static Caffe__BlobProto *new_blobproto(void) {
  Caffe__BlobProto *bp = malloc(sizeof *bp);
  ck_assert_ptr_nonnull(bp);
  caffe__blob_proto__init(bp);
  return bp;
}

static void set_shape(Caffe__BlobProto *bp, int n, const int64_t *dims) {
  bp->shape = malloc(sizeof *bp->shape);
  caffe__blob_shape__init(bp->shape);
  bp->shape->dim = malloc((size_t)(n ? n : 1) * sizeof(int64_t));
  memcpy(bp->shape->dim, dims, (size_t)n * sizeof(int64_t));
  bp->shape->n_dim = (size_t)n;
}

static void set_data(Caffe__BlobProto *bp, size_t n, float first) {
  bp->data = malloc((n ? n : 1) * sizeof(float));
  for (size_t i = 0; i < n; i++)
    bp->data[i] = first + (float)i;
  bp->n_data = n;
}

static blob *new_blob(void) {
  crema_error err = {0};
  blob *b = blob_create("b", &err);
  ck_assert_ptr_nonnull(b);
  return b;
}

START_TEST(legacy_dims_shape_and_data) {
  Caffe__BlobProto *bp = new_blobproto();
  bp->has_num = bp->has_channels = bp->has_height = bp->has_width = 1;
  bp->num = 1;
  bp->channels = 1;
  bp->height = 2;
  bp->width = 3;
  set_data(bp, 6, 1.f);
  blob *b = new_blob();
  crema_error err = {0};
  ck_assert_msg(blobproto_to_blob(bp, b, 1, &err) == CREMA_OK, "%s", err.message);
  ck_assert_int_eq(b->num_axes, 4);
  ck_assert_int_eq(b->shape[2], 2);
  ck_assert_int_eq(b->shape[3], 3);
  ck_assert_float_eq(b->data[5], 6.f);
  blob_free(b);
  protobuf_c_message_free_unpacked(&bp->base, NULL);
}
END_TEST

START_TEST(double_data_and_diff) {
  Caffe__BlobProto *bp = new_blobproto();
  const int64_t dims[] = {2, 2};
  set_shape(bp, 2, dims);
  bp->double_data = malloc(4 * sizeof(double));
  bp->double_diff = malloc(4 * sizeof(double));
  for (int i = 0; i < 4; i++) {
    bp->double_data[i] = 0.5 * i;
    bp->double_diff[i] = -1.0 * i;
  }
  bp->n_double_data = bp->n_double_diff = 4;
  blob *b = new_blob();
  crema_error err = {0};
  ck_assert_msg(blobproto_to_blob(bp, b, 1, &err) == CREMA_OK, "%s", err.message);
  ck_assert_float_eq(b->data[3], 1.5f);
  ck_assert_float_eq(b->diff[3], -3.f);
  blob_free(b);
  protobuf_c_message_free_unpacked(&bp->base, NULL);
}
END_TEST

START_TEST(scalar_blobproto) {
  Caffe__BlobProto *bp = new_blobproto();
  set_data(bp, 1, 7.f);
  blob *b = new_blob();
  crema_error err = {0};
  ck_assert_msg(blobproto_to_blob(bp, b, 0, &err) == CREMA_OK, "%s", err.message);
  ck_assert_int_eq(b->num_axes, 0);
  ck_assert_float_eq(b->data[0], 7.f);
  blob_free(b);
  protobuf_c_message_free_unpacked(&bp->base, NULL);
}
END_TEST

START_TEST(count_mismatches_are_rejected_before_allocating) {
  crema_error err = {0};
  blob *b = new_blob();
  Caffe__BlobProto *bp = new_blobproto();
  const int64_t huge[] = {100000, 100000, 100000};
  set_shape(bp, 3, huge);
  set_data(bp, 3, 0.f);
  ck_assert_int_eq(blobproto_to_blob(bp, b, 0, &err), CREMA_ERR_SHAPE);
  ck_assert_ptr_null(b->data);
  protobuf_c_message_free_unpacked(&bp->base, NULL);

  bp = new_blobproto();
  const int64_t dims[] = {2, 3};
  set_shape(bp, 2, dims);
  set_data(bp, 5, 0.f);
  ck_assert_int_eq(blobproto_to_blob(bp, b, 0, &err), CREMA_ERR_SHAPE);
  ck_assert_msg_has(err, "needs 6 values but has 5");
  ck_assert_ptr_null(b->data);
  protobuf_c_message_free_unpacked(&bp->base, NULL);

  bp = new_blobproto();
  const int64_t negative[] = {2, -3};
  set_shape(bp, 2, negative);
  ck_assert_int_eq(blobproto_to_blob(bp, b, 0, &err), CREMA_ERR_SHAPE);
  protobuf_c_message_free_unpacked(&bp->base, NULL);
  blob_free(b);
}
END_TEST

START_TEST(blob_to_blobproto_round_trip) {
  crema_error err = {0};
  blob *b = new_blob();
  const int shape[] = {2, 1, 3};
  ck_assert_int_eq(blob_reshape(b, 3, shape, &err), CREMA_OK);
  for (int i = 0; i < 6; i++) {
    b->data[i] = (float)i * 0.25f;
    b->diff[i] = (float)-i;
  }
  Caffe__BlobProto *bp = NULL;
  ck_assert_int_eq(blob_to_blobproto(b, 1, &bp, &err), CREMA_OK);
  ck_assert_uint_eq(bp->shape->n_dim, 3);
  ck_assert_uint_eq(bp->n_diff, 6);
  ck_assert_int_eq(bin_write_file(test_scratch_path("b.binaryproto"), &bp->base, &err), CREMA_OK);
  blob *c = new_blob();
  int has_diff = 0;
  ck_assert_int_eq(blob_read_file(test_scratch_path("b.binaryproto"), c, &has_diff, &err), CREMA_OK);
  ck_assert_int_eq(has_diff, 1);
  ck_assert(blob_same_shape(b, c));
  ck_assert(memcmp(b->data, c->data, 6 * sizeof(float)) == 0);
  ck_assert(memcmp(b->diff, c->diff, 6 * sizeof(float)) == 0);
  blob *d = new_blob();
  ck_assert_int_eq(blob_reshape(d, 1, (const int[]){6}, &err), CREMA_OK);
  ck_assert_int_eq(blobproto_copy_data(bp, d, &err), CREMA_OK);
  ck_assert_float_eq(d->data[5], 1.25f);
  ck_assert_int_eq(blob_reshape(d, 1, (const int[]){5}, &err), CREMA_OK);
  ck_assert_int_eq(blobproto_copy_data(bp, d, &err), CREMA_ERR_SHAPE);
  protobuf_c_message_free_unpacked(&bp->base, NULL);
  blob_free(b);
  blob_free(c);
  blob_free(d);
}
END_TEST

/* ---- .npy ---- */

/* Writes an .npy file with the given version, dict and payload. */
static void write_npy(const char *path, int major, const char *dict, const void *payload,
                      size_t payload_len) {
  unsigned char buf[1024];
  size_t prefix = major == 1 ? 10 : 12;
  size_t dict_len = strlen(dict);
  size_t header_len = ((prefix + dict_len + 1 + 63) / 64) * 64 - prefix;
  memcpy(buf, "\x93NUMPY", 6);
  buf[6] = (unsigned char)major;
  buf[7] = 0;
  if (major == 1) {
    buf[8] = (unsigned char)header_len;
    buf[9] = (unsigned char)(header_len >> 8);
  } else {
    for (int i = 0; i < 4; i++)
      buf[8 + i] = (unsigned char)(header_len >> (8 * i));
  }
  memcpy(buf + prefix, dict, dict_len);
  memset(buf + prefix + dict_len, ' ', header_len - dict_len - 1);
  buf[prefix + header_len - 1] = '\n';
  ck_assert_uint_le(prefix + header_len + payload_len, sizeof buf);
  memcpy(buf + prefix + header_len, payload, payload_len);
  write_bytes(path, buf, prefix + header_len + payload_len);
}

START_TEST(npy_f8_version1) {
  const double values[] = {1.5, -2, 3, 4, 5, 6.25};
  write_npy(test_scratch_path("a.npy"), 1,
            "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }", values,
            sizeof values);
  blob *b = new_blob();
  crema_error err = {0};
  ck_assert_msg(npy_read(test_scratch_path("a.npy"), b, &err) == CREMA_OK, "%s", err.message);
  ck_assert_int_eq(b->num_axes, 2);
  ck_assert_int_eq(b->shape[0], 2);
  ck_assert_int_eq(b->shape[1], 3);
  ck_assert_float_eq(b->data[0], 1.5f);
  ck_assert_float_eq(b->data[5], 6.25f);
  blob_free(b);
}
END_TEST

START_TEST(npy_versions_2_and_3_and_odd_shapes) {
  const float one[] = {42.f};
  const float four[] = {1, 2, 3, 4};
  crema_error err = {0};
  blob *b = new_blob();
  write_npy(test_scratch_path("s.npy"), 2, "{'shape': (), 'fortran_order': False, 'descr': '<f4'}",
            one, sizeof one);
  ck_assert_msg(npy_read(test_scratch_path("s.npy"), b, &err) == CREMA_OK, "%s", err.message);
  ck_assert_int_eq(b->num_axes, 0);
  ck_assert_float_eq(b->data[0], 42.f);
  write_npy(test_scratch_path("v.npy"), 3, "{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }",
            four, sizeof four);
  ck_assert_msg(npy_read(test_scratch_path("v.npy"), b, &err) == CREMA_OK, "%s", err.message);
  ck_assert_int_eq(b->num_axes, 1);
  ck_assert_int_eq(b->shape[0], 4);
  ck_assert_float_eq(b->data[3], 4.f);
  const int64_t ints[] = {-3, 9};
  write_npy(test_scratch_path("i.npy"), 1, "{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }",
            ints, sizeof ints);
  ck_assert_msg(npy_read(test_scratch_path("i.npy"), b, &err) == CREMA_OK, "%s", err.message);
  ck_assert_float_eq(b->data[0], -3.f);
  const unsigned char be[] = {0x3f, 0x80, 0, 0}; /* 1.0f big-endian */
  write_npy(test_scratch_path("be.npy"), 1, "{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }",
            be, sizeof be);
  ck_assert_msg(npy_read(test_scratch_path("be.npy"), b, &err) == CREMA_OK, "%s", err.message);
  ck_assert_float_eq(b->data[0], 1.f);
  blob_free(b);
}
END_TEST

START_TEST(bad_npy_files_are_rejected) {
  const float four[] = {1, 2, 3, 4};
  crema_error err = {0};
  blob *b = new_blob();
  write_npy(test_scratch_path("f.npy"), 1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }",
            four, sizeof four);
  ck_assert_int_eq(npy_read(test_scratch_path("f.npy"), b, &err), CREMA_ERR_UNSUPPORTED);
  ck_assert_msg_has(err, "Fortran");
  write_npy(test_scratch_path("c.npy"), 1, "{'descr': '<c8', 'fortran_order': False, 'shape': (2,), }",
            four, sizeof four);
  ck_assert_int_eq(npy_read(test_scratch_path("c.npy"), b, &err), CREMA_ERR_UNSUPPORTED);
  ck_assert_msg_has(err, "<c8");
  write_npy(test_scratch_path("short.npy"), 1,
            "{'descr': '<f4', 'fortran_order': False, 'shape': (5,), }", four, sizeof four);
  ck_assert_int_eq(npy_read(test_scratch_path("short.npy"), b, &err), CREMA_ERR_INVALID);
  ck_assert_msg_has(err, "needs 20 bytes");
  write_npy(test_scratch_path("huge.npy"), 1,
            "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999,), }", four,
            sizeof four);
  ck_assert_int_eq(npy_read(test_scratch_path("huge.npy"), b, &err), CREMA_ERR_INVALID);
  write_npy(test_scratch_path("junk.npy"), 1, "{'descr': '<f4', 'shape': [2]}", four, sizeof four);
  ck_assert_int_eq(npy_read(test_scratch_path("junk.npy"), b, &err), CREMA_ERR_INVALID);
  write_bytes(test_scratch_path("magic.npy"), "NUMPY not really", 16);
  ck_assert_int_eq(npy_read(test_scratch_path("magic.npy"), b, &err), CREMA_ERR_INVALID);
  ck_assert_msg_has(err, "magic");
  write_bytes(test_scratch_path("hdr.npy"), "\x93NUMPY\x01\x00\xff\x00{", 11);
  ck_assert_int_eq(npy_read(test_scratch_path("hdr.npy"), b, &err), CREMA_ERR_INVALID);
  ck_assert_msg_has(err, "truncated");
  blob_free(b);
}
END_TEST

START_TEST(npy_write_read_round_trip) {
  crema_error err = {0};
  blob *b = new_blob();
  const int shape[] = {3, 1, 2};
  ck_assert_int_eq(blob_reshape(b, 3, shape, &err), CREMA_OK);
  for (int i = 0; i < 6; i++) {
    b->data[i] = (float)i - 2.5f;
    b->diff[i] = (float)i * 10;
  }
  ck_assert_int_eq(npy_write(test_scratch_path("w.npy"), b, 0, &err), CREMA_OK);
  ck_assert_int_eq(npy_write(test_scratch_path("d.npy"), b, 1, &err), CREMA_OK);
  blob *c = new_blob();
  int has_diff = 1;
  ck_assert_int_eq(blob_read_file(test_scratch_path("w.npy"), c, &has_diff, &err), CREMA_OK);
  ck_assert_int_eq(has_diff, 0);
  ck_assert(blob_same_shape(b, c));
  ck_assert(memcmp(b->data, c->data, 6 * sizeof(float)) == 0);
  ck_assert_int_eq(npy_read(test_scratch_path("d.npy"), c, &err), CREMA_OK);
  ck_assert_float_eq(c->data[5], 50.f);
  /* NumPy aligns the data to 64 bytes. */
  struct stat st;
  ck_assert_int_eq(stat(test_scratch_path("w.npy"), &st), 0);
  ck_assert_int_eq((st.st_size - 6 * 4) % 64, 0);
  blob *s = new_blob();
  ck_assert_int_eq(blob_reshape(s, 0, NULL, &err), CREMA_OK);
  s->data[0] = 3.f;
  ck_assert_int_eq(npy_write(test_scratch_path("s.npy"), s, 0, &err), CREMA_OK);
  ck_assert_int_eq(npy_read(test_scratch_path("s.npy"), c, &err), CREMA_OK);
  ck_assert_int_eq(c->num_axes, 0);
  ck_assert_float_eq(c->data[0], 3.f);
  blob_free(b);
  blob_free(c);
  blob_free(s);
}
END_TEST

static Suite *binary_suite(void) {
  Suite *s = suite_create("binary");
  TCase *files = tcase_create("files");
  tcase_add_checked_fixture(files, setup_scratch, teardown_scratch);
  tcase_add_test(files, view_reads_whole_file);
  tcase_add_test(files, view_of_empty_file_is_empty);
  tcase_add_test(files, view_errors_are_clear);
  tcase_add_test(files, view_reads_a_pipe);
  tcase_add_test(files, atomic_write_replaces_and_leaves_no_temp);
  tcase_add_test(files, atomic_write_fails_cleanly);
  tcase_add_test(files, suffix_is_case_insensitive);
  suite_add_tcase(s, files);
  TCase *bin = tcase_create("binary");
  tcase_add_checked_fixture(bin, setup_scratch, teardown_scratch);
  tcase_add_test(bin, truncated_model_is_rejected);
  tcase_add_test(bin, random_bytes_are_rejected);
  tcase_add_test(bin, length_prefix_past_end_is_rejected);
  tcase_add_test(bin, empty_missing_and_directory_are_rejected);
  tcase_add_test(bin, binary_round_trip);
  suite_add_tcase(s, bin);
  TCase *blobs = tcase_create("blobproto");
  tcase_add_checked_fixture(blobs, setup_scratch, teardown_scratch);
  tcase_add_test(blobs, legacy_dims_shape_and_data);
  tcase_add_test(blobs, double_data_and_diff);
  tcase_add_test(blobs, scalar_blobproto);
  tcase_add_test(blobs, count_mismatches_are_rejected_before_allocating);
  tcase_add_test(blobs, blob_to_blobproto_round_trip);
  tcase_add_test(blobs, npy_f8_version1);
  tcase_add_test(blobs, npy_versions_2_and_3_and_odd_shapes);
  tcase_add_test(blobs, bad_npy_files_are_rejected);
  tcase_add_test(blobs, npy_write_read_round_trip);
  suite_add_tcase(s, blobs);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(binary_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
