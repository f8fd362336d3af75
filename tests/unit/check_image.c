/* PNG/JPEG decoding and encoding, OpenCV-compatible bilinear resizing,
 * Caffe-layout conversion, and hostile image data. */
#include "config.h"

#include <check.h>
#include <png.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/image.h"

/* ---- helpers ---- */

static void make_image(image *img, int w, int h, int c, unsigned seed) {
  crema_error err = {0};
  ck_assert_int_eq(image_alloc(img, w, h, c, &err), CREMA_OK);
  uint32_t s = seed * 2654435761u + 1;
  for (size_t i = 0; i < (size_t)w * h * c; i++) {
    s = s * 1103515245u + 12345u;
    img->pixels[i] = (unsigned char)(s >> 16);
  }
}

/* A smooth picture, which JPEG keeps close to the original. */
static void make_gradient(image *img, int w, int h, int c) {
  crema_error err = {0};
  ck_assert_int_eq(image_alloc(img, w, h, c, &err), CREMA_OK);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++)
      for (int k = 0; k < c; k++)
        img->pixels[((size_t)y * w + x) * c + k] =
            (unsigned char)(x * 150 / (w > 1 ? w - 1 : 1) + y * 60 / (h > 1 ? h - 1 : 1) + k * 20);
}

static int max_abs_diff(const image *a, const image *b) {
  ck_assert_int_eq(a->width, b->width);
  ck_assert_int_eq(a->height, b->height);
  ck_assert_int_eq(a->channels, b->channels);
  int m = 0;
  for (size_t i = 0; i < (size_t)a->width * a->height * a->channels; i++) {
    int d = abs((int)a->pixels[i] - (int)b->pixels[i]);
    if (d > m)
      m = d;
  }
  return m;
}

static void encode_png(const image *img, unsigned char **data, size_t *len) {
  crema_error err = {0};
  ck_assert_msg(image_encode_png(img, data, len, &err) == CREMA_OK, "%s", err.message);
}

static void encode_jpeg(const image *img, int quality, unsigned char **data, size_t *len) {
  crema_error err = {0};
  ck_assert_msg(image_encode_jpeg(img, quality, data, len, &err) == CREMA_OK, "%s", err.message);
}

static void decode_ok(const unsigned char *data, size_t len, image_color color, image *out) {
  crema_error err = {0};
  ck_assert_msg(image_decode(data, len, color, "test", out, &err) == CREMA_OK, "%s",
                err.message);
}

static void decode_fails(const unsigned char *data, size_t len, const char *expect) {
  crema_error err = {0};
  image out;
  ck_assert_int_ne(image_decode(data, len, IMAGE_NATIVE, "test.img", &out, &err), CREMA_OK);
  ck_assert_msg(strstr(err.message, expect) != NULL, "message '%s' lacks '%s'", err.message,
                expect);
  ck_assert_msg(strstr(err.message, "test.img") != NULL, "message '%s' lacks the name",
                err.message);
  ck_assert_ptr_null(out.pixels);
}

/* PNGs of layouts crema never writes, through libpng directly. */
typedef struct png_buf {
  unsigned char *data;
  size_t len, cap;
} png_buf;

static void png_buf_write(png_structp png, png_bytep d, size_t n) {
  png_buf *b = png_get_io_ptr(png);
  if (b->len + n > b->cap) {
    b->cap = (b->len + n) * 2;
    b->data = realloc(b->data, b->cap);
  }
  memcpy(b->data + b->len, d, n);
  b->len += n;
}

static void png_buf_flush(png_structp png) { (void)png; }

/* Writes a PNG of the given layout; rows NULL writes the header only. */
static png_buf write_png(png_uint_32 w, png_uint_32 h, int depth, int type, unsigned char **rows,
                         const png_color *palette, int npalette, const png_byte *trns,
                         int ntrns) {
  png_buf b = {0};
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
  png_infop info = png_create_info_struct(png);
  ck_assert_int_eq(setjmp(png_jmpbuf(png)), 0);
  png_set_write_fn(png, &b, png_buf_write, png_buf_flush);
  png_set_IHDR(png, info, w, h, depth, type, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
               PNG_FILTER_TYPE_DEFAULT);
  if (palette)
    png_set_PLTE(png, info, palette, npalette);
  if (trns)
    png_set_tRNS(png, info, trns, ntrns, NULL);
  png_write_info(png, info);
  if (rows) {
    png_write_image(png, rows);
    png_write_end(png, NULL);
  }
  png_destroy_write_struct(&png, &info);
  return b;
}

