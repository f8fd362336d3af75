/* Caffe's ReLU, shared by the ReLU layer and the convolutions that apply a
 * following in-place ReLU in their output pass: both must give the same
 * bits, so both use Caffe's std::max(x, 0) + slope * std::min(x, 0) with
 * its comparisons (a NaN stays NaN; with slope 0, -inf gives NaN). */
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

#endif
