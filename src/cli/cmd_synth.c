/* crema synth: synthetic dermoscopy images with ISIC-style masks. */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/flags.h"
#include "core/clock.h"
#include "core/log.h"
#include "lesion/files.h"
#include "lesion/synth.h"

static const char usage[] = "crema synth --count N [--size S] [--seed K] [flags] OUTDIR";
static const char description[] =
    "Writes N synthetic dermoscopy images and their lesion masks to OUTDIR (created\n"
    "if missing) with ISIC names: ISIC_NNNNNNN.jpg (or .png) and\n"
    "ISIC_NNNNNNN_segmentation.png (one channel, 0/255, the lesion only).  Images\n"
    "show Fitzpatrick skin types I-VI under dermoscope light with its dark\n"
    "vignette, an irregular pigmented lesion with a fuzzy border, and hair, ruler\n"
    "and ink marks, stickers, air bubbles and JPEG artefacts.  The output is a\n"
    "function of --seed and the image number only: the same flags give the same\n"
    "bytes, and --first lets a set be extended or split.";

static crema_status run_synth(const char *dir, int count, int size, int seed, int first,
                              const char *format, int labels, crema_error *err) {
  synth_format f;
  if (!strcasecmp(format, "jpg") || !strcasecmp(format, "jpeg"))
    f = SYNTH_JPEG;
  else if (!strcasecmp(format, "png"))
    f = SYNTH_PNG;
  else
    return crema_fail(err, CREMA_ERR_INVALID, "--format must be jpg or png, got '%s'", format);
  if (count <= 0)
    return crema_fail(err, CREMA_ERR_INVALID, "--count must be a positive number, got %d", count);
  if (size < SYNTH_MIN_SIZE || size > SYNTH_MAX_SIZE)
    return crema_fail(err, CREMA_ERR_INVALID, "--size must be within [%d, %d], got %d",
                      SYNTH_MIN_SIZE, SYNTH_MAX_SIZE, size);
  if (seed < 0 || first < 0)
    return crema_fail(err, CREMA_ERR_INVALID, "--seed and --first must not be negative");
  CREMA_TRY(lesion_make_dir(dir, err));
  const double t0 = now_seconds();
  if (labels)
    CREMA_TRY(synth_write_labelled_set(dir, (uint32_t)seed, (uint32_t)first, (uint32_t)count,
                                       size, f, err));
  else
    CREMA_TRY(synth_write_set(dir, (uint32_t)seed, (uint32_t)first, (uint32_t)count, size, f,
                              err));
  char a[16], b[16];
  synth_id((uint32_t)first, a, sizeof a);
  synth_id((uint32_t)first + (uint32_t)count - 1, b, sizeof b);
  LOG_INFO("Wrote %d images of %dx%d (seed %d, %s .. %s) to %s in %.2f s", count, size, size, seed,
           a, b, dir, now_seconds() - t0);
  return CREMA_OK;
}

int cmd_synth(int argc, char **argv) {
  int count = 0, size = 256, seed = 1, first = 0, labels = 0;
  const char *format = "jpg";
  const flag_spec specs[] = {
      {"count", FLAG_INT, &count, "number of images (required)"},
      {"size", FLAG_INT, &size, "width and height in pixels (default 256; 16..2048)"},
      {"seed", FLAG_INT, &seed,
       "random seed (>= 0; default 1): the same seed gives the same images"},
      {"format", FLAG_STRING, &format, "image format: jpg (default) or png; masks are always png"},
      {"first", FLAG_INT, &first, "number of the first image, ISIC_<first> (default 0)"},
      {"labels", FLAG_BOOL, &labels,
       "draw a diagnosis per image and patterns that imply it (a veil or streaks: MEL; "
       "regression: BKL; a network or globules: NV) and write OUTDIR/labels.csv (ISIC 2018 "
       "ground truth), OUTDIR/patterns.csv and OUTDIR/list.txt (for convert-imageset)"},
  };
  const int nspecs = (int)(sizeof specs / sizeof specs[0]);
  crema_error err = {CREMA_OK, ""};
  flag_result res;
  if (flags_parse(argc, argv, specs, nspecs, &res, &err) != CREMA_OK)
    return cli_report("synth", &err);
  int rc = 0;
  if (res.help) {
    flags_print_usage(stdout, usage, description, specs, nspecs);
  } else if (res.npositional != 1) {
    fprintf(stderr, "crema synth: expected one OUTDIR, got %d arguments; see --help\n",
            res.npositional);
    rc = 2;
  } else if (run_synth(res.positional[0], count, size, seed, first, format, labels, &err) != CREMA_OK) {
    rc = cli_report("synth", &err);
  }
  flags_result_free(&res);
  return rc;
}
