/* crema lesion-db's library part (see dataset.h). */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/rng.h"
#include "data/datum.h"
#include "data/lmdb_source.h"
#include "io/file.h"
#include "io/image.h"
#include "lesion/dataset.h"
#include "lesion/files.h"
#include "lesion/imageops.h"

/* Scale jitter keeps a square-ish window of this share of each side, at
 * least: copies zoom in by up to 1 / LESION_MIN_CROP. */
#define LESION_MIN_CROP 0.8f
#define LESION_MAX_SIZE 4096

void lesion_db_options_init(lesion_db_options *o) {
  memset(o, 0, sizeof *o);
  o->seed = 1;
  o->border = -1;
}

int lesion_db_default_border(int size) { return size / 64 > 1 ? size / 64 : 1; }

/* One image of the set and where its records go. */
typedef struct pair {
  char *image_path, *mask_path, *id;
  int val;
} pair;

typedef struct pair_list {
  pair *v;
  size_t n;
} pair_list;

static void pair_clear(pair *p) {
  free(p->id);
  free(p->image_path);
  free(p->mask_path);
  memset(p, 0, sizeof *p);
}

static void pairs_free(pair_list *l) {
  for (size_t i = 0; i < l->n; i++)
    pair_clear(&l->v[i]);
  free(l->v);
}

/* The paths and ID of the image file name in images_dir. */
static crema_status describe_pair(const char *images_dir, const char *masks_dir,
                                  const char *name, pair *p, crema_error *err) {
  static const char mask_suffix[] = "_segmentation.png";
  if (!(p->id = lesion_image_id(name, err)) ||
      !(p->image_path = lesion_path_join(images_dir, name, err)))
    return CREMA_ERR_NOMEM;
  size_t len = strlen(p->id);
  char *mask_name = crema_malloc(len + sizeof mask_suffix, err);
  if (!mask_name)
    return CREMA_ERR_NOMEM;
  memcpy(mask_name, p->id, len);
  memcpy(mask_name + len, mask_suffix, sizeof mask_suffix);
  p->mask_path = lesion_path_join(masks_dir, mask_name, err);
  free(mask_name);
  return p->mask_path ? CREMA_OK : CREMA_ERR_NOMEM;
}

/* The images of images_dir that have a mask; those without are logged and
 * counted as failed. */
static crema_status find_pairs(const char *images_dir, const char *masks_dir,
                               crema_log_level level, pair_list *out,
                               size_t *failed, crema_error *err) {
  lesion_names names;
  CREMA_TRY(lesion_list_dir(images_dir, &names, err));
  memset(out, 0, sizeof *out);
  crema_status st = CREMA_OK;
  if (names.n && !(out->v = crema_calloc(names.n, sizeof *out->v, err)))
    st = CREMA_ERR_NOMEM;
  for (size_t i = 0; st == CREMA_OK && i < names.n; i++) {
    const char *name = names.v[i];
    if (!lesion_has_image_extension(name) || lesion_is_companion_name(name))
      continue;
    pair *p = &out->v[out->n++];
    st = describe_pair(images_dir, masks_dir, name, p, err);
    if (st == CREMA_OK && !file_exists(p->mask_path)) {
      LOG_ERROR_AT(level, "%s: no mask %s: image skipped", p->image_path, p->mask_path);
      (*failed)++;
      pair_clear(p);
      out->n--;
    }
  }
  lesion_names_free(&names);
  if (st != CREMA_OK)
    pairs_free(out);
  return st;
}

/* Marks round(fraction * n) images, chosen by a seeded shuffle, for
 * validation; at least one, and one image at least stays for training. */
static size_t choose_validation(pair_list *l, double fraction, crema_rng *rng, crema_error *err,
                                crema_status *st) {
  *st = CREMA_OK;
  if (fraction <= 0 || l->n < 2)
    return 0;
  size_t nval = (size_t)llround(fraction * (double)l->n);
  if (nval < 1)
    nval = 1;
  if (nval > l->n - 1)
    nval = l->n - 1;
  size_t *order = crema_malloc(l->n * sizeof *order, err);
  if (!order) {
    *st = CREMA_ERR_NOMEM;
    return 0;
  }
  for (size_t i = 0; i < l->n; i++)
    order[i] = i;
  for (size_t i = l->n; i > 1; i--) {
    size_t j = rng_below(rng, (uint32_t)i);
    size_t t = order[i - 1];
    order[i - 1] = order[j];
    order[j] = t;
  }
  for (size_t i = 0; i < nval; i++)
    l->v[order[i]].val = 1;
  free(order);
  return nval;
}

