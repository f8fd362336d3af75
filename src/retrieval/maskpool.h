/* Descriptors pooled inside a mask (the lesion): the pooled part of each
 * record's descriptor recomputed from its spatial features weighted by the
 * record's mask, so that the skin around the lesion does not count. */
#ifndef CREMA_RETRIEVAL_MASKPOOL_H
#define CREMA_RETRIEVAL_MASKPOOL_H

#include <stddef.h>

#include "core/error.h"
#include "retrieval/features.h"
#include "retrieval/report.h"

typedef struct mask_pool_options {
  const char *dir;    /* the masks: DIR/ID SUFFIX for the image ID.ext a key names */
  const char *suffix; /* e.g. "_segmentation.png" (ISIC, crema synth) or "_lesion.png" */
  heat_pool pool;     /* the pooling of the descriptors' part at offset */
  size_t offset;
} mask_pool_options;

/* For each record i: the mask (a grey image, 0..255, any size) averaged
 * over the cells of the spatial features' H x W grid gives weights m_t in
 * [0, 1] (all 1 when the mask is empty: no lesion found); the spatial
 * features are weighted in place (x_t sqrt(m_t) for the bilinear pooling,
 * x_t m_t for the average, so that the pooled terms are m_t phi_t and the
 * heat maps stay exact), and the descriptor's part is recomputed from them
 * as FIG. 9's branches do: the sum of outer products, signed square root,
 * L2 normalisation (bilinear), or the weighted mean (average).  *empty
 * (may be NULL) counts the empty masks. */
crema_status mask_pool_apply(const mask_pool_options *o, feature_set *desc, feature_set *spatial,
                             size_t *empty, crema_error *err);

#endif
