#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "core/memcap.h"
#include "graph/plan.h"

/* group[] value of a blob whose storage the plan leaves alone. */
#define PLAN_UNMANAGED (-2)

typedef struct plan_group {
  int buf;
  int last_use;
  int pinned;    /* aliased by a blob that must keep its value */
  int released;
} plan_group;

typedef struct plan_buf {
  float *p;
  size_t cap;    /* floats */
  int busy;
} plan_buf;

struct net_plan {
  int nblobs;
  int *def_layer;            /* layer creating each blob */
  unsigned char *pinned;     /* inputs, outputs, tops of source layers */
  int *group;
  plan_group *groups;
  int ngroups;
  plan_buf *bufs;
  int nbufs;
};

void plan_free(net_plan *p) {
  if (!p)
    return;
  for (int i = 0; i < p->nbufs; i++)
    free(p->bufs[i].p);
  free(p->def_layer);
  free(p->pinned);
  free(p->group);
  free(p->groups);
  free(p->bufs);
  free(p);
}

crema_status plan_create(const plan_graph *n, net_plan **out, crema_error *err) {
  net_plan *p = crema_calloc(1, sizeof *p, err);
  if (!p)
    return CREMA_ERR_NOMEM;
  size_t nb = (size_t)n->nblobs;
  p->nblobs = n->nblobs;
  p->def_layer = crema_calloc(nb, sizeof *p->def_layer, err);
  p->pinned = crema_calloc(nb, 1, err);
  p->group = crema_calloc(nb, sizeof *p->group, err);
  p->groups = crema_calloc(nb, sizeof *p->groups, err);
  p->bufs = crema_calloc(nb, sizeof *p->bufs, err);
  if (!p->def_layer || !p->pinned || !p->group || !p->groups || !p->bufs) {
    plan_free(p);
    return CREMA_ERR_NOMEM;
  }
  for (int b = 0; b < n->nblobs; b++)
    p->def_layer[b] = -1;
  for (int i = 0; i < n->nlayers; i++)
    for (int j = 0; j < n->tops[i].n; j++) {
      int id = n->top_ids[i][j];
      if (p->def_layer[id] < 0)
        p->def_layer[id] = i;
      /* Source layers (Input, Data) may reshape their tops in forward. */
      if (n->bottoms[i].n == 0)
        p->pinned[id] = 1;
    }
  for (int k = 0; k < n->noutputs; k++)
    p->pinned[n->output_ids[k]] = 1;
  for (int k = 0; k < n->ninputs; k++)
    p->pinned[n->input_ids[k]] = 1;
  *out = p;
  return CREMA_OK;
}

void plan_begin(net_plan *p, const plan_graph *n) {
  (void)n;
  p->ngroups = 0;
  for (int b = 0; b < p->nblobs; b++)
    p->group[b] = -1;
  for (int k = 0; k < p->nbufs; k++)
    p->bufs[k].busy = 0;
}

static int blob_is_pinned(const net_plan *p, const plan_graph *n, int id) {
  return p->pinned[id] || n->blob_loss_weight[id] != 0.0f;
}

void plan_before_layer(net_plan *p, const plan_graph *n, int i) {
  for (int j = 0; j < n->tops[i].n; j++) {
    int id = n->top_ids[i][j];
    blob *b = n->blobs[id];
    if (p->def_layer[id] != i || blob_is_pinned(p, n, id) || b->owns_data)
      continue;
    b->data = NULL;
    b->data_cap = 0;
  }
}

static float *alloc_buffer(size_t floats, crema_error *err) {
  size_t bytes;
  if (!size_mul(floats ? floats : 1, sizeof(float), &bytes)) {
    crema_fail(err, CREMA_ERR_NOMEM, "activation buffer of %zu floats overflows", floats);
    return NULL;
  }
  bytes = (bytes + 63) / 64 * 64;
  if (mem_check(bytes, "an activation buffer", err) != CREMA_OK)
    return NULL;
  void *q = NULL;
  if (posix_memalign(&q, 64, bytes) != 0) {
    crema_fail(err, CREMA_ERR_NOMEM, "out of memory for an activation buffer of %zu bytes",
               bytes);
    return NULL;
  }
  memset(q, 0, bytes);
  return q;
}

/* Best fit among the free buffers; else the largest free one, grown; else a
 * new buffer.  A free buffer holds nothing anyone reads, so growing it
 * discards its contents. */