/* ---- PNG ---- */

START_TEST(png_round_trip_all_channel_counts) {
  const int counts[] = {1, 3, 4};
  for (int i = 0; i < 3; i++) {
    image img, back;
    make_image(&img, 13, 7, counts[i], (unsigned)i);
    unsigned char *data;
    size_t len;
    encode_png(&img, &data, &len);
    ck_assert_int_eq(image_sniff(data, len), IMAGE_FORMAT_PNG);
    decode_ok(data, len, IMAGE_NATIVE, &back);
    ck_assert_int_eq(max_abs_diff(&img, &back), 0);
    free(data);
    image_free(&img);
    image_free(&back);
  }
}
END_TEST

START_TEST(png_colour_models_as_opencv) {
  image gray, rgb;
  make_image(&gray, 5, 4, 1, 7);
  unsigned char *data;
  size_t len;
  encode_png(&gray, &data, &len);
  decode_ok(data, len, IMAGE_COLOR, &rgb);
  ck_assert_int_eq(rgb.channels, 3);
  for (int i = 0; i < 20; i++)
    for (int c = 0; c < 3; c++)
      ck_assert_int_eq(rgb.pixels[3 * i + c], gray.pixels[i]);
  free(data);
  image_free(&rgb);

  /* Colour to gray: equal channels stay exact; pure red is 0.299 of it. */
  image col, g;
  ck_assert_int_eq(image_alloc(&col, 2, 1, 3, NULL), CREMA_OK);
  memcpy(col.pixels, (unsigned char[]){90, 90, 90, 200, 0, 0}, 6);
  encode_png(&col, &data, &len);
  decode_ok(data, len, IMAGE_GRAY, &g);
  ck_assert_int_eq(g.channels, 1);
  ck_assert_int_eq(g.pixels[0], 90);
  ck_assert_int_le(abs(g.pixels[1] - 60), 1); /* 200 * 0.299 = 59.8 */
  free(data);
  image_free(&g);
  image_free(&col);
  image_free(&gray);

  /* RGBA loses its alpha when colour is asked for. */
  image rgba, c3;
  make_image(&rgba, 3, 3, 4, 9);
  encode_png(&rgba, &data, &len);
  decode_ok(data, len, IMAGE_COLOR, &c3);
  ck_assert_int_eq(c3.channels, 3);
  for (int i = 0; i < 9; i++)
    ck_assert_int_eq(memcmp(c3.pixels + 3 * i, rgba.pixels + 4 * i, 3), 0);
  free(data);
  image_free(&c3);
  image_free(&rgba);
}
END_TEST

START_TEST(png_16bit_palette_and_low_depth) {
  /* 16-bit gray: the high byte is kept (png_set_strip_16, as OpenCV). */
  unsigned char row16[4] = {0xab, 0xcd, 0x12, 0xff};
  unsigned char *rows16[1] = {row16};
  png_buf b = write_png(2, 1, 16, PNG_COLOR_TYPE_GRAY, rows16, NULL, 0, NULL, 0);
  image img;
  decode_ok(b.data, b.len, IMAGE_NATIVE, &img);
  ck_assert_int_eq(img.channels, 1);
  ck_assert_int_eq(img.pixels[0], 0xab);
  ck_assert_int_eq(img.pixels[1], 0x12);
  image_free(&img);
  free(b.data);

  /* 16-bit RGBA. */
  unsigned char rgba16[8] = {1, 0, 2, 0, 3, 0, 4, 0};
  unsigned char *rows_rgba[1] = {rgba16};
  b = write_png(1, 1, 16, PNG_COLOR_TYPE_RGB_ALPHA, rows_rgba, NULL, 0, NULL, 0);
  decode_ok(b.data, b.len, IMAGE_NATIVE, &img);
  ck_assert_int_eq(img.channels, 4);
  ck_assert_int_eq(memcmp(img.pixels, (unsigned char[]){1, 2, 3, 4}, 4), 0);
  image_free(&img);
  free(b.data);

  /* Palette with transparency: 4 channels as stored, 3 for colour. */
  png_color pal[2] = {{10, 20, 30}, {200, 210, 220}};
  png_byte trns[2] = {0, 255};
  unsigned char prow[2] = {0, 1};
  unsigned char *prows[1] = {prow};
  b = write_png(2, 1, 8, PNG_COLOR_TYPE_PALETTE, prows, pal, 2, trns, 2);
  decode_ok(b.data, b.len, IMAGE_NATIVE, &img);
  ck_assert_int_eq(img.channels, 4);
  ck_assert_int_eq(memcmp(img.pixels, (unsigned char[]){10, 20, 30, 0, 200, 210, 220, 255}, 8),
                   0);
  image_free(&img);
  decode_ok(b.data, b.len, IMAGE_COLOR, &img);
  ck_assert_int_eq(img.channels, 3);
  ck_assert_int_eq(memcmp(img.pixels, (unsigned char[]){10, 20, 30, 200, 210, 220}, 6), 0);
  image_free(&img);
  free(b.data);

  /* 1-bit gray expands to 0/255. */
  unsigned char brow[1] = {0xa0}; /* 1 0 1 0 */
  unsigned char *brows[1] = {brow};
  b = write_png(4, 1, 1, PNG_COLOR_TYPE_GRAY, brows, NULL, 0, NULL, 0);
  decode_ok(b.data, b.len, IMAGE_NATIVE, &img);
  ck_assert_int_eq(memcmp(img.pixels, (unsigned char[]){255, 0, 255, 0}, 4), 0);
  image_free(&img);
  free(b.data);
}
END_TEST

