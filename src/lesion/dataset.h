/* Training databases for the lesion networks (crema lesion-db): from
 * ISIC-style image/mask pairs, an LMDB of images and an LMDB of labels at
 * S x S, whose records share their keys so that two Data layers read them
 * in lockstep.
 *
 * Image records: 3-channel Datum (B,G,R planes, uint8).  Label records:
 * 2-channel Datum, channel 0 the lesion mask (0/1), channel 1 the border
 * band (1 within `border` pixels of the mask boundary, see
 * lesion_border_band).  Keys: %08d_<ID> (augmented copies <ID>_a<k>), the
 * number being the record's place in a seeded shuffle, so a Data layer,
 * which reads in key order, meets the images mixed. */
#ifndef CREMA_LESION_DATASET_H
#define CREMA_LESION_DATASET_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

typedef struct lesion_db_options {
  int size;             /* S: records are S x S */
  double val_fraction;  /* share of the images kept for validation (0: none) */
  int augment;          /* extra, randomly transformed copies per training image */
  uint32_t seed;        /* split, order and augmentation */
  int border;           /* band radius in pixels at S; < 0 for the default */
  const char *masks_dir; /* where ID_segmentation.png are; NULL: beside the images */
  /* Called after each image (done of total); NULL: none.  The command
   * draws its progress line with it. */
  void (*progress)(void *ctx, size_t done, size_t total);
  void *progress_ctx;
  /* Images skipped are logged at CREMA_LOG_ERROR (crema_options.log_level). */
  crema_log_level log_level;
} lesion_db_options;

/* size 0 (must be set), no split, no augmentation, seed 1, default border,
 * logging at CREMA_LOG_INFO. */
void lesion_db_options_init(lesion_db_options *o);

/* The default border band radius at size S: max(1, S / 64). */
int lesion_db_default_border(int size);

typedef struct lesion_db_report {
  size_t pairs;          /* images found with a usable mask */
  size_t failed;         /* images skipped (no mask, unreadable, sizes differ) */
  size_t train_images, val_images;
  size_t train_records, val_records;
  int border;            /* the band radius used */
} lesion_db_report;

/* Builds out_dir/images_lmdb and labels_lmdb (and val_images_lmdb,
 * val_labels_lmdb with a split), plus out_dir/train.txt and val.txt listing
 * the IDs of each part.  out_dir is created if needed; the databases must
 * not exist yet.  An image that cannot be used is logged, counted in
 * report->failed and skipped; it is an error only when no image is left. */
crema_status lesion_db_build(const char *images_dir, const char *out_dir,
                             const lesion_db_options *opts, lesion_db_report *report,
                             crema_error *err);

#endif
