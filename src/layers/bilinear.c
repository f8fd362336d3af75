/* The bilinear pooling family, with the type strings, parameters and
 * semantics of the Caffe fork that published it (gy20073/
 * compact_bilinear_pooling, folder caffe-20160312), so that its prototxts
 * run unchanged:
 *
 *   Bilinear         two bottoms N x C1 x H x W and N x C2 x H x W -> N x C1*C2
 *                    x 1 x 1, the sum over locations of the outer products
 *                    (channel c1 * C2 + c2);
 *   CompactBilinear  the Tensor Sketch approximation of it: each bottom's
 *                    channels are count-sketched into num_output bins (hash
 *                    h, sign s) and the sketches circularly convolved;
 *                    sum_pool (default true) sums over locations, otherwise
 *                    the top keeps H x W;
 *   SignedSqrt       sign(x) sqrt|x|, with the fork's backward
 *                    0.5 dy / (|y| + 0.03), which keeps the gradient finite
 *                    at 0 (and therefore is not the exact derivative);
 *   L2Normalize      each item divided by sqrt(sum of its squares + 1e-7),
 *                    over C*H*W.
 *
 * CompactBilinear draws h and s as the fork does, from glibc's rand()
 * seeded with 1 (for bottom 0: C1 hashes rand() % num_output, C1 signs
 * 2 * (rand() % 2) - 1, then the same for bottom 1), so that weights
 * trained with the fork apply.  The generator is reproduced here
 * (glibc_rand) rather than called: srand/rand would change the process's
 * own random state, which is not ours to touch.
 *
 * The fork computes CompactBilinear through FFTs whose inverse (kiss_fft on
 * the CPU, cuFFT on the GPU) is not normalised, so its outputs, and
 * consistently its gradients, are num_output times the circular
 * convolution of the sketches; crema keeps that factor, so that weights
 * trained after the fork's layer apply unchanged.
 *
 * The fork's FFTs run in float; crema sums the
 * convolution's products directly, which is exact up to float rounding,
 * accepts odd num_output (the fork's CPU path refuses them, its GPU path
 * does not) and, summed over locations, reduces to one matrix product
 * per item. */
#include "config.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "layers/layer.h"
#include "layers/registry.h"
#include "math/blas.h"

/* ---- shared checks -------------------------------------------------------------------------- */

/* Both bottoms 4-D with equal N, H and W (channels may differ), and the top
 * neither of them: the fork's Reshape checks. */
static crema_status check_pair(const layer *l, const blob_list *bottom, const blob_list *top,
                               crema_error *err) {
  char s0[128], s1[128];
  const blob *a = bottom->v[0], *b = bottom->v[1];
  for (int i = 0; i < 2; i++)
    if (bottom->v[i]->num_axes != 4)
      return layer_fail(l, err, CREMA_ERR_SHAPE, "bottom %d must have 4 axes, has shape %s", i,
                        blob_shape_string(bottom->v[i], s0, sizeof s0));
  if (a->shape[0] != b->shape[0] || a->shape[2] != b->shape[2] || a->shape[3] != b->shape[3])
    return layer_fail(l, err, CREMA_ERR_SHAPE,
                      "bottoms must agree in all axes but channels, have shapes %s and %s",
                      blob_shape_string(a, s0, sizeof s0), blob_shape_string(b, s1, sizeof s1));
  if (top->v[0] == a || top->v[0] == b)
    return layer_fail(l, err, CREMA_ERR_INVALID, "cannot run in place");
  return CREMA_OK;
}

static crema_status check_not_in_place(const layer *l, const blob_list *bottom,
                                       const blob_list *top, crema_error *err) {
  if (bottom->v[0] == top->v[0])
    return layer_fail(l, err, CREMA_ERR_INVALID,
                      "cannot run in place (backward needs the input)");
  return CREMA_OK;
}

