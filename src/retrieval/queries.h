/* Retrieval queries given as images: each image run through a net and
 * the descriptor blob (and, optionally, a spatial blob for the heat maps)
 * kept, with the values extract-features writes for the same image
 * stored by convert-imageset in a database the net's Data layer reads. */
#ifndef CREMA_RETRIEVAL_QUERIES_H
#define CREMA_RETRIEVAL_QUERIES_H

#include <stddef.h>

#include "core/error.h"
#include "retrieval/features.h"

typedef struct image_query_options {
  const char *model, *weights; /* the net (TEST phase) and its weights (may be NULL) */
  const char *stage;           /* a stage of the net's state, or NULL */
  const char *blob;            /* the descriptor */
  const char *heat_blob;       /* spatial features for the heat maps, or NULL */
  /* Both > 0: images are resized to this size first, as convert-imageset
   * --resize_width/--resize_height does.  Otherwise a net fed by an Input
   * layer gets its input's height and width, a net fed by a Data layer
   * each image at its own size. */
  int resize_width, resize_height;
  crema_options run;           /* the net's runtime options (zero: defaults) */
} image_query_options;

/* The net's first layer feeding it images (Data, or Input for deploy
 * nets) becomes an Input layer of one image; each image is decoded as
 * convert-imageset decodes it (3 channels, or 1 for a 1-channel input or
 * force_gray), transformed as that layer's transform_param says in TEST
 * phase (crop, mean, scale; an Input layer's transform_param, which Caffe
 * ignores, is honoured the same way), and the net run forward.  Other tops
 * of that layer (the label) hold 0.  Record i of out (and heat) gets
 * keys[i] and labels[i] (labels may be NULL: 0).  Records of the same
 * image are bit-equal to extract-features' from such a database. */
crema_status image_queries_extract(const image_query_options *o, const char *const *paths,
                                   const char *const *keys, const int *labels, size_t n,
                                   feature_set *out, feature_set *heat, crema_error *err);

#endif
