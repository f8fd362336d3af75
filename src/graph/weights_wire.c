#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/parallel.h"
#include "graph/weights.h"
#include "graph/weights_wire.h"
#include "io/binary.h"
#include "io/file.h"
#include "io/wire.h"

/* Field numbers of caffe.proto. */
enum {
  NET_NAME = 1,
  NET_LAYERS_V1 = 2,
  NET_LAYER = 100,
  LAYER_NAME = 1,
  LAYER_BLOBS = 7,
  V1_V0_LAYER = 1,
  V1_NAME = 4,
  V1_TYPE = 5,
  V1_BLOBS = 6,
  BLOB_NUM = 1,
  BLOB_CHANNELS = 2,
  BLOB_HEIGHT = 3,
  BLOB_WIDTH = 4,
  BLOB_DATA = 5,
  BLOB_DIFF = 6,
  BLOB_SHAPE = 7,
  BLOB_DOUBLE_DATA = 8,
  BLOB_DOUBLE_DIFF = 9,
  SHAPE_DIM = 1
};

/* Bytes copied between releases of the mapping's pages. */
#define RELEASE_STRIDE ((size_t)16 << 20)

typedef struct span {
  const uint8_t *data;
  size_t len;
} span;

typedef struct src_layer {
  span name;
  int has_name;
  size_t first_blob, nblobs;
} src_layer;

typedef struct src_index {
  span net_name;
  src_layer *layers;
  size_t nlayers, layer_cap;
  span *blobs;
  size_t nblobs, blob_cap;
  size_t n_v2, n_v1;
  int has_v0;
} src_index;

typedef struct walk {
  const char *path;
  const file_view *view;
  src_index idx;
} walk;

static crema_status corrupt(const walk *w, const uint8_t *at, crema_error *err) {
  return crema_fail(err, CREMA_ERR_INVALID,
                    "%s: not a valid NetParameter (truncated or corrupt near byte %zu)", w->path,
                    (size_t)(at - w->view->data));
}

static crema_status grow(void **arr, size_t *cap, size_t need, size_t elem, crema_error *err) {
  if (need <= *cap)
    return CREMA_OK;
  size_t ncap = *cap ? *cap * 2 : 64, bytes;
  if (ncap < need)
    ncap = need;
  if (!size_mul(ncap, elem, &bytes))
    return crema_fail(err, CREMA_ERR_NOMEM, "too many layers or blobs in the weights");
  void *p = realloc(*arr, bytes);
  if (!p)
    return crema_fail(err, CREMA_ERR_NOMEM, "out of memory indexing the weights");
  *arr = p;
  *cap = ncap;
  return CREMA_OK;
}

static const char *v1_type_known(uint64_t v) {
  if (v > INT32_MAX)
    return NULL;
  const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(
      &caffe__v1_layer_parameter__layer_type__descriptor, (int)v);
  return ev ? ev->name : NULL;
}

