/* libFuzzer harness for JPEG decoding (libjpeg-turbo through io/image.c). */
#include "config.h"

#include "fuzz_image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_image(data, size, IMAGE_FORMAT_JPEG);
  return 0;
}
