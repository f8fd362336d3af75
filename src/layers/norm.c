/* Normalisation layers: LRN, BatchNorm, MVN (after Caffe's). */
#include "config.h"

#include <math.h>
#include <stdlib.h>

#include "layers/layer.h"
#include "layers/registry.h"

/* A private float buffer held in a blob without a diff. */
static crema_status scratch_blob(blob **out, crema_error *err) {
  if (!(*out = blob_create(NULL, err)))
    return CREMA_ERR_NOMEM;
  (*out)->wants_diff = 0;
  return CREMA_OK;
}

static crema_status scratch_resize(blob *b, size_t n, crema_error *err) {
  if (n > 0x7fffffff)
    return crema_fail(err, CREMA_ERR_NOMEM, "scratch buffer of %zu floats is too large", n);
  int dim = (int)n;
  return blob_reshape(b, 1, &dim, err);
}

/* ---- LRN -----------------------------------------------------------------
 * ACROSS_CHANNELS: scale = k + alpha/n * sum of x^2 over n neighbouring
 * channels (zero padded), y = x * scale^-beta.
 * WITHIN_CHANNEL: Caffe chains split, square, AVE pooling (kernel n, pad
 * (n-1)/2, stride 1), power and product layers.  With that padding the
 * pooling divisor is always n*n (padding counts), and the power layer uses
 * shift 1, not k: scale = 1 + alpha * boxsum(x^2) / n^2. */

typedef struct lrn_state {
  int size, pre_pad, within;
  float alpha, beta, k;
  int num, channels, height, width;
  blob *scale;   /* per element, kept for backward */
  blob *planes;  /* two H x W planes for the box sums */
} lrn_state;

static crema_status lrn_setup(layer *l, const blob_list *bottom, const blob_list *top,
                              crema_error *err) {
  lrn_state *s = crema_calloc(1, sizeof *s, err);
  if (!s)
    return CREMA_ERR_NOMEM;
  l->priv = s;
  Caffe__LRNParameter def = CAFFE__LRNPARAMETER__INIT;
  const Caffe__LRNParameter *p = l->param->lrn_param ? l->param->lrn_param : &def;
  if (p->local_size % 2 != 1 || p->local_size > 0x7fff)
    return layer_fail(l, err, CREMA_ERR_INVALID,
                      "LRN only supports odd values for local_size (got %u)", p->local_size);
  if (p->norm_region != CAFFE__LRNPARAMETER__NORM_REGION__ACROSS_CHANNELS &&
      p->norm_region != CAFFE__LRNPARAMETER__NORM_REGION__WITHIN_CHANNEL)
    return layer_fail(l, err, CREMA_ERR_INVALID, "unknown LRN norm_region %d",
                      (int)p->norm_region);
  s->size = (int)p->local_size;
  s->pre_pad = (s->size - 1) / 2;
  s->alpha = p->alpha;
  s->beta = p->beta;
  s->k = p->k;
  s->within = p->norm_region == CAFFE__LRNPARAMETER__NORM_REGION__WITHIN_CHANNEL;
  CREMA_TRY(scratch_blob(&s->scale, err));
  return scratch_blob(&s->planes, err);
}

static crema_status lrn_reshape(layer *l, const blob_list *bottom, const blob_list *top,
                                crema_error *err) {
  lrn_state *s = l->priv;
  const blob *x = bottom->v[0];
  if (x->num_axes != 4)
    return layer_fail(l, err, CREMA_ERR_SHAPE,
                      "input must have 4 axes (num, channels, height, width), not %d",
                      x->num_axes);
  s->num = x->shape[0];
  s->channels = x->shape[1];
  s->height = x->shape[2];
  s->width = x->shape[3];
  CREMA_TRY(blob_reshape_like(s->scale, x, err));
  CREMA_TRY(scratch_resize(s->planes, 2 * (size_t)s->height * (size_t)s->width, err));
  return blob_reshape_like(top->v[0], x, err);
}

/* out = sum of in over the (2 pad + 1)^2 window around each pixel, clipped to
 * the plane; tmp holds the row sums. */
