/* Whole-net checks where no reference Caffe is at hand: central differences
 * of a net's loss against its backward pass (inputs and every learnable
 * parameter) on inception-style, residual, fan-out, shared-parameter and
 * patent-shaped nets; in-place versus out-of-place versions of one net;
 * propagate_down, lr_mult 0 on one blob, Dropout determinism, phase rules
 * with Accuracy, and Silence. */
#include "config.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "caffe.pb-c.h"
#include "data/datum.h"
#include "data/lmdb_source.h"
#include "graph/net.h"
#include "graph/weights.h"
#include "io/binary.h"
#include "io/blobproto.h"
#include "io/text.h"
#include "io/upgrade.h"
#include "tests/unit/testutil.h"

/* ---- helpers ------------------------------------------------------------ */

typedef struct lcg {
  unsigned long long s;
} lcg;

static double lcg_uniform(lcg *g) {
  g->s = g->s * 6364136223846793005ULL + 1442695040888963407ULL;
  return (double)(g->s >> 11) / 9007199254740992.0;
}

static net *build_param(const Caffe__NetParameter *p, Caffe__Phase phase, int backward) {
  net_options o;
  net_options_init(&o, phase);
  o.backward = backward;
  net *n = NULL;
  crema_error err = {0};
  crema_status st = net_create(p, &o, &n, &err);
  ck_assert_msg(st == CREMA_OK, "net_create: %s", err.message);
  return n;
}

static net *build_text(const char *text, Caffe__Phase phase) {
  Caffe__NetParameter *p = test_parse_net_text(text);
  net *n = build_param(p, phase, 1);
  protobuf_c_message_free_unpacked(&p->base, NULL);
  return n;
}

static net *build_file(const char *rel, Caffe__Phase phase) {
  char *path = test_data_path("%s", rel);
  Caffe__NetParameter *p = NULL;
  crema_error err = {0};
  ck_assert_msg(net_param_read(path, CREMA_LOG_INFO, &p, &err) == CREMA_OK, "%s", err.message);
  free(path);
  net *n = build_param(p, phase, 1);
  protobuf_c_message_free_unpacked(&p->base, NULL);
  return n;
}

static blob *must_blob(const net *n, const char *name) {
  blob *b = net_blob_by_name(n, name);
  ck_assert_msg(b != NULL, "no blob '%s'", name);
  return b;
}

static void fill_uniform(blob *b, lcg *g, double lo, double hi) {
  for (size_t k = 0; k < b->count; k++)
    b->data[k] = (float)(lo + (hi - lo) * lcg_uniform(g));
}

/* Integer class labels in [0, classes). */
static void fill_labels(blob *b, lcg *g, int classes) {
  for (size_t k = 0; k < b->count; k++)
    b->data[k] = (float)(int)(lcg_uniform(g) * classes);
}

/* 0/1 masks with about a quarter of ones. */
static void fill_mask(blob *b, lcg *g) {
  for (size_t k = 0; k < b->count; k++)
    b->data[k] = lcg_uniform(g) < 0.25 ? 1.0f : 0.0f;
}

/* Inputs uniform in [-1, 1); blobs named in `labels` get class labels. */
static void fill_inputs(net *n, lcg *g, const char *labels, int classes) {
  for (int k = 0; k < n->ninputs; k++) {
    blob *b = n->blobs[n->input_ids[k]];
    if (labels && !strcmp(b->name, labels))
      fill_labels(b, g, classes);
    else
      fill_uniform(b, g, -1, 1);
  }
}

/* BatchNorm statistics as a trained net has them (for use_global_stats). */
static void fill_batch_norm_stats(net *n, lcg *g) {
  for (int i = 0; i < n->nlayers; i++) {
    layer *l = n->layers[i];
    if (strcmp(l->ops->type, "BatchNorm"))
      continue;
    fill_uniform(l->blobs[0], g, -0.5, 0.5);
    fill_uniform(l->blobs[1], g, 0.5, 1.5);
    l->blobs[2]->data[0] = 1.0f;
  }
}

static double forward_loss(net *n) {
  float loss = 0;
  crema_error err = {0};
  ck_assert_msg(net_forward(n, &loss, &err) == CREMA_OK, "forward: %s", err.message);
  return loss;
}

static void forward_backward(net *n) {
  crema_error err = {0};
  net_clear_param_diffs(n);
  forward_loss(n);
  ck_assert_msg(net_backward(n, &err) == CREMA_OK, "backward: %s", err.message);
}

typedef struct grad_tally {
  int checked, kinks, failed;
  char first_failure[512];
} grad_tally;

static void tally_failure(grad_tally *t, const char *what, size_t k, double a, double est,
                          double n1, double n2) {
  if (t->failed++ == 0)
    snprintf(t->first_failure, sizeof t->first_failure,
             "%s[%zu]: backward %.6g, central differences %.6g (h: %.6g, h/2: %.6g)", what, k,
             a, est, n1, n2);
}

/* Loss at x + step * u (u NULL: one element k moved by step). */
static double loss_at(net *n, blob *x, const float *orig, size_t k, const float *u,
                      double step) {
  if (u)
    for (size_t i = 0; i < x->count; i++)
      x->data[i] = (float)(orig[i] + step * u[i]);
  else
    x->data[k] = (float)(orig[k] + step);
  double f = forward_loss(n);
  if (u)
    memcpy(x->data, orig, x->count * sizeof *orig);
  else
    x->data[k] = orig[k];
  return f;
}

/* Central differences at steps h and h/2, combined by Richardson
 * extrapolation (the h^2 terms cancel).  Near a kink (ReLU at 0, max-pool
 * ties) the second differences scale linearly with the step instead of
 * quadratically: 4 sd(h/2) - sd(h) estimates the slope jump times h (0 when
 * smooth), and such points are counted, not checked.  Float rounding of
 * the loss sets the noise floor of both tests. */
static void check_direction(net *n, blob *x, const float *orig, size_t k, const float *u,
                            double h, double a, double scale, const char *what,
                            grad_tally *t) {
  double f0 = loss_at(n, x, orig, k, u, 0), fp = loss_at(n, x, orig, k, u, h);
  double fm = loss_at(n, x, orig, k, u, -h), fp2 = loss_at(n, x, orig, k, u, h / 2);
  double fm2 = loss_at(n, x, orig, k, u, -h / 2);
  double n1 = (fp - fm) / (2 * h), n2 = (fp2 - fm2) / h, est = (4 * n2 - n1) / 3;
  double noise = 32 * fabs(f0) * 1.2e-7 / h;
  double jump = fabs(4 * (fp2 - 2 * f0 + fm2) - (fp - 2 * f0 + fm)) / h;
  double tol = 1e-2 * fmax(fmax(fabs(a), fabs(est)), 1e-2 * scale) + noise + 1e-5;
  if (jump > tol && jump > noise) {
    t->kinks++;
    return;
  }
  t->checked++;
  if (fabs(a - est) > tol)
    tally_failure(t, what, k, a, est, n1, n2);
}

