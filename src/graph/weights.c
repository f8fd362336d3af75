#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/options.h"
#include "graph/weights.h"
#include "io/binary.h"
#include "io/blobproto.h"
#include "io/upgrade.h"
#include "io/weights_source.h"

static int proto_has_legacy_dims(const Caffe__BlobProto *bp) {
  return bp->has_num || bp->has_channels || bp->has_height || bp->has_width;
}

/* Caffe's Blob::ShapeEquals: legacy dims are compared against the blob's
 * shape read from the end (missing leading axes count as 1). */
static int proto_shape_equals(const Caffe__BlobProto *bp, const blob *b) {
  if (proto_has_legacy_dims(bp))
    return b->num_axes <= 4 && blob_legacy_dim(b, -4) == bp->num &&
           blob_legacy_dim(b, -3) == bp->channels && blob_legacy_dim(b, -2) == bp->height &&
           blob_legacy_dim(b, -1) == bp->width;
  size_t nd = bp->shape ? bp->shape->n_dim : 0;
  if (nd != (size_t)b->num_axes)
    return 0;
  for (size_t i = 0; i < nd; i++)
    if (bp->shape->dim[i] != (int64_t)b->shape[i])
      return 0;
  return 1;
}

static const char *proto_shape_string(const Caffe__BlobProto *bp, char *buf, size_t size) {
  if (proto_has_legacy_dims(bp)) {
    snprintf(buf, size, "%dx%dx%dx%d", bp->num, bp->channels, bp->height, bp->width);
    return buf;
  }
  size_t nd = bp->shape ? bp->shape->n_dim : 0;
  if (nd == 0) {
    snprintf(buf, size, "scalar");
    return buf;
  }
  size_t used = 0;
  buf[0] = '\0';
  for (size_t i = 0; i < nd && used < size; i++) {
    int w = snprintf(buf + used, size - used, i ? "x%lld" : "%lld", (long long)bp->shape->dim[i]);
    if (w < 0)
      break;
    used += (size_t)w;
  }
  return buf;
}

static crema_status check_count(const layer *l, int j, const char *what, size_t nfloat,
                                size_t ndouble, size_t count, crema_error *err) {
  size_t have = ndouble > 0 ? ndouble : nfloat;
  if (have != count)
    return layer_fail(l, err, CREMA_ERR_SHAPE,
                      "blob %d has %zu %s values in the weights, the shape needs %zu", j, have,
                      what, count);
  return CREMA_OK;
}

/* bp's shape (or legacy dims) against b's, and its value counts (n_data
 * or n_double_data, n_diff or n_double_diff; the value arrays are not
 * read).  *with_diff is set when the diff is to be copied too (the
 * weights carry one and b has a diff buffer). */
static crema_status weights_check_blob(const layer *l, int j, const Caffe__BlobProto *bp,
                                       const blob *b, int *with_diff, crema_error *err) {
  if (!proto_shape_equals(bp, b)) {
    char a[128], c[128];
    return layer_fail(l, err, CREMA_ERR_SHAPE, "blob %d has shape %s in the weights, %s in the net",
                      j, proto_shape_string(bp, a, sizeof a), blob_shape_string(b, c, sizeof c));
  }
  CREMA_TRY(check_count(l, j, "data", bp->n_data, bp->n_double_data, b->count, err));
  *with_diff = (bp->n_diff > 0 || bp->n_double_diff > 0) && b->diff;
  if (*with_diff)
    CREMA_TRY(check_count(l, j, "diff", bp->n_diff, bp->n_double_diff, b->count, err));
  return CREMA_OK;
}

/* The one matcher of trained weights to the net, whatever their source
 * (io/weights_source.h): Net::CopyTrainedLayersFrom's rules.  Each blob
 * is Blob::FromProto without reshape: the shape must match; data, and the
 * diff when the weights carry one. */