static void box_sum(const float *in, float *out, float *tmp, int h, int w, int pad) {
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      int x0 = x - pad < 0 ? 0 : x - pad, x1 = x + pad >= w ? w - 1 : x + pad;
      float sum = 0.0f;
      for (int i = x0; i <= x1; i++)
        sum += in[y * w + i];
      tmp[y * w + x] = sum;
    }
  for (int y = 0; y < h; y++) {
    int y0 = y - pad < 0 ? 0 : y - pad, y1 = y + pad >= h ? h - 1 : y + pad;
    for (int x = 0; x < w; x++) {
      float sum = 0.0f;
      for (int i = y0; i <= y1; i++)
        sum += tmp[i * w + x];
      out[y * w + x] = sum;
    }
  }
}

static void lrn_scale_across(const lrn_state *s, const float *x, float *scale) {
  size_t plane = (size_t)s->height * s->width, item = (size_t)s->channels * plane;
  float alpha_over_size = s->alpha / (float)s->size;
  for (int n = 0; n < s->num; n++)
    for (int c = 0; c < s->channels; c++) {
      int c0 = c - s->pre_pad < 0 ? 0 : c - s->pre_pad;
      int c1 = c + s->pre_pad >= s->channels ? s->channels - 1 : c + s->pre_pad;
      float *out = scale + n * item + (size_t)c * plane;
      for (size_t i = 0; i < plane; i++) {
        float sum = 0.0f;
        for (int j = c0; j <= c1; j++) {
          float v = x[n * item + (size_t)j * plane + i];
          sum += v * v;
        }
        out[i] = s->k + alpha_over_size * sum;
      }
    }
}

static void lrn_scale_within(const lrn_state *s, const float *x, float *scale) {
  size_t plane = (size_t)s->height * s->width;
  size_t planes = (size_t)s->num * s->channels;
  float *sq = s->planes->data, *tmp = sq + plane;
  float inv_area = 1.0f / (float)(s->size * s->size);
  for (size_t p = 0; p < planes; p++) {
    const float *xp = x + p * plane;
    float *out = scale + p * plane;
    for (size_t i = 0; i < plane; i++)
      sq[i] = xp[i] * xp[i];
    box_sum(sq, out, tmp, s->height, s->width, s->pre_pad);
    for (size_t i = 0; i < plane; i++)
      out[i] = 1.0f + s->alpha * (out[i] * inv_area);
  }
}

static crema_status lrn_forward(layer *l, const blob_list *bottom, const blob_list *top,
                                crema_error *err) {
  lrn_state *s = l->priv;
  const float *x = bottom->v[0]->data;
  float *y = top->v[0]->data, *scale = s->scale->data;
  if (s->within)
    lrn_scale_within(s, x, scale);
  else
    lrn_scale_across(s, x, scale);
  for (size_t i = 0; i < s->scale->count; i++)
    y[i] = x[i] * powf(scale[i], -s->beta);
  return CREMA_OK;
}

static crema_status lrn_backward_across(layer *l, const blob_list *top,
                                        const blob_list *bottom, crema_error *err) {
  lrn_state *s = l->priv;
  size_t plane = (size_t)s->height * s->width, item = (size_t)s->channels * plane;
  const float *x = bottom->v[0]->data, *y = top->v[0]->data, *dy = top->v[0]->diff;
  const float *scale = s->scale->data;
  float *dx = bottom->v[0]->diff;
  float *ratio = layer_workspace(l, item, err);
  if (!ratio)
    return CREMA_ERR_NOMEM;
  float cache = 2.0f * s->alpha * s->beta / (float)s->size;
  for (int n = 0; n < s->num; n++) {
    size_t base = (size_t)n * item;
    for (size_t i = 0; i < item; i++)
      ratio[i] = dy[base + i] * y[base + i] / scale[base + i];
    for (int c = 0; c < s->channels; c++) {
      int c0 = c - s->pre_pad < 0 ? 0 : c - s->pre_pad;
      int c1 = c + s->pre_pad >= s->channels ? s->channels - 1 : c + s->pre_pad;
      for (size_t i = 0; i < plane; i++) {
        size_t at = base + (size_t)c * plane + i;
        float acc = 0.0f;
        for (int j = c0; j <= c1; j++)
          acc += ratio[(size_t)j * plane + i];
        dx[at] = dy[at] * powf(scale[at], -s->beta) - cache * x[at] * acc;
      }
    }
  }
  return CREMA_OK;
}

