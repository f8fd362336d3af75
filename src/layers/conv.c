/* Convolution and Deconvolution, as Caffe's BaseConvolutionLayer: grouped,
 * dilated, strided and padded 2-D (or 1-D / 0-D) convolution over the axes
 * after the channel axis.  A deconvolution is the convolution run backward:
 * its forward pass is the convolution's data gradient and vice versa, with
 * the weights shaped bottom_channels x (num_output / group) x kernel.  The
 * per-image arithmetic lives behind math/conv_engine.h. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "core/options.h"
#include "layers/conv.h"
#include "layers/layer.h"
#include "layers/registry.h"
#include "math/conv_engine.h"
#include "math/elementwise.h"

/* Kernel, stride, pad and dilation above this are treated as hostile. */
#define CONV_MAX_PARAM (1 << 24)

typedef struct conv_priv {
  int reverse;        /* Deconvolution */
  int channel_axis;
  int num_spatial;    /* spatial axes in the bottom: 0, 1 or 2 */
  /* Per spatial dimension, index 0 = height, 1 = width (a 1-D convolution
   * runs along the width with a height of 1). */
  int kernel[2], stride[2], pad[2], dilation[2];
  int channels;       /* bottom channels */
  int num_output;
  int group;
  int bias_term;
  int num;            /* product of the axes before the channel axis */
  size_t bottom_dim, top_dim, out_spatial;
  conv_geom geom;     /* one image of the underlying convolution */
  conv_engine engine;
  size_t ws_floats;
  const char *engine_name;
} conv_priv;

/* Reads one spatial parameter the way Caffe does: either the explicit _h/_w
 * pair (2-D only) or a repeated field given once or once per spatial axis. */
typedef struct spatial_field {
  const char *name;   /* the repeated field */
  const char *hw;     /* prefix of its _h/_w variants */
  size_t n;
  const uint32_t *v;
  int has_h, has_w;
  uint32_t h, w;
  int has_hw_form;    /* the field has _h/_w variants */
  int needs_value;    /* kernel_size: no default */
  int def;
} spatial_field;

static crema_status read_spatial(layer *l, const spatial_field *f, int nsp, int *out,
                                 crema_error *err) {
  uint32_t vals[2] = {(uint32_t)f->def, (uint32_t)f->def};
  if (f->has_hw_form && (f->has_h || f->has_w)) {
    if (nsp != 2)
      return layer_fail(l, err, CREMA_ERR_INVALID,
                        "%s_h & %s_w can only be used for 2-D convolution", f->hw, f->hw);
    if (f->n != 0)
      return layer_fail(l, err, CREMA_ERR_INVALID,
                        "either %s or %s_h/%s_w should be specified, not both", f->name,
                        f->hw, f->hw);
    vals[0] = f->h;
    vals[1] = f->w;
  } else {
    int ok = f->n == 1 || f->n == (size_t)nsp || (!f->needs_value && f->n == 0);
    if (!ok)
      return layer_fail(l, err, CREMA_ERR_INVALID,
                        "%s must be specified once, or once per spatial dimension (%s "
                        "specified %zu times; %d spatial dims)",
                        f->name, f->name, f->n, nsp);
    for (int i = 0; i < nsp; i++)
      if (f->n > 0)
        vals[i] = f->v[f->n == 1 ? 0 : i];
  }
  for (int i = 0; i < nsp; i++) {
    if (vals[i] > CONV_MAX_PARAM)
      return layer_fail(l, err, CREMA_ERR_INVALID, "%s %u is out of range", f->name,
                        (unsigned)vals[i]);
    out[i] = (int)vals[i];
  }
  return CREMA_OK;
}

/* Spreads values given per spatial axis over (height, width). */
static void place_spatial(const int *given, int nsp, int fill, int *hw) {
  hw[0] = hw[1] = fill;
  if (nsp == 2) {
    hw[0] = given[0];
    hw[1] = given[1];
  } else if (nsp == 1) {
    hw[1] = given[0];
  }
}

