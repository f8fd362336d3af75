/* The input sizes a net can take (see stride.h). */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "graph/stride.h"

/* The spatial stride of one layer: how many input pixels one output pixel
 * steps over (the larger of the two axes).  Deconvolution's stride
 * multiplies instead; the caller divides. */
static int layer_stride(const Caffe__LayerParameter *lp) {
  int sh = 1, sw = 1;
  if (lp->convolution_param) {
    const Caffe__ConvolutionParameter *c = lp->convolution_param;
    sh = sw = c->n_stride > 0 ? (int)c->stride[0] : 1;
    if (c->n_stride > 1)
      sw = (int)c->stride[1];
    if (c->has_stride_h)
      sh = (int)c->stride_h;
    if (c->has_stride_w)
      sw = (int)c->stride_w;
  } else if (lp->pooling_param) {
    const Caffe__PoolingParameter *p = lp->pooling_param;
    if (p->global_pooling)
      return 1; /* any size pools to 1x1 */
    sh = sw = (int)p->stride;
    if (p->has_stride_h)
      sh = (int)p->stride_h;
    if (p->has_stride_w)
      sw = (int)p->stride_w;
  } else {
    return 1;
  }
  int s = sh > sw ? sh : sw;
  return s > 0 ? s : 1;
}

static long gcd(long a, long b) {
  while (b) {
    long t = a % b;
    a = b;
    b = t;
  }
  return a;
}

/* Factor of a blob by name among the first n of names (1 if unknown). */
static long factor_of(const char *name, const char *const *names, const long *factors, int n) {
  for (int k = n - 1; k >= 0; k--)
    if (!strcmp(names[k], name))
      return factors[k];
  return 1;
}

int net_param_size_multiple(Caffe__LayerParameter *const *layers, size_t nlayers) {
  enum { MAX_TRACKED = 4096, LIMIT = 1 << 20 };
  const char *names[MAX_TRACKED];
  long factors[MAX_TRACKED];
  int nt = 0;
  long multiple = 1;
  for (size_t i = 0; i < nlayers; i++) {
    const Caffe__LayerParameter *lp = layers[i];
    long in = 1;
    for (size_t j = 0; j < lp->n_bottom; j++) {
      long f = factor_of(lp->bottom[j], names, factors, nt);
      in = f > in ? f : in;
    }
    long s = layer_stride(lp), out = in;
    if (!strcmp(lp->type, "Deconvolution"))
      out = in % s == 0 ? in / s : 1;
    else if (in <= LIMIT / s)
      out = in * s;
    for (size_t j = 0; j < lp->n_top && nt < MAX_TRACKED; j++) {
      names[nt] = lp->top[j];
      factors[nt++] = out;
    }
    if (out > 1 && multiple <= LIMIT / out)
      multiple = multiple / gcd(multiple, out) * out;
  }
  return (int)multiple;
}