/* Through Caffe's chain: product (dy * scale^-beta to x, dy * x to the power
 * output), power, the average pooling (its transpose is the same box sum) and
 * the square (2x). */
static crema_status lrn_backward_within(layer *l, const blob_list *top,
                                        const blob_list *bottom, crema_error *err) {
  lrn_state *s = l->priv;
  size_t plane = (size_t)s->height * s->width;
  size_t planes = (size_t)s->num * s->channels;
  const float *x = bottom->v[0]->data, *dy = top->v[0]->diff, *scale = s->scale->data;
  float *dx = bottom->v[0]->diff;
  float *g = layer_workspace(l, 2 * plane, err);
  if (!g)
    return CREMA_ERR_NOMEM;
  float *tmp = g + plane, *pooled = s->planes->data;
  float inv_area = 1.0f / (float)(s->size * s->size);
  float power_coeff = -s->beta * s->alpha;
  for (size_t p = 0; p < planes; p++) {
    size_t base = p * plane;
    for (size_t i = 0; i < plane; i++) {
      float inv = powf(scale[base + i], -s->beta);
      g[i] = dy[base + i] * x[base + i] * power_coeff * inv / scale[base + i];
    }
    box_sum(g, pooled, tmp, s->height, s->width, s->pre_pad);
    for (size_t i = 0; i < plane; i++) {
      size_t at = base + i;
      float inv = powf(scale[at], -s->beta);
      dx[at] = dy[at] * inv + 2.0f * x[at] * (pooled[i] * inv_area);
    }
  }
  return CREMA_OK;
}

static crema_status lrn_backward(layer *l, const blob_list *top, const int *propagate_down,
                                 const blob_list *bottom, crema_error *err) {
  if (!propagate_down[0])
    return CREMA_OK;
  const lrn_state *s = l->priv;
  return s->within ? lrn_backward_within(l, top, bottom, err)
                   : lrn_backward_across(l, top, bottom, err);
}

static void lrn_destroy(layer *l) {
  lrn_state *s = l->priv;
  if (s) {
    blob_free(s->scale);
    blob_free(s->planes);
  }
  free(s);
}

const layer_ops lrn_layer_ops = {
    .type = "LRN",
    .min_bottoms = 1, .max_bottoms = 1,
    .min_tops = 1, .max_tops = 1,
    .setup = lrn_setup,
    .reshape = lrn_reshape,
    .forward = lrn_forward,
    .backward = lrn_backward,
    .destroy = lrn_destroy,
};

/* ---- BatchNorm --------------------------------------------------------------
 * Blobs: 0 = running sum of means, 1 = running sum of variances, 2 = the
 * scale factor that turns both into averages (0 means "no statistics yet").
 * Statistics are per channel (axis 1) over the batch and spatial axes. */

typedef struct batch_norm_state {
  int use_global;
  float maf, eps;
  int channels;
  size_t num, spatial;
  blob *stats;  /* mean[C] then std[C] = sqrt(var + eps), of the last forward */
  blob *x_norm; /* the normalised output, kept for backward (top may be in place) */
} batch_norm_state;

