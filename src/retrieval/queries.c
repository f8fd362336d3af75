/* Retrieval queries given as images, run through a net one at a time. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "data/datum.h"
#include "data/transform.h"
#include "graph/net.h"
#include "graph/weights.h"
#include "io/image.h"
#include "io/upgrade.h"
#include "retrieval/queries.h"

/* ---- the net, fed by an Input layer of one image -------------------------------------------- */

static int is_type(const Caffe__LayerParameter *lp, const char *type) {
  return lp->type && !strcmp(lp->type, type);
}

/* The size images are resized to before the transformation: the flags',
 * else the shape of the net's first Input layer (N x C x H x W), else 0 x 0
 * (each image's own).  *channels: the Input's C, or 0. */
static void input_size(const Caffe__NetParameter *p, const image_query_options *o, int *w,
                       int *h, int *channels) {
  *w = *h = *channels = 0;
  for (size_t i = 0; i < p->n_layer; i++) {
    const Caffe__LayerParameter *lp = p->layer[i];
    if (is_type(lp, "Data"))
      break;
    if (is_type(lp, "Input") && lp->input_param && lp->input_param->n_shape > 0 &&
        lp->input_param->shape[0]->n_dim == 4) {
      const int64_t *d = lp->input_param->shape[0]->dim;
      if (d[1] > 0 && d[1] <= 4 && d[2] > 0 && d[2] <= 65536 && d[3] > 0 && d[3] <= 65536) {
        *channels = (int)d[1];
        *h = (int)d[2];
        *w = (int)d[3];
      }
      break;
    }
  }
  if (o->resize_width > 0 && o->resize_height > 0) {
    *w = o->resize_width;
    *h = o->resize_height;
  }
}

static Caffe__BlobShape *new_shape(const int *dims, int n) {
  Caffe__BlobShape *s = malloc(sizeof *s);
  int64_t *d = malloc((size_t)n * sizeof *d);
  if (!s || !d) {
    free(s);
    free(d);
    return NULL;
  }
  caffe__blob_shape__init(s);
  for (int i = 0; i < n; i++)
    d[i] = dims[i];
  s->n_dim = (size_t)n;
  s->dim = d;
  return s;
}

/* Turns a Data or Input layer into an Input layer of one item of the
 * given shape (1 x C x H x W) and one label per other top.  The message's
 * fields are malloc'd as protobuf-c's default allocator does, so that
 * protobuf_c_message_free_unpacked frees them. */
static crema_status make_input(Caffe__LayerParameter *lp, const int item[4], crema_error *err) {
  char *type = malloc(sizeof "Input");
  Caffe__InputParameter *ip = malloc(sizeof *ip);
  Caffe__BlobShape **shapes = calloc(lp->n_top ? lp->n_top : 1, sizeof *shapes);
  int ok = type && ip && shapes;
  const int one = 1;
  for (size_t t = 0; ok && t < lp->n_top; t++)
    ok = (shapes[t] = t == 0 ? new_shape(item, 4) : new_shape(&one, 1)) != NULL;
  if (!ok) {
    for (size_t t = 0; shapes && t < lp->n_top; t++)
      if (shapes[t])
        protobuf_c_message_free_unpacked(&shapes[t]->base, NULL);
    free(shapes);
    free(ip);
    free(type);
    return crema_fail(err, CREMA_ERR_NOMEM, "out of memory for the input layer");
  }
  memcpy(type, "Input", sizeof "Input");
  free(lp->type);
  lp->type = type;
  if (lp->input_param)
    protobuf_c_message_free_unpacked(&lp->input_param->base, NULL);
  caffe__input_parameter__init(ip);
  ip->n_shape = lp->n_top;
  ip->shape = shapes;
  lp->input_param = ip;
  return CREMA_OK;
}

/* Every Data layer and Input layer of the definition becomes an Input
 * layer of one item of the image's size (after its own crop). */
