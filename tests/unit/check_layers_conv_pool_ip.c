/* Convolution, Deconvolution, Pooling, InnerProduct, Embed, im2col and the
 * fillers: forward passes against direct reference computations and hand
 * results, numeric gradient checks, error cases, and the BVLC Caffe golden
 * cases of these layers run at the layer level. */
#include "config.h"

#include <check.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/blobproto.h"
#include "io/text.h"
#include "layers/layer.h"
#include "math/filler.h"
#include "math/im2col.h"
#include "tests/unit/gradcheck.h"
#include "tests/unit/testutil.h"

/* ---- a layer with its own bottoms and tops ------------------------------ */

typedef struct harness {
  layer_ctx ctx;
  Caffe__LayerParameter *lp;
  layer *l;
  blob *bv[4], *tv[4];
  blob_list bottom, top;
} harness;

/* Creates the layer from text and bottoms of the given shapes filled from
 * a fixed seed; runs setup and reshape and returns their status. */
static crema_status harness_open(harness *h, const char *text, int nb, const int *naxes,
                                 const int (*shapes)[6], int nt, crema_error *err) {
  memset(h, 0, sizeof *h);
  rng_seed(&h->ctx.rng, 1234);
  /* The environment's engine and kernels, as the crema command's. */
  crema_options_from_env(&h->ctx.opts);
  h->lp = gc_parse_layer(text);
  ck_assert_int_eq(layer_create(h->lp, CAFFE__PHASE__TRAIN, &h->ctx, &h->l, err), CREMA_OK);
  crema_rng values;
  rng_seed(&values, 99);
  for (int i = 0; i < nb; i++) {
    ck_assert_ptr_nonnull(h->bv[i] = blob_create("bottom", err));
    ck_assert_int_eq(blob_reshape(h->bv[i], naxes[i], shapes[i], err), CREMA_OK);
    for (size_t j = 0; j < h->bv[i]->count; j++)
      h->bv[i]->data[j] = rng_uniform(&values, -1.0f, 1.0f);
  }
  for (int i = 0; i < nt; i++)
    ck_assert_ptr_nonnull(h->tv[i] = blob_create("top", err));
  h->bottom.v = h->bv;
  h->bottom.n = nb;
  h->top.v = h->tv;
  h->top.n = nt;
  CREMA_TRY(h->l->ops->setup(h->l, &h->bottom, &h->top, err));
  return h->l->ops->reshape(h->l, &h->bottom, &h->top, err);
}

static void harness_must_open(harness *h, const char *text, int nb, const int *naxes,
                              const int (*shapes)[6], int nt) {
  crema_error err = {0};
  crema_status st = harness_open(h, text, nb, naxes, shapes, nt, &err);
  ck_assert_msg(st == CREMA_OK, "%s", err.message);
}

static void harness_forward(harness *h) {
  crema_error err = {0};
  ck_assert_msg(h->l->ops->forward(h->l, &h->bottom, &h->top, &err) == CREMA_OK, "%s",
                err.message);
}

static void harness_close(harness *h) {
  layer_free(h->l);
  for (int i = 0; i < 4; i++) {
    blob_free(h->bv[i]);
    blob_free(h->tv[i]);
  }
  protobuf_c_message_free_unpacked(&h->lp->base, NULL);
  free(h->ctx.workspace);
}

/* Fails the test unless the layer's setup+reshape fails with status and a
 * message containing needle. */
static void expect_error(const char *text, int nb, const int *naxes, const int (*shapes)[6],
                         int nt, crema_status status, const char *needle) {
  harness h;
  crema_error err = {0};
  crema_status st = harness_open(&h, text, nb, naxes, shapes, nt, &err);
  ck_assert_msg(st == status, "expected status %d, got %d (%s)", (int)status, (int)st,
                err.message);
  ck_assert_msg(strstr(err.message, needle) != NULL, "message '%s' lacks '%s'", err.message,
                needle);
  harness_close(&h);
}

static void assert_close(const float *got, const float *want, size_t n, float tol,
                         const char *what) {
  for (size_t i = 0; i < n; i++)
    ck_assert_msg(fabsf(got[i] - want[i]) <= tol, "%s[%zu]: got %g, want %g", what, i,
                  (double)got[i], (double)want[i]);
}

static void check_grad(const char *text, int nb, const int *naxes, const int (*shapes)[6],
                       int nt, const gc_options *o, gc_prepare_fn prep) {
  Caffe__LayerParameter *lp = gc_parse_layer(text);
  gc_check_layer(lp, nb, naxes, shapes, nt, o, prep, NULL);
  protobuf_c_message_free_unpacked(&lp->base, NULL);
}

/* ---- direct reference computations ------------------------------------ */

typedef struct geo {
  int n, c, h, w;   /* bottom */
  int o, g;         /* num_output, group */
  int kh, kw, sh, sw, ph, pw, dh, dw;
} geo;

static int conv_out(int in, int k, int s, int p, int d) {
  return (in + 2 * p - (d * (k - 1) + 1)) / s + 1;
}

static void ref_conv(const geo *q, const float *x, const float *w, const float *bias, float *y) {
  int oh_n = conv_out(q->h, q->kh, q->sh, q->ph, q->dh);
  int ow_n = conv_out(q->w, q->kw, q->sw, q->pw, q->dw);
  int cg = q->c / q->g, og = q->o / q->g;
  for (int n = 0; n < q->n; n++)
    for (int o = 0; o < q->o; o++)
      for (int oh = 0; oh < oh_n; oh++)
        for (int ow = 0; ow < ow_n; ow++) {
          double sum = bias ? bias[o] : 0.0;
          int grp = o / og;
          for (int ci = 0; ci < cg; ci++)
            for (int i = 0; i < q->kh; i++)
              for (int j = 0; j < q->kw; j++) {
                int ih = oh * q->sh - q->ph + i * q->dh, iw = ow * q->sw - q->pw + j * q->dw;
                if (ih < 0 || ih >= q->h || iw < 0 || iw >= q->w)
                  continue;
                int c = grp * cg + ci;
                sum += (double)x[((n * q->c + c) * q->h + ih) * q->w + iw] *
                       w[((o * cg + ci) * q->kh + i) * q->kw + j];
              }
          y[((n * q->o + o) * oh_n + oh) * ow_n + ow] = (float)sum;
        }
}

/* Deconvolution by scattering each bottom value through the kernel. */
static void ref_deconv(const geo *q, const float *x, const float *w, const float *bias, float *y,
                       int oh_n, int ow_n) {
  int cg = q->c / q->g, og = q->o / q->g;
  size_t top = (size_t)q->n * q->o * oh_n * ow_n;
  double *acc = calloc(top, sizeof(double));
  for (int n = 0; n < q->n; n++)
    for (int c = 0; c < q->c; c++)
      for (int ih = 0; ih < q->h; ih++)
        for (int iw = 0; iw < q->w; iw++) {
          int grp = c / cg;
          float v = x[((n * q->c + c) * q->h + ih) * q->w + iw];
          for (int oc = 0; oc < og; oc++)
            for (int i = 0; i < q->kh; i++)
              for (int j = 0; j < q->kw; j++) {
                int oh = ih * q->sh - q->ph + i * q->dh, ow = iw * q->sw - q->pw + j * q->dw;
                if (oh < 0 || oh >= oh_n || ow < 0 || ow >= ow_n)
                  continue;
                int o = grp * og + oc;
                acc[((n * q->o + o) * oh_n + oh) * ow_n + ow] +=
                    (double)v * w[((c * og + oc) * q->kh + i) * q->kw + j];
              }
        }
  for (size_t i = 0; i < top; i++) {
    int o = (int)((i / ((size_t)oh_n * ow_n)) % (size_t)q->o);
    y[i] = (float)(acc[i] + (bias ? bias[o] : 0.0));
  }
  free(acc);
}