static crema_status read_geometry(layer *l, const Caffe__ConvolutionParameter *cp, int nsp,
                                  conv_priv *p, crema_error *err) {
  int v[2];
  spatial_field kernel = {.name = "kernel_size", .hw = "kernel", .n = cp->n_kernel_size,
                          .v = cp->kernel_size, .has_h = cp->has_kernel_h,
                          .has_w = cp->has_kernel_w, .h = cp->kernel_h, .w = cp->kernel_w,
                          .has_hw_form = 1, .needs_value = 1};
  CREMA_TRY(read_spatial(l, &kernel, nsp, v, err));
  for (int i = 0; i < nsp; i++)
    if (v[i] <= 0)
      return layer_fail(l, err, CREMA_ERR_INVALID, "filter dimensions must be nonzero");
  place_spatial(v, nsp, 1, p->kernel);
  spatial_field stride = {.name = "stride", .hw = "stride", .n = cp->n_stride,
                          .v = cp->stride, .has_h = cp->has_stride_h,
                          .has_w = cp->has_stride_w, .h = cp->stride_h, .w = cp->stride_w,
                          .has_hw_form = 1, .def = 1};
  CREMA_TRY(read_spatial(l, &stride, nsp, v, err));
  for (int i = 0; i < nsp; i++)
    if (v[i] <= 0)
      return layer_fail(l, err, CREMA_ERR_INVALID, "stride dimensions must be nonzero");
  place_spatial(v, nsp, 1, p->stride);
  spatial_field pad = {.name = "pad", .hw = "pad", .n = cp->n_pad, .v = cp->pad,
                       .has_h = cp->has_pad_h, .has_w = cp->has_pad_w, .h = cp->pad_h,
                       .w = cp->pad_w, .has_hw_form = 1};
  CREMA_TRY(read_spatial(l, &pad, nsp, v, err));
  place_spatial(v, nsp, 0, p->pad);
  spatial_field dilation = {.name = "dilation", .n = cp->n_dilation, .v = cp->dilation,
                            .def = 1};
  CREMA_TRY(read_spatial(l, &dilation, nsp, v, err));
  place_spatial(v, nsp, 1, p->dilation);
  return CREMA_OK;
}

static crema_status create_params(layer *l, const Caffe__ConvolutionParameter *cp, conv_priv *p,
                                  crema_error *err) {
  int conv_out = p->reverse ? p->channels : p->num_output;
  int conv_in = p->reverse ? p->num_output : p->channels;
  int shape[4] = {conv_out, conv_in / p->group, 0, 0};
  int naxes = 2;
  if (p->num_spatial == 2) {
    shape[naxes++] = p->kernel[0];
    shape[naxes++] = p->kernel[1];
  } else if (p->num_spatial == 1) {
    shape[naxes++] = p->kernel[1];
  }
  CREMA_TRY(layer_alloc_blobs(l, p->bias_term ? 2 : 1, err));
  CREMA_TRY(layer_make_param(l, 0, naxes, shape, cp->weight_filler, err));
  if (p->bias_term)
    CREMA_TRY(layer_make_param(l, 1, 1, &p->num_output, cp->bias_filler, err));
  return CREMA_OK;
}

