#include "config.h"

#include <string.h>

#include "core/parallel.h"
#include "math/activation.h"
#include "math/elementwise.h"

/* ---- ReLU ---- */

typedef struct relu_pass {
  const float *x, *dy;
  float *y;
  float slope;
} relu_pass;

static void relu_forward_range(long lo, long hi, void *ctx) {
  const relu_pass *q = ctx;
  const float slope = q->slope;
  for (long i = lo; i < hi; i++)
    q->y[i] = relu_caffe(q->x[i], slope);
}

void ew_relu(const float *x, float *y, size_t n, float slope) {
  relu_pass q = {x, NULL, y, slope};
  par_for((long)n, PAR_ELEMENTWISE_MIN, relu_forward_range, &q);
}

static void relu_backward_range(long lo, long hi, void *ctx) {
  const relu_pass *q = ctx;
  const float *x = q->x, *dy = q->dy;
  float *dx = q->y;
  const float slope = q->slope;
  /* dy * ((x > 0) + slope * (x <= 0)) written as selects of dy: converted
   * comparisons compile to branches (comparisons may trap), selects of
   * values do not.  ivdep: in place, dx is dy and x is y element for
   * element, each read before it is written, so the loop may run in
   * vectors (the slowest element-wise pass of a training step ran scalar). */
#pragma GCC ivdep
  for (long i = lo; i < hi; i++) {
    float v = x[i], d = dy[i];
    float pos = v > 0 ? d : 0.0f, neg = v <= 0 ? d : 0.0f;
    dx[i] = pos + slope * neg;
  }
}

void ew_relu_backward(const float *x, const float *dy, float *dx, size_t n, float slope) {
  relu_pass q = {x, dy, dx, slope};
  par_for((long)n, PAR_ELEMENTWISE_MIN, relu_backward_range, &q);
}

/* ---- affine ---- */

/* In loops simple enough to vectorise: the weighted side outputs of the
 * segmentation nets are Power layers with power 1. */
static void affine(const float *x, float scale, float shift, float *y, size_t n) {
  if (scale != 1.0f && shift != 0.0f)
    for (size_t i = 0; i < n; i++)
      y[i] = x[i] * scale + shift;
  else if (scale != 1.0f)
    for (size_t i = 0; i < n; i++)
      y[i] = x[i] * scale;
  else if (shift != 0.0f)
    for (size_t i = 0; i < n; i++)
      y[i] = x[i] + shift;
  else if (y != x)
    memmove(y, x, n * sizeof(float));
}

typedef struct affine_pass {
  const float *x;
  float *y;
  float scale, shift;
} affine_pass;

static void affine_range(long lo, long hi, void *ctx) {
  const affine_pass *q = ctx;
  affine(q->x + lo, q->scale, q->shift, q->y + lo, (size_t)(hi - lo));
}

void ew_affine(const float *x, float scale, float shift, float *y, size_t n) {
  affine_pass q = {x, y, scale, shift};
  par_for((long)n, PAR_ELEMENTWISE_MIN, affine_range, &q);
}

/* ---- sums ---- */

typedef struct sum_pass {
  blob *const *blobs;
  int k;
  float *y;
} sum_pass;

static void sum_range(long lo, long hi, void *ctx) {
  const sum_pass *q = ctx;
  float *y = q->y + lo;
  const size_t n = (size_t)(hi - lo);
  const float *d0 = q->blobs[0]->diff + lo;
  /* The first two in one pass (Caffe's caffe_add, the same sums). */
  if (q->k > 1) {
    const float *d1 = q->blobs[1]->diff + lo;
    for (size_t i = 0; i < n; i++)
      y[i] = d0[i] + d1[i];
  } else {
    memcpy(y, d0, n * sizeof(float));
  }
  for (int t = 2; t < q->k; t++) {
    const float *d = q->blobs[t]->diff + lo;
    for (size_t i = 0; i < n; i++)
      y[i] += d[i];
  }
}

void ew_sum_diffs(blob *const *blobs, int k, float *y, size_t n) {
  sum_pass q = {blobs, k, y};
  par_for((long)n, PAR_ELEMENTWISE_MIN, sum_range, &q);
}

/* Eight partial sums, so the compiler can keep them in one vector (a single
 * running sum is a chain of dependent additions it may not reorder). */
#define SUM_LANES 8

static void channel_sums(float *restrict sums, const float *restrict x, long c0, long c1,
                         size_t spatial) {
  for (long c = c0; c < c1; c++) {
    const float *restrict t = x + (size_t)c * spatial;
    float part[SUM_LANES] = {0};
    size_t i = 0;
    for (; i + SUM_LANES <= spatial; i += SUM_LANES)
      for (int k = 0; k < SUM_LANES; k++)
        part[k] += t[i + k];
    float sum = 0.0f;
    for (; i < spatial; i++)
      sum += t[i];
    for (int k = 0; k < SUM_LANES; k++)
      sum += part[k];
    sums[c] += sum;
  }
}

typedef struct channel_pass {
  float *sums;
  const float *x;
  size_t spatial;
} channel_pass;

static void channel_range(long lo, long hi, void *ctx) {
  const channel_pass *j = ctx;
  channel_sums(j->sums, j->x, lo, hi, j->spatial);
}

