/* The layer interface, after Caffe's: setup, reshape, forward, backward.
 *
 * A layer is a small struct (its LayerParameter, parameter blobs, private
 * state) plus a pointer to a const table of operations shared by all layers
 * of its type.  Operations return a status and write their own message;
 * they never exit.  Adding a layer type = one file + one line in types.def.
 */
#ifndef CREMA_LAYERS_LAYER_H
#define CREMA_LAYERS_LAYER_H

#include "caffe.pb-c.h"
#include "core/blob.h"
#include "core/error.h"
#include "core/options.h"
#include "core/rng.h"

typedef struct layer layer;

/* Per-net execution state shared by its layers. */
typedef struct layer_ctx {
  crema_rng rng;          /* fillers, dropout masks, ... (seeded by the net) */
  float *workspace;       /* scratch (im2col columns etc.), reused by all layers */
  size_t workspace_cap;   /* floats */
  /* Set by nets that never run backward: parameter blobs then get no
   * gradient buffer, which would cost as much memory as the weights. */
  int no_param_diffs;
  /* Set while a net is built for a weights file: parameters whose filler
   * is constant zero are left unset (blob->unset) instead of zeroed, and
   * the net zeroes those the file did not cover (net_settle_params). */
  int weights_follow;
  /* Data-parallel training: TRAIN-phase Data layers read only the records
   * i with i % shard_count == shard_rank (all when shard_count <= 1). */
  int shard_rank;
  int shard_count;
  /* The runtime settings of the net (convolution engine, kernels, threads,
   * log level); opts.conv_engine is the net's copy.  All zero: defaults. */
  crema_options opts;
} layer_ctx;

/* Bottom and top blobs as Caffe's vectors. */
typedef struct blob_list {
  blob **v;
  int n;
} blob_list;

typedef struct layer_ops {
  const char *type;       /* Caffe's type string, e.g. "Convolution" */
  /* Allowed blob counts, checked by the net before setup; max -1 = any. */
  int min_bottoms, max_bottoms;
  int min_tops, max_tops;
  /* Loss layers: top 0 gets loss_weight 1 unless the prototxt says otherwise. */
  int is_loss;
  /* Bit i set: force_backward never propagates to bottom i (labels). */
  unsigned no_force_backward;
  /* Parameter blobs without a ParamSpec get lr_mult 0 in the solver (Caffe's
   * BatchNorm adds such specs to its own copy of the layer parameter, which
   * is what Net::AppendParam reads). */
  int solver_frozen_params;
  /* Checks parameters, creates and fills parameter blobs (l->blobs) and
   * private state.  Called once. */
  crema_status (*setup)(layer *l, const blob_list *bottom, const blob_list *top,
                        crema_error *err);
  /* Sets top shapes from bottom shapes; called whenever inputs change. */
  crema_status (*reshape)(layer *l, const blob_list *bottom, const blob_list *top,
                          crema_error *err);
  crema_status (*forward)(layer *l, const blob_list *bottom, const blob_list *top,
                          crema_error *err);
  /* Writes bottom diffs (overwriting) for bottoms with propagate_down[i] set
   * and accumulates (+=) parameter diffs for blobs with
   * l->param_propagate_down[i].  NULL for layers without a backward pass. */
  crema_status (*backward)(layer *l, const blob_list *top, const int *propagate_down,
                           const blob_list *bottom, crema_error *err);
  /* Frees l->priv; may be NULL. */
  void (*destroy)(layer *l);
  /* Makes forward also apply Caffe's ReLU (negative_slope 0) to the single
   * top, for the in-place ReLU that follows; NULL for layers that cannot.
   * The net fuses them (graph/net.c) to save the ReLU's pass over memory. */
  void (*fuse_relu)(layer *l);
} layer_ops;

struct layer {
  const layer_ops *ops;
  const Caffe__LayerParameter *param; /* owned by the net's NetParameter */
  const char *name;
  Caffe__Phase phase;
  blob **blobs;                       /* learnable parameters */
  int nblobs;
  int *param_propagate_down;          /* per parameter blob */
  void *priv;
  layer_ctx *ctx;
  /* A ReLU whose forward the layer before does (layer_ops.fuse_relu). */
  int forward_fused;
};

/* The runtime options the layer runs under: its net's, or the defaults for
 * a layer made without a context. */
const crema_options *layer_options(const layer *l);

/* Creates a layer of the registered type (without calling setup). */
crema_status layer_create(const Caffe__LayerParameter *param, Caffe__Phase phase,
                          layer_ctx *ctx, layer **out, crema_error *err);
void layer_free(layer *l);

/* Allocates l->blobs with n empty blobs and sets param_propagate_down to 1. */
crema_status layer_alloc_blobs(layer *l, int n, crema_error *err);

/* Shapes parameter blob l->blobs[index] and fills it with filler (NULL: the
 * default constant 0).  Index 0 is named "weights" in errors, others "bias",
 * as in the layers with a weight and an optional bias blob. */
crema_status layer_make_param(layer *l, int index, int num_axes, const int *shape,
                              const Caffe__FillerParameter *filler, crema_error *err);

/* Makes *buf (a malloc'd array of *cap elements of elem bytes, or NULL) hold
 * at least n elements; its contents are not kept when it grows. */
crema_status layer_grow_buffer(const layer *l, void **buf, size_t *cap, size_t n, size_t elem,
                               crema_error *err);

/* Reshapes top like bottom, naming the layer in an error. */
crema_status layer_reshape_like(const layer *l, blob *top, const blob *bottom, crema_error *err);

/* Scratch space of at least n floats from the shared workspace. */
float *layer_workspace(layer *l, size_t n, crema_error *err);

/* Fails with "layer 'NAME' (TYPE): " + message. */
crema_status layer_fail(const layer *l, crema_error *err, crema_status status,
                        const char *fmt, ...) CREMA_PRINTF(4, 5);

/* The registry: NULL when the type is unknown. */
const layer_ops *layer_registry_find(const char *type);
/* Names of all registered types, NULL-terminated. */
void layer_registry_list(const char **names, int max);

#endif