static void geo_text(const geo *q, const char *type, int bias, char *buf, size_t size) {
  snprintf(buf, size,
           "name: 'c' type: '%s' convolution_param { num_output: %d group: %d "
           "kernel_h: %d kernel_w: %d stride_h: %d stride_w: %d pad_h: %d pad_w: %d "
           "dilation: %d dilation: %d bias_term: %s "
           "weight_filler { type: 'gaussian' std: 0.5 } bias_filler { type: 'gaussian' } }",
           type, q->o, q->g, q->kh, q->kw, q->sh, q->sw, q->ph, q->pw, q->dh, q->dw,
           bias ? "true" : "false");
}

static const geo conv_cases[] = {
    /* n  c  h  w   o  g  kh kw sh sw ph pw dh dw */
    {2, 3, 7, 9, 4, 1, 3, 3, 1, 1, 1, 1, 1, 1},
    {2, 4, 9, 8, 6, 2, 5, 5, 2, 2, 2, 2, 1, 1},
    {1, 3, 7, 9, 3, 1, 3, 3, 1, 1, 2, 2, 2, 2},
    {2, 3, 7, 9, 5, 1, 3, 1, 2, 1, 1, 0, 1, 1},
    {2, 3, 7, 9, 5, 1, 1, 1, 1, 1, 0, 0, 1, 1},
    {1, 6, 5, 6, 6, 3, 2, 3, 3, 2, 1, 2, 2, 1},
    {1, 2, 4, 4, 2, 1, 1, 1, 2, 2, 0, 0, 1, 1},
    {1, 4, 6, 7, 8, 4, 3, 2, 1, 3, 0, 1, 1, 3},
};

START_TEST(test_conv_forward_reference) {
  const geo *q = &conv_cases[_i];
  for (int bias = 0; bias < 2; bias++) {
    char text[1024];
    geo_text(q, "Convolution", bias, text, sizeof text);
    int naxes[1] = {4};
    int shapes[1][6] = {{q->n, q->c, q->h, q->w}};
    harness h;
    harness_must_open(&h, text, 1, naxes, shapes, 1);
    int oh = conv_out(q->h, q->kh, q->sh, q->ph, q->dh);
    int ow = conv_out(q->w, q->kw, q->sw, q->pw, q->dw);
    ck_assert_int_eq(h.tv[0]->num_axes, 4);
    ck_assert_int_eq(h.tv[0]->shape[1], q->o);
    ck_assert_int_eq(h.tv[0]->shape[2], oh);
    ck_assert_int_eq(h.tv[0]->shape[3], ow);
    ck_assert_int_eq(h.l->blobs[0]->shape[1], q->c / q->g);
    ck_assert_int_eq(h.l->nblobs, bias ? 2 : 1);
    harness_forward(&h);
    float *want = malloc(h.tv[0]->count * sizeof(float));
    ref_conv(q, h.bv[0]->data, h.l->blobs[0]->data, bias ? h.l->blobs[1]->data : NULL, want);
    assert_close(h.tv[0]->data, want, h.tv[0]->count, 1e-4f, "conv");
    free(want);
    harness_close(&h);
  }
}
END_TEST

START_TEST(test_deconv_forward_reference) {
  geo q = conv_cases[_i];
  /* The bottom of a deconvolution has num_output's role swapped. */
  int tmp = q.c;
  q.c = q.o;
  q.o = tmp;
  char text[1024];
  geo_text(&q, "Deconvolution", 1, text, sizeof text);
  int naxes[1] = {4};
  int shapes[1][6] = {{q.n, q.c, q.h, q.w}};
  harness h;
  harness_must_open(&h, text, 1, naxes, shapes, 1);
  int oh = q.sh * (q.h - 1) + q.dh * (q.kh - 1) + 1 - 2 * q.ph;
  int ow = q.sw * (q.w - 1) + q.dw * (q.kw - 1) + 1 - 2 * q.pw;
  ck_assert_int_eq(h.tv[0]->shape[1], q.o);
  ck_assert_int_eq(h.tv[0]->shape[2], oh);
  ck_assert_int_eq(h.tv[0]->shape[3], ow);
  ck_assert_int_eq(h.l->blobs[0]->shape[0], q.c);
  ck_assert_int_eq(h.l->blobs[0]->shape[1], q.o / q.g);
  harness_forward(&h);
  float *want = malloc(h.tv[0]->count * sizeof(float));
  ref_deconv(&q, h.bv[0]->data, h.l->blobs[0]->data, h.l->blobs[1]->data, want, oh, ow);
  assert_close(h.tv[0]->data, want, h.tv[0]->count, 1e-4f, "deconv");
  free(want);
  harness_close(&h);
}
END_TEST

/* Repeated kernel_size/pad/stride give per-axis values; axis 2 makes axis 1
 * a batch axis. */
START_TEST(test_conv_repeated_fields_and_axis) {
  const char *text =
      "name: 'c' type: 'Convolution' convolution_param { num_output: 2 kernel_size: 3 "
      "kernel_size: 2 stride: 2 stride: 1 pad: 1 pad: 0 axis: 2 "
      "weight_filler { type: 'gaussian' } bias_filler { type: 'gaussian' } }";
  int naxes[1] = {5};
  int shapes[1][6] = {{2, 3, 4, 7, 5}};
  harness h;
  harness_must_open(&h, text, 1, naxes, shapes, 1);
  /* 6 = 2*3 batch items of 4 channels 7x5 -> 2 x 4 x 4. */
  int want[5] = {2, 3, 2, 4, 4};
  ck_assert_int_eq(h.tv[0]->num_axes, 5);
  for (int i = 0; i < 5; i++)
    ck_assert_int_eq(h.tv[0]->shape[i], want[i]);
  harness_forward(&h);
  geo q = {6, 4, 7, 5, 2, 1, 3, 2, 2, 1, 1, 0, 1, 1};
  float *ref = malloc(h.tv[0]->count * sizeof(float));
  ref_conv(&q, h.bv[0]->data, h.l->blobs[0]->data, h.l->blobs[1]->data, ref);
  assert_close(h.tv[0]->data, ref, h.tv[0]->count, 1e-4f, "axis 2");
  free(ref);
  harness_close(&h);
  int small[1][6] = {{1, 2, 4, 5, 3}};
  gc_options o = gc_default_options();
  check_grad(text, 1, naxes, (const int(*)[6])small, 1, &o, NULL);
}
END_TEST

/* A 3-axis bottom is a 1-D convolution along its last axis. */
START_TEST(test_conv_1d) {
  const char *text = "name: 'c' type: 'Convolution' convolution_param { num_output: 3 "
                     "kernel_size: 3 pad: 1 stride: 2 weight_filler { type: 'gaussian' } }";
  int naxes[1] = {3};
  int shapes[1][6] = {{2, 2, 9}};
  harness h;
  harness_must_open(&h, text, 1, naxes, shapes, 1);
  ck_assert_int_eq(h.tv[0]->num_axes, 3);
  ck_assert_int_eq(h.tv[0]->shape[2], 5);
  ck_assert_int_eq(h.l->blobs[0]->num_axes, 3);
  harness_forward(&h);
  geo q = {2, 2, 1, 9, 3, 1, 1, 3, 1, 2, 0, 1, 1, 1};
  float ref[2 * 3 * 5];
  ref_conv(&q, h.bv[0]->data, h.l->blobs[0]->data, h.l->blobs[1]->data, ref);
  assert_close(h.tv[0]->data, ref, 30, 1e-4f, "1-D");
  harness_close(&h);
  gc_options o = gc_default_options();
  check_grad(text, 1, naxes, (const int(*)[6])shapes, 1, &o, NULL);
}
END_TEST