/* One `layer` (V2) or `layers` (V1) entry: its name and blob spans. */
static crema_status index_layer(walk *w, const wire_field *lf, int v1, crema_error *err) {
  src_index *x = &w->idx;
  CREMA_TRY(grow((void **)&x->layers, &x->layer_cap, x->nlayers + 1, sizeof *x->layers, err));
  src_layer *sl = &x->layers[x->nlayers];
  memset(sl, 0, sizeof *sl);
  sl->first_blob = x->nblobs;
  const uint32_t name_no = v1 ? V1_NAME : LAYER_NAME, blobs_no = v1 ? V1_BLOBS : LAYER_BLOBS;
  int has_type = 0;
  uint64_t type = 0;
  wire_reader r = wire_reader_of(lf->data, lf->len);
  wire_field f;
  wire_result res;
  while ((res = wire_next(&r, &f)) == WIRE_FIELD) {
    if (f.number == name_no || f.number == blobs_no || (v1 && f.number == V1_V0_LAYER)) {
      if (f.type != WIRE_LEN)
        return corrupt(w, f.data ? f.data : r.p, err);
    }
    if (f.number == name_no) {
      sl->name.data = f.data;
      sl->name.len = f.len;
      sl->has_name = 1;
    } else if (f.number == blobs_no) {
      CREMA_TRY(grow((void **)&x->blobs, &x->blob_cap, x->nblobs + 1, sizeof *x->blobs, err));
      x->blobs[x->nblobs].data = f.data;
      x->blobs[x->nblobs].len = f.len;
      x->nblobs++;
      sl->nblobs++;
    } else if (v1 && f.number == V1_V0_LAYER) {
      x->has_v0 = 1;
    } else if (v1 && f.number == V1_TYPE) {
      if (f.type != WIRE_VARINT)
        return corrupt(w, r.p, err);
      has_type = 1;
      type = f.varint;
    }
  }
  if (res == WIRE_MALFORMED)
    return corrupt(w, r.p, err);
  x->nlayers++;
  if (v1 && has_type && !v1_type_known(type)) {
    char name[128];
    snprintf(name, sizeof name, "%.*s", (int)(sl->has_name ? sl->name.len : 0),
             sl->has_name ? (const char *)sl->name.data : "");
    return crema_fail(err, CREMA_ERR_INVALID,
                      "%s: layer '%s' (layers #%zu): unknown V1 layer type %d", w->path,
                      sl->has_name ? name : "(unnamed)", x->n_v1, (int)(int64_t)type);
  }
  return CREMA_OK;
}

static crema_status index_net(walk *w, crema_error *err) {
  wire_reader r = wire_reader_of(w->view->data, w->view->size);
  wire_field f;
  wire_result res;
  while ((res = wire_next(&r, &f)) == WIRE_FIELD) {
    int v1 = f.number == NET_LAYERS_V1;
    if (f.number != NET_NAME && f.number != NET_LAYER && !v1)
      continue;
    if (f.type != WIRE_LEN)
      return corrupt(w, r.p, err);
    if (f.number == NET_NAME) {
      w->idx.net_name.data = f.data;
      w->idx.net_name.len = f.len;
      continue;
    }
    CREMA_TRY(index_layer(w, &f, v1, err));
    if (v1)
      w->idx.n_v1++;
    else
      w->idx.n_v2++;
  }
  if (res == WIRE_MALFORMED)
    return corrupt(w, r.p, err);
  return CREMA_OK;
}

/* ---- one BlobProto -------------------------------------------------------- */

/* What net_copy_trained_layers checks, read without the values. */
typedef struct blob_header {
  Caffe__BlobProto bp;
  Caffe__BlobShape shape;
  int64_t dims[BLOB_MAX_AXES + 1];
} blob_header;

/* Axes past BLOB_MAX_AXES + 1 are dropped: such a shape cannot match a
 * blob, and the message shows the first ones. */
static void add_dim(blob_header *h, uint64_t v) {
  if (h->shape.n_dim < (size_t)BLOB_MAX_AXES + 1)
    h->dims[h->shape.n_dim++] = (int64_t)v;
}

static int read_shape(blob_header *h, const wire_field *sf) {
  wire_reader r = wire_reader_of(sf->data, sf->len);
  wire_field f;
  wire_result res;
  while ((res = wire_next(&r, &f)) == WIRE_FIELD) {
    if (f.number != SHAPE_DIM)
      continue;
    if (f.type == WIRE_VARINT) {
      add_dim(h, f.varint);
    } else if (f.type == WIRE_LEN) {
      const uint8_t *p = f.data, *end = f.data + f.len;
      while (p < end) {
        uint64_t v;
        if (!wire_read_varint(&p, end, &v))
          return 0;
        add_dim(h, v);
      }
    } else {
      return 0;
    }
  }
  return res != WIRE_MALFORMED;
}

/* Counts values of a float (elem 4) or double (elem 8) repeated field. */
static int count_values(const wire_field *f, size_t elem, size_t *n) {
  wire_type single = elem == 4 ? WIRE_FIXED32 : WIRE_FIXED64;
  if (f->type == single) {
    (*n)++;
    return 1;
  }
  if (f->type != WIRE_LEN || f->len % elem != 0)
    return 0;
  *n += f->len / elem;
  return 1;
}