/* Up to `samples` single elements of x (all of a smaller blob), then two
 * whole-blob directions: the gradient itself and a random sign pattern
 * (which sums the loss changes of many elements above float rounding). */
static void check_blob_grad(net *n, blob *x, const float *analytic, const char *what,
                            int samples, lcg *g, grad_tally *t) {
  double scale = 0;
  for (size_t k = 0; k < x->count; k++)
    if (fabs(analytic[k]) > scale)
      scale = fabs(analytic[k]);
  float *orig = malloc(x->count * sizeof *orig), *u = malloc(x->count * sizeof *u);
  ck_assert(orig && u);
  memcpy(orig, x->data, x->count * sizeof *orig);
  int total = (size_t)samples < x->count ? samples : (int)x->count;
  for (int s = 0; s < total; s++) {
    size_t k = total == (int)x->count ? (size_t)s : (size_t)(lcg_uniform(g) * (double)x->count);
    check_direction(n, x, orig, k, NULL, 2e-3, analytic[k], scale, what, t);
  }
  if (scale > 0) {
    double along = 0, random = 0, umax = 0;
    for (size_t k = 0; k < x->count; k++) {
      u[k] = analytic[k] / (float)scale;
      along += analytic[k] * (double)u[k];
    }
    char dir[300];
    snprintf(dir, sizeof dir, "%s (along the gradient)", what);
    check_direction(n, x, orig, 0, u, 4e-3, along, 0, dir, t);
    for (size_t k = 0; k < x->count; k++) {
      u[k] = lcg_uniform(g) < 0.5 ? -1.0f : 1.0f;
      random += analytic[k] * (double)u[k];
      umax = fmax(umax, fabs(analytic[k]));
    }
    snprintf(dir, sizeof dir, "%s (random signs)", what);
    check_direction(n, x, orig, 0, u, 2e-3, random, umax, dir, t);
  }
  free(orig);
  free(u);
}

/* Checks the inputs named in `inputs` (space separated) and every learnable
 * parameter that gets a gradient, except BatchNorm statistics.  A few
 * failures may be kinks the test could not tell apart; a wrong gradient
 * fails many points. */
static void check_net_grad(net *n, const char *inputs, int samples, unsigned seed) {
  lcg g = {seed};
  grad_tally t = {0};
  forward_backward(n);
  char names[512];
  snprintf(names, sizeof names, "%s", inputs ? inputs : "");
  for (char *tok = strtok(names, " "); tok; tok = strtok(NULL, " ")) {
    blob *x = must_blob(n, tok);
    ck_assert_ptr_nonnull(x->diff);
    float *a = malloc(x->count * sizeof *a);
    ck_assert_ptr_nonnull(a);
    memcpy(a, x->diff, x->count * sizeof *a);
    check_blob_grad(n, x, a, tok, samples, &g, &t);
    free(a);
  }
  for (int p = 0; p < n->nlearnable; p++) {
    const net_learnable *ln = &n->learnable[p];
    const layer *l = n->layers[ln->layer];
    if (!strcmp(l->ops->type, "BatchNorm") || !l->param_propagate_down[ln->index] ||
        !n->layer_need_backward[ln->layer])
      continue;
    float *a = malloc(ln->b->count * sizeof *a);
    ck_assert_ptr_nonnull(a);
    memcpy(a, ln->b->diff, ln->b->count * sizeof *a);
    char what[256];
    snprintf(what, sizeof what, "%s.%d", l->name, ln->index);
    check_blob_grad(n, ln->b, a, what, samples, &g, &t);
    free(a);
  }
  if (getenv("NET_GRAD_VERBOSE"))
    fprintf(stderr, "checked %d, kinks %d, failed %d %s\n", t.checked, t.kinks, t.failed,
            t.first_failure);
  ck_assert_int_gt(t.checked, 0);
  ck_assert_msg(t.failed * 50 <= t.checked, "%d of %d points fail; first: %s", t.failed,
                t.checked, t.first_failure);
  ck_assert_msg(t.kinks * 5 <= t.checked, "%d of %d points near kinks", t.kinks,
                t.checked + t.kinks);
}

/* ---- nets --------------------------------------------------------------- */

#define CONV(name, bottom, top, nout, k, pad, extra)                                          \
  "layer { name: '" name "' type: 'Convolution' bottom: '" bottom "' top: '" top "' "       \
  "convolution_param { num_output: " #nout " kernel_size: " #k " pad: " #pad " " extra      \
  " weight_filler { type: 'xavier' } bias_filler { type: 'uniform' min: -0.2 max: 0.2 } } }\n"
#define RELU(name, blob) \
  "layer { name: '" name "' type: 'ReLU' bottom: '" blob "' top: '" blob "' }\n"

/* A GoogLeNet inception block with its '/' names, LRN, padded pools, an
 * auxiliary classifier with loss_weight on a fanned-out blob, Accuracy in
 * TEST only. */
static const char *inception_net =
    "name: 'inception_block'\nforce_backward: true\n"
    "layer { name: 'data' type: 'Input' top: 'data' top: 'label' "
    "  input_param { shape { dim: 2 dim: 4 dim: 9 dim: 9 } shape { dim: 2 } } }\n"
    CONV("conv1/7x7_s2", "data", "conv1/7x7_s2", 6, 3, 1, "")
    RELU("conv1/relu_7x7", "conv1/7x7_s2")
    "layer { name: 'pool1/3x3_s2' type: 'Pooling' bottom: 'conv1/7x7_s2' top: 'pool1/3x3_s2' "
    "  pooling_param { pool: MAX kernel_size: 3 stride: 2 } }\n"
    "layer { name: 'pool1/norm1' type: 'LRN' bottom: 'pool1/3x3_s2' top: 'pool1/norm1' "
    "  lrn_param { local_size: 5 alpha: 0.5 beta: 0.75 } }\n"
    CONV("inception_3a/1x1", "pool1/norm1", "inception_3a/1x1", 4, 1, 0, "")
    RELU("inception_3a/relu_1x1", "inception_3a/1x1")
    CONV("inception_3a/3x3_reduce", "pool1/norm1", "inception_3a/3x3_reduce", 3, 1, 0, "")
    RELU("inception_3a/relu_3x3_reduce", "inception_3a/3x3_reduce")
    CONV("inception_3a/3x3", "inception_3a/3x3_reduce", "inception_3a/3x3", 4, 3, 1, "")
    RELU("inception_3a/relu_3x3", "inception_3a/3x3")
    CONV("inception_3a/5x5_reduce", "pool1/norm1", "inception_3a/5x5_reduce", 2, 1, 0, "")
    RELU("inception_3a/relu_5x5_reduce", "inception_3a/5x5_reduce")
    CONV("inception_3a/5x5", "inception_3a/5x5_reduce", "inception_3a/5x5", 3, 5, 2, "")
    RELU("inception_3a/relu_5x5", "inception_3a/5x5")
    "layer { name: 'inception_3a/pool' type: 'Pooling' bottom: 'pool1/norm1' "
    "  top: 'inception_3a/pool' pooling_param { pool: MAX kernel_size: 3 stride: 1 pad: 1 } }\n"
    CONV("inception_3a/pool_proj", "inception_3a/pool", "inception_3a/pool_proj", 3, 1, 0, "")
    RELU("inception_3a/relu_pool_proj", "inception_3a/pool_proj")
    "layer { name: 'inception_3a/output' type: 'Concat' bottom: 'inception_3a/1x1' "
    "  bottom: 'inception_3a/3x3' bottom: 'inception_3a/5x5' bottom: 'inception_3a/pool_proj' "
    "  top: 'inception_3a/output' }\n"
    "layer { name: 'loss1/ave_pool' type: 'Pooling' bottom: 'inception_3a/output' "
    "  top: 'loss1/ave_pool' pooling_param { pool: AVE kernel_size: 3 stride: 2 pad: 1 } }\n"
    "layer { name: 'loss1/fc' type: 'InnerProduct' bottom: 'loss1/ave_pool' top: 'loss1/fc' "
    "  inner_product_param { num_output: 5 weight_filler { type: 'xavier' } } }\n"
    "layer { name: 'loss1/loss' type: 'SoftmaxWithLoss' bottom: 'loss1/fc' bottom: 'label' "
    "  top: 'loss1/loss1' loss_weight: 0.3 }\n"
    "layer { name: 'pool5/7x7_s1' type: 'Pooling' bottom: 'inception_3a/output' "
    "  top: 'pool5/7x7_s1' pooling_param { pool: AVE global_pooling: true } }\n"
    "layer { name: 'loss3/classifier' type: 'InnerProduct' bottom: 'pool5/7x7_s1' "
    "  top: 'loss3/classifier' inner_product_param { num_output: 5 "
    "  weight_filler { type: 'xavier' } bias_filler { type: 'uniform' min: -1 max: 1 } } }\n"
    "layer { name: 'loss3/loss3' type: 'SoftmaxWithLoss' bottom: 'loss3/classifier' "
    "  bottom: 'label' top: 'loss3/loss3' loss_weight: 1 }\n"
    "layer { name: 'loss3/top-1' type: 'Accuracy' bottom: 'loss3/classifier' bottom: 'label' "
    "  top: 'loss3/top-1' include { phase: TEST } }\n";

