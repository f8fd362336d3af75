/* The Data layer (Caffe's DataLayer over LMDB): records in key order,
 * wrapping around, transformed by Caffe's DataTransformer and assembled
 * into batches by a background prefetch thread.  Top 0 is the data, top 1
 * (optional) the labels.
 *
 * In data-parallel training (layer_ctx.shard_count > 1) a TRAIN-phase layer
 * reads only the records i with i % shard_count == shard_rank, i counting
 * on across the wrap-around: the ranks' batches are disjoint, together they
 * are the batch of one process with shard_count times the batch size, and
 * an image and a label layer over databases of one length stay in step. */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "data/datum.h"
#include "data/lmdb_source.h"
#include "data/transform.h"
#include "layers/layer.h"
#include "layers/registry.h"

/* Caffe's default data_param.prefetch; the queue never exceeds this cap. */
#define DATA_MAX_PREFETCH 64

typedef struct data_batch {
  int shape[4];          /* batch x C x H x W */
  float *data;
  size_t data_cap;       /* floats */
  float *label;          /* batch_size floats, when labels are output */
  crema_status status;   /* a failed batch carries its error to forward */
  char message[CREMA_ERROR_MAX];
} data_batch;

typedef struct data_priv {
  lmdb_source *source;
  data_transformer transformer;
  int batch_size;
  int output_labels;
  int stride;            /* records advanced per record read: the shard count */
  int log_level;         /* the net's crema_options.log_level */
  crema_options run;     /* the net's options, for the prefetch thread's scope */
  char *layer_prefix;    /* "layer 'NAME' (Data): " */
  data_batch *slots;
  int nslots;
  unsigned long produced, consumed;
  int stop;
  int thread_running;
  pthread_t thread;
  pthread_mutex_t mutex;
  pthread_cond_t cond;
  int sync_ready;
} data_priv;

/* ---- Reading one record ---------------------------------------------- */

/* Decodes the record under the cursor; errors name the database and key. */
static crema_status read_current(data_priv *p, Caffe__Datum **datum, datum_pixels *px,
                                 crema_error *err) {
  const void *value;
  size_t len;
  lmdb_source_value(p->source, &value, &len);
  *datum = NULL;
  crema_status st = datum_parse(value, len, datum, err);
  if (st == CREMA_OK)
    st = datum_pixels_get(*datum, transformer_color(&p->transformer), px, err);
  if (st != CREMA_OK) {
    char key[256];
    crema_error_prefix(err, "database '%s', key '%s': ", lmdb_source_path(p->source),
                       lmdb_source_key_string(p->source, key, sizeof key));
    if (*datum)
      protobuf_c_message_free_unpacked(&(*datum)->base, NULL);
    *datum = NULL;
  }
  return st;
}

static crema_status fail_at_key(data_priv *p, crema_status st, crema_error *err) {
  char key[256];
  crema_error_prefix(err, "database '%s', key '%s': ", lmdb_source_path(p->source),
                     lmdb_source_key_string(p->source, key, sizeof key));
  return st;
}

static crema_status ensure_batch_storage(data_priv *p, data_batch *b, const int item[4],
                                         crema_error *err) {
  size_t n = (size_t)p->batch_size;
  for (int i = 1; i < 4; i++)
    if (!size_mul(n, (size_t)item[i], &n) || n > INT32_MAX)
      return crema_fail(err, CREMA_ERR_NOMEM, "a batch of %d %dx%dx%d items is too large",
                        p->batch_size, item[1], item[2], item[3]);
  if (n > b->data_cap) {
    float *d = realloc(b->data, n * sizeof(float));
    if (!d)
      return crema_fail(err, CREMA_ERR_NOMEM, "out of memory for a batch of %zu floats", n);
    b->data = d;
    b->data_cap = n;
  }
  b->shape[0] = p->batch_size;
  for (int i = 1; i < 4; i++)
    b->shape[i] = item[i];
  return CREMA_OK;
}

