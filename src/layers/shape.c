/* Layers that move data without arithmetic, after Caffe's: Concat, Slice,
 * Split, Crop, Flatten, Reshape, Tile and Silence. */
#include "config.h"

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "layers/layer.h"
#include "layers/registry.h"
#include "math/elementwise.h"

static crema_status prefixed(const layer *l, crema_status st, crema_error *err) {
  if (st != CREMA_OK)
    crema_error_prefix(err, "layer '%s' (%s): ", l->name, l->ops->type);
  return st;
}

static crema_status no_in_place(const layer *l, const blob_list *bottom, const blob_list *top,
                                crema_error *err) {
  for (int i = 0; i < bottom->n; i++)
    for (int j = 0; j < top->n; j++)
      if (bottom->v[i] == top->v[j])
        return layer_fail(l, err, CREMA_ERR_INVALID, "does not allow in-place computation");
  return CREMA_OK;
}

static crema_status setup_no_in_place(layer *l, const blob_list *bottom, const blob_list *top,
                                      crema_error *err) {
  return no_in_place(l, bottom, top, err);
}

/* ---- Concat and Slice: one whole blob, its parts side by side along an axis ---- */

typedef struct axis_priv {
  int axis;
} axis_priv;

/* both_given: the parameter sets both axis and the legacy dim_name. */
static crema_status axis_layer_setup(layer *l, const blob_list *bottom, const blob_list *top,
                                     int both_given, const char *dim_name, crema_error *err) {
  if (both_given)
    return layer_fail(l, err, CREMA_ERR_INVALID,
                      "either axis or %s should be specified, not both", dim_name);
  CREMA_TRY(no_in_place(l, bottom, top, err));
  l->priv = crema_calloc(1, sizeof(axis_priv), err);
  return l->priv ? CREMA_OK : CREMA_ERR_NOMEM;
}

/* Copies between whole and its parts (to_whole: parts -> whole), data or
 * diffs, skipping parts whose want[i] is 0 (want may be NULL). */
static void axis_parts_copy(int axis, const blob *whole, const blob_list *parts, int to_whole,
                            int use_diff, const int *want) {
  ew_axis_copy(axis, whole, parts->v, parts->n, to_whole, use_diff, want);
}

static crema_status concat_setup(layer *l, const blob_list *bottom, const blob_list *top,
                                 crema_error *err) {
  const Caffe__ConcatParameter *cp = l->param->concat_param;
  return axis_layer_setup(l, bottom, top, cp && cp->has_axis && cp->has_concat_dim,
                          "concat_dim", err);
}

/* The axis of concat_param / slice_param: the legacy unsigned *_dim if set,
 * else the (possibly negative) axis. */
static crema_status legacy_axis(const layer *l, const blob *b, int has_dim, uint32_t dim,
                                int axis, int *out, crema_error *err) {
  if (has_dim) {
    if (dim >= (uint32_t)b->num_axes)
      return layer_fail(l, err, CREMA_ERR_SHAPE, "dim %u out of range for a %d-axis bottom",
                        dim, b->num_axes);
    *out = (int)dim;
    return CREMA_OK;
  }
  return prefixed(l, blob_canonical_axis(b, axis, out, err), err);
}

