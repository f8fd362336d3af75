/* Lesion segmentation of images of any size with a side-output network
 * (crema segment).
 *
 * An image is resized to S x S (S a multiple of 16), its BGR values less
 * the channel means fed to the net, and the net's probability maps
 * (fuse_prob, and border_prob and lesion_prob when the net has them; also
 * named fuse_score_prob, border_score_prob, lesion_score_prob) read
 * back.  With several scales the maps of each scale (S * scale, rounded to
 * a multiple of 16) are averaged at the largest scale's size.  The maps are
 * then resampled to the image's own size, one row at a time, so that only
 * the decoded image and 8-bit outputs of its size are ever held. */
#ifndef CREMA_LESION_SEGMENT_H
#define CREMA_LESION_SEGMENT_H

#include "core/error.h"
#include "io/image.h"

#define LESION_MAX_SCALES 16

typedef struct lesion_segment_options {
  int size;                        /* S; 0: the model's input height */
  float scales[LESION_MAX_SCALES]; /* relative to S */
  int nscales;                     /* 0: one scale, 1 */
  float threshold;                 /* segmentation: fuse_prob >= threshold */
  float mean[3];                   /* B, G, R values subtracted */
} lesion_segment_options;

/* Size from the model, scale 1, threshold 0.5, VGG's means. */
void lesion_segment_options_init(lesion_segment_options *o);

/* Parses "0.5,1,1.5" into o->scales (each in (0, 8]). */
crema_status lesion_parse_scales(const char *text, lesion_segment_options *o, crema_error *err);

typedef struct lesion_segmenter lesion_segmenter;

/* Builds the net of a deploy prototxt with its weights.  The net must take
 * one N x 3 x H x W input and output fuse_prob (or have a single output). */
crema_status lesion_segmenter_open(const char *model, const char *weights,
                                   const lesion_segment_options *o, lesion_segmenter **out,
                                   crema_error *err);
void lesion_segmenter_close(lesion_segmenter *s);

/* The working size S after defaults and rounding. */
int lesion_segmenter_size(const lesion_segmenter *s);

/* Probability maps of one image, side x side (the largest scale's size).
 * border and lesion are NULL when the net lacks those outputs.  The maps
 * belong to the segmenter and are valid until its next call. */
typedef struct lesion_maps {
  int side;
  const float *fuse, *border, *lesion;
} lesion_maps;

crema_status lesion_segment_image(lesion_segmenter *s, const image *img, lesion_maps *out,
                                  crema_error *err);

/* Segments one image file and writes, at its own size, into out_dir:
 * ID_segmentation.png (0/255), ID_border.png and ID_lesion.png (probability
 * x 255, when the net has those maps) and ID_overlay.png (the image with
 * the segmentation's contour in green). */
crema_status lesion_segment_file(lesion_segmenter *s, const char *path, const char *out_dir,
                                 crema_error *err);

#endif
