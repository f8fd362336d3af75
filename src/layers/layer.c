#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "layers/layer.h"

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
    l->nblobs = i + 1;
    l->param_propagate_down[i] = 1;
  }
  return CREMA_OK;
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
