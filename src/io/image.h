/* PNG and JPEG images: decoding (by content, never by file name), encoding,
 * OpenCV-compatible bilinear resizing, and conversion to Caffe's layout.
 *
 * Decoding follows what Caffe gets from cv::imdecode / cv::imread, so that
 * datasets built here hold the same pixels as those built by Caffe's tools:
 * 16-bit PNGs are reduced to 8 bits by dropping the low byte, colour to gray
 * uses libpng's 0.299/0.587/0.114 conversion for PNG and the luma plane for
 * JPEG, gray to colour replicates the value. */
#ifndef CREMA_IO_IMAGE_H
#define CREMA_IO_IMAGE_H

#include <stddef.h>
#include "core/error.h"

/* Largest image accepted (width * height), checked before any pixel
 * buffer is allocated. */
#define IMAGE_MAX_PIXELS ((size_t)1 << 28)

/* 8-bit pixels, rows top to bottom, channels interleaved (HWC) in the
 * file's order: gray; R,G,B; or R,G,B,A. */
typedef struct image {
  int width, height;
  int channels; /* 1, 3 or 4 */
  unsigned char *pixels;
} image;

typedef enum image_color {
  IMAGE_NATIVE, /* as stored: gray 1 channel, colour 3, with alpha 4 (cv::IMREAD_UNCHANGED) */
  IMAGE_COLOR,  /* always 3 channels (cv::IMREAD_COLOR) */
  IMAGE_GRAY    /* always 1 channel (cv::IMREAD_GRAYSCALE) */
} image_color;

typedef enum image_format {
  IMAGE_FORMAT_UNKNOWN,
  IMAGE_FORMAT_PNG,
  IMAGE_FORMAT_JPEG
} image_format;

/* The format given by the first bytes (magic numbers). */
image_format image_sniff(const unsigned char *data, size_t len);
const char *image_format_name(image_format f);

/* Allocates a zeroed width x height x channels image. */
crema_status image_alloc(image *img, int width, int height, int channels, crema_error *err);
void image_free(image *img);

/* Decodes a PNG or JPEG held in memory.  what names the data in messages
 * (a file name, or "database 'x', key 'y'"). */
crema_status image_decode(const unsigned char *data, size_t len, image_color color,
                          const char *what, image *out, crema_error *err);
crema_status image_read_file(const char *path, image_color color, image *out, crema_error *err);

/* cv::resize(src, dst, Size(width, height), 0, 0, INTER_LINEAR) for 8-bit
 * images, including its fixed-point arithmetic and rounding. */
crema_status image_resize(const image *src, int width, int height, image *dst,
                          crema_error *err);

/* Converts between colour models as cv::imread would have: to 1 or 3
 * channels (alpha dropped). */
crema_status image_convert(const image *src, image_color color, image *dst, crema_error *err);

/* Encoders; *out is malloc'd.  PNG takes 1, 3 or 4 channels, JPEG 1 or 3
 * (quality 1..100; OpenCV's default is 95). */
crema_status image_encode_png(const image *img, unsigned char **out, size_t *len,
                              crema_error *err);
crema_status image_encode_jpeg(const image *img, int quality, unsigned char **out, size_t *len,
                               crema_error *err);
/* Encodes by the extension of path (.png, .jpg/.jpeg) and writes atomically. */
crema_status image_write_file(const char *path, const image *img, crema_error *err);

/* Caffe's CVMatToDatum layout: planes (CHW) in OpenCV's channel order,
 * i.e. B,G,R(,A) for colour.  out holds channels * height * width bytes. */
void image_to_chw_bgr(const image *img, unsigned char *out);

/* An image as one item of a Caffe input blob: CHW, B,G,R order, each value
 * (pixel - mean[c]) * scale.  mean may be NULL (no mean), or hold one value
 * for all channels (nmean 1) or one per channel. */
crema_status image_to_caffe(const image *img, const float *mean, int nmean, float scale,
                            float *out, crema_error *err);

#endif
