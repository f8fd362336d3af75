/* Pooling's kernels: MAX and AVE windows over the planes of an
 * N x C x H x W blob with Caffe's PoolingLayer arithmetic (windows clipped
 * to the image, averages divided by the window clipped to the padded
 * image, the argmax's first maximum in scan order), split over the thread
 * team by planes.  The layer (layers/pool.c) reads the parameters and
 * sizes; these take the geometry it computed. */
#ifndef CREMA_MATH_POOLING_H
#define CREMA_MATH_POOLING_H

#include <stddef.h>

typedef struct pool_geom {
  int kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w;
  int height, width;      /* each input plane */
  int pooled_h, pooled_w; /* each output plane */
} pool_geom;

/* y = the maximum of each window of the planes of x; its index in the
 * plane goes to mask, or to fmask as a float (Caffe's mask top) when fmask
 * is not NULL.  A window of only -inf or NaN has index -1. */
void pool_max_forward(const pool_geom *g, size_t planes, const float *x, float *y, int *mask,
                      float *fmask);
/* y = the mean of each window of the planes of x. */
void pool_ave_forward(const pool_geom *g, size_t planes, const float *x, float *y);

/* dx = the gradients dy passed to where forward's maxima were (fmask's
 * when not NULL, else mask's), and 0 elsewhere. */
void pool_max_backward(const pool_geom *g, size_t planes, const float *dy, const int *mask,
                       const float *fmask, float *dx);
/* dx = dy spread evenly over each window. */
void pool_ave_backward(const pool_geom *g, size_t planes, const float *dy, float *dx);

#endif
