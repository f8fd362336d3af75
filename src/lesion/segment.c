/* Lesion segmentation with a side-output network (see segment.h). */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "crema.h"
#include "graph/api.h"
#include "lesion/files.h"
#include "lesion/imageops.h"
#include "lesion/segment.h"

#define LESION_MAX_SIDE 4096
#define LESION_MAX_SCALE 8.0f

/* Output blobs, in the order of lesion_maps' fields, under the names of
 * models/lesion and the longer ones of nets that name each probability
 * after its score (<score>_prob). */
enum { MAP_FUSE, MAP_BORDER, MAP_LESION, MAP_COUNT };
static const char *const map_blobs[MAP_COUNT][2] = {{"fuse_prob", "fuse_score_prob"},
                                                    {"border_prob", "border_score_prob"},
                                                    {"lesion_prob", "lesion_score_prob"}};

struct lesion_segmenter {
  crema_net *net;
  const char *input;
  const char *outputs[MAP_COUNT]; /* NULL when the net lacks the map */
  lesion_segment_options o;
  int sides[LESION_MAX_SCALES];   /* per scale: the input side */
  int acc_side;                   /* the largest of sides */
  float *acc[MAP_COUNT];          /* averaged maps, acc_side squared */
  float *scratch;                 /* one map resampled to acc_side */
  float *input_data;              /* set after each reshape */
  int current_side;
};

void lesion_segment_options_init(lesion_segment_options *o) {
  memset(o, 0, sizeof *o);
  o->threshold = 0.5f;
  memcpy(o->mean, lesion_vgg_mean, sizeof o->mean);
  o->nmean = 3;
  o->scale = 1.f;
}

crema_status lesion_parse_scales(const char *text, lesion_segment_options *o,
                                 crema_error *err) {
  o->nscales = 0;
  const char *p = text;
  while (*p) {
    if (o->nscales == LESION_MAX_SCALES)
      return crema_fail(err, CREMA_ERR_INVALID, "scales '%s': at most %d", text,
                        LESION_MAX_SCALES);
    char *end;
    double v = strtod(p, &end);
    if (end == p || (*end && *end != ',') || !(v > 0 && v <= LESION_MAX_SCALE))
      return crema_fail(err, CREMA_ERR_INVALID,
                        "scales '%s': expected numbers in (0, %g] separated by commas", text,
                        (double)LESION_MAX_SCALE);
    o->scales[o->nscales++] = (float)v;
    p = *end ? end + 1 : end;
  }
  if (!o->nscales)
    return crema_fail(err, CREMA_ERR_INVALID, "scales: none given");
  return CREMA_OK;
}

/* side * scale rounded to a multiple of m, at least m. */
static int scaled_side(int side, float scale, int m) {
  int s = (int)lrintf((float)side * scale / (float)m) * m;
  return s < m ? m : s;
}

/* The net's input (one, 4 axes, 3 channels) and default size. */
static crema_status find_input(lesion_segmenter *s, int *model_side, crema_error *err) {
  if (crema_net_num_inputs(s->net) != 1)
    return crema_fail(err, CREMA_ERR_INVALID, "the model has %d inputs; expected one image input",
                      crema_net_num_inputs(s->net));
  s->input = crema_net_input_name(s->net, 0);
  int axes, dims[4];
  CREMA_TRY(crema_net_blob_shape(s->net, s->input, &axes, dims, 4, err));
  if (axes != 4 || dims[1] != 3)
    return crema_fail(err, CREMA_ERR_SHAPE, "input '%s' must be N x 3 x H x W", s->input);
  *model_side = dims[2];
  return CREMA_OK;
}

/* The preprocessing the model's definition states: a transform_param on
 * the layer that makes the input (Caffe's Input layer ignores it, so a
 * deploy file may carry the training's mean_value and scale there). */
static crema_status model_transform(lesion_segmenter *s, crema_error *err) {
  const net *n = s->net->n;
  for (int i = 0; i < n->nlayers; i++) {
    const Caffe__LayerParameter *lp = n->lparams[i];
    if (lp->n_bottom != 0 || lp->n_top < 1 || strcmp(lp->top[0], s->input) || !lp->transform_param)
      continue;
    const Caffe__TransformationParameter *t = lp->transform_param;
    if (t->mean_file)
      return crema_fail(err, CREMA_ERR_UNSUPPORTED,
                        "layer '%s': transform_param mean_file; segmentation takes mean_value",
                        lp->name);
    if (t->n_mean_value != 0 && t->n_mean_value != 1 && t->n_mean_value != 3)
      return crema_fail(err, CREMA_ERR_INVALID,
                        "layer '%s': %zu mean_value for a 3-channel input (expected 1 or 3)",
                        lp->name, t->n_mean_value);
    if (t->n_mean_value && !s->o.mean_given) {
      for (size_t c = 0; c < t->n_mean_value; c++)
        s->o.mean[c] = t->mean_value[c];
      s->o.nmean = (int)t->n_mean_value;
    }
    if (t->has_scale)
      s->o.scale = t->scale;
  }
  return CREMA_OK;
}

