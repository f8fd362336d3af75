#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "data/transform.h"
#include "io/binary.h"
#include "io/blobproto.h"

static crema_status load_mean_file(data_transformer *t, const char *path, crema_error *err) {
  ProtobufCMessage *msg = NULL;
  crema_status st = bin_read_file(path, &caffe__blob_proto__descriptor, &msg, err);
  if (st != CREMA_OK) {
    crema_error_prefix(err, "mean_file: ");
    return st;
  }
  if (!(t->mean = blob_create(path, err))) {
    protobuf_c_message_free_unpacked(msg, NULL);
    return CREMA_ERR_NOMEM;
  }
  st = blobproto_to_blob((const Caffe__BlobProto *)msg, t->mean, 0, err);
  protobuf_c_message_free_unpacked(msg, NULL);
  if (st != CREMA_OK)
    crema_error_prefix(err, "mean_file '%s': ", path);
  return st;
}

crema_status transformer_init(data_transformer *t, const Caffe__TransformationParameter *param,
                              Caffe__Phase phase, crema_error *err) {
  memset(t, 0, sizeof *t);
  t->phase = phase;
  t->scale = 1.f;
  if (!param)
    return CREMA_OK;
  t->scale = param->scale;
  t->mirror = param->mirror;
  t->crop_size = (int)param->crop_size;
  t->force_color = param->force_color;
  t->force_gray = param->force_gray;
  if (param->crop_size > INT32_MAX / 2)
    return crema_fail(err, CREMA_ERR_INVALID, "transform_param: crop_size %u is too large",
                      param->crop_size);
  if (t->force_color && t->force_gray)
    return crema_fail(err, CREMA_ERR_INVALID,
                      "transform_param: cannot set both force_color and force_gray");
  int has_mean_file = param->mean_file && param->mean_file[0];
  if (has_mean_file && param->n_mean_value > 0)
    return crema_fail(err, CREMA_ERR_INVALID,
                      "transform_param: cannot specify mean_file and mean_value at the same time");
  if (has_mean_file)
    CREMA_TRY(load_mean_file(t, param->mean_file, err));
  if (param->n_mean_value > 0) {
    t->mean_values = crema_malloc(sizeof(float) * param->n_mean_value, err);
    if (!t->mean_values)
      return CREMA_ERR_NOMEM;
    memcpy(t->mean_values, param->mean_value, sizeof(float) * param->n_mean_value);
    t->n_mean_values = (int)param->n_mean_value;
  }
  return CREMA_OK;
}

void transformer_free(data_transformer *t) {
  if (!t)
    return;
  blob_free(t->mean);
  free(t->mean_values);
  memset(t, 0, sizeof *t);
}

void transformer_init_rand(data_transformer *t, crema_rng *source) {
  if (t->mirror || (t->phase == CAFFE__PHASE__TRAIN && t->crop_size))
    rng_seed(&t->rng, rng_u32(source));
}

image_color transformer_color(const data_transformer *t) {
  return t->force_color ? IMAGE_COLOR : t->force_gray ? IMAGE_GRAY : IMAGE_NATIVE;
}

/* Caffe's Rand(n): the raw 32-bit draw modulo n. */
static int transformer_rand(data_transformer *t, int n) {
  return (int)(rng_u32(&t->rng) % (uint32_t)n);
}

static crema_status check_crop(const data_transformer *t, const datum_pixels *p,
                               crema_error *err) {
  if (p->height < t->crop_size || p->width < t->crop_size)
    return crema_fail(err, CREMA_ERR_SHAPE, "crop_size %d exceeds the %dx%d record", t->crop_size,
                      p->height, p->width);
  return CREMA_OK;
}

crema_status transformer_item_shape(const data_transformer *t, const datum_pixels *p,
                                    int shape[4], crema_error *err) {
  CREMA_TRY(check_crop(t, p, err));
  shape[0] = 1;
  shape[1] = p->channels;
  shape[2] = t->crop_size ? t->crop_size : p->height;
  shape[3] = t->crop_size ? t->crop_size : p->width;
  return CREMA_OK;
}

static crema_status check_mean(const data_transformer *t, const datum_pixels *p,
                               crema_error *err) {
  if (t->mean) {
    int mc = blob_legacy_dim(t->mean, 1), mh = blob_legacy_dim(t->mean, 2),
        mw = blob_legacy_dim(t->mean, 3);
    if (mc != p->channels || mh != p->height || mw != p->width)
      return crema_fail(err, CREMA_ERR_SHAPE,
                        "the mean file is %dx%dx%d (channels x height x width), the record "
                        "%dx%dx%d",
                        mc, mh, mw, p->channels, p->height, p->width);
  }
  if (t->n_mean_values > 1 && t->n_mean_values != p->channels)
    return crema_fail(err, CREMA_ERR_SHAPE,
                      "%d mean_value entries for a %d-channel record: specify either 1 "
                      "mean_value or as many as channels",
                      t->n_mean_values, p->channels);
  return CREMA_OK;
}

crema_status transformer_apply(data_transformer *t, const datum_pixels *p, float *out,
                               crema_error *err) {
  CREMA_TRY(check_crop(t, p, err));
  /* Draw order as Caffe: mirror first, then the crop offsets. */
  int do_mirror = t->mirror && transformer_rand(t, 2);
  CREMA_TRY(check_mean(t, p, err));
  int height = p->height, width = p->width;
  int h_off = 0, w_off = 0;
  if (t->crop_size) {
    height = width = t->crop_size;
    if (t->phase == CAFFE__PHASE__TRAIN) {
      h_off = transformer_rand(t, p->height - t->crop_size + 1);
      w_off = transformer_rand(t, p->width - t->crop_size + 1);
    } else {
      h_off = (p->height - t->crop_size) / 2;
      w_off = (p->width - t->crop_size) / 2;
    }
  }
  const float *mean = t->mean ? t->mean->data : NULL;
  const float scale = t->scale;
  for (int c = 0; c < p->channels; c++) {
    float mean_value = t->n_mean_values ? t->mean_values[t->n_mean_values == 1 ? 0 : c] : 0.f;
    for (int h = 0; h < height; h++) {
      size_t src_row = ((size_t)c * p->height + h_off + h) * p->width + w_off;
      float *dst = out + ((size_t)c * height + h) * width;
      for (int w = 0; w < width; w++) {
        size_t src = src_row + w;
        float v = p->bytes ? (float)p->bytes[src] : p->floats[src];
        if (mean)
          v = (v - mean[src]) * scale;
        else if (t->n_mean_values)
          v = (v - mean_value) * scale;
        else
          v = v * scale;
        dst[do_mirror ? width - 1 - w : w] = v;
      }
    }
  }
  return CREMA_OK;
}