static crema_status concat_reshape(layer *l, const blob_list *bottom, const blob_list *top,
                                   crema_error *err) {
  static const Caffe__ConcatParameter defaults = CAFFE__CONCAT_PARAMETER__INIT;
  const Caffe__ConcatParameter *cp = l->param->concat_param ? l->param->concat_param : &defaults;
  axis_priv *p = l->priv;
  const blob *b0 = bottom->v[0];
  CREMA_TRY(legacy_axis(l, b0, cp->has_concat_dim, cp->concat_dim, cp->axis, &p->axis, err));
  int shape[BLOB_MAX_AXES];
  memcpy(shape, b0->shape, sizeof shape);
  for (int i = 1; i < bottom->n; i++) {
    const blob *b = bottom->v[i];
    char s0[128], si[128];
    int ok = b->num_axes == b0->num_axes;
    for (int j = 0; ok && j < b0->num_axes; j++)
      ok = j == p->axis || b->shape[j] == b0->shape[j];
    if (!ok)
      return layer_fail(l, err, CREMA_ERR_SHAPE,
                        "bottom %d has shape %s, incompatible with bottom 0's %s outside axis %d",
                        i, blob_shape_string(b, si, sizeof si),
                        blob_shape_string(b0, s0, sizeof s0), p->axis);
    if (shape[p->axis] > INT_MAX - b->shape[p->axis])
      return layer_fail(l, err, CREMA_ERR_SHAPE, "concatenated axis %d overflows", p->axis);
    shape[p->axis] += b->shape[p->axis];
  }
  return prefixed(l, blob_reshape(top->v[0], b0->num_axes, shape, err), err);
}

static crema_status concat_forward(layer *l, const blob_list *bottom, const blob_list *top,
                                   crema_error *err) {
  const axis_priv *p = l->priv;
  axis_parts_copy(p->axis, top->v[0], bottom, 1, 0, NULL);
  return CREMA_OK;
}

static crema_status concat_backward(layer *l, const blob_list *top, const int *propagate_down,
                                    const blob_list *bottom, crema_error *err) {
  const axis_priv *p = l->priv;
  axis_parts_copy(p->axis, top->v[0], bottom, 0, 1, propagate_down);
  return CREMA_OK;
}

static void free_priv(layer *l) {
  free(l->priv);
  l->priv = NULL;
}

const layer_ops concat_layer_ops = {
    .type = "Concat", .min_bottoms = 1, .max_bottoms = -1, .min_tops = 1, .max_tops = 1,
    .setup = concat_setup, .reshape = concat_reshape, .forward = concat_forward,
    .backward = concat_backward, .destroy = free_priv};

/* ---- Slice ---- */

static crema_status slice_setup(layer *l, const blob_list *bottom, const blob_list *top,
                                crema_error *err) {
  const Caffe__SliceParameter *sp = l->param->slice_param;
  return axis_layer_setup(l, bottom, top, sp && sp->has_axis && sp->has_slice_dim, "slice_dim",
                          err);
}

static crema_status slice_reshape(layer *l, const blob_list *bottom, const blob_list *top,
                                  crema_error *err) {
  static const Caffe__SliceParameter defaults = CAFFE__SLICE_PARAMETER__INIT;
  const Caffe__SliceParameter *sp = l->param->slice_param ? l->param->slice_param : &defaults;
  axis_priv *p = l->priv;
  const blob *b = bottom->v[0];
  CREMA_TRY(legacy_axis(l, b, sp->has_slice_dim, sp->slice_dim, sp->axis, &p->axis, err));
  const int size = b->shape[p->axis];
  int shape[BLOB_MAX_AXES];
  memcpy(shape, b->shape, sizeof shape);
  if (sp->n_slice_point) {
    if (sp->n_slice_point != (size_t)top->n - 1)
      return layer_fail(l, err, CREMA_ERR_INVALID, "%zu slice points for %d tops (want %d)",
                        sp->n_slice_point, top->n, top->n - 1);
    if (top->n > size)
      return layer_fail(l, err, CREMA_ERR_SHAPE, "%d tops for an axis of size %d", top->n, size);
    uint32_t prev = 0;
    for (int i = 0; i < top->n; i++) {
      uint32_t end = i + 1 < top->n ? sp->slice_point[i] : (uint32_t)size;
      if (i + 1 < top->n && end <= prev)
        return layer_fail(l, err, CREMA_ERR_INVALID,
                          "slice points must increase from 1: point %d is %u after %u", i, end,
                          prev);
      if (end > (uint32_t)size)
        return layer_fail(l, err, CREMA_ERR_SHAPE,
                          "slice point %u is past the end of axis %d (size %d)", end, p->axis,
                          size);
      shape[p->axis] = (int)(end - prev);
      CREMA_TRY(prefixed(l, blob_reshape(top->v[i], b->num_axes, shape, err), err));
      prev = end;
    }
    return CREMA_OK;
  }
  if (size % top->n != 0)
    return layer_fail(l, err, CREMA_ERR_SHAPE,
                      "%d tops do not evenly divide axis %d of size %d", top->n, p->axis, size);
  shape[p->axis] = size / top->n;
  for (int i = 0; i < top->n; i++)
    CREMA_TRY(prefixed(l, blob_reshape(top->v[i], b->num_axes, shape, err), err));
  return CREMA_OK;
}

