#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/options.h"
#include "core/parallel.h"
#include "graph/net.h"
#include "graph/plan.h"
#include "graph/stride.h"
#include "io/upgrade.h"
#include "math/blas.h"

/* ---- options ------------------------------------------------------------ */

void net_options_init(net_options *o, Caffe__Phase phase) {
  memset(o, 0, sizeof *o);
  o->phase = phase;
  o->seed = NET_DEFAULT_SEED;
}

/* ---- small helpers ------------------------------------------------------ */

static const char *str_or_empty(const char *s) { return s ? s : ""; }

static crema_status copy_net_param(const Caffe__NetParameter *src, Caffe__NetParameter **out,
                                   crema_error *err) {
  size_t len = protobuf_c_message_get_packed_size(&src->base);
  uint8_t *buf = crema_malloc(len, err);
  if (!buf)
    return CREMA_ERR_NOMEM;
  protobuf_c_message_pack(&src->base, buf);
  ProtobufCMessage *m = protobuf_c_message_unpack(&caffe__net_parameter__descriptor, NULL, len, buf);
  free(buf);
  if (!m)
    return crema_fail(err, CREMA_ERR_NOMEM, "cannot copy the net parameter '%s'",
                      str_or_empty(src->name));
  *out = (Caffe__NetParameter *)m;
  return CREMA_OK;
}

static const char *layer_type(const Caffe__LayerParameter *lp) { return str_or_empty(lp->type); }

static crema_status layer_param_fail(const Caffe__LayerParameter *lp, crema_error *err,
                                     crema_status status, const char *what) {
  return crema_fail(err, status, "layer '%s' (%s): %s", str_or_empty(lp->name), layer_type(lp),
                    what);
}

/* ---- FilterNet ---------------------------------------------------------- */

typedef struct net_state_view {
  Caffe__Phase phase;
  int level;
  const char *const *stages;
  int nstages;
} net_state_view;

static int state_has_stage(const net_state_view *s, const char *stage) {
  for (int i = 0; i < s->nstages; i++)
    if (!strcmp(s->stages[i], stage))
      return 1;
  return 0;
}

/* Caffe's StateMeetsRule: every condition the rule states must hold. */
static int state_meets_rule(const net_state_view *s, const Caffe__NetStateRule *r) {
  if (r->has_phase && r->phase != s->phase)
    return 0;
  if (r->has_min_level && s->level < r->min_level)
    return 0;
  if (r->has_max_level && s->level > r->max_level)
    return 0;
  for (size_t i = 0; i < r->n_stage; i++)
    if (!state_has_stage(s, str_or_empty(r->stage[i])))
      return 0;
  for (size_t i = 0; i < r->n_not_stage; i++)
    if (state_has_stage(s, str_or_empty(r->not_stage[i])))
      return 0;
  return 1;
}

static crema_status layer_is_included(const net_state_view *s, const Caffe__LayerParameter *lp,
                                      int *included, crema_error *err) {
  if (lp->n_include > 0 && lp->n_exclude > 0)
    return layer_param_fail(lp, err, CREMA_ERR_INVALID,
                            "specify either include rules or exclude rules, not both");
  int in = lp->n_include == 0;
  for (size_t j = 0; in && j < lp->n_exclude; j++)
    if (state_meets_rule(s, lp->exclude[j]))
      in = 0;
  for (size_t j = 0; !in && j < lp->n_include; j++)
    if (state_meets_rule(s, lp->include[j]))
      in = 1;
  *included = in;
  return CREMA_OK;
}

static crema_status filter_layers(Caffe__NetParameter *p, const net_state_view *s,
                                  crema_error *err) {
  size_t kept = 0;
  crema_status st = CREMA_OK;
  for (size_t i = 0; i < p->n_layer; i++) {
    int in = 0;
    if (st == CREMA_OK)
      st = layer_is_included(s, p->layer[i], &in, err);
    if (in && st == CREMA_OK)
      p->layer[kept++] = p->layer[i];
    else
      protobuf_c_message_free_unpacked(&p->layer[i]->base, NULL);
  }
  p->n_layer = kept;
  return st;
}

/* ---- InsertSplits ------------------------------------------------------- */

/* Where each bottom comes from and how often each top is used. */
typedef struct split_info {
  int nlayers;
  int **src_layer, **src_top;  /* per layer, per bottom */
  int **uses;                  /* per layer, per top: bottoms + nonzero loss */
  float **loss;                /* per layer, per top: loss_weight given */
  int **next_split;            /* per layer, per top */
} split_info;

static void split_info_free(split_info *s) {
  for (int i = 0; i < s->nlayers; i++) {
    if (s->src_layer)
      free(s->src_layer[i]);
    if (s->src_top)
      free(s->src_top[i]);
    if (s->uses)
      free(s->uses[i]);
    if (s->loss)
      free(s->loss[i]);
    if (s->next_split)
      free(s->next_split[i]);
  }
  free(s->src_layer);
  free(s->src_top);
  free(s->uses);
  free(s->loss);
  free(s->next_split);
}

typedef struct producer {
  const char *name;
  int layer, top;
} producer;

static int find_producer(const producer *v, int n, const char *name) {
  for (int k = n - 1; k >= 0; k--)
    if (!strcmp(v[k].name, name))
      return k;
  return -1;
}

static crema_status count_uses(const Caffe__NetParameter *p, split_info *s, crema_error *err) {
  size_t nl = p->n_layer;
  s->nlayers = (int)nl;
  s->src_layer = crema_calloc(nl, sizeof(int *), err);
  s->src_top = crema_calloc(nl, sizeof(int *), err);
  s->uses = crema_calloc(nl, sizeof(int *), err);
  s->loss = crema_calloc(nl, sizeof(float *), err);
  s->next_split = crema_calloc(nl, sizeof(int *), err);
  if (!s->src_layer || !s->src_top || !s->uses || !s->loss || !s->next_split)
    return CREMA_ERR_NOMEM;
  size_t ntops = 0;
  for (size_t i = 0; i < nl; i++)
    ntops += p->layer[i]->n_top;
  producer *prod = crema_calloc(ntops, sizeof *prod, err);
  if (!prod)
    return CREMA_ERR_NOMEM;
  int nprod = 0;
  crema_status st = CREMA_OK;
  for (size_t i = 0; i < nl && st == CREMA_OK; i++) {
    const Caffe__LayerParameter *lp = p->layer[i];
    s->src_layer[i] = crema_calloc(lp->n_bottom, sizeof(int), err);
    s->src_top[i] = crema_calloc(lp->n_bottom, sizeof(int), err);
    s->uses[i] = crema_calloc(lp->n_top, sizeof(int), err);
    s->loss[i] = crema_calloc(lp->n_top, sizeof(float), err);
    s->next_split[i] = crema_calloc(lp->n_top, sizeof(int), err);
    if (!s->src_layer[i] || !s->src_top[i] || !s->uses[i] || !s->loss[i] || !s->next_split[i]) {
      st = CREMA_ERR_NOMEM;
      break;
    }
    for (size_t j = 0; j < lp->n_bottom; j++) {
      const char *name = str_or_empty(lp->bottom[j]);
      int k = find_producer(prod, nprod, name);
      if (k < 0) {
        char what[CREMA_ERROR_MAX];
        snprintf(what, sizeof what, "unknown bottom blob '%s'", name);
        st = layer_param_fail(lp, err, CREMA_ERR_NOT_FOUND, what);
        break;
      }
      s->src_layer[i][j] = prod[k].layer;
      s->src_top[i][j] = prod[k].top;
      s->uses[prod[k].layer][prod[k].top]++;
    }
    for (size_t j = 0; j < lp->n_top && st == CREMA_OK; j++)
      prod[nprod++] = (producer){str_or_empty(lp->top[j]), (int)i, (int)j};
    /* A loss counts as one more use of its top, so that a blob both fed
     * forward and weighted as a loss gets a split that carries the loss. */
    size_t nloss = lp->n_loss_weight < lp->n_top ? lp->n_loss_weight : lp->n_top;
    for (size_t j = 0; j < nloss && st == CREMA_OK; j++) {
      s->loss[i][j] = lp->loss_weight[j];
      if (lp->loss_weight[j] != 0.0f)
        s->uses[i][j]++;
    }
  }
  free(prod);
  return st;
}