static crema_status skip_records(data_priv *p, int n, crema_error *err) {
  for (int k = 0; k < n; k++) {
    int wrapped;
    CREMA_TRY(lmdb_source_next(p->source, &wrapped, err));
    if (wrapped)
      LOG_INFO_AT(p->log_level, "Restarting data prefetching from start.");
  }
  return CREMA_OK;
}

/* Caffe's load_batch: the first record of each batch sets its shape. */
static crema_status load_batch(data_priv *p, data_batch *b, crema_error *err) {
  size_t item_count = 0;
  for (int i = 0; i < p->batch_size; i++) {
    Caffe__Datum *datum;
    datum_pixels px;
    CREMA_TRY(read_current(p, &datum, &px, err));
    int item[4];
    crema_status st = transformer_item_shape(&p->transformer, &px, item, err);
    if (st == CREMA_OK && i == 0) {
      st = ensure_batch_storage(p, b, item, err);
      item_count = (size_t)item[1] * item[2] * item[3];
    } else if (st == CREMA_OK && (item[1] != b->shape[1] || item[2] != b->shape[2] ||
                                  item[3] != b->shape[3])) {
      st = crema_fail(err, CREMA_ERR_SHAPE,
                      "record gives a %dx%dx%d item, the batch's first record %dx%dx%d",
                      item[1], item[2], item[3], b->shape[1], b->shape[2], b->shape[3]);
    }
    if (st == CREMA_OK)
      st = transformer_apply(&p->transformer, &px, b->data + (size_t)i * item_count, err);
    if (st == CREMA_OK && p->output_labels)
      b->label[i] = (float)px.label;
    datum_pixels_free(&px);
    protobuf_c_message_free_unpacked(&datum->base, NULL);
    if (st != CREMA_OK)
      return fail_at_key(p, st, err);
    CREMA_TRY(skip_records(p, p->stride, err));
  }
  return CREMA_OK;
}

/* ---- The prefetch thread --------------------------------------------- */

static void *prefetch_main(void *arg) {
  data_priv *p = arg;
  /* Records are held to the net's allocation cap here too. */
  options_enter(&p->run);
  pthread_mutex_lock(&p->mutex);
  while (!p->stop) {
    while (!p->stop && p->produced - p->consumed == (unsigned long)p->nslots)
      pthread_cond_wait(&p->cond, &p->mutex);
    if (p->stop)
      break;
    data_batch *b = &p->slots[p->produced % (unsigned long)p->nslots];
    pthread_mutex_unlock(&p->mutex);
    crema_error err = {0};
    b->status = load_batch(p, b, &err);
    if (b->status != CREMA_OK)
      snprintf(b->message, sizeof b->message, "%s%s", p->layer_prefix, err.message);
    pthread_mutex_lock(&p->mutex);
    p->produced++;
    pthread_cond_broadcast(&p->cond);
    if (b->status != CREMA_OK)
      break; /* the failed batch stays at the head of the queue */
  }
  pthread_mutex_unlock(&p->mutex);
  return NULL;
}

static void data_destroy(layer *l) {
  data_priv *p = l->priv;
  if (!p)
    return;
  if (p->thread_running) {
    pthread_mutex_lock(&p->mutex);
    p->stop = 1;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->mutex);
    pthread_join(p->thread, NULL);
  }
  if (p->sync_ready) {
    pthread_mutex_destroy(&p->mutex);
    pthread_cond_destroy(&p->cond);
  }
  for (int i = 0; i < p->nslots; i++) {
    free(p->slots[i].data);
    free(p->slots[i].label);
  }
  free(p->slots);
  lmdb_source_close(p->source);
  transformer_free(&p->transformer);
  free(p->layer_prefix);
  free(p);
  l->priv = NULL;
}

/* ---- Layer operations ------------------------------------------------ */