/* Several bottoms share the weights; each gets its own top. */
START_TEST(test_conv_two_bottoms) {
  const char *text = "name: 'c' type: 'Convolution' convolution_param { num_output: 2 "
                     "kernel_size: 2 weight_filler { type: 'gaussian' } "
                     "bias_filler { type: 'gaussian' } }";
  int naxes[2] = {4, 4};
  int shapes[2][6] = {{1, 2, 3, 3}, {1, 2, 3, 3}};
  harness h;
  harness_must_open(&h, text, 2, naxes, shapes, 2);
  harness_forward(&h);
  geo q = {1, 2, 3, 3, 2, 1, 2, 2, 1, 1, 0, 0, 1, 1};
  float ref[8];
  for (int b = 0; b < 2; b++) {
    ref_conv(&q, h.bv[b]->data, h.l->blobs[0]->data, h.l->blobs[1]->data, ref);
    assert_close(h.tv[b]->data, ref, 8, 1e-5f, "two bottoms");
  }
  harness_close(&h);
  gc_options o = gc_default_options();
  Caffe__LayerParameter *lp = gc_parse_layer(text);
  gc_check_layer(lp, 2, naxes, (const int(*)[6])shapes, 2, &o, NULL, NULL);
  protobuf_c_message_free_unpacked(&lp->base, NULL);
}
END_TEST

START_TEST(test_conv_errors) {
  int n4[1] = {4}, n5[1] = {5};
  int s4[1][6] = {{1, 4, 5, 5}}, s5[1][6] = {{1, 2, 3, 3, 3}};
  expect_error("name: 'c3d' type: 'Convolution' convolution_param { num_output: 2 kernel_size: 2 }",
               1, n5, (const int(*)[6])s5, 1, CREMA_ERR_UNSUPPORTED, "not supported");
  expect_error("name: 'c' type: 'Convolution' convolution_param { num_output: 2 kernel_size: 2 "
               "group: 3 }",
               1, n4, (const int(*)[6])s4, 1, CREMA_ERR_INVALID, "multiple of group");
  expect_error("name: 'c' type: 'Convolution' convolution_param { num_output: 3 kernel_size: 2 "
               "group: 2 }",
               1, n4, (const int(*)[6])s4, 1, CREMA_ERR_INVALID, "multiple of group");
  expect_error("name: 'c' type: 'Convolution' convolution_param { num_output: 2 }", 1, n4,
               (const int(*)[6])s4, 1, CREMA_ERR_INVALID, "kernel");
  expect_error("name: 'c' type: 'Convolution' convolution_param { num_output: 2 kernel_size: 0 }",
               1, n4, (const int(*)[6])s4, 1, CREMA_ERR_INVALID, "nonzero");
  expect_error("name: 'c' type: 'Convolution' convolution_param { kernel_size: 2 }", 1, n4,
               (const int(*)[6])s4, 1, CREMA_ERR_INVALID, "num_output");
  expect_error("name: 'c' type: 'Convolution' convolution_param { num_output: 2 kernel_size: 2 "
               "kernel_h: 2 kernel_w: 2 }",
               1, n4, (const int(*)[6])s4, 1, CREMA_ERR_INVALID, "not both");
  expect_error("name: 'c' type: 'Convolution' convolution_param { num_output: 2 kernel_size: 2 "
               "stride: 1 stride: 1 stride: 1 }",
               1, n4, (const int(*)[6])s4, 1, CREMA_ERR_INVALID, "stride");
  expect_error("name: 'c' type: 'Convolution' convolution_param { num_output: 2 kernel_size: 9 }",
               1, n4, (const int(*)[6])s4, 1, CREMA_ERR_SHAPE, "empty output");
  expect_error("name: 'big' type: 'Convolution' convolution_param { num_output: 2 "
               "kernel_size: 4000000000 }",
               1, n4, (const int(*)[6])s4, 1, CREMA_ERR_INVALID, "out of range");
  expect_error("name: 'c' type: 'Convolution' convolution_param { num_output: 2 kernel_size: 2 "
               "weight_filler { type: 'nonsense' } }",
               1, n4, (const int(*)[6])s4, 1, CREMA_ERR_INVALID, "nonsense");
}
END_TEST

START_TEST(test_conv_engine_env) {
  int n4[1] = {4};
  int s4[1][6] = {{1, 2, 5, 5}};
  setenv("CREMA_CONV", "no-such-engine", 1);
  expect_error("name: 'c' type: 'Convolution' convolution_param { num_output: 2 kernel_size: 2 }",
               1, n4, (const int(*)[6])s4, 1, CREMA_ERR_INVALID, "no-such-engine");
  setenv("CREMA_CONV", "gemm", 1);
  harness h;
  harness_must_open(&h, "name: 'c' type: 'Convolution' convolution_param { num_output: 2 "
                        "kernel_size: 2 }",
                    1, n4, (const int(*)[6])s4, 1);
  harness_close(&h);
  unsetenv("CREMA_CONV");
}
END_TEST

/* Reshaping to a new spatial size keeps the weights and recomputes. */
START_TEST(test_conv_reshape) {
  int n4[1] = {4};
  int s4[1][6] = {{1, 2, 5, 5}};
  harness h;
  harness_must_open(&h, "name: 'c' type: 'Convolution' convolution_param { num_output: 2 "
                        "kernel_size: 3 weight_filler { type: 'gaussian' } }",
                    1, n4, (const int(*)[6])s4, 1);
  crema_error err = {0};
  ck_assert_int_eq(blob_reshape4(h.bv[0], 2, 2, 8, 6, &err), CREMA_OK);
  for (size_t i = 0; i < h.bv[0]->count; i++)
    h.bv[0]->data[i] = (float)(i % 7) - 3.0f;
  ck_assert_int_eq(h.l->ops->reshape(h.l, &h.bottom, &h.top, &err), CREMA_OK);
  ck_assert_int_eq(h.tv[0]->shape[2], 6);
  ck_assert_int_eq(h.tv[0]->shape[3], 4);
  harness_forward(&h);
  geo q = {2, 2, 8, 6, 2, 1, 3, 3, 1, 1, 0, 0, 1, 1};
  float ref[2 * 2 * 6 * 4];
  ref_conv(&q, h.bv[0]->data, h.l->blobs[0]->data, h.l->blobs[1]->data, ref);
  assert_close(h.tv[0]->data, ref, h.tv[0]->count, 1e-4f, "reshaped");
  ck_assert_int_eq(blob_reshape4(h.bv[0], 1, 3, 5, 5, &err), CREMA_OK);
  ck_assert_int_eq(h.l->ops->reshape(h.l, &h.bottom, &h.top, &err), CREMA_ERR_SHAPE);
  harness_close(&h);
}
END_TEST

/* ---- gradient checks ---------------------------------------------------- */

START_TEST(test_conv_gradient) {
  const geo *q = &conv_cases[_i];
  char text[1024];
  geo_text(q, "Convolution", _i % 2 == 0, text, sizeof text);
  int naxes[1] = {4};
  int shapes[1][6] = {{1, q->c, q->h, q->w}};
  gc_options o = gc_default_options();
  check_grad(text, 1, naxes, (const int(*)[6])shapes, 1, &o, NULL);
}
END_TEST

START_TEST(test_deconv_gradient) {
  static const geo cases[] = {
      {2, 3, 4, 5, 2, 1, 3, 3, 2, 2, 1, 1, 1, 1},
      {1, 4, 3, 4, 6, 2, 4, 4, 2, 2, 1, 1, 1, 1},
      {1, 2, 3, 3, 4, 2, 1, 1, 1, 1, 0, 0, 1, 1},
      {1, 2, 4, 3, 2, 1, 3, 2, 1, 2, 1, 0, 2, 1},
  };
  const geo *q = &cases[_i];
  char text[1024];
  geo_text(q, "Deconvolution", _i != 1, text, sizeof text);
  int naxes[1] = {4};
  int shapes[1][6] = {{q->n, q->c, q->h, q->w}};
  gc_options o = gc_default_options();
  check_grad(text, 1, naxes, (const int(*)[6])shapes, 1, &o, NULL);
}
END_TEST

/* Distinct values far apart compared with the step, so that a perturbation
 * never changes which element is the maximum. */
static void distinct_values(blob **b, int nb, void *user) {
  size_t n = b[0]->count;
  crema_rng r;
  rng_seed(&r, 7);
  for (size_t i = 0; i < n; i++)
    b[0]->data[i] = (float)i * 0.05f - 0.025f * (float)n;
  for (size_t i = n; i > 1; i--) {
    size_t j = rng_below(&r, (uint32_t)i);
    float t = b[0]->data[i - 1];
    b[0]->data[i - 1] = b[0]->data[j];
    b[0]->data[j] = t;
  }
}