static crema_status make_inputs(Caffe__NetParameter *p, int channels, int height, int width,
                                crema_error *err) {
  for (size_t i = 0; i < p->n_layer; i++) {
    Caffe__LayerParameter *lp = p->layer[i];
    if ((!is_type(lp, "Data") && !is_type(lp, "Input")) || lp->n_top == 0)
      continue;
    const Caffe__TransformationParameter *tp = lp->transform_param;
    const int crop = tp && tp->has_crop_size ? (int)tp->crop_size : 0;
    const int item[4] = {1, channels, crop ? crop : height, crop ? crop : width};
    CREMA_TRY(make_input(lp, item, err));
  }
  return CREMA_OK;
}

/* ---- images --------------------------------------------------------------------------------- */

/* The image as convert-imageset stores it: decoded, resized when w, h > 0. */
static crema_status load_image(const char *path, image_color color, int w, int h, image *out,
                               crema_error *err) {
  image img;
  CREMA_TRY(image_read_file(path, color, &img, err));
  if (w <= 0 || h <= 0 || (img.width == w && img.height == h)) {
    *out = img;
    return CREMA_OK;
  }
  crema_status st = image_resize(&img, w, h, out, err);
  image_free(&img);
  return st;
}

/* What one run holds. */
typedef struct query_run {
  net *n;
  blob *input;       /* the image blob */
  blob_list *tops;   /* the input layer's tops */
  data_transformer t;
  int have_t;
  image_color color;
  int w, h;          /* resize to, or 0 */
  const blob *desc, *heat;
} query_run;

static crema_status open_run(const image_query_options *o, const char *first, query_run *r,
                             crema_error *err) {
  Caffe__NetParameter *p = NULL;
  CREMA_TRY(net_param_read(o->model, o->run.log_level, &p, err));
  int channels;
  input_size(p, o, &r->w, &r->h, &channels);
  r->color = channels == 1 ? IMAGE_GRAY : IMAGE_COLOR;
  for (size_t i = 0; i < p->n_layer; i++) {
    const Caffe__TransformationParameter *tp = p->layer[i]->transform_param;
    if ((is_type(p->layer[i], "Data") || is_type(p->layer[i], "Input")) && tp &&
        tp->force_gray)
      r->color = IMAGE_GRAY;
  }
  image img = {0};
  crema_status st = load_image(first, r->color, r->w, r->h, &img, err);
  if (st == CREMA_OK)
    st = make_inputs(p, img.channels, img.height, img.width, err);
  image_free(&img);
  net_options no;
  net_options_init(&no, CAFFE__PHASE__TEST);
  no.keep_all = 1; /* the blobs read after forward keep their values */
  no.run = o->run;
  const char *stages[1] = {o->stage};
  if (o->stage) {
    no.stages = stages;
    no.nstages = 1;
  }
  /* The net was rewritten (one image in): it opens from memory. */
  if (st == CREMA_OK)
    st = net_open_param(p, o->model, o->weights, &no, &r->n, err);
  protobuf_c_message_free_unpacked(&p->base, NULL);
  CREMA_TRY(st);
  for (int i = 0; i < r->n->nlayers && !r->input; i++)
    if (is_type(r->n->lparams[i], "Input")) {
      r->tops = &r->n->tops[i];
      r->input = r->tops->v[0];
      CREMA_TRY(transformer_init(&r->t, r->n->lparams[i]->transform_param,
                                 CAFFE__PHASE__TEST, err));
      r->have_t = 1;
    }
  if (!r->input)
    return crema_fail(err, CREMA_ERR_INVALID, "%s: the net has no Data or Input layer to feed",
                      o->model);
  if (!(r->desc = net_blob_by_name(r->n, o->blob)))
    return crema_fail(err, CREMA_ERR_INVALID, "%s: the net has no blob named '%s'", o->model,
                      o->blob);
  if (o->heat_blob && !(r->heat = net_blob_by_name(r->n, o->heat_blob)))
    return crema_fail(err, CREMA_ERR_INVALID, "%s: the net has no blob named '%s'", o->model,
                      o->heat_blob);
  return CREMA_OK;
}

static void close_run(query_run *r) {
  if (r->have_t)
    transformer_free(&r->t);
  net_free(r->n);
}

/* Fills the input blob with the transformed image (reshaping the net when
 * its size changed) and the other tops with 0. */
