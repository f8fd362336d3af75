/* Convolution engines: interchangeable implementations of one image's
 * grouped 2-D convolution and its two gradients.
 *
 * The layer (Convolution or Deconvolution) owns shapes and the batch loop;
 * an engine only maps one image.  Engines are chosen per geometry:
 * crema_options.conv_engine (CREMA_CONV) names a preferred engine ("gemm" is im2col + SGEMM as Caffe,
 * "direct" accumulates in registers for images of up to 4 channels,
 * "winograd" is F(4x4,3x3) for 3x3 stride-1 kernels, "auto", the default,
 * picks the fastest that applies); an engine that cannot handle a
 * geometry, or lacks an operation, falls back to gemm for it.  Scratch
 * space is bounded (a few MB) whatever the image size: engines work in
 * bands of output rows or blocks of tiles. */
#ifndef CREMA_MATH_CONV_ENGINE_H
#define CREMA_MATH_CONV_ENGINE_H

#include <stddef.h>

#include "core/error.h"
#include "math/im2col.h"

/* One image of a convolution: input in.channels x in.height x in.width
 * (in.out_h/out_w give the output's spatial size), output out_channels x
 * out_h x out_w; weights out_channels x (in.channels / group) x kernel_h x
 * kernel_w. */
typedef struct conv_geom {
  im2col_shape in;
  int out_channels;
  int group;
  /* Threads an engine may use; its scratch is sized for them (0 = 1). */
  int threads;
  /* Kernels: a crema_simd (crema_options.simd; 0 = the CPU's best). */
  int simd;
  /* forward ends with Caffe's ReLU (slope 0) after the bias: a following
   * in-place ReLU fused into the output pass.  Gradients ignore it. */
  int relu;
} conv_geom;

typedef struct conv_engine {
  const char *name;
  /* Whether the engine handles this geometry (NULL: every geometry). */
  int (*supports)(const conv_geom *g);
  /* Whether "auto" should pick it for this geometry (NULL: never). */
  int (*preferred)(const conv_geom *g);
  /* Whether the engine, picked by "auto" or named, also computes the data
   * gradient (data_preferred) and the weight gradient (weights_preferred)
   * for this geometry (NULL: yes); else gemm's runs.  The gradients feed
   * the training trajectory, whose rounding an engine must not move where
   * it gains no time (see math/winograd.c). */
  int (*data_preferred)(const conv_geom *g);
  int (*weights_preferred)(const conv_geom *g);
  /* Scratch floats one call needs (shared by the three operations). */
  size_t (*workspace)(const conv_geom *g);
  /* out = conv(in, w) (+ bias[channel] when bias is not NULL), through
   * the ReLU when g->relu. */
  void (*forward)(const conv_geom *g, const float *in, const float *w, const float *bias,
                  float *out, float *ws);
  /* in_diff = gradient of conv w.r.t. its input, given out_diff (overwrites). */
  void (*backward_data)(const conv_geom *g, const float *out_diff, const float *w,
                        float *in_diff, float *ws);
  /* w_diff += gradient w.r.t. the weights. */
  void (*backward_weights)(const conv_geom *g, const float *in, const float *out_diff,
                           float *w_diff, float *ws);
} conv_engine;

/* The im2col + SGEMM engine (Caffe's), which handles everything. */
extern const conv_engine conv_engine_gemm;
/* Winograd F(4x4,3x3) (math/winograd.c, weight gradient in
 * math/winograd_wgrad.c): 3x3, stride 1, dilation 1, pad <= 2.  Its
 * gradients run only where it is also preferred for them (at least 16
 * channels on both sides; for the weights at least 144 outputs), gemm's
 * elsewhere, even when CREMA_CONV names it. */
extern const conv_engine conv_engine_winograd;

/* Direct convolution for few input channels (math/conv_direct.c):
 * forward only, stride 1, no dilation, one group. */
extern const conv_engine conv_engine_direct;

/* Depthwise convolution, one channel per group (math/conv_depthwise.c):
 * any kernel, stride, pad and dilation, all three operations, no scratch. */
extern const conv_engine conv_engine_depthwise;

/* out[c][i] += bias[c] over channels planes of spatial values (Caffe adds
 * the bias after the product), then the ReLU when relu is set; bias may
 * be NULL. */
void conv_finish_output(float *out, const float *bias, int relu, int channels, size_t spatial);

/* Checks that name (NULL or "" for the default "auto") is a known engine. */
crema_status conv_engine_check_name(const char *name, crema_error *err);

/* Resolves the engine for g: the named one where it applies, gemm for
 * whatever it does not do.  *ws_floats receives the scratch size needed. */
void conv_engine_resolve(const char *name, const conv_geom *g, conv_engine *out,
                         size_t *ws_floats);

/* Overflow-checked size of a geometry's whole column matrix (the gemm
 * engine's scratch is a band of it). */
int conv_geom_columns(const conv_geom *g, size_t *floats);

#endif