#define BN_SCALE(bn, sc, blob, extra)                                                     \
  "layer { name: '" bn "' type: 'BatchNorm' bottom: '" blob "' top: '" blob "' " extra "}\n" \
  "layer { name: '" sc "' type: 'Scale' bottom: '" blob "' top: '" blob "' "              \
  "  scale_param { bias_term: true filler { type: 'uniform' min: 0.5 max: 1.5 } "           \
  "  bias_filler { type: 'uniform' min: -0.3 max: 0.3 } } }\n"
#define CONV_NB(name, bottom, top, nout, k, pad)                                          \
  "layer { name: '" name "' type: 'Convolution' bottom: '" bottom "' top: '" top "' "   \
  "convolution_param { num_output: " #nout " kernel_size: " #k " pad: " #pad            \
  " bias_term: false weight_filler { type: 'msra' } } }\n"

/* A ResNet bottleneck block, BatchNorm + Scale + ReLU all in place. */
#define RESNET_BODY(bnextra)                                                                \
  "force_backward: true\n"                                                                   \
  "layer { name: 'data' type: 'Input' top: 'data' top: 'label' "                             \
  "  input_param { shape { dim: 2 dim: 3 dim: 6 dim: 6 } shape { dim: 2 } } }\n"            \
  CONV_NB("conv1", "data", "conv1", 4, 3, 1)                                                 \
  BN_SCALE("bn_conv1", "scale_conv1", "conv1", bnextra) RELU("conv1_relu", "conv1")          \
  CONV_NB("res2a_branch1", "conv1", "res2a_branch1", 6, 1, 0)                                \
  BN_SCALE("bn2a_branch1", "scale2a_branch1", "res2a_branch1", bnextra)                      \
  CONV_NB("res2a_branch2a", "conv1", "res2a_branch2a", 3, 1, 0)                              \
  BN_SCALE("bn2a_branch2a", "scale2a_branch2a", "res2a_branch2a", bnextra)                   \
  RELU("res2a_branch2a_relu", "res2a_branch2a")                                              \
  CONV_NB("res2a_branch2b", "res2a_branch2a", "res2a_branch2b", 6, 3, 1)                     \
  BN_SCALE("bn2a_branch2b", "scale2a_branch2b", "res2a_branch2b", bnextra)                   \
  "layer { name: 'res2a' type: 'Eltwise' bottom: 'res2a_branch1' bottom: 'res2a_branch2b' "  \
  "  top: 'res2a' }\n"                                                                       \
  RELU("res2a_relu", "res2a")                                                                \
  "layer { name: 'pool5' type: 'Pooling' bottom: 'res2a' top: 'pool5' "                      \
  "  pooling_param { pool: AVE global_pooling: true } }\n"                                   \
  "layer { name: 'fc5' type: 'InnerProduct' bottom: 'pool5' top: 'fc5' "                     \
  "  inner_product_param { num_output: 5 weight_filler { type: 'xavier' } "                  \
  "  bias_filler { type: 'uniform' min: -1 max: 1 } } }\n"                                   \
  "layer { name: 'prob' type: 'SoftmaxWithLoss' bottom: 'fc5' bottom: 'label' top: 'prob' }\n"

static const char *resnet_net = "name: 'resnet_block'\n" RESNET_BODY("");
static const char *resnet_global_net =
    "name: 'resnet_block'\n" RESNET_BODY("batch_norm_param { use_global_stats: true } ");

