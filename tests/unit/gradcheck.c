/* Numeric gradient checks, after Caffe's GradientChecker. */
#include "config.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/text.h"
#include "tests/unit/gradcheck.h"

gc_options gc_default_options(void) {
  gc_options o;
  memset(&o, 0, sizeof o);
  o.step = 1e-2f;
  o.threshold = 1e-2f;
  o.kink_range = -1.0f;
  o.seed = 1701;
  o.check_params = 1;
  o.min_value = -1.0f;
  o.max_value = 1.0f;
  o.phase = CAFFE__PHASE__TRAIN;
  return o;
}

Caffe__LayerParameter *gc_parse_layer(const char *text) {
  ProtobufCMessage *m = NULL;
  crema_error err = {0};
  crema_status st =
      txt_parse(text, strlen(text), "<test>", &caffe__layer_parameter__descriptor, &m, &err);
  ck_assert_msg(st == CREMA_OK, "cannot parse layer: %s", err.message);
  return (Caffe__LayerParameter *)m;
}

/* The objective sum_k w_k * top_k, in double so that differences of nearby
 * objectives keep their precision. */
static double objective(const blob_list *top, float *const *weights) {
  double sum = 0.0;
  for (int t = 0; t < top->n; t++)
    if (weights[t])
      for (size_t i = 0; i < top->v[t]->count; i++)
        sum += (double)weights[t][i] * top->v[t]->data[i];
  return sum;
}

static void run_forward(layer *l, const blob_list *bottom, const blob_list *top) {
  crema_error err = {0};
  crema_status st = l->ops->forward(l, bottom, top, &err);
  ck_assert_msg(st == CREMA_OK, "forward failed: %s", err.message);
}

/* Compares the analytic gradient of one blob with central differences. */
static void check_blob(layer *l, const blob_list *bottom, const blob_list *top,
                       float *const *weights, blob *target, const float *analytic,
                       const char *what, const gc_options *o) {
  for (size_t i = 0; i < target->count; i++) {
    float x = target->data[i];
    if (o->kink_range >= 0 && fabsf(x - o->kink) <= o->kink_range)
      continue;
    target->data[i] = x + o->step;
    run_forward(l, bottom, top);
    double plus = objective(top, weights);
    target->data[i] = x - o->step;
    run_forward(l, bottom, top);
    double minus = objective(top, weights);
    target->data[i] = x;
    double numeric = (plus - minus) / (2.0 * o->step);
    double a = analytic[i];
    double scale = fmax(fmax(fabs(a), fabs(numeric)), 1.0);
    ck_assert_msg(fabs(a - numeric) <= o->threshold * scale,
                  "layer '%s' (%s): %s element %zu: analytic %g, numeric %g", l->name,
                  l->ops->type, what, i, a, numeric);
  }
}

