/* Caffe's Datum records: raw uint8 pixels, float values, or an encoded
 * PNG/JPEG, all seen through one view in Caffe's CHW layout. */
#ifndef CREMA_DATA_DATUM_H
#define CREMA_DATA_DATUM_H

#include <stddef.h>
#include "caffe.pb-c.h"
#include "core/error.h"
#include "io/image.h"

/* Decoded pixels of a record: exactly one of bytes and floats is set and
 * holds channels * height * width values, CHW (B,G,R planes for colour). */
typedef struct datum_pixels {
  int channels, height, width;
  const unsigned char *bytes;
  const float *floats;
  int label;
  unsigned char *owned; /* internal: the decoded image of an encoded record */
} datum_pixels;

/* Parses one serialised Datum (free with protobuf_c_message_free_unpacked). */
crema_status datum_parse(const void *data, size_t len, Caffe__Datum **out, crema_error *err);

/* Checks a Datum and exposes its pixels; an encoded record is decoded with
 * color (IMAGE_NATIVE unless force_color / force_gray).  The view borrows
 * d's storage.  Messages say what is wrong with the record; callers prefix
 * the database and key. */
crema_status datum_pixels_get(const Caffe__Datum *d, image_color color, datum_pixels *out,
                              crema_error *err);
void datum_pixels_free(datum_pixels *p);

/* Fills d (initialised by the caller) with an image in Caffe's layout
 * (CVMatToDatum); d->data.data is malloc'd. */
crema_status datum_from_image(const image *img, int label, Caffe__Datum *d, crema_error *err);

/* Serialises d; *out is malloc'd. */
crema_status datum_pack(const Caffe__Datum *d, unsigned char **out, size_t *len,
                        crema_error *err);

#endif