/* The same block with every top out of place. */
static const char *resnet_out_of_place =
    "name: 'resnet_block'\nforce_backward: true\n"
    "layer { name: 'data' type: 'Input' top: 'data' top: 'label' "
    "  input_param { shape { dim: 2 dim: 3 dim: 6 dim: 6 } shape { dim: 2 } } }\n"
    CONV_NB("conv1", "data", "conv1", 4, 3, 1)
    "layer { name: 'bn_conv1' type: 'BatchNorm' bottom: 'conv1' top: 'bn1' }\n"
    "layer { name: 'scale_conv1' type: 'Scale' bottom: 'bn1' top: 'sc1' "
    "  scale_param { bias_term: true filler { type: 'uniform' min: 0.5 max: 1.5 } "
    "  bias_filler { type: 'uniform' min: -0.3 max: 0.3 } } }\n"
    "layer { name: 'conv1_relu' type: 'ReLU' bottom: 'sc1' top: 'r1' }\n"
    CONV_NB("res2a_branch1", "r1", "res2a_branch1", 6, 1, 0)
    "layer { name: 'bn2a_branch1' type: 'BatchNorm' bottom: 'res2a_branch1' top: 'b1bn' }\n"
    "layer { name: 'scale2a_branch1' type: 'Scale' bottom: 'b1bn' top: 'b1sc' "
    "  scale_param { bias_term: true filler { type: 'uniform' min: 0.5 max: 1.5 } "
    "  bias_filler { type: 'uniform' min: -0.3 max: 0.3 } } }\n"
    CONV_NB("res2a_branch2a", "r1", "res2a_branch2a", 3, 1, 0)
    "layer { name: 'bn2a_branch2a' type: 'BatchNorm' bottom: 'res2a_branch2a' top: 'b2abn' }\n"
    "layer { name: 'scale2a_branch2a' type: 'Scale' bottom: 'b2abn' top: 'b2asc' "
    "  scale_param { bias_term: true filler { type: 'uniform' min: 0.5 max: 1.5 } "
    "  bias_filler { type: 'uniform' min: -0.3 max: 0.3 } } }\n"
    "layer { name: 'res2a_branch2a_relu' type: 'ReLU' bottom: 'b2asc' top: 'b2ar' }\n"
    CONV_NB("res2a_branch2b", "b2ar", "res2a_branch2b", 6, 3, 1)
    "layer { name: 'bn2a_branch2b' type: 'BatchNorm' bottom: 'res2a_branch2b' top: 'b2bbn' }\n"
    "layer { name: 'scale2a_branch2b' type: 'Scale' bottom: 'b2bbn' top: 'b2bsc' "
    "  scale_param { bias_term: true filler { type: 'uniform' min: 0.5 max: 1.5 } "
    "  bias_filler { type: 'uniform' min: -0.3 max: 0.3 } } }\n"
    "layer { name: 'res2a' type: 'Eltwise' bottom: 'b1sc' bottom: 'b2bsc' top: 'res2a' }\n"
    "layer { name: 'res2a_relu' type: 'ReLU' bottom: 'res2a' top: 'res2a_r' }\n"
    "layer { name: 'pool5' type: 'Pooling' bottom: 'res2a_r' top: 'pool5' "
    "  pooling_param { pool: AVE global_pooling: true } }\n"
    "layer { name: 'fc5' type: 'InnerProduct' bottom: 'pool5' top: 'fc5' "
    "  inner_product_param { num_output: 5 weight_filler { type: 'xavier' } "
    "  bias_filler { type: 'uniform' min: -1 max: 1 } } }\n"
    "layer { name: 'prob' type: 'SoftmaxWithLoss' bottom: 'fc5' bottom: 'label' top: 'prob' }\n";

/* 'c' feeds three layers and is itself weighted as a loss (a four-way
 * split whose first top carries the loss); 'target' feeds three losses. */
static const char *fanout_net =
    "name: 'fanout'\nforce_backward: true\n"
    "layer { name: 'data' type: 'Input' top: 'data' top: 'target' "
    "  input_param { shape { dim: 2 dim: 3 dim: 4 dim: 4 } "
    "  shape { dim: 2 dim: 4 dim: 4 dim: 4 } } }\n"
    "layer { name: 'c' type: 'Convolution' bottom: 'data' top: 'c' loss_weight: 0.25 "
    "  convolution_param { num_output: 4 kernel_size: 3 pad: 1 weight_filler { type: 'xavier' } "
    "  bias_filler { type: 'uniform' min: -0.2 max: 0.2 } } }\n"
    "layer { name: 'r' type: 'ReLU' bottom: 'c' top: 'r' }\n"
    "layer { name: 'p' type: 'Power' bottom: 'c' top: 'p' "
    "  power_param { power: 2 scale: 0.5 shift: 1 } }\n"
    "layer { name: 'l1' type: 'EuclideanLoss' bottom: 'c' bottom: 'target' top: 'l1' "
    "  loss_weight: 0.5 }\n"
    "layer { name: 'l2' type: 'EuclideanLoss' bottom: 'r' bottom: 'target' top: 'l2' }\n"
    "layer { name: 'l3' type: 'EuclideanLoss' bottom: 'p' bottom: 'target' top: 'l3' "
    "  loss_weight: 0.1 }\n";

/* Two convolutions sharing weights and bias by name. */
static const char *shared_net =
    "name: 'shared'\nforce_backward: true\n"
    "layer { name: 'in' type: 'Input' top: 'a' top: 'b' top: 'target' "
    "  input_param { shape { dim: 2 dim: 3 dim: 5 dim: 5 } shape { dim: 2 dim: 3 dim: 5 dim: 5 } "
    "  shape { dim: 2 dim: 4 dim: 5 dim: 5 } } }\n"
    "layer { name: 'conv_a' type: 'Convolution' bottom: 'a' top: 'ca' "
    "  param { name: 'w' } param { name: 'bias' lr_mult: 2 } "
    "  convolution_param { num_output: 4 kernel_size: 3 pad: 1 weight_filler { type: 'xavier' } "
    "  bias_filler { type: 'uniform' min: -0.2 max: 0.2 } } }\n"
    "layer { name: 'conv_b' type: 'Convolution' bottom: 'b' top: 'cb' "
    "  param { name: 'w' lr_mult: 1 } param { name: 'bias' } "
    "  convolution_param { num_output: 4 kernel_size: 3 pad: 1 weight_filler { type: 'xavier' } "
    "  bias_filler { type: 'uniform' min: -0.2 max: 0.2 } } }\n"
    "layer { name: 'prod' type: 'Eltwise' bottom: 'ca' bottom: 'cb' top: 'e' "
    "  eltwise_param { operation: PROD } }\n"
    "layer { name: 'loss' type: 'EuclideanLoss' bottom: 'e' bottom: 'target' top: 'loss' }\n";

/* ---- gradient checks ---------------------------------------------------- */

START_TEST(test_grad_inception) {
  net *n = build_text(inception_net, CAFFE__PHASE__TRAIN);
  lcg g = {11};
  fill_inputs(n, &g, "label", 5);
  ck_assert_int_lt(net_layer_index(n, "loss3/top-1"), 0); /* TEST only */
  int concat = net_layer_index(n, "inception_3a/output");
  ck_assert_int_ge(concat, 0);
  /* The concat output fans out to two pools: a split named after it. */
  ck_assert_ptr_nonnull(net_blob_by_name(n, "inception_3a/output_inception_3a/output_0_split_1"));
  const blob *out = must_blob(n, "inception_3a/output");
  ck_assert_int_eq(out->shape[1], 14);
  ck_assert_int_eq(must_blob(n, "loss1/ave_pool")->shape[2], 3);
  check_net_grad(n, "data", 40, 1);
  net_free(n);

  /* TEST phase: Accuracy is included and is an output. */
  n = build_text(inception_net, CAFFE__PHASE__TEST);
  ck_assert_int_ge(net_layer_index(n, "loss3/top-1"), 0);
  int found = 0;
  for (int k = 0; k < n->noutputs; k++)
    found |= !strcmp(n->blobs[n->output_ids[k]]->name, "loss3/top-1");
  ck_assert(found);
  net_free(n);
}
END_TEST

START_TEST(test_grad_resnet_train) {
  net *n = build_text(resnet_net, CAFFE__PHASE__TRAIN);
  lcg g = {12};
  fill_inputs(n, &g, "label", 5);
  check_net_grad(n, "data", 30, 2);
  net_free(n);
}
END_TEST

