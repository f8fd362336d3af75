/* Image operations of the lesion application (see imageops.h). */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lesion/imageops.h"

const float lesion_vgg_mean[3] = {104.00699f, 116.66877f, 122.67892f};

/* Averages k x k blocks (partial blocks at the right and bottom edges over
 * the pixels they have), rounding to nearest. */
static crema_status box_shrink(const image *src, int k, image *dst, crema_error *err) {
  int cn = src->channels;
  int w = (src->width + k - 1) / k, h = (src->height + k - 1) / k;
  CREMA_TRY(image_alloc(dst, w, h, cn, err));
  uint32_t *acc = crema_calloc((size_t)w * cn, sizeof *acc, err);
  if (!acc) {
    image_free(dst);
    return CREMA_ERR_NOMEM;
  }
  size_t stride = (size_t)src->width * cn;
  for (int oy = 0; oy < h; oy++) {
    int y0 = oy * k, y1 = y0 + k < src->height ? y0 + k : src->height;
    memset(acc, 0, (size_t)w * cn * sizeof *acc);
    for (int y = y0; y < y1; y++) {
      const unsigned char *row = src->pixels + (size_t)y * stride;
      for (int ox = 0; ox < w; ox++) {
        int x0 = ox * k, x1 = x0 + k < src->width ? x0 + k : src->width;
        for (int x = x0; x < x1; x++)
          for (int c = 0; c < cn; c++)
            acc[(size_t)ox * cn + c] += row[(size_t)x * cn + c];
      }
    }
    unsigned char *out = dst->pixels + (size_t)oy * w * cn;
    for (int ox = 0; ox < w; ox++) {
      int x0 = ox * k, x1 = x0 + k < src->width ? x0 + k : src->width;
      uint32_t n = (uint32_t)((x1 - x0) * (y1 - y0));
      for (int c = 0; c < cn; c++)
        out[(size_t)ox * cn + c] = (unsigned char)((acc[(size_t)ox * cn + c] + n / 2) / n);
    }
  }
  free(acc);
  return CREMA_OK;
}

crema_status lesion_resize(const image *src, int width, int height, image *dst,
                           crema_error *err) {
  memset(dst, 0, sizeof *dst);
  if (!src->pixels || src->width <= 0 || src->height <= 0 || width <= 0 || height <= 0)
    return crema_fail(err, CREMA_ERR_INVALID, "cannot resize a %dx%d image to %dx%d",
                      src->width, src->height, width, height);
  int k = src->width / width < src->height / height ? src->width / width : src->height / height;
  if (k < 2)
    return image_resize(src, width, height, dst, err);
  image small;
  CREMA_TRY(box_shrink(src, k, &small, err));
  crema_status st = image_resize(&small, width, height, dst, err);
  image_free(&small);
  return st;
}

crema_status lesion_crop(const image *src, int x, int y, int width, int height, image *dst,
                         crema_error *err) {
  memset(dst, 0, sizeof *dst);
  if (x < 0 || y < 0 || width <= 0 || height <= 0 || x > src->width - width ||
      y > src->height - height)
    return crema_fail(err, CREMA_ERR_INVALID, "crop %dx%d at (%d, %d) outside a %dx%d image",
                      width, height, x, y, src->width, src->height);
  int cn = src->channels;
  CREMA_TRY(image_alloc(dst, width, height, cn, err));
  for (int r = 0; r < height; r++)
    memcpy(dst->pixels + (size_t)r * width * cn,
           src->pixels + ((size_t)(y + r) * src->width + x) * cn, (size_t)width * cn);
  return CREMA_OK;
}

void lesion_flip(image *img) {
  int cn = img->channels;
  for (int y = 0; y < img->height; y++) {
    unsigned char *row = img->pixels + (size_t)y * img->width * cn;
    for (int a = 0, b = img->width - 1; a < b; a++, b--)
      for (int c = 0; c < cn; c++) {
        unsigned char t = row[(size_t)a * cn + c];
        row[(size_t)a * cn + c] = row[(size_t)b * cn + c];
        row[(size_t)b * cn + c] = t;
      }
  }
}