static crema_status slice_forward(layer *l, const blob_list *bottom, const blob_list *top,
                                  crema_error *err) {
  const axis_priv *p = l->priv;
  axis_parts_copy(p->axis, bottom->v[0], top, 0, 0, NULL);
  return CREMA_OK;
}

static crema_status slice_backward(layer *l, const blob_list *top, const int *propagate_down,
                                   const blob_list *bottom, crema_error *err) {
  if (!propagate_down[0])
    return CREMA_OK;
  const axis_priv *p = l->priv;
  axis_parts_copy(p->axis, bottom->v[0], top, 1, 1, NULL);
  return CREMA_OK;
}

const layer_ops slice_layer_ops = {
    .type = "Slice", .min_bottoms = 1, .max_bottoms = 1, .min_tops = 1, .max_tops = -1,
    .setup = slice_setup, .reshape = slice_reshape, .forward = slice_forward,
    .backward = slice_backward, .destroy = free_priv};

/* ---- Split: every top shares the bottom's data; diffs add up ---- */

static void split_share(const blob_list *bottom, const blob_list *top) {
  for (int i = 0; i < top->n; i++)
    blob_share_data(top->v[i], bottom->v[0]);
}

static crema_status split_reshape(layer *l, const blob_list *bottom, const blob_list *top,
                                  crema_error *err) {
  for (int i = 0; i < top->n; i++) {
    /* Share first so that reshaping the top does not allocate data. */
    blob_share_data(top->v[i], bottom->v[0]);
    CREMA_TRY(prefixed(l, blob_reshape_like(top->v[i], bottom->v[0], err), err));
  }
  return CREMA_OK;
}

static crema_status split_forward(layer *l, const blob_list *bottom, const blob_list *top,
                                  crema_error *err) {
  split_share(bottom, top);
  return CREMA_OK;
}

/* The bottom's gradient, the sum of the tops': in order, so the sums
 * round as Caffe's do. */
static crema_status split_backward(layer *l, const blob_list *top, const int *propagate_down,
                                   const blob_list *bottom, crema_error *err) {
  if (!propagate_down[0])
    return CREMA_OK;
  ew_sum_diffs(top->v, top->n, bottom->v[0]->diff, bottom->v[0]->count);
  return CREMA_OK;
}

const layer_ops split_layer_ops = {
    .type = "Split", .min_bottoms = 1, .max_bottoms = 1, .min_tops = 1, .max_tops = -1,
    .setup = setup_no_in_place, .reshape = split_reshape, .forward = split_forward,
    .backward = split_backward, .destroy = NULL};

/* ---- Crop: a window of bottom 0 the size of bottom 1 on axes >= axis ---- */

typedef struct crop_priv {
  int offsets[BLOB_MAX_AXES];
} crop_priv;

static const Caffe__CropParameter *crop_param(const layer *l) {
  static const Caffe__CropParameter defaults = CAFFE__CROP_PARAMETER__INIT;
  return l->param->crop_param ? l->param->crop_param : &defaults;
}

static crema_status crop_setup(layer *l, const blob_list *bottom, const blob_list *top,
                               crema_error *err) {
  CREMA_TRY(no_in_place(l, bottom, top, err));
  l->priv = crema_calloc(1, sizeof(crop_priv), err);
  return l->priv ? CREMA_OK : CREMA_ERR_NOMEM;
}