static char *split_name(const char *layer_name, const char *blob_name, int top, int k,
                        int is_blob, crema_error *err) {
  char idx[48];
  if (is_blob)
    snprintf(idx, sizeof idx, "_%d_split_%d", top, k);
  else
    snprintf(idx, sizeof idx, "_%d_split", top);
  size_t len = strlen(blob_name) + 1 + strlen(layer_name) + strlen(idx) + 1;
  char *s = crema_malloc(len, err);
  if (s)
    snprintf(s, len, "%s_%s%s", blob_name, layer_name, idx);
  return s;
}

static crema_status make_split_layer(const char *layer_name, const char *blob_name, int top,
                                     int count, float loss_weight, Caffe__LayerParameter **out,
                                     crema_error *err) {
  Caffe__LayerParameter *sp = crema_malloc(sizeof *sp, err);
  if (!sp)
    return CREMA_ERR_NOMEM;
  caffe__layer_parameter__init(sp);
  crema_status st = CREMA_ERR_NOMEM;
  sp->name = split_name(layer_name, blob_name, top, 0, 0, err);
  sp->type = crema_strdup("Split", err);
  sp->bottom = crema_calloc(1, sizeof(char *), err);
  sp->top = crema_calloc((size_t)count, sizeof(char *), err);
  if (loss_weight != 0.0f)
    sp->loss_weight = crema_calloc((size_t)count, sizeof(float), err);
  if (!sp->name || !sp->type || !sp->bottom || !sp->top ||
      (loss_weight != 0.0f && !sp->loss_weight))
    goto fail;
  sp->n_bottom = 1;
  if (!(sp->bottom[0] = crema_strdup(blob_name, err)))
    goto fail;
  for (int k = 0; k < count; k++) {
    if (!(sp->top[k] = split_name(layer_name, blob_name, top, k, 1, err)))
      goto fail;
    sp->n_top = (size_t)k + 1;
  }
  if (loss_weight != 0.0f) {
    sp->n_loss_weight = (size_t)count;
    sp->loss_weight[0] = loss_weight;
  }
  *out = sp;
  return CREMA_OK;
fail:
  protobuf_c_message_free_unpacked(&sp->base, NULL);
  return st;
}

static crema_status push_layer(net *n, Caffe__LayerParameter *lp, int owned, size_t cap,
                               crema_error *err) {
  if ((size_t)n->nlayers >= cap) {
    if (owned)
      protobuf_c_message_free_unpacked(&lp->base, NULL);
    return crema_fail(err, CREMA_ERR_INVALID, "internal: too many layers after splits");
  }
  n->lparams[n->nlayers] = lp;
  n->lparam_owned[n->nlayers] = (unsigned char)owned;
  n->nlayers++;
  (void)err;
  return CREMA_OK;
}

/* Renames the bottoms that read a shared blob to their split copies and
 * appends a Split layer after each layer whose top feeds several users. */
static crema_status insert_splits(net *n, crema_error *err) {
  Caffe__NetParameter *p = n->param;
  split_info s = {0};
  crema_status st = count_uses(p, &s, err);
  size_t cap = p->n_layer;
  for (int i = 0; st == CREMA_OK && i < s.nlayers; i++)
    for (size_t j = 0; j < p->layer[i]->n_top; j++)
      if (s.uses[i][j] > 1)
        cap++;
  if (st == CREMA_OK) {
    n->lparams = crema_calloc(cap, sizeof *n->lparams, err);
    n->lparam_owned = crema_calloc(cap, 1, err);
    if (!n->lparams || !n->lparam_owned)
      st = CREMA_ERR_NOMEM;
  }
  for (int i = 0; st == CREMA_OK && i < s.nlayers; i++) {
    Caffe__LayerParameter *lp = p->layer[i];
    for (size_t j = 0; j < lp->n_bottom && st == CREMA_OK; j++) {
      int sl = s.src_layer[i][j], stp = s.src_top[i][j];
      if (s.uses[sl][stp] <= 1)
        continue;
      char *name = split_name(str_or_empty(p->layer[sl]->name), lp->bottom[j], stp,
                              s.next_split[sl][stp]++, 1, err);
      if (!name) {
        st = CREMA_ERR_NOMEM;
        break;
      }
      free(lp->bottom[j]);
      lp->bottom[j] = name;
    }
    if (st != CREMA_OK)
      break;
    st = push_layer(n, lp, 0, cap, err);
    for (size_t j = 0; j < lp->n_top && st == CREMA_OK; j++) {
      if (s.uses[i][j] <= 1)
        continue;
      float lw = s.loss[i][j];
      Caffe__LayerParameter *sp = NULL;
      st = make_split_layer(str_or_empty(lp->name), str_or_empty(lp->top[j]), (int)j,
                            s.uses[i][j], lw, &sp, err);
      if (st == CREMA_OK)
        st = push_layer(n, sp, 1, cap, err);
      if (st == CREMA_OK && lw != 0.0f) {
        /* As Caffe: the split's first top carries the loss, so the layer's
         * own loss weights are dropped (all of them). */
        free(lp->loss_weight);
        lp->loss_weight = NULL;
        lp->n_loss_weight = 0;
        s.next_split[i][j]++;
      }
    }
  }
  split_info_free(&s);
  return st;
}

/* ---- wiring ------------------------------------------------------------- */