static crema_status conv_setup(layer *l, const blob_list *bottom, const blob_list *top,
                               crema_error *err) {
  Caffe__ConvolutionParameter defaults;
  const Caffe__ConvolutionParameter *cp = l->param->convolution_param;
  if (!cp) {
    caffe__convolution_parameter__init(&defaults);
    cp = &defaults;
  }
  if (top->n != bottom->n)
    return layer_fail(l, err, CREMA_ERR_INVALID, "needs one top per bottom (%d bottoms, %d tops)",
                      bottom->n, top->n);
  conv_priv *p = crema_calloc(1, sizeof *p, err);
  if (!p)
    return CREMA_ERR_NOMEM;
  l->priv = p;
  p->reverse = !strcmp(l->ops->type, "Deconvolution");
  const blob *b0 = bottom->v[0];
  crema_status st = blob_canonical_axis(b0, cp->axis, &p->channel_axis, err);
  if (st != CREMA_OK) {
    crema_error_prefix(err, "layer '%s' (%s): axis: ", l->name, l->ops->type);
    return st;
  }
  p->num_spatial = b0->num_axes - p->channel_axis - 1;
  if (p->num_spatial > 2)
    return layer_fail(l, err, CREMA_ERR_UNSUPPORTED,
                      "%d spatial axes: N-D convolution beyond 2-D is not supported",
                      p->num_spatial);
  CREMA_TRY(read_geometry(l, cp, p->num_spatial, p, err));
  p->channels = b0->shape[p->channel_axis];
  if (!cp->has_num_output || cp->num_output == 0 || cp->num_output > 0x7fffffffu)
    return layer_fail(l, err, CREMA_ERR_INVALID, "num_output must be a positive int (got %u)",
                      (unsigned)cp->num_output);
  p->num_output = (int)cp->num_output;
  if (cp->group == 0 || cp->group > 0x7fffffffu)
    return layer_fail(l, err, CREMA_ERR_INVALID, "group must be a positive int (got %u)",
                      (unsigned)cp->group);
  p->group = (int)cp->group;
  if (p->channels % p->group != 0)
    return layer_fail(l, err, CREMA_ERR_INVALID,
                      "bottom channels %d are not a multiple of group %d", p->channels,
                      p->group);
  if (p->num_output % p->group != 0)
    return layer_fail(l, err, CREMA_ERR_INVALID, "num_output %d is not a multiple of group %d",
                      p->num_output, p->group);
  p->bias_term = cp->bias_term;
  p->engine_name = layer_options(l)->conv_engine;
  st = conv_engine_check_name(p->engine_name, err);
  if (st != CREMA_OK) {
    crema_error_prefix(err, "layer '%s' (%s): convolution engine (CREMA_CONV): ", l->name,
                       l->ops->type);
    return st;
  }
  return create_params(l, cp, p, err);
}

/* Spatial size of the top along one dimension (0 on overflow or when the
 * kernel does not fit). */
static int output_dim(const conv_priv *p, int d, int in) {
  long long ext = (long long)p->dilation[d] * (p->kernel[d] - 1) + 1;
  long long out;
  if (p->reverse)
    out = (long long)p->stride[d] * (in - 1) + ext - 2LL * p->pad[d];
  else
    out = ((long long)in + 2LL * p->pad[d] - ext) / p->stride[d] + 1;
  return out > 0 && out <= 0x3fffffff ? (int)out : 0;
}

static crema_status check_bottoms(layer *l, const blob_list *bottom, const conv_priv *p,
                                  crema_error *err) {
  const blob *b0 = bottom->v[0];
  char s0[128], s1[128];
  if (b0->num_axes != p->channel_axis + 1 + p->num_spatial)
    return layer_fail(l, err, CREMA_ERR_SHAPE, "bottom num_axes may not change (now %s)",
                      blob_shape_string(b0, s0, sizeof s0));
  if (b0->shape[p->channel_axis] != p->channels)
    return layer_fail(l, err, CREMA_ERR_SHAPE,
                      "bottom has %d channels on axis %d, the layer was set up for %d",
                      b0->shape[p->channel_axis], p->channel_axis, p->channels);
  for (int i = 1; i < bottom->n; i++)
    if (!blob_same_shape(b0, bottom->v[i]))
      return layer_fail(l, err, CREMA_ERR_SHAPE,
                        "all bottoms must have the same shape: bottom 0 is %s, bottom %d is %s",
                        blob_shape_string(b0, s0, sizeof s0), i,
                        blob_shape_string(bottom->v[i], s1, sizeof s1));
  return CREMA_OK;
}