static crema_status crop_reshape(layer *l, const blob_list *bottom, const blob_list *top,
                                 crema_error *err) {
  const Caffe__CropParameter *cp = crop_param(l);
  crop_priv *p = l->priv;
  const blob *b = bottom->v[0], *ref = bottom->v[1];
  int axis;
  CREMA_TRY(prefixed(l, blob_canonical_axis(b, cp->axis, &axis, err), err));
  if (cp->n_offset > 1 && (size_t)axis + cp->n_offset != (size_t)b->num_axes)
    return layer_fail(l, err, CREMA_ERR_INVALID,
                      "%zu offsets given for the %d axes from axis %d (one, or one per axis)",
                      cp->n_offset, b->num_axes - axis, axis);
  if (ref->num_axes < b->num_axes) {
    char s0[128], s1[128];
    return layer_fail(l, err, CREMA_ERR_SHAPE,
                      "reference bottom 1 of shape %s has fewer axes than bottom 0 of shape %s",
                      blob_shape_string(ref, s1, sizeof s1), blob_shape_string(b, s0, sizeof s0));
  }
  int shape[BLOB_MAX_AXES];
  for (int i = 0; i < b->num_axes; i++) {
    int64_t offset = 0;
    shape[i] = b->shape[i];
    if (i >= axis) {
      shape[i] = ref->shape[i];
      if (cp->n_offset == 1)
        offset = cp->offset[0];
      else if (cp->n_offset > 1)
        offset = cp->offset[i - axis];
      if ((int64_t)b->shape[i] - offset < (int64_t)ref->shape[i])
        return layer_fail(l, err, CREMA_ERR_SHAPE,
                          "the crop of axis %d is out of bounds: size %d at offset %lld "
                          "in an axis of size %d",
                          i, ref->shape[i], (long long)offset, b->shape[i]);
    }
    p->offsets[i] = (int)offset;
  }
  return prefixed(l, blob_reshape(top->v[0], b->num_axes, shape, err), err);
}

/* Visits every innermost row of the top: calls copy with the row's start in
 * the top and in the bottom (offsets applied). */
static void crop_rows(const blob *b, const blob *t, const int *offsets, const float *src,
                      float *dst, int forward) {
  const int n = t->num_axes;
  size_t bstride[BLOB_MAX_AXES], tstride[BLOB_MAX_AXES];
  for (int i = 0; i < n; i++) {
    bstride[i] = blob_count_from(b, i + 1);
    tstride[i] = blob_count_from(t, i + 1);
  }
  if (t->count == 0)
    return;
  const size_t len = (size_t)t->shape[n - 1];
  size_t rows = t->count / len;
  int idx[BLOB_MAX_AXES] = {0};
  for (size_t r = 0; r < rows; r++) {
    size_t toff = 0, boff = (size_t)offsets[n - 1];
    for (int i = 0; i < n - 1; i++) {
      toff += (size_t)idx[i] * tstride[i];
      boff += (size_t)(idx[i] + offsets[i]) * bstride[i];
    }
    if (forward)
      memcpy(dst + toff, src + boff, len * sizeof(float));
    else
      memcpy(dst + boff, src + toff, len * sizeof(float));
    for (int i = n - 2; i >= 0; i--) {
      if (++idx[i] < t->shape[i])
        break;
      idx[i] = 0;
    }
  }
}

static crema_status crop_forward(layer *l, const blob_list *bottom, const blob_list *top,
                                 crema_error *err) {
  const crop_priv *p = l->priv;
  crop_rows(bottom->v[0], top->v[0], p->offsets, bottom->v[0]->data, top->v[0]->data, 1);
  return CREMA_OK;
}