/* A scratch matrix of C1 x C2 floats kept by the layer. */
typedef struct pair_state {
  float *mat;
  size_t mat_cap;
  /* CompactBilinear only: */
  int num_output, sum_pool;
  float scale;              /* num_output: the fork's unnormalised inverse FFT */
  int c[2];                 /* channels the hashes were drawn for (0: none yet) */
  int *h[2];                /* hash of each channel, in [0, num_output) */
  float *s[2];              /* sign of each channel, +-1 */
} pair_state;

static void pair_destroy(layer *l) {
  pair_state *p = l->priv;
  if (!p)
    return;
  free(p->mat);
  for (int i = 0; i < 2; i++) {
    free(p->h[i]);
    free(p->s[i]);
  }
  free(p);
}

static crema_status pair_setup(layer *l, crema_error *err) {
  l->priv = crema_calloc(1, sizeof(pair_state), err);
  return l->priv ? CREMA_OK : CREMA_ERR_NOMEM;
}

static float *pair_matrix(layer *l, int c1, int c2, crema_error *err) {
  pair_state *p = l->priv;
  if (layer_grow_buffer(l, (void **)&p->mat, &p->mat_cap, (size_t)c1 * (size_t)c2,
                        sizeof(float), err) != CREMA_OK)
    return NULL;
  return p->mat;
}

/* ---- Bilinear ------------------------------------------------------------------------------- */

static crema_status bilinear_setup(layer *l, const blob_list *bottom, const blob_list *top,
                                   crema_error *err) {
  return pair_setup(l, err);
}

static crema_status bilinear_reshape(layer *l, const blob_list *bottom, const blob_list *top,
                                     crema_error *err) {
  CREMA_TRY(check_pair(l, bottom, top, err));
  const blob *a = bottom->v[0], *b = bottom->v[1];
  long long c = (long long)a->shape[1] * b->shape[1];
  if (c > INT32_MAX)
    return layer_fail(l, err, CREMA_ERR_SHAPE, "%d x %d channels overflow the top",
                      a->shape[1], b->shape[1]);
  const int shape[4] = {a->shape[0], (int)c, 1, 1};
  return blob_reshape(top->v[0], 4, shape, err);
}

static crema_status bilinear_forward(layer *l, const blob_list *bottom, const blob_list *top,
                                     crema_error *err) {
  const blob *a = bottom->v[0], *b = bottom->v[1];
  const int c1 = a->shape[1], c2 = b->shape[1];
  const int hw = a->shape[2] * a->shape[3];
  for (int n = 0; n < a->shape[0]; n++)
    math_gemm(0, 1, c1, c2, hw, 1.0f, a->data + (size_t)n * c1 * hw,
              b->data + (size_t)n * c2 * hw, 0.0f, top->v[0]->data + (size_t)n * c1 * c2);
  return CREMA_OK;
}

static crema_status bilinear_backward(layer *l, const blob_list *top, const int *propagate_down,
                                      const blob_list *bottom, crema_error *err) {
  blob *a = bottom->v[0], *b = bottom->v[1];
  const int c1 = a->shape[1], c2 = b->shape[1];
  const int hw = a->shape[2] * a->shape[3];
  /* The same blob twice (only outside a net, which inserts a split) gets
   * the sum of both gradients. */
  const int same = a == b;
  for (int n = 0; n < a->shape[0]; n++) {
    const float *g = top->v[0]->diff + (size_t)n * c1 * c2;
    const size_t o1 = (size_t)n * c1 * hw, o2 = (size_t)n * c2 * hw;
    if (propagate_down[0] || same) /* dX1 = G X2 */
      math_gemm(0, 0, c1, hw, c2, 1.0f, g, b->data + o2, 0.0f, a->diff + o1);
    if (propagate_down[1] || same) /* dX2 = G' X1 */
      math_gemm(1, 0, c2, hw, c1, 1.0f, g, a->data + o1, same ? 1.0f : 0.0f, b->diff + o2);
  }
  return CREMA_OK;
}