/* A random permutation of 0..n-1 (the training records' key numbers). */
static size_t *permutation(size_t n, crema_rng *rng, crema_error *err) {
  size_t *p = crema_malloc((n ? n : 1) * sizeof *p, err);
  if (!p)
    return NULL;
  for (size_t i = 0; i < n; i++)
    p[i] = i;
  for (size_t i = n; i > 1; i--) {
    size_t j = rng_below(rng, (uint32_t)i);
    size_t t = p[i - 1];
    p[i - 1] = p[j];
    p[j] = t;
  }
  return p;
}

/* How one record is derived from its source image. */
typedef struct augmentation {
  int crop_x, crop_y, crop_w, crop_h;
  int flip, quarter_turns;
} augmentation;

static augmentation draw_augmentation(int copy, int width, int height, crema_rng *rng) {
  augmentation a = {0, 0, width, height, 0, 0};
  if (copy == 0)
    return a;
  float s = rng_uniform(rng, LESION_MIN_CROP, 1.0f);
  a.crop_w = (int)lrintf(s * (float)width);
  a.crop_h = (int)lrintf(s * (float)height);
  if (a.crop_w < 1)
    a.crop_w = 1;
  if (a.crop_h < 1)
    a.crop_h = 1;
  a.crop_x = (int)rng_below(rng, (uint32_t)(width - a.crop_w + 1));
  a.crop_y = (int)rng_below(rng, (uint32_t)(height - a.crop_h + 1));
  a.flip = (int)rng_below(rng, 2);
  a.quarter_turns = (int)rng_below(rng, 4);
  return a;
}

/* Crop, resize to size x size, flip and rotate one image. */
static crema_status apply_augmentation(const image *src, const augmentation *a, int size,
                                       image *out, crema_error *err) {
  image cropped = {0};
  const image *from = src;
  if (a->crop_w != src->width || a->crop_h != src->height) {
    CREMA_TRY(lesion_crop(src, a->crop_x, a->crop_y, a->crop_w, a->crop_h, &cropped, err));
    from = &cropped;
  }
  crema_status st = lesion_resize(from, size, size, out, err);
  image_free(&cropped);
  if (st != CREMA_OK)
    return st;
  if (a->flip)
    lesion_flip(out);
  if ((st = lesion_rotate90(out, a->quarter_turns, err)) != CREMA_OK)
    image_free(out);
  return st;
}

/* The 2-channel label record: mask plane, then border band plane. */
static crema_status pack_label(const image *mask01, int border, unsigned char **out,
                               size_t *len, crema_error *err) {
  size_t plane = (size_t)mask01->width * mask01->height;
  unsigned char *bytes = crema_malloc(2 * plane, err);
  if (!bytes)
    return CREMA_ERR_NOMEM;
  memcpy(bytes, mask01->pixels, plane);
  crema_status st = lesion_border_band(mask01->pixels, mask01->width, mask01->height, border,
                                       bytes + plane, err);
  if (st == CREMA_OK) {
    Caffe__Datum d;
    caffe__datum__init(&d);
    d.has_channels = d.has_height = d.has_width = d.has_data = d.has_label = 1;
    d.channels = 2;
    d.height = mask01->height;
    d.width = mask01->width;
    d.data.data = bytes;
    d.data.len = 2 * plane;
    d.label = 0;
    st = datum_pack(&d, out, len, err);
  }
  free(bytes);
  return st;
}

static crema_status pack_image(const image *img, unsigned char **out, size_t *len,
                               crema_error *err) {
  Caffe__Datum d;
  caffe__datum__init(&d);
  CREMA_TRY(datum_from_image(img, 0, &d, err));
  crema_status st = datum_pack(&d, out, len, err);
  free(d.data.data);
  return st;
}

typedef struct db_pair {
  lmdb_writer *images, *labels;
} db_pair;

/* Writes one record to both databases under the same key. */
static crema_status put_record(db_pair *db, const char *key, const image *img,
                               const image *mask01, int border, crema_error *err) {
  unsigned char *iv = NULL, *lv = NULL;
  size_t ilen = 0, llen = 0;
  crema_status st = pack_image(img, &iv, &ilen, err);
  if (st == CREMA_OK)
    st = pack_label(mask01, border, &lv, &llen, err);
  if (st == CREMA_OK)
    st = lmdb_writer_put(db->images, key, strlen(key), iv, ilen, err);
  if (st == CREMA_OK)
    st = lmdb_writer_put(db->labels, key, strlen(key), lv, llen, err);
  free(iv);
  free(lv);
  return st;
}

/* Reads an image and its mask (binarised to 0/255), which must have the
 * same size.  Failures here concern the one pair only. */
