/* libFuzzer harness for PNG decoding (libpng through io/image.c). */
#include "config.h"

#include "fuzz_image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_image(data, size, IMAGE_FORMAT_PNG);
  return 0;
}