crema_status lesion_rotate90(image *img, int quarter_turns, crema_error *err) {
  int q = ((quarter_turns % 4) + 4) % 4;
  if (q == 0)
    return CREMA_OK;
  int w = img->width, h = img->height, cn = img->channels;
  image out;
  CREMA_TRY(image_alloc(&out, q == 2 ? w : h, q == 2 ? h : w, cn, err));
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      int ox, oy;
      if (q == 1) { /* counter-clockwise: the right column becomes the top row */
        ox = y;
        oy = w - 1 - x;
      } else if (q == 2) {
        ox = w - 1 - x;
        oy = h - 1 - y;
      } else {
        ox = h - 1 - y;
        oy = x;
      }
      memcpy(out.pixels + ((size_t)oy * out.width + ox) * cn,
             img->pixels + ((size_t)y * w + x) * cn, (size_t)cn);
    }
  image_free(img);
  *img = out;
  return CREMA_OK;
}

void lesion_binarize(image *mask) {
  size_t n = (size_t)mask->width * mask->height * mask->channels;
  for (size_t i = 0; i < n; i++)
    mask->pixels[i] = mask->pixels[i] >= 128;
}

/* Does pixel (x, y) of a 0/1 mask have a 4-neighbour of the other value? */
static int on_boundary(const unsigned char *m, int w, int h, int x, int y) {
  const unsigned char *p = m + (size_t)y * w + x;
  return (x > 0 && p[-1] != *p) || (x + 1 < w && p[1] != *p) || (y > 0 && p[-w] != *p) ||
         (y + 1 < h && p[w] != *p);
}

/* Offsets of the disc of the given radius, as (dx, dy) pairs. */
static int *disc_offsets(int radius, int *count, crema_error *err) {
  int side = 2 * radius + 1;
  int *d = crema_malloc(sizeof(int) * 2 * (size_t)side * side, err);
  if (!d)
    return NULL;
  int n = 0;
  for (int dy = -radius; dy <= radius; dy++)
    for (int dx = -radius; dx <= radius; dx++)
      if (dx * dx + dy * dy <= radius * radius) {
        d[2 * n] = dx;
        d[2 * n + 1] = dy;
        n++;
      }
  *count = n;
  return d;
}

/* Writes value (channels bytes) into out over a disc of the given radius
 * around every boundary pixel of mask (only those of value `only` when
 * only >= 0). */
static crema_status stamp_boundary(const unsigned char *mask, int w, int h, int only,
                                   int radius, unsigned char *out, int channels,
                                   const unsigned char *value, crema_error *err) {
  if (radius < 0)
    radius = 0;
  if (radius > 1024)
    return crema_fail(err, CREMA_ERR_INVALID, "radius %d too large", radius);
  int n;
  int *d = disc_offsets(radius, &n, err);
  if (!d)
    return CREMA_ERR_NOMEM;
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      if (only >= 0 && mask[(size_t)y * w + x] != only)
        continue;
      if (!on_boundary(mask, w, h, x, y))
        continue;
      for (int i = 0; i < n; i++) {
        int px = x + d[2 * i], py = y + d[2 * i + 1];
        if (px >= 0 && py >= 0 && px < w && py < h)
          memcpy(out + ((size_t)py * w + px) * channels, value, (size_t)channels);
      }
    }
  free(d);
  return CREMA_OK;
}

crema_status lesion_border_band(const unsigned char *mask, int width, int height, int radius,
                                unsigned char *band, crema_error *err) {
  memset(band, 0, (size_t)width * height);
  static const unsigned char one = 1;
  return stamp_boundary(mask, width, height, -1, radius, band, 1, &one, err);
}

/* Source index and weight of the next source sample, per destination
 * coordinate, with cv::resize's pixel-centre alignment and edge clamping. */
typedef struct axis_map {
  int *index;
  float *frac;
} axis_map;

static crema_status axis_map_make(int src, int dst, axis_map *m, crema_error *err) {
  m->index = crema_malloc(sizeof(int) * (size_t)dst, err);
  m->frac = crema_malloc(sizeof(float) * (size_t)dst, err);
  if (!m->index || !m->frac) {
    free(m->index);
    free(m->frac);
    return CREMA_ERR_NOMEM;
  }
  double scale = (double)src / dst;
  for (int i = 0; i < dst; i++) {
    double f = (i + 0.5) * scale - 0.5;
    int s = (int)floor(f);
    double w = f - s;
    if (s < 0)
      s = 0, w = 0;
    if (s >= src - 1)
      s = src - 1, w = 0;
    m->index[i] = s;
    m->frac[i] = (float)w;
  }
  return CREMA_OK;
}