int net_blob_index(const net *n, const char *name) {
  for (int b = 0; b < n->nblobs; b++)
    if (!strcmp(n->blobs[b]->name, name))
      return b;
  return -1;
}

int net_layer_index(const net *n, const char *name) {
  for (int i = 0; i < n->nlayers; i++)
    if (!strcmp(n->layers[i]->name, name))
      return i;
  return -1;
}

blob *net_blob_by_name(const net *n, const char *name) {
  int b = net_blob_index(n, name);
  return b < 0 ? NULL : n->blobs[b];
}

static crema_status add_blob(net *n, const char *name, int wants_diff, int *id, crema_error *err) {
  blob *b = blob_create(name, err);
  if (!b)
    return CREMA_ERR_NOMEM;
  b->wants_diff = (unsigned)(wants_diff != 0);
  n->blobs[n->nblobs] = b;
  *id = n->nblobs++;
  return CREMA_OK;
}

static crema_status alloc_layer_arrays(net *n, crema_error *err) {
  size_t nl = (size_t)n->nlayers;
  size_t nblobs = 0;
  for (int i = 0; i < n->nlayers; i++)
    nblobs += n->lparams[i]->n_top;
  n->layers = crema_calloc(nl, sizeof *n->layers, err);
  n->bottoms = crema_calloc(nl, sizeof *n->bottoms, err);
  n->tops = crema_calloc(nl, sizeof *n->tops, err);
  n->bottom_ids = crema_calloc(nl, sizeof *n->bottom_ids, err);
  n->top_ids = crema_calloc(nl, sizeof *n->top_ids, err);
  n->bottom_need_backward = crema_calloc(nl, sizeof *n->bottom_need_backward, err);
  n->layer_need_backward = crema_calloc(nl, sizeof *n->layer_need_backward, err);
  n->top_loss_weight = crema_calloc(nl, sizeof *n->top_loss_weight, err);
  n->param_owner = crema_calloc(nl, sizeof *n->param_owner, err);
  n->blobs = crema_calloc(nblobs, sizeof *n->blobs, err);
  if (!n->layers || !n->bottoms || !n->tops || !n->bottom_ids || !n->top_ids ||
      !n->bottom_need_backward || !n->layer_need_backward || !n->top_loss_weight ||
      !n->param_owner || !n->blobs)
    return CREMA_ERR_NOMEM;
  for (int i = 0; i < n->nlayers; i++) {
    const Caffe__LayerParameter *lp = n->lparams[i];
    size_t nb = lp->n_bottom, nt = lp->n_top;
    n->bottoms[i].v = crema_calloc(nb, sizeof(blob *), err);
    n->tops[i].v = crema_calloc(nt, sizeof(blob *), err);
    n->bottom_ids[i] = crema_calloc(nb, sizeof(int), err);
    n->top_ids[i] = crema_calloc(nt, sizeof(int), err);
    n->bottom_need_backward[i] = crema_calloc(nb, sizeof(int), err);
    n->top_loss_weight[i] = crema_calloc(nt, sizeof(float), err);
    if (!n->bottoms[i].v || !n->tops[i].v || !n->bottom_ids[i] || !n->top_ids[i] ||
        !n->bottom_need_backward[i] || !n->top_loss_weight[i])
      return CREMA_ERR_NOMEM;
  }
  return CREMA_OK;
}

static int cmp_blob_names(const void *a, const void *b, void *ctx) {
  const net *n = ctx;
  return strcmp(n->blobs[*(const int *)a]->name, n->blobs[*(const int *)b]->name);
}

/* Caffe's AppendBottom / AppendTop: resolve names, in-place tops, and the
 * blobs left unconsumed (the outputs, in name order as Caffe's std::set). */
static crema_status wire_blobs(net *n, int wants_diff, crema_error *err) {
  CREMA_TRY(alloc_layer_arrays(n, err));
  size_t cap = 0;
  for (int i = 0; i < n->nlayers; i++)
    cap += n->lparams[i]->n_top;
  unsigned char *available = crema_calloc(cap, 1, err);
  if (!available)
    return CREMA_ERR_NOMEM;
  crema_status st = CREMA_OK;
  for (int i = 0; i < n->nlayers && st == CREMA_OK; i++) {
    const Caffe__LayerParameter *lp = n->lparams[i];
    for (size_t j = 0; j < lp->n_bottom; j++) {
      const char *name = str_or_empty(lp->bottom[j]);
      int id = net_blob_index(n, name);
      if (id < 0 || !available[id]) {
        char what[CREMA_ERROR_MAX];
        snprintf(what, sizeof what, "unknown bottom blob '%s'", name);
        st = layer_param_fail(lp, err, CREMA_ERR_NOT_FOUND, what);
        break;
      }
      available[id] = 0;
      n->bottom_ids[i][j] = id;
      n->bottoms[i].v[j] = n->blobs[id];
      n->bottoms[i].n = (int)j + 1;
    }
    for (size_t j = 0; j < lp->n_top && st == CREMA_OK; j++) {
      const char *name = str_or_empty(lp->top[j]);
      int id;
      if (j < lp->n_bottom && !strcmp(name, str_or_empty(lp->bottom[j]))) {
        id = n->bottom_ids[i][j];
      } else if (net_blob_index(n, name) >= 0) {
        char what[CREMA_ERROR_MAX];
        snprintf(what, sizeof what,
                 "top blob '%s' is already produced by another layer (an in-place top must "
                 "have the same index as its bottom)", name);
        st = layer_param_fail(lp, err, CREMA_ERR_INVALID, what);
        break;
      } else if ((st = add_blob(n, name, wants_diff, &id, err)) != CREMA_OK) {
        break;
      }
      available[id] = 1;
      n->top_ids[i][j] = id;
      n->tops[i].v[j] = n->blobs[id];
      n->tops[i].n = (int)j + 1;
    }
  }
  if (st == CREMA_OK) {
    n->output_ids = crema_calloc((size_t)n->nblobs, sizeof(int), err);
    n->input_ids = crema_calloc((size_t)n->nblobs, sizeof(int), err);
    n->blob_need_backward = crema_calloc((size_t)n->nblobs, sizeof(int), err);
    n->blob_loss_weight = crema_calloc((size_t)n->nblobs, sizeof(float), err);
    n->blob_last_use = crema_calloc((size_t)n->nblobs, sizeof(int), err);
    if (!n->output_ids || !n->input_ids || !n->blob_need_backward || !n->blob_loss_weight ||
        !n->blob_last_use)
      st = CREMA_ERR_NOMEM;
  }
  if (st == CREMA_OK) {
    for (int b = 0; b < n->nblobs; b++)
      if (available[b])
        n->output_ids[n->noutputs++] = b;
    qsort_r(n->output_ids, (size_t)n->noutputs, sizeof(int), cmp_blob_names, n);
    for (int i = 0; i < n->nlayers; i++) {
      if (!strcmp(layer_type(n->lparams[i]), "Input"))
        for (int j = 0; j < n->tops[i].n; j++)
          n->input_ids[n->ninputs++] = n->top_ids[i][j];
      for (int j = 0; j < n->bottoms[i].n; j++)
        n->blob_last_use[n->bottom_ids[i][j]] = i;
      for (int j = 0; j < n->tops[i].n; j++)
        n->blob_last_use[n->top_ids[i][j]] = i;
    }
  }
  free(available);
  return st;
}