const layer_ops bilinear_layer_ops = {
    .type = "Bilinear",
    .min_bottoms = 2, .max_bottoms = 2,
    .min_tops = 1, .max_tops = 1,
    .setup = bilinear_setup,
    .reshape = bilinear_reshape,
    .forward = bilinear_forward,
    .backward = bilinear_backward,
    .destroy = pair_destroy,
};

/* ---- CompactBilinear ------------------------------------------------------------------------ */

/* glibc's rand() (random_r, TYPE_3: additive feedback x[i] = x[i-3] +
 * x[i-31], seeded by a Lehmer generator, the first 310 outputs dropped),
 * so that the fork's draws are reproduced without touching the process's
 * own rand() state. */
typedef struct glibc_rand {
  uint32_t r[31];
  int f, b; /* front and rear indices */
} glibc_rand;

static uint32_t glibc_rand_next(glibc_rand *g) {
  g->r[g->f] += g->r[g->b];
  uint32_t out = g->r[g->f] >> 1;
  g->f = (g->f + 1) % 31;
  g->b = (g->b + 1) % 31;
  return out;
}

static void glibc_rand_seed(glibc_rand *g, uint32_t seed) {
  int32_t word = (int32_t)(seed ? seed : 1);
  g->r[0] = (uint32_t)word;
  for (int i = 1; i < 31; i++) {
    /* 16807 * word % (2^31 - 1) without overflow (Schrage's method). */
    int32_t hi = word / 127773, lo = word % 127773;
    word = 16807 * lo - 2836 * hi;
    if (word < 0)
      word += 2147483647;
    g->r[i] = (uint32_t)word;
  }
  g->f = 3;
  g->b = 0;
  for (int i = 0; i < 310; i++)
    glibc_rand_next(g);
}

/* Draws the hashes and signs of both bottoms as the fork does; done again
 * only when the channel counts change (the fork redraws on every reshape,
 * always the same values). */
static crema_status compact_draw(layer *l, int c1, int c2, crema_error *err) {
  pair_state *p = l->priv;
  if (p->c[0] == c1 && p->c[1] == c2)
    return CREMA_OK;
  const int c[2] = {c1, c2};
  glibc_rand g;
  glibc_rand_seed(&g, 1);
  for (int i = 0; i < 2; i++) {
    free(p->h[i]);
    free(p->s[i]);
    p->h[i] = crema_malloc((size_t)c[i] * sizeof(int) + 1, err);
    p->s[i] = crema_malloc((size_t)c[i] * sizeof(float) + 1, err);
    p->c[i] = 0;
    if (!p->h[i] || !p->s[i])
      return CREMA_ERR_NOMEM;
    for (int k = 0; k < c[i]; k++)
      p->h[i][k] = (int)(glibc_rand_next(&g) % (uint32_t)p->num_output);
    for (int k = 0; k < c[i]; k++)
      p->s[i][k] = (float)(2 * (int)(glibc_rand_next(&g) % 2u) - 1);
  }
  p->c[0] = c1;
  p->c[1] = c2;
  return CREMA_OK;
}

static crema_status compact_setup(layer *l, const blob_list *bottom, const blob_list *top,
                                  crema_error *err) {
  const Caffe__CompactBilinearParameter *cp = l->param->compact_bilinear_param;
  if (!cp || !cp->has_num_output)
    return layer_fail(l, err, CREMA_ERR_INVALID, "compact_bilinear_param.num_output is required");
  if (cp->num_output == 0 || cp->num_output > INT32_MAX)
    return layer_fail(l, err, CREMA_ERR_INVALID, "num_output must be in [1, %d], got %u",
                      INT32_MAX, cp->num_output);
  CREMA_TRY(pair_setup(l, err));
  pair_state *p = l->priv;
  p->num_output = (int)cp->num_output;
  p->sum_pool = cp->sum_pool;
  p->scale = (float)p->num_output;
  return CREMA_OK;
}

