/* Conversions between Caffe's BlobProto (and NumPy .npy files) and blobs. */
#ifndef CREMA_IO_BLOBPROTO_H
#define CREMA_IO_BLOBPROTO_H

#include "caffe.pb-c.h"
#include "core/blob.h"

/* The shape a BlobProto declares: its `shape` if present, else the legacy
 * num/channels/height/width (4 axes). */
crema_status blobproto_shape(const Caffe__BlobProto *bp, int *num_axes, int *shape,
                             crema_error *err);
/* Reshapes b to bp's shape and copies data (float or double_data); when
 * with_diff and bp has a diff, copies that too.  The value count must match
 * the shape. */
crema_status blobproto_to_blob(const Caffe__BlobProto *bp, blob *b, int with_diff,
                               crema_error *err);
/* Copies only the values into b, whose shape must already have bp's count. */
crema_status blobproto_copy_data(const Caffe__BlobProto *bp, blob *b, crema_error *err);
/* Copies bp's data (diff 0) or diff values into dst, as many as it holds:
 * its double values when it has any (as Caffe's Blob::FromProto), else its
 * floats. */
void blobproto_values(const Caffe__BlobProto *bp, int diff, float *dst);
/* A new BlobProto (shape + data, and diff when with_diff); free with
 * protobuf_c_message_free_unpacked. */
crema_status blob_to_blobproto(const blob *b, int with_diff, Caffe__BlobProto **out,
                               crema_error *err);

/* Reads a .binaryproto BlobProto file or a .npy (float32/float64, C order,
 * little-endian) into b.  has_diff receives whether a diff was read. */
crema_status blob_read_file(const char *path, blob *b, int *has_diff, crema_error *err);
crema_status npy_read(const char *path, blob *b, crema_error *err);
crema_status npy_write(const char *path, const blob *b, int use_diff, crema_error *err);

#endif