static crema_status copy_layer(net *n, weights_source *src, size_t k, int *matched,
                               crema_error *err) {
  const char *name = weights_source_layer_name(src, k);
  int i = net_layer_index(n, name);
  if (i < 0) {
    LOG_INFO_AT(n->ctx.opts.log_level, "Ignoring source layer %s", name);
    return CREMA_OK;
  }
  layer *l = n->layers[i];
  const size_t nblobs = weights_source_num_blobs(src, k);
  if (nblobs != (size_t)l->nblobs)
    return layer_fail(l, err, CREMA_ERR_SHAPE,
                      "the weights hold %zu blobs for this layer, the net has %d", nblobs,
                      l->nblobs);
  for (int j = 0; j < l->nblobs; j++) {
    blob *b = l->blobs[j];
    const Caffe__BlobProto *bp;
    int with_diff = 0;
    CREMA_TRY(weights_source_blob(src, k, (size_t)j, &bp, err));
    CREMA_TRY(weights_check_blob(l, j, bp, b, &with_diff, err));
    weights_source_copy(src, 0, b->data);
    b->unset = 0;
    if (with_diff)
      weights_source_copy(src, 1, b->diff);
  }
  (*matched)++;
  return CREMA_OK;
}

static crema_status copy_from_source(net *n, weights_source *src, crema_error *err) {
  int matched = 0;
  const size_t nlayers = weights_source_num_layers(src);
  for (size_t k = 0; k < nlayers; k++)
    CREMA_TRY(copy_layer(n, src, k, &matched, err));
  if (!matched && nlayers > 0)
    LOG_WARN_AT(n->ctx.opts.log_level,
                "no layer of the weights '%s' matches a layer of the net '%s'",
                weights_source_net_name(src), n->name);
  return CREMA_OK;
}

crema_status net_copy_trained_layers(net *n, const Caffe__NetParameter *param, crema_error *err) {
  weights_source *src = NULL;
  CREMA_TRY(weights_source_of_param(param, &src, err));
  crema_status st = copy_from_source(n, src, err);
  weights_source_close(src);
  return st;
}

static crema_status load_one(net *n, const char *path, crema_error *err) {
  weights_source *src = NULL;
  CREMA_TRY(weights_source_open(path, n->ctx.opts.log_level, &src, err));
  crema_status st = copy_from_source(n, src, err);
  if (st != CREMA_OK)
    crema_error_prefix(err, "%s: ", path);
  weights_source_close(src);
  return st;
}

crema_status net_load_weights(net *n, const char *paths, crema_error *err) {
  char *list = crema_strdup(paths, err);
  if (!list)
    return CREMA_ERR_NOMEM;
  /* Copying and zeroing run on the net's team, under its allocation cap. */
  const options_scope scope = options_enter(&n->ctx.opts);
  crema_status st = CREMA_OK;
  char *save = NULL;
  int loaded = 0;
  for (char *p = strtok_r(list, ",", &save); p && st == CREMA_OK;
       p = strtok_r(NULL, ",", &save)) {
    if (!*p)
      continue;
    st = load_one(n, p, err);
    loaded++;
  }
  if (st == CREMA_OK && !loaded)
    st = crema_fail(err, CREMA_ERR_INVALID, "no weights file named in '%s'", paths);
  free(list);
  if (st == CREMA_OK)
    net_settle_params(n);
  options_leave(scope);
  return st;
}

/* The "weights not yet written" protocol is made and kept here only:
 * net_create is promised the weights (weights_follow), so that parameters
 * with a zero filler are not written twice, and net_load_weights zeroes
 * what no file covered (net_settle_params). */
crema_status net_open_param(const Caffe__NetParameter *param, const char *model,
                            const char *weights, const net_options *opts, net **out,
                            crema_error *err) {
  *out = NULL;
  net_options o;
  if (opts)
    o = *opts;
  else
    net_options_init(&o, CAFFE__PHASE__TEST);
  o.weights_follow = weights != NULL;
  net *n = NULL;
  crema_status st = net_create(param, &o, &n, err);
  if (st != CREMA_OK) {
    if (model)
      crema_error_prefix(err, "%s: ", model);
    return st;
  }
  if (weights && (st = net_load_weights(n, weights, err)) != CREMA_OK) {
    net_free(n);
    return st;
  }
  *out = n;
  return CREMA_OK;
}