START_TEST(test_grad_resnet_global_stats) {
  net *n = build_text(resnet_global_net, CAFFE__PHASE__TEST);
  lcg g = {13};
  fill_inputs(n, &g, "label", 5);
  fill_batch_norm_stats(n, &g);
  check_net_grad(n, "data", 30, 3);
  net_free(n);
}
END_TEST

/* In place or not, the numbers are the same: loss, input gradient and every
 * parameter gradient (BatchNorm in TRAIN and with global statistics). */
static void compare_in_place(Caffe__Phase phase, int global) {
  const char *oop_text = resnet_out_of_place;
  char *oop = NULL;
  if (global) {
    /* Out-of-place variant with use_global_stats on every BatchNorm. */
    const char *needle = "type: 'BatchNorm'";
    size_t extra = 0;
    for (const char *s = strstr(oop_text, needle); s; s = strstr(s + 1, needle))
      extra += 64;
    oop = malloc(strlen(oop_text) + extra + 1);
    ck_assert_ptr_nonnull(oop);
    char *o = oop;
    const char *s = oop_text, *hit;
    while ((hit = strstr(s, needle))) {
      const char *end = strchr(hit, '}');
      memcpy(o, s, (size_t)(end - s));
      o += end - s;
      o += sprintf(o, "batch_norm_param { use_global_stats: true } ");
      s = end;
    }
    strcpy(o, s);
    oop_text = oop;
  }
  net *a = build_text(global ? resnet_global_net : resnet_net, phase);
  net *b = build_text(oop_text, phase);
  free(oop);
  lcg g1 = {21}, g2 = {21};
  fill_inputs(a, &g1, "label", 5);
  fill_inputs(b, &g2, "label", 5);
  if (global) {
    lcg s1 = {5}, s2 = {5};
    fill_batch_norm_stats(a, &s1);
    fill_batch_norm_stats(b, &s2);
  }
  ck_assert_int_eq(a->nlearnable, b->nlearnable);
  for (int p = 0; p < a->nlearnable; p++)
    memcpy(b->learnable[p].b->data, a->learnable[p].b->data,
           a->learnable[p].b->count * sizeof(float));
  forward_backward(a);
  forward_backward(b);
  double la = forward_loss(a), lb = forward_loss(b);
  ck_assert_msg(fabs(la - lb) <= 1e-6 * fmax(1, fabs(la)), "loss %g vs %g", la, lb);
  const blob *da = must_blob(a, "data"), *db = must_blob(b, "data");
  for (size_t k = 0; k < da->count; k++)
    ck_assert_msg(fabsf(da->diff[k] - db->diff[k]) <= 1e-5f * (1 + fabsf(db->diff[k])),
                  "data diff [%zu]: in place %g, out of place %g", k, da->diff[k], db->diff[k]);
  for (int p = 0; p < a->nlearnable; p++) {
    const blob *x = a->learnable[p].b, *y = b->learnable[p].b;
    for (size_t k = 0; k < x->count; k++) {
      ck_assert_msg(fabsf(x->data[k] - y->data[k]) <= 1e-6f * (1 + fabsf(y->data[k])),
                    "param %s.%d data[%zu]", a->layers[a->learnable[p].layer]->name,
                    a->learnable[p].index, k);
      ck_assert_msg(fabsf(x->diff[k] - y->diff[k]) <= 1e-5f * (1 + fabsf(y->diff[k])),
                    "param %s.%d diff[%zu]: in place %g, out of place %g",
                    a->layers[a->learnable[p].layer]->name, a->learnable[p].index, k,
                    x->diff[k], y->diff[k]);
    }
  }
  /* The in-place blob holds the last in-place layer's output (Caffe). */
  const blob *r = must_blob(a, "res2a"), *rr = must_blob(b, "res2a_r");
  for (size_t k = 0; k < r->count; k++)
    ck_assert_float_eq_tol(r->data[k], rr->data[k], 1e-5f);
  net_free(a);
  net_free(b);
}

START_TEST(test_in_place_equals_out_of_place) {
  compare_in_place(CAFFE__PHASE__TRAIN, 0);
  compare_in_place(CAFFE__PHASE__TEST, 1);
}
END_TEST

START_TEST(test_grad_fanout_split_loss) {
  net *n = build_text(fanout_net, CAFFE__PHASE__TRAIN);
  lcg g = {14};
  fill_inputs(n, &g, NULL, 0);
  /* Caffe's InsertSplits: one split of 'c' with four tops, the first of
   * which carries the conv's loss weight; the conv keeps none. */
  int sp = net_layer_index(n, "c_c_0_split");
  ck_assert_int_ge(sp, 0);
  ck_assert_int_eq(n->tops[sp].n, 4);
  ck_assert_float_eq(n->top_loss_weight[sp][0], 0.25f);
  ck_assert_float_eq(n->top_loss_weight[sp][1], 0.0f);
  ck_assert_float_eq(n->top_loss_weight[net_layer_index(n, "c")][0], 0.0f);
  ck_assert_int_ge(net_layer_index(n, "target_data_1_split"), 0);
  check_net_grad(n, "data target", 40, 4);
  net_free(n);
}
END_TEST

START_TEST(test_grad_shared_params) {
  net *n = build_text(shared_net, CAFFE__PHASE__TRAIN);
  lcg g = {15};
  fill_inputs(n, &g, NULL, 0);
  ck_assert_int_eq(n->nlearnable, 2);
  ck_assert_float_eq(n->learnable[1].lr_mult, 2.0f);
  check_net_grad(n, "a b", 30, 5);
  net_free(n);
}
END_TEST

/* The patent-shaped net of the golden case at 1/8 width, here at 16x16. */
START_TEST(test_grad_lesion_16) {
  net *n = build_file("nets/lesion_w8_train/net.prototxt", CAFFE__PHASE__TRAIN);
  crema_error err = {0};
  int dshape[4] = {2, 3, 16, 16}, lshape[4] = {2, 1, 16, 16};
  ck_assert(blob_reshape(must_blob(n, "data"), 4, dshape, &err) == CREMA_OK);
  ck_assert(blob_reshape(must_blob(n, "label"), 4, lshape, &err) == CREMA_OK);
  ck_assert_msg(net_reshape(n, &err) == CREMA_OK, "%s", err.message);
  lcg g = {16};
  fill_uniform(must_blob(n, "data"), &g, -1, 1);
  fill_mask(must_blob(n, "label"), &g);
  ck_assert_int_eq(must_blob(n, "fuse_score")->shape[3], 16);
  check_net_grad(n, NULL, 6, 6);
  net_free(n);
}
END_TEST

/* ---- structure ---------------------------------------------------------- */

