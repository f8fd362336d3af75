/* Lesion mask post-processing (see postproc.h). */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lesion/postproc.h"

crema_status lesion_parse_keep(const char *text, lesion_keep *out, crema_error *err) {
  if (!strcmp(text, "all"))
    *out = LESION_KEEP_ALL;
  else if (!strcmp(text, "largest"))
    *out = LESION_KEEP_LARGEST;
  else if (!strcmp(text, "centre") || !strcmp(text, "center"))
    *out = LESION_KEEP_CENTRE;
  else
    return crema_fail(err, CREMA_ERR_INVALID, "keep '%s': expected all, largest or centre", text);
  return CREMA_OK;
}

/* Pixel count of a mask, overflow-checked (the queue holds indices). */
static crema_status pixel_count(int width, int height, size_t *n, crema_error *err) {
  if (width <= 0 || height <= 0 || !size_mul((size_t)width, (size_t)height, n) ||
      *n > (size_t)UINT32_MAX)
    return crema_fail(err, CREMA_ERR_INVALID, "mask %dx%d: bad size", width, height);
  return CREMA_OK;
}

/* Labels the component of seed with `label' (labels hold 0 for unvisited
 * pixels of value `want'), by breadth-first search over queue; returns its
 * size.  conn8: 8-connected, else 4-connected. */
static size_t flood(const unsigned char *mask, int want, uint32_t *labels, uint32_t *queue,
                    int width, int height, size_t seed, uint32_t label, int conn8) {
  size_t head = 0, tail = 0;
  labels[seed] = label;
  queue[tail++] = (uint32_t)seed;
  while (head < tail) {
    size_t p = queue[head++];
    int x = (int)(p % (size_t)width), y = (int)(p / (size_t)width);
    for (int dy = -1; dy <= 1; dy++)
      for (int dx = -1; dx <= 1; dx++) {
        if ((!dx && !dy) || (!conn8 && dx && dy))
          continue;
        int nx = x + dx, ny = y + dy;
        if (nx < 0 || ny < 0 || nx >= width || ny >= height)
          continue;
        size_t q = (size_t)ny * (size_t)width + (size_t)nx;
        if (labels[q] || (mask[q] != 0) != want)
          continue;
        labels[q] = label;
        queue[tail++] = (uint32_t)q;
      }
  }
  return tail;
}

/* Squared distance of pixel p from the image centre, in half pixels. */
static uint64_t centre_distance(size_t p, int width, int height) {
  int64_t dx = 2 * (int64_t)(p % (size_t)width) + 1 - width;
  int64_t dy = 2 * (int64_t)(p / (size_t)width) + 1 - height;
  return (uint64_t)(dx * dx + dy * dy);
}

crema_status lesion_keep_component(unsigned char *mask, int width, int height, lesion_keep keep,
                                   crema_error *err) {
  size_t n;
  CREMA_TRY(pixel_count(width, height, &n, err));
  if (keep == LESION_KEEP_ALL) {
    for (size_t i = 0; i < n; i++)
      mask[i] = mask[i] ? 255 : 0;
    return CREMA_OK;
  }
  uint32_t *labels = crema_calloc(n, sizeof *labels, err);
  uint32_t *queue = labels ? crema_malloc(n * sizeof *queue, err) : NULL;
  if (!queue) {
    free(labels);
    return CREMA_ERR_NOMEM;
  }
  uint32_t next = 0, best = 0;
  size_t best_size = 0;
  uint64_t best_dist = UINT64_MAX;
  for (size_t i = 0; i < n; i++) {
    if (!mask[i] || labels[i])
      continue;
    size_t size = flood(mask, 1, labels, queue, width, height, i, ++next, 1);
    uint64_t dist = UINT64_MAX;
    if (keep == LESION_KEEP_CENTRE)
      for (size_t k = 0; k < size; k++) {
        uint64_t d = centre_distance(queue[k], width, height);
        dist = d < dist ? d : dist;
      }
    if (keep == LESION_KEEP_LARGEST ? size > best_size : dist < best_dist) {
      best = next;
      best_size = size;
      best_dist = dist;
    }
  }
  for (size_t i = 0; i < n; i++)
    mask[i] = best && labels[i] == best ? 255 : 0;
  free(labels);
  free(queue);
  return CREMA_OK;
}

crema_status lesion_fill_holes(unsigned char *mask, int width, int height, crema_error *err) {
  size_t n;
  CREMA_TRY(pixel_count(width, height, &n, err));
  uint32_t *labels = crema_calloc(n, sizeof *labels, err);
  uint32_t *queue = labels ? crema_malloc(n * sizeof *queue, err) : NULL;
  if (!queue) {
    free(labels);
    return CREMA_ERR_NOMEM;
  }
  /* Background reached from the edges is labelled 1; the rest is hole. */
  for (size_t i = 0; i < n; i++) {
    int x = (int)(i % (size_t)width), y = (int)(i / (size_t)width);
    int edge = x == 0 || y == 0 || x == width - 1 || y == height - 1;
    if (edge && !mask[i] && !labels[i])
      flood(mask, 0, labels, queue, width, height, i, 1, 0);
  }
  for (size_t i = 0; i < n; i++)
    mask[i] = mask[i] || !labels[i] ? 255 : 0;
  free(labels);
  free(queue);
  return CREMA_OK;
}