START_TEST(test_pool_gradient) {
  static const char *const texts[] = {
      "name: 'p' type: 'Pooling' pooling_param { pool: MAX kernel_size: 3 stride: 2 pad: 1 }",
      "name: 'p' type: 'Pooling' pooling_param { pool: MAX kernel_h: 3 kernel_w: 2 stride_h: 2 "
      "stride_w: 1 }",
      "name: 'p' type: 'Pooling' pooling_param { pool: MAX kernel_size: 2 stride: 2 }",
      "name: 'p' type: 'Pooling' pooling_param { pool: AVE kernel_size: 3 stride: 2 pad: 1 }",
      "name: 'p' type: 'Pooling' pooling_param { pool: AVE kernel_h: 2 kernel_w: 3 stride_h: 1 "
      "stride_w: 2 pad_h: 1 pad_w: 2 }",
      "name: 'p' type: 'Pooling' pooling_param { pool: AVE global_pooling: true }",
      "name: 'p' type: 'Pooling' pooling_param { pool: MAX global_pooling: true }",
      "name: 'p' type: 'Pooling' pooling_param { pool: AVE kernel_size: 3 stride: 2 "
      "round_mode: FLOOR }",
  };
  int naxes[1] = {4};
  int shapes[1][6] = {{2, 2, 7, 6}};
  gc_options o = gc_default_options();
  check_grad(texts[_i], 1, naxes, (const int(*)[6])shapes, 1, &o, distinct_values);
}
END_TEST

/* MAX pooling with the mask as a second top. */
START_TEST(test_pool_gradient_mask_top) {
  int naxes[1] = {4};
  int shapes[1][6] = {{1, 2, 5, 5}};
  gc_options o = gc_default_options();
  check_grad("name: 'p' type: 'Pooling' pooling_param { pool: MAX kernel_size: 3 stride: 2 "
             "pad: 1 }",
             1, naxes, (const int(*)[6])shapes, 2, &o, distinct_values);
}
END_TEST

START_TEST(test_ip_gradient) {
  static const char *const texts[] = {
      "name: 'ip' type: 'InnerProduct' inner_product_param { num_output: 4 "
      "weight_filler { type: 'gaussian' } bias_filler { type: 'gaussian' } }",
      "name: 'ip' type: 'InnerProduct' inner_product_param { num_output: 3 axis: 2 "
      "weight_filler { type: 'gaussian' } bias_filler { type: 'gaussian' } }",
      "name: 'ip' type: 'InnerProduct' inner_product_param { num_output: 4 transpose: true "
      "weight_filler { type: 'gaussian' } bias_filler { type: 'gaussian' } }",
      "name: 'ip' type: 'InnerProduct' inner_product_param { num_output: 2 bias_term: false "
      "axis: -1 weight_filler { type: 'xavier' } }",
  };
  int naxes[1] = {4};
  int shapes[1][6] = {{2, 3, 2, 3}};
  gc_options o = gc_default_options();
  check_grad(texts[_i], 1, naxes, (const int(*)[6])shapes, 1, &o, NULL);
}
END_TEST

static void integer_indices(blob **b, int nb, void *user) {
  for (size_t i = 0; i < b[0]->count; i++)
    b[0]->data[i] = (float)((i * 7 + 3) % 5);
}

START_TEST(test_embed_gradient) {
  int naxes[1] = {2};
  int shapes[1][6] = {{3, 4}};
  gc_options o = gc_default_options();
  o.check_bottoms = 1u << 31; /* no gradient for the indices */
  check_grad("name: 'e' type: 'Embed' embed_param { num_output: 3 input_dim: 5 "
             "weight_filler { type: 'gaussian' } bias_filler { type: 'gaussian' } }",
             1, naxes, (const int(*)[6])shapes, 1, &o, integer_indices);
}
END_TEST

/* ---- pooling by hand ---------------------------------------------------- */

static void set_values(blob *b, const float *v) { memcpy(b->data, v, b->count * sizeof(float)); }

START_TEST(test_pool_max_hand) {
  int naxes[1] = {4};
  int shapes[1][6] = {{1, 1, 3, 4}};
  harness h;
  harness_must_open(&h, "name: 'p' type: 'Pooling' pooling_param { pool: MAX kernel_size: 2 "
                        "stride: 1 }",
                    1, naxes, (const int(*)[6])shapes, 2);
  static const float x[12] = {1, 5, 2, 0, 7, 3, 3, 9, -1, 4, 8, 6};
  set_values(h.bv[0], x);
  harness_forward(&h);
  ck_assert_int_eq(h.tv[0]->shape[2], 2);
  ck_assert_int_eq(h.tv[0]->shape[3], 3);
  static const float want[6] = {7, 5, 9, 7, 8, 9}, mask[6] = {4, 1, 7, 4, 10, 7};
  assert_close(h.tv[0]->data, want, 6, 0.0f, "max");
  assert_close(h.tv[1]->data, mask, 6, 0.0f, "mask");
  for (int i = 0; i < 6; i++)
    h.tv[0]->diff[i] = (float)(i + 1);
  int prop = 1;
  crema_error err = {0};
  ck_assert_int_eq(h.l->ops->backward(h.l, &h.top, &prop, &h.bottom, &err), CREMA_OK);
  static const float dx[12] = {0, 2, 0, 0, 1 + 4, 0, 0, 3 + 6, 0, 0, 5, 0};
  assert_close(h.bv[0]->diff, dx, 12, 0.0f, "max backward");
  harness_close(&h);
}
END_TEST

/* The 2x2 stride-2 case has a path of its own: ties go to the first in scan
 * order, NaN never wins, a window of -inf only has no argmax (-1, value
 * -FLT_MAX), and the ceil-rounded edge windows (3x5 input) are partial. */
START_TEST(test_pool_max_2x2_hand) {
  int naxes[1] = {4};
  int shapes[1][6] = {{1, 1, 3, 5}};
  harness h;
  harness_must_open(&h, "name: 'p' type: 'Pooling' pooling_param { pool: MAX kernel_size: 2 "
                        "stride: 2 }",
                    1, naxes, (const int(*)[6])shapes, 2);
  const float inf = INFINITY, nan = NAN;
  const float x[15] = {2, 2, -inf, -inf, 1, 2, 2, -inf, -inf, 3, nan, 4, 6, 6, 5};
  set_values(h.bv[0], x);
  harness_forward(&h);
  ck_assert_int_eq(h.tv[0]->shape[2], 2);
  ck_assert_int_eq(h.tv[0]->shape[3], 3);
  const float want[6] = {2, -FLT_MAX, 3, 4, 6, 5}, mask[6] = {0, -1, 9, 11, 12, 14};
  assert_close(h.tv[0]->data, want, 6, 0.0f, "max");
  assert_close(h.tv[1]->data, mask, 6, 0.0f, "mask");
  harness_close(&h);
}
END_TEST

/* 2x2 stride-2 windows that tile the plane write each gradient at once:
 * the same bits as Caffe's zero-then-add, with -0 gradients (which the
 * addition turns into +0), windows without an argmax, and ties. */