static crema_status crop_backward(layer *l, const blob_list *top, const int *propagate_down,
                                  const blob_list *bottom, crema_error *err) {
  const crop_priv *p = l->priv;
  if (propagate_down[0]) {
    blob_zero_diff(bottom->v[0]);
    crop_rows(bottom->v[0], top->v[0], p->offsets, top->v[0]->diff, bottom->v[0]->diff, 0);
  }
  /* The reference only lends its shape. */
  if (propagate_down[1])
    blob_zero_diff(bottom->v[1]);
  return CREMA_OK;
}

const layer_ops crop_layer_ops = {
    .type = "Crop", .min_bottoms = 2, .max_bottoms = 2, .min_tops = 1, .max_tops = 1,
    .setup = crop_setup, .reshape = crop_reshape, .forward = crop_forward,
    .backward = crop_backward, .destroy = free_priv};

/* ---- Flatten and Reshape: the top shares the bottom's data and diff ---- */

static crema_status share_reshaped(const layer *l, const blob *b, blob *t, int num_axes,
                                   const int *shape, crema_error *err) {
  blob_share_data(t, b);
  blob_share_diff(t, b);
  CREMA_TRY(prefixed(l, blob_reshape(t, num_axes, shape, err), err));
  if (t->count != b->count) {
    char s0[128], s1[128];
    return layer_fail(l, err, CREMA_ERR_SHAPE, "top shape %s does not hold bottom shape %s",
                      blob_shape_string(t, s1, sizeof s1), blob_shape_string(b, s0, sizeof s0));
  }
  return CREMA_OK;
}

static crema_status share_forward(layer *l, const blob_list *bottom, const blob_list *top,
                                  crema_error *err) {
  /* The bottom's storage may have moved since reshape. */
  blob_share_data(top->v[0], bottom->v[0]);
  blob_share_diff(top->v[0], bottom->v[0]);
  return CREMA_OK;
}

static crema_status share_backward(layer *l, const blob_list *top, const int *propagate_down,
                                   const blob_list *bottom, crema_error *err) {
  return CREMA_OK;
}

static crema_status flatten_reshape(layer *l, const blob_list *bottom, const blob_list *top,
                                    crema_error *err) {
  static const Caffe__FlattenParameter defaults = CAFFE__FLATTEN_PARAMETER__INIT;
  const Caffe__FlattenParameter *fp =
      l->param->flatten_param ? l->param->flatten_param : &defaults;
  const blob *b = bottom->v[0];
  int start, end;
  CREMA_TRY(prefixed(l, blob_canonical_axis(b, fp->axis, &start, err), err));
  CREMA_TRY(prefixed(l, blob_canonical_axis(b, fp->end_axis, &end, err), err));
  if (end < start)
    return layer_fail(l, err, CREMA_ERR_INVALID, "end_axis %d comes before axis %d", end, start);
  int shape[BLOB_MAX_AXES], n = 0;
  for (int i = 0; i < start; i++)
    shape[n++] = b->shape[i];
  shape[n++] = (int)blob_count_range(b, start, end + 1);
  for (int i = end + 1; i < b->num_axes; i++)
    shape[n++] = b->shape[i];
  return share_reshaped(l, b, top->v[0], n, shape, err);
}

const layer_ops flatten_layer_ops = {
    .type = "Flatten", .min_bottoms = 1, .max_bottoms = 1, .min_tops = 1, .max_tops = 1,
    .setup = setup_no_in_place, .reshape = flatten_reshape, .forward = share_forward,
    .backward = share_backward, .destroy = NULL};

/* Reshape's rules: 0 copies the bottom's dim, one -1 is inferred; the new
 * dims replace num_axes axes (-1: all) from axis (negative counts from the
 * end, -1 meaning after the last). */
