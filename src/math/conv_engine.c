#include "config.h"

#include <string.h>

#include "math/blas.h"
#include "math/conv_engine.h"

/* Caffe skips im2col when the column matrix would equal the image. */
static int is_pointwise(const conv_geom *g) {
  const im2col_shape *s = &g->in;
  return s->kernel_h == 1 && s->kernel_w == 1 && s->stride_h == 1 && s->stride_w == 1 &&
         s->pad_h == 0 && s->pad_w == 0;
}

int conv_geom_columns(const conv_geom *g, size_t *floats) {
  const im2col_shape *s = &g->in;
  size_t n = (size_t)s->channels;
  return size_mul(n, (size_t)s->kernel_h, &n) && size_mul(n, (size_t)s->kernel_w, &n) &&
         size_mul(n, (size_t)s->out_h, &n) && size_mul(n, (size_t)s->out_w, floats);
}

static size_t gemm_workspace(const conv_geom *g) {
  size_t n = 0;
  if (is_pointwise(g) || !conv_geom_columns(g, &n))
    return 0;
  return n;
}

/* Per-group GEMM sizes: M output channels, N output positions, K = taps. */
typedef struct gemm_dims {
  int m, n, k;
} gemm_dims;

static gemm_dims dims_of(const conv_geom *g) {
  const im2col_shape *s = &g->in;
  gemm_dims d;
  d.m = g->out_channels / g->group;
  d.n = s->out_h * s->out_w;
  d.k = s->channels / g->group * s->kernel_h * s->kernel_w;
  return d;
}

static void gemm_forward(const conv_geom *g, const float *in, const float *w, float *out,
                         float *ws) {
  const float *col = in;
  if (!is_pointwise(g)) {
    math_im2col(&g->in, in, ws);
    col = ws;
  }
  gemm_dims d = dims_of(g);
  for (int grp = 0; grp < g->group; grp++)
    math_gemm(0, 0, d.m, d.n, d.k, 1.0f, w + (size_t)grp * d.m * d.k,
              col + (size_t)grp * d.k * d.n, 0.0f, out + (size_t)grp * d.m * d.n);
}

static void gemm_backward_data(const conv_geom *g, const float *out_diff, const float *w,
                               float *in_diff, float *ws) {
  int pointwise = is_pointwise(g);
  float *col = pointwise ? in_diff : ws;
  gemm_dims d = dims_of(g);
  for (int grp = 0; grp < g->group; grp++)
    math_gemm(1, 0, d.k, d.n, d.m, 1.0f, w + (size_t)grp * d.m * d.k,
              out_diff + (size_t)grp * d.m * d.n, 0.0f, col + (size_t)grp * d.k * d.n);
  if (!pointwise)
    math_col2im(&g->in, col, in_diff);
}

static void gemm_backward_weights(const conv_geom *g, const float *in, const float *out_diff,
                                  float *w_diff, float *ws) {
  const float *col = in;
  if (!is_pointwise(g)) {
    math_im2col(&g->in, in, ws);
    col = ws;
  }
  gemm_dims d = dims_of(g);
  for (int grp = 0; grp < g->group; grp++)
    math_gemm(0, 1, d.m, d.k, d.n, 1.0f, out_diff + (size_t)grp * d.m * d.n,
              col + (size_t)grp * d.k * d.n, 1.0f, w_diff + (size_t)grp * d.m * d.k);
}

const conv_engine conv_engine_gemm = {
    .name = "gemm",
    .supports = NULL,
    .workspace = gemm_workspace,
    .forward = gemm_forward,
    .backward_data = gemm_backward_data,
    .backward_weights = gemm_backward_weights,
};

/* Faster engines are added here; gemm stays last as the fallback. */
static const conv_engine *const engines[] = {&conv_engine_gemm, NULL};

static const conv_engine *find_engine(const char *name) {
  if (!name || !*name)
    return &conv_engine_gemm;
  for (const conv_engine *const *e = engines; *e; e++)
    if (!strcmp((*e)->name, name))
      return *e;
  return NULL;
}

crema_status conv_engine_check_name(const char *name, crema_error *err) {
  if (find_engine(name))
    return CREMA_OK;
  char known[256] = "";
  for (const conv_engine *const *e = engines; *e; e++) {
    if (e != engines)
      strncat(known, ", ", sizeof known - strlen(known) - 1);
    strncat(known, (*e)->name, sizeof known - strlen(known) - 1);
  }
  return crema_fail(err, CREMA_ERR_INVALID, "unknown convolution engine '%s' (known: %s)", name,
                    known);
}

static size_t workspace_of(const conv_engine *e, const conv_geom *g) {
  return e->workspace ? e->workspace(g) : 0;
}

void conv_engine_resolve(const char *name, const conv_geom *g, conv_engine *out,
                         size_t *ws_floats) {
  const conv_engine *want = find_engine(name);
  const conv_engine *base = &conv_engine_gemm;
  if (!want || (want->supports && !want->supports(g)))
    want = base;
  *out = *want;
  size_t ws = workspace_of(want, g);
  int needs_base = 0;
  if (!out->forward) {
    out->forward = base->forward;
    needs_base = 1;
  }
  if (!out->backward_data) {
    out->backward_data = base->backward_data;
    needs_base = 1;
  }
  if (!out->backward_weights) {
    out->backward_weights = base->backward_weights;
    needs_base = 1;
  }
  if (needs_base && workspace_of(base, g) > ws)
    ws = workspace_of(base, g);
  *ws_floats = ws;
}