START_TEST(png_corrupt_and_truncated) {
  image img;
  make_image(&img, 16, 16, 3, 3);
  unsigned char *data;
  size_t len;
  encode_png(&img, &data, &len);
  decode_fails(data, len / 2, "corrupt PNG");
  decode_fails(data, 8, "corrupt PNG");
  unsigned char *bad = malloc(len);
  memcpy(bad, data, len);
  bad[40] ^= 0x55; /* inside the image data: CRC or zlib error */
  decode_fails(bad, len, "corrupt PNG");
  free(bad);
  free(data);
  image_free(&img);
}
END_TEST

START_TEST(oversized_images_rejected_before_allocation) {
  png_buf b = write_png(100000, 100000, 8, PNG_COLOR_TYPE_RGB, NULL, NULL, 0, NULL, 0);
  decode_fails(b.data, b.len, "exceeds the limit");
  free(b.data);

  /* A JPEG whose frame header claims 60000x60000. */
  image img;
  make_gradient(&img, 16, 16, 3);
  unsigned char *data;
  size_t len;
  encode_jpeg(&img, 90, &data, &len);
  size_t i = 2;
  while (i + 9 < len && !(data[i] == 0xff && data[i + 1] == 0xc0))
    i++;
  ck_assert_uint_lt(i + 9, len);
  data[i + 5] = 0xea, data[i + 6] = 0x60; /* height 60000 */
  data[i + 7] = 0xea, data[i + 8] = 0x60; /* width 60000 */
  decode_fails(data, len, "exceeds the limit");
  free(data);
  image_free(&img);
}
END_TEST

START_TEST(not_an_image) {
  const unsigned char junk[] = "GIF89a not supported";
  decode_fails(junk, sizeof junk, "not a PNG or JPEG");
  decode_fails(junk, 0, "empty");
  crema_error err = {0};
  image out;
  ck_assert_int_ne(image_read_file("/nonexistent/x.png", IMAGE_NATIVE, &out, &err), CREMA_OK);
  ck_assert_ptr_nonnull(strstr(err.message, "/nonexistent/x.png"));
}
END_TEST

/* ---- JPEG ---- */

START_TEST(jpeg_round_trip) {
  image img, back;
  make_gradient(&img, 40, 30, 3);
  unsigned char *data;
  size_t len;
  encode_jpeg(&img, 95, &data, &len);
  ck_assert_int_eq(image_sniff(data, len), IMAGE_FORMAT_JPEG);
  decode_ok(data, len, IMAGE_NATIVE, &back);
  ck_assert_int_eq(back.channels, 3);
  ck_assert_int_le(max_abs_diff(&img, &back), 12);
  image_free(&back);

  /* Gray from a colour JPEG is its luma plane. */
  decode_ok(data, len, IMAGE_GRAY, &back);
  ck_assert_int_eq(back.channels, 1);
  const unsigned char *p = img.pixels + 3 * (15 * 40 + 20);
  int luma = (int)(0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2] + 0.5);
  ck_assert_int_le(abs(back.pixels[15 * 40 + 20] - luma), 6);
  image_free(&back);
  free(data);
  image_free(&img);

  /* A gray JPEG: 1 channel as stored, replicated for colour. */
  image g, gback, cback;
  make_gradient(&g, 24, 24, 1);
  encode_jpeg(&g, 100, &data, &len);
  decode_ok(data, len, IMAGE_NATIVE, &gback);
  ck_assert_int_eq(gback.channels, 1);
  ck_assert_int_le(max_abs_diff(&g, &gback), 3);
  decode_ok(data, len, IMAGE_COLOR, &cback);
  ck_assert_int_eq(cback.channels, 3);
  for (int i = 0; i < 24 * 24; i++) {
    ck_assert_int_eq(cback.pixels[3 * i], gback.pixels[i]);
    ck_assert_int_eq(cback.pixels[3 * i + 2], gback.pixels[i]);
  }
  free(data);
  image_free(&g);
  image_free(&gback);
  image_free(&cback);
}
END_TEST