static crema_status conv_reshape(layer *l, const blob_list *bottom, const blob_list *top,
                                 crema_error *err) {
  conv_priv *p = l->priv;
  const blob *b0 = bottom->v[0];
  CREMA_TRY(check_bottoms(l, bottom, p, err));
  int in_hw[2] = {1, 1}, out_hw[2] = {1, 1};
  const int *sp = b0->shape + p->channel_axis + 1;
  place_spatial(sp, p->num_spatial, 1, in_hw);
  for (int d = 0; d < 2; d++) {
    if ((long long)in_hw[d] + 2LL * p->pad[d] > 0x3fffffff)
      return layer_fail(l, err, CREMA_ERR_INVALID, "padded input is too large");
    out_hw[d] = output_dim(p, d, in_hw[d]);
    if (out_hw[d] <= 0) {
      char s[128];
      return layer_fail(l, err, CREMA_ERR_SHAPE,
                        "kernel %dx%d (dilation %dx%d, pad %dx%d, stride %dx%d) gives an empty "
                        "output for bottom %s",
                        p->kernel[0], p->kernel[1], p->dilation[0], p->dilation[1], p->pad[0],
                        p->pad[1], p->stride[0], p->stride[1], blob_shape_string(b0, s, sizeof s));
    }
  }
  /* The underlying convolution's input is the bottom, or the top for a
   * deconvolution. */
  const int *conv_in = p->reverse ? out_hw : in_hw;
  const int *conv_out = p->reverse ? in_hw : out_hw;
  im2col_shape *s = &p->geom.in;
  s->channels = p->reverse ? p->num_output : p->channels;
  s->height = conv_in[0];
  s->width = conv_in[1];
  s->kernel_h = p->kernel[0];
  s->kernel_w = p->kernel[1];
  s->pad_h = p->pad[0];
  s->pad_w = p->pad[1];
  s->stride_h = p->stride[0];
  s->stride_w = p->stride[1];
  s->dilation_h = p->dilation[0];
  s->dilation_w = p->dilation[1];
  s->out_h = conv_out[0];
  s->out_w = conv_out[1];
  p->geom.out_channels = p->reverse ? p->channels : p->num_output;
  p->geom.group = p->group;
  p->geom.threads = options_threads(layer_options(l));
  p->geom.simd = layer_options(l)->simd;

  int shape[BLOB_MAX_AXES];
  memcpy(shape, b0->shape, sizeof(int) * (size_t)p->channel_axis);
  int n = p->channel_axis;
  shape[n++] = p->num_output;
  if (p->num_spatial == 2)
    shape[n++] = out_hw[0];
  if (p->num_spatial >= 1)
    shape[n++] = out_hw[1];
  for (int t = 0; t < top->n; t++)
    CREMA_TRY(blob_reshape(top->v[t], n, shape, err));
  p->num = (int)blob_count_range(b0, 0, p->channel_axis);
  p->bottom_dim = blob_count_from(b0, p->channel_axis);
  p->top_dim = blob_count_from(top->v[0], p->channel_axis);
  p->out_spatial = blob_count_from(top->v[0], p->channel_axis + 1);

  size_t cols;
  if (!conv_geom_columns(&p->geom, &cols))
    return layer_fail(l, err, CREMA_ERR_NOMEM, "column buffer size overflows");
  conv_engine_resolve(p->engine_name, &p->geom, &p->engine, &p->ws_floats);
  if (p->ws_floats && !layer_workspace(l, p->ws_floats, err))
    return err ? err->status : CREMA_ERR_NOMEM;
  return CREMA_OK;
}