static crema_status compact_reshape(layer *l, const blob_list *bottom, const blob_list *top,
                                    crema_error *err) {
  CREMA_TRY(check_pair(l, bottom, top, err));
  pair_state *p = l->priv;
  const blob *a = bottom->v[0];
  const int shape[4] = {a->shape[0], p->num_output, p->sum_pool ? 1 : a->shape[2],
                        p->sum_pool ? 1 : a->shape[3]};
  CREMA_TRY(blob_reshape(top->v[0], 4, shape, err));
  return compact_draw(l, a->shape[1], bottom->v[1]->shape[1], err);
}

/* Bin of the product of channels i (bottom 0) and j (bottom 1). */
static inline int compact_bin(const pair_state *p, int i, int j) {
  /* Unsigned: two hashes below num_output <= INT32_MAX may exceed it. */
  unsigned k = (unsigned)p->h[0][i] + (unsigned)p->h[1][j];
  return (int)(k >= (unsigned)p->num_output ? k - (unsigned)p->num_output : k);
}

static crema_status compact_forward(layer *l, const blob_list *bottom, const blob_list *top,
                                    crema_error *err) {
  const pair_state *p = l->priv;
  const blob *a = bottom->v[0], *b = bottom->v[1];
  const int c1 = a->shape[1], c2 = b->shape[1], d = p->num_output;
  const int hw = a->shape[2] * a->shape[3];
  float *m = p->sum_pool ? pair_matrix(l, c1, c2, err) : NULL;
  if (p->sum_pool && !m)
    return CREMA_ERR_NOMEM;
  for (int n = 0; n < a->shape[0]; n++) {
    const float *x1 = a->data + (size_t)n * c1 * hw, *x2 = b->data + (size_t)n * c2 * hw;
    float *y = top->v[0]->data + (size_t)n * d * (p->sum_pool ? 1 : hw);
    math_set((size_t)d * (p->sum_pool ? 1 : hw), 0.0f, y);
    if (p->sum_pool) {
      /* The sum over locations first (one product), then each channel
       * pair's sum into its bin. */
      math_gemm(0, 1, c1, c2, hw, 1.0f, x1, x2, 0.0f, m);
      for (int i = 0; i < c1; i++)
        for (int j = 0; j < c2; j++)
          y[compact_bin(p, i, j)] += p->scale * p->s[0][i] * p->s[1][j] * m[(size_t)i * c2 + j];
      continue;
    }
    for (int i = 0; i < c1; i++)
      for (int j = 0; j < c2; j++) {
        const float w = p->scale * p->s[0][i] * p->s[1][j];
        float *yk = y + (size_t)compact_bin(p, i, j) * hw;
        const float *u = x1 + (size_t)i * hw, *v = x2 + (size_t)j * hw;
        for (int t = 0; t < hw; t++)
          yk[t] += w * u[t] * v[t];
      }
  }
  return CREMA_OK;
}

/* Summed over locations: with M[i][j] = D s1[i] s2[j] dy[bin(i, j)],
 * dX1 = M X2 and dX2 = M' X1. */
static void compact_backward_pooled(const pair_state *p, float *m, const float *g, int c1, int c2,
                                    int hw, const float *x1, const float *x2, float *dx1,
                                    float *dx2, int same) {
  for (int i = 0; i < c1; i++)
    for (int j = 0; j < c2; j++)
      m[(size_t)i * c2 + j] = p->scale * p->s[0][i] * p->s[1][j] * g[compact_bin(p, i, j)];
  if (dx1)
    math_gemm(0, 0, c1, hw, c2, 1.0f, m, x2, 0.0f, dx1);
  if (dx2)
    math_gemm(1, 0, c2, hw, c1, 1.0f, m, x1, same ? 1.0f : 0.0f, dx2);
}

/* Per location: dX1[i] = sum_j D s1 s2 dy[bin(i, j)] X2[j], and the same for
 * dX2. */