static crema_status read_pair(const pair *p, image *img, image *mask, crema_error *err) {
  CREMA_TRY(image_read_file(p->image_path, IMAGE_COLOR, img, err));
  crema_status st = image_read_file(p->mask_path, IMAGE_GRAY, mask, err);
  if (st == CREMA_OK && (mask->width != img->width || mask->height != img->height))
    st = crema_fail(err, CREMA_ERR_SHAPE, "%s is %dx%d but its image %s is %dx%d",
                    p->mask_path, mask->width, mask->height, p->image_path, img->width,
                    img->height);
  if (st != CREMA_OK) {
    image_free(img);
    image_free(mask);
    return st;
  }
  size_t n = (size_t)mask->width * mask->height;
  for (size_t i = 0; i < n; i++)
    mask->pixels[i] = mask->pixels[i] >= 128 ? 255 : 0;
  return CREMA_OK;
}

/* Set while building: the writers and counters. */
typedef struct build {
  const lesion_db_options *o;
  int border;
  db_pair train, val;
  size_t *keys;          /* per training record slot: its key number */
  size_t train_slot;     /* next training slot */
  size_t val_index;
  crema_rng rng;
  lesion_db_report *report;
} build;

/* All records of one pair: the original, then the augmented copies for
 * training images.  A pair that cannot be read is reported by the caller;
 * database errors are returned with fatal set. */
static crema_status add_pair(build *b, const pair *p, int *fatal, crema_error *err) {
  *fatal = 0;
  image img, mask;
  CREMA_TRY(read_pair(p, &img, &mask, err));
  int copies = p->val ? 1 : 1 + b->o->augment;
  crema_status st = CREMA_OK;
  for (int c = 0; st == CREMA_OK && c < copies; c++) {
    augmentation a = draw_augmentation(c, img.width, img.height, &b->rng);
    image rimg = {0}, rmask = {0};
    st = apply_augmentation(&img, &a, b->o->size, &rimg, err);
    if (st == CREMA_OK)
      st = apply_augmentation(&mask, &a, b->o->size, &rmask, err);
    if (st == CREMA_OK) {
      lesion_binarize(&rmask);
      char key[64 + 32];
      size_t number = p->val ? b->val_index++ : b->keys[b->train_slot + (size_t)c];
      if (c)
        snprintf(key, sizeof key, "%08zu_%.63s_a%d", number, p->id, c);
      else
        snprintf(key, sizeof key, "%08zu_%.63s", number, p->id);
      st = put_record(p->val ? &b->val : &b->train, key, &rimg, &rmask, b->border, err);
      if (st != CREMA_OK)
        *fatal = 1;
      else if (p->val)
        b->report->val_records++;
      else
        b->report->train_records++;
    }
    image_free(&rimg);
    image_free(&rmask);
  }
  if (!p->val)
    b->train_slot += (size_t)(1 + b->o->augment);
  image_free(&img);
  image_free(&mask);
  return st;
}

static crema_status open_pair(const char *out_dir, const char *prefix, db_pair *db,
                              crema_error *err) {
  char name[64];
  snprintf(name, sizeof name, "%simages_lmdb", prefix);
  char *ipath = lesion_path_join(out_dir, name, err);
  snprintf(name, sizeof name, "%slabels_lmdb", prefix);
  char *lpath = ipath ? lesion_path_join(out_dir, name, err) : NULL;
  crema_status st = lpath ? CREMA_OK : CREMA_ERR_NOMEM;
  if (st == CREMA_OK)
    st = lmdb_writer_create(ipath, &db->images, err);
  if (st == CREMA_OK && (st = lmdb_writer_create(lpath, &db->labels, err)) != CREMA_OK) {
    lmdb_writer_abort(db->images);
    db->images = NULL;
  }
  free(ipath);
  free(lpath);
  return st;
}

static crema_status finish_pair(db_pair *db, crema_status st, crema_error *err) {
  if (!db->images)
    return st;
  if (st != CREMA_OK) {
    lmdb_writer_abort(db->images);
    lmdb_writer_abort(db->labels);
  } else {
    st = lmdb_writer_finish(db->images, err);
    crema_status st2 = lmdb_writer_finish(db->labels, err);
    if (st == CREMA_OK)
      st = st2;
  }
  db->images = db->labels = NULL;
  return st;
}

/* out_dir/train.txt and val.txt: the IDs of each part, one a line. */
static crema_status write_id_lists(const char *out_dir, const pair_list *l,
                                   const unsigned char *ok, crema_error *err) {
  for (int val = 0; val < 2; val++) {
    size_t len = 1;
    for (size_t i = 0; i < l->n; i++)
      if (ok[i] && l->v[i].val == val)
        len += strlen(l->v[i].id) + 1;
    char *text = crema_malloc(len, err);
    if (!text)
      return CREMA_ERR_NOMEM;
    size_t pos = 0;
    for (size_t i = 0; i < l->n; i++)
      if (ok[i] && l->v[i].val == val) {
        size_t m = strlen(l->v[i].id);
        memcpy(text + pos, l->v[i].id, m);
        text[pos + m] = '\n';
        pos += m + 1;
      }
    char *path = lesion_path_join(out_dir, val ? "val.txt" : "train.txt", err);
    crema_status st = path ? file_write_atomic(path, text, pos, err) : CREMA_ERR_NOMEM;
    free(path);
    free(text);
    CREMA_TRY(st);
  }
  return CREMA_OK;
}