START_TEST(jpeg_corrupt_and_truncated) {
  image img;
  make_gradient(&img, 64, 64, 3);
  unsigned char *data;
  size_t len;
  encode_jpeg(&img, 90, &data, &len);
  decode_fails(data, len - len / 4, "truncated");
  decode_fails(data, 20, "corrupt JPEG");
  unsigned char *bad = malloc(len);
  memcpy(bad, data, len);
  size_t i = 2;
  while (i + 4 < len && !(bad[i] == 0xff && bad[i + 1] == 0xc0))
    i++;
  bad[i + 4] = 7; /* a sample precision no JPEG has */
  decode_fails(bad, len, "corrupt JPEG");
  free(bad);
  free(data);
  image_free(&img);
}
END_TEST

START_TEST(jpeg_6000x4000) {
  image img, back;
  make_gradient(&img, 6000, 4000, 3);
  unsigned char *data;
  size_t len;
  encode_jpeg(&img, 75, &data, &len);
  image_free(&img);
  decode_ok(data, len, IMAGE_NATIVE, &back);
  ck_assert_int_eq(back.width, 6000);
  ck_assert_int_eq(back.height, 4000);
  ck_assert_int_eq(back.channels, 3);
  free(data);
  image_free(&back);
}
END_TEST

/* ---- resize ---- */

START_TEST(resize_2x2_to_4x4_by_hand) {
  /* OpenCV maps dst x to src (x + 0.5) / 2 - 0.5: weights 1, 3/4-1/4, 1/4-3/4, 1
   * across; rows at -0.25 (clamped to row 0), 0.25, 0.75, 1.25 (clamped). */
  image src, dst;
  ck_assert_int_eq(image_alloc(&src, 2, 2, 1, NULL), CREMA_OK);
  memcpy(src.pixels, (unsigned char[]){0, 100, 200, 255}, 4);
  crema_error err = {0};
  ck_assert_int_eq(image_resize(&src, 4, 4, &dst, &err), CREMA_OK);
  const unsigned char expect[16] = {0,   25,  75,  100, /* row 0 only */
                                    50,  72,  117, 139, /* 3/4 row 0 + 1/4 row 1 */
                                    150, 167, 200, 216, /* 1/4 row 0 + 3/4 row 1 */
                                    200, 214, 241, 255};
  ck_assert_int_eq(memcmp(dst.pixels, expect, 16), 0);
  image_free(&src);
  image_free(&dst);
}
END_TEST

START_TEST(resize_matches_opencv_fixed_point) {
  /* 7x3 -> 20x5: the first 16 values of each row go through OpenCV's SIMD
   * rounding, the last 4 through its exact scalar tail (values computed by
   * a model of cv::resize; six pixels differ from exact rounding). */
  const unsigned char src_px[21] = {130, 183, 14, 238, 127, 26, 80, 57, 190, 240, 126,
                                    194, 52, 127, 6, 110, 208, 143, 93, 199, 81};
  const unsigned char expect[5][20] = {
      {130, 131, 150, 168, 170, 111, 52, 42, 120, 199, 219, 180, 141, 104, 69, 33, 41, 60, 79, 80},
      {101, 103, 132, 162, 179, 151, 122, 115, 147, 178, 186, 172, 159, 127, 86, 45, 54, 75, 97,
       99},
      {57, 60, 107, 153, 194, 211, 229, 226, 186, 146, 138, 162, 186, 162, 112, 63, 73, 99, 125,
       127},
      {26, 29, 70, 110, 148, 175, 203, 210, 181, 151, 136, 135, 134, 135, 137, 140, 129, 115, 100,
       99},
      {6, 8, 45, 81, 117, 152, 186, 200, 177, 154, 134, 117, 99, 117, 154, 191, 167, 125, 84, 81}};
  image src, dst;
  ck_assert_int_eq(image_alloc(&src, 7, 3, 1, NULL), CREMA_OK);
  memcpy(src.pixels, src_px, 21);
  crema_error err = {0};
  ck_assert_int_eq(image_resize(&src, 20, 5, &dst, &err), CREMA_OK);
  for (int y = 0; y < 5; y++)
    for (int x = 0; x < 20; x++)
      ck_assert_msg(dst.pixels[y * 20 + x] == expect[y][x], "(%d,%d): %d, expected %d", y, x,
                    dst.pixels[y * 20 + x], expect[y][x]);
  image_free(&src);
  image_free(&dst);
}
END_TEST