static void compact_backward_spatial(const pair_state *p, const float *g, int c1, int c2, int hw,
                                     const float *x1, const float *x2, float *dx1, float *dx2,
                                     int same) {
  if (dx1)
    math_set((size_t)c1 * hw, 0.0f, dx1);
  if (dx2 && !same)
    math_set((size_t)c2 * hw, 0.0f, dx2);
  for (int i = 0; i < c1; i++)
    for (int j = 0; j < c2; j++) {
      const float w = p->scale * p->s[0][i] * p->s[1][j];
      const float *gk = g + (size_t)compact_bin(p, i, j) * hw;
      const float *u = x1 + (size_t)i * hw, *v = x2 + (size_t)j * hw;
      if (dx1) {
        float *du = dx1 + (size_t)i * hw;
        for (int t = 0; t < hw; t++)
          du[t] += w * gk[t] * v[t];
      }
      if (dx2) {
        float *dv = dx2 + (size_t)j * hw;
        for (int t = 0; t < hw; t++)
          dv[t] += w * gk[t] * u[t];
      }
    }
}

static crema_status compact_backward(layer *l, const blob_list *top, const int *propagate_down,
                                     const blob_list *bottom, crema_error *err) {
  const pair_state *p = l->priv;
  blob *a = bottom->v[0], *b = bottom->v[1];
  const int same = a == b;
  if (!propagate_down[0] && !propagate_down[1])
    return CREMA_OK;
  const int c1 = a->shape[1], c2 = b->shape[1], d = p->num_output;
  const int hw = a->shape[2] * a->shape[3];
  float *m = p->sum_pool ? pair_matrix(l, c1, c2, err) : NULL;
  if (p->sum_pool && !m)
    return CREMA_ERR_NOMEM;
  for (int n = 0; n < a->shape[0]; n++) {
    const size_t o1 = (size_t)n * c1 * hw, o2 = (size_t)n * c2 * hw;
    float *dx1 = propagate_down[0] || same ? a->diff + o1 : NULL;
    float *dx2 = propagate_down[1] || same ? b->diff + o2 : NULL;
    const float *g = top->v[0]->diff + (size_t)n * d * (p->sum_pool ? 1 : hw);
    if (p->sum_pool)
      compact_backward_pooled(p, m, g, c1, c2, hw, a->data + o1, b->data + o2, dx1, dx2, same);
    else
      compact_backward_spatial(p, g, c1, c2, hw, a->data + o1, b->data + o2, dx1, dx2, same);
  }
  return CREMA_OK;
}

const layer_ops compact_bilinear_layer_ops = {
    .type = "CompactBilinear",
    .min_bottoms = 2, .max_bottoms = 2,
    .min_tops = 1, .max_tops = 1,
    .setup = compact_setup,
    .reshape = compact_reshape,
    .forward = compact_forward,
    .backward = compact_backward,
    .destroy = pair_destroy,
};

/* ---- SignedSqrt ----------------------------------------------------------------------------- */

/* The fork's epsilon in the backward pass's denominator. */
#define SIGNED_SQRT_EPSILON 0.03f

/* Setup of the layers without parameters or state. */
static crema_status stateless_setup(layer *l, const blob_list *bottom, const blob_list *top,
                                   crema_error *err) {
  return CREMA_OK;
}

static crema_status signed_sqrt_reshape(layer *l, const blob_list *bottom, const blob_list *top,
                                        crema_error *err) {
  /* The fork refuses to run in place; crema need not, since backward
   * reads only the output, but keeps the fork's rule so that nets behave
   * the same in both. */
  CREMA_TRY(check_not_in_place(l, bottom, top, err));
  return layer_reshape_like(l, top->v[0], bottom->v[0], err);
}

static crema_status signed_sqrt_forward(layer *l, const blob_list *bottom, const blob_list *top,
                                        crema_error *err) {
  const float *x = bottom->v[0]->data;
  float *y = top->v[0]->data;
  for (size_t i = 0, n = bottom->v[0]->count; i < n; i++)
    y[i] = x[i] >= 0.0f ? sqrtf(x[i]) : -sqrtf(-x[i]);
  return CREMA_OK;
}

