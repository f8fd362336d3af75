/* Activations whose bits several places must agree on.  Caffe's ReLU is
 * shared by the ReLU layer and the convolutions that apply a following
 * in-place ReLU in their output pass: both must give the same bits, so both
 * use Caffe's std::max(x, 0) + slope * std::min(x, 0) with its comparisons
 * (a NaN stays NaN; with slope 0, -inf gives NaN).  The sigmoid and its
 * cross-entropy serve the Sigmoid layer, the sigmoid losses and their
 * kernels (math/elementwise.h). */
#ifndef CREMA_MATH_ACTIVATION_H
#define CREMA_MATH_ACTIVATION_H

#include <math.h>

static inline float relu_caffe(float x, float slope) {
  float pos = x < 0.0f ? 0.0f : x;
  float neg = 0.0f < x ? 0.0f : x;
  return pos + slope * neg;
}

/* Caffe's sigmoid, 0.5 tanh(x / 2) + 0.5 in double: stable for large |x|,
 * and the same bits in the Sigmoid layer and the sigmoid losses. */
static inline float sigmoid_caffe(float x) {
  return (float)(0.5 * tanh(0.5 * (double)x) + 0.5);
}

/* Numerically stable -[t log s(x) + (1 - t) log(1 - s(x))], as Caffe writes
 * it for its sigmoid cross-entropy loss; *e is the exp(-|x|) it takes (NaN
 * for infinite or NaN x). */
static inline double sigmoid_ce_term_exp(float x, float t, double *e) {
  double pos = x >= 0 ? 1.0 : 0.0;
  *e = exp((double)x - 2.0 * x * pos);
  return -((double)x * ((double)t - pos) - log1p(*e));
}

/* The sigmoid from sigmoid_ce_term_exp's e, at most 1 ulp (6e-8) from
 * sigmoid_caffe for every finite float; infinite and NaN x (e NaN) take
 * the tanh form's limits. */
static inline float sigmoid_from_exp(float x, double e) {
  if (e != e)
    return sigmoid_caffe(x);
  return (float)(x >= 0 ? 1.0 / (1.0 + e) : e / (1.0 + e));
}

#endif
