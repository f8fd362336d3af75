/* What `crema segment` does, in a few lines of a C program over crema.h
 * alone (README, "Segmenting from C"): segment IMAGE with the model, print
 * its size and lesion pixel count.  For the test (segment_api.sh) it also
 * segments the decoded pixels (crema_segment_pixels), which must give the
 * same mask, and counts the pixels where the mask differs from MASK.png
 * (crema segment's ID_segmentation.png). */
#include <stdio.h>
#include <string.h>

#include "crema.h"

/* Reports ERR and releases the segmenter, so that a leak checker
 * (the ASan build of the test suite) sees the error paths clean too. */
static int fail(crema_segmenter *seg, const crema_error *err) {
  fprintf(stderr, "segment_example: %s\n", err->message);
  crema_segmenter_close(seg);
  return 1;
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: segment_example MODEL WEIGHTS IMAGE [MASK.png]\n");
    return 2;
  }
  crema_error err;
  crema_segmenter *seg = NULL;
  crema_segmentation r, again;
  if (crema_segmenter_open(argv[1], argv[2], NULL, &seg, &err) != CREMA_OK)
    return fail(seg, &err);
  if (crema_segment_file(seg, argv[3], &r, &err) != CREMA_OK)
    return fail(seg, &err);
  size_t n = (size_t)r.width * (size_t)r.height, lesion = 0;
  for (size_t i = 0; i < n; i++)
    lesion += r.mask[i] == 255;
  printf("%dx%d at %d: %zu lesion pixels\n", r.width, r.height, crema_segmenter_size(seg),
         lesion);

  /* The same through a pixel buffer. */
  int h, w, c;
  unsigned char *pixels;
  if (crema_image_read(argv[3], 3, &h, &w, &c, &pixels, &err) != CREMA_OK) {
    crema_segmentation_free(&r);
    return fail(seg, &err);
  }
  if (crema_segment_pixels(seg, pixels, w, h, c, &again, &err) != CREMA_OK) {
    crema_free(pixels);
    crema_segmentation_free(&r);
    return fail(seg, &err);
  }
  printf("pixels: %s\n", memcmp(again.mask, r.mask, n) || memcmp(again.fuse, r.fuse,
                                                               n * sizeof(float))
                             ? "differ"
                             : "same");
  crema_free(pixels);
  crema_segmentation_free(&again);

  if (argc > 4) {
    unsigned char *mask;
    if (crema_image_read(argv[4], 1, &h, &w, &c, &mask, &err) != CREMA_OK) {
      crema_segmentation_free(&r);
      return fail(seg, &err);
    }
    size_t differ = 0;
    if (w != r.width || h != r.height)
      differ = n;
    else
      for (size_t i = 0; i < n; i++)
        differ += (mask[i] > 127) != (r.mask[i] == 255);
    printf("differ from %s: %zu\n", argv[4], differ);
    crema_free(mask);
  }
  crema_segmentation_free(&r);
  crema_segmenter_close(seg);
  return 0;
}
