#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/blob.h"
#include "core/parallel.h"
#include "io/binary.h"
#include "io/blobproto.h"
#include "io/file.h"
#include "io/upgrade.h"
#include "io/weights_source.h"
#include "io/wire.h"

/* Field numbers of caffe.proto, fixed by the format (the wire walk reads
 * them; everything else goes through protobuf-c's descriptors). */
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
  char *name;
  size_t first_blob, nblobs;
} src_layer;

/* A BlobProto without its values: what the matcher checks. */
typedef struct blob_header {
  Caffe__BlobProto bp;
  Caffe__BlobShape shape;
  int64_t dims[BLOB_MAX_AXES + 1];
} blob_header;

struct weights_source {
  const char *path;
  /* From a NetParameter: param (owned when read from a file). */
  const Caffe__NetParameter *param;
  Caffe__NetParameter *owned;
  /* From the wire: the mapped file, its layers and their blobs' spans. */
  file_view view;
  int mapped;
  char *net_name;
  src_layer *layers;
  size_t nlayers, layer_cap;
  span *blobs;
  size_t nblobs, blob_cap;
  size_t n_v2, n_v1;
  int has_v0;
  /* The blob last returned by weights_source_blob. */
  const Caffe__BlobProto *current;
  span current_span;
  blob_header header;
};

/* ---- the wire walk ------------------------------------------------------ */

static crema_status corrupt_at(const weights_source *s, const uint8_t *at, crema_error *err) {
  return crema_fail(err, CREMA_ERR_INVALID,
                    "%s: not a Caffe binary model (truncated or corrupt near byte %zu; text "
                    "weights must be named .prototxt or .pbtxt)",
                    s->path, (size_t)(at - s->view.data));
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

static char *span_string(span s, crema_error *err) {
  char *p = crema_malloc(s.len + 1, err);
  if (p) {
    if (s.len)
      memcpy(p, s.data, s.len);
    p[s.len] = '\0';
  }
  return p;
}

/* One `layer` (V2) or `layers` (V1) entry: its name and blob spans. */
static crema_status index_layer(weights_source *x, const wire_field *lf, int v1,
                                crema_error *err) {
  CREMA_TRY(grow((void **)&x->layers, &x->layer_cap, x->nlayers + 1, sizeof *x->layers, err));
  src_layer *sl = &x->layers[x->nlayers];
  memset(sl, 0, sizeof *sl);
  sl->first_blob = x->nblobs;
  const uint32_t name_no = v1 ? V1_NAME : LAYER_NAME, blobs_no = v1 ? V1_BLOBS : LAYER_BLOBS;
  int has_type = 0;
  uint64_t type = 0;
  span name = {(const uint8_t *)"", 0};
  wire_reader r = wire_reader_of(lf->data, lf->len);
  wire_field f;
  wire_result res;
  while ((res = wire_next(&r, &f)) == WIRE_FIELD) {
    if (f.number == name_no || f.number == blobs_no || (v1 && f.number == V1_V0_LAYER)) {
      if (f.type != WIRE_LEN)
        return corrupt_at(x, f.data ? f.data : r.p, err);
    }
    if (f.number == name_no) {
      name.data = f.data;
      name.len = f.len;
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
        return corrupt_at(x, r.p, err);
      has_type = 1;
      type = f.varint;
    }
  }
  if (res == WIRE_MALFORMED)
    return corrupt_at(x, r.p, err);
  if (!(sl->name = span_string(name, err)))
    return CREMA_ERR_NOMEM;
  x->nlayers++;
  if (v1 && has_type && (type > INT32_MAX || !upgrade_v1_type_name((int)type)))
    return crema_fail(err, CREMA_ERR_INVALID,
                      "%s: layer '%s' (layers #%zu): unknown V1 layer type %d", x->path,
                      *sl->name ? sl->name : "(unnamed)", x->n_v1, (int)(int64_t)type);
  return CREMA_OK;
}

static crema_status index_net(weights_source *x, crema_error *err) {
  wire_reader r = wire_reader_of(x->view.data, x->view.size);
  wire_field f;
  wire_result res;
  span name = {(const uint8_t *)"", 0};
  while ((res = wire_next(&r, &f)) == WIRE_FIELD) {
    int v1 = f.number == NET_LAYERS_V1;
    if (f.number != NET_NAME && f.number != NET_LAYER && !v1)
      continue;
    if (f.type != WIRE_LEN)
      return corrupt_at(x, r.p, err);
    if (f.number == NET_NAME) {
      name.data = f.data;
      name.len = f.len;
      continue;
    }
    CREMA_TRY(index_layer(x, &f, v1, err));
    if (v1)
      x->n_v1++;
    else
      x->n_v2++;
  }
  if (res == WIRE_MALFORMED)
    return corrupt_at(x, r.p, err);
  x->net_name = span_string(name, err);
  return x->net_name ? CREMA_OK : CREMA_ERR_NOMEM;
}

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

static void chunk_range(long lo, long hi, void *ctx) {
  const chunk_job *j = ctx;
  const size_t n = (size_t)(hi - lo);
  const uint8_t *src = j->src + (size_t)lo * j->elem;
  mem_prefault(src, n * j->elem, 0);
  mem_prefault(j->dst + lo, n * sizeof(float), 1);
  if (j->elem == 4)
    wire_copy_floats(j->dst + lo, src, n);
  else
    wire_copy_doubles_to_floats(j->dst + lo, src, n);
}

/* Copies the values of field `number` (float or double) into dst in order,
 * releasing the mapping's pages behind the copy.  The copy is the first
 * touch of the parameters' pages (layer_make_param leaves them unset), and
 * page faults go nearly twice as fast on two cores: each chunk is copied
 * by the team, then released by this thread alone, so the release never
 * has to reach into another core's TLB. */
static void copy_field_values(const weights_source *x, span s, uint32_t number, float *dst) {
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
      file_view_release(&x->view, (size_t)(f.data + done - x->view.data), chunk);
      done += chunk;
    }
  }
}