static int acquire_buffer(net_plan *p, size_t need, crema_error *err) {
  int best = -1, largest = -1;
  for (int k = 0; k < p->nbufs; k++) {
    plan_buf *b = &p->bufs[k];
    if (b->busy)
      continue;
    if (b->cap >= need && (best < 0 || b->cap < p->bufs[best].cap))
      best = k;
    if (largest < 0 || b->cap > p->bufs[largest].cap)
      largest = k;
  }
  if (best < 0 && largest >= 0) {
    float *q = alloc_buffer(need, err);
    if (!q)
      return -1;
    free(p->bufs[largest].p);
    p->bufs[largest].p = q;
    p->bufs[largest].cap = need;
    best = largest;
  }
  if (best < 0) {
    float *q = alloc_buffer(need, err);
    if (!q)
      return -1;
    best = p->nbufs++;
    p->bufs[best].p = q;
    p->bufs[best].cap = need;
  }
  p->bufs[best].busy = 1;
  return best;
}

static int aliased_bottom(const plan_graph *n, int i, const blob *top) {
  if (!top->data || top->owns_data)
    return -1;
  for (int k = 0; k < n->bottoms[i].n; k++)
    if (n->bottoms[i].v[k]->data == top->data)
      return n->bottom_ids[i][k];
  return -1;
}

static void join_group(net_plan *p, const plan_graph *n, int id, int bottom_id) {
  int g = p->group[bottom_id];
  if (g < 0) {
    p->group[id] = PLAN_UNMANAGED;
    return;
  }
  p->group[id] = g;
  if (n->blob_last_use[id] > p->groups[g].last_use)
    p->groups[g].last_use = n->blob_last_use[id];
  if (blob_is_pinned(p, n, id))
    p->groups[g].pinned = 1;
}

static crema_status place_top(net_plan *p, const plan_graph *n, int i, int id, crema_error *err) {
  blob *b = n->blobs[id];
  int src = aliased_bottom(n, i, b);
  if (src >= 0) {
    join_group(p, n, id, src);
    return CREMA_OK;
  }
  if (blob_is_pinned(p, n, id) || (b->data && !b->owns_data)) {
    p->group[id] = PLAN_UNMANAGED;
    return CREMA_OK;
  }
  /* The storage reshape gave the top goes first, so that it and the
   * buffer replacing it never count together in peak memory. */
  if (b->owns_data) {
    free(b->data);
    b->data = NULL;
    b->owns_data = 0;
  }
  int k = acquire_buffer(p, b->count, err);
  if (k < 0)
    return CREMA_ERR_NOMEM;
  b->data = p->bufs[k].p;
  b->data_cap = p->bufs[k].cap;
  b->owns_data = 0;
  int g = p->ngroups++;
  p->groups[g] = (plan_group){.buf = k, .last_use = n->blob_last_use[id]};
  p->group[id] = g;
  return CREMA_OK;
}

crema_status plan_after_layer(net_plan *p, const plan_graph *n, int i, crema_error *err) {
  for (int j = 0; j < n->tops[i].n; j++) {
    int id = n->top_ids[i][j];
    if (p->def_layer[id] == i && p->group[id] == -1)
      CREMA_TRY(place_top(p, n, i, id, err));
  }
  for (int g = 0; g < p->ngroups; g++) {
    plan_group *gr = &p->groups[g];
    if (!gr->released && !gr->pinned && gr->last_use <= i) {
      gr->released = 1;
      p->bufs[gr->buf].busy = 0;
    }
  }
  return CREMA_OK;
}

void plan_finish(net_plan *p, const plan_graph *n) {
  for (int id = 0; id < p->nblobs; id++) {
    int g = p->group[id];
    if (g < 0)
      continue;
    blob *b = n->blobs[id];
    b->data = p->bufs[p->groups[g].buf].p;
    b->data_cap = p->bufs[p->groups[g].buf].cap;
    b->owns_data = 0;
  }
}

size_t plan_pool_bytes(const net_plan *p) {
  size_t total = 0;
  for (int k = 0; k < p->nbufs; k++)
    total += p->bufs[k].cap * sizeof(float);
  return total;
}

int plan_is_pooled(const net_plan *p, int blob_id) {
  return blob_id >= 0 && blob_id < p->nblobs && p->group[blob_id] >= 0;
}