START_TEST(test_pool_max_2x2_backward_tiled) {
  int naxes[1] = {4};
  int shapes[1][6] = {{2, 3, 6, 8}};
  harness h;
  harness_must_open(&h, "name: 'p' type: 'Pooling' pooling_param { pool: MAX kernel_size: 2 "
                        "stride: 2 }",
                    1, naxes, (const int(*)[6])shapes, 1);
  const size_t n = h.bv[0]->count, m = h.tv[0]->count;
  for (size_t i = 0; i < n; i++)
    h.bv[0]->data[i] = (float)((i * 37) % 11) - 5.0f;
  h.bv[0]->data[0] = h.bv[0]->data[1] = h.bv[0]->data[8] = h.bv[0]->data[9] = -INFINITY;
  h.bv[0]->data[2] = NAN;
  harness_forward(&h);
  for (size_t o = 0; o < m; o++)
    h.tv[0]->diff[o] = o % 5 == 0 ? -0.0f : (float)o * 0.25f - 3.0f;
  int prop = 1;
  crema_error err = {0};
  ck_assert_int_eq(h.l->ops->backward(h.l, &h.top, &prop, &h.bottom, &err), CREMA_OK);
  float *want = calloc(n, sizeof(float));
  ck_assert_ptr_nonnull(want);
  for (int pl = 0; pl < 6; pl++)
    for (int ph = 0; ph < 3; ph++)
      for (int pw = 0; pw < 4; pw++) {
        const float *x = h.bv[0]->data + (size_t)pl * 48;
        float best = -FLT_MAX;
        int arg = -1;
        for (int i = 2 * ph; i < 2 * ph + 2; i++)
          for (int j = 2 * pw; j < 2 * pw + 2; j++)
            if (x[i * 8 + j] > best) {
              best = x[i * 8 + j];
              arg = i * 8 + j;
            }
        if (arg >= 0)
          want[(size_t)pl * 48 + arg] += h.tv[0]->diff[((size_t)pl * 3 + ph) * 4 + pw];
      }
  ck_assert(!memcmp(h.bv[0]->diff, want, n * sizeof(float)));
  free(want);
  harness_close(&h);
}
END_TEST

/* 3x3 input, kernel 2, stride 2, pad 1: ceil gives 3 outputs, but the third
 * window would start in the bottom padding, so Caffe keeps 2.  Averages
 * divide by the window clipped to the padded image. */