/* ---- layers ------------------------------------------------------------- */

static crema_status check_blob_counts(const layer *l, int nb, int nt, crema_error *err) {
  const layer_ops *o = l->ops;
  if (nb < o->min_bottoms || (o->max_bottoms >= 0 && nb > o->max_bottoms)) {
    if (o->min_bottoms == o->max_bottoms)
      return layer_fail(l, err, CREMA_ERR_INVALID, "takes %d bottom blob%s, got %d",
                        o->min_bottoms, o->min_bottoms == 1 ? "" : "s", nb);
    if (o->max_bottoms < 0)
      return layer_fail(l, err, CREMA_ERR_INVALID, "takes at least %d bottom blobs, got %d",
                        o->min_bottoms, nb);
    return layer_fail(l, err, CREMA_ERR_INVALID, "takes %d to %d bottom blobs, got %d",
                      o->min_bottoms, o->max_bottoms, nb);
  }
  if (nt < o->min_tops || (o->max_tops >= 0 && nt > o->max_tops)) {
    if (o->min_tops == o->max_tops)
      return layer_fail(l, err, CREMA_ERR_INVALID, "takes %d top blob%s, got %d", o->min_tops,
                        o->min_tops == 1 ? "" : "s", nt);
    if (o->max_tops < 0)
      return layer_fail(l, err, CREMA_ERR_INVALID, "takes at least %d top blobs, got %d",
                        o->min_tops, nt);
    return layer_fail(l, err, CREMA_ERR_INVALID, "takes %d to %d top blobs, got %d",
                      o->min_tops, o->max_tops, nt);
  }
  return CREMA_OK;
}

static crema_status create_layers(net *n, crema_error *err) {
  for (int i = 0; i < n->nlayers; i++) {
    Caffe__LayerParameter *lp = n->lparams[i];
    /* As Net::Init: a layer without a phase runs in the net's. */
    if (!lp->has_phase) {
      lp->has_phase = 1;
      lp->phase = n->phase;
    }
    if (lp->n_propagate_down > 0 && lp->n_propagate_down != lp->n_bottom) {
      char what[160];
      snprintf(what, sizeof what,
               "propagate_down must be given 0 times or once per bottom (%zu), not %zu times",
               lp->n_bottom, lp->n_propagate_down);
      return layer_param_fail(lp, err, CREMA_ERR_INVALID, what);
    }
    CREMA_TRY(layer_create(lp, lp->phase, &n->ctx, &n->layers[i], err));
    CREMA_TRY(check_blob_counts(n->layers[i], n->bottoms[i].n, n->tops[i].n, err));
  }
  return CREMA_OK;
}

/* Caffe's SetLossWeights, with LossLayer's default of 1 on the first top. */
static crema_status set_loss_weights(net *n, int i, crema_error *err) {
  Caffe__LayerParameter *lp = n->lparams[i];
  const layer *l = n->layers[i];
  if (lp->n_loss_weight == 0 && l->ops->is_loss && lp->n_top > 0) {
    lp->loss_weight = crema_calloc(lp->n_top, sizeof(float), err);
    if (!lp->loss_weight)
      return CREMA_ERR_NOMEM;
    lp->n_loss_weight = lp->n_top;
    lp->loss_weight[0] = 1.0f;
  }
  if (lp->n_loss_weight == 0)
    return CREMA_OK;
  if (lp->n_loss_weight != lp->n_top)
    return layer_fail(l, err, CREMA_ERR_INVALID,
                      "loss_weight must be unspecified or given once per top blob (%zu tops, "
                      "%zu loss weights)", lp->n_top, lp->n_loss_weight);
  for (size_t j = 0; j < lp->n_top; j++) {
    n->top_loss_weight[i][j] = lp->loss_weight[j];
    n->blob_loss_weight[n->top_ids[i][j]] = lp->loss_weight[j];
  }
  return CREMA_OK;
}

static int find_learnable_by_name(const net *n, const char *name) {
  for (int k = 0; k < n->nlearnable; k++)
    if (n->learnable[k].name && !strcmp(n->learnable[k].name, name))
      return k;
  return -1;
}

static crema_status share_param(net *n, int i, int p, const Caffe__ParamSpec *spec, int owner,
                                crema_error *err) {
  layer *l = n->layers[i];
  net_learnable *ln = &n->learnable[owner];
  blob *mine = l->blobs[p], *theirs = ln->b;
  const char *pname = spec->name;
  char a[128], b[128];
  if (spec->has_share_mode && spec->share_mode == CAFFE__PARAM_SPEC__DIM_CHECK_MODE__PERMISSIVE) {
    if (mine->count != theirs->count)
      return layer_fail(l, err, CREMA_ERR_SHAPE,
                        "shared parameter '%s' has %zu values here and %zu in layer '%s'",
                        pname, mine->count, theirs->count, n->layers[ln->layer]->name);
  } else if (!blob_same_shape(mine, theirs)) {
    return layer_fail(l, err, CREMA_ERR_SHAPE,
                      "shared parameter '%s' has shape %s here and %s in layer '%s'", pname,
                      blob_shape_string(mine, a, sizeof a), blob_shape_string(theirs, b, sizeof b),
                      n->layers[ln->layer]->name);
  }
  if (spec->has_lr_mult) {
    if (ln->has_lr_mult && ln->lr_mult != spec->lr_mult)
      return layer_fail(l, err, CREMA_ERR_INVALID,
                        "shared parameter '%s' has lr_mult %g here and %g in layer '%s'", pname,
                        (double)spec->lr_mult, (double)ln->lr_mult, n->layers[ln->layer]->name);
    ln->has_lr_mult = 1;
    ln->lr_mult = spec->lr_mult;
  }
  if (spec->has_decay_mult) {
    if (ln->has_decay_mult && ln->decay_mult != spec->decay_mult)
      return layer_fail(l, err, CREMA_ERR_INVALID,
                        "shared parameter '%s' has decay_mult %g here and %g in layer '%s'",
                        pname, (double)spec->decay_mult, (double)ln->decay_mult,
                        n->layers[ln->layer]->name);
    ln->has_decay_mult = 1;
    ln->decay_mult = spec->decay_mult;
  }
  /* A permissive share may see another shape: keep ours, use their storage. */
  blob_share_data(mine, theirs);
  blob_share_diff(mine, theirs);
  return CREMA_OK;
}