static const char *two_branch_net =
    "name: 'two_branch'\n"
    "layer { name: 'data' type: 'Input' top: 'data' top: 'target' "
    "  input_param { shape { dim: 2 dim: 3 dim: 4 dim: 4 } "
    "  shape { dim: 2 dim: 4 dim: 4 dim: 4 } } }\n"
    "layer { name: 'c1' type: 'Convolution' bottom: 'data' top: 'c1' %s "
    "  convolution_param { num_output: 4 kernel_size: 3 pad: 1 weight_filler { type: 'xavier' } "
    "  bias_filler { type: 'uniform' min: -0.2 max: 0.2 } } }\n"
    "layer { name: 'c2' type: 'Convolution' bottom: 'data' top: 'c2' "
    "  convolution_param { num_output: 4 kernel_size: 3 pad: 1 weight_filler { type: 'xavier' } "
    "  bias_filler { type: 'uniform' min: -0.2 max: 0.2 } } }\n"
    "layer { name: 'sum' type: 'Eltwise' bottom: 'c1' bottom: 'c2' top: 's' %s }\n"
    "layer { name: 'loss' type: 'EuclideanLoss' bottom: 's' bottom: 'target' top: 'loss' }\n";

static net *build_two_branch(const char *c1_extra, const char *sum_extra) {
  char text[4096];
  snprintf(text, sizeof text, two_branch_net, c1_extra, sum_extra);
  net *n = build_text(text, CAFFE__PHASE__TRAIN);
  lcg g = {31};
  fill_inputs(n, &g, NULL, 0);
  return n;
}

static int all_zero(const blob *b) {
  for (size_t k = 0; k < b->count; k++)
    if (b->diff[k] != 0.0f)
      return 0;
  return 1;
}

START_TEST(test_propagate_down_false) {
  net *n = build_two_branch("", "propagate_down: true propagate_down: false");
  int c1 = net_layer_index(n, "c1"), c2 = net_layer_index(n, "c2");
  ck_assert_int_eq(n->layer_need_backward[c1], 1);
  ck_assert_int_eq(n->layer_need_backward[c2], 0);
  forward_backward(n);
  ck_assert(all_zero(n->layers[c2]->blobs[0]));
  ck_assert(!all_zero(n->layers[c1]->blobs[0]));
  /* The c1 branch alone against a net without c2's path to the loss. */
  net *m = build_two_branch("", "");
  for (int p = 0; p < n->nlearnable; p++)
    memcpy(m->learnable[p].b->data, n->learnable[p].b->data,
           n->learnable[p].b->count * sizeof(float));
  forward_backward(m);
  const blob *w = n->layers[c1]->blobs[0], *wm = m->layers[net_layer_index(m, "c1")]->blobs[0];
  for (size_t k = 0; k < w->count; k++)
    ck_assert_float_eq_tol(w->diff[k], wm->diff[k], 1e-6f);
  net_free(m);
  net_free(n);
}
END_TEST

START_TEST(test_lr_mult_zero_on_one_blob) {
  net *n = build_two_branch("param { lr_mult: 0 } param { lr_mult: 1 }", "");
  int c1 = net_layer_index(n, "c1");
  ck_assert_int_eq(n->layers[c1]->param_propagate_down[0], 0);
  ck_assert_int_eq(n->layers[c1]->param_propagate_down[1], 1);
  ck_assert_int_eq(n->layer_need_backward[c1], 1);
  forward_backward(n);
  ck_assert(all_zero(n->layers[c1]->blobs[0]));
  ck_assert(!all_zero(n->layers[c1]->blobs[1]));
  /* The bias gradient is still right. */
  check_net_grad(n, NULL, 20, 7);
  net_free(n);
}
END_TEST

/* Caffe: a given propagate_down replaces the blob's own need (a layer that
 * runs backward then fills that bottom's diff even if nothing below wants
 * it), and a negative lr_mult still trains. */
START_TEST(test_propagate_down_true_and_negative_lr) {
  net *n = build_two_branch("param { lr_mult: -1 } param { lr_mult: 0 }",
                            "propagate_down: true propagate_down: true");
  int c1 = net_layer_index(n, "c1");
  ck_assert_int_eq(n->layers[c1]->param_propagate_down[0], 1);
  ck_assert_int_eq(n->layer_need_backward[c1], 1);
  ck_assert_float_eq(n->learnable[0].lr_mult, -1.0f);
  net_free(n);
  const char *text =
      "layer { name: 'data' type: 'Input' top: 'data' top: 'target' "
      "  input_param { shape { dim: 2 dim: 3 } shape { dim: 2 dim: 3 } } }\n"
      "layer { name: 'ip' type: 'InnerProduct' bottom: 'data' top: 'ip' "
      "  inner_product_param { num_output: 3 weight_filler { type: 'xavier' } } }\n"
      "layer { name: 'sum' type: 'Eltwise' bottom: 'ip' bottom: 'data' top: 's' "
      "  propagate_down: true propagate_down: true }\n"
      "layer { name: 'loss' type: 'EuclideanLoss' bottom: 's' bottom: 'target' top: 'loss' }\n";
  n = build_text(text, CAFFE__PHASE__TRAIN);
  int sum = net_layer_index(n, "sum");
  ck_assert_int_eq(n->bottom_need_backward[sum][1], 1);
  net_free(n);
}
END_TEST

/* BatchNorm statistics are masked from the solver as in Caffe (the layer
 * adds ParamSpecs with lr_mult 0), while the layer still counts as needing
 * backward (the net's own ParamSpec defaults to lr_mult 1). */
START_TEST(test_batch_norm_lr_mult) {
  net *n = build_text(resnet_net, CAFFE__PHASE__TRAIN);
  int bn = net_layer_index(n, "bn_conv1");
  int found = 0;
  for (int p = 0; p < n->nlearnable; p++) {
    if (n->learnable[p].layer != bn)
      continue;
    found++;
    ck_assert_float_eq(n->learnable[p].lr_mult, 0.0f);
    ck_assert_float_eq(n->learnable[p].decay_mult, 1.0f);
  }
  ck_assert_int_eq(found, 3);
  ck_assert_int_eq(n->layer_need_backward[bn], 1);
  net_free(n);
}
END_TEST

static const char *dropout_net =
    "name: 'drop'\nforce_backward: true\n"
    "layer { name: 'data' type: 'Input' top: 'data' top: 'target' "
    "  input_param { shape { dim: 4 dim: 50 } shape { dim: 4 dim: 50 } } }\n"
    "layer { name: 'drop' type: 'Dropout' bottom: 'data' top: 'data' "
    "  dropout_param { dropout_ratio: 0.3 } }\n"
    "layer { name: 'loss' type: 'EuclideanLoss' bottom: 'data' bottom: 'target' top: 'loss' }\n";

