#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "core/memcap.h"
#include "data/datum.h"

crema_status datum_parse(const void *data, size_t len, Caffe__Datum **out, crema_error *err) {
  *out = NULL;
  /* Unpacking copies the record's bytes: a huge record is refused first. */
  CREMA_TRY(mem_check(len, "a record", err));
  *out = caffe__datum__unpack(NULL, len, data);
  if (!*out)
    return crema_fail(err, CREMA_ERR_INVALID, "corrupt record: not a Datum message (%zu bytes)",
                      len);
  return CREMA_OK;
}

static crema_status check_dims(int c, int h, int w, size_t *count, crema_error *err) {
  if (c <= 0 || h <= 0 || w <= 0)
    return crema_fail(err, CREMA_ERR_INVALID,
                      "corrupt record: channels %d, height %d, width %d (all must be positive)",
                      c, h, w);
  size_t n;
  if (!size_mul((size_t)c, (size_t)h, &n) || !size_mul(n, (size_t)w, &n) || n > INT32_MAX)
    return crema_fail(err, CREMA_ERR_INVALID, "corrupt record: %dx%dx%d values is too many", c,
                      h, w);
  *count = n;
  return CREMA_OK;
}

static crema_status decode_encoded(const Caffe__Datum *d, image_color color, datum_pixels *out,
                                   crema_error *err) {
  image img;
  CREMA_TRY(image_decode(d->data.data, d->data.len, color, "encoded image", &img, err));
  size_t n = (size_t)img.width * img.height * img.channels;
  out->owned = malloc(n);
  if (!out->owned) {
    image_free(&img);
    return crema_fail(err, CREMA_ERR_NOMEM, "out of memory decoding a %dx%d image", img.width,
                      img.height);
  }
  image_to_chw_bgr(&img, out->owned);
  out->channels = img.channels;
  out->height = img.height;
  out->width = img.width;
  out->bytes = out->owned;
  image_free(&img);
  return CREMA_OK;
}

crema_status datum_pixels_get(const Caffe__Datum *d, image_color color, datum_pixels *out,
                              crema_error *err) {
  memset(out, 0, sizeof *out);
  out->label = d->label;
  if (d->encoded)
    return decode_encoded(d, color, out, err);
  size_t count = 0;
  CREMA_TRY(check_dims(d->channels, d->height, d->width, &count, err));
  out->channels = d->channels;
  out->height = d->height;
  out->width = d->width;
  if (d->has_data && d->data.len > 0) {
    if (d->data.len != count)
      return crema_fail(err, CREMA_ERR_INVALID,
                        "corrupt record: %zu data bytes for %dx%dx%d (%zu expected)",
                        d->data.len, d->channels, d->height, d->width, count);
    out->bytes = d->data.data;
  } else {
    if (d->n_float_data != count)
      return crema_fail(err, CREMA_ERR_INVALID,
                        "corrupt record: %zu float_data values for %dx%dx%d (%zu expected)",
                        d->n_float_data, d->channels, d->height, d->width, count);
    out->floats = d->float_data;
  }
  return CREMA_OK;
}

void datum_pixels_free(datum_pixels *p) {
  free(p->owned);
  memset(p, 0, sizeof *p);
}

crema_status datum_from_image(const image *img, int label, Caffe__Datum *d, crema_error *err) {
  size_t n = (size_t)img->width * img->height * img->channels;
  unsigned char *bytes = crema_malloc(n ? n : 1, err);
  if (!bytes)
    return CREMA_ERR_NOMEM;
  image_to_chw_bgr(img, bytes);
  d->has_channels = d->has_height = d->has_width = 1;
  d->channels = img->channels;
  d->height = img->height;
  d->width = img->width;
  d->has_data = 1;
  d->data.data = bytes;
  d->data.len = n;
  d->has_label = 1;
  d->label = label;
  d->n_float_data = 0;
  d->has_encoded = 1;
  d->encoded = 0;
  return CREMA_OK;
}

crema_status datum_pack(const Caffe__Datum *d, unsigned char **out, size_t *len,
                        crema_error *err) {
  size_t n = caffe__datum__get_packed_size(d);
  unsigned char *buf = crema_malloc(n ? n : 1, err);
  if (!buf)
    return CREMA_ERR_NOMEM;
  *len = caffe__datum__pack(d, buf);
  *out = buf;
  return CREMA_OK;
}