static crema_status reshape_reshape(layer *l, const blob_list *bottom, const blob_list *top,
                                    crema_error *err) {
  static const Caffe__ReshapeParameter defaults = CAFFE__RESHAPE_PARAMETER__INIT;
  static const Caffe__BlobShape no_shape = CAFFE__BLOB_SHAPE__INIT;
  const Caffe__ReshapeParameter *rp =
      l->param->reshape_param ? l->param->reshape_param : &defaults;
  const Caffe__BlobShape *want = rp->shape ? rp->shape : &no_shape;
  const blob *b = bottom->v[0];
  const int start = rp->axis >= 0 ? rp->axis : b->num_axes + rp->axis + 1;
  if (start < 0 || start > b->num_axes)
    return layer_fail(l, err, CREMA_ERR_INVALID, "axis %d out of range for a %d-axis bottom",
                      rp->axis, b->num_axes);
  if (rp->num_axes < -1)
    return layer_fail(l, err, CREMA_ERR_INVALID, "num_axes must be >= 0, or -1 for all; got %d",
                      rp->num_axes);
  const int end = rp->num_axes == -1 ? b->num_axes : start + rp->num_axes;
  if (end > b->num_axes)
    return layer_fail(l, err, CREMA_ERR_INVALID,
                      "axis %d + num_axes %d is out of range for a %d-axis bottom", start,
                      rp->num_axes, b->num_axes);
  const size_t total = (size_t)b->num_axes - (size_t)(end - start) + want->n_dim;
  if (total > BLOB_MAX_AXES)
    return layer_fail(l, err, CREMA_ERR_SHAPE, "top would have %zu axes (at most %d)", total,
                      BLOB_MAX_AXES);
  int shape[BLOB_MAX_AXES], n = 0, inferred = -1;
  size_t known = 1;
  for (int i = 0; i < start; i++)
    shape[n++] = b->shape[i];
  for (size_t i = 0; i < want->n_dim; i++) {
    int64_t d = want->dim[i];
    if (d == 0) {
      if (start + (int)i >= b->num_axes)
        return layer_fail(l, err, CREMA_ERR_INVALID,
                          "shape dim %zu is 0 but bottom has no axis %d to copy", i,
                          start + (int)i);
      d = b->shape[start + i];
    } else if (d == -1) {
      if (inferred >= 0)
        return layer_fail(l, err, CREMA_ERR_INVALID, "shape has more than one -1 dim");
      inferred = n;
      shape[n++] = 1;
      continue;
    } else if (d < 0 || d > INT_MAX) {
      return layer_fail(l, err, CREMA_ERR_INVALID, "shape dim %zu is %lld", i, (long long)d);
    }
    shape[n++] = (int)d;
    if (!size_mul(known, (size_t)d, &known) || known > (size_t)INT_MAX)
      return layer_fail(l, err, CREMA_ERR_SHAPE, "shape's element count overflows");
  }
  for (int i = end; i < b->num_axes; i++)
    shape[n++] = b->shape[i];
  if (!size_mul(known, blob_count_from(b, end), &known) ||
      !size_mul(known, blob_count_range(b, 0, start), &known))
    return layer_fail(l, err, CREMA_ERR_SHAPE, "top's element count overflows");
  if (inferred >= 0) {
    if (known == 0 || b->count % known != 0)
      return layer_fail(l, err, CREMA_ERR_SHAPE,
                        "bottom count %zu is not divisible by the product of the given dims "
                        "(%zu)",
                        b->count, known);
    shape[inferred] = (int)(b->count / known);
  }
  return share_reshaped(l, b, top->v[0], n, shape, err);
}

const layer_ops reshape_layer_ops = {
    .type = "Reshape", .min_bottoms = 1, .max_bottoms = 1, .min_tops = 1, .max_tops = 1,
    .setup = setup_no_in_place, .reshape = reshape_reshape, .forward = share_forward,
    .backward = share_backward, .destroy = NULL};

/* ---- Tile: repeats the axes from `axis` on `tiles` times ---- */

typedef struct tile_priv {
  int axis, tiles;
} tile_priv;

