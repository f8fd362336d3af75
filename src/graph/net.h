/* A network: layers wired by blob names, as Caffe's Net.
 *
 * Construction follows Net::Init: layers are filtered by the NetState rules
 * (FilterNet), Split layers are inserted where a blob feeds several layers
 * (InsertSplits), bottoms and tops are resolved by name (a top named like
 * its bottom at the same index is computed in place: the same blob object),
 * each layer is set up and reshaped in order, loss weights and shared
 * parameters are applied and the need-backward analysis decides which layers
 * and bottoms get gradients.
 *
 * In TEST phase, unless the caller asks for backward or to keep every blob,
 * an inference memory plan lets activations whose last reader has run share
 * storage, and no blob has a diff buffer.  Only input, output and loss blobs
 * then hold their values after forward.
 */
#ifndef CREMA_GRAPH_NET_H
#define CREMA_GRAPH_NET_H

#include <stdint.h>

#include "caffe.pb-c.h"
#include "core/blob.h"
#include "core/error.h"
#include "layers/layer.h"

/* Seed of the fillers and random layers unless the caller sets one. */
#define NET_DEFAULT_SEED 1701u

typedef struct net_options {
  Caffe__Phase phase;         /* the NetState phase (the param's state is ignored) */
  int has_level;              /* else the param's state level (default 0) */
  int level;
  const char *const *stages;  /* when nstages > 0, replace the param's stages */
  int nstages;
  uint32_t seed;
  int backward;               /* the caller will run backward, even in TEST */
  int keep_all;               /* never share activation storage */
  /* A weights file will be loaded next: parameters with constant-zero
   * fillers are left for it to write (see net_settle_params).  Set only
   * by graph/weights.h's net_open and net_open_param, which keep the
   * promise. */
  int weights_follow;
  /* A host reads and writes any blob between passes, and runs layer ranges
   * (pycaffe's Net): every blob keeps its storage and has a diff, and no
   * layer does the work of the next (no fused ReLU), as in Caffe. */
  int observable;
  /* Data-parallel training (src/dist/): TRAIN-phase Data layers keep the
   * records i with i % shard_count == shard_rank.  0 and 0 (or 1): all. */
  int shard_rank;
  int shard_count;
  /* Runtime settings (engine, kernels, threads, log level, memory limit);
   * the net keeps a copy.  net_options_init: the defaults, not the
   * environment's (the API and the commands fill them). */
  crema_options run;
} net_options;

/* Phase as given, level and stages from the param, NET_DEFAULT_SEED, no
 * backward in TEST, memory plan allowed. */
void net_options_init(net_options *o, Caffe__Phase phase);

/* A learnable parameter blob (Caffe's learnable_params_): shared blobs
 * appear once, under their owner. */
typedef struct net_learnable {
  blob *b;
  const char *name;           /* ParamSpec name, NULL when anonymous */
  int layer;                  /* owner layer and index of the blob in it */
  int index;
  float lr_mult, decay_mult;
  int has_lr_mult, has_decay_mult;
} net_learnable;

typedef struct net_plan net_plan;

typedef struct net {
  char *name;
  Caffe__Phase phase;
  Caffe__NetParameter *param;       /* owned copy, filtered */
  Caffe__LayerParameter **lparams;  /* per layer: into param, or owned Split */
  unsigned char *lparam_owned;
  layer_ctx ctx;                    /* ctx.opts: the run options */
  char *conv_engine;                /* owned copy behind ctx.opts.conv_engine */

  int nlayers;
  layer **layers;
  blob_list *bottoms, *tops;        /* per layer */
  int **bottom_ids, **top_ids;      /* blob indices per layer */
  int **bottom_need_backward;       /* per layer, per bottom */
  int *layer_need_backward;
  float **top_loss_weight;          /* per layer, per top */

  int nblobs;
  blob **blobs;                     /* owned; name set */
  int *blob_need_backward;
  float *blob_loss_weight;
  int *blob_last_use;               /* last layer reading or writing the blob */

  int ninputs, noutputs;
  int *input_ids, *output_ids;

  int nlearnable;
  net_learnable *learnable;
  int **param_owner;                /* per layer, per param blob: learnable index */

  int *input_shape_axes;            /* input shapes at the last reshape */
  int (*input_shapes)[BLOB_MAX_AXES];

  int force_backward;
  int backward_enabled;             /* diffs exist: backward may run */
  net_plan *plan;                   /* NULL when every blob owns its storage */
} net;

crema_status net_create(const Caffe__NetParameter *param, const net_options *opts, net **out,
                        crema_error *err);
void net_free(net *n);

/* -1 when absent. */
int net_blob_index(const net *n, const char *name);
int net_layer_index(const net *n, const char *name);
blob *net_blob_by_name(const net *n, const char *name);

/* graph/stride.h's net_param_size_multiple of the net's layers: input
 * heights and widths that are multiples of it are taken by every layer. */
int net_size_multiple(const net *n);
/* After a shape error: when an input or data blob is not a multiple of
 * net_size_multiple, appends to err's message which blob, its size and
 * the multiple needed. */
void net_explain_size(const net *n, crema_error *err);

/* Reshapes every layer in order (after an input blob changed shape). */
crema_status net_reshape(net *n, crema_error *err);

/* Forward of all layers; *loss (may be NULL) receives the sum over loss
 * tops of loss_weight * sum(data).  Reshapes first if an input changed. */
crema_status net_forward(net *n, float *loss, crema_error *err);
/* One layer's forward; *loss receives its weighted loss. */
crema_status net_forward_layer(net *n, int i, float *loss, crema_error *err);

/* Caffe's ForwardFromTo: layers start..end (inclusive), each reshaped
 * from its bottoms first as Caffe's Layer::Forward does, so that a blob a
 * host reshaped is followed.  *loss (may be NULL) receives the weighted
 * losses of those layers.  Not for nets with a memory plan. */
crema_status net_forward_range(net *n, int start, int end, float *loss, crema_error *err);

/* Seeds the loss tops' diffs with their loss weights, then runs backward
 * from the last layer to the first.  Other output diffs are left as the
 * caller set them.  Parameter diffs accumulate (see net_clear_param_diffs). */
crema_status net_backward(net *n, crema_error *err);
void net_seed_loss_diffs(net *n);
/* One layer's backward (when it needs one). */
crema_status net_backward_layer(net *n, int i, crema_error *err);

/* Caffe's BackwardFromTo: seeds the loss diffs, then runs the backward of
 * layers start down to end (start >= end).  Parameter diffs accumulate. */
crema_status net_backward_range(net *n, int start, int end, crema_error *err);

void net_clear_param_diffs(net *n);

/* Bytes held by activations (data and diff of every blob, shared storage
 * counted once) and the bytes the blobs would take without sharing. */
/* Zeroes the parameters left unset for a weights file that did not cover
 * them (net_options.weights_follow); a no-op for other nets.  Only
 * net_load_weights calls it: the "weights not yet written" protocol
 * (blob.unset, layer_ctx.weights_follow) stays inside graph and layers. */
void net_settle_params(net *n);

void net_memory_use(const net *n, size_t *activation_bytes, size_t *unshared_bytes);

#endif
