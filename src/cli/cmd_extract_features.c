/* crema extract-features: Caffe's extract_features tool, with its
 * arguments in its order and its output databases. */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli/cli.h"
#include "cli/common.h"
#include "cli/flags.h"
#include "core/log.h"
#include "graph/weights.h"
#include "retrieval/features.h"

static const char usage[] =
    "crema extract-features [flags] WEIGHTS NET BLOB[,BLOB...] DB[,DB...] NUM_MINI_BATCHES "
    "lmdb [CPU]";
static const char description[] =
    "Runs NET (TEST phase) with WEIGHTS for NUM_MINI_BATCHES batches and writes each BLOB to "
    "its DB as Caffe's extract_features does: one Datum per sample with the values in "
    "float_data, channels/height/width the blob's, keys the sample index zero-padded to 10 "
    "digits.  Databases are written under a temporary name and renamed when complete.";

typedef struct extract_flags {
  int count;
  int keep_source;
  const char *source;
  const char *stage;
} extract_flags;

/* Splits a ','-separated list in place. */
static int split_list(char *s, const char **items, int max) {
  int n = 0;
  for (char *next; s && n < max; s = next) {
    next = strchr(s, ',');
    if (next)
      *next++ = '\0';
    if (*s)
      items[n++] = s;
  }
  return n;
}

static crema_status check_args(char **pos, int npos, crema_error *err) {
  if (npos < 6 || npos > 8)
    return crema_fail(err, CREMA_ERR_INVALID,
                      "expected 6 to 8 arguments (WEIGHTS NET BLOBS DBS NUM_MINI_BATCHES lmdb "
                      "[CPU] [DEVICE_ID]), got %d; see --help",
                      npos);
  if (strcasecmp(pos[5], "lmdb"))
    return crema_fail(err, CREMA_ERR_INVALID, "database type '%s': crema writes lmdb only",
                      pos[5]);
  if (npos >= 7 && strcasecmp(pos[6], "CPU"))
    return crema_fail(err, CREMA_ERR_INVALID, "mode '%s': crema runs on the CPU only", pos[6]);
  return CREMA_OK;
}

static crema_status run(char **pos, int npos, const extract_flags *f, crema_error *err) {
  CREMA_TRY(check_args(pos, npos, err));
  char *end;
  long batches = strtol(pos[4], &end, 10);
  if (*end || end == pos[4] || batches < 0 || batches > INT32_MAX)
    return crema_fail(err, CREMA_ERR_INVALID, "NUM_MINI_BATCHES must be a count, got '%s'",
                      pos[4]);
  enum { MAX_BLOBS = 64 };
  const char *blobs[MAX_BLOBS], *dbs[MAX_BLOBS];
  const int nblobs = split_list(pos[2], blobs, MAX_BLOBS);
  const int ndbs = split_list(pos[3], dbs, MAX_BLOBS);
  if (nblobs != ndbs || nblobs == 0)
    return crema_fail(err, CREMA_ERR_INVALID,
                      "%d blob names and %d databases: give one database per blob", nblobs,
                      ndbs);
  net_options o;
  cli_net_options(&o, CAFFE__PHASE__TEST);
  o.keep_all = 1; /* every extracted blob keeps its values after forward */
  const char *stages[1] = {f->stage};
  if (f->stage) {
    o.stages = stages;
    o.nstages = 1;
  }
  net *n;
  CREMA_TRY(net_open(pos[1], pos[0], &o, &n, err));
  features_extract_options eo = {.blobs = blobs, .dbs = dbs, .nblobs = nblobs,
                                 .batches = (int)batches, .count = f->count};
  eo.source = f->source;
  if (f->keep_source && !eo.source && !(eo.source = features_net_source(n))) {
    net_free(n);
    return crema_fail(err, CREMA_ERR_INVALID,
                      "--keep-source: the net has no Data layer to take labels and keys from");
  }
  long written[MAX_BLOBS] = {0};
  LOG_INFO("Extracting Features");
  crema_status st = features_extract(n, &eo, written, err);
  if (st == CREMA_OK)
    for (int j = 0; j < nblobs; j++)
      LOG_INFO("Extracted features of %ld query images for feature blob %s", written[j],
               blobs[j]);
  net_free(n);
  if (st == CREMA_OK)
    LOG_INFO("Successfully extracted the features!");
  return st;
}

int cmd_extract_features(int argc, char **argv) {
  extract_flags f = {0};
  const flag_spec specs[] = {
      {"count", FLAG_INT, &f.count,
       "write exactly this many samples (the batches they take; NUM_MINI_BATCHES is then "
       "ignored)"},
      {"keep-source", FLAG_BOOL, &f.keep_source,
       "keep each sample's source record label (Datum.label) and key (key INDEX_KEY), read "
       "from the net's Data layer LMDB in the order the layer reads it"},
      {"source", FLAG_STRING, &f.source,
       "the LMDB for --keep-source, when not the Data layer's (implies --keep-source)"},
      {"stage", FLAG_STRING, &f.stage,
       "a stage of the net's state (e.g. to pick another Data layer)"},
  };
  const int nspecs = (int)(sizeof specs / sizeof specs[0]);
  crema_error err = {CREMA_OK, ""};
  flag_result res;
  if (flags_parse(argc, argv, specs, nspecs, &res, &err) != CREMA_OK)
    return cli_report("extract-features", &err);
  int rc = 0;
  if (res.help)
    flags_print_usage(stdout, usage, description, specs, nspecs);
  else if (f.count < 0)
    rc = cli_report("extract-features",
                    (crema_fail(&err, CREMA_ERR_INVALID, "--count must be > 0"), &err));
  else if (run(res.positional, res.npositional, &f, &err) != CREMA_OK)
    rc = cli_report("extract-features", &err);
  flags_result_free(&res);
  return rc;
}