static crema_status batch_norm_setup(layer *l, const blob_list *bottom, const blob_list *top,
                                     crema_error *err) {
  batch_norm_state *s = crema_calloc(1, sizeof *s, err);
  if (!s)
    return CREMA_ERR_NOMEM;
  l->priv = s;
  Caffe__BatchNormParameter def = CAFFE__BATCH_NORM_PARAMETER__INIT;
  const Caffe__BatchNormParameter *p =
      l->param->batch_norm_param ? l->param->batch_norm_param : &def;
  s->use_global = p->has_use_global_stats ? p->use_global_stats : l->phase == CAFFE__PHASE__TEST;
  s->maf = p->moving_average_fraction;
  s->eps = p->eps;
  const blob *x = bottom->v[0];
  if (x->num_axes < 1)
    return layer_fail(l, err, CREMA_ERR_SHAPE, "input must have at least one axis");
  s->channels = x->num_axes == 1 ? 1 : x->shape[1];
  /* Caffe masks the statistics from the solver by forcing lr_mult 0. */
  for (size_t i = 0; i < l->param->n_param && i < 3; i++)
    if (l->param->param[i]->lr_mult != 0.0f)
      return layer_fail(l, err, CREMA_ERR_INVALID,
                        "cannot configure batch normalization statistics as layer "
                        "parameters (param %zu has lr_mult %g, must be 0)",
                        i, (double)l->param->param[i]->lr_mult);
  CREMA_TRY(layer_alloc_blobs(l, 3, err));
  CREMA_TRY(blob_reshape(l->blobs[0], 1, &s->channels, err));
  CREMA_TRY(blob_reshape(l->blobs[1], 1, &s->channels, err));
  int one = 1;
  CREMA_TRY(blob_reshape(l->blobs[2], 1, &one, err));
  CREMA_TRY(scratch_blob(&s->stats, err));
  return scratch_blob(&s->x_norm, err);
}

static crema_status batch_norm_reshape(layer *l, const blob_list *bottom, const blob_list *top,
                                       crema_error *err) {
  batch_norm_state *s = l->priv;
  const blob *x = bottom->v[0];
  int channels = x->num_axes == 1 ? 1 : x->num_axes > 1 ? x->shape[1] : -1;
  if (channels != s->channels)
    return layer_fail(l, err, CREMA_ERR_SHAPE,
                      "input has %d channels, the layer was set up for %d", channels,
                      s->channels);
  s->num = (size_t)x->shape[0];
  size_t per = s->num * (size_t)s->channels;
  s->spatial = per ? x->count / per : 0;
  CREMA_TRY(scratch_resize(s->stats, 2 * (size_t)s->channels, err));
  CREMA_TRY(blob_reshape_like(s->x_norm, x, err));
  return blob_reshape_like(top->v[0], x, err);
}

#define BN_AT(s, n, c) (((n) * (size_t)(s)->channels + (size_t)(c)) * (s)->spatial)

/* Mean and biased variance per channel over batch and space. */
static void batch_norm_batch_stats(const batch_norm_state *s, const float *x, float *mean,
                                   float *var) {
  double m = (double)s->num * (double)s->spatial;
  for (int c = 0; c < s->channels; c++) {
    double sum = 0.0;
    for (size_t n = 0; n < s->num; n++)
      for (size_t i = 0; i < s->spatial; i++)
        sum += x[BN_AT(s, n, c) + i];
    mean[c] = m > 0 ? (float)(sum / m) : 0.0f;
    double sq = 0.0;
    for (size_t n = 0; n < s->num; n++)
      for (size_t i = 0; i < s->spatial; i++) {
        float d = x[BN_AT(s, n, c) + i] - mean[c];
        sq += (double)d * d;
      }
    var[c] = m > 0 ? (float)(sq / m) : 0.0f;
  }
}

static void batch_norm_update_running(layer *l, const float *mean, const float *var) {
  batch_norm_state *s = l->priv;
  float *rmean = l->blobs[0]->data, *rvar = l->blobs[1]->data;
  l->blobs[2]->data[0] = l->blobs[2]->data[0] * s->maf + 1.0f;
  size_t m = s->num * s->spatial;
  /* Unbiased variance in the running average, as Caffe. */
  float correction = m > 1 ? (float)m / (float)(m - 1) : 1.0f;
  for (int c = 0; c < s->channels; c++) {
    rmean[c] = mean[c] + s->maf * rmean[c];
    rvar[c] = correction * var[c] + s->maf * rvar[c];
  }
}

