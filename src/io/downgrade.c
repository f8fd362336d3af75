/* The V2 -> V1 downgrade: the reverse of upgrade_net_v1_to_v2 for the
 * fields a weights file carries (io/upgrade.h says which). */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "io/upgrade.h"

/* The V1 type whose V2 type string is `type' (upgrade_v1_type_name's
 * table read backwards); 0 when V1 has none (NONE is not a type). */
static int v1_type_of(const char *type, Caffe__V1LayerParameter__LayerType *out) {
  if (!type)
    return 0;
  const ProtobufCEnumDescriptor *d = &caffe__v1_layer_parameter__layer_type__descriptor;
  for (unsigned i = 0; i < d->n_values; i++) {
    const char *name = d->values[i].value != 0 ? upgrade_v1_type_name(d->values[i].value) : NULL;
    if (name && !strcmp(name, type)) {
      *out = (Caffe__V1LayerParameter__LayerType)d->values[i].value;
      return 1;
    }
  }
  return 0;
}

/* A BlobProto with shape becomes one with num/channels/height/width, the
 * shape padded with leading 1s as Caffe's legacy accessors read it. */
static crema_status blob_to_legacy_dims(Caffe__BlobProto *bp, const char *layer_name,
                                        crema_error *err) {
  size_t nd = bp->shape ? bp->shape->n_dim : 0;
  if (nd > 4)
    return crema_fail(err, CREMA_ERR_UNSUPPORTED,
                      "layer '%s': a %zu-axis blob has no legacy num/channels/height/width form",
                      layer_name, nd);
  int32_t dims[4] = {1, 1, 1, 1};
  for (size_t i = 0; i < nd; i++) {
    int64_t d = bp->shape->dim[i];
    if (d > INT32_MAX)
      return crema_fail(err, CREMA_ERR_UNSUPPORTED, "layer '%s': blob axis of %lld too large",
                        layer_name, (long long)d);
    dims[4 - nd + i] = (int32_t)d;
  }
  if (bp->shape)
    protobuf_c_message_free_unpacked(&bp->shape->base, NULL);
  bp->shape = NULL;
  bp->has_num = bp->has_channels = bp->has_height = bp->has_width = 1;
  bp->num = dims[0];
  bp->channels = dims[1];
  bp->height = dims[2];
  bp->width = dims[3];
  return CREMA_OK;
}

static void strings_move(char ***dst, size_t *ndst, char ***src, size_t *nsrc) {
  *dst = *src;
  *ndst = *nsrc;
  *src = NULL;
  *nsrc = 0;
}

static crema_status layer_to_v1(Caffe__LayerParameter *l, Caffe__V1LayerParameter__LayerType t,
                                Caffe__V1LayerParameter **out, crema_error *err) {
  Caffe__V1LayerParameter *v1 = crema_malloc(sizeof *v1, err);
  if (!v1)
    return CREMA_ERR_NOMEM;
  caffe__v1_layer_parameter__init(v1);
  v1->name = l->name;
  l->name = NULL;
  v1->has_type = 1;
  v1->type = t;
  strings_move(&v1->bottom, &v1->n_bottom, &l->bottom, &l->n_bottom);
  strings_move(&v1->top, &v1->n_top, &l->top, &l->n_top);
  v1->blobs = l->blobs;
  v1->n_blobs = l->n_blobs;
  l->blobs = NULL;
  l->n_blobs = 0;
  *out = v1;
  for (size_t i = 0; i < v1->n_blobs; i++)
    CREMA_TRY(blob_to_legacy_dims(v1->blobs[i], v1->name ? v1->name : "", err));
  return CREMA_OK;
}

crema_status downgrade_net_v2_to_v1(Caffe__NetParameter *np, crema_error *err) {
  if (np->n_layer == 0)
    return CREMA_OK;
  np->layers = crema_calloc(np->n_layer, sizeof *np->layers, err);
  if (!np->layers)
    return CREMA_ERR_NOMEM;
  crema_status st = CREMA_OK;
  for (size_t i = 0; i < np->n_layer && st == CREMA_OK; i++) {
    Caffe__LayerParameter *l = np->layer[i];
    Caffe__V1LayerParameter__LayerType t;
    if (!v1_type_of(l->type, &t)) {
      if (l->n_blobs > 0)
        st = crema_fail(err, CREMA_ERR_UNSUPPORTED,
                        "layer '%s' of type %s holds weights but has no V1 layer type",
                        l->name ? l->name : "", l->type ? l->type : "");
      continue;
    }
    st = layer_to_v1(l, t, &np->layers[np->n_layers], err);
    if (np->layers[np->n_layers])
      np->n_layers++;
  }
  for (size_t i = 0; i < np->n_layer; i++)
    protobuf_c_message_free_unpacked(&np->layer[i]->base, NULL);
  free(np->layer);
  np->layer = NULL;
  np->n_layer = 0;
  return st;
}
