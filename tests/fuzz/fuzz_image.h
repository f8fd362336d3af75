/* The PNG and JPEG harnesses (fuzz_png.c, fuzz_jpeg.c): decode in memory in
 * the mode chosen by the input's length (as stored, colour, gray), then
 * what convert-imageset and segment do next: convert and resize. */
#ifndef CREMA_TESTS_FUZZ_IMAGE_H
#define CREMA_TESTS_FUZZ_IMAGE_H

#include "fuzz.h"
#include "io/image.h"

static inline void fuzz_image(const uint8_t *data, size_t size, image_format want) {
  if (image_sniff(data, size) != want)
    return; /* the other harness's format */
  fuzz_cap_memory();
  static const image_color modes[3] = {IMAGE_NATIVE, IMAGE_COLOR, IMAGE_GRAY};
  crema_error err;
  image img = {0};
  crema_status st = image_decode(data, size, modes[size % 3], "fuzz", &img, &err);
  fuzz_expect_message(st, &err);
  if (st != CREMA_OK)
    return;
  if (img.width <= 0 || img.height <= 0 || !img.pixels)
    abort();
  image conv = {0}, small = {0};
  st = image_convert(&img, IMAGE_COLOR, &conv, &err);
  fuzz_expect_message(st, &err);
  if (st == CREMA_OK) {
    st = image_resize(&conv, 7, 5, &small, &err);
    fuzz_expect_message(st, &err);
    image_free(&small);
    image_free(&conv);
  }
  image_free(&img);
}

#endif