/* fuse_prob (or the only output), border_prob and lesion_prob if present;
 * other outputs (e.g. per-side probabilities) are computed but not used. */
static crema_status find_outputs(lesion_segmenter *s, crema_error *err) {
  int n = crema_net_num_outputs(s->net);
  for (int i = 0; i < n; i++) {
    const char *name = crema_net_output_name(s->net, i);
    for (int m = 0; m < MAP_COUNT; m++)
      if (!strcmp(name, map_blobs[m][0]) || !strcmp(name, map_blobs[m][1]))
        s->outputs[m] = name;
  }
  if (!s->outputs[MAP_FUSE] && n == 1)
    s->outputs[MAP_FUSE] = crema_net_output_name(s->net, 0);
  if (!s->outputs[MAP_FUSE])
    return crema_fail(err, CREMA_ERR_NOT_FOUND,
                      "the model has no output 'fuse_prob' (nor a single output)");
  return CREMA_OK;
}

static crema_status plan_scales(lesion_segmenter *s, int model_side, crema_error *err) {
  lesion_segment_options *o = &s->o;
  int mult = crema_net_size_multiple(s->net);
  if (mult < 1 || mult > LESION_MAX_SIDE)
    return crema_fail(err, CREMA_ERR_UNSUPPORTED, "the model's strides multiply to %d", mult);
  if (o->size > 0 && o->size % mult)
    return crema_fail(err, CREMA_ERR_INVALID,
                      "size %d: the model takes sizes that are multiples of %d (its pooling and "
                      "strided layers), e.g. %d or %d",
                      o->size, mult, o->size / mult > 0 ? o->size / mult * mult : mult, (o->size / mult + 1) * mult);
  int side = o->size > 0 ? o->size : model_side;
  side = scaled_side(side, 1.f, mult);
  if (side > LESION_MAX_SIDE)
    return crema_fail(err, CREMA_ERR_INVALID, "size %d: at most %d", side, LESION_MAX_SIDE);
  o->size = side;
  if (o->nscales == 0) {
    o->scales[0] = 1.f;
    o->nscales = 1;
  }
  s->acc_side = 0;
  for (int i = 0; i < o->nscales; i++) {
    s->sides[i] = scaled_side(side, o->scales[i], mult);
    if (s->sides[i] > LESION_MAX_SIDE)
      return crema_fail(err, CREMA_ERR_INVALID, "size %d at scale %g exceeds %d", side,
                        (double)o->scales[i], LESION_MAX_SIDE);
    if (s->sides[i] > s->acc_side)
      s->acc_side = s->sides[i];
  }
  size_t n = (size_t)s->acc_side * s->acc_side;
  for (int m = 0; m < MAP_COUNT; m++)
    if (s->outputs[m] && !(s->acc[m] = crema_malloc(n * sizeof(float), err)))
      return CREMA_ERR_NOMEM;
  if (!(s->scratch = crema_malloc(n * sizeof(float), err)))
    return CREMA_ERR_NOMEM;
  return CREMA_OK;
}

crema_status lesion_segmenter_open(const char *model, const char *weights,
                                   const lesion_segment_options *o, lesion_segmenter **out,
                                   crema_error *err) {
  *out = NULL;
  lesion_segmenter *s = crema_calloc(1, sizeof *s, err);
  if (!s)
    return CREMA_ERR_NOMEM;
  s->o = *o;
  int model_side = 0;
  crema_status st = crema_net_open(model, weights, CREMA_TEST, &s->net, err);
  if (st == CREMA_OK)
    st = find_input(s, &model_side, err);
  if (st == CREMA_OK)
    st = model_transform(s, err);
  if (st == CREMA_OK)
    st = find_outputs(s, err);
  if (st == CREMA_OK)
    st = plan_scales(s, model_side, err);
  if (st != CREMA_OK) {
    lesion_segmenter_close(s);
    return st;
  }
  *out = s;
  return CREMA_OK;
}

