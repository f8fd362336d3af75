/* libFuzzer harness for NumPy .npy files (the header's dictionary, dtype,
 * byte order and shape). */
#include "config.h"

#include "fuzz.h"

#include "core/blob.h"
#include "io/blobproto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  crema_error err;
  blob *b = blob_create("fuzz", &err);
  if (!b)
    return 0;
  crema_status st = npy_read(fuzz_write_file(data, size, ".npy"), b, &err);
  fuzz_expect_message(st, &err);
  blob_free(b);
  return 0;
}