static crema_status feed(query_run *r, const char *path, crema_error *err) {
  image img;
  CREMA_TRY(load_image(path, r->color, r->w, r->h, &img, err));
  Caffe__Datum d = CAFFE__DATUM__INIT;
  datum_pixels px = {0};
  crema_status st = datum_from_image(&img, 0, &d, err);
  image_free(&img);
  if (st == CREMA_OK)
    st = datum_pixels_get(&d, IMAGE_NATIVE, &px, err);
  int shape[4];
  if (st == CREMA_OK)
    st = transformer_item_shape(&r->t, &px, shape, err);
  if (st == CREMA_OK && (r->input->num_axes != 4 || memcmp(r->input->shape, shape, sizeof shape))) {
    st = blob_reshape(r->input, 4, shape, err);
    if (st == CREMA_OK)
      st = net_reshape(r->n, err);
  }
  if (st == CREMA_OK)
    st = transformer_apply(&r->t, &px, r->input->data, err);
  for (int i = 1; st == CREMA_OK && i < r->tops->n; i++)
    memset(r->tops->v[i]->data, 0, r->tops->v[i]->count * sizeof(float));
  datum_pixels_free(&px);
  free(d.data.data);
  if (st != CREMA_OK)
    crema_error_prefix(err, "%s: ", path);
  return st;
}

/* ---- the feature sets ----------------------------------------------------------------------- */

/* Record i of s: the blob's values, key and label; the set is sized from
 * the first record. */
static crema_status set_put(feature_set *s, size_t n, size_t i, const blob *b, const char *key,
                            int label, crema_error *err) {
  if (i == 0) {
    size_t bytes;
    s->dim = b->count;
    s->channels = blob_legacy_dim(b, 1);
    s->height = blob_legacy_dim(b, 2);
    s->width = blob_legacy_dim(b, 3);
    if (!size_mul(n, s->dim, &bytes) || !size_mul(bytes, sizeof(float), &bytes))
      return crema_fail(err, CREMA_ERR_NOMEM, "%zu images x %zu values overflow memory", n,
                        s->dim);
    s->data = crema_malloc(bytes + 1, err);
    s->keys = crema_calloc(n + 1, sizeof *s->keys, err);
    s->labels = crema_calloc(n + 1, sizeof *s->labels, err);
    if (!s->data || !s->keys || !s->labels)
      return CREMA_ERR_NOMEM;
  } else if ((size_t)b->count != s->dim) {
    return crema_fail(err, CREMA_ERR_SHAPE,
                      "blob '%s' holds %zu values for this image, %zu for the first (give "
                      "the images one size, e.g. with --resize-width and --resize-height)",
                      b->name, (size_t)b->count, s->dim);
  }
  memcpy(s->data + i * s->dim, b->data, s->dim * sizeof(float));
  if (!(s->keys[i] = crema_strdup(key, err)))
    return CREMA_ERR_NOMEM;
  s->labels[i] = label;
  s->n = i + 1;
  return CREMA_OK;
}

crema_status image_queries_extract(const image_query_options *o, const char *const *paths,
                                   const char *const *keys, const int *labels, size_t n,
                                   feature_set *out, feature_set *heat, crema_error *err) {
  memset(out, 0, sizeof *out);
  if (heat)
    memset(heat, 0, sizeof *heat);
  if (n == 0)
    return crema_fail(err, CREMA_ERR_INVALID, "no query image");
  query_run r = {0};
  crema_status st = open_run(o, paths[0], &r, err);
  for (size_t i = 0; i < n && st == CREMA_OK; i++) {
    st = feed(&r, paths[i], err);
    if (st == CREMA_OK && (st = net_forward(r.n, NULL, err)) != CREMA_OK)
      crema_error_prefix(err, "%s: ", paths[i]);
    const int label = labels ? labels[i] : 0;
    if (st == CREMA_OK)
      st = set_put(out, n, i, r.desc, keys[i], label, err);
    if (st == CREMA_OK && r.heat && heat)
      st = set_put(heat, n, i, r.heat, keys[i], label, err);
  }
  close_run(&r);
  if (st != CREMA_OK) {
    feature_set_free(out);
    if (heat)
      feature_set_free(heat);
  }
  return st;
}