static int set_legacy(int *has, int32_t *dst, const wire_field *f) {
  if (f->type != WIRE_VARINT)
    return 0;
  *has = 1;
  *dst = (int32_t)(uint32_t)f->varint;
  return 1;
}

static int read_header(blob_header *h, span s) {
  memset(h, 0, sizeof *h);
  caffe__blob_proto__init(&h->bp);
  caffe__blob_shape__init(&h->shape);
  h->shape.dim = h->dims;
  int has_shape = 0;
  wire_reader r = wire_reader_of(s.data, s.len);
  wire_field f;
  wire_result res;
  int ok = 1;
  while (ok && (res = wire_next(&r, &f)) == WIRE_FIELD) {
    Caffe__BlobProto *bp = &h->bp;
    switch (f.number) {
    case BLOB_NUM: ok = set_legacy(&bp->has_num, &bp->num, &f); break;
    case BLOB_CHANNELS: ok = set_legacy(&bp->has_channels, &bp->channels, &f); break;
    case BLOB_HEIGHT: ok = set_legacy(&bp->has_height, &bp->height, &f); break;
    case BLOB_WIDTH: ok = set_legacy(&bp->has_width, &bp->width, &f); break;
    case BLOB_DATA: ok = count_values(&f, 4, &bp->n_data); break;
    case BLOB_DIFF: ok = count_values(&f, 4, &bp->n_diff); break;
    case BLOB_DOUBLE_DATA: ok = count_values(&f, 8, &bp->n_double_data); break;
    case BLOB_DOUBLE_DIFF: ok = count_values(&f, 8, &bp->n_double_diff); break;
    case BLOB_SHAPE:
      ok = f.type == WIRE_LEN && read_shape(h, &f);
      has_shape = 1;
      break;
    default: break;
    }
  }
  if (!ok || res == WIRE_MALFORMED)
    return 0;
  if (has_shape)
    h->bp.shape = &h->shape;
  return 1;
}

/* One chunk of a field's values, copied by the team in parts. */
typedef struct chunk_job {
  const uint8_t *src;
  size_t len, elem;
  float *dst;
} chunk_job;

static void copy_values(float *dst, const uint8_t *src, size_t n, size_t elem) {
  if (elem == 4)
    wire_copy_floats(dst, src, n);
  else
    wire_copy_doubles_to_floats(dst, src, n);
}

static void chunk_range(long lo, long hi, void *ctx) {
  const chunk_job *j = ctx;
  const size_t n = (size_t)(hi - lo);
  mem_prefault(j->src + (size_t)lo * j->elem, n * j->elem, 0);
  mem_prefault(j->dst + lo, n * sizeof(float), 1);
  copy_values(j->dst + lo, j->src + (size_t)lo * j->elem, n, j->elem);
}

/* Copies the values of field `number` (float or double) into dst in order,
 * releasing the mapping's pages behind the copy.  The copy is the first
 * touch of the parameters' pages (layer_make_param leaves them unset), and
 * page faults go nearly twice as fast on two cores: each chunk is copied
 * by the team, then released by this thread alone, so the release never
 * has to reach into another core's TLB. */
static void copy_field_values(const walk *w, span s, uint32_t number, float *dst) {
  const size_t elem = number == BLOB_DOUBLE_DATA || number == BLOB_DOUBLE_DIFF ? 8 : 4;
  wire_reader r = wire_reader_of(s.data, s.len);
  wire_field f;
  while (wire_next(&r, &f) == WIRE_FIELD) {
    if (f.number != number)
      continue;
    for (size_t done = 0; done < f.len;) {
      size_t chunk = f.len - done < RELEASE_STRIDE ? f.len - done : RELEASE_STRIDE;
      chunk_job j = {f.data + done, chunk / elem * elem, elem, dst};
      par_for((long)(chunk / elem), (long)(RELEASE_STRIDE / 2 / elem), chunk_range, &j);
      dst += chunk / elem;
      file_view_release(w->view, (size_t)(f.data + done - w->view->data), chunk);
      done += chunk;
    }
  }
}