/* Caffe's AppendParam: owners become learnable parameters, named repeats
 * share the owner's data and diff. */
static crema_status append_params(net *n, int i, int *need_backward, crema_error *err) {
  layer *l = n->layers[i];
  const Caffe__LayerParameter *lp = n->lparams[i];
  if (lp->n_param > (size_t)l->nblobs)
    return layer_fail(l, err, CREMA_ERR_INVALID,
                      "%zu param specs given but the layer has %d parameter blobs", lp->n_param,
                      l->nblobs);
  if (l->nblobs == 0)
    return CREMA_OK;
  n->param_owner[i] = crema_calloc((size_t)l->nblobs, sizeof(int), err);
  if (!n->param_owner[i])
    return CREMA_ERR_NOMEM;
  Caffe__ParamSpec defaults;
  caffe__param_spec__init(&defaults);
  for (int p = 0; p < l->nblobs; p++) {
    const Caffe__ParamSpec *spec = (size_t)p < lp->n_param ? lp->param[p] : &defaults;
    /* As Caffe: any nonzero lr_mult (a negative one too) trains. */
    int wants = spec->lr_mult != 0.0f;
    *need_backward |= wants;
    l->param_propagate_down[p] = wants;
    n->param_owner[i][p] = -1;
    int named = spec->name && *spec->name;
    int owner = named ? find_learnable_by_name(n, spec->name) : -1;
    if (owner >= 0) {
      CREMA_TRY(share_param(n, i, p, spec, owner, err));
      n->param_owner[i][p] = owner;
      continue;
    }
    net_learnable *ln = &n->learnable[n->nlearnable];
    *ln = (net_learnable){.b = l->blobs[p], .name = named ? spec->name : NULL,
                          .layer = i, .index = p,
                          .lr_mult = spec->lr_mult, .decay_mult = spec->decay_mult,
                          .has_lr_mult = spec->has_lr_mult, .has_decay_mult = spec->has_decay_mult};
    if ((size_t)p >= lp->n_param && l->ops->solver_frozen_params) {
      ln->lr_mult = 0.0f;
      ln->has_lr_mult = 1;
    }
    n->param_owner[i][p] = n->nlearnable++;
  }
  return CREMA_OK;
}

static crema_status grow_learnable(net *n, int more, crema_error *err) {
  size_t want = (size_t)n->nlearnable + (size_t)more;
  net_learnable *v = realloc(n->learnable, (want ? want : 1) * sizeof *v);
  if (!v)
    return crema_fail(err, CREMA_ERR_NOMEM, "out of memory for %zu parameters", want);
  n->learnable = v;
  return CREMA_OK;
}

static void drop_param_diffs(layer *l) {
  for (int p = 0; p < l->nblobs; p++) {
    blob *b = l->blobs[p];
    if (b->owns_diff)
      free(b->diff);
    b->diff = NULL;
    b->diff_cap = 0;
    b->owns_diff = 0;
    b->wants_diff = 0;
  }
}

/* The graph the memory plan works on (graph/plan.h). */
static plan_graph graph_of(const net *n) {
  plan_graph g = {.nlayers = n->nlayers,
                  .nblobs = n->nblobs,
                  .blobs = n->blobs,
                  .bottoms = n->bottoms,
                  .tops = n->tops,
                  .bottom_ids = n->bottom_ids,
                  .top_ids = n->top_ids,
                  .blob_last_use = n->blob_last_use,
                  .blob_loss_weight = n->blob_loss_weight,
                  .ninputs = n->ninputs,
                  .noutputs = n->noutputs,
                  .input_ids = n->input_ids,
                  .output_ids = n->output_ids};
  return g;
}

static crema_status reshape_layer(net *n, int i, crema_error *err) {
  layer *l = n->layers[i];
  const plan_graph g = graph_of(n);
  if (n->plan)
    plan_before_layer(n->plan, &g, i);
  if (l->ops->reshape) {
    crema_status st = l->ops->reshape(l, &n->bottoms[i], &n->tops[i], err);
    if (st == CREMA_ERR_SHAPE)
      net_explain_size(n, err);
    CREMA_TRY(st);
  }
  if (n->plan)
    CREMA_TRY(plan_after_layer(n->plan, &g, i, err));
  return CREMA_OK;
}

static crema_status record_input_shapes(net *n, crema_error *err) {
  if (!n->input_shapes && n->ninputs > 0) {
    n->input_shapes = crema_calloc((size_t)n->ninputs, sizeof *n->input_shapes, err);
    n->input_shape_axes = crema_calloc((size_t)n->ninputs, sizeof(int), err);
    if (!n->input_shapes || !n->input_shape_axes)
      return CREMA_ERR_NOMEM;
  }
  for (int k = 0; k < n->ninputs; k++) {
    const blob *b = n->blobs[n->input_ids[k]];
    n->input_shape_axes[k] = b->num_axes;
    memcpy(n->input_shapes[k], b->shape, sizeof n->input_shapes[k]);
  }
  return CREMA_OK;
}

static crema_status setup_layers(net *n, crema_error *err) {
  const plan_graph g = graph_of(n);
  if (n->plan)
    plan_begin(n->plan, &g);
  for (int i = 0; i < n->nlayers; i++) {
    layer *l = n->layers[i];
    if (l->ops->setup)
      CREMA_TRY(l->ops->setup(l, &n->bottoms[i], &n->tops[i], err));
    if (!n->backward_enabled)
      drop_param_diffs(l);
    CREMA_TRY(set_loss_weights(n, i, err));
    CREMA_TRY(reshape_layer(n, i, err));
    CREMA_TRY(grow_learnable(n, l->nblobs, err));
    int need = 0;
    const Caffe__LayerParameter *lp = n->lparams[i];
    for (int j = 0; j < n->bottoms[i].n; j++) {
      int id = n->bottom_ids[i][j];
      need |= n->blob_need_backward[id];
      /* As Caffe's AppendBottom: a given propagate_down replaces the blob's
       * own need (it only takes effect if the layer runs backward). */
      n->bottom_need_backward[i][j] =
          lp->n_propagate_down > 0 ? lp->propagate_down[j] != 0 : n->blob_need_backward[id];
    }
    CREMA_TRY(append_params(n, i, &need, err));
    n->layer_need_backward[i] = need;
    if (need)
      for (int j = 0; j < n->tops[i].n; j++)
        n->blob_need_backward[n->top_ids[i][j]] = 1;
  }
  if (n->plan)
    plan_finish(n->plan, &g);
  return record_input_shapes(n, err);
}

/* Whether layer i + 1 is a ReLU (slope 0) working in place on layer i's
 * only top, which carries no loss: then layer i may apply it as it writes
 * the top, and nothing can read the top in between.  Caffe's in-place
 * ReLU leaves the same values in the blob, and its backward reads only
 * the (rectified) top, so results are unchanged. */
