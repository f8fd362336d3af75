#include "config.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/blob.h"
#include "core/memcap.h"
#include "core/parallel.h"

/* 64-byte alignment suits AVX-512 loads and OpenBLAS's packing. */
#define BLOB_ALIGN 64

/* Shapes come from files: the size is checked against the memory cap
 * before allocating (core/memcap.h). */
static float *alloc_floats(const blob *b, size_t n, int zero, crema_error *err) {
  size_t bytes;
  if (!size_mul(n ? n : 1, sizeof(float), &bytes)) {
    crema_fail(err, CREMA_ERR_NOMEM, "blob of %zu floats overflows", n);
    return NULL;
  }
  bytes = (bytes + BLOB_ALIGN - 1) / BLOB_ALIGN * BLOB_ALIGN;
  char what[160];
  snprintf(what, sizeof what, "blob '%s' (%zu values)", b->name ? b->name : "", n);
  if (mem_check(bytes, what, err) != CREMA_OK)
    return NULL;
  void *p = NULL;
  if (posix_memalign(&p, BLOB_ALIGN, bytes) != 0) {
    crema_fail(err, CREMA_ERR_NOMEM, "out of memory allocating a blob of %zu floats", n);
    return NULL;
  }
  if (zero)
    par_zero(p, bytes);
  return p;
}

blob *blob_create(const char *name, crema_error *err) {
  blob *b = crema_calloc(1, sizeof *b, err);
  if (!b)
    return NULL;
  if (name && !(b->name = crema_strdup(name, err))) {
    free(b);
    return NULL;
  }
  b->count = 1;
  b->wants_diff = 1;
  return b;
}

void blob_free(blob *b) {
  if (!b)
    return;
  if (b->owns_data)
    free(b->data);
  if (b->owns_diff)
    free(b->diff);
  free(b->name);
  free(b);
}

static crema_status ensure_data(blob *b, int zero, crema_error *err) {
  if (b->owns_data && b->data && b->data_cap >= b->count)
    return CREMA_OK;
  float *p = alloc_floats(b, b->count, zero, err);
  if (!p)
    return CREMA_ERR_NOMEM;
  if (b->owns_data)
    free(b->data);
  b->data = p;
  b->data_cap = b->count;
  b->owns_data = 1;
  b->unset = !zero;
  return CREMA_OK;
}

crema_status blob_ensure_diff(blob *b, crema_error *err) {
  /* A shared diff (parameters shared by name) must stay shared: replacing
   * it would keep this layer's gradient from its owner's. */
  if (b->diff && b->diff_cap >= b->count)
    return CREMA_OK;
  float *p = alloc_floats(b, b->count, 1, err);
  if (!p)
    return CREMA_ERR_NOMEM;
  if (b->owns_diff)
    free(b->diff);
  b->diff = p;
  b->diff_cap = b->count;
  b->owns_diff = 1;
  return CREMA_OK;
}

static crema_status reshape_with(blob *b, int num_axes, const int *shape, int zero,
                                 crema_error *err) {
  if (num_axes < 0 || num_axes > BLOB_MAX_AXES)
    return crema_fail(err, CREMA_ERR_SHAPE, "blob '%s': %d axes (at most %d allowed)",
                      b->name ? b->name : "", num_axes, BLOB_MAX_AXES);
  size_t count = 1;
  for (int i = 0; i < num_axes; i++) {
    if (shape[i] < 0)
      return crema_fail(err, CREMA_ERR_SHAPE, "blob '%s': axis %d has negative size %d",
                        b->name ? b->name : "", i, shape[i]);
    if (!size_mul(count, (size_t)shape[i], &count) || count > (size_t)INT_MAX)
      return crema_fail(err, CREMA_ERR_SHAPE, "blob '%s': element count exceeds %d",
                        b->name ? b->name : "", INT_MAX);
  }
  b->num_axes = num_axes;
  if (num_axes > 0)
    memcpy(b->shape, shape, (size_t)num_axes * sizeof(int));
  b->count = count;
  /* A blob sharing storage keeps pointing at its owner; the owner (or the
   * memory plan) is responsible for the size. */
  if (b->owns_data || !b->data)
    CREMA_TRY(ensure_data(b, zero, err));
  if (b->wants_diff && (b->owns_diff || !b->diff))
    CREMA_TRY(blob_ensure_diff(b, err));
  return CREMA_OK;
}

crema_status blob_reshape(blob *b, int num_axes, const int *shape, crema_error *err) {
  return reshape_with(b, num_axes, shape, 1, err);
}

crema_status blob_reshape_unset(blob *b, int num_axes, const int *shape, crema_error *err) {
  return reshape_with(b, num_axes, shape, 0, err);
}

crema_status blob_reshape_like(blob *b, const blob *other, crema_error *err) {
  return blob_reshape(b, other->num_axes, other->shape, err);
}

crema_status blob_reshape4(blob *b, int n, int c, int h, int w, crema_error *err) {
  int s[4] = {n, c, h, w};
  return blob_reshape(b, 4, s, err);
}

crema_status blob_canonical_axis(const blob *b, int axis, int *out, crema_error *err) {
  if (axis < -b->num_axes || axis >= b->num_axes)
    return crema_fail(err, CREMA_ERR_SHAPE,
                      "axis %d out of range for blob '%s' with %d axes", axis,
                      b->name ? b->name : "", b->num_axes);
  *out = axis < 0 ? axis + b->num_axes : axis;
  return CREMA_OK;
}

size_t blob_count_range(const blob *b, int start, int end) {
  size_t n = 1;
  for (int i = start; i < end && i < b->num_axes; i++)
    n *= (size_t)b->shape[i];
  return n;
}

size_t blob_count_from(const blob *b, int start) {
  return blob_count_range(b, start, b->num_axes);
}

int blob_legacy_dim(const blob *b, int index) {
  if (index >= b->num_axes || index < -b->num_axes)
    return 1;
  return b->shape[index < 0 ? index + b->num_axes : index];
}

const char *blob_shape_string(const blob *b, char *buf, size_t size) {
  if (size == 0)
    return buf;
  if (b->num_axes == 0) {
    snprintf(buf, size, "scalar");
    return buf;
  }
  size_t used = 0;
  buf[0] = '\0';
  for (int i = 0; i < b->num_axes && used < size; i++) {
    int n = snprintf(buf + used, size - used, i ? "x%d" : "%d", b->shape[i]);
    if (n < 0)
      break;
    used += (size_t)n;
  }
  return buf;
}

int blob_same_shape(const blob *a, const blob *b) {
  if (a->num_axes != b->num_axes)
    return 0;
  for (int i = 0; i < a->num_axes; i++)
    if (a->shape[i] != b->shape[i])
      return 0;
  return 1;
}

void blob_share_data(blob *dst, const blob *src) {
  if (dst->owns_data)
    free(dst->data);
  dst->data = src->data;
  dst->data_cap = src->data_cap;
  dst->owns_data = 0;
  dst->unset = 0;
}

void blob_share_diff(blob *dst, const blob *src) {
  if (dst->owns_diff)
    free(dst->diff);
  dst->diff = src->diff;
  dst->diff_cap = src->diff_cap;
  dst->owns_diff = 0;
}

void blob_zero_diff(blob *b) {
  if (b->diff)
    par_zero(b->diff, b->count * sizeof(float));
}
