/* Feature databases as Caffe's extract_features writes them, and their
 * loading for retrieval. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/datum.h"
#include "data/lmdb_source.h"
#include "retrieval/features.h"

/* ---- extraction ----------------------------------------------------------------------------- */

/* One output database being written under a temporary name. */
typedef struct feature_out {
  const blob *b;
  const char *path;
  char *tmp;
  lmdb_writer *w;
  long written;
} feature_out;

/* Removes a directory made by lmdb_writer (its files, then itself). */
static void remove_db_dir(const char *dir) {
  DIR *d = opendir(dir);
  if (d) {
    struct dirent *e;
    while ((e = readdir(d))) {
      if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
        continue;
      char p[PATH_MAX];
      if ((size_t)snprintf(p, sizeof p, "%s/%s", dir, e->d_name) < sizeof p)
        unlink(p);
    }
    closedir(d);
  }
  rmdir(dir);
}

static crema_status out_open(feature_out *o, const net *n, const char *blob_name,
                             const char *path, crema_error *err) {
  memset(o, 0, sizeof *o);
  o->path = path;
  o->b = net_blob_by_name(n, blob_name);
  if (!o->b)
    return crema_fail(err, CREMA_ERR_INVALID, "the net has no blob named '%s'", blob_name);
  if (o->b->num_axes > 4 || o->b->num_axes < 1) {
    char s[128];
    return crema_fail(err, CREMA_ERR_SHAPE,
                      "blob '%s' has shape %s; a Datum holds blobs of 1 to 4 axes", blob_name,
                      blob_shape_string(o->b, s, sizeof s));
  }
  struct stat st;
  if (stat(path, &st) == 0)
    return crema_fail(err, CREMA_ERR_INVALID,
                      "LMDB database '%s' already exists (remove it or choose another name)",
                      path);
  size_t len = strlen(path) + 32;
  if (!(o->tmp = crema_malloc(len, err)))
    return CREMA_ERR_NOMEM;
  snprintf(o->tmp, len, "%s.tmp-%ld", path, (long)getpid());
  return lmdb_writer_create(o->tmp, &o->w, err);
}

static void out_abort(feature_out *o) {
  if (o->w) {
    lmdb_writer_abort(o->w);
    remove_db_dir(o->tmp);
  }
  o->w = NULL;
  free(o->tmp);
  o->tmp = NULL;
}

static crema_status out_finish(feature_out *o, crema_error *err) {
  lmdb_writer *w = o->w;
  o->w = NULL;
  crema_status st = lmdb_writer_finish(w, err);
  if (st == CREMA_OK && rename(o->tmp, o->path) != 0)
    st = crema_fail(err, CREMA_ERR_IO, "cannot rename '%s' to '%s': %s", o->tmp, o->path,
                    strerror(errno));
  if (st != CREMA_OK)
    remove_db_dir(o->tmp);
  free(o->tmp);
  o->tmp = NULL;
  return st;
}

/* The source record of the next sample: its label and key. */
typedef struct source_cursor {
  lmdb_source *src;
  char key[512];
  int label;
} source_cursor;

static crema_status source_read(source_cursor *c, crema_error *err) {
  const void *v;
  size_t vlen;
  lmdb_source_value(c->src, &v, &vlen);
  Caffe__Datum *d;
  crema_status st = datum_parse(v, vlen, &d, err);
  if (st != CREMA_OK) {
    char k[256];
    crema_error_prefix(err, "%s: record '%s': ", lmdb_source_path(c->src),
                       lmdb_source_key_string(c->src, k, sizeof k));
    return st;
  }
  c->label = d->label;
  protobuf_c_message_free_unpacked(&d->base, NULL);
  lmdb_source_key_string(c->src, c->key, sizeof c->key);
  return CREMA_OK;
}