static crema_status check_data_param(const layer *l, const Caffe__DataParameter *dp,
                                     crema_error *err) {
  if (!dp || !dp->source || !dp->source[0])
    return layer_fail(l, err, CREMA_ERR_INVALID, "data_param.source is not set");
  if (dp->backend != CAFFE__DATA_PARAMETER__DB__LMDB)
    return layer_fail(l, err, CREMA_ERR_UNSUPPORTED,
                      "LEVELDB is not supported (data_param.backend is LEVELDB, Caffe's "
                      "default); convert '%s' to LMDB (e.g. rebuild it with `crema "
                      "convert-imageset --backend=lmdb`) and set backend: LMDB",
                      dp->source);
  if (!dp->has_batch_size || dp->batch_size == 0 || dp->batch_size > INT32_MAX)
    return layer_fail(l, err, CREMA_ERR_INVALID, "data_param.batch_size must be positive");
  return CREMA_OK;
}

static crema_status alloc_slots(layer *l, data_priv *p, int prefetch, crema_error *err) {
  p->nslots = prefetch < 1 ? 1 : prefetch > DATA_MAX_PREFETCH ? DATA_MAX_PREFETCH : prefetch;
  p->slots = crema_calloc((size_t)p->nslots, sizeof *p->slots, err);
  if (!p->slots) {
    p->nslots = 0;
    return layer_fail(l, err, CREMA_ERR_NOMEM, "out of memory for the prefetch queue");
  }
  for (int i = 0; i < p->nslots; i++) {
    if (p->output_labels &&
        !(p->slots[i].label = crema_calloc((size_t)p->batch_size, sizeof(float), err)))
      return layer_fail(l, err, CREMA_ERR_NOMEM, "out of memory for the prefetch queue");
  }
  return CREMA_OK;
}

/* DataLayerSetUp: the first record gives the top shapes. */
static crema_status shape_from_first_record(layer *l, data_priv *p, const blob_list *top,
                                            crema_error *err) {
  Caffe__Datum *datum;
  datum_pixels px;
  crema_status st = read_current(p, &datum, &px, err);
  if (st != CREMA_OK) {
    crema_error_prefix(err, "%s", p->layer_prefix);
    return st;
  }
  int item[4];
  st = transformer_item_shape(&p->transformer, &px, item, err);
  datum_pixels_free(&px);
  protobuf_c_message_free_unpacked(&datum->base, NULL);
  if (st != CREMA_OK) {
    fail_at_key(p, st, err);
    crema_error_prefix(err, "%s", p->layer_prefix);
    return st;
  }
  CREMA_TRY(blob_reshape4(top->v[0], p->batch_size, item[1], item[2], item[3], err));
  LOG_INFO_AT(layer_options(l)->log_level, "output data size: %d,%d,%d,%d", p->batch_size, item[1],
              item[2], item[3]);
  if (p->output_labels) {
    int label_shape[1] = {p->batch_size};
    CREMA_TRY(blob_reshape(top->v[1], 1, label_shape, err));
  }
  return CREMA_OK;
}

/* A rank of data-parallel training starts at record shard_rank (the first
 * record still gave the shapes, the same on every rank). */
static crema_status start_shard(layer *l, data_priv *p, crema_error *err) {
  p->stride = 1;
  p->log_level = layer_options(l)->log_level;
  p->run = *layer_options(l);
  if (!l->ctx || l->ctx->shard_count <= 1 || l->phase != CAFFE__PHASE__TRAIN)
    return CREMA_OK;
  p->stride = l->ctx->shard_count;
  crema_status st = skip_records(p, l->ctx->shard_rank, err);
  if (st != CREMA_OK)
    crema_error_prefix(err, "%s", p->layer_prefix);
  return st;
}

