/* The inference memory plan: activations share a small pool of buffers.
 *
 * Liveness is taken over the layer order: a blob's storage is free for
 * reuse once the last layer that reads or writes it has run.  Storage is
 * tracked per group, since in-place layers reuse the blob object and layers
 * such as Split or Flatten make their tops alias a bottom's data.  Input,
 * output and loss blobs (and tops of layers without bottoms, which may
 * reshape them in forward) keep storage of their own.  Each pool buffer is
 * as large as the largest activation that uses it.
 *
 * A reshape pass runs plan_begin, then for each layer plan_before_layer,
 * the layer's reshape and plan_after_layer, then plan_finish.
 */
#ifndef CREMA_GRAPH_PLAN_H
#define CREMA_GRAPH_PLAN_H

#include "core/blob.h"
#include "core/error.h"
#include "layers/layer.h"

typedef struct net_plan net_plan;

/* What the plan sees of a net (graph/net.h): its blobs and, per layer, its
 * bottoms and tops by object and by blob index; each blob's last use and
 * loss weight; the net's inputs and outputs.  The planner reads the graph
 * and moves blobs' storage, and knows nothing else of nets. */
typedef struct plan_graph {
  int nlayers, nblobs;
  blob **blobs;
  const blob_list *bottoms, *tops;
  int *const *bottom_ids, *const *top_ids;
  const int *blob_last_use;
  const float *blob_loss_weight;
  int ninputs, noutputs;
  const int *input_ids, *output_ids;
} plan_graph;

crema_status plan_create(const plan_graph *n, net_plan **out, crema_error *err);
void plan_free(net_plan *p);

void plan_begin(net_plan *p, const plan_graph *n);
/* Detaches the storage of the tops layer i creates, so that their reshape
 * gives them the exact size. */
void plan_before_layer(net_plan *p, const plan_graph *n, int i);
/* Moves layer i's new tops into pool buffers and frees the buffers of
 * blobs whose last use is layer i. */
crema_status plan_after_layer(net_plan *p, const plan_graph *n, int i, crema_error *err);
/* Points every planned blob at its buffer's final storage. */
void plan_finish(net_plan *p, const plan_graph *n);

/* Bytes of the pool buffers. */
size_t plan_pool_bytes(const net_plan *p);
/* 1 if blob id's data lives in the pool. */
int plan_is_pooled(const net_plan *p, int blob_id);

#endif
