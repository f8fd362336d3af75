/* Feature databases in the layout of Caffe's extract_features tool: one
 * Datum per sample, its values in float_data, channels/height/width the
 * blob's, keys the sample index zero-padded to 10 digits.  Extraction
 * from a net's blobs, and loading such a database into memory. */
#ifndef CREMA_RETRIEVAL_FEATURES_H
#define CREMA_RETRIEVAL_FEATURES_H

#include <stddef.h>

#include "core/error.h"
#include "graph/net.h"

typedef struct features_extract_options {
  const char *const *blobs;   /* blob names */
  const char *const *dbs;     /* one output LMDB directory per blob */
  int nblobs;
  int batches;                /* mini-batches to run */
  /* > 0: write exactly this many samples (the batches it takes, the last
   * one in part) instead of batches * batch size. */
  long count;
  /* Not NULL: the LMDB the net's Data layer reads, in the order it reads
   * it (TEST phase: from the first record, wrapping around).  Each output
   * record then keeps the source record's label (Datum.label) and key
   * (appended to the index: "0000000003_KEY"). */
  const char *source;
} features_extract_options;

/* Runs the net forward and writes the databases.  Each is written to a
 * temporary directory next to it and renamed when complete; an existing
 * database is an error, as in Caffe.  *written (may be NULL) receives the
 * samples written per database. */
crema_status features_extract(net *n, const features_extract_options *o, long *written,
                              crema_error *err);

/* The LMDB of the Data layer feeding blob 0 of the net's first Data
 * layer, or NULL when the net has none. */
const char *features_net_source(const net *n);

/* A feature database in memory. */
typedef struct feature_set {
  size_t n;                   /* records */
  size_t dim;                 /* values per record */
  int channels, height, width;
  float *data;                /* n x dim, row-major */
  char **keys;                /* n keys (NUL-terminated copies) */
  int *labels;                /* n labels (Datum.label; 0 when unset) */
} feature_set;

/* Reads every record of an LMDB of float Datums (uint8 data is read as
 * floats too).  Records must agree in size. */
crema_status feature_set_load(const char *path, feature_set *out, crema_error *err);
void feature_set_free(feature_set *s);

/* The part of a key after the 10-digit index and '_' that --source
 * appends (the source record's key), or the whole key otherwise. */
const char *feature_key_source(const char *key);

#endif