START_TEST(test_pool_ave_pad_hand) {
  int naxes[1] = {4};
  int shapes[1][6] = {{1, 1, 3, 3}};
  harness h;
  harness_must_open(&h, "name: 'p' type: 'Pooling' pooling_param { pool: AVE kernel_size: 2 "
                        "stride: 2 pad: 1 }",
                    1, naxes, (const int(*)[6])shapes, 1);
  static const float x[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  set_values(h.bv[0], x);
  harness_forward(&h);
  ck_assert_int_eq(h.tv[0]->shape[2], 2);
  ck_assert_int_eq(h.tv[0]->shape[3], 2);
  static const float want[4] = {1.0f / 4, (2 + 3) / 4.0f, (4 + 7) / 4.0f, (5 + 6 + 8 + 9) / 4.0f};
  assert_close(h.tv[0]->data, want, 4, 1e-6f, "ave pad");
  harness_close(&h);

  /* 4x4, kernel 3, stride 2, pad 1: windows at -1, 1, 3; the last spans
   * rows 3..5 clipped to 3..4 (height + pad), a divisor of 2 per axis. */
  int s2[1][6] = {{1, 1, 4, 4}};
  harness_must_open(&h, "name: 'p' type: 'Pooling' pooling_param { pool: AVE kernel_size: 3 "
                        "stride: 2 pad: 1 }",
                    1, naxes, (const int(*)[6])s2, 1);
  for (int i = 0; i < 16; i++)
    h.bv[0]->data[i] = 1.0f;
  harness_forward(&h);
  ck_assert_int_eq(h.tv[0]->shape[2], 3);
  static const float w2[9] = {4 / 9.0f, 6 / 9.0f, 2 / 6.0f, 6 / 9.0f, 1.0f, 3 / 6.0f,
                              2 / 6.0f, 3 / 6.0f, 1 / 4.0f};
  assert_close(h.tv[0]->data, w2, 9, 1e-6f, "ave clipped divisor");
  harness_close(&h);
}
END_TEST

START_TEST(test_pool_shapes) {
  static const struct {
    const char *text;
    int h, w, ph, pw;
  } cases[] = {
      {"pool: MAX kernel_size: 3 stride: 2", 7, 9, 3, 4},
      {"pool: MAX kernel_size: 2 stride: 2", 7, 9, 4, 5},
      {"pool: MAX kernel_size: 3 stride: 2 pad: 1", 7, 9, 4, 5},
      {"pool: MAX kernel_size: 2 stride: 2 pad: 1", 1, 1, 1, 1},
      {"pool: AVE kernel_size: 2 stride: 2 round_mode: FLOOR", 7, 9, 3, 4},
      {"pool: AVE kernel_h: 3 kernel_w: 2 stride_h: 2 stride_w: 1", 7, 9, 3, 8},
      {"pool: AVE global_pooling: true", 5, 3, 1, 1},
      {"pool: MAX kernel_size: 3 stride: 3 pad: 2", 6, 6, 3, 3},
  };
  char text[256];
  snprintf(text, sizeof text, "name: 'p' type: 'Pooling' pooling_param { %s }", cases[_i].text);
  int naxes[1] = {4};
  int shapes[1][6] = {{2, 3, cases[_i].h, cases[_i].w}};
  harness h;
  harness_must_open(&h, text, 1, naxes, (const int(*)[6])shapes, 1);
  ck_assert_int_eq(h.tv[0]->shape[0], 2);
  ck_assert_int_eq(h.tv[0]->shape[1], 3);
  ck_assert_int_eq(h.tv[0]->shape[2], cases[_i].ph);
  ck_assert_int_eq(h.tv[0]->shape[3], cases[_i].pw);
  harness_forward(&h);
  harness_close(&h);
}
END_TEST

/* A bottom large enough for the parallel plane loop, against a direct
 * implementation of Caffe's loops. */
START_TEST(test_pool_large_reference) {
  int naxes[1] = {4};
  int shapes[1][6] = {{2, 9, 64, 61}};
  for (int ave = 0; ave < 2; ave++) {
    harness h;
    harness_must_open(&h, ave ? "name: 'p' type: 'Pooling' pooling_param { pool: AVE "
                                "kernel_size: 3 stride: 2 pad: 1 }"
                              : "name: 'p' type: 'Pooling' pooling_param { pool: MAX "
                                "kernel_size: 3 stride: 2 pad: 1 }",
                      1, naxes, (const int(*)[6])shapes, 1);
    harness_forward(&h);
    int H = 64, W = 61, PH = h.tv[0]->shape[2], PW = h.tv[0]->shape[3];
    ck_assert_int_eq(PH, 33);
    ck_assert_int_eq(PW, 31);
    for (int pl = 0; pl < 18; pl++)
      for (int ph = 0; ph < PH; ph++)
        for (int pw = 0; pw < PW; pw++) {
          const float *x = h.bv[0]->data + (size_t)pl * H * W;
          int hs = ph * 2 - 1, ws = pw * 2 - 1;
          int he = hs + 3 < H + 1 ? hs + 3 : H + 1, we = ws + 3 < W + 1 ? ws + 3 : W + 1;
          int size = (he - hs) * (we - ws);
          float best = -FLT_MAX, sum = 0.0f;
          for (int i = hs < 0 ? 0 : hs; i < (he < H ? he : H); i++)
            for (int j = ws < 0 ? 0 : ws; j < (we < W ? we : W); j++) {
              best = fmaxf(best, x[i * W + j]);
              sum += x[i * W + j];
            }
          float want = ave ? sum / size : best;
          float got = h.tv[0]->data[((size_t)pl * PH + ph) * PW + pw];
          ck_assert_msg(fabsf(got - want) <= 1e-6f, "plane %d (%d,%d): %g vs %g", pl, ph, pw,
                        (double)got, (double)want);
        }
    harness_close(&h);
  }
}
END_TEST

START_TEST(test_pool_errors) {
  int n4[1] = {4}, n3[1] = {3};
  int s4[1][6] = {{1, 1, 4, 4}}, s3[1][6] = {{1, 4, 4}};
  expect_error("name: 'sp' type: 'Pooling' pooling_param { pool: STOCHASTIC kernel_size: 2 }", 1,
               n4, (const int(*)[6])s4, 1, CREMA_ERR_UNSUPPORTED, "STOCHASTIC");
  expect_error("name: 'p' type: 'Pooling' pooling_param { pool: MAX }", 1, n4,
               (const int(*)[6])s4, 1, CREMA_ERR_INVALID, "kernel");
  expect_error("name: 'p' type: 'Pooling' pooling_param { kernel_size: 2 kernel_h: 2 "
               "kernel_w: 2 }",
               1, n4, (const int(*)[6])s4, 1, CREMA_ERR_INVALID, "not both");
  expect_error("name: 'p' type: 'Pooling' pooling_param { kernel_size: 2 pad: 2 }", 1, n4,
               (const int(*)[6])s4, 1, CREMA_ERR_INVALID, "smaller than kernel");
  expect_error("name: 'p' type: 'Pooling' pooling_param { global_pooling: true kernel_size: 2 }",
               1, n4, (const int(*)[6])s4, 1, CREMA_ERR_INVALID, "global_pooling");
  expect_error("name: 'p' type: 'Pooling' pooling_param { pool: AVE kernel_size: 2 }", 1, n4,
               (const int(*)[6])s4, 2, CREMA_ERR_INVALID, "mask");
  expect_error("name: 'p' type: 'Pooling' pooling_param { kernel_size: 2 }", 1, n3,
               (const int(*)[6])s3, 1, CREMA_ERR_SHAPE, "4 axes");
  expect_error("name: 'p' type: 'Pooling' pooling_param { kernel_size: 9 }", 1, n4,
               (const int(*)[6])s4, 1, CREMA_ERR_SHAPE, "does not fit");
}
END_TEST

/* ---- InnerProduct and Embed by hand ------------------------------------ */

START_TEST(test_ip_hand) {
  int naxes[1] = {2};
  int shapes[1][6] = {{2, 3}};
  for (int transpose = 0; transpose < 2; transpose++) {
    harness h;
    harness_must_open(&h, transpose ? "name: 'ip' type: 'InnerProduct' inner_product_param { "
                                      "num_output: 2 transpose: true }"
                                    : "name: 'ip' type: 'InnerProduct' inner_product_param { "
                                      "num_output: 2 }",
                      1, naxes, (const int(*)[6])shapes, 1);
    static const float x[6] = {1, 2, 3, 4, 5, 6};
    static const float w[6] = {1, 0, -1, 2, 1, 0}; /* rows: outputs */
    static const float wt[6] = {1, 2, 0, 1, -1, 0}; /* the same, K x N */
    set_values(h.bv[0], x);
    set_values(h.l->blobs[0], transpose ? wt : w);
    ck_assert_int_eq(h.l->blobs[0]->shape[0], transpose ? 3 : 2);
    h.l->blobs[1]->data[0] = 0.5f;
    h.l->blobs[1]->data[1] = -1.0f;
    harness_forward(&h);
    static const float want[4] = {1 - 3 + 0.5f, 2 + 2 - 1, 4 - 6 + 0.5f, 8 + 5 - 1};
    assert_close(h.tv[0]->data, want, 4, 1e-6f, "ip");
    harness_close(&h);
  }
}
END_TEST

START_TEST(test_ip_axis_shapes) {
  int naxes[1] = {4};
  int shapes[1][6] = {{2, 3, 4, 5}};
  harness h;
  harness_must_open(&h, "name: 'ip' type: 'InnerProduct' inner_product_param { num_output: 7 "
                        "axis: 2 }",
                    1, naxes, (const int(*)[6])shapes, 1);
  ck_assert_int_eq(h.tv[0]->num_axes, 3);
  ck_assert_int_eq(h.tv[0]->shape[0], 2);
  ck_assert_int_eq(h.tv[0]->shape[1], 3);
  ck_assert_int_eq(h.tv[0]->shape[2], 7);
  ck_assert_int_eq(h.l->blobs[0]->shape[1], 20);
  crema_error err = {0};
  ck_assert_int_eq(blob_reshape4(h.bv[0], 2, 3, 5, 5, &err), CREMA_OK);
  ck_assert_int_eq(h.l->ops->reshape(h.l, &h.bottom, &h.top, &err), CREMA_ERR_SHAPE);
  ck_assert_ptr_nonnull(strstr(err.message, "'ip'"));
  harness_close(&h);
}
END_TEST

START_TEST(test_embed_hand) {
  int naxes[1] = {2};
  int shapes[1][6] = {{2, 2}};
  harness h;
  harness_must_open(&h, "name: 'emb' type: 'Embed' embed_param { num_output: 2 input_dim: 3 }",
                    1, naxes, (const int(*)[6])shapes, 1);
  static const float w[6] = {1, 2, 3, 4, 5, 6}, x[4] = {2, 0, 1, 2};
  set_values(h.l->blobs[0], w);
  h.l->blobs[1]->data[0] = 10;
  h.l->blobs[1]->data[1] = 20;
  set_values(h.bv[0], x);
  harness_forward(&h);
  ck_assert_int_eq(h.tv[0]->num_axes, 3);
  static const float want[8] = {15, 26, 11, 22, 13, 24, 15, 26};
  assert_close(h.tv[0]->data, want, 8, 0.0f, "embed");
  h.bv[0]->data[2] = 3.0f;
  crema_error err = {0};
  ck_assert_int_eq(h.l->ops->forward(h.l, &h.bottom, &h.top, &err), CREMA_ERR_INVALID);
  ck_assert_ptr_nonnull(strstr(err.message, "'emb'"));
  ck_assert_ptr_nonnull(strstr(err.message, "position 2"));
  h.bv[0]->data[2] = -1.0f;
  ck_assert_int_eq(h.l->ops->forward(h.l, &h.bottom, &h.top, &err), CREMA_ERR_INVALID);
  h.bv[0]->data[2] = NAN;
  ck_assert_int_eq(h.l->ops->forward(h.l, &h.bottom, &h.top, &err), CREMA_ERR_INVALID);
  h.bv[0]->data[2] = 1.0f;
  int prop = 1;
  ck_assert_int_eq(h.l->ops->backward(h.l, &h.top, &prop, &h.bottom, &err), CREMA_ERR_INVALID);
  harness_close(&h);
}
END_TEST

/* ---- im2col ------------------------------------------------------------- */

static void ref_im2col(const im2col_shape *s, const float *im, float *col) {
  for (int c = 0; c < s->channels; c++)
    for (int i = 0; i < s->kernel_h; i++)
      for (int j = 0; j < s->kernel_w; j++) {
        int row = (c * s->kernel_h + i) * s->kernel_w + j;
        for (int oh = 0; oh < s->out_h; oh++)
          for (int ow = 0; ow < s->out_w; ow++) {
            int ih = oh * s->stride_h - s->pad_h + i * s->dilation_h;
            int iw = ow * s->stride_w - s->pad_w + j * s->dilation_w;
            int in = ih >= 0 && ih < s->height && iw >= 0 && iw < s->width;
            col[(row * s->out_h + oh) * s->out_w + ow] =
                in ? im[(c * s->height + ih) * s->width + iw] : 0.0f;
          }
      }
}

START_TEST(test_im2col_reference_and_adjoint) {
  static const int cases[][11] = {
      /* c h w kh kw ph pw sh sw dh dw */
      {1, 3, 3, 2, 2, 0, 0, 1, 1, 1, 1}, {2, 5, 7, 3, 3, 1, 1, 2, 2, 1, 1},
      {3, 6, 5, 3, 2, 2, 0, 1, 3, 2, 1}, {1, 4, 9, 1, 4, 0, 3, 2, 1, 1, 2},
      {2, 7, 7, 3, 3, 2, 2, 3, 3, 2, 2}, {1, 2, 2, 2, 2, 1, 1, 1, 1, 3, 3},
      {8, 40, 40, 3, 3, 1, 1, 1, 1, 1, 1}, /* large enough to run in parallel */
  };
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    const int *q = cases[k];
    im2col_shape s = {q[0], q[1], q[2], q[3], q[4], q[5], q[6], q[7], q[8], q[9], q[10], 0, 0};
    im2col_out_size(&s);
    ck_assert_int_gt(s.out_h, 0);
    size_t nim = (size_t)s.channels * s.height * s.width;
    size_t ncol = (size_t)s.channels * s.kernel_h * s.kernel_w * s.out_h * s.out_w;
    float *im = malloc(nim * sizeof(float)), *col = malloc(ncol * sizeof(float));
    float *ref = malloc(ncol * sizeof(float)), *back = malloc(nim * sizeof(float));
    for (size_t i = 0; i < nim; i++)
      im[i] = (float)(i + 1);
    math_im2col(&s, im, col);
    ref_im2col(&s, im, ref);
    assert_close(col, ref, ncol, 0.0f, "im2col");
    /* col2im is the adjoint: <im2col(x), y> == <x, col2im(y)>. */
    for (size_t i = 0; i < ncol; i++)
      col[i] = (float)((i * 37) % 11) - 5.0f;
    math_col2im(&s, col, back);
    double lhs = 0, rhs = 0;
    for (size_t i = 0; i < ncol; i++)
      lhs += (double)ref[i] * col[i];
    for (size_t i = 0; i < nim; i++)
      rhs += (double)im[i] * back[i];
    ck_assert_msg(fabs(lhs - rhs) < 1e-6 * fmax(1.0, fabs(lhs)), "case %zu: %g vs %g", k, lhs,
                  rhs);
    free(im);
    free(col);
    free(ref);
    free(back);
  }
}
END_TEST

