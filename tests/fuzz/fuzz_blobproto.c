/* libFuzzer harness for BlobProto files (.binaryproto mean files, golden
 * blobs): the reader the Data layer's mean_file and compute-image-mean use,
 * legacy num/channels/height/width included. */
#include "config.h"

#include "fuzz.h"

#include "core/blob.h"
#include "io/blobproto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  crema_error err;
  blob *b = blob_create("fuzz", &err);
  if (!b)
    return 0;
  int has_diff = 0;
  crema_status st = blob_read_file(fuzz_write_file(data, size, ".binaryproto"), b, &has_diff,
                                   &err);
  fuzz_expect_message(st, &err);
  blob_free(b);
  return 0;
}