void lesion_segmenter_close(lesion_segmenter *s) {
  if (!s)
    return;
  crema_net_close(s->net);
  for (int m = 0; m < MAP_COUNT; m++)
    free(s->acc[m]);
  free(s->scratch);
  free(s);
}

int lesion_segmenter_size(const lesion_segmenter *s) { return s->o.size; }

float lesion_segmenter_threshold(const lesion_segmenter *s) { return s->o.threshold; }

crema_status lesion_segment_postprocess(const lesion_segmenter *s, unsigned char *mask,
                                        int width, int height, crema_error *err) {
  if (s->o.keep != LESION_KEEP_ALL)
    CREMA_TRY(lesion_keep_component(mask, width, height, s->o.keep, err));
  if (s->o.fill_holes)
    CREMA_TRY(lesion_fill_holes(mask, width, height, err));
  return CREMA_OK;
}

static crema_status reshape_to(lesion_segmenter *s, int side, crema_error *err) {
  if (s->current_side != side) {
    int dims[4] = {1, 3, side, side};
    CREMA_TRY(crema_net_reshape_input(s->net, s->input, 4, dims, err));
    s->current_side = side;
  }
  size_t count;
  CREMA_TRY(crema_net_blob_data(s->net, s->input, &s->input_data, &count, err));
  if (count != (size_t)3 * side * side)
    return crema_fail(err, CREMA_ERR_SHAPE, "input '%s' did not take the size %d", s->input,
                      side);
  return CREMA_OK;
}

/* Mirrors a side x side float map left-right (flip 1) or upside down
 * (flip 2), in place. */
static void flip_map(float *map, int side, int flip) {
  for (int y = 0; y < (flip == 2 ? side / 2 : side); y++)
    for (int x = 0; x < (flip == 2 ? side : side / 2); x++) {
      size_t a = (size_t)y * side + x;
      size_t b = flip == 2 ? (size_t)(side - 1 - y) * side + x : (size_t)y * side + (side - 1 - x);
      float t = map[a];
      map[a] = map[b];
      map[b] = t;
    }
}

/* The same for an image's rows (flip 2); flip 1 is lesion_flip. */
static void flip_image(image *img, int flip) {
  if (flip == 1) {
    lesion_flip(img);
    return;
  }
  size_t row = (size_t)img->width * img->channels;
  for (int y = 0; y < img->height / 2; y++) {
    unsigned char *a = img->pixels + (size_t)y * row;
    unsigned char *b = img->pixels + (size_t)(img->height - 1 - y) * row;
    for (size_t i = 0; i < row; i++) {
      unsigned char t = a[i];
      a[i] = b[i];
      b[i] = t;
    }
  }
}

/* Adds one output map (side x side), mirrored back by flip, to its running
 * sum at acc_side. */
static crema_status accumulate(lesion_segmenter *s, int m, int side, int flip, int first,
                               crema_error *err) {
  float *map;
  size_t count;
  CREMA_TRY(crema_net_blob_data(s->net, s->outputs[m], &map, &count, err));
  if (count != (size_t)side * side)
    return crema_fail(err, CREMA_ERR_SHAPE,
                      "output '%s' holds %zu values; expected one %dx%d map",
                      s->outputs[m], count, side, side);
  if (flip)
    flip_map(map, side, flip); /* the output is rewritten by the next pass */
  size_t n = (size_t)s->acc_side * s->acc_side;
  const float *src = map;
  if (side != s->acc_side) {
    CREMA_TRY(lesion_map_resize(map, side, side, s->scratch, s->acc_side, s->acc_side, err));
    src = s->scratch;
  }
  if (first)
    memcpy(s->acc[m], src, n * sizeof(float));
  else
    for (size_t i = 0; i < n; i++)
      s->acc[m][i] += src[i];
  return CREMA_OK;
}

/* One pass at scale k on the image mirrored by flip (0: none). */
static crema_status run_pass(lesion_segmenter *s, const image *small, int k, int flip,
                             crema_error *err) {
  int side = s->sides[k];
  crema_status st = reshape_to(s, side, err);
  if (st == CREMA_OK)
    st = image_to_caffe(small, s->o.mean, s->o.nmean, s->o.scale, s->input_data, err);
  if (st == CREMA_OK)
    st = crema_net_forward(s->net, NULL, err);
  for (int m = 0; st == CREMA_OK && m < MAP_COUNT; m++)
    if (s->outputs[m])
      st = accumulate(s, m, side, flip, k == 0 && flip == 0, err);
  return st;
}

