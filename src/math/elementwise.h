/* Element-wise and per-channel kernels that split long arrays over the
 * thread team (core/parallel.h), so that layers call one function instead
 * of each writing a job struct and a range callback.  Each element is
 * computed the same way whichever member takes it: results do not depend
 * on the team's size. */
#ifndef CREMA_MATH_ELEMENTWISE_H
#define CREMA_MATH_ELEMENTWISE_H

#include <stddef.h>

#include "core/blob.h"

/* y = relu_caffe(x, slope) (math/activation.h); y may be x. */
void ew_relu(const float *x, float *y, size_t n, float slope);

/* dx = dy * ((x > 0) + slope * (x <= 0)), Caffe's ReLU backward; dx may
 * be dy (and x may then be y). */
void ew_relu_backward(const float *x, const float *dy, float *dx, size_t n, float slope);

/* y = x * scale + shift, Caffe's Power with power 1: the multiply by 1 and
 * the add of 0 are skipped as Caffe skips them (they would turn -0 into
 * +0); y may be x. */
void ew_affine(const float *x, float scale, float shift, float *y, size_t n);

/* y = the sum of the diffs of blobs[0..k) (k >= 1, n values each), added
 * in order as Caffe's Split backward adds them (caffe_add of the first
 * two, then caffe_axpy of the others). */
void ew_sum_diffs(blob *const *blobs, int k, float *y, size_t n);

/* sums[c] += the sum of x[c * spatial .. (c + 1) * spatial) for each of
 * the channels (a convolution's bias gradient), in eight running sums. */
void ew_channel_sums_add(float *sums, const float *x, int channels, size_t spatial);

/* The class-balanced sigmoid cross-entropy of one item of n values (HED's
 * loss): a value weighs beta where t is 1, 1 - beta where t is 0, and
 * nothing elsewhere.  Returns loss plus the weighted terms, which are
 * summed in double in fixed chunks added in order, so that the sum does
 * not depend on the team's size; each weighted value's sigmoid goes to sig
 * (others are left alone), for the gradient. */
double ew_balanced_sigmoid_ce_add(double loss, const float *x, const float *t, size_t n,
                                  float beta, float *sig);

/* dx = scale * weight * (sig - t), 0 where the weight is 0, with
 * ew_balanced_sigmoid_ce_add's weights and sigmoids. */
void ew_balanced_sigmoid_ce_grad(const float *t, const float *sig, size_t n, float beta,
                                 float scale, float *dx);

/* Copies between whole and its parts along axis (Concat's forward and
 * Slice's backward take to_whole 1), data or diffs (use_diff); a part i
 * whose want[i] is 0 is skipped (want may be NULL). */
void ew_axis_copy(int axis, const blob *whole, blob *const *parts, int nparts, int to_whole,
                  int use_diff, const int *want);

#endif