void gc_check_layer(const Caffe__LayerParameter *param, int nbottoms, const int *num_axes,
                    const int (*shapes)[6], int ntops, const gc_options *opts,
                    gc_prepare_fn prepare, void *user) {
  gc_options o = opts ? *opts : gc_default_options();
  crema_error err = {0};
  layer_ctx ctx;
  memset(&ctx, 0, sizeof ctx);
  rng_seed(&ctx.rng, o.seed);
  layer *l = NULL;
  ck_assert_msg(layer_create(param, o.phase, &ctx, &l, &err) == CREMA_OK, "%s", err.message);

  blob *bv[16] = {0}, *tv[16] = {0};
  ck_assert(nbottoms <= 16 && ntops <= 16);
  crema_rng values;
  rng_seed(&values, o.seed + 1);
  float lo = o.min_value, hi = o.max_value > o.min_value ? o.max_value : o.min_value + 2.0f;
  if (o.max_value == o.min_value) {
    lo = -1.0f;
    hi = 1.0f;
  }
  for (int b = 0; b < nbottoms; b++) {
    bv[b] = blob_create("bottom", &err);
    ck_assert(bv[b] != NULL);
    ck_assert_msg(blob_reshape(bv[b], num_axes[b], shapes[b], &err) == CREMA_OK, "%s",
                  err.message);
    for (size_t i = 0; i < bv[b]->count; i++)
      bv[b]->data[i] = rng_uniform(&values, lo, hi);
  }
  if (prepare)
    prepare(bv, nbottoms, user);
  for (int t = 0; t < ntops; t++)
    ck_assert((tv[t] = blob_create("top", &err)) != NULL);
  blob_list bottom = {bv, nbottoms}, top = {tv, ntops};

  ck_assert_msg(l->ops->setup(l, &bottom, &top, &err) == CREMA_OK, "setup: %s", err.message);
  ck_assert_msg(l->ops->reshape(l, &bottom, &top, &err) == CREMA_OK, "reshape: %s",
                err.message);
  run_forward(l, &bottom, &top);
  ck_assert_msg(l->ops->backward != NULL, "layer type %s has no backward", l->ops->type);

  /* Loss layers: only the loss counts, with a weight other than 1 so that a
   * layer ignoring its loss weight is caught. */
  float *weights[16] = {0};
  for (int t = 0; t < ntops; t++) {
    if (l->ops->is_loss && t > 0)
      continue;
    weights[t] = calloc(tv[t]->count, sizeof(float));
    for (size_t i = 0; i < tv[t]->count; i++)
      weights[t][i] = l->ops->is_loss ? 0.7f : rng_uniform(&values, -1.0f, 1.0f);
  }

  /* Analytic gradients. */
  int prop[16];
  for (int b = 0; b < nbottoms; b++)
    prop[b] = o.check_bottoms ? (int)((o.check_bottoms >> b) & 1u) : 1;
  for (int t = 0; t < ntops; t++)
    if (weights[t])
      memcpy(tv[t]->diff, weights[t], tv[t]->count * sizeof(float));
    else
      blob_zero_diff(tv[t]);
  for (int p = 0; p < l->nblobs; p++)
    blob_zero_diff(l->blobs[p]);
  ck_assert_msg(l->ops->backward(l, &top, prop, &bottom, &err) == CREMA_OK, "backward: %s",
                err.message);
  float *grads[16 + 16] = {0};
  for (int b = 0; b < nbottoms; b++)
    if (prop[b]) {
      grads[b] = malloc(bv[b]->count * sizeof(float));
      memcpy(grads[b], bv[b]->diff, bv[b]->count * sizeof(float));
    }
  float **pgrads = calloc((size_t)l->nblobs + 1, sizeof(float *));
  for (int p = 0; p < l->nblobs; p++) {
    pgrads[p] = malloc(l->blobs[p]->count * sizeof(float));
    memcpy(pgrads[p], l->blobs[p]->diff, l->blobs[p]->count * sizeof(float));
  }

  char what[64];
  for (int b = 0; b < nbottoms; b++)
    if (prop[b]) {
      snprintf(what, sizeof what, "bottom %d", b);
      check_blob(l, &bottom, &top, weights, bv[b], grads[b], what, &o);
    }
  if (o.check_params) {
    gc_options po = o;
    po.kink_range = -1.0f; /* kinks are defined on the bottoms' values */
    for (int p = 0; p < l->nblobs; p++)
      if (l->param_propagate_down[p]) {
        snprintf(what, sizeof what, "param %d", p);
        check_blob(l, &bottom, &top, weights, l->blobs[p], pgrads[p], what, &po);
      }
  }

  for (int p = 0; p < l->nblobs; p++)
    free(pgrads[p]);
  free(pgrads);
  for (int b = 0; b < nbottoms; b++) {
    free(grads[b]);
    blob_free(bv[b]);
  }
  for (int t = 0; t < ntops; t++) {
    free(weights[t]);
    blob_free(tv[t]);
  }
  layer_free(l);
  free(ctx.workspace);
}

void gc_run_open(gc_run *r, const char *text, Caffe__Phase phase) {
  memset(r, 0, sizeof *r);
  r->param = gc_parse_layer(text);
  ck_assert_msg(layer_create(r->param, phase, &r->ctx, &r->l, &r->err) == CREMA_OK, "%s",
                r->err.message);
}

crema_status gc_run_setup(gc_run *r) {
  crema_status st = r->l->ops->setup(r->l, &r->b, &r->t, &r->err);
  if (st == CREMA_OK)
    st = r->l->ops->reshape(r->l, &r->b, &r->t, &r->err);
  return st;
}

void gc_run_forward(gc_run *r) {
  ck_assert_msg(gc_run_setup(r) == CREMA_OK, "%s", r->err.message);
  ck_assert_msg(r->l->ops->forward(r->l, &r->b, &r->t, &r->err) == CREMA_OK, "%s",
                r->err.message);
}

void gc_run_free(gc_run *r) {
  layer_free(r->l);
  for (int i = 0; i < 4; i++) {
    blob_free(r->bottom[i]);
    blob_free(r->top[i]);
  }
  free(r->ctx.workspace);
  protobuf_c_message_free_unpacked(&r->param->base, NULL);
}