/* Writes sample i of a batch as record `index`. */
static crema_status out_put(feature_out *o, int i, long index, const source_cursor *c,
                            crema_error *err) {
  const blob *b = o->b;
  const size_t num = (size_t)b->shape[0], dim = num ? b->count / num : 0;
  Caffe__Datum d = CAFFE__DATUM__INIT;
  d.has_channels = d.has_height = d.has_width = 1;
  d.channels = blob_legacy_dim(b, 1);
  d.height = blob_legacy_dim(b, 2);
  d.width = blob_legacy_dim(b, 3);
  d.n_float_data = dim;
  d.float_data = b->data + (size_t)i * dim;
  if (c) {
    d.has_label = 1;
    d.label = c->label;
  }
  char key[600];
  if (c)
    snprintf(key, sizeof key, "%010ld_%s", index, c->key);
  else
    snprintf(key, sizeof key, "%010ld", index);
  unsigned char *buf;
  size_t len;
  CREMA_TRY(datum_pack(&d, &buf, &len, err));
  crema_status st = lmdb_writer_put(o->w, key, strlen(key), buf, len, err);
  free(buf);
  if (st == CREMA_OK)
    o->written++;
  return st;
}

static crema_status check_batch(const feature_out *outs, int nout, crema_error *err) {
  for (int j = 1; j < nout; j++)
    if (outs[j].b->shape[0] != outs[0].b->shape[0])
      return crema_fail(err, CREMA_ERR_SHAPE,
                        "blobs '%s' and '%s' hold %d and %d samples per batch",
                        outs[0].b->name, outs[j].b->name, outs[0].b->shape[0],
                        outs[j].b->shape[0]);
  if (outs[0].b->shape[0] <= 0)
    return crema_fail(err, CREMA_ERR_SHAPE, "blob '%s' holds no sample", outs[0].b->name);
  return CREMA_OK;
}

static crema_status extract_batches(net *n, const features_extract_options *o,
                                    feature_out *outs, source_cursor *c, crema_error *err) {
  long index = 0;
  for (int batch = 0; o->count > 0 || batch < o->batches; batch++) {
    crema_status st = net_forward(n, NULL, err);
    if (st != CREMA_OK) {
      crema_error_prefix(err, "batch %d: ", batch);
      return st;
    }
    CREMA_TRY(check_batch(outs, o->nblobs, err));
    for (int i = 0; i < outs[0].b->shape[0]; i++, index++) {
      if (o->count > 0 && index >= o->count)
        return CREMA_OK;
      if (c) {
        CREMA_TRY(source_read(c, err));
        CREMA_TRY(lmdb_source_next(c->src, NULL, err));
      }
      for (int j = 0; j < o->nblobs; j++)
        CREMA_TRY(out_put(&outs[j], i, index, c, err));
    }
    if (o->count > 0 && index >= o->count)
      return CREMA_OK;
  }
  return CREMA_OK;
}

crema_status features_extract(net *n, const features_extract_options *o, long *written,
                              crema_error *err) {
  if (o->nblobs <= 0)
    return crema_fail(err, CREMA_ERR_INVALID, "no blob to extract");
  if (o->count <= 0 && o->batches <= 0)
    return crema_fail(err, CREMA_ERR_INVALID, "the number of mini-batches must be > 0, got %d",
                      o->batches);
  feature_out *outs = crema_calloc((size_t)o->nblobs, sizeof *outs, err);
  if (!outs)
    return CREMA_ERR_NOMEM;
  source_cursor c = {0};
  crema_status st = CREMA_OK;
  if (o->source)
    st = lmdb_source_open(o->source, &c.src, err);
  for (int j = 0; j < o->nblobs && st == CREMA_OK; j++)
    st = out_open(&outs[j], n, o->blobs[j], o->dbs[j], err);
  if (st == CREMA_OK)
    st = extract_batches(n, o, outs, o->source ? &c : NULL, err);
  for (int j = 0; j < o->nblobs; j++) {
    if (st == CREMA_OK)
      st = out_finish(&outs[j], err);
    else
      out_abort(&outs[j]);
    if (written)
      written[j] = outs[j].written;
  }
  if (c.src)
    lmdb_source_close(c.src);
  free(outs);
  return st;
}

const char *features_net_source(const net *n) {
  for (int i = 0; i < n->nlayers; i++) {
    const Caffe__LayerParameter *p = n->lparams[i];
    if (p->type && !strcmp(p->type, "Data") && p->data_param && p->data_param->source)
      return p->data_param->source;
  }
  return NULL;
}

/* ---- loading -------------------------------------------------------------------------------- */

