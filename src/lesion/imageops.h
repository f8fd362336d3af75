/* Image operations shared by lesion-db and segment: preparing images and
 * masks at the network's size, the border band of a mask, probability maps
 * back at an image's own size, and contours drawn for overlays. */
#ifndef CREMA_LESION_IMAGEOPS_H
#define CREMA_LESION_IMAGEOPS_H

#include <stdint.h>

#include "core/error.h"
#include "io/image.h"

/* VGG-16's BGR channel means, subtracted by the lesion networks. */
extern const float lesion_vgg_mean[3];

/* Resizes to width x height.  When shrinking by 2x or more, blocks of pixels
 * are first averaged (so hairs and JPEG noise of a 6000x4000 photograph do
 * not alias), then the rest is bilinear, as cv::resize INTER_LINEAR. */
crema_status lesion_resize(const image *src, int width, int height, image *dst,
                           crema_error *err);

/* Copies the rectangle (x, y, width, height), which must lie inside src. */
crema_status lesion_crop(const image *src, int x, int y, int width, int height, image *dst,
                         crema_error *err);

/* In-place mirror (left-right) and rotation by quarter turns (counter-
 * clockwise; a square image keeps its size, others swap width and height). */
void lesion_flip(image *img);
crema_status lesion_rotate90(image *img, int quarter_turns, crema_error *err);

/* Any gray value >= 128 becomes 1, others 0 (in place, 1-channel image). */
void lesion_binarize(image *mask);

/* The border band of a 0/1 mask: 1 for pixels within Euclidean distance
 * radius of the lesion boundary, i.e. of a pixel whose 4-neighbour has the
 * other value (both sides of the boundary are such pixels; the image's own
 * edges are not boundary).  band holds width * height bytes. */
crema_status lesion_border_band(const unsigned char *mask, int width, int height, int radius,
                                unsigned char *band, crema_error *err);

/* Bilinear resampling of a float map (pixel centres aligned, as cv::resize
 * INTER_LINEAR) from sw x sh to dw x dh. */
crema_status lesion_map_resize(const float *src, int sw, int sh, float *dst, int dw, int dh,
                               crema_error *err);

/* A probability map resampled to the size of out (a 1-channel image the
 * caller allocated), row by row so that no float map of out's size is made.
 * threshold < 0 writes the probability as 0..255; otherwise 255 where it is
 * >= threshold and 0 elsewhere. */
crema_status lesion_map_to_image(const float *map, int mw, int mh, float threshold, image *out,
                                 crema_error *err);

/* Draws the outline of a 0/255 mask (the mask pixels touching background)
 * onto a 3-channel image of the same size, thickness pixels wide. */
crema_status lesion_draw_contour(image *img, const image *mask, int thickness,
                                 const unsigned char rgb[3], crema_error *err);

#endif