static void axis_map_free(axis_map *m) {
  free(m->index);
  free(m->frac);
}

/* One resampled row: values at row y of the destination. */
static void resample_row(const float *src, int sw, const axis_map *mx, const axis_map *my,
                         int y, int dw, float *out) {
  int sy = my->index[y];
  float fy = my->frac[y];
  const float *r0 = src + (size_t)sy * sw;
  const float *r1 = fy > 0 ? r0 + sw : r0;
  for (int x = 0; x < dw; x++) {
    int sx = mx->index[x];
    float fx = mx->frac[x];
    int sx1 = fx > 0 ? sx + 1 : sx;
    float top = r0[sx] + fx * (r0[sx1] - r0[sx]);
    float bottom = r1[sx] + fx * (r1[sx1] - r1[sx]);
    out[x] = top + fy * (bottom - top);
  }
}

static crema_status check_map(int sw, int sh, int dw, int dh, crema_error *err) {
  if (sw <= 0 || sh <= 0 || dw <= 0 || dh <= 0)
    return crema_fail(err, CREMA_ERR_INVALID, "cannot resample a %dx%d map to %dx%d", sw, sh,
                      dw, dh);
  return CREMA_OK;
}

crema_status lesion_map_resize(const float *src, int sw, int sh, float *dst, int dw, int dh,
                               crema_error *err) {
  CREMA_TRY(check_map(sw, sh, dw, dh, err));
  axis_map mx, my;
  CREMA_TRY(axis_map_make(sw, dw, &mx, err));
  crema_status st = axis_map_make(sh, dh, &my, err);
  if (st != CREMA_OK) {
    axis_map_free(&mx);
    return st;
  }
  for (int y = 0; y < dh; y++)
    resample_row(src, sw, &mx, &my, y, dw, dst + (size_t)y * dw);
  axis_map_free(&mx);
  axis_map_free(&my);
  return CREMA_OK;
}

crema_status lesion_map_to_image(const float *map, int mw, int mh, float threshold, image *out,
                                 crema_error *err) {
  CREMA_TRY(check_map(mw, mh, out->width, out->height, err));
  if (out->channels != 1)
    return crema_fail(err, CREMA_ERR_INVALID, "a probability map is written to a gray image");
  int dw = out->width, dh = out->height;
  axis_map mx, my;
  CREMA_TRY(axis_map_make(mw, dw, &mx, err));
  crema_status st = axis_map_make(mh, dh, &my, err);
  float *row = st == CREMA_OK ? crema_malloc(sizeof(float) * (size_t)dw, err) : NULL;
  if (!row) {
    axis_map_free(&mx);
    if (st == CREMA_OK)
      axis_map_free(&my);
    return CREMA_ERR_NOMEM;
  }
  for (int y = 0; y < dh; y++) {
    resample_row(map, mw, &mx, &my, y, dw, row);
    unsigned char *o = out->pixels + (size_t)y * dw;
    for (int x = 0; x < dw; x++) {
      float p = row[x];
      if (threshold >= 0)
        o[x] = p >= threshold ? 255 : 0;
      else
        o[x] = (unsigned char)(p <= 0 ? 0 : p >= 1 ? 255 : lrintf(p * 255.f));
    }
  }
  free(row);
  axis_map_free(&mx);
  axis_map_free(&my);
  return CREMA_OK;
}

crema_status lesion_draw_contour(image *img, const image *mask, int thickness,
                                 const unsigned char rgb[3], crema_error *err) {
  if (img->channels != 3 || mask->channels != 1 || img->width != mask->width ||
      img->height != mask->height)
    return crema_fail(err, CREMA_ERR_INVALID,
                      "contour of a %dx%dx%d mask onto a %dx%dx%d image: sizes differ",
                      mask->width, mask->height, mask->channels, img->width, img->height,
                      img->channels);
  return stamp_boundary(mask->pixels, mask->width, mask->height, 255,
                        thickness > 1 ? thickness / 2 : 0, img->pixels, 3, rgb, err);
}