START_TEST(resize_identity_halving_and_colour) {
  image src, dst;
  make_image(&src, 9, 6, 3, 11);
  crema_error err = {0};
  ck_assert_int_eq(image_resize(&src, 9, 6, &dst, &err), CREMA_OK);
  ck_assert_int_eq(max_abs_diff(&src, &dst), 0);
  image_free(&dst);
  image_free(&src);

  /* Exactly half: the 2x2 box average, rounded. */
  make_image(&src, 40, 8, 3, 12);
  ck_assert_int_eq(image_resize(&src, 20, 4, &dst, &err), CREMA_OK);
  for (int y = 0; y < 4; y++)
    for (int x = 0; x < 20; x++)
      for (int c = 0; c < 3; c++) {
        const unsigned char *s = src.pixels;
        int sum = s[((2 * y) * 40 + 2 * x) * 3 + c] + s[((2 * y) * 40 + 2 * x + 1) * 3 + c] +
                  s[((2 * y + 1) * 40 + 2 * x) * 3 + c] +
                  s[((2 * y + 1) * 40 + 2 * x + 1) * 3 + c];
        ck_assert_int_eq(dst.pixels[(y * 20 + x) * 3 + c], (sum + 2) >> 2);
      }
  image_free(&dst);
  image_free(&src);

  ck_assert_int_ne(image_resize(&src, 4, 4, &dst, &err), CREMA_OK);
  make_image(&src, 2, 2, 1, 1);
  ck_assert_int_ne(image_resize(&src, 0, 4, &dst, &err), CREMA_OK);
  image_free(&src);
}
END_TEST

/* ---- Caffe layout ---- */

START_TEST(caffe_layout_is_bgr_chw) {
  image img;
  ck_assert_int_eq(image_alloc(&img, 2, 1, 3, NULL), CREMA_OK);
  memcpy(img.pixels, (unsigned char[]){10, 20, 30, 40, 50, 60}, 6); /* R G B, R G B */
  unsigned char chw[6];
  image_to_chw_bgr(&img, chw);
  ck_assert_int_eq(memcmp(chw, (unsigned char[]){30, 60, 20, 50, 10, 40}, 6), 0);
  float out[6];
  const float mean[3] = {1, 2, 3};
  crema_error err = {0};
  ck_assert_int_eq(image_to_caffe(&img, mean, 3, 0.5f, out, &err), CREMA_OK);
  const float expect[6] = {14.5f, 29.5f, 9.f, 24.f, 3.5f, 18.5f};
  for (int i = 0; i < 6; i++)
    ck_assert_float_eq(out[i], expect[i]);
  ck_assert_int_ne(image_to_caffe(&img, mean, 2, 1.f, out, &err), CREMA_OK);
  image_free(&img);
}
END_TEST

static Suite *image_suite(void) {
  Suite *s = suite_create("image");
  TCase *tc = tcase_create("png");
  tcase_add_test(tc, png_round_trip_all_channel_counts);
  tcase_add_test(tc, png_colour_models_as_opencv);
  tcase_add_test(tc, png_16bit_palette_and_low_depth);
  tcase_add_test(tc, png_corrupt_and_truncated);
  tcase_add_test(tc, oversized_images_rejected_before_allocation);
  tcase_add_test(tc, not_an_image);
  suite_add_tcase(s, tc);
  tc = tcase_create("jpeg");
  tcase_add_test(tc, jpeg_round_trip);
  tcase_add_test(tc, jpeg_corrupt_and_truncated);
  tcase_add_test(tc, jpeg_6000x4000);
  tcase_set_timeout(tc, 120);
  suite_add_tcase(s, tc);
  tc = tcase_create("resize");
  tcase_add_test(tc, resize_2x2_to_4x4_by_hand);
  tcase_add_test(tc, resize_matches_opencv_fixed_point);
  tcase_add_test(tc, resize_identity_halving_and_colour);
  tcase_add_test(tc, caffe_layout_is_bgr_chw);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(image_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