crema_status net_open(const char *model, const char *weights, const net_options *opts, net **out,
                      crema_error *err) {
  *out = NULL;
  Caffe__NetParameter *param = NULL;
  CREMA_TRY(net_param_read(model, opts ? opts->run.log_level : CREMA_LOG_INFO, &param, err));
  crema_status st = net_open_param(param, model, weights, opts, out, err);
  protobuf_c_message_free_unpacked(&param->base, NULL);
  return st;
}

static crema_status copy_layer_param(const Caffe__LayerParameter *lp,
                                     Caffe__LayerParameter **out, crema_error *err) {
  size_t len = protobuf_c_message_get_packed_size(&lp->base);
  uint8_t *buf = crema_malloc(len, err);
  if (!buf)
    return CREMA_ERR_NOMEM;
  protobuf_c_message_pack(&lp->base, buf);
  ProtobufCMessage *m =
      protobuf_c_message_unpack(&caffe__layer_parameter__descriptor, NULL, len, buf);
  free(buf);
  if (!m)
    return crema_fail(err, CREMA_ERR_NOMEM, "cannot copy layer '%s'", lp->name ? lp->name : "");
  *out = (Caffe__LayerParameter *)m;
  return CREMA_OK;
}

static crema_status layer_to_proto(const net *n, int i, int with_diff,
                                   Caffe__LayerParameter **out, crema_error *err) {
  Caffe__LayerParameter *lp = NULL;
  CREMA_TRY(copy_layer_param(n->lparams[i], &lp, err));
  for (size_t k = 0; k < lp->n_blobs; k++)
    protobuf_c_message_free_unpacked(&lp->blobs[k]->base, NULL);
  free(lp->blobs);
  lp->blobs = NULL;
  lp->n_blobs = 0;
  const layer *l = n->layers[i];
  crema_status st = CREMA_OK;
  if (l->nblobs > 0) {
    lp->blobs = crema_calloc((size_t)l->nblobs, sizeof *lp->blobs, err);
    if (!lp->blobs)
      st = CREMA_ERR_NOMEM;
  }
  for (int j = 0; j < l->nblobs && st == CREMA_OK; j++) {
    st = blob_to_blobproto(l->blobs[j], with_diff && l->blobs[j]->diff, &lp->blobs[j], err);
    if (st == CREMA_OK)
      lp->n_blobs = (size_t)j + 1;
  }
  if (st != CREMA_OK) {
    protobuf_c_message_free_unpacked(&lp->base, NULL);
    return st;
  }
  *out = lp;
  return CREMA_OK;
}

crema_status net_to_proto(const net *n, int with_diff, Caffe__NetParameter **out,
                          crema_error *err) {
  Caffe__NetParameter *np = crema_malloc(sizeof *np, err);
  if (!np)
    return CREMA_ERR_NOMEM;
  caffe__net_parameter__init(np);
  crema_status st = CREMA_OK;
  if (!(np->name = crema_strdup(n->name, err)))
    st = CREMA_ERR_NOMEM;
  if (st == CREMA_OK && n->nlayers > 0 &&
      !(np->layer = crema_calloc((size_t)n->nlayers, sizeof *np->layer, err)))
    st = CREMA_ERR_NOMEM;
  for (int i = 0; i < n->nlayers && st == CREMA_OK; i++) {
    st = layer_to_proto(n, i, with_diff, &np->layer[i], err);
    if (st == CREMA_OK)
      np->n_layer = (size_t)i + 1;
  }
  if (st != CREMA_OK) {
    protobuf_c_message_free_unpacked(&np->base, NULL);
    return st;
  }
  *out = np;
  return CREMA_OK;
}

crema_status net_save_weights(const net *n, const char *path, crema_error *err) {
  Caffe__NetParameter *np = NULL;
  CREMA_TRY(net_to_proto(n, 0, &np, err));
  crema_status st = bin_write_file(path, &np->base, err);
  protobuf_c_message_free_unpacked(&np->base, NULL);
  return st;
}