static int relu_follows_in_place(const net *n, int i) {
  if (i + 1 >= n->nlayers || n->bottoms[i].n != 1 || n->tops[i].n != 1 ||
      n->top_loss_weight[i][0] != 0.0f)
    return 0;
  const layer *r = n->layers[i + 1];
  if (strcmp(r->ops->type, "ReLU") != 0 || n->bottoms[i + 1].n != 1 || n->tops[i + 1].n != 1)
    return 0;
  const blob *t = n->tops[i].v[0];
  if (n->bottoms[i + 1].v[0] != t || n->tops[i + 1].v[0] != t)
    return 0;
  const Caffe__ReLUParameter *rp = r->param->relu_param;
  return !rp || rp->negative_slope == 0.0f;
}

/* Fuses each in-place ReLU into the layer before where that layer can
 * apply it (layer_ops.fuse_relu): one pass over the activation instead of
 * two. */
static void fuse_relus(net *n) {
  for (int i = 0; i + 1 < n->nlayers; i++) {
    layer *l = n->layers[i];
    if (l->ops->fuse_relu && relu_follows_in_place(n, i)) {
      l->ops->fuse_relu(l);
      n->layers[i + 1]->forward_fused = 1;
    }
  }
}

/* The second half of Net::Init's analysis: layers that feed no loss, and
 * layers whose bottoms all skip backward, need no backward. */
static crema_status prune_backward(net *n, crema_error *err) {
  size_t nb = (size_t)n->nblobs;
  unsigned char *under_loss = crema_calloc(nb, 1, err);
  unsigned char *skip = crema_calloc(nb, 1, err);
  if (!under_loss || !skip) {
    free(under_loss);
    free(skip);
    return CREMA_ERR_NOMEM;
  }
  for (int i = n->nlayers - 1; i >= 0; i--) {
    int contributes = 0, skip_down = 1;
    for (int j = 0; j < n->tops[i].n; j++) {
      int id = n->top_ids[i][j];
      if (n->top_loss_weight[i][j] != 0.0f || under_loss[id])
        contributes = 1;
      if (!skip[id])
        skip_down = 0;
      if (contributes && !skip_down)
        break;
    }
    if (n->layer_need_backward[i] && skip_down) {
      n->layer_need_backward[i] = 0;
      for (int j = 0; j < n->bottoms[i].n; j++)
        n->bottom_need_backward[i][j] = 0;
    }
    if (!contributes)
      n->layer_need_backward[i] = 0;
    for (int j = 0; j < n->bottoms[i].n; j++) {
      int id = n->bottom_ids[i][j];
      if (contributes)
        under_loss[id] = 1;
      else
        n->bottom_need_backward[i][j] = 0;
      if (!n->bottom_need_backward[i][j])
        skip[id] = 1;
    }
  }
  free(under_loss);
  free(skip);
  if (!n->force_backward)
    return CREMA_OK;
  for (int i = 0; i < n->nlayers; i++) {
    layer *l = n->layers[i];
    n->layer_need_backward[i] = 1;
    for (int j = 0; j < n->bottoms[i].n; j++) {
      int allow = j >= 32 || !(l->ops->no_force_backward & (1u << j));
      n->bottom_need_backward[i][j] = n->bottom_need_backward[i][j] || allow;
      int id = n->bottom_ids[i][j];
      n->blob_need_backward[id] = n->blob_need_backward[id] || n->bottom_need_backward[i][j];
    }
    for (int p = 0; p < l->nblobs; p++)
      l->param_propagate_down[p] = 1;
  }
  return CREMA_OK;
}

/* ---- construction ------------------------------------------------------- */

static crema_status prepare_param(net *n, const Caffe__NetParameter *param,
                                  const net_options *opts, crema_error *err) {
  CREMA_TRY(copy_net_param(param, &n->param, err));
  if (n->param->n_layers > 0 || n->param->n_input > 0 || n->param->n_input_dim > 0 ||
      n->param->n_input_shape > 0)
    CREMA_TRY(upgrade_net(n->param, n->param->name ? n->param->name : "net", opts->run.log_level,
                          NULL, err));
  n->phase = opts->phase;
  n->force_backward = n->param->has_force_backward && n->param->force_backward;
  if (!(n->name = crema_strdup(str_or_empty(n->param->name), err)))
    return CREMA_ERR_NOMEM;
  const Caffe__NetState *ps = n->param->state;
  net_state_view s = {.phase = opts->phase};
  s.level = opts->has_level ? opts->level : (ps && ps->has_level ? ps->level : 0);
  if (opts->nstages > 0) {
    s.stages = opts->stages;
    s.nstages = opts->nstages;
  } else if (ps) {
    s.stages = (const char *const *)ps->stage;
    s.nstages = (int)ps->n_stage;
  }
  return filter_layers(n->param, &s, err);
}

/* Every pass runs its layers with OpenBLAS on the calling thread and
 * crema's team at the net's thread count (crema_options.threads), under
 * the net's allocation cap (crema_options.max_allocation), all set and
 * restored around it (math/blas.h says why): a host's own BLAS calls keep
 * their threads, and two nets keep their own settings. */
typedef struct net_scope {
  int blas;
  options_scope opts;
} net_scope;

static net_scope scope_enter(const net *n) {
  net_scope s;
  s.blas = blas_threads_enter();
  s.opts = options_enter(&n->ctx.opts);
  return s;
}

static void scope_leave(net_scope s) {
  options_leave(s.opts);
  blas_threads_leave(s.blas);
}

/* crema_options.memory_limit, checked once the blobs have their sizes. */
static crema_status check_memory_limit(const net *n, crema_error *err) {
  const size_t limit = n->ctx.opts.memory_limit;
  if (!limit)
    return CREMA_OK;
  size_t held;
  net_memory_use(n, &held, NULL);
  if (held <= limit)
    return CREMA_OK;
  return crema_fail(err, CREMA_ERR_NOMEM,
                    "net '%s': its blobs take %zu bytes, over the memory limit of %zu bytes",
                    n->name ? n->name : "", held, limit);
}

