/* N-D blobs holding data and diff, with Caffe's shape rules. */
#ifndef CREMA_CORE_BLOB_H
#define CREMA_CORE_BLOB_H

#include <stddef.h>
#include "core/error.h"

#define BLOB_MAX_AXES 32

typedef struct blob {
  char *name;              /* owned; may be NULL */
  int num_axes;
  int shape[BLOB_MAX_AXES];
  size_t count;            /* product of shape (1 for a scalar) */
  float *data;
  float *diff;
  size_t data_cap;         /* floats allocated, when owned */
  size_t diff_cap;
  unsigned owns_data : 1;  /* 0 while sharing another blob's storage */
  unsigned owns_diff : 1;
  unsigned wants_diff : 1; /* allocate a diff buffer on reshape */
  unsigned unset : 1;      /* data allocated but not yet written (blob_reshape_unset) */
} blob;

/* A new empty blob (no axes, count 1, nothing allocated yet) that wants a
 * diff buffer.  name may be NULL. */
blob *blob_create(const char *name, crema_error *err);
void blob_free(blob *b);

/* Sets the shape; reallocates (zero-filled, like Caffe's fresh memory) only
 * when the new count exceeds the capacity.  Each dim must be >= 0 and the
 * count must fit in an int, as in Caffe. */
crema_status blob_reshape(blob *b, int num_axes, const int *shape, crema_error *err);
/* The same, but storage it allocates is left unset (and b->unset set):
 * for callers that write every value next, so that the first touch of
 * fresh pages is their write and not a zeroing nobody reads. */
crema_status blob_reshape_unset(blob *b, int num_axes, const int *shape, crema_error *err);
crema_status blob_reshape_like(blob *b, const blob *other, crema_error *err);
crema_status blob_reshape4(blob *b, int n, int c, int h, int w, crema_error *err);
/* Allocates the diff buffer if the blob has none (own or shared) of its size
 * yet. */
crema_status blob_ensure_diff(blob *b, crema_error *err);

/* Caffe's CanonicalAxisIndex: maps -num_axes..num_axes-1 to 0..num_axes-1. */
crema_status blob_canonical_axis(const blob *b, int axis, int *out, crema_error *err);
/* Product of shape[start..end). */
size_t blob_count_range(const blob *b, int start, int end);
size_t blob_count_from(const blob *b, int start);
/* Caffe's LegacyShape: num/channels/height/width with missing axes as 1. */
int blob_legacy_dim(const blob *b, int index);
/* Dims of the shape as "2x3x4x5" ("scalar" for no axes). */
const char *blob_shape_string(const blob *b, char *buf, size_t size);
int blob_same_shape(const blob *a, const blob *b);

/* Storage sharing (in-place layers, the memory plan, shared parameters):
 * dst uses src's buffers without owning them. */
void blob_share_data(blob *dst, const blob *src);
void blob_share_diff(blob *dst, const blob *src);

void blob_zero_diff(blob *b);

#endif
