#include "config.h"

#include <math.h>
#include <string.h>

#include "math/filler.h"

/* Caffe's fans use the legacy num/channels view of the blob:
 * fan_in = count / num, fan_out = count / channels. */
static float scaled_fan(const Caffe__FillerParameter *fp, const blob *b) {
  int num = blob_legacy_dim(b, 0), channels = blob_legacy_dim(b, 1);
  int fan_in = num > 0 ? (int)(b->count / (size_t)num) : 0;
  int fan_out = channels > 0 ? (int)(b->count / (size_t)channels) : 0;
  switch (fp->variance_norm) {
    case CAFFE__FILLER_PARAMETER__VARIANCE_NORM__AVERAGE: return (fan_in + fan_out) / 2.0f;
    case CAFFE__FILLER_PARAMETER__VARIANCE_NORM__FAN_OUT: return (float)fan_out;
    default: return (float)fan_in;
  }
}

static crema_status fill_uniform(blob *b, float lo, float hi, crema_rng *rng, crema_error *err) {
  if (!(lo <= hi))
    return crema_fail(err, CREMA_ERR_INVALID, "uniform filler: min %g is above max %g", lo, hi);
  for (size_t i = 0; i < b->count; i++)
    b->data[i] = rng_uniform(rng, lo, hi);
  return CREMA_OK;
}

static crema_status fill_gaussian(blob *b, float mean, float std, crema_rng *rng,
                                  crema_error *err) {
  if (!(std > 0.0f))
    return crema_fail(err, CREMA_ERR_INVALID, "gaussian filler: std must be > 0, got %g", std);
  for (size_t i = 0; i < b->count; i++)
    b->data[i] = rng_gaussian(rng, mean, std);
  return CREMA_OK;
}

/* Sparse gaussian: each weight survives with probability sparse / num_outputs. */
static crema_status apply_sparsity(const Caffe__FillerParameter *fp, blob *b, crema_rng *rng,
                                   crema_error *err) {
  if (fp->sparse < -1)
    return crema_fail(err, CREMA_ERR_INVALID, "gaussian filler: sparse must be >= -1, got %d",
                      (int)fp->sparse);
  if (fp->sparse < 0)
    return CREMA_OK;
  if (b->num_axes < 1)
    return crema_fail(err, CREMA_ERR_INVALID, "gaussian filler: sparse needs a blob with axes");
  float p = (float)fp->sparse / (float)b->shape[0];
  if (!(p <= 1.0f))
    return crema_fail(err, CREMA_ERR_INVALID,
                      "gaussian filler: sparse %d exceeds the %d outputs of the blob",
                      (int)fp->sparse, b->shape[0]);
  for (size_t i = 0; i < b->count; i++)
    if (!rng_bernoulli(rng, p))
      b->data[i] = 0.0f;
  return CREMA_OK;
}

static crema_status fill_positive_unitball(blob *b, crema_rng *rng) {
  for (size_t i = 0; i < b->count; i++)
    b->data[i] = rng_uniform(rng, 0.0f, 1.0f);
  size_t num = (size_t)blob_legacy_dim(b, 0), dim = b->count / num;
  for (size_t n = 0; n < num; n++) {
    float *row = b->data + n * dim, sum = 0.0f;
    for (size_t j = 0; j < dim; j++)
      sum += row[j];
    for (size_t j = 0; j < dim; j++)
      row[j] /= sum;
  }
  return CREMA_OK;
}

/* Each KxK kernel slice interpolates bilinearly for upsampling by ceil(K/2). */
static crema_status fill_bilinear(blob *b, crema_error *err) {
  if (b->num_axes != 4)
    return crema_fail(err, CREMA_ERR_SHAPE, "bilinear filler: blob must have 4 axes, has %d",
                      b->num_axes);
  int width = b->shape[3], height = b->shape[2];
  if (width != height)
    return crema_fail(err, CREMA_ERR_SHAPE, "bilinear filler: kernel must be square, is %dx%d",
                      height, width);
  int f = (width + 1) / 2;
  float c = (float)((2 * f - 1 - f % 2) / (2.0 * f));
  for (size_t i = 0; i < b->count; i++) {
    float x = (float)(i % (size_t)width);
    float y = (float)((i / (size_t)width) % (size_t)height);
    b->data[i] = (1.0f - fabsf(x / f - c)) * (1.0f - fabsf(y / f - c));
  }
  return CREMA_OK;
}

int filler_is_zero(const Caffe__FillerParameter *fp) {
  if (!fp)
    return 1;
  return (!fp->type || !strcmp(fp->type, "constant")) && fp->value == 0.0f && fp->sparse == -1;
}

crema_status filler_fill(const Caffe__FillerParameter *fp, blob *b, crema_rng *rng,
                         crema_error *err) {
  Caffe__FillerParameter defaults;
  if (!fp) {
    caffe__filler_parameter__init(&defaults);
    fp = &defaults;
  }
  const char *type = fp->type ? fp->type : "constant";
  if (b->count == 0)
    return CREMA_OK;
  int is_gaussian = !strcmp(type, "gaussian");
  if (!is_gaussian && fp->sparse != -1)
    return crema_fail(err, CREMA_ERR_INVALID, "%s filler: sparsity is not supported", type);
  if (!strcmp(type, "constant")) {
    for (size_t i = 0; i < b->count; i++)
      b->data[i] = fp->value;
    return CREMA_OK;
  }
  if (is_gaussian) {
    CREMA_TRY(fill_gaussian(b, fp->mean, fp->std, rng, err));
    return apply_sparsity(fp, b, rng, err);
  }
  if (!strcmp(type, "uniform"))
    return fill_uniform(b, fp->min, fp->max, rng, err);
  if (!strcmp(type, "xavier")) {
    float scale = sqrtf(3.0f / scaled_fan(fp, b));
    return fill_uniform(b, -scale, scale, rng, err);
  }
  if (!strcmp(type, "msra"))
    return fill_gaussian(b, 0.0f, sqrtf(2.0f / scaled_fan(fp, b)), rng, err);
  if (!strcmp(type, "positive_unitball"))
    return fill_positive_unitball(b, rng);
  if (!strcmp(type, "bilinear"))
    return fill_bilinear(b, err);
  return crema_fail(err, CREMA_ERR_INVALID,
                    "unknown filler type '%s' (expected constant, gaussian, uniform, xavier, "
                    "msra, positive_unitball or bilinear)",
                    type);
}