static crema_status run_scale(lesion_segmenter *s, const image *img, int k, crema_error *err) {
  int side = s->sides[k];
  image small;
  CREMA_TRY(lesion_resize(img, side, side, &small, err));
  crema_status st = run_pass(s, &small, k, 0, err);
  /* Each flip mirrors the resized image, runs, and is mirrored back
   * (flipping twice restores the image for the next). */
  for (int f = 1; st == CREMA_OK && f <= s->o.flips; f++) {
    flip_image(&small, f);
    st = run_pass(s, &small, k, f, err);
    flip_image(&small, f);
  }
  image_free(&small);
  return st;
}

crema_status lesion_segment_image(lesion_segmenter *s, const image *img, lesion_maps *out,
                                  crema_error *err) {
  if (img->channels != 3)
    return crema_fail(err, CREMA_ERR_INVALID, "segmentation needs a colour image");
  for (int k = 0; k < s->o.nscales; k++)
    CREMA_TRY(run_scale(s, img, k, err));
  size_t n = (size_t)s->acc_side * s->acc_side;
  int passes = s->o.nscales * (1 + s->o.flips);
  float inv = 1.f / (float)passes;
  if (passes > 1)
    for (int m = 0; m < MAP_COUNT; m++)
      for (size_t i = 0; s->acc[m] && i < n; i++)
        s->acc[m][i] *= inv;
  out->side = s->acc_side;
  out->fuse = s->acc[MAP_FUSE];
  out->border = s->acc[MAP_BORDER];
  out->lesion = s->acc[MAP_LESION];
  return CREMA_OK;
}

/* out_dir/<id><suffix> (malloc'd). */
static char *output_path(const char *out_dir, const char *id, const char *suffix,
                         crema_error *err) {
  size_t a = strlen(id), b = strlen(suffix);
  char *name = crema_malloc(a + b + 1, err);
  if (!name)
    return NULL;
  memcpy(name, id, a);
  memcpy(name + a, suffix, b + 1);
  char *path = lesion_path_join(out_dir, name, err);
  free(name);
  return path;
}

static crema_status write_output(const char *out_dir, const char *id, const char *suffix,
                                 const image *img, crema_error *err) {
  char *path = output_path(out_dir, id, suffix, err);
  if (!path)
    return CREMA_ERR_NOMEM;
  crema_status st = image_write_file(path, img, err);
  free(path);
  return st;
}

/* The four outputs of one image, from its maps. */
static crema_status write_outputs(const lesion_segmenter *s, const lesion_maps *maps, image *img,
                                  const char *out_dir, const char *id, crema_error *err) {
  static const unsigned char green[3] = {0, 255, 0};
  image gray;
  CREMA_TRY(image_alloc(&gray, img->width, img->height, 1, err));
  crema_status st =
      lesion_map_to_image(maps->fuse, maps->side, maps->side, s->o.threshold, &gray, err);
  if (st == CREMA_OK)
    st = lesion_segment_postprocess(s, gray.pixels, gray.width, gray.height, err);
  if (st == CREMA_OK)
    st = write_output(out_dir, id, "_segmentation.png", &gray, err);
  int shorter = img->width < img->height ? img->width : img->height;
  int thickness = shorter / 200 > 2 ? shorter / 200 : 2;
  if (st == CREMA_OK)
    st = lesion_draw_contour(img, &gray, thickness, green, err);
  if (st == CREMA_OK)
    st = write_output(out_dir, id, "_overlay.png", img, err);
  const float *extra[2] = {maps->border, maps->lesion};
  const char *suffix[2] = {"_border.png", "_lesion.png"};
  for (int i = 0; st == CREMA_OK && i < 2; i++) {
    if (!extra[i])
      continue;
    st = lesion_map_to_image(extra[i], maps->side, maps->side, -1.f, &gray, err);
    if (st == CREMA_OK)
      st = write_output(out_dir, id, suffix[i], &gray, err);
  }
  image_free(&gray);
  return st;
}

crema_status lesion_segment_file(lesion_segmenter *s, const char *path, const char *out_dir,
                                 crema_error *err) {
  char *id = lesion_image_id(path, err);
  if (!id)
    return CREMA_ERR_NOMEM;
  image img;
  crema_status st = image_read_file(path, IMAGE_COLOR, &img, err);
  if (st != CREMA_OK) {
    free(id);
    return st;
  }
  lesion_maps maps;
  st = lesion_segment_image(s, &img, &maps, err);
  if (st == CREMA_OK)
    st = write_outputs(s, &maps, &img, out_dir, id, err);
  if (st != CREMA_OK)
    crema_error_prefix(err, "%s: ", path);
  image_free(&img);
  free(id);
  return st;
}