crema_status net_create(const Caffe__NetParameter *param, const net_options *opts, net **out,
                        crema_error *err) {
  net_options defaults;
  if (!opts) {
    net_options_init(&defaults, CAFFE__PHASE__TEST);
    opts = &defaults;
  }
  *out = NULL;
  net *n = crema_calloc(1, sizeof *n, err);
  if (!n)
    return CREMA_ERR_NOMEM;
  rng_seed(&n->ctx.rng, opts->seed);
  crema_status st = prepare_param(n, param, opts, err);
  /* Inference keeps no diffs and lets dead activations share storage. */
  int infer = opts->phase == CAFFE__PHASE__TEST && !opts->backward && !opts->keep_all &&
              !opts->observable && !n->force_backward;
  n->backward_enabled = !(opts->phase == CAFFE__PHASE__TEST && !opts->backward &&
                          !opts->observable && !n->force_backward);
  n->ctx.no_param_diffs = !n->backward_enabled;
  n->ctx.weights_follow = opts->weights_follow;
  n->ctx.shard_rank = opts->shard_rank;
  n->ctx.shard_count = opts->shard_count;
  n->ctx.opts = opts->run;
  n->ctx.opts.conv_engine = NULL;
  if (st == CREMA_OK && opts->run.conv_engine) {
    n->conv_engine = crema_strdup(opts->run.conv_engine, err);
    st = n->conv_engine ? CREMA_OK : CREMA_ERR_NOMEM;
    n->ctx.opts.conv_engine = n->conv_engine;
  }
  /* Setting up fills and zeroes blobs on the net's own team, under its
   * allocation cap. */
  const options_scope scope = options_enter(&n->ctx.opts);
  if (st == CREMA_OK)
    st = insert_splits(n, err);
  if (st == CREMA_OK)
    st = wire_blobs(n, n->backward_enabled, err);
  if (st == CREMA_OK)
    st = create_layers(n, err);
  if (st == CREMA_OK && infer) {
    const plan_graph g = graph_of(n);
    st = plan_create(&g, &n->plan, err);
  }
  if (st == CREMA_OK)
    st = setup_layers(n, err);
  if (st == CREMA_OK)
    st = prune_backward(n, err);
  if (st == CREMA_OK && !opts->observable)
    fuse_relus(n);
  options_leave(scope);
  if (st == CREMA_OK)
    st = check_memory_limit(n, err);
  if (st != CREMA_OK) {
    net_free(n);
    return st;
  }
  *out = n;
  return CREMA_OK;
}

void net_free(net *n) {
  if (!n)
    return;
  /* Layers first: shared parameter blobs point into their owners. */
  for (int i = 0; i < n->nlayers; i++) {
    if (n->layers)
      layer_free(n->layers[i]);
    if (n->lparam_owned && n->lparam_owned[i])
      protobuf_c_message_free_unpacked(&n->lparams[i]->base, NULL);
    if (n->bottoms)
      free(n->bottoms[i].v);
    if (n->tops)
      free(n->tops[i].v);
    if (n->bottom_ids)
      free(n->bottom_ids[i]);
    if (n->top_ids)
      free(n->top_ids[i]);
    if (n->bottom_need_backward)
      free(n->bottom_need_backward[i]);
    if (n->top_loss_weight)
      free(n->top_loss_weight[i]);
    if (n->param_owner)
      free(n->param_owner[i]);
  }
  for (int b = 0; b < n->nblobs; b++)
    blob_free(n->blobs[b]);
  plan_free(n->plan);
  free(n->layers);
  free(n->lparams);
  free(n->lparam_owned);
  free(n->bottoms);
  free(n->tops);
  free(n->bottom_ids);
  free(n->top_ids);
  free(n->bottom_need_backward);
  free(n->layer_need_backward);
  free(n->top_loss_weight);
  free(n->param_owner);
  free(n->blobs);
  free(n->blob_need_backward);
  free(n->blob_loss_weight);
  free(n->blob_last_use);
  free(n->input_ids);
  free(n->output_ids);
  free(n->learnable);
  free(n->input_shapes);
  free(n->input_shape_axes);
  free(n->ctx.workspace);
  free(n->conv_engine);
  if (n->param)
    protobuf_c_message_free_unpacked(&n->param->base, NULL);
  free(n->name);
  free(n);
}

int net_size_multiple(const net *n) {
  return net_param_size_multiple(n->lparams, (size_t)n->nlayers);
}

/* The image-like blobs a net starts from: its inputs and the tops of
 * layers without bottoms (Data, ImageData, DummyData...). */
static const blob *source_off_multiple(const net *n, int multiple) {
  for (int i = 0; i < n->nlayers; i++) {
    if (n->bottoms[i].n != 0)
      continue;
    for (int j = 0; j < n->tops[i].n; j++) {
      const blob *b = n->tops[i].v[j];
      if (b->num_axes == 4 && (b->shape[2] % multiple || b->shape[3] % multiple))
        return b;
    }
  }
  for (int k = 0; k < n->ninputs; k++) {
    const blob *b = n->blobs[n->input_ids[k]];
    if (b->num_axes == 4 && (b->shape[2] % multiple || b->shape[3] % multiple))
      return b;
  }
  return NULL;
}

void net_explain_size(const net *n, crema_error *err) {
  int multiple = net_size_multiple(n);
  if (multiple <= 1)
    return;
  const blob *b = source_off_multiple(n, multiple);
  if (!b)
    return;
  size_t len = strlen(err->message);
  snprintf(err->message + len, sizeof err->message - len,
           " (the input '%s' is %dx%d; this net's strided layers take sizes that are "
           "multiples of %d)",
           b->name, b->shape[2], b->shape[3], multiple);
}

/* ---- running ------------------------------------------------------------ */

static crema_status reshape_all(net *n, crema_error *err) {
  const plan_graph g = graph_of(n);
  if (n->plan)
    plan_begin(n->plan, &g);
  for (int i = 0; i < n->nlayers; i++)
    CREMA_TRY(reshape_layer(n, i, err));
  if (n->plan)
    plan_finish(n->plan, &g);
  CREMA_TRY(check_memory_limit(n, err));
  return record_input_shapes(n, err);
}

crema_status net_reshape(net *n, crema_error *err) {
  const net_scope scope = scope_enter(n);
  crema_status st = reshape_all(n, err);
  scope_leave(scope);
  return st;
}

static int inputs_changed(const net *n) {
  for (int k = 0; k < n->ninputs; k++) {
    const blob *b = n->blobs[n->input_ids[k]];
    if (b->num_axes != n->input_shape_axes[k] ||
        memcmp(b->shape, n->input_shapes[k], (size_t)b->num_axes * sizeof(int)) != 0)
      return 1;
  }
  return 0;
}


static crema_status forward_layer(net *n, int i, float *loss, crema_error *err) {
  layer *l = n->layers[i];
  CREMA_TRY(l->ops->forward(l, &n->bottoms[i], &n->tops[i], err));
  double sum = 0;
  for (int j = 0; j < n->tops[i].n; j++) {
    float w = n->top_loss_weight[i][j];
    if (w == 0.0f)
      continue;
    const blob *t = n->tops[i].v[j];
    double s = 0;
    for (size_t k = 0; k < t->count; k++)
      s += t->data[k];
    sum += (double)w * s;
  }
  if (loss)
    *loss = (float)sum;
  return CREMA_OK;
}

/* Source layers (Data) shape their tops from the records they read; a
 * record of another size (Caffe allows it for batches of one) changes the
 * shape during forward. */