static crema_status conv_forward(layer *l, const blob_list *bottom, const blob_list *top,
                                 crema_error *err) {
  conv_priv *p = l->priv;
  float *ws = NULL;
  if (p->ws_floats && !(ws = layer_workspace(l, p->ws_floats, err)))
    return err ? err->status : CREMA_ERR_NOMEM;
  const float *w = l->blobs[0]->data;
  const float *bias = p->bias_term ? l->blobs[1]->data : NULL;
  for (int b = 0; b < bottom->n; b++) {
    const float *in = bottom->v[b]->data;
    float *out = top->v[b]->data;
    for (int n = 0; n < p->num; n++) {
      const float *x = in + (size_t)n * p->bottom_dim;
      float *y = out + (size_t)n * p->top_dim;
      if (p->reverse) {
        p->engine.backward_data(&p->geom, x, w, y, ws);
        conv_finish_output(y, bias, 0, p->num_output, p->out_spatial);
      } else {
        /* The engine adds the bias in its output pass. */
        p->engine.forward(&p->geom, x, w, bias, y, ws);
      }
    }
  }
  return CREMA_OK;
}

static crema_status conv_backward(layer *l, const blob_list *top, const int *propagate_down,
                                  const blob_list *bottom, crema_error *err) {
  conv_priv *p = l->priv;
  float *ws = NULL;
  if (p->ws_floats && !(ws = layer_workspace(l, p->ws_floats, err)))
    return err ? err->status : CREMA_ERR_NOMEM;
  for (int i = 0; i < l->nblobs; i++)
    if (l->param_propagate_down[i])
      CREMA_TRY(blob_ensure_diff(l->blobs[i], err));
  const float *w = l->blobs[0]->data;
  float *w_diff = l->blobs[0]->diff;
  int want_w = l->param_propagate_down[0];
  int want_b = p->bias_term && l->param_propagate_down[1];
  for (int b = 0; b < top->n; b++) {
    int want_x = propagate_down[b];
    if (want_x)
      CREMA_TRY(blob_ensure_diff(bottom->v[b], err));
    const float *top_diff = top->v[b]->diff;
    const float *x = bottom->v[b]->data;
    float *x_diff = bottom->v[b]->diff;
    for (int n = 0; n < p->num; n++) {
      const float *dy = top_diff + (size_t)n * p->top_dim;
      const float *xn = x + (size_t)n * p->bottom_dim;
      if (want_b)
        ew_channel_sums_add(l->blobs[1]->diff, dy, p->num_output, p->out_spatial);
      if (want_w) {
        if (p->reverse)
          p->engine.backward_weights(&p->geom, dy, xn, w_diff, ws);
        else
          p->engine.backward_weights(&p->geom, xn, dy, w_diff, ws);
      }
      if (want_x) {
        float *dx = x_diff + (size_t)n * p->bottom_dim;
        if (p->reverse)
          p->engine.forward(&p->geom, dy, w, NULL, dx, ws);
        else
          p->engine.backward_data(&p->geom, dy, w, dx, ws);
      }
    }
  }
  return CREMA_OK;
}

static void conv_destroy(layer *l) { free(l->priv); }

/* The engines apply the ReLU in their output pass, after the bias. */
static void conv_fuse_relu(layer *l) {
  conv_priv *p = l->priv;
  p->geom.relu = 1;
}

const layer_ops convolution_layer_ops = {
    .type = "Convolution",
    .min_bottoms = 1, .max_bottoms = -1, .min_tops = 1, .max_tops = -1,
    .setup = conv_setup, .reshape = conv_reshape, .forward = conv_forward,
    .backward = conv_backward, .destroy = conv_destroy, .fuse_relu = conv_fuse_relu,
};

/* Deconvolution adds its bias outside the engine and fuses no ReLU. */
const layer_ops deconvolution_layer_ops = {
    .type = "Deconvolution",
    .min_bottoms = 1, .max_bottoms = -1, .min_tops = 1, .max_tops = -1,
    .setup = conv_setup, .reshape = conv_reshape, .forward = conv_forward,
    .backward = conv_backward, .destroy = conv_destroy,
};

const char *conv_layer_engine(const layer *l) {
  if (l->ops != &convolution_layer_ops && l->ops != &deconvolution_layer_ops)
    return NULL;
  const conv_priv *p = l->priv;
  return p ? p->engine.name : NULL;
}
