/* crema_bench: the crema side of bench/run.  One measurement per process,
 * printed as "key value" lines on stdout:
 *
 *   crema_bench load    --model M --weights W
 *   crema_bench forward --model M --weights W [--size S] [--batch N] [--iterations K]
 *   crema_bench train   --model M --weights W [--size S] [--batch N] [--iterations K]
 *
 * load: time to open the net with its weights (parse, build, read weights).
 * forward: one untimed forward, then K timed ones; their median.
 * train: K timed solver iterations (forward, backward, SGD update) of the
 * TRAIN net; its Data layers become Input layers (3 channels, or
 * --label-channels for tops named "label..."), so no LMDB is needed.
 * --size sets the height and width and --batch the first axis of every
 * 4-axis input.  Inputs get the same deterministic values bench/opencv_bench.py
 * gives OpenCV (labels, inputs named "label...", get 0/1).  Every mode also
 * prints the process's peak resident set size. */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "core/clock.h"
#include "crema.h"
#include "graph/net.h"
#include "io/upgrade.h"
#include "math/blas.h"
#include "solver/solver.h"

typedef struct bench_args {
  const char *mode, *model, *weights;
  int size, batch, iterations, label_channels;
} bench_args;

/* now_seconds in milliseconds. */
static double now_ms(void) { return now_seconds() * 1e3; }

static double peak_rss_mb(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_maxrss / 1024.0;
}

/* Current resident memory by kind (Linux), to tell weights and
 * activations (anonymous) from mapped files. */
