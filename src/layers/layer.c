#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/parallel.h"
#include "layers/layer.h"
#include "math/filler.h"

crema_status layer_create(const Caffe__LayerParameter *param, Caffe__Phase phase,
                          layer_ctx *ctx, layer **out, crema_error *err) {
  const char *type = param->type ? param->type : "";
  const layer_ops *ops = layer_registry_find(type);
  if (!ops)
    return crema_fail(err, CREMA_ERR_UNSUPPORTED,
                      "layer '%s': unknown or unsupported layer type '%s'",
                      param->name ? param->name : "", type);
  layer *l = crema_calloc(1, sizeof *l, err);
  if (!l)
    return CREMA_ERR_NOMEM;
  l->ops = ops;
  l->param = param;
  l->name = param->name ? param->name : "";
  l->phase = phase;
  l->ctx = ctx;
  *out = l;
  return CREMA_OK;
}

void layer_free(layer *l) {
  if (!l)
    return;
  if (l->ops->destroy)
    l->ops->destroy(l);
  for (int i = 0; i < l->nblobs; i++)
    blob_free(l->blobs[i]);
  free(l->blobs);
  free(l->param_propagate_down);
  free(l);
}

crema_status layer_alloc_blobs(layer *l, int n, crema_error *err) {
  l->blobs = crema_calloc((size_t)n, sizeof *l->blobs, err);
  l->param_propagate_down = crema_calloc((size_t)n, sizeof(int), err);
  if (!l->blobs || !l->param_propagate_down)
    return CREMA_ERR_NOMEM;
  for (int i = 0; i < n; i++) {
    if (!(l->blobs[i] = blob_create(NULL, err)))
      return CREMA_ERR_NOMEM;
    if (l->ctx && l->ctx->no_param_diffs)
      l->blobs[i]->wants_diff = 0;
    l->nblobs = i + 1;
    l->param_propagate_down[i] = 1;
  }
  return CREMA_OK;
}

crema_status layer_make_param(layer *l, int index, int num_axes, const int *shape,
                              const Caffe__FillerParameter *filler, crema_error *err) {
  const char *what = index == 0 ? "weights" : "bias";
  /* New storage is left unset: every filler writes all of it, and a
   * constant-zero one (the default, all a deploy net usually has) need
   * not run at all when a weights file is about to overwrite it.  Each
   * value is then written once: a blob's first touch costs page faults,
   * most of loading VGG-16's 553 MB. */
  blob *b = l->blobs[index];
  int fresh = b->data == NULL;
  crema_status st = fresh ? blob_reshape_unset(b, num_axes, shape, err)
                          : blob_reshape(b, num_axes, shape, err);
  if (st == CREMA_OK && fresh && filler_is_zero(filler)) {
    if (!l->ctx->weights_follow) {
      par_zero(b->data, b->count * sizeof(float));
      b->unset = 0;
    }
  } else if (st == CREMA_OK) {
    st = filler_fill(filler, b, &l->ctx->rng, err);
    b->unset = 0;
    what = index == 0 ? "weight filler" : "bias filler";
  }
  if (st != CREMA_OK)
    crema_error_prefix(err, "layer '%s' (%s): %s: ", l->name, l->ops->type, what);
  return st;
}

crema_status layer_grow_buffer(const layer *l, void **buf, size_t *cap, size_t n, size_t elem,
                               crema_error *err) {
  if (*buf && *cap >= n)
    return CREMA_OK;
  size_t bytes;
  if (!size_mul(n ? n : 1, elem, &bytes))
    return layer_fail(l, err, CREMA_ERR_NOMEM, "buffer of %zu elements overflows", n);
  void *p = malloc(bytes);
  if (!p)
    return layer_fail(l, err, CREMA_ERR_NOMEM, "out of memory for a %zu-byte buffer", bytes);
  free(*buf);
  *buf = p;
  *cap = n;
  return CREMA_OK;
}

crema_status layer_reshape_like(const layer *l, blob *top, const blob *bottom, crema_error *err) {
  crema_status st = blob_reshape_like(top, bottom, err);
  if (st != CREMA_OK)
    crema_error_prefix(err, "layer '%s' (%s): ", l->name, l->ops->type);
  return st;
}

float *layer_workspace(layer *l, size_t n, crema_error *err) {
  layer_ctx *c = l->ctx;
  if (c->workspace && c->workspace_cap >= n)
    return c->workspace;
  size_t bytes;
  if (!size_mul(n, sizeof(float), &bytes)) {
    crema_fail(err, CREMA_ERR_NOMEM, "layer '%s': workspace of %zu floats overflows", l->name, n);
    return NULL;
  }
  void *p = NULL;
  if (posix_memalign(&p, 64, bytes ? bytes : 64) != 0) {
    crema_fail(err, CREMA_ERR_NOMEM, "layer '%s': out of memory for a %zu-byte workspace",
               l->name, bytes);
    return NULL;
  }
  free(c->workspace);
  c->workspace = p;
  c->workspace_cap = n;
  return p;
}

crema_status layer_fail(const layer *l, crema_error *err, crema_status status,
                        const char *fmt, ...) {
  if (!err)
    return status;
  char msg[CREMA_ERROR_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return crema_fail(err, status, "layer '%s' (%s): %s", l->name, l->ops->type, msg);
}

const crema_options *layer_options(const layer *l) {
  static const crema_options defaults; /* all zero: the defaults */
  return l->ctx ? &l->ctx->opts : &defaults;
}