/* ---- fillers ------------------------------------------------------------ */

static Caffe__FillerParameter *parse_filler(const char *text) {
  ProtobufCMessage *m = NULL;
  crema_error err = {0};
  ck_assert_msg(txt_parse(text, strlen(text), "<filler>", &caffe__filler_parameter__descriptor,
                          &m, &err) == CREMA_OK,
                "%s", err.message);
  return (Caffe__FillerParameter *)m;
}

/* Fills a blob of the given shape; returns the status. */
static crema_status fill(const char *text, blob *b, int naxes, const int *shape,
                         crema_error *err) {
  crema_rng r;
  rng_seed(&r, 5);
  ck_assert_int_eq(blob_reshape(b, naxes, shape, err), CREMA_OK);
  Caffe__FillerParameter *fp = text ? parse_filler(text) : NULL;
  crema_status st = filler_fill(fp, b, &r, err);
  if (fp)
    protobuf_c_message_free_unpacked(&fp->base, NULL);
  return st;
}

static void stats(const blob *b, double *mean, double *sd, float *lo, float *hi) {
  double s = 0, s2 = 0;
  *lo = FLT_MAX;
  *hi = -FLT_MAX;
  for (size_t i = 0; i < b->count; i++) {
    s += b->data[i];
    s2 += (double)b->data[i] * b->data[i];
    *lo = fminf(*lo, b->data[i]);
    *hi = fmaxf(*hi, b->data[i]);
  }
  *mean = s / b->count;
  *sd = sqrt(s2 / b->count - *mean * *mean);
}

START_TEST(test_fillers) {
  crema_error err = {0};
  blob *b = blob_create("w", &err);
  int shape[4] = {20, 10, 5, 4}; /* fan_in 200, fan_out 400 */
  double mean, sd;
  float lo, hi;

  ck_assert_int_eq(fill(NULL, b, 4, shape, &err), CREMA_OK);
  stats(b, &mean, &sd, &lo, &hi);
  ck_assert(lo == 0.0f && hi == 0.0f);
  ck_assert_int_eq(fill("type: 'constant' value: 2.5", b, 4, shape, &err), CREMA_OK);
  stats(b, &mean, &sd, &lo, &hi);
  ck_assert(lo == 2.5f && hi == 2.5f);

  ck_assert_int_eq(fill("type: 'uniform' min: -3 max: -1", b, 4, shape, &err), CREMA_OK);
  stats(b, &mean, &sd, &lo, &hi);
  ck_assert(lo >= -3.0f && hi <= -1.0f);
  ck_assert_double_eq_tol(mean, -2.0, 0.05);

  ck_assert_int_eq(fill("type: 'gaussian' mean: 1 std: 2", b, 4, shape, &err), CREMA_OK);
  stats(b, &mean, &sd, &lo, &hi);
  ck_assert_double_eq_tol(mean, 1.0, 0.1);
  ck_assert_double_eq_tol(sd, 2.0, 0.1);

  /* sparse 5 of 20 outputs: a quarter of the weights survive. */
  ck_assert_int_eq(fill("type: 'gaussian' sparse: 5", b, 4, shape, &err), CREMA_OK);
  size_t zeros = 0;
  for (size_t i = 0; i < b->count; i++)
    zeros += b->data[i] == 0.0f;
  ck_assert_double_eq_tol((double)zeros / b->count, 0.75, 0.03);

  static const struct {
    const char *text;
    double n;
  } xav[] = {{"type: 'xavier'", 200}, {"type: 'xavier' variance_norm: FAN_OUT", 400},
             {"type: 'xavier' variance_norm: AVERAGE", 300}};
  for (int i = 0; i < 3; i++) {
    ck_assert_int_eq(fill(xav[i].text, b, 4, shape, &err), CREMA_OK);
    stats(b, &mean, &sd, &lo, &hi);
    double scale = sqrt(3.0 / xav[i].n);
    ck_assert(lo >= -scale && hi <= scale);
    ck_assert_double_eq_tol(sd, scale / sqrt(3.0), 0.05 * scale);
  }
  ck_assert_int_eq(fill("type: 'msra' variance_norm: FAN_OUT", b, 4, shape, &err), CREMA_OK);
  stats(b, &mean, &sd, &lo, &hi);
  ck_assert_double_eq_tol(sd, sqrt(2.0 / 400), 0.005);

  ck_assert_int_eq(fill("type: 'positive_unitball'", b, 4, shape, &err), CREMA_OK);
  for (int n = 0; n < 20; n++) {
    double sum = 0;
    for (int j = 0; j < 200; j++) {
      ck_assert(b->data[n * 200 + j] >= 0.0f);
      sum += b->data[n * 200 + j];
    }
    ck_assert_double_eq_tol(sum, 1.0, 1e-5);
  }

  int kshape[4] = {2, 1, 4, 4};
  ck_assert_int_eq(fill("type: 'bilinear'", b, 4, kshape, &err), CREMA_OK);
  static const float axis[4] = {0.25f, 0.75f, 0.75f, 0.25f};
  for (int i = 0; i < 32; i++)
    ck_assert_float_eq_tol(b->data[i], axis[(i / 4) % 4] * axis[i % 4], 1e-7f);
  int k5[4] = {1, 1, 5, 5}; /* factor 3: weights 1/3, 2/3, 1, 2/3, 1/3 per axis */
  ck_assert_int_eq(fill("type: 'bilinear'", b, 4, k5, &err), CREMA_OK);
  ck_assert_float_eq_tol(b->data[12], 1.0f, 1e-6f);
  ck_assert_float_eq_tol(b->data[0], 1.0f / 9, 1e-6f);
  ck_assert_float_eq_tol(b->data[7], 2.0f / 3, 1e-6f);

  int rect[4] = {1, 1, 3, 4};
  ck_assert_int_eq(fill("type: 'bilinear'", b, 4, rect, &err), CREMA_ERR_SHAPE);
  ck_assert_int_eq(fill("type: 'bilinear'", b, 2, rect, &err), CREMA_ERR_SHAPE);
  ck_assert_int_eq(fill("type: 'what'", b, 4, shape, &err), CREMA_ERR_INVALID);
  ck_assert_ptr_nonnull(strstr(err.message, "'what'"));
  ck_assert_int_eq(fill("type: 'uniform' sparse: 3", b, 4, shape, &err), CREMA_ERR_INVALID);
  ck_assert_int_eq(fill("type: 'uniform' min: 2 max: 1", b, 4, shape, &err), CREMA_ERR_INVALID);
  ck_assert_int_eq(fill("type: 'gaussian' std: 0", b, 4, shape, &err), CREMA_ERR_INVALID);
  ck_assert_int_eq(fill("type: 'gaussian' sparse: 30", b, 4, shape, &err), CREMA_ERR_INVALID);
  blob_free(b);
}
END_TEST

/* ---- BVLC Caffe golden cases at the layer level ------------------------- */