static void print_rss_kinds(void) {
  FILE *f = fopen("/proc/self/status", "r");
  if (!f)
    return;
  char line[256];
  long kb;
  while (fgets(line, sizeof line, f)) {
    if (sscanf(line, "RssAnon: %ld", &kb) == 1)
      printf("rss_anon_mb %.1f\n", (double)kb / 1024.0);
    else if (sscanf(line, "RssFile: %ld", &kb) == 1)
      printf("rss_file_mb %.1f\n", (double)kb / 1024.0);
  }
  fclose(f);
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Multiplicative hashing of the index: cheap, and reproducible in NumPy. */
static void fill_input(float *x, size_t n, int is_label) {
  for (size_t i = 0; i < n; i++) {
    uint32_t h = (uint32_t)((uint64_t)i * 2654435761u);
    x[i] = is_label ? (float)(h >> 31) : (float)((double)h / 4294967296.0 * 2.0 - 1.0);
  }
}

static int is_label_name(const char *name) { return !strncmp(name, "label", 5); }

/* The new shape of a 4-axis input under --size/--batch (0 keeps a dim). */
static int resized_dims(const bench_args *a, int num_axes, int *dims) {
  if (num_axes != 4)
    return 0;
  int changed = 0;
  if (a->batch > 0 && dims[0] != a->batch) {
    dims[0] = a->batch;
    changed = 1;
  }
  if (a->size > 0 && (dims[2] != a->size || dims[3] != a->size)) {
    dims[2] = dims[3] = a->size;
    changed = 1;
  }
  return changed;
}

static int fail(const char *what, const crema_error *err) {
  fprintf(stderr, "crema_bench %s: %s\n", what, err->message);
  return 1;
}

static int run_load(const bench_args *a) {
  crema_error err = {0};
  crema_net *cn = NULL;
  double t0 = now_ms();
  if (crema_net_open(a->model, a->weights, CREMA_TEST, &cn, &err) != CREMA_OK)
    return fail("load", &err);
  double t = now_ms() - t0;
  printf("load_ms %.1f\npeak_rss_mb %.1f\n", t, peak_rss_mb());
  print_rss_kinds();
  crema_net_close(cn);
  return 0;
}

static crema_status prepare_inputs(const bench_args *a, crema_net *cn, crema_error *err) {
  for (int i = 0; i < crema_net_num_inputs(cn); i++) {
    const char *name = crema_net_input_name(cn, i);
    int nax = 0, dims[32];
    CREMA_TRY(crema_net_blob_shape(cn, name, &nax, dims, 32, err));
    if (resized_dims(a, nax, dims))
      CREMA_TRY(crema_net_reshape_input(cn, name, nax, dims, err));
  }
  for (int i = 0; i < crema_net_num_inputs(cn); i++) {
    const char *name = crema_net_input_name(cn, i);
    float *x = NULL;
    size_t n = 0;
    CREMA_TRY(crema_net_blob_data(cn, name, &x, &n, err));
    fill_input(x, n, is_label_name(name));
  }
  return CREMA_OK;
}

/* Sum of squares per output: a cross-check that crema and OpenCV computed
 * the same thing (a softmax's plain sum is always 1). */
static void print_checksums(crema_net *cn) {
  for (int i = 0; i < crema_net_num_outputs(cn); i++) {
    const char *name = crema_net_output_name(cn, i);
    float *y = NULL;
    size_t n = 0;
    crema_error err = {0};
    if (crema_net_blob_data(cn, name, &y, &n, &err) != CREMA_OK)
      continue;
    double s = 0;
    for (size_t k = 0; k < n; k++)
      s += (double)y[k] * y[k];
    printf("checksum %s %.6g\n", name, s);
  }
}

static int run_forward(const bench_args *a) {
  crema_error err = {0};
  crema_net *cn = NULL;
  if (crema_net_open(a->model, a->weights, CREMA_TEST, &cn, &err) != CREMA_OK)
    return fail("forward", &err);
  double *t = calloc((size_t)a->iterations, sizeof *t);
  int rc = !t;
  if (!rc && (prepare_inputs(a, cn, &err) != CREMA_OK ||
              crema_net_forward(cn, NULL, &err) != CREMA_OK))
    rc = fail("forward", &err);
  for (int k = 0; !rc && k < a->iterations; k++) {
    double t0 = now_ms();
    if (crema_net_forward(cn, NULL, &err) != CREMA_OK)
      rc = fail("forward", &err);
    t[k] = now_ms() - t0;
  }
  if (!rc) {
    printf("forward_ms");
    for (int k = 0; k < a->iterations; k++)
      printf(" %.2f", t[k]);
    printf("\nforward_median_ms %.2f\n", median(t, a->iterations));
    print_checksums(cn);
    printf("peak_rss_mb %.1f\n", peak_rss_mb());
    print_rss_kinds();
  }
  free(t);
  crema_net_close(cn);
  return rc;
}

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

static Caffe__BlobShape *new_shape(int n, int c, int h, int w) {
  Caffe__BlobShape *s = calloc(1, sizeof *s);
  if (!s)
    return NULL;
  caffe__blob_shape__init(s);
  s->dim = calloc(4, sizeof *s->dim);
  if (!s->dim) {
    free(s);
    return NULL;
  }
  s->n_dim = 4;
  s->dim[0] = n;
  s->dim[1] = c;
  s->dim[2] = h;
  s->dim[3] = w;
  return s;
}

/* A Data layer becomes an Input layer with the same name, tops and rules. */
static int data_to_input(Caffe__LayerParameter *l, const bench_args *a) {
  int batch = a->batch > 0 ? a->batch
                           : (l->data_param && l->data_param->batch_size
                                  ? (int)l->data_param->batch_size : 1);
  int size = a->size > 0 ? a->size : 224;
  Caffe__InputParameter *ip = calloc(1, sizeof *ip);
  if (!ip)
    return 0;
  caffe__input_parameter__init(ip);
  l->input_param = ip;
  if (l->n_top > 0 && !(ip->shape = calloc(l->n_top, sizeof *ip->shape)))
    return 0;
  for (size_t t = 0; t < l->n_top; t++) {
    int c = is_label_name(l->top[t]) ? a->label_channels : 3;
    if (!(ip->shape[t] = new_shape(batch, c, size, size)))
      return 0;
    ip->n_shape = t + 1;
  }
  free(l->type);
  l->type = dup_or_null("Input");
  return l->type != NULL;
}

static Caffe__NetParameter *bench_train_net(const bench_args *a, crema_error *err) {
  Caffe__NetParameter *np = NULL;
  if (net_param_read(a->model, CREMA_LOG_INFO, &np, err) != CREMA_OK)
    return NULL;
  for (size_t i = 0; i < np->n_layer; i++) {
    Caffe__LayerParameter *l = np->layer[i];
    if (l->type && !strcmp(l->type, "Data") && !data_to_input(l, a)) {
      protobuf_c_message_free_unpacked(&np->base, NULL);
      crema_fail(err, CREMA_ERR_NOMEM, "out of memory");
      return NULL;
    }
  }
  return np;
}

/* Plain SGD with momentum and weight decay, no test nets, no display. */
static Caffe__SolverParameter *bench_solver_param(const bench_args *a, crema_error *err) {
  Caffe__NetParameter *np = bench_train_net(a, err);
  if (!np)
    return NULL;
  Caffe__SolverParameter *p = calloc(1, sizeof *p);
  if (!p) {
    protobuf_c_message_free_unpacked(&np->base, NULL);
    return NULL;
  }
  caffe__solver_parameter__init(p);
  p->net_param = np;
  p->type = dup_or_null("SGD");
  p->lr_policy = dup_or_null("fixed");
  if (a->weights) {
    p->weights = calloc(1, sizeof *p->weights);
    if (p->weights && (p->weights[0] = dup_or_null(a->weights)))
      p->n_weights = 1;
  }
  p->has_base_lr = p->has_momentum = p->has_weight_decay = p->has_max_iter = 1;
  p->base_lr = 1e-6f;
  p->momentum = 0.9f;
  p->weight_decay = 2e-4f;
  p->max_iter = a->iterations + 1;
  p->has_random_seed = 1;
  p->random_seed = 1;
  p->has_solver_mode = 1;
  p->solver_mode = CAFFE__SOLVER_PARAMETER__SOLVER_MODE__CPU;
  return p;
}

static crema_status prepare_train_inputs(const bench_args *a, net *n, crema_error *err) {
  int reshaped = 0;
  for (int i = 0; i < n->ninputs; i++) {
    blob *b = n->blobs[n->input_ids[i]];
    int dims[BLOB_MAX_AXES];
    memcpy(dims, b->shape, sizeof(int) * (size_t)b->num_axes);
    if (resized_dims(a, b->num_axes, dims)) {
      CREMA_TRY(blob_reshape(b, b->num_axes, dims, err));
      reshaped = 1;
    }
  }
  if (reshaped)
    CREMA_TRY(net_reshape(n, err));
  for (int i = 0; i < n->ninputs; i++) {
    blob *b = n->blobs[n->input_ids[i]];
    fill_input(b->data, b->count, is_label_name(b->name));
  }
  return CREMA_OK;
}

static int run_train(const bench_args *a) {
  crema_error err = {0};
  Caffe__SolverParameter *p = bench_solver_param(a, &err);
  if (!p && err.message[0])
    return fail("train", &err);
  if (!p || !p->type || !p->lr_policy) {
    fprintf(stderr, "crema_bench train: out of memory\n");
    if (p)
      protobuf_c_message_free_unpacked(&p->base, NULL);
    return 1;
  }
  solver *s = NULL;
  if (solver_create(p, &s, &err) != CREMA_OK)
    return fail("train", &err);
  double *t = calloc((size_t)a->iterations, sizeof *t);
  int rc = !t;
  /* The first iteration allocates and warms up; it is not timed. */
  if (!rc && (prepare_train_inputs(a, s->train, &err) != CREMA_OK ||
              solver_step(s, 1, &err) != CREMA_OK))
    rc = fail("train", &err);
  for (int k = 0; !rc && k < a->iterations; k++) {
    double t0 = now_ms();
    if (solver_step(s, 1, &err) != CREMA_OK)
      rc = fail("train", &err);
    t[k] = now_ms() - t0;
  }
  if (!rc) {
    printf("train_ms");
    for (int k = 0; k < a->iterations; k++)
      printf(" %.2f", t[k]);
    printf("\ntrain_median_ms %.2f\npeak_rss_mb %.1f\n", median(t, a->iterations),
           peak_rss_mb());
  }
  free(t);
  solver_free(s);
  return rc;
}

static int usage(void) {
  fprintf(stderr, "usage: crema_bench load|forward|train --model M [--weights W] [--size S] "
                  "[--batch N] [--iterations K] [--label-channels C]\n");
  return 2;
}

static int parse_args(int argc, char **argv, bench_args *a) {
  if (argc < 2)
    return 0;
  a->mode = argv[1];
  for (int i = 2; i + 1 < argc; i += 2) {
    const char *k = argv[i], *v = argv[i + 1];
    if (!strcmp(k, "--model"))
      a->model = v;
    else if (!strcmp(k, "--weights"))
      a->weights = v;
    else if (!strcmp(k, "--size"))
      a->size = atoi(v);
    else if (!strcmp(k, "--batch"))
      a->batch = atoi(v);
    else if (!strcmp(k, "--iterations"))
      a->iterations = atoi(v);
    else if (!strcmp(k, "--label-channels"))
      a->label_channels = atoi(v);
    else
      return 0;
  }
  return (argc % 2 == 0) && a->model && a->iterations > 0 && a->size >= 0 && a->batch >= 0;
}

int main(int argc, char **argv) {
  bench_args a = {.iterations = 5, .label_channels = 1};
  blas_stop_workers(); /* OpenBLAS's only user, as the crema command */
  if (!parse_args(argc, argv, &a))
    return usage();
  if (!strcmp(a.mode, "load"))
    return run_load(&a);
  if (!strcmp(a.mode, "forward"))
    return run_forward(&a);
  if (!strcmp(a.mode, "train"))
    return run_train(&a);
  return usage();
}
