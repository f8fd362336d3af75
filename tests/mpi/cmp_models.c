/* cmp_models A.caffemodel B.caffemodel TOL: compares the weights of two
 * snapshots layer by layer (matched by name): rel = max|a - b| / max|b|
 * over each blob must be <= TOL, and TOL 0 asks for the same bits.  Prints
 * the largest rel; exits 1 when a blob differs more, 2 on bad input. */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "caffe.pb-c.h"
#include "io/binary.h"

static Caffe__NetParameter *read_model(const char *path) {
  ProtobufCMessage *m = NULL;
  crema_error err = {0};
  if (bin_read_file(path, &caffe__net_parameter__descriptor, &m, &err) != CREMA_OK) {
    fprintf(stderr, "cmp_models: %s\n", err.message);
    return NULL;
  }
  return (Caffe__NetParameter *)m;
}

static const Caffe__LayerParameter *find_layer(const Caffe__NetParameter *n, const char *name) {
  for (size_t i = 0; i < n->n_layer; i++)
    if (n->layer[i]->name && !strcmp(n->layer[i]->name, name))
      return n->layer[i];
  return NULL;
}

/* rel of one blob pair, or -1 when their sizes differ. */
static double blob_rel(const Caffe__BlobProto *a, const Caffe__BlobProto *b, int *same_bits) {
  if (a->n_data != b->n_data)
    return -1;
  double num = 0, den = 0;
  for (size_t i = 0; i < b->n_data; i++) {
    num = fmax(num, fabs((double)a->data[i] - b->data[i]));
    den = fmax(den, fabs((double)b->data[i]));
  }
  if (b->n_data && memcmp(a->data, b->data, b->n_data * sizeof(float)))
    *same_bits = 0;
  return den > 0 ? num / den : num;
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: cmp_models A.caffemodel B.caffemodel TOL\n");
    return 2;
  }
  const double tol = atof(argv[3]);
  Caffe__NetParameter *a = read_model(argv[1]), *b = read_model(argv[2]);
  if (!a || !b)
    return 2;
  double worst = 0;
  int same_bits = 1, blobs = 0, bad = 0;
  for (size_t i = 0; i < b->n_layer; i++) {
    const Caffe__LayerParameter *lb = b->layer[i];
    if (!lb->n_blobs)
      continue;
    const Caffe__LayerParameter *la = find_layer(a, lb->name);
    if (!la || la->n_blobs != lb->n_blobs) {
      fprintf(stderr, "cmp_models: layer '%s': missing or another blob count in %s\n",
              lb->name, argv[1]);
      return 2;
    }
    for (size_t k = 0; k < lb->n_blobs; k++, blobs++) {
      const double rel = blob_rel(la->blobs[k], lb->blobs[k], &same_bits);
      if (rel < 0) {
        fprintf(stderr, "cmp_models: layer '%s' blob %zu: sizes differ\n", lb->name, k);
        return 2;
      }
      if (rel > tol) {
        fprintf(stderr, "cmp_models: layer '%s' blob %zu: rel %g > %g\n", lb->name, k, rel,
                tol);
        bad = 1;
      }
      worst = fmax(worst, rel);
    }
  }
  printf("%d blobs, max rel %g%s\n", blobs, worst, same_bits ? ", same bits" : "");
  if (tol == 0 && !same_bits)
    bad = 1;
  protobuf_c_message_free_unpacked(&a->base, NULL);
  protobuf_c_message_free_unpacked(&b->base, NULL);
  return bad || blobs == 0;
}