static crema_status data_setup(layer *l, const blob_list *bottom, const blob_list *top,
                               crema_error *err) {
  (void)bottom;
  const Caffe__DataParameter *dp = l->param->data_param;
  CREMA_TRY(check_data_param(l, dp, err));
  data_priv *p = crema_calloc(1, sizeof *p, err);
  if (!p)
    return CREMA_ERR_NOMEM;
  l->priv = p;
  p->batch_size = (int)dp->batch_size;
  p->output_labels = top->n > 1;
  size_t plen = strlen(l->name) + 32;
  if (!(p->layer_prefix = crema_malloc(plen, err)))
    return CREMA_ERR_NOMEM;
  snprintf(p->layer_prefix, plen, "layer '%s' (Data): ", l->name);
  if (dp->rand_skip)
    LOG_WARN_AT(layer_options(l)->log_level, "layer '%s': data_param.rand_skip is ignored, as in Caffe 1.0", l->name);

  crema_status st = transformer_init(&p->transformer, l->param->transform_param, l->phase, err);
  if (st == CREMA_OK)
    st = lmdb_source_open(dp->source, &p->source, err);
  if (st != CREMA_OK) {
    crema_error_prefix(err, "%s", p->layer_prefix);
    return st;
  }
  LOG_INFO_AT(layer_options(l)->log_level, "Opened lmdb %s", dp->source);
  CREMA_TRY(shape_from_first_record(l, p, top, err));
  CREMA_TRY(start_shard(l, p, err));
  CREMA_TRY(alloc_slots(l, p, (int)dp->prefetch, err));
  if (l->ctx)
    transformer_init_rand(&p->transformer, &l->ctx->rng);
  else
    rng_seed(&p->transformer.rng, 0);

  if (pthread_mutex_init(&p->mutex, NULL) != 0)
    return layer_fail(l, err, CREMA_ERR_NOMEM, "cannot create the prefetch mutex");
  if (pthread_cond_init(&p->cond, NULL) != 0) {
    pthread_mutex_destroy(&p->mutex);
    return layer_fail(l, err, CREMA_ERR_NOMEM, "cannot create the prefetch condition");
  }
  p->sync_ready = 1;
  if (pthread_create(&p->thread, NULL, prefetch_main, p) != 0)
    return layer_fail(l, err, CREMA_ERR_NOMEM, "cannot start the prefetch thread");
  p->thread_running = 1;
  return CREMA_OK;
}

static crema_status data_reshape(layer *l, const blob_list *bottom, const blob_list *top,
                                 crema_error *err) {
  (void)l, (void)bottom, (void)top, (void)err;
  return CREMA_OK; /* shapes come from the records, in setup and forward */
}

static crema_status data_forward(layer *l, const blob_list *bottom, const blob_list *top,
                                 crema_error *err) {
  (void)bottom;
  data_priv *p = l->priv;
  pthread_mutex_lock(&p->mutex);
  while (p->produced == p->consumed)
    pthread_cond_wait(&p->cond, &p->mutex);
  data_batch *b = &p->slots[p->consumed % (unsigned long)p->nslots];
  pthread_mutex_unlock(&p->mutex);
  if (b->status != CREMA_OK)
    return crema_fail(err, b->status, "%s", b->message);

  crema_status st = blob_reshape4(top->v[0], b->shape[0], b->shape[1], b->shape[2],
                                  b->shape[3], err);
  if (st == CREMA_OK) {
    memcpy(top->v[0]->data, b->data, top->v[0]->count * sizeof(float));
    if (p->output_labels)
      memcpy(top->v[1]->data, b->label, (size_t)p->batch_size * sizeof(float));
  }
  pthread_mutex_lock(&p->mutex);
  p->consumed++;
  pthread_cond_broadcast(&p->cond);
  pthread_mutex_unlock(&p->mutex);
  return st;
}

const layer_ops data_layer_ops = {
    .type = "Data",
    .min_bottoms = 0,
    .max_bottoms = 0,
    .min_tops = 1,
    .max_tops = 2,
    .setup = data_setup,
    .reshape = data_reshape,
    .forward = data_forward,
    .backward = NULL,
    .destroy = data_destroy,
};