void ew_channel_sums_add(float *sums, const float *x, int channels, size_t spatial) {
  channel_pass j = {sums, x, spatial};
  par_for(channels, par_min_items(spatial), channel_range, &j);
}

/* ---- class-balanced sigmoid cross-entropy ---- */

static float balanced_weight(float t, float beta) {
  if (t == 1.0f)
    return beta;
  if (t == 0.0f)
    return 1.0f - beta;
  return 0.0f;
}

/* Each element costs a log1p and an exp in double, 20 ns, and the lesion
 * net's eight losses were a serial 13 ms of a training step: the item is
 * split over the team.  The loss is summed in fixed chunks whose partial
 * sums are added in order, so it does not depend on the number of threads.
 * The sigmoid comes from the same exp and is kept for backward, which took
 * as long again with a tanh of its own. */
#define BALANCED_CHUNKS 256
#define BALANCED_MIN_CHUNK 4096

typedef struct balanced_pass {
  const float *x, *t;
  float *dx, *sig;
  const float *sig_in;
  float beta, scale;
  size_t n, chunk;
  double partial[BALANCED_CHUNKS];
} balanced_pass;

static void balanced_loss_chunks(long lo, long hi, void *ctx) {
  balanced_pass *q = ctx;
  for (long c = lo; c < hi; c++) {
    size_t j0 = (size_t)c * q->chunk, j1 = j0 + q->chunk < q->n ? j0 + q->chunk : q->n;
    double sum = 0.0;
    for (size_t j = j0; j < j1; j++) {
      float w = balanced_weight(q->t[j], q->beta);
      if (w == 0.0f)
        continue;
      double e;
      sum += w * sigmoid_ce_term_exp(q->x[j], q->t[j], &e);
      q->sig[j] = sigmoid_from_exp(q->x[j], e);
    }
    q->partial[c] = sum;
  }
}

double ew_balanced_sigmoid_ce_add(double loss, const float *x, const float *t, size_t n,
                                  float beta, float *sig) {
  size_t chunk = (n + BALANCED_CHUNKS - 1) / BALANCED_CHUNKS;
  balanced_pass q = {.x = x,
                     .t = t,
                     .sig = sig,
                     .n = n,
                     .beta = beta,
                     .chunk = chunk < BALANCED_MIN_CHUNK ? BALANCED_MIN_CHUNK : chunk};
  long chunks = (long)((n + q.chunk - 1) / q.chunk);
  par_for(chunks, 2, balanced_loss_chunks, &q);
  for (long c = 0; c < chunks; c++)
    loss += q.partial[c];
  return loss;
}

static void balanced_grad_range(long lo, long hi, void *ctx) {
  const balanced_pass *q = ctx;
  for (long j = lo; j < hi; j++) {
    float w = balanced_weight(q->t[j], q->beta);
    q->dx[j] = w == 0.0f ? 0.0f : q->scale * w * (q->sig_in[j] - q->t[j]);
  }
}

void ew_balanced_sigmoid_ce_grad(const float *t, const float *sig, size_t n, float beta,
                                 float scale, float *dx) {
  balanced_pass q = {.t = t, .sig_in = sig, .dx = dx, .beta = beta, .scale = scale};
  par_for((long)n, BALANCED_MIN_CHUNK, balanced_grad_range, &q);
}

/* ---- copies along an axis ---- */

/* The team splits the whole blob's values: a member copies the pieces of
 * every segment that fall in its share. */
typedef struct axis_pass {
  const blob *whole;
  blob *const *parts;
  int nparts;
  const int *want;
  size_t outer, inner, whole_stride;
  int axis, to_whole, use_diff;
} axis_pass;

static void axis_copy_range(long lo, long hi, void *ctx) {
  const axis_pass *c = ctx;
  float *w = c->use_diff ? c->whole->diff : c->whole->data;
  for (size_t o = 0; o < c->outer; o++) {
    size_t offset = 0;
    for (int i = 0; i < c->nparts; i++) {
      const blob *b = c->parts[i];
      const size_t len = (size_t)b->shape[c->axis] * c->inner;
      /* The segment [start, start + len) of the whole, clipped to the share. */
      const size_t start = o * c->whole_stride + offset * c->inner;
      offset += (size_t)b->shape[c->axis];
      size_t s0 = start > (size_t)lo ? start : (size_t)lo;
      size_t s1 = start + len < (size_t)hi ? start + len : (size_t)hi;
      if (s0 >= s1 || (c->want && !c->want[i]))
        continue;
      float *part = (c->use_diff ? b->diff : b->data) + o * len + (s0 - start);
      if (c->to_whole)
        memcpy(w + s0, part, (s1 - s0) * sizeof(float));
      else
        memcpy(part, w + s0, (s1 - s0) * sizeof(float));
    }
  }
}

void ew_axis_copy(int axis, const blob *whole, blob *const *parts, int nparts, int to_whole,
                  int use_diff, const int *want) {
  axis_pass c = {whole, parts, nparts, want, blob_count_range(whole, 0, axis),
                 blob_count_from(whole, axis + 1), 0, axis, to_whole, use_diff};
  c.whole_stride = (size_t)whole->shape[axis] * c.inner;
  par_for((long)(c.outer * c.whole_stride), PAR_ELEMENTWISE_MIN, axis_copy_range, &c);
}
