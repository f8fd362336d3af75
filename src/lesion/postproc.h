/* Post-processing of a lesion mask (crema segment --keep, --fill-holes):
 * a dermoscopic photograph is taken centred on one lesion, so stray
 * blobs (stickers, dark corners, freckles) can be dropped by keeping one
 * connected component, and holes (gel bubbles, regression areas read as
 * skin) filled.  Masks are 1-channel, lesion where a byte is non-zero;
 * results are 0/255. */
#ifndef CREMA_LESION_POSTPROC_H
#define CREMA_LESION_POSTPROC_H

#include "core/error.h"

typedef enum lesion_keep {
  LESION_KEEP_ALL = 0, /* every component */
  LESION_KEEP_LARGEST, /* the component with the most pixels */
  LESION_KEEP_CENTRE   /* the component with a pixel nearest the centre */
} lesion_keep;

/* Parses "all", "largest" or "centre" (also "center"). */
crema_status lesion_parse_keep(const char *text, lesion_keep *out, crema_error *err);

/* Keeps one 8-connected component of the width x height mask as `keep'
 * says (ties: the first in row order); an empty mask stays empty. */
crema_status lesion_keep_component(unsigned char *mask, int width, int height, lesion_keep keep,
                                   crema_error *err);

/* Sets the background pixels that the image's edges cannot reach through
 * 4-connected background (holes) to lesion. */
crema_status lesion_fill_holes(unsigned char *mask, int width, int height, crema_error *err);

#endif