static crema_status tile_setup(layer *l, const blob_list *bottom, const blob_list *top,
                               crema_error *err) {
  const Caffe__TileParameter *tp = l->param->tile_param;
  if (!tp || !tp->has_tiles)
    return layer_fail(l, err, CREMA_ERR_INVALID, "tile_param.tiles must be specified");
  if (tp->tiles <= 0)
    return layer_fail(l, err, CREMA_ERR_INVALID, "tiles must be positive, got %d", tp->tiles);
  CREMA_TRY(no_in_place(l, bottom, top, err));
  l->priv = crema_calloc(1, sizeof(tile_priv), err);
  return l->priv ? CREMA_OK : CREMA_ERR_NOMEM;
}

static crema_status tile_reshape(layer *l, const blob_list *bottom, const blob_list *top,
                                 crema_error *err) {
  const Caffe__TileParameter *tp = l->param->tile_param;
  tile_priv *p = l->priv;
  const blob *b = bottom->v[0];
  CREMA_TRY(prefixed(l, blob_canonical_axis(b, tp->axis, &p->axis, err), err));
  p->tiles = tp->tiles;
  int shape[BLOB_MAX_AXES];
  memcpy(shape, b->shape, sizeof shape);
  if ((int64_t)shape[p->axis] * p->tiles > INT_MAX)
    return layer_fail(l, err, CREMA_ERR_SHAPE, "%d tiles of axis %d (size %d) overflow",
                      p->tiles, p->axis, shape[p->axis]);
  shape[p->axis] *= p->tiles;
  return prefixed(l, blob_reshape(top->v[0], b->num_axes, shape, err), err);
}

static crema_status tile_forward(layer *l, const blob_list *bottom, const blob_list *top,
                                 crema_error *err) {
  const tile_priv *p = l->priv;
  const blob *b = bottom->v[0];
  const size_t outer = blob_count_range(b, 0, p->axis), inner = blob_count_from(b, p->axis);
  const float *x = b->data;
  float *y = top->v[0]->data;
  for (size_t o = 0; o < outer; o++, x += inner)
    for (int t = 0; t < p->tiles; t++, y += inner)
      memcpy(y, x, inner * sizeof(float));
  return CREMA_OK;
}

static crema_status tile_backward(layer *l, const blob_list *top, const int *propagate_down,
                                  const blob_list *bottom, crema_error *err) {
  if (!propagate_down[0])
    return CREMA_OK;
  const tile_priv *p = l->priv;
  const blob *b = bottom->v[0];
  const size_t outer = blob_count_range(b, 0, p->axis), inner = blob_count_from(b, p->axis);
  const float *dy = top->v[0]->diff;
  float *dx = b->diff;
  for (size_t o = 0; o < outer; o++, dx += inner) {
    memcpy(dx, dy, inner * sizeof(float));
    dy += inner;
    for (int t = 1; t < p->tiles; t++, dy += inner)
      for (size_t i = 0; i < inner; i++)
        dx[i] += dy[i];
  }
  return CREMA_OK;
}

const layer_ops tile_layer_ops = {
    .type = "Tile", .min_bottoms = 1, .max_bottoms = 1, .min_tops = 1, .max_tops = 1,
    .setup = tile_setup, .reshape = tile_reshape, .forward = tile_forward,
    .backward = tile_backward, .destroy = free_priv};

/* ---- Silence: consumes bottoms; their gradient is zero ---- */

static crema_status silence_noop(layer *l, const blob_list *bottom, const blob_list *top,
                                 crema_error *err) {
  return CREMA_OK;
}

static crema_status silence_backward(layer *l, const blob_list *top, const int *propagate_down,
                                     const blob_list *bottom, crema_error *err) {
  for (int i = 0; i < bottom->n; i++)
    if (propagate_down[i])
      blob_zero_diff(bottom->v[i]);
  return CREMA_OK;
}

const layer_ops silence_layer_ops = {
    .type = "Silence", .min_bottoms = 1, .max_bottoms = -1, .min_tops = 0, .max_tops = 0,
    .setup = silence_noop, .reshape = silence_noop, .forward = silence_noop,
    .backward = silence_backward, .destroy = NULL};
