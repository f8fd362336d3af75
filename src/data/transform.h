/* Caffe's DataTransformer (data_transformer.cpp): crop, mirror, mean
 * subtraction and scaling of one record into one item of a blob, with
 * Caffe's order of operations and of random draws. */
#ifndef CREMA_DATA_TRANSFORM_H
#define CREMA_DATA_TRANSFORM_H

#include <stdint.h>
#include "caffe.pb-c.h"
#include "core/blob.h"
#include "core/rng.h"
#include "data/datum.h"

typedef struct data_transformer {
  Caffe__Phase phase;
  float scale;
  int mirror;
  int crop_size;
  int force_color, force_gray;
  blob *mean;         /* from mean_file, or NULL */
  float *mean_values; /* from mean_value */
  int n_mean_values;
  crema_rng rng;      /* own generator, as Caffe's transformer has */
} data_transformer;

/* Reads the parameters (param may be NULL: no transformation) and loads
 * mean_file (a BlobProto, legacy num/channels/height/width accepted). */
crema_status transformer_init(data_transformer *t, const Caffe__TransformationParameter *param,
                              Caffe__Phase phase, crema_error *err);
void transformer_free(data_transformer *t);

/* Caffe's InitRand: when mirroring or random cropping is on, seeds the
 * transformer's generator with one draw from source (Caffe's global
 * generator, here the net's). */
void transformer_init_rand(data_transformer *t, crema_rng *source);

/* How encoded records are decoded (force_color / force_gray). */
image_color transformer_color(const data_transformer *t);

/* InferBlobShape: the shape of one transformed item (1 x C x H x W). */
crema_status transformer_item_shape(const data_transformer *t, const datum_pixels *p,
                                    int shape[4], crema_error *err);

/* Transform: writes one item (C x H' x W' floats) to out. */
crema_status transformer_apply(data_transformer *t, const datum_pixels *p, float *out,
                               crema_error *err);

#endif