static int source_tops_same(const net *n, int i, const int *saved) {
  for (int j = 0; j < n->tops[i].n; j++, saved += BLOB_MAX_AXES + 1) {
    const blob *t = n->tops[i].v[j];
    if (t->num_axes != saved[0] ||
        memcmp(t->shape, saved + 1, (size_t)t->num_axes * sizeof(int)) != 0)
      return 0;
  }
  return 1;
}

static crema_status forward_source_layer(net *n, int i, float *loss, crema_error *err) {
  enum { MAX_SAVED = 8 };
  int saved[MAX_SAVED * (BLOB_MAX_AXES + 1)];
  if (n->tops[i].n > MAX_SAVED)
    return forward_layer(n, i, loss, err);
  for (int j = 0; j < n->tops[i].n; j++) {
    const blob *t = n->tops[i].v[j];
    saved[j * (BLOB_MAX_AXES + 1)] = t->num_axes;
    memcpy(saved + j * (BLOB_MAX_AXES + 1) + 1, t->shape, sizeof t->shape);
  }
  CREMA_TRY(forward_layer(n, i, loss, err));
  /* As Caffe, whose every Layer::Forward reshapes first: the layers after
   * this one take the new shape.  Source tops keep their own storage (the
   * memory plan pins them), so re-planning keeps the batch just read. */
  if (!source_tops_same(n, i, saved))
    CREMA_TRY(net_reshape(n, err));
  return CREMA_OK;
}

crema_status net_forward_layer(net *n, int i, float *loss, crema_error *err) {
  const net_scope scope = scope_enter(n);
  crema_status st = forward_layer(n, i, loss, err);
  scope_leave(scope);
  return st;
}

static crema_status forward_all(net *n, float *loss, crema_error *err) {
  if (inputs_changed(n))
    CREMA_TRY(net_reshape(n, err));
  float total = 0;
  for (int i = 0; i < n->nlayers; i++) {
    float li = 0;
    if (n->bottoms[i].n == 0)
      CREMA_TRY(forward_source_layer(n, i, &li, err));
    else
      CREMA_TRY(forward_layer(n, i, &li, err));
    total += li;
  }
  if (loss)
    *loss = total;
  return CREMA_OK;
}

crema_status net_forward(net *n, float *loss, crema_error *err) {
  const net_scope scope = scope_enter(n);
  crema_status st = forward_all(n, loss, err);
  scope_leave(scope);
  return st;
}

static crema_status check_range(const net *n, int first, int last, const char *what,
                                crema_error *err) {
  if (first < 0 || last >= n->nlayers || first > last)
    return crema_fail(err, CREMA_ERR_INVALID,
                      "net '%s': %s range %d..%d is outside its %d layers", n->name, what, first,
                      last, n->nlayers);
  return CREMA_OK;
}

static crema_status forward_range(net *n, int start, int end, float *loss, crema_error *err) {
  CREMA_TRY(check_range(n, start, end, "forward", err));
  if (n->plan)
    return crema_fail(err, CREMA_ERR_INVALID,
                      "net '%s' shares activation storage (built for inference): it cannot run "
                      "a range of layers", n->name);
  float total = 0;
  for (int i = start; i <= end; i++) {
    float li = 0;
    CREMA_TRY(reshape_layer(n, i, err));
    CREMA_TRY(forward_layer(n, i, &li, err));
    total += li;
  }
  if (loss)
    *loss = total;
  return record_input_shapes(n, err);
}

crema_status net_forward_range(net *n, int start, int end, float *loss, crema_error *err) {
  const net_scope scope = scope_enter(n);
  crema_status st = forward_range(n, start, end, loss, err);
  scope_leave(scope);
  return st;
}

void net_seed_loss_diffs(net *n) {
  for (int b = 0; b < n->nblobs; b++) {
    float w = n->blob_loss_weight[b];
    blob *x = n->blobs[b];
    if (w == 0.0f || !x->diff)
      continue;
    for (size_t k = 0; k < x->count; k++)
      x->diff[k] = w;
  }
}

static crema_status backward_layer(net *n, int i, crema_error *err) {
  if (!n->layer_need_backward[i])
    return CREMA_OK;
  layer *l = n->layers[i];
  if (l->ops->backward)
    return l->ops->backward(l, &n->tops[i], n->bottom_need_backward[i], &n->bottoms[i], err);
  /* A layer without gradients (Accuracy, ArgMax) passes none back. */
  for (int j = 0; j < n->bottoms[i].n; j++)
    if (n->bottom_need_backward[i][j])
      blob_zero_diff(n->bottoms[i].v[j]);
  return CREMA_OK;
}

crema_status net_backward_layer(net *n, int i, crema_error *err) {
  const net_scope scope = scope_enter(n);
  crema_status st = backward_layer(n, i, err);
  scope_leave(scope);
  return st;
}

static crema_status backward_layers(net *n, int start, int end, crema_error *err) {
  if (!n->backward_enabled)
    return crema_fail(err, CREMA_ERR_INVALID,
                      "net '%s' was built for inference (TEST phase without backward): it keeps "
                      "no gradients", n->name);
  net_seed_loss_diffs(n);
  const net_scope scope = scope_enter(n);
  crema_status st = CREMA_OK;
  for (int i = start; st == CREMA_OK && i >= end; i--)
    st = backward_layer(n, i, err);
  scope_leave(scope);
  return st;
}

crema_status net_backward(net *n, crema_error *err) {
  return backward_layers(n, n->nlayers - 1, 0, err);
}

crema_status net_backward_range(net *n, int start, int end, crema_error *err) {
  CREMA_TRY(check_range(n, end, start, "backward", err));
  return backward_layers(n, start, end, err);
}

void net_clear_param_diffs(net *n) {
  for (int k = 0; k < n->nlearnable; k++)
    blob_zero_diff(n->learnable[k].b);
}

void net_settle_params(net *n) {
  for (int i = 0; i < n->nlayers; i++)
    for (int j = 0; j < n->layers[i]->nblobs; j++) {
      blob *b = n->layers[i]->blobs[j];
      /* Only the owner of shared storage knows whether it was written. */
      if (b->unset && b->owns_data) {
        par_zero(b->data, b->count * sizeof(float));
        b->unset = 0;
      }
    }
  n->ctx.weights_follow = 0;
}

void net_memory_use(const net *n, size_t *activation_bytes, size_t *unshared_bytes) {
  size_t act = n->plan ? plan_pool_bytes(n->plan) : 0, all = 0;
  for (int b = 0; b < n->nblobs; b++) {
    const blob *x = n->blobs[b];
    all += x->count * sizeof(float) * (x->wants_diff ? 2 : 1);
    if (x->owns_data)
      act += x->data_cap * sizeof(float);
    if (x->owns_diff)
      act += x->diff_cap * sizeof(float);
  }
  if (activation_bytes)
    *activation_bytes = act;
  if (unshared_bytes)
    *unshared_bytes = all;
}
