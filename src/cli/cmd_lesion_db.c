/* crema lesion-db: training databases for the lesion segmentation networks
 * from ISIC-style image/mask pairs. */
#include "config.h"

#include <stdio.h>
#include <unistd.h>

#include "caffe.pb-c.h"
#include "cli/cli.h"
#include "cli/common.h"
#include "cli/flags.h"
#include "core/clock.h"
#include "core/log.h"
#include "graph/stride.h"
#include "io/upgrade.h"
#include "lesion/dataset.h"

static const char usage[] =
    "crema lesion-db --size S [--net NET.prototxt] [--val-fraction F] [--augment K]\n"
    "                [--seed N] [--border W] [--masks DIR] IMAGES_DIR OUT_DIR";
static const char description[] =
    "Builds OUT_DIR/images_lmdb and OUT_DIR/labels_lmdb for models/lesion/train_val.prototxt\n"
    "from the ISIC-style pairs of IMAGES_DIR: ID.jpg (.jpeg, .png; any size) and its mask\n"
    "ID_segmentation.png (lesion > 127; beside the image or in --masks DIR).  Every record is\n"
    "S x S (the image resized, aspect ratio not kept).  Image records are 3-channel BGR\n"
    "Datums; label records are 2-channel Datums: the lesion mask (0/1) and the border band\n"
    "(1 within W pixels, at size S, of the mask boundary).  Both databases use the same\n"
    "keys, %08d_ID, numbered in a seeded shuffle, so that two Data layers read them in\n"
    "lockstep and in mixed order.  With --net (e.g. models/lesion/deploy.prototxt) a size\n"
    "the net cannot take is refused before any work, naming the multiple its pooling and\n"
    "strided layers need (16 for the lesion networks).  A progress line with the rate and\n"
    "the time left is drawn on a terminal.\n"
    "\n"
    "--val-fraction F keeps a seeded random share of the images (not augmented) in\n"
    "OUT_DIR/val_images_lmdb and val_labels_lmdb; OUT_DIR/train.txt and val.txt list the\n"
    "IDs of each part.  --augment K adds K copies of each training image, each with scale\n"
    "jitter (a random window of 80..100% of each side), a random left-right flip and a\n"
    "random rotation by a multiple of 90 degrees, applied alike to the mask.\n"
    "\n"
    "Images without a mask, unreadable files and masks whose size differs from their\n"
    "image's are reported and skipped; the exit status is then 1, the databases holding\n"
    "the other images.";

/* Refuses a size that the net of net_path cannot take. */
static crema_status check_size(const char *net_path, int size, crema_error *err) {
  Caffe__NetParameter *np = NULL;
  CREMA_TRY(net_param_read(net_path, CREMA_LOG_INFO, &np, err));
  int multiple = net_param_size_multiple(np->layer, np->n_layer);
  protobuf_c_message_free_unpacked(&np->base, NULL);
  if (size % multiple)
    return crema_fail(err, CREMA_ERR_INVALID,
                      "--size %d: %s takes sizes that are multiples of %d (its pooling and "
                      "strided layers), e.g. %d or %d",
                      size, net_path, multiple, size / multiple * multiple > 0
                                                    ? size / multiple * multiple
                                                    : multiple,
                      (size / multiple + 1) * multiple);
  return CREMA_OK;
}

/* lesion_db_options.progress: the shared progress line. */
static void show_progress(void *ctx, size_t done, size_t total) {
  cli_progress_show(ctx, (long)done, (long)total);
}

static int run(const char *images, const char *out, const char *net_path,
               lesion_db_options *o, crema_error *err) {
  if (net_path && *net_path && check_size(net_path, o->size, err) != CREMA_OK)
    return cli_report("lesion-db", err);
  cli_progress progress = {"lesion-db", "images", now_seconds(), 0};
  int tty = isatty(STDERR_FILENO);
  if (tty) {
    o->progress = show_progress;
    o->progress_ctx = &progress;
  }
  lesion_db_report r;
  crema_status st = lesion_db_build(images, out, o, &r, err);
  if (tty)
    fprintf(stderr, "\n");
  if (st != CREMA_OK)
    return cli_report("lesion-db", err);
  LOG_INFO("%zu images: %zu for training (%zu records), %zu for validation (%zu records); "
           "%dx%d, border band %d px; %zu skipped",
           r.pairs, r.train_images, r.train_records, r.val_images, r.val_records, o->size,
           o->size, r.border, r.failed);
  return r.failed ? 1 : 0;
}

int cmd_lesion_db(int argc, char **argv) {
  lesion_db_options o;
  lesion_db_options_init(&o);
  int seed = 1;
  const char *net_path = NULL;
  const flag_spec specs[] = {
      {"size", FLAG_INT, &o.size, "side S of the records (required; a multiple of 16 for the "
                                  "lesion networks)"},
      {"net", FLAG_STRING, &net_path,
       "refuse a --size this net definition cannot take (e.g. models/lesion/deploy.prototxt)"},
      {"val-fraction", FLAG_DOUBLE, &o.val_fraction,
       "share of the images kept for validation (default 0: no split)"},
      {"augment", FLAG_INT, &o.augment, "augmented copies per training image (default 0)"},
      {"seed", FLAG_INT, &seed, "seed of the split, the order and the augmentation (default 1)"},
      {"border", FLAG_INT, &o.border,
       "border band radius W in pixels at size S (default max(1, S/64))"},
      {"masks", FLAG_STRING, &o.masks_dir,
       "folder of the ID_segmentation.png masks (default: IMAGES_DIR)"},
  };
  const int nspecs = (int)(sizeof specs / sizeof specs[0]);
  crema_error err = {CREMA_OK, ""};
  flag_result res;
  if (flags_parse(argc, argv, specs, nspecs, &res, &err) != CREMA_OK)
    return cli_report("lesion-db", &err);
  int rc = 0;
  if (res.help) {
    flags_print_usage(stdout, usage, description, specs, nspecs);
  } else if (res.npositional != 2 || o.size <= 0) {
    fprintf(stderr, "crema lesion-db: expected --size S, IMAGES_DIR and OUT_DIR; see --help\n");
    rc = 2;
  } else {
    o.seed = (uint32_t)seed;
    rc = run(res.positional[0], res.positional[1], net_path, &o, &err);
  }
  flags_result_free(&res);
  return rc;
}