static crema_status batch_norm_forward(layer *l, const blob_list *bottom, const blob_list *top,
                                       crema_error *err) {
  batch_norm_state *s = l->priv;
  const float *x = bottom->v[0]->data;
  float *y = top->v[0]->data, *mean = s->stats->data, *sd = mean + s->channels;
  if (s->use_global) {
    float stored = l->blobs[2]->data[0];
    float factor = stored == 0.0f ? 0.0f : 1.0f / stored;
    for (int c = 0; c < s->channels; c++) {
      mean[c] = factor * l->blobs[0]->data[c];
      sd[c] = factor * l->blobs[1]->data[c];
    }
  } else {
    batch_norm_batch_stats(s, x, mean, sd);
    batch_norm_update_running(l, mean, sd);
  }
  for (int c = 0; c < s->channels; c++)
    sd[c] = sqrtf(sd[c] + s->eps);
  float *xn = s->x_norm->data;
  for (size_t n = 0; n < s->num; n++)
    for (int c = 0; c < s->channels; c++) {
      size_t base = BN_AT(s, n, c);
      for (size_t i = 0; i < s->spatial; i++) {
        float v = (x[base + i] - mean[c]) / sd[c];
        y[base + i] = v;
        xn[base + i] = v;
      }
    }
  return CREMA_OK;
}

/* With batch statistics: dx = (dy - mean(dy) - mean(dy * y) * y) / std,
 * means per channel; with stored statistics: dx = dy / std. */
static crema_status batch_norm_backward(layer *l, const blob_list *top,
                                        const int *propagate_down, const blob_list *bottom,
                                        crema_error *err) {
  if (!propagate_down[0])
    return CREMA_OK;
  const batch_norm_state *s = l->priv;
  const float *dy = top->v[0]->diff, *y = s->x_norm->data, *sd = s->stats->data + s->channels;
  float *dx = bottom->v[0]->diff;
  double m = (double)s->num * (double)s->spatial;
  for (int c = 0; c < s->channels; c++) {
    float mean_dy = 0.0f, mean_dyy = 0.0f;
    if (!s->use_global && m > 0) {
      double sum_dy = 0.0, sum_dyy = 0.0;
      for (size_t n = 0; n < s->num; n++)
        for (size_t i = 0; i < s->spatial; i++) {
          size_t at = BN_AT(s, n, c) + i;
          sum_dy += dy[at];
          sum_dyy += (double)dy[at] * y[at];
        }
      mean_dy = (float)(sum_dy / m);
      mean_dyy = (float)(sum_dyy / m);
    }
    for (size_t n = 0; n < s->num; n++)
      for (size_t i = 0; i < s->spatial; i++) {
        size_t at = BN_AT(s, n, c) + i;
        dx[at] = (dy[at] - mean_dy - mean_dyy * y[at]) / sd[c];
      }
  }
  return CREMA_OK;
}

static void batch_norm_destroy(layer *l) {
  batch_norm_state *s = l->priv;
  if (s) {
    blob_free(s->stats);
    blob_free(s->x_norm);
  }
  free(s);
}

const layer_ops batch_norm_layer_ops = {
    .type = "BatchNorm",
    .min_bottoms = 1, .max_bottoms = 1,
    .min_tops = 1, .max_tops = 1,
    .solver_frozen_params = 1,
    .setup = batch_norm_setup,
    .reshape = batch_norm_reshape,
    .forward = batch_norm_forward,
    .backward = batch_norm_backward,
    .destroy = batch_norm_destroy,
};

/* ---- MVN ------------------------------------------------------------------
 * Per item and channel (or per item with across_channels): subtract the
 * mean and, with normalize_variance, divide by sqrt(var) + eps (Caffe adds
 * eps to the standard deviation, not to the variance). */

typedef struct mvn_state {
  int normalize_variance, across_channels;
  float eps;
  size_t rows, dim;
  blob *sd; /* per row, of the last forward */
} mvn_state;

static crema_status mvn_setup(layer *l, const blob_list *bottom, const blob_list *top,
                              crema_error *err) {
  mvn_state *s = crema_calloc(1, sizeof *s, err);
  if (!s)
    return CREMA_ERR_NOMEM;
  l->priv = s;
  Caffe__MVNParameter def = CAFFE__MVNPARAMETER__INIT;
  const Caffe__MVNParameter *p = l->param->mvn_param ? l->param->mvn_param : &def;
  s->normalize_variance = p->normalize_variance;
  s->across_channels = p->across_channels;
  s->eps = p->eps;
  return scratch_blob(&s->sd, err);
}