static crema_status signed_sqrt_backward(layer *l, const blob_list *top,
                                         const int *propagate_down, const blob_list *bottom,
                                         crema_error *err) {
  if (!propagate_down[0])
    return CREMA_OK;
  const float *y = top->v[0]->data, *dy = top->v[0]->diff;
  float *dx = bottom->v[0]->diff;
  for (size_t i = 0, n = bottom->v[0]->count; i < n; i++)
    dx[i] = 0.5f * (dy[i] / (fabsf(y[i]) + SIGNED_SQRT_EPSILON));
  return CREMA_OK;
}

const layer_ops signed_sqrt_layer_ops = {
    .type = "SignedSqrt",
    .min_bottoms = 1, .max_bottoms = 1,
    .min_tops = 1, .max_tops = 1,
    .setup = stateless_setup,
    .reshape = signed_sqrt_reshape,
    .forward = signed_sqrt_forward,
    .backward = signed_sqrt_backward,
};

/* ---- L2Normalize ---------------------------------------------------------------------------- */

/* The fork's epsilon added to each item's sum of squares. */
#define L2_NORMALIZE_EPSILON 1e-7

static crema_status l2_normalize_reshape(layer *l, const blob_list *bottom, const blob_list *top,
                                         crema_error *err) {
  CREMA_TRY(check_not_in_place(l, bottom, top, err));
  if (bottom->v[0]->num_axes < 1) {
    return layer_fail(l, err, CREMA_ERR_SHAPE, "bottom must have at least 1 axis (the items)");
  }
  return layer_reshape_like(l, top->v[0], bottom->v[0], err);
}

/* 1 / sqrt(sum of squares + epsilon), the sum in double. */
static float l2_inverse_norm(const float *x, size_t d) {
  double s = 0.0;
  for (size_t j = 0; j < d; j++)
    s += (double)x[j] * x[j];
  return (float)(1.0 / sqrt(s + L2_NORMALIZE_EPSILON));
}

static crema_status l2_normalize_forward(layer *l, const blob_list *bottom, const blob_list *top,
                                         crema_error *err) {
  const blob *b = bottom->v[0];
  const size_t num = (size_t)b->shape[0], d = num ? b->count / num : 0;
  for (size_t n = 0; n < num; n++) {
    const float *x = b->data + n * d;
    float *y = top->v[0]->data + n * d;
    const float inv = l2_inverse_norm(x, d);
    for (size_t j = 0; j < d; j++)
      y[j] = x[j] * inv;
  }
  return CREMA_OK;
}

/* dx = (dy - (y . dy) y) / norm. */
static crema_status l2_normalize_backward(layer *l, const blob_list *top,
                                          const int *propagate_down, const blob_list *bottom,
                                          crema_error *err) {
  if (!propagate_down[0])
    return CREMA_OK;
  blob *b = bottom->v[0];
  const size_t num = (size_t)b->shape[0], d = num ? b->count / num : 0;
  for (size_t n = 0; n < num; n++) {
    const float *x = b->data + n * d, *y = top->v[0]->data + n * d;
    const float *dy = top->v[0]->diff + n * d;
    float *dx = b->diff + n * d;
    double a = 0.0;
    for (size_t j = 0; j < d; j++)
      a += (double)y[j] * dy[j];
    const float inv = l2_inverse_norm(x, d), af = (float)a;
    for (size_t j = 0; j < d; j++)
      dx[j] = (dy[j] - af * y[j]) * inv;
  }
  return CREMA_OK;
}

const layer_ops l2_normalize_layer_ops = {
    .type = "L2Normalize",
    .min_bottoms = 1, .max_bottoms = 1,
    .min_tops = 1, .max_tops = 1,
    .setup = stateless_setup,
    .reshape = l2_normalize_reshape,
    .forward = l2_normalize_forward,
    .backward = l2_normalize_backward,
};