START_TEST(test_dropout_train_determinism) {
  net *a = build_text(dropout_net, CAFFE__PHASE__TRAIN);
  net *b = build_text(dropout_net, CAFFE__PHASE__TRAIN);
  for (int pass = 0; pass < 2; pass++) {
    lcg g1 = {41}, g2 = {41};
    fill_inputs(a, &g1, NULL, 0);
    fill_inputs(b, &g2, NULL, 0);
    blob *x = must_blob(a, "data");
    float *in = malloc(x->count * sizeof *in);
    ck_assert_ptr_nonnull(in);
    memcpy(in, x->data, x->count * sizeof *in);
    forward_backward(a);
    forward_backward(b);
    const blob *y = must_blob(b, "data"), *t = must_blob(a, "target");
    size_t kept = 0;
    for (size_t k = 0; k < x->count; k++) {
      ck_assert_float_eq(x->data[k], y->data[k]); /* same seed, same masks */
      ck_assert_float_eq(x->diff[k], y->diff[k]);
      /* Kept units are scaled by 1/(1-p); the gradient uses the same mask. */
      if (x->data[k] != 0.0f) {
        kept++;
        ck_assert_float_eq_tol(x->data[k], in[k] / 0.7f, 1e-5f);
        ck_assert_float_eq_tol(x->diff[k], (x->data[k] - t->data[k]) / 4.0f / 0.7f, 1e-5f);
      } else {
        ck_assert_float_eq(x->diff[k], 0.0f);
      }
    }
    ck_assert(kept > x->count / 2 && kept < x->count);
    free(in);
  }
  net_free(a);
  net_free(b);
}
END_TEST

START_TEST(test_silence_consumes) {
  const char *text =
      "layer { name: 'data' type: 'Input' top: 'data' top: 'extra' "
      "  input_param { shape { dim: 2 dim: 3 } shape { dim: 2 dim: 2 } } }\n"
      "layer { name: 'mute' type: 'Silence' bottom: 'extra' }\n"
      "layer { name: 'out' type: 'ReLU' bottom: 'data' top: 'out' }\n";
  net *n = build_text(text, CAFFE__PHASE__TEST);
  ck_assert_int_eq(n->noutputs, 1);
  ck_assert_str_eq(n->blobs[n->output_ids[0]]->name, "out");
  forward_loss(n);
  net_free(n);
}
END_TEST

/* ---- Data records of varying sizes --------------------------------------- */

/* A raw 1-channel h x w record whose bytes are base + index. */
static void put_record(lmdb_writer *w, const char *key, int h, int wd, int base, int label) {
  Caffe__Datum d;
  caffe__datum__init(&d);
  size_t count = (size_t)h * wd;
  unsigned char *bytes = malloc(count);
  ck_assert_ptr_nonnull(bytes);
  for (size_t i = 0; i < count; i++)
    bytes[i] = (unsigned char)(base + 3 * i);
  d.has_channels = d.has_height = d.has_width = d.has_data = d.has_label = 1;
  d.channels = 1;
  d.height = h;
  d.width = wd;
  d.data.data = bytes;
  d.data.len = count;
  d.label = label;
  unsigned char *buf;
  size_t len;
  crema_error err = {0};
  ck_assert_int_eq(datum_pack(&d, &buf, &len, &err), CREMA_OK);
  ck_assert_msg(lmdb_writer_put(w, key, strlen(key), buf, len, &err) == CREMA_OK, "%s",
                err.message);
  free(buf);
  free(bytes);
}

#define VARYING_BODY                                                                        \
  "layer { name: 'conv' type: 'Convolution' bottom: 'data' top: 'conv' "                    \
  "  convolution_param { num_output: 2 kernel_size: 3 weight_filler { type: 'xavier' } } }\n" \
  "layer { name: 'relu' type: 'ReLU' bottom: 'conv' top: 'conv' }\n"                         \
  "layer { name: 'pool' type: 'Pooling' bottom: 'conv' top: 'pool' "                        \
  "  pooling_param { pool: AVE global_pooling: true } }\n"                                   \
  "layer { name: 'ip' type: 'InnerProduct' bottom: 'pool' top: 'ip' "                        \
  "  inner_product_param { num_output: 2 weight_filler { type: 'xavier' } } }\n"             \
  "layer { name: 'loss' type: 'SoftmaxWithLoss' bottom: 'ip' bottom: 'label' top: 'loss' }\n"

/* Caffe reshapes every layer before its forward, so a Data layer with
 * batches of one may read records of different sizes: the net follows each
 * record's shape, in TRAIN and in TEST (with the inference memory plan). */
START_TEST(test_data_records_of_varying_sizes) {
  char dir[] = "/tmp/crema-varying-XXXXXX";
  ck_assert_ptr_nonnull(mkdtemp(dir));
  char db[256], text[4096];
  snprintf(db, sizeof db, "%s/db", dir);
  lmdb_writer *w = NULL;
  crema_error err = {0};
  ck_assert_msg(lmdb_writer_create(db, &w, &err) == CREMA_OK, "%s", err.message);
  const int sizes[4][2] = {{5, 5}, {9, 7}, {4, 6}, {12, 12}};
  for (int r = 0; r < 4; r++) {
    char key[16];
    snprintf(key, sizeof key, "%08d", r);
    put_record(w, key, sizes[r][0], sizes[r][1], 10 * r, r % 2);
  }
  ck_assert_msg(lmdb_writer_finish(w, &err) == CREMA_OK, "%s", err.message);
  snprintf(text, sizeof text,
           "layer { name: 'd' type: 'Data' top: 'data' top: 'label' "
           "  transform_param { scale: 0.01 } "
           "  data_param { source: '%s' backend: LMDB batch_size: 1 } }\n" VARYING_BODY,
           db);
  static const char *twin_text =
      "layer { name: 'd' type: 'Input' top: 'data' top: 'label' "
      "  input_param { shape { dim: 1 dim: 1 dim: 5 dim: 5 } shape { dim: 1 } } }\n"
      VARYING_BODY;
  for (int phase = 0; phase < 2; phase++) {
    Caffe__NetParameter *p = test_parse_net_text(text);
    net *n = build_param(p, phase ? CAFFE__PHASE__TEST : CAFFE__PHASE__TRAIN, 0);
    protobuf_c_message_free_unpacked(&p->base, NULL);
    Caffe__NetParameter *tp = test_parse_net_text(twin_text);
    net *twin = build_param(tp, CAFFE__PHASE__TRAIN, 1);
    protobuf_c_message_free_unpacked(&tp->base, NULL);
    for (int k = 0; k < n->nlearnable; k++)
      memcpy(twin->learnable[k].b->data, n->learnable[k].b->data,
             n->learnable[k].b->count * sizeof(float));
    for (int r = 0; r < 6; r++) {
      float loss = 0, want = 0;
      ck_assert_msg(net_forward(n, &loss, &err) == CREMA_OK, "%s", err.message);
      const blob *data = must_blob(n, "data");
      const int *sz = sizes[r % 4];
      ck_assert_int_eq(data->shape[2], sz[0]);
      ck_assert_int_eq(data->shape[3], sz[1]);
      ck_assert_int_eq(must_blob(n, "conv")->shape[2], sz[0] - 2);
      blob *in = must_blob(twin, "data");
      ck_assert(blob_reshape(in, data->num_axes, data->shape, &err) == CREMA_OK);
      memcpy(in->data, data->data, data->count * sizeof(float));
      must_blob(twin, "label")->data[0] = must_blob(n, "label")->data[0];
      ck_assert_msg(net_forward(twin, &want, &err) == CREMA_OK, "%s", err.message);
      ck_assert_msg(fabsf(loss - want) <= 1e-6f * fmaxf(1, fabsf(want)),
                    "record %d: loss %g, Input-fed twin %g", r, loss, want);
      if (!phase)
        ck_assert_msg(net_backward(n, &err) == CREMA_OK, "%s", err.message);
    }
    net_free(twin);
    net_free(n);
  }
  snprintf(text, sizeof text, "rm -rf '%s'", dir);
  ck_assert_int_eq(system(text), 0);
}
END_TEST

