/* crema segment: lesion segmentation of dermoscopic images with a
 * side-output network (models/lesion/deploy.prototxt). */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/common.h"
#include "cli/flags.h"
#include "core/clock.h"
#include "lesion/files.h"
#include "lesion/segment.h"

static const char usage[] =
    "crema segment --model deploy.prototxt --weights W.caffemodel [--size S]\n"
    "              [--scales 0.5,1,1.5] [--flips 0|1|2] [--keep largest|centre]\n"
    "              [--fill-holes] [--threshold T] [--output DIR] IMAGE_OR_DIR...";
static const char description[] =
    "Segments skin lesions in dermoscopic images (PNG or JPEG, any size) with a lesion\n"
    "network such as models/lesion/deploy.prototxt.  For each image ID.jpg it writes into\n"
    "the output folder, at the image's own size:\n"
    "  ID_segmentation.png  the lesion mask, 0/255 (ISIC's format)\n"
    "  ID_border.png        the border probability map x 255\n"
    "  ID_lesion.png        the lesion probability map x 255\n"
    "  ID_overlay.png       the image with the mask's contour drawn in green\n"
    "The image is resized to S x S (default: the model's input size; a size the net's\n"
    "pooling and strided layers cannot take is refused, naming the multiple), the mean\n"
    "values subtracted from its B, G, R values (those of a transform_param on the model's\n"
    "input layer, with its scale, else --mean's), and the net's\n"
    "probabilities (outputs fuse_prob, border_prob, lesion_prob) resized back bilinearly.\n"
    "With --scales the net runs at S x scale for each scale (rounded to that multiple)\n"
    "and the probabilities are averaged, as they are over the mirrored images with --flips.\n"
    "--keep and --fill-holes post-process the mask (the overlay shows the result; the\n"
    "probability maps are the net's).  Folders are processed in name order, skipping\n"
    "hidden files and the files segment writes or ISIC pairs with images\n"
    "(*_segmentation.png, *_superpixels.png, *_border.png, *_lesion.png, *_overlay.png).\n"
    "\n"
    "A file that cannot be segmented (not an image, corrupt) is reported and skipped; the\n"
    "others are processed and the exit status is then 1.  A progress bar is shown on a\n"
    "terminal, a summary line always.  The work is the library's crema_segment_* calls\n"
    "(crema.h), which hand the maps and mask to a C program instead.";

typedef struct segment_flags {
  const char *model, *weights, *scales, *output, *mean, *keep;
  int size, flips, fill_holes;
  double threshold;
} segment_flags;

typedef struct work_list {
  char **paths;
  size_t n, cap;
} work_list;

static void work_free(work_list *w) {
  for (size_t i = 0; i < w->n; i++)
    free(w->paths[i]);
  free(w->paths);
}

static crema_status work_add(work_list *w, char *path, crema_error *err) {
  if (!path)
    return CREMA_ERR_NOMEM;
  if (w->n == w->cap) {
    size_t cap = w->cap ? 2 * w->cap : 64;
    char **p = realloc(w->paths, cap * sizeof *p);
    if (!p) {
      free(path);
      return crema_fail(err, CREMA_ERR_NOMEM, "out of memory");
    }
    w->paths = p;
    w->cap = cap;
  }
  w->paths[w->n++] = path;
  return CREMA_OK;
}

/* Files named on the command line, and the files of folders named there. */
static crema_status collect(char **args, int nargs, work_list *w, crema_error *err) {
  for (int i = 0; i < nargs; i++) {
    struct stat st;
    if (stat(args[i], &st) != 0 || !S_ISDIR(st.st_mode)) {
      CREMA_TRY(work_add(w, crema_strdup(args[i], err), err));
      continue;
    }
    lesion_names names;
    CREMA_TRY(lesion_list_dir(args[i], &names, err));
    crema_status s = CREMA_OK;
    for (size_t k = 0; s == CREMA_OK && k < names.n; k++)
      if (!lesion_is_companion_name(names.v[k]))
        s = work_add(w, lesion_path_join(args[i], names.v[k], err), err);
    lesion_names_free(&names);
    CREMA_TRY(s);
  }
  return CREMA_OK;
}

static crema_status parse_mean(const char *text, lesion_segment_options *o, crema_error *err) {
  float v[3];
  char tail;
  if (sscanf(text, "%f,%f,%f%c", &v[0], &v[1], &v[2], &tail) != 3)
    return crema_fail(err, CREMA_ERR_INVALID, "--mean '%s': expected three numbers B,G,R",
                      text);
  memcpy(o->mean, v, sizeof v);
  o->nmean = 3;
  o->mean_given = 1;
  return CREMA_OK;
}

