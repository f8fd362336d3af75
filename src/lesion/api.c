/* The public lesion segmentation API (crema.h): the path `crema segment`
 * takes (lesion/segment.c), with the maps and the mask handed back at the
 * image's own size instead of written to files. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "crema.h"
#include "io/image.h"
#include "lesion/imageops.h"
#include "lesion/segment.h"

/* Larger sides than any decoder here gives; keeps width * height * 4
 * bytes far from overflow. */
#define API_MAX_SIDE 65536

struct crema_segmenter {
  lesion_segmenter *seg;
  float threshold;
};

void crema_segment_config_init(crema_segment_config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  cfg->threshold = 0.5f;
}

crema_status crema_segmenter_open(const char *model_path, const char *weights_path,
                                  const crema_segment_config *cfg, crema_segmenter **out,
                                  crema_error *err) {
  if (!model_path || !weights_path || !out)
    return crema_fail(err, CREMA_ERR_INVALID, "crema_segmenter_open: model, weights and out "
                                              "are required");
  *out = NULL;
  crema_segment_config defaults;
  if (!cfg) {
    crema_segment_config_init(&defaults);
    cfg = &defaults;
  }
  if (!(cfg->threshold >= 0 && cfg->threshold <= 1))
    return crema_fail(err, CREMA_ERR_INVALID, "threshold %g: expected 0..1",
                      (double)cfg->threshold);
  if (cfg->size < 0)
    return crema_fail(err, CREMA_ERR_INVALID, "size %d: expected a positive size", cfg->size);
  if (cfg->nscales < 0 || cfg->nscales > LESION_MAX_SCALES || (cfg->nscales && !cfg->scales))
    return crema_fail(err, CREMA_ERR_INVALID, "%d scales: expected 0..%d", cfg->nscales,
                      LESION_MAX_SCALES);
  lesion_segment_options o;
  lesion_segment_options_init(&o);
  o.size = cfg->size;
  o.threshold = cfg->threshold;
  for (int i = 0; i < cfg->nscales; i++) {
    if (!(cfg->scales[i] > 0 && cfg->scales[i] <= 8))
      return crema_fail(err, CREMA_ERR_INVALID, "scale %g: expected (0, 8]",
                        (double)cfg->scales[i]);
    o.scales[i] = cfg->scales[i];
  }
  o.nscales = cfg->nscales;
  if (cfg->flips < 0 || cfg->flips > 2 || cfg->keep < 0 || cfg->keep > 2)
    return crema_fail(err, CREMA_ERR_INVALID, "flips %d, keep %d: expected 0..2", cfg->flips,
                      cfg->keep);
  o.flips = cfg->flips;
  o.keep = (lesion_keep)cfg->keep;
  o.fill_holes = cfg->fill_holes != 0;
  crema_segmenter *s = calloc(1, sizeof *s);
  if (!s)
    return crema_fail(err, CREMA_ERR_NOMEM, "out of memory");
  s->threshold = cfg->threshold;
  crema_status st = lesion_segmenter_open(model_path, weights_path, &o, &s->seg, err);
  if (st != CREMA_OK) {
    free(s);
    return st;
  }
  *out = s;
  return CREMA_OK;
}

void crema_segmenter_close(crema_segmenter *s) {
  if (!s)
    return;
  lesion_segmenter_close(s->seg);
  free(s);
}

int crema_segmenter_size(const crema_segmenter *s) {
  return s ? lesion_segmenter_size(s->seg) : 0;
}

void crema_segmentation_free(crema_segmentation *r) {
  if (!r)
    return;
  free(r->fuse);
  free(r->border);
  free(r->lesion);
  free(r->mask);
  memset(r, 0, sizeof *r);
}

/* One map resampled to the image's size (malloc'd), NULL in stays NULL. */
static crema_status full_size(const float *map, int side, int w, int h, size_t n, float **out,
                              crema_error *err) {
  *out = NULL;
  if (!map)
    return CREMA_OK;
  if (!(*out = crema_malloc(n * sizeof(float), err)))
    return CREMA_ERR_NOMEM;
  return lesion_map_resize(map, side, side, *out, w, h, err);
}

/* Segments a 3-channel RGB image into r. */
static crema_status segment_rgb(crema_segmenter *s, const image *img, crema_segmentation *r,
                                crema_error *err) {
  lesion_maps maps;
  CREMA_TRY(lesion_segment_image(s->seg, img, &maps, err));
  size_t n = (size_t)img->width * (size_t)img->height;
  r->width = img->width;
  r->height = img->height;
  crema_status st = full_size(maps.fuse, maps.side, img->width, img->height, n, &r->fuse, err);
  if (st == CREMA_OK)
    st = full_size(maps.border, maps.side, img->width, img->height, n, &r->border, err);
  if (st == CREMA_OK)
    st = full_size(maps.lesion, maps.side, img->width, img->height, n, &r->lesion, err);
  if (st == CREMA_OK && !(r->mask = crema_malloc(n, err)))
    st = CREMA_ERR_NOMEM;
  for (size_t i = 0; st == CREMA_OK && i < n; i++)
    r->mask[i] = r->fuse[i] >= s->threshold ? 255 : 0;
  if (st == CREMA_OK)
    st = lesion_segment_postprocess(s->seg, r->mask, r->width, r->height, err);
  if (st != CREMA_OK)
    crema_segmentation_free(r);
  return st;
}

crema_status crema_segment_pixels(crema_segmenter *s, const unsigned char *pixels, int width,
                                  int height, int channels, crema_segmentation *out,
                                  crema_error *err) {
  if (!s || !pixels || !out)
    return crema_fail(err, CREMA_ERR_INVALID,
                      "crema_segment_pixels: segmenter, pixels and out are required");
  memset(out, 0, sizeof *out);
  if (width <= 0 || height <= 0 || width > API_MAX_SIDE || height > API_MAX_SIDE)
    return crema_fail(err, CREMA_ERR_INVALID, "image %dx%d: sides must be 1..%d", width, height,
                      API_MAX_SIDE);
  if (channels != 1 && channels != 3 && channels != 4)
    return crema_fail(err, CREMA_ERR_INVALID, "%d channels: expected 1, 3 or 4", channels);
  image rgb;
  CREMA_TRY(image_alloc(&rgb, width, height, 3, err));
  size_t n = (size_t)width * (size_t)height;
  for (size_t i = 0; i < n; i++)
    for (int c = 0; c < 3; c++)
      rgb.pixels[3 * i + (size_t)c] = pixels[(size_t)channels * i + (channels == 1 ? 0 : (size_t)c)];
  crema_status st = segment_rgb(s, &rgb, out, err);
  image_free(&rgb);
  return st;
}

crema_status crema_segment_file(crema_segmenter *s, const char *path, crema_segmentation *out,
                                crema_error *err) {
  if (!s || !path || !out)
    return crema_fail(err, CREMA_ERR_INVALID,
                      "crema_segment_file: segmenter, path and out are required");
  memset(out, 0, sizeof *out);
  image img;
  CREMA_TRY(image_read_file(path, IMAGE_COLOR, &img, err));
  crema_status st = segment_rgb(s, &img, out, err);
  if (st != CREMA_OK)
    crema_error_prefix(err, "%s: ", path);
  image_free(&img);
  return st;
}