void feature_set_free(feature_set *s) {
  if (!s)
    return;
  for (size_t i = 0; s->keys && i < s->n; i++)
    free(s->keys[i]);
  free(s->keys);
  free(s->labels);
  free(s->data);
  memset(s, 0, sizeof *s);
}

/* Room for record i (the arrays grow by doubling). */
static crema_status set_reserve(feature_set *s, size_t *cap, size_t i, crema_error *err) {
  if (i < *cap)
    return CREMA_OK;
  size_t ncap = *cap ? *cap * 2 : 256, bytes;
  if (!size_mul(ncap, s->dim, &bytes) || !size_mul(bytes, sizeof(float), &bytes))
    return crema_fail(err, CREMA_ERR_NOMEM, "%zu records of %zu values overflow memory", ncap,
                      s->dim);
  float *data = realloc(s->data, bytes);
  if (data)
    s->data = data;
  char **keys = data ? realloc(s->keys, ncap * sizeof *keys) : NULL;
  if (keys)
    s->keys = keys;
  int *labels = keys ? realloc(s->labels, ncap * sizeof *labels) : NULL;
  if (labels)
    s->labels = labels;
  if (!labels)
    return crema_fail(err, CREMA_ERR_NOMEM, "out of memory for %zu records of %zu values", ncap,
                      s->dim);
  *cap = ncap;
  return CREMA_OK;
}

/* Appends the record's values, checking its size against the first's. */
static crema_status set_add(feature_set *s, size_t *cap, const Caffe__Datum *d,
                            const datum_pixels *px, const char *key, crema_error *err) {
  const size_t dim = (size_t)px->channels * (size_t)px->height * (size_t)px->width;
  if (s->n == 0) {
    if (dim == 0)
      return crema_fail(err, CREMA_ERR_INVALID, "record holds no value");
    s->dim = dim;
    s->channels = px->channels;
    s->height = px->height;
    s->width = px->width;
  } else if (dim != s->dim) {
    return crema_fail(err, CREMA_ERR_INVALID, "record holds %zu values, the first record %zu",
                      dim, s->dim);
  }
  CREMA_TRY(set_reserve(s, cap, s->n, err));
  float *row = s->data + s->n * s->dim;
  for (size_t k = 0; k < dim; k++)
    row[k] = px->floats ? px->floats[k] : (float)px->bytes[k];
  if (!(s->keys[s->n] = crema_strdup(key, err)))
    return CREMA_ERR_NOMEM;
  s->labels[s->n] = d->label;
  s->n++;
  return CREMA_OK;
}

crema_status feature_set_load(const char *path, feature_set *out, crema_error *err) {
  memset(out, 0, sizeof *out);
  lmdb_source *src;
  CREMA_TRY(lmdb_source_open(path, &src, err));
  const size_t total = lmdb_source_count(src);
  size_t cap = 0;
  crema_status st = CREMA_OK;
  for (size_t i = 0; i < total && st == CREMA_OK; i++) {
    const void *v;
    size_t vlen;
    char key[1024];
    lmdb_source_value(src, &v, &vlen);
    lmdb_source_key_string(src, key, sizeof key);
    Caffe__Datum *d = NULL;
    datum_pixels px = {0};
    st = datum_parse(v, vlen, &d, err);
    if (st == CREMA_OK)
      st = datum_pixels_get(d, IMAGE_NATIVE, &px, err);
    if (st == CREMA_OK)
      st = set_add(out, &cap, d, &px, key, err);
    if (st != CREMA_OK)
      crema_error_prefix(err, "%s: record '%s': ", path, key);
    datum_pixels_free(&px);
    if (d)
      protobuf_c_message_free_unpacked(&d->base, NULL);
    if (st == CREMA_OK && i + 1 < total)
      st = lmdb_source_next(src, NULL, err);
  }
  lmdb_source_close(src);
  if (st != CREMA_OK)
    feature_set_free(out);
  return st;
}

const char *feature_key_source(const char *key) {
  size_t i = 0;
  while (i < 10 && key[i] >= '0' && key[i] <= '9')
    i++;
  return i == 10 && key[10] == '_' ? key + 11 : key;
}