/* Indexes a mapped binary file; *v0 is set (and nothing indexed is used)
 * for V0 files, whose upgrade renames and drops layers. */
static crema_status open_wire(weights_source *x, int *v0, crema_error *err) {
  CREMA_TRY(file_view_open(x->path, BIN_MAX_FILE_SIZE, &x->view, err));
  x->mapped = 1;
  if (x->view.size == 0)
    return crema_fail(err, CREMA_ERR_INVALID, "%s: empty file, not a Caffe binary model",
                      x->path);
  CREMA_TRY(index_net(x, err));
  if (x->n_v2 > 0 && x->n_v1 > 0)
    return crema_fail(err, CREMA_ERR_INVALID,
                      "%s: the net has both 'layer' (current) and 'layers' (legacy V1) "
                      "entries; use one form only",
                      x->path);
  *v0 = x->has_v0;
  return CREMA_OK;
}

static void free_wire(weights_source *x) {
  for (size_t k = 0; k < x->nlayers; k++)
    free(x->layers[k].name);
  free(x->layers);
  free(x->blobs);
  free(x->net_name);
  x->layers = NULL;
  x->blobs = NULL;
  x->net_name = NULL;
  x->nlayers = x->nblobs = x->layer_cap = x->blob_cap = 0;
  if (x->mapped)
    file_view_close(&x->view);
  x->mapped = 0;
}

/* ---- opening ------------------------------------------------------------ */

crema_status weights_source_open(const char *path, crema_log_level level, weights_source **out,
                                 crema_error *err) {
  *out = NULL;
  weights_source *x = crema_calloc(1, sizeof *x, err);
  if (!x)
    return CREMA_ERR_NOMEM;
  x->path = path;
  crema_status st = CREMA_OK;
  /* Binary whatever the file is called, as Caffe's CopyTrainedLayersFrom,
   * unless the name ends in .prototxt or .pbtxt (text weights, a crema
   * convenience). */
  int wire = !path_is_text_proto(path);
  if (wire) {
    int v0 = 0;
    st = open_wire(x, &v0, err);
    if (st == CREMA_OK && v0) {
      free_wire(x);
      wire = 0;
    }
  }
  if (st == CREMA_OK && !wire) {
    st = net_weights_read(path, level, &x->owned, err);
    x->param = x->owned;
  }
  if (st != CREMA_OK) {
    weights_source_close(x);
    return st;
  }
  *out = x;
  return CREMA_OK;
}

crema_status weights_source_of_param(const Caffe__NetParameter *param, weights_source **out,
                                     crema_error *err) {
  *out = crema_calloc(1, sizeof **out, err);
  if (!*out)
    return CREMA_ERR_NOMEM;
  (*out)->param = param;
  return CREMA_OK;
}

void weights_source_close(weights_source *s) {
  if (!s)
    return;
  free_wire(s);
  if (s->owned)
    protobuf_c_message_free_unpacked(&s->owned->base, NULL);
  free(s);
}

/* ---- reading ------------------------------------------------------------ */

const char *weights_source_path(const weights_source *s) { return s->path; }

const char *weights_source_net_name(const weights_source *s) {
  if (s->param)
    return s->param->name ? s->param->name : "";
  return s->net_name ? s->net_name : "";
}

size_t weights_source_num_layers(const weights_source *s) {
  return s->param ? s->param->n_layer : s->nlayers;
}

const char *weights_source_layer_name(const weights_source *s, size_t k) {
  if (s->param)
    return s->param->layer[k]->name ? s->param->layer[k]->name : "";
  return s->layers[k].name;
}

size_t weights_source_num_blobs(const weights_source *s, size_t k) {
  return s->param ? s->param->layer[k]->n_blobs : s->layers[k].nblobs;
}

crema_status weights_source_blob(weights_source *s, size_t k, size_t j,
                                 const Caffe__BlobProto **header, crema_error *err) {
  if (s->param) {
    s->current = s->param->layer[k]->blobs[j];
  } else {
    s->current_span = s->blobs[s->layers[k].first_blob + j];
    if (!read_header(&s->header, s->current_span))
      return crema_fail(err, CREMA_ERR_INVALID,
                        "%s: not a Caffe binary model (truncated or corrupt near byte %zu)",
                        s->path, (size_t)(s->current_span.data - s->view.data));
    s->current = &s->header.bp;
  }
  *header = s->current;
  return CREMA_OK;
}

void weights_source_copy(weights_source *s, int diff, float *dst) {
  const Caffe__BlobProto *bp = s->current;
  if (s->param) {
    blobproto_values(bp, diff, dst);
    return;
  }
  uint32_t number;
  if (diff)
    number = bp->n_double_diff > 0 ? BLOB_DOUBLE_DIFF : BLOB_DIFF;
  else
    number = bp->n_double_data > 0 ? BLOB_DOUBLE_DATA : BLOB_DATA;
  copy_field_values(s, s->current_span, number, dst);
}