static crema_status copy_blob(const walk *w, const layer *l, int j, span s, blob *b,
                              crema_error *err) {
  blob_header h;
  if (!read_header(&h, s))
    return corrupt(w, s.data, err);
  int with_diff = 0;
  CREMA_TRY(weights_check_blob(l, j, &h.bp, b, &with_diff, err));
  copy_field_values(w, s, h.bp.n_double_data > 0 ? BLOB_DOUBLE_DATA : BLOB_DATA, b->data);
  b->unset = 0;
  if (with_diff)
    copy_field_values(w, s, h.bp.n_double_diff > 0 ? BLOB_DOUBLE_DIFF : BLOB_DIFF, b->diff);
  return CREMA_OK;
}

/* ---- the net ----------------------------------------------------------- */

static char *span_string(span s, crema_error *err) {
  char *p = crema_malloc(s.len + 1, err);
  if (p) {
    if (s.len)
      memcpy(p, s.data, s.len);
    p[s.len] = '\0';
  }
  return p;
}

static crema_status copy_layer(const walk *w, net *n, const src_layer *sl, int *matched,
                               crema_error *err) {
  span empty = {(const uint8_t *)"", 0};
  char *name = span_string(sl->has_name ? sl->name : empty, err);
  if (!name)
    return CREMA_ERR_NOMEM;
  int i = net_layer_index(n, name);
  if (i < 0) {
    LOG_INFO("Ignoring source layer %s", name);
    free(name);
    return CREMA_OK;
  }
  free(name);
  layer *l = n->layers[i];
  if (sl->nblobs != (size_t)l->nblobs)
    return layer_fail(l, err, CREMA_ERR_SHAPE,
                      "the weights hold %zu blobs for this layer, the net has %d", sl->nblobs,
                      l->nblobs);
  for (int j = 0; j < l->nblobs; j++)
    CREMA_TRY(copy_blob(w, l, j, w->idx.blobs[sl->first_blob + (size_t)j], l->blobs[j], err));
  (*matched)++;
  return CREMA_OK;
}

static crema_status copy_layers(walk *w, net *n, crema_error *err) {
  int matched = 0;
  for (size_t s = 0; s < w->idx.nlayers; s++) {
    crema_status st = copy_layer(w, n, &w->idx.layers[s], &matched, err);
    if (st != CREMA_OK) {
      crema_error_prefix(err, "%s: ", w->path);
      return st;
    }
  }
  if (!matched && w->idx.nlayers > 0)
    LOG_WARN("no layer of the weights '%.*s' matches a layer of the net '%s'",
             (int)w->idx.net_name.len, (const char *)w->idx.net_name.data, n->name);
  return CREMA_OK;
}

crema_status weights_wire_load(net *n, const char *path, int *handled, crema_error *err) {
  *handled = 1;
  file_view v;
  CREMA_TRY(file_view_open(path, BIN_MAX_FILE_SIZE, &v, err));
  walk w = {.path = path, .view = &v};
  crema_status st = CREMA_OK;
  if (v.size == 0)
    st = crema_fail(err, CREMA_ERR_INVALID, "%s: empty file, expected a binary NetParameter",
                    path);
  if (st == CREMA_OK)
    st = index_net(&w, err);
  if (st == CREMA_OK && w.idx.n_v2 > 0 && w.idx.n_v1 > 0)
    st = crema_fail(err, CREMA_ERR_INVALID,
                    "%s: the net has both 'layer' (current) and 'layers' (legacy V1) entries; "
                    "use one form only",
                    path);
  if (st == CREMA_OK && w.idx.has_v0)
    *handled = 0;
  else if (st == CREMA_OK)
    st = copy_layers(&w, n, err);
  free(w.idx.layers);
  free(w.idx.blobs);
  file_view_close(&v);
  return st;
}