/* ---- crema verify with '/' in blob and layer names --------------------- */

/* Pycaffe dump names: '/' as %2F, '%' as %25. */
static void encode_name(const char *name, char *out, size_t size) {
  size_t o = 0;
  for (const char *c = name; *c && o + 4 < size; c++) {
    if (*c == '/' || *c == '%')
      o += (size_t)snprintf(out + o, size - o, "%%%02X", (unsigned char)*c);
    else
      out[o++] = *c;
  }
  out[o] = '\0';
}

static void write_blobproto(const char *dir, const char *stem, const blob *b, int with_diff) {
  char enc[512], path[1024];
  encode_name(stem, enc, sizeof enc);
  snprintf(path, sizeof path, "%s/%s.binaryproto", dir, enc);
  Caffe__BlobProto *bp = NULL;
  crema_error err = {0};
  ck_assert_msg(blob_to_blobproto(b, with_diff, &bp, &err) == CREMA_OK, "%s", err.message);
  ck_assert_msg(bin_write_file(path, &bp->base, &err) == CREMA_OK, "%s", err.message);
  protobuf_c_message_free_unpacked(&bp->base, NULL);
}

static int run_verify(const char *model, const char *weights, const char *blobs,
                      const char *params, const char *out) {
  const char *bin = getenv("CREMA_BIN");
  ck_assert_msg(bin != NULL, "CREMA_BIN is not set");
  char cmd[8192];
  snprintf(cmd, sizeof cmd,
           "'%s' verify --model '%s' --weights '%s' --reference '%s' --params '%s' "
           "--phase train --backward >'%s' 2>/dev/null",
           bin, model, weights, blobs, params, out);
  int rc = system(cmd);
  ck_assert(rc != -1 && WIFEXITED(rc));
  return WEXITSTATUS(rc);
}

static int file_has(const char *path, const char *needle) {
  FILE *f = fopen(path, "r");
  ck_assert_ptr_nonnull(f);
  char line[1024];
  int found = 0;
  while (!found && fgets(line, sizeof line, f))
    found = strstr(line, needle) != NULL;
  fclose(f);
  return found;
}

/* A dump of the inception block in pycaffe's layout (every blob but the
 * splits, every parameter as <layer>.<i>, '/' written %2F) passes verify,
 * and a changed value in a '/'-named parameter is caught. */
START_TEST(test_verify_slash_names) {
  char dir[] = "/tmp/crema-verify-XXXXXX";
  ck_assert_ptr_nonnull(mkdtemp(dir));
  char blobs[256], params[256], model[256], weights[256], out[256];
  snprintf(blobs, sizeof blobs, "%s/blobs", dir);
  snprintf(params, sizeof params, "%s/params", dir);
  snprintf(model, sizeof model, "%s/net.prototxt", dir);
  snprintf(weights, sizeof weights, "%s/net.caffemodel", dir);
  snprintf(out, sizeof out, "%s/out.txt", dir);
  ck_assert_int_eq(mkdir(blobs, 0700), 0);
  ck_assert_int_eq(mkdir(params, 0700), 0);
  FILE *f = fopen(model, "w");
  ck_assert_ptr_nonnull(f);
  fputs(inception_net, f);
  fclose(f);

  net *n = build_text(inception_net, CAFFE__PHASE__TRAIN);
  lcg g = {51};
  fill_inputs(n, &g, "label", 5);
  crema_error err = {0};
  ck_assert_msg(net_save_weights(n, weights, &err) == CREMA_OK, "%s", err.message);
  forward_backward(n);
  int dumped = 0;
  for (int b = 0; b < n->nblobs; b++)
    if (!strstr(n->blobs[b]->name, "_split_")) {
      write_blobproto(blobs, n->blobs[b]->name, n->blobs[b], 1);
      dumped++;
    }
  char stem[512];
  for (int i = 0; i < n->nlayers; i++)
    for (int j = 0; j < n->layers[i]->nblobs; j++) {
      snprintf(stem, sizeof stem, "%s.%d", n->layers[i]->name, j);
      write_blobproto(params, stem, n->layers[i]->blobs[j], 1);
    }
  ck_assert_int_eq(run_verify(model, weights, blobs, params, out), 0);
  ck_assert(file_has(out, "inception_3a/output data"));
  ck_assert(file_has(out, "inception_3a/5x5.0 diff"));
  ck_assert(file_has(out, "conv1/7x7_s2 diff"));

  /* One wrong parameter value, one name that matches nothing. */
  blob *w = n->layers[net_layer_index(n, "inception_3a/3x3")]->blobs[0];
  w->data[3] += 1.0f;
  write_blobproto(params, "inception_3a/3x3.0", w, 1);
  write_blobproto(blobs, "inception_3a/missing", w, 0);
  ck_assert_int_eq(run_verify(model, weights, blobs, params, out), 1);
  ck_assert(file_has(out, "inception_3a/3x3.0 data"));
  ck_assert(file_has(out, "inception_3a/missing data FAIL (no blob of that name"));
  net_free(n);
  snprintf(stem, sizeof stem, "rm -rf '%s'", dir);
  ck_assert_int_eq(system(stem), 0);
}
END_TEST

static Suite *net_grad_suite(void) {
  Suite *s = suite_create("net_grad");
  TCase *g = tcase_create("gradients");
  tcase_set_timeout(g, 600);
  tcase_add_test(g, test_grad_inception);
  tcase_add_test(g, test_grad_resnet_train);
  tcase_add_test(g, test_grad_resnet_global_stats);
  tcase_add_test(g, test_in_place_equals_out_of_place);
  tcase_add_test(g, test_grad_fanout_split_loss);
  tcase_add_test(g, test_grad_shared_params);
  tcase_add_test(g, test_grad_lesion_16);
  suite_add_tcase(s, g);
  TCase *c = tcase_create("structure");
  tcase_add_test(c, test_propagate_down_false);
  tcase_add_test(c, test_lr_mult_zero_on_one_blob);
  tcase_add_test(c, test_propagate_down_true_and_negative_lr);
  tcase_add_test(c, test_batch_norm_lr_mult);
  tcase_add_test(c, test_dropout_train_determinism);
  tcase_add_test(c, test_silence_consumes);
  tcase_add_test(c, test_verify_slash_names);
  tcase_add_test(c, test_data_records_of_varying_sizes);
  suite_add_tcase(s, c);
  return s;
}

int main(void) {
  SRunner *r = srunner_create(net_grad_suite());
  srunner_run_all(r, CK_NORMAL);
  int failed = srunner_ntests_failed(r);
  srunner_free(r);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