static crema_status mvn_reshape(layer *l, const blob_list *bottom, const blob_list *top,
                                crema_error *err) {
  mvn_state *s = l->priv;
  const blob *x = bottom->v[0];
  if (x->num_axes > 4)
    return layer_fail(l, err, CREMA_ERR_SHAPE,
                      "input must have at most 4 axes (num, channels, height, width), not %d",
                      x->num_axes);
  s->rows = (size_t)blob_legacy_dim(x, 0);
  if (!s->across_channels)
    s->rows *= (size_t)blob_legacy_dim(x, 1);
  s->dim = s->rows ? x->count / s->rows : 0;
  CREMA_TRY(scratch_resize(s->sd, s->rows, err));
  return blob_reshape_like(top->v[0], x, err);
}

static crema_status mvn_forward(layer *l, const blob_list *bottom, const blob_list *top,
                                crema_error *err) {
  mvn_state *s = l->priv;
  for (size_t r = 0; r < s->rows; r++) {
    const float *x = bottom->v[0]->data + r * s->dim;
    float *y = top->v[0]->data + r * s->dim;
    double sum = 0.0;
    for (size_t i = 0; i < s->dim; i++)
      sum += x[i];
    float mean = s->dim ? (float)(sum / (double)s->dim) : 0.0f;
    for (size_t i = 0; i < s->dim; i++)
      y[i] = x[i] - mean;
    if (!s->normalize_variance)
      continue;
    double sq = 0.0;
    for (size_t i = 0; i < s->dim; i++)
      sq += (double)y[i] * y[i];
    float sd = sqrtf(s->dim ? (float)(sq / (double)s->dim) : 0.0f) + s->eps;
    s->sd->data[r] = sd;
    for (size_t i = 0; i < s->dim; i++)
      y[i] /= sd;
  }
  return CREMA_OK;
}

/* Caffe's formula, exact when eps = 0:
 * dx = (dy - (sum(dy) + y * sum(dy * y)) / dim) / sd, or dx = dy - mean(dy). */
static crema_status mvn_backward(layer *l, const blob_list *top, const int *propagate_down,
                                 const blob_list *bottom, crema_error *err) {
  if (!propagate_down[0])
    return CREMA_OK;
  const mvn_state *s = l->priv;
  for (size_t r = 0; r < s->rows; r++) {
    const float *y = top->v[0]->data + r * s->dim, *dy = top->v[0]->diff + r * s->dim;
    float *dx = bottom->v[0]->diff + r * s->dim;
    double sum_dy = 0.0, sum_dyy = 0.0;
    for (size_t i = 0; i < s->dim; i++) {
      sum_dy += dy[i];
      sum_dyy += (double)dy[i] * y[i];
    }
    float inv_dim = s->dim ? 1.0f / (float)s->dim : 0.0f;
    if (s->normalize_variance) {
      float a = (float)sum_dy, b = (float)sum_dyy, sd = s->sd->data[r];
      for (size_t i = 0; i < s->dim; i++)
        dx[i] = (dy[i] - (a + y[i] * b) * inv_dim) / sd;
    } else {
      float mean = (float)sum_dy * inv_dim;
      for (size_t i = 0; i < s->dim; i++)
        dx[i] = dy[i] - mean;
    }
  }
  return CREMA_OK;
}

static void mvn_destroy(layer *l) {
  mvn_state *s = l->priv;
  if (s)
    blob_free(s->sd);
  free(s);
}

const layer_ops mvn_layer_ops = {
    .type = "MVN",
    .min_bottoms = 1, .max_bottoms = 1,
    .min_tops = 1, .max_tops = 1,
    .setup = mvn_setup,
    .reshape = mvn_reshape,
    .forward = mvn_forward,
    .backward = mvn_backward,
    .destroy = mvn_destroy,
};