static crema_status setup(const segment_flags *f, lesion_segmenter **seg, crema_error *err) {
  if (!f->model || !f->weights)
    return crema_fail(err, CREMA_ERR_INVALID, "--model and --weights are required");
  if (!(f->threshold >= 0 && f->threshold <= 1))
    return crema_fail(err, CREMA_ERR_INVALID, "--threshold %g: expected 0..1", f->threshold);
  if (f->size < 0)
    return crema_fail(err, CREMA_ERR_INVALID, "--size %d: expected a positive size", f->size);
  lesion_segment_options o;
  lesion_segment_options_init(&o);
  o.size = f->size;
  o.threshold = (float)f->threshold;
  if (f->scales)
    CREMA_TRY(lesion_parse_scales(f->scales, &o, err));
  if (f->mean)
    CREMA_TRY(parse_mean(f->mean, &o, err));
  if (f->keep)
    CREMA_TRY(lesion_parse_keep(f->keep, &o.keep, err));
  if (f->flips < 0 || f->flips > 2)
    return crema_fail(err, CREMA_ERR_INVALID, "--flips %d: expected 0, 1 or 2", f->flips);
  o.flips = f->flips;
  o.fill_holes = f->fill_holes;
  CREMA_TRY(lesion_make_dir(f->output, err));
  return lesion_segmenter_open(f->model, f->weights, &o, seg, err);
}

/* Segments every file; returns the exit status. */
static int run_all(lesion_segmenter *seg, const work_list *w, const char *out_dir) {
  int tty = isatty(2);
  size_t failed = 0;
  double start = now_seconds();
  const cli_progress progress = {"segment", "images", start, 0};
  for (size_t i = 0; i < w->n; i++) {
    crema_error err = {CREMA_OK, ""};
    if (lesion_segment_file(seg, w->paths[i], out_dir, &err) != CREMA_OK) {
      failed++;
      if (tty)
        cli_progress_clear();
      fprintf(stderr, "crema segment: skipped %s: %s\n", w->paths[i], err.message);
    }
    if (tty)
      cli_progress_show(&progress, (long)(i + 1), (long)w->n);
  }
  double elapsed = now_seconds() - start;
  if (tty)
    fprintf(stderr, "\n");
  size_t done = w->n - failed;
  fprintf(stderr, "crema segment: %zu image%s segmented at %dx%d, %zu failed, %.1f s (%.2f "
                  "images/s)\n",
          done, done == 1 ? "" : "s", lesion_segmenter_size(seg), lesion_segmenter_size(seg),
          failed, elapsed, elapsed > 0 ? done / elapsed : 0.0);
  return failed ? 1 : 0;
}

int cmd_segment(int argc, char **argv) {
  segment_flags f = {0};
  f.output = ".";
  f.threshold = 0.5;
  const flag_spec specs[] = {
      {"model", FLAG_STRING, &f.model, "the deploy net (.prototxt)"},
      {"weights", FLAG_STRING, &f.weights, "its trained weights (.caffemodel)"},
      {"size", FLAG_INT, &f.size, "side S the images are resized to (default: the model's)"},
      {"scales", FLAG_STRING, &f.scales,
       "scales of S whose probabilities are averaged, e.g. 0.5,1,1.5 (default 1)"},
      {"threshold", FLAG_DOUBLE, &f.threshold,
       "lesion where the fused probability >= T (default 0.5)"},
      {"output", FLAG_STRING, &f.output, "folder for the outputs (default: current folder)"},
      {"flips", FLAG_INT, &f.flips,
       "test-time flips averaged: 0 none (default), 1 left-right, 2 also upside down"},
      {"keep", FLAG_STRING, &f.keep,
       "mask components kept: all (default), largest, or centre (the one nearest the "
       "image centre)"},
      {"fill-holes", FLAG_BOOL, &f.fill_holes, "fill the holes of the mask"},
      {"mean", FLAG_STRING, &f.mean,
       "B,G,R values subtracted (default: the model input layer's transform_param "
       "mean_value, else VGG's 104.00699,116.66877,122.67892)"},
  };
  const int nspecs = (int)(sizeof specs / sizeof specs[0]);
  crema_error err = {CREMA_OK, ""};
  flag_result res;
  if (flags_parse(argc, argv, specs, nspecs, &res, &err) != CREMA_OK)
    return cli_report("segment", &err);
  int rc = 0;
  lesion_segmenter *seg = NULL;
  work_list w = {0};
  if (res.help) {
    flags_print_usage(stdout, usage, description, specs, nspecs);
  } else if (res.npositional < 1) {
    fprintf(stderr, "crema segment: expected images or folders to segment; see --help\n");
    rc = 2;
  } else if (collect(res.positional, res.npositional, &w, &err) != CREMA_OK ||
             setup(&f, &seg, &err) != CREMA_OK) {
    rc = cli_report("segment", &err);
  } else if (w.n == 0) {
    fprintf(stderr, "crema segment: no files to segment\n");
    rc = 1;
  } else {
    rc = run_all(seg, &w, f.output);
  }
  lesion_segmenter_close(seg);
  work_free(&w);
  flags_result_free(&res);
  return rc;
}
