/* libFuzzer harness for Datum records as the Data layer reads them from a
 * database: parse, check, decode an encoded PNG/JPEG record, then
 * DataTransformer (crop, mirror, mean values, scale) into a float item.
 * The first byte picks the transformation and colour mode; the rest is the
 * record. */
#include "config.h"

#include "fuzz.h"

#include "caffe.pb-c.h"
#include "core/rng.h"
#include "data/datum.h"
#include "data/transform.h"

static void transform(const datum_pixels *px, uint8_t opts) {
  Caffe__TransformationParameter param;
  caffe__transformation_parameter__init(&param);
  float means[3] = {104.f, 117.f, 123.f};
  param.mirror = (opts >> 2) & 1;
  param.crop_size = (opts >> 3) & 3 ? 1u + ((opts >> 3) & 3) * 2u : 0u;
  param.n_mean_value = (opts >> 5) & 3;
  param.mean_value = means;
  param.scale = (opts & 0x80) ? 0.00390625f : 1.f;
  param.force_color = (opts & 3) == 1;
  param.force_gray = (opts & 3) == 2;
  crema_error err;
  data_transformer t;
  crema_status st = transformer_init(&t, &param, (opts & 0x80) ? CAFFE__PHASE__TEST
                                                               : CAFFE__PHASE__TRAIN, &err);
  fuzz_expect_message(st, &err);
  if (st != CREMA_OK)
    return;
  crema_rng rng;
  rng_seed(&rng, 1701);
  transformer_init_rand(&t, &rng);
  int shape[4];
  st = transformer_item_shape(&t, px, shape, &err);
  fuzz_expect_message(st, &err);
  if (st == CREMA_OK) {
    size_t n = (size_t)shape[1] * (size_t)shape[2] * (size_t)shape[3];
    float *out = malloc((n ? n : 1) * sizeof *out);
    if (out) {
      st = transformer_apply(&t, px, out, &err);
      fuzz_expect_message(st, &err);
      free(out);
    }
  }
  transformer_free(&t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0)
    return 0;
  fuzz_cap_memory();
  uint8_t opts = data[0];
  crema_error err;
  Caffe__Datum *d = NULL;
  crema_status st = datum_parse(data + 1, size - 1, &d, &err);
  fuzz_expect_message(st, &err);
  if (st != CREMA_OK)
    return 0;
  image_color color = (opts & 3) == 1 ? IMAGE_COLOR : (opts & 3) == 2 ? IMAGE_GRAY : IMAGE_NATIVE;
  datum_pixels px;
  st = datum_pixels_get(d, color, &px, &err);
  fuzz_expect_message(st, &err);
  if (st == CREMA_OK) {
    transform(&px, opts);
    datum_pixels_free(&px);
  }
  protobuf_c_message_free_unpacked(&d->base, NULL);
  return 0;
}
