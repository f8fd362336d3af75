/* Descriptors pooled inside a mask. */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/image.h"
#include "math/blas.h"
#include "retrieval/maskpool.h"

/* The image a key names, without extension: the source key
 * extract-features --keep-source stores, without convert-imageset's
 * "%08d_" prefix, and without folders. */
static void image_id(const char *key, char *id, size_t size) {
  const char *s = feature_key_source(key);
  size_t i = 0;
  while (i < 8 && s[i] >= '0' && s[i] <= '9')
    i++;
  if (i == 8 && s[8] == '_')
    s += 9;
  const char *slash = strrchr(s, '/');
  if (slash)
    s = slash + 1;
  snprintf(id, size, "%s", s);
  char *dot = strrchr(id, '.');
  if (dot && dot != id)
    *dot = '\0';
}

/* The mask's mean over each cell of an h x w grid, in [0, 1]; *sum
 * receives the weights' sum. */
static crema_status mask_weights(const char *path, int h, int w, float *m, double *sum,
                                 crema_error *err) {
  image img;
  CREMA_TRY(image_read_file(path, IMAGE_GRAY, &img, err));
  *sum = 0.0;
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      const int y0 = (int)((long)y * img.height / h), y1 = (int)((long)(y + 1) * img.height / h);
      const int x0 = (int)((long)x * img.width / w), x1 = (int)((long)(x + 1) * img.width / w);
      double s = 0.0;
      long n = 0;
      for (int yy = y0; yy < (y1 > y0 ? y1 : y0 + 1); yy++)
        for (int xx = x0; xx < (x1 > x0 ? x1 : x0 + 1); xx++, n++)
          s += img.pixels[(size_t)yy * img.width + xx];
      m[y * w + x] = (float)(s / (255.0 * (double)n));
      *sum += m[y * w + x];
    }
  image_free(&img);
  return CREMA_OK;
}

/* The pooled part of one record from its (weighted) features x (c x s). */
static void repool(const float *x, size_t c, size_t s, heat_pool pool, double msum, float *d) {
  if (pool == HEAT_BILINEAR) {
    math_gemm(0, 1, (int)c, (int)c, (int)s, 1.0f, x, x, 0.0f, d);
    double sq = 0.0;
    for (size_t k = 0; k < c * c; k++) {
      d[k] = d[k] >= 0.0f ? sqrtf(d[k]) : -sqrtf(-d[k]);
      sq += (double)d[k] * d[k];
    }
    const float inv = (float)(1.0 / sqrt(sq + 1e-7)); /* L2Normalize's epsilon */
    for (size_t k = 0; k < c * c; k++)
      d[k] *= inv;
  } else {
    for (size_t i = 0; i < c; i++) {
      double v = 0.0;
      for (size_t t = 0; t < s; t++)
        v += x[i * s + t];
      d[i] = (float)(v / msum);
    }
  }
}

crema_status mask_pool_apply(const mask_pool_options *o, feature_set *desc, feature_set *spatial,
                             size_t *empty, crema_error *err) {
  const size_t c = (size_t)spatial->channels, s = spatial->dim / c;
  const int h = spatial->height, w = spatial->width;
  if (empty)
    *empty = 0;
  if ((size_t)h * (size_t)w != s || desc->n != spatial->n)
    return crema_fail(err, CREMA_ERR_INVALID, "masks: spatial features of %d x %d x %d for %zu "
                      "values, %zu records for %zu descriptors",
                      spatial->channels, h, w, spatial->dim, spatial->n, desc->n);
  float *m = crema_malloc(s * sizeof(float) + 1, err);
  if (!m)
    return CREMA_ERR_NOMEM;
  const int blas = blas_threads_enter();
  crema_status st = CREMA_OK;
  for (size_t i = 0; i < desc->n && st == CREMA_OK; i++) {
    char id[1024], path[4096];
    image_id(desc->keys[i], id, sizeof id);
    snprintf(path, sizeof path, "%s/%s%s", o->dir, id, o->suffix);
    double msum;
    if ((st = mask_weights(path, h, w, m, &msum, err)) != CREMA_OK) {
      crema_error_prefix(err, "record '%s': ", desc->keys[i]);
      break;
    }
    if (msum <= 0.0) { /* no lesion in the mask: the whole image */
      for (size_t t = 0; t < s; t++)
        m[t] = 1.0f;
      msum = (double)s;
      if (empty)
        (*empty)++;
    }
    float *x = spatial->data + i * spatial->dim;
    for (size_t k = 0; k < c; k++)
      for (size_t t = 0; t < s; t++)
        x[k * s + t] *= o->pool == HEAT_BILINEAR ? sqrtf(m[t]) : m[t];
    /* The average's weights sum to msum; the features carry them once. */
    repool(x, c, s, o->pool, msum, desc->data + i * desc->dim + o->offset);
  }
  blas_threads_leave(blas);
  free(m);
  return st;
}