static const char *const golden_cases[] = {
    "conv_1x1",       "conv_dilation2",           "conv_k3_p1",      "conv_k5_s2_p2_g2",
    "conv_rect_nobias", "deconv_bilinear_g4_k8_s4", "deconv_k4_s2_p1", "pool_ave_k3_s2_p1",
    "pool_global_ave", "pool_max_k2_s2",            "pool_max_k3_s2_p1", "pool_max_rect",
    "ip_axis1",       "ip_axis2",                 "ip_transpose",    "embed",
};

static blob *read_golden(const char *dir, const char *sub, const char *name, int *has_diff) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s/%s.binaryproto", dir, sub, name);
  crema_error err = {0};
  blob *b = blob_create(name, &err);
  ck_assert_msg(blob_read_file(path, b, has_diff, &err) == CREMA_OK, "%s", err.message);
  return b;
}

static void compare_golden(const float *got, const blob *want, const float *want_values,
                           const char *what) {
  float scale = 0.0f;
  for (size_t i = 0; i < want->count; i++)
    scale = fmaxf(scale, fabsf(want_values[i]));
  for (size_t i = 0; i < want->count; i++)
    ck_assert_msg(fabsf(got[i] - want_values[i]) <= 1e-4f * scale + 1e-30f,
                  "%s[%zu]: got %.8g, Caffe %.8g (max |Caffe| %g)", what, i, (double)got[i],
                  (double)want_values[i], (double)scale);
}

START_TEST(test_golden) {
  char *dir = test_data_path("golden/layers/%s", golden_cases[_i]);
  char *path = test_data_path("golden/layers/%s/net.prototxt", golden_cases[_i]);
  Caffe__NetParameter *net = test_parse_net_file(path);
  free(path);
  crema_error err = {0};
  Caffe__LayerParameter *lp = NULL;
  for (size_t i = 0; i < net->n_layer; i++)
    if (strcmp(net->layer[i]->type, "Input"))
      lp = net->layer[i];
  ck_assert_ptr_nonnull(lp);

  layer_ctx ctx;
  memset(&ctx, 0, sizeof ctx);
  rng_seed(&ctx.rng, 1);
  layer *l = NULL;
  ck_assert_int_eq(layer_create(lp, CAFFE__PHASE__TRAIN, &ctx, &l, &err), CREMA_OK);
  blob *bv[4] = {0}, *tv[4] = {0}, *want[4] = {0};
  int nb = (int)lp->n_bottom, nt = (int)lp->n_top, has_diff;
  for (int i = 0; i < nb; i++)
    bv[i] = read_golden(dir, "blobs", lp->bottom[i], &has_diff);
  for (int i = 0; i < nt; i++) {
    want[i] = read_golden(dir, "blobs", lp->top[i], &has_diff);
    ck_assert_msg(has_diff, "golden top %s has no diff", lp->top[i]);
    tv[i] = blob_create(lp->top[i], &err);
  }
  blob_list bottom = {bv, nb}, top = {tv, nt};
  ck_assert_msg(l->ops->setup(l, &bottom, &top, &err) == CREMA_OK, "%s", err.message);
  ck_assert_msg(l->ops->reshape(l, &bottom, &top, &err) == CREMA_OK, "%s", err.message);

  blob *pwant[4] = {0};
  for (int p = 0; p < l->nblobs; p++) {
    char name[256];
    snprintf(name, sizeof name, "%s.%d", lp->name, p);
    pwant[p] = read_golden(dir, "params", name, &has_diff);
    ck_assert_msg(blob_same_shape(pwant[p], l->blobs[p]), "param %d shape", p);
    memcpy(l->blobs[p]->data, pwant[p]->data, pwant[p]->count * sizeof(float));
    blob_zero_diff(l->blobs[p]);
    if (p < (int)lp->n_param && lp->param[p]->has_lr_mult && lp->param[p]->lr_mult == 0.0f)
      l->param_propagate_down[p] = 0;
  }
  ck_assert_msg(l->ops->forward(l, &bottom, &top, &err) == CREMA_OK, "%s", err.message);
  for (int i = 0; i < nt; i++) {
    ck_assert(blob_same_shape(tv[i], want[i]));
    compare_golden(tv[i]->data, want[i], want[i]->data, "top");
    memcpy(tv[i]->diff, want[i]->diff, want[i]->count * sizeof(float));
  }
  /* Without force_backward and a loss, Caffe's net runs no backward pass
   * through the layer (its golden diffs stay zero). */
  if (!net->force_backward)
    for (int p = 0; p < l->nblobs; p++)
      l->param_propagate_down[p] = 0;
  int prop[4];
  for (int i = 0; i < nb; i++)
    prop[i] = net->force_backward && !((l->ops->no_force_backward >> i) & 1u);
  ck_assert_msg(l->ops->backward(l, &top, prop, &bottom, &err) == CREMA_OK, "%s", err.message);
  for (int i = 0; i < nb; i++)
    if (prop[i]) {
      blob *x = read_golden(dir, "blobs", lp->bottom[i], &has_diff);
      ck_assert(has_diff);
      compare_golden(bv[i]->diff, x, x->diff, "bottom diff");
      blob_free(x);
    }
  for (int p = 0; p < l->nblobs; p++) {
    if (l->param_propagate_down[p])
      compare_golden(l->blobs[p]->diff, pwant[p], pwant[p]->diff, "param diff");
    blob_free(pwant[p]);
  }
  for (int i = 0; i < 4; i++) {
    blob_free(bv[i]);
    blob_free(tv[i]);
    blob_free(want[i]);
  }
  layer_free(l);
  free(ctx.workspace);
  protobuf_c_message_free_unpacked(&net->base, NULL);
  free(dir);
}
END_TEST

static Suite *layers_conv_pool_ip_suite(void) {
  Suite *s = suite_create("layers_conv_pool_ip");
  TCase *t = tcase_create("forward");
  int nconv = (int)(sizeof conv_cases / sizeof conv_cases[0]);
  tcase_add_loop_test(t, test_conv_forward_reference, 0, nconv);
  tcase_add_loop_test(t, test_deconv_forward_reference, 0, nconv);
  tcase_add_test(t, test_conv_repeated_fields_and_axis);
  tcase_add_test(t, test_conv_1d);
  tcase_add_test(t, test_conv_errors);
  tcase_add_test(t, test_conv_engine_env);
  tcase_add_test(t, test_conv_reshape);
  tcase_add_test(t, test_pool_max_hand);
  tcase_add_test(t, test_pool_max_2x2_hand);
  tcase_add_test(t, test_pool_max_2x2_backward_tiled);
  tcase_add_test(t, test_pool_ave_pad_hand);
  tcase_add_loop_test(t, test_pool_shapes, 0, 8);
  tcase_add_test(t, test_pool_errors);
  tcase_add_test(t, test_pool_large_reference);
  tcase_add_test(t, test_ip_hand);
  tcase_add_test(t, test_ip_axis_shapes);
  tcase_add_test(t, test_embed_hand);
  tcase_add_test(t, test_im2col_reference_and_adjoint);
  tcase_add_test(t, test_fillers);
  suite_add_tcase(s, t);

  TCase *g = tcase_create("gradient");
  tcase_add_loop_test(g, test_conv_gradient, 0, nconv);
  tcase_add_loop_test(g, test_deconv_gradient, 0, 4);
  tcase_add_test(g, test_conv_two_bottoms);
  tcase_add_loop_test(g, test_pool_gradient, 0, 8);
  tcase_add_test(g, test_pool_gradient_mask_top);
  tcase_add_loop_test(g, test_ip_gradient, 0, 4);
  tcase_add_test(g, test_embed_gradient);
  suite_add_tcase(s, g);

  TCase *c = tcase_create("golden");
  tcase_add_loop_test(c, test_golden, 0, (int)(sizeof golden_cases / sizeof golden_cases[0]));
  suite_add_tcase(s, c);
  return s;
}

int main(void) {
  SRunner *r = srunner_create(layers_conv_pool_ip_suite());
  srunner_run_all(r, CK_NORMAL);
  int failed = srunner_ntests_failed(r);
  srunner_free(r);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
