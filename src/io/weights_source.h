/* Trained weights as a list of (layer name, blobs), whatever the file's
 * form: the one thing the net's weights matcher (graph/weights.c) reads.
 *
 * A binary .caffemodel (or .binaryproto) is not unpacked: the file is
 * mapped, its layers and blobs located by walking the wire format, and
 * each blob's values copied straight from the mapping into the caller's
 * floats (protobuf-c would first copy all of them into arrays of its own);
 * pages already copied are released, so the file never adds its size to
 * peak memory.  V2 `layer` and V1 `layers` entries, legacy blob dims,
 * packed or unpacked float and double values are all read in place.  V0
 * files (whose upgrade renames and drops layers) and text files are parsed
 * and upgraded (io/upgrade.h), and a NetParameter in memory is read as it
 * is.  Either way a blob is seen as a BlobProto header (shape or legacy
 * dims, and value counts) and its values are copied on request, double
 * values winning over float ones as in Caffe's Blob::FromProto. */
#ifndef CREMA_IO_WEIGHTS_SOURCE_H
#define CREMA_IO_WEIGHTS_SOURCE_H

#include <stddef.h>

#include "caffe.pb-c.h"
#include "core/error.h"

typedef struct weights_source weights_source;

/* Opens a weights file; errors name the file.  Notices about upgrading a
 * legacy file are logged under level. */
crema_status weights_source_open(const char *path, crema_log_level level, weights_source **out,
                                 crema_error *err);
/* The layers of a NetParameter in memory, which must outlive the source. */
crema_status weights_source_of_param(const Caffe__NetParameter *param, weights_source **out,
                                     crema_error *err);
void weights_source_close(weights_source *s);

/* The file's path (NULL for a NetParameter in memory) and net name ("" when
 * it has none). */
const char *weights_source_path(const weights_source *s);
const char *weights_source_net_name(const weights_source *s);

size_t weights_source_num_layers(const weights_source *s);
/* Layer k's name ("" when it has none) and number of blobs. */
const char *weights_source_layer_name(const weights_source *s, size_t k);
size_t weights_source_num_blobs(const weights_source *s, size_t k);

/* Blob j of layer k without its values: shape or legacy dims, and the
 * counts n_data, n_double_data, n_diff and n_double_diff (the value
 * pointers must not be read).  Valid until the next call.  Fails on a
 * corrupt blob; the message does not name the file. */
crema_status weights_source_blob(weights_source *s, size_t k, size_t j,
                                 const Caffe__BlobProto **header, crema_error *err);

/* Copies the data (diff 0) or diff values of the blob last returned by
 * weights_source_blob into dst, which holds as many floats as its header
 * counts (doubles when there are any, else floats). */
void weights_source_copy(weights_source *s, int diff, float *dst);

#endif