static crema_status check_options(const lesion_db_options *o, crema_error *err) {
  if (o->size < 16 || o->size > LESION_MAX_SIZE)
    return crema_fail(err, CREMA_ERR_INVALID, "size %d: expected 16..%d", o->size,
                      LESION_MAX_SIZE);
  if (!(o->val_fraction >= 0 && o->val_fraction < 1))
    return crema_fail(err, CREMA_ERR_INVALID, "validation fraction %g: expected 0 <= F < 1",
                      o->val_fraction);
  if (o->augment < 0 || o->augment > 1000)
    return crema_fail(err, CREMA_ERR_INVALID, "augment %d: expected 0..1000", o->augment);
  if (o->border > o->size)
    return crema_fail(err, CREMA_ERR_INVALID, "border %d wider than the size %d", o->border,
                      o->size);
  return CREMA_OK;
}

/* Processes every pair; the databases are open. */
static crema_status add_all(build *b, const pair_list *pairs, unsigned char *ok,
                            crema_error *err) {
  for (size_t i = 0; i < pairs->n; i++) {
    int fatal;
    crema_status st = add_pair(b, &pairs->v[i], &fatal, err);
    if (st == CREMA_OK) {
      ok[i] = 1;
      if (pairs->v[i].val)
        b->report->val_images++;
      else
        b->report->train_images++;
    } else if (fatal) {
      return st;
    } else {
      LOG_ERROR_AT(b->o->log_level, "%s: %s: image skipped", pairs->v[i].image_path, err->message);
      b->report->failed++;
      crema_error_clear(err);
    }
    if (b->o->progress)
      b->o->progress(b->o->progress_ctx, i + 1, pairs->n);
  }
  if (!b->report->train_images)
    return crema_fail(err, CREMA_ERR_INVALID, "no usable image/mask pair for training");
  return CREMA_OK;
}

crema_status lesion_db_build(const char *images_dir, const char *out_dir,
                             const lesion_db_options *o, lesion_db_report *report,
                             crema_error *err) {
  memset(report, 0, sizeof *report);
  CREMA_TRY(check_options(o, err));
  build b;
  memset(&b, 0, sizeof b);
  b.o = o;
  b.report = report;
  b.border = o->border >= 0 ? o->border : lesion_db_default_border(o->size);
  report->border = b.border;
  rng_seed(&b.rng, o->seed);

  pair_list pairs;
  CREMA_TRY(find_pairs(images_dir, o->masks_dir ? o->masks_dir : images_dir, o->log_level, &pairs,
                       &report->failed, err));
  report->pairs = pairs.n;
  crema_status st = CREMA_OK;
  if (!pairs.n)
    st = crema_fail(err, CREMA_ERR_NOT_FOUND,
                    "no image with a mask (ID.jpg/.png beside ID_segmentation.png) in '%s'",
                    images_dir);
  size_t nval = st == CREMA_OK ? choose_validation(&pairs, o->val_fraction, &b.rng, err, &st) : 0;
  size_t ntrain_records = 0;
  if (st == CREMA_OK && !size_mul(pairs.n - nval, (size_t)(1 + o->augment), &ntrain_records))
    st = crema_fail(err, CREMA_ERR_NOMEM, "too many records");
  if (st == CREMA_OK && !(b.keys = permutation(ntrain_records, &b.rng, err)))
    st = CREMA_ERR_NOMEM;
  unsigned char *ok = st == CREMA_OK ? crema_calloc(pairs.n, 1, err) : NULL;
  if (st == CREMA_OK && !ok)
    st = CREMA_ERR_NOMEM;
  if (st == CREMA_OK)
    st = lesion_make_dir(out_dir, err);
  if (st == CREMA_OK)
    st = open_pair(out_dir, "", &b.train, err);
  if (st == CREMA_OK && nval)
    st = open_pair(out_dir, "val_", &b.val, err);
  if (st == CREMA_OK)
    st = add_all(&b, &pairs, ok, err);
  st = finish_pair(&b.train, st, err);
  st = finish_pair(&b.val, st, err);
  if (st == CREMA_OK)
    st = write_id_lists(out_dir, &pairs, ok, err);
  free(ok);
  free(b.keys);
  pairs_free(&pairs);
  return st;
}
