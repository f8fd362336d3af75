/* Lesion segmentation of images of any size with a side-output network
 * (crema segment).
 *
 * An image is resized to S x S (S a multiple of the net's total stride,
 * crema_net_size_multiple: 16 for models/lesion), its BGR values less
 * the channel means fed to the net, and the net's probability maps
 * (fuse_prob, and border_prob and lesion_prob when the net has them; also
 * named fuse_score_prob, border_score_prob, lesion_score_prob) read
 * back.  With several scales the maps of each scale (S * scale, rounded to
 * a multiple of that stride) are averaged at the largest scale's size.  The maps are
 * then resampled to the image's own size, one row at a time, so that only
 * the decoded image and 8-bit outputs of its size are ever held. */
#ifndef CREMA_LESION_SEGMENT_H
#define CREMA_LESION_SEGMENT_H

#include "core/error.h"
#include "io/image.h"
#include "lesion/postproc.h"

#define LESION_MAX_SCALES 16

typedef struct lesion_segment_options {
  int size;                        /* S; 0: the model's input height.  A
                                      size the net cannot take is refused */
  float scales[LESION_MAX_SCALES]; /* relative to S */
  int nscales;                     /* 0: one scale, 1 */
  float threshold;                 /* segmentation: fuse_prob >= threshold */
  float mean[3];                   /* B, G, R values subtracted */
  int nmean;                       /* 3, or 1 for one value for all */
  float scale;                     /* (value - mean) * scale */
  int mean_given;                  /* mean chosen by the caller: the model's
                                      transform_param does not replace it */
  int flips;                       /* test-time flips averaged: 0 none, 1 the
                                      left-right mirror, 2 also upside down */
  lesion_keep keep;                /* connected component(s) kept in the mask */
  int fill_holes;                  /* holes of the mask filled */
} lesion_segment_options;

/* Size from the model, scale 1, threshold 0.5, VGG's means (unless the
 * model's input layer has a transform_param with mean_value, scale). */
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

/* The options' post-processing (keep, fill_holes) of a 0/255 mask. */
crema_status lesion_segment_postprocess(const lesion_segmenter *s, unsigned char *mask,
                                        int width, int height, crema_error *err);
/* The threshold of the mask. */
float lesion_segmenter_threshold(const lesion_segmenter *s);

/* Segments one image file and writes, at its own size, into out_dir:
 * ID_segmentation.png (0/255), ID_border.png and ID_lesion.png (probability
 * x 255, when the net has those maps) and ID_overlay.png (the image with
 * the segmentation's contour in green). */
crema_status lesion_segment_file(lesion_segmenter *s, const char *path, const char *out_dir,
                                 crema_error *err);

#endif
