#include "config.h"

#include <string.h>

#include "core/parallel.h"
#include "math/activation.h"
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

/* Column floats per band: large enough that each GEMM runs at full speed,
 * small enough (8 MB) to stay out of the peak memory figure. */
#define GEMM_BAND_FLOATS ((size_t)2 << 20)

/* Output rows per band of the column matrix (at least one). */
static int band_rows(const conv_geom *g) {
  const im2col_shape *s = &g->in;
  size_t per_row = (size_t)s->channels * s->kernel_h * s->kernel_w * (size_t)s->out_w;
  size_t rows = per_row ? GEMM_BAND_FLOATS / per_row : 1;
  if (rows < 1)
    rows = 1;
  return rows > (size_t)s->out_h ? s->out_h : (int)rows;
}

static size_t gemm_workspace(const conv_geom *g) {
  size_t n = 0;
  if (is_pointwise(g) || !conv_geom_columns(g, &n))
    return 0;
  const im2col_shape *s = &g->in;
  return (size_t)s->channels * s->kernel_h * s->kernel_w * (size_t)s->out_w * band_rows(g);
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

/* math_im2col_rows and math_col2im_rows_add split over the team by input
 * channels: the column matrix's rows are channel-major, so each member
 * fills (or folds back) its own rows and image planes.  Between two
 * parallel products a serial im2col was most of the time of a first
 * layer's or a 14x14 layer's weight gradient on 2 threads. */
typedef struct cols_job {
  const im2col_shape *s;
  const float *src; /* the image for im2col, the columns for col2im */
  float *dst;
  int oh0, oh1;
  int to_cols;
} cols_job;

static void cols_member(par_team *team, int tid, int nthreads, void *ctx) {
  const cols_job *j = ctx;
  long lo, hi;
  par_split(j->s->channels, tid, nthreads, &lo, &hi);
  if (lo >= hi)
    return;
  im2col_shape part = *j->s;
  part.channels = (int)(hi - lo);
  const size_t plane_off = (size_t)lo * part.height * part.width;
  const size_t band = (size_t)(j->oh1 - j->oh0) * part.out_w;
  const size_t rows_off = (size_t)lo * part.kernel_h * part.kernel_w * band;
  if (j->to_cols)
    math_im2col_rows(&part, j->src + plane_off, j->oh0, j->oh1, j->dst + rows_off);
  else
    math_col2im_rows_add(&part, j->src + rows_off, j->oh0, j->oh1, j->dst + plane_off);
}

static void cols_run(const conv_geom *g, const float *src, float *dst, int oh0, int oh1,
                     int to_cols) {
  const im2col_shape *s = &g->in;
  cols_job j = {s, src, dst, oh0, oh1, to_cols};
  size_t floats = (size_t)s->channels * s->kernel_h * s->kernel_w * (oh1 - oh0) * s->out_w;
  int big = floats >= (size_t)PAR_ELEMENTWISE_MIN && s->channels > 1;
  par_run(big && g->threads > 1 ? g->threads : 1, cols_member, &j);
}

static void im2col_rows_team(const conv_geom *g, const float *im, int oh0, int oh1,
                             float *col) {
  cols_run(g, im, col, oh0, oh1, 1);
}

static void col2im_rows_add_team(const conv_geom *g, const float *col, int oh0, int oh1,
                                 float *im) {
  cols_run(g, col, im, oh0, oh1, 0);
}

typedef struct finish_job {
  float *out;
  const float *bias;
  int relu;
  size_t spatial;
} finish_job;

static void finish_channels(long c0, long c1, void *ctx) {
  const finish_job *j = ctx;
  for (long c = c0; c < c1; c++) {
    float *restrict o = j->out + (size_t)c * j->spatial;
    /* Without a bias nothing is added: 0 + -0.0 would lose the sign. */
    const float b = j->bias ? j->bias[c] : 0.0f;
    if (j->bias && j->relu)
      for (size_t i = 0; i < j->spatial; i++)
        o[i] = relu_caffe(o[i] + b, 0.0f);
    else if (j->bias)
      for (size_t i = 0; i < j->spatial; i++)
        o[i] += b;
    else
      for (size_t i = 0; i < j->spatial; i++)
        o[i] = relu_caffe(o[i], 0.0f);
  }
}

void conv_finish_output(float *out, const float *bias, int relu, int channels, size_t spatial) {
  if (!bias && !relu)
    return;
  finish_job j = {out, bias, relu, spatial};
  par_for(channels, par_min_items(spatial), finish_channels, &j);
}

static void gemm_forward(const conv_geom *g, const float *in, const float *w, const float *bias,
                         float *out, float *ws) {
  gemm_dims d = dims_of(g);
  const im2col_shape *s = &g->in;
  if (is_pointwise(g)) {
    for (int grp = 0; grp < g->group; grp++)
      math_gemm_ld(0, 0, d.m, d.n, d.k, 1.0f, w + (size_t)grp * d.m * d.k, d.k,
                   in + (size_t)grp * d.k * d.n, d.n, 0.0f, out + (size_t)grp * d.m * d.n, d.n);
  } else {
    int rows = band_rows(g);
    for (int oh0 = 0; oh0 < s->out_h; oh0 += rows) {
      int oh1 = oh0 + rows < s->out_h ? oh0 + rows : s->out_h;
      int nb = (oh1 - oh0) * s->out_w;
      im2col_rows_team(g, in, oh0, oh1, ws);
      size_t off = (size_t)oh0 * s->out_w;
      for (int grp = 0; grp < g->group; grp++)
        math_gemm_ld(0, 0, d.m, nb, d.k, 1.0f, w + (size_t)grp * d.m * d.k, d.k,
                     ws + (size_t)grp * d.k * nb, nb, 0.0f, out + (size_t)grp * d.m * d.n + off,
                     d.n);
    }
  }
  conv_finish_output(out, bias, g->relu, g->out_channels, (size_t)d.n);
}

static void gemm_backward_data(const conv_geom *g, const float *out_diff, const float *w,
                               float *in_diff, float *ws) {
  gemm_dims d = dims_of(g);
  const im2col_shape *s = &g->in;
  if (is_pointwise(g)) {
    for (int grp = 0; grp < g->group; grp++)
      math_gemm_ld(1, 0, d.k, d.n, d.m, 1.0f, w + (size_t)grp * d.m * d.k, d.k,
                   out_diff + (size_t)grp * d.m * d.n, d.n, 0.0f, in_diff + (size_t)grp * d.k * d.n,
                   d.n);
    return;
  }
  memset(in_diff, 0, (size_t)s->channels * s->height * s->width * sizeof(float));
  int rows = band_rows(g);
  for (int oh0 = 0; oh0 < s->out_h; oh0 += rows) {
    int oh1 = oh0 + rows < s->out_h ? oh0 + rows : s->out_h;
    int nb = (oh1 - oh0) * s->out_w;
    size_t off = (size_t)oh0 * s->out_w;
    for (int grp = 0; grp < g->group; grp++)
      math_gemm_ld(1, 0, d.k, nb, d.m, 1.0f, w + (size_t)grp * d.m * d.k, d.k,
                   out_diff + (size_t)grp * d.m * d.n + off, d.n, 0.0f, ws + (size_t)grp * d.k * nb,
                   nb);
    col2im_rows_add_team(g, ws, oh0, oh1, in_diff);
  }
}

static void gemm_backward_weights(const conv_geom *g, const float *in, const float *out_diff,
                                  float *w_diff, float *ws) {
  gemm_dims d = dims_of(g);
  const im2col_shape *s = &g->in;
  if (is_pointwise(g)) {
    for (int grp = 0; grp < g->group; grp++)
      math_gemm_ld(0, 1, d.m, d.k, d.n, 1.0f, out_diff + (size_t)grp * d.m * d.n, d.n,
                   in + (size_t)grp * d.k * d.n, d.n, 1.0f, w_diff + (size_t)grp * d.m * d.k, d.k);
    return;
  }
  int rows = band_rows(g);
  for (int oh0 = 0; oh0 < s->out_h; oh0 += rows) {
    int oh1 = oh0 + rows < s->out_h ? oh0 + rows : s->out_h;
    int nb = (oh1 - oh0) * s->out_w;
    size_t off = (size_t)oh0 * s->out_w;
    im2col_rows_team(g, in, oh0, oh1, ws);
    for (int grp = 0; grp < g->group; grp++)
      math_gemm_ld(0, 1, d.m, d.k, nb, 1.0f, out_diff + (size_t)grp * d.m * d.n + off, d.n,
                   ws + (size_t)grp * d.k * nb, nb, 1.0f, w_diff + (size_t)grp * d.m * d.k, d.k);
  }
}

const conv_engine conv_engine_gemm = {
    .name = "gemm",
    .supports = NULL,
    .workspace = gemm_workspace,
    .forward = gemm_forward,
    .backward_data = gemm_backward_data,
    .backward_weights = gemm_backward_weights,
};

/* Selectable engines; "auto" (the default) takes the first that says it
 * is preferred for a geometry, else gemm. */
static const conv_engine *const engines[] = {&conv_engine_gemm, &conv_engine_winograd,
                                             &conv_engine_direct, &conv_engine_depthwise, NULL};

static int is_auto(const char *name) { return !name || !*name || !strcmp(name, "auto"); }

static const conv_engine *find_engine(const char *name) {
  if (is_auto(name))
    return &conv_engine_gemm;
  for (const conv_engine *const *e = engines; *e; e++)
    if (!strcmp((*e)->name, name))
      return *e;
  return NULL;
}

crema_status conv_engine_check_name(const char *name, crema_error *err) {
  if (find_engine(name))
    return CREMA_OK;
  char known[256] = "auto";
  for (const conv_engine *const *e = engines; *e; e++) {
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
  if (is_auto(name))
    for (const conv_engine *const *e = engines; *e; e++)
      if ((*e)->preferred && (*e)->preferred(g)) {
        want = *e;
        break;
      }
  if (!want || (want->supports && !want->supports(g)))
    want = base;
  *out = *want;
  /* On tiny images Winograd's weight gradient loses to SGEMM (its
   * per-filter transforms stop being amortised over tiles), which its own
   * preference says, whatever the forward pass's.  A named engine keeps to
   * these preferences too: where it gains no time its gradients' rounding
   * would only move the training trajectory away from Caffe's. */
  if (want->data_preferred && !want->data_preferred(g))
    out->backward_data = NULL;
  if (want->weights_preferred && !want->weights_preferred(g))
    out->backward_weights = NULL;
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
