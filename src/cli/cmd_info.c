/* crema info: what a network definition or trained model contains. */
#include "config.h"

#include <stdio.h>

#include "caffe.pb-c.h"
#include "cli/cli.h"
#include "cli/flags.h"
#include "core/blob.h"
#include "io/binary.h"
#include "io/blobproto.h"
#include "io/file.h"
#include "io/upgrade.h"

static const char usage[] = "crema info FILE";
static const char description[] =
    "Lists the layers of a network definition (.prototxt) or trained model (.caffemodel)\n"
    "after Caffe's legacy upgrades: each layer's name, type, bottoms, tops and parameter\n"
    "blobs (their shapes as stored in a model; a definition declares none unless it embeds\n"
    "blobs, so its param specs and Input shapes are shown instead), then the number of\n"
    "layers, parameter blobs and parameters.  As Caffe, FILE is read as binary whatever it\n"
    "is called unless its name ends in .prototxt or .pbtxt (or, for other names, the binary\n"
    "forms fail and it reads as a text definition).  A binary BlobProto (a .binaryproto mean\n"
    "file) shows its shape, a SolverState its iteration and history.";

typedef struct info_totals {
  size_t layers, blobs;
  unsigned long long params;
} info_totals;

static void print_names(const char *label, char **names, size_t n) {
  printf("    %s:", label);
  if (n == 0)
    printf(" -");
  for (size_t i = 0; i < n; i++)
    printf(" %s", names[i]);
  printf("\n");
}

static void print_dims(const int *dims, int n) {
  if (n == 0)
    printf("scalar");
  for (int i = 0; i < n; i++)
    printf("%s%d", i ? "x" : "", dims[i]);
}

static crema_status print_blobs(const Caffe__LayerParameter *l, info_totals *t,
                                crema_error *err) {
  printf("    blobs:");
  for (size_t i = 0; i < l->n_blobs; i++) {
    int n;
    int dims[BLOB_MAX_AXES];
    crema_status st = blobproto_shape(l->blobs[i], &n, dims, err);
    if (st != CREMA_OK) {
      printf("\n");
      crema_error_prefix(err, "layer '%s' blob %zu: ", l->name ? l->name : "", i);
      return st;
    }
    unsigned long long count = 1;
    for (int d = 0; d < n; d++)
      count *= (unsigned long long)dims[d];
    printf(" ");
    print_dims(dims, n);
    t->blobs++;
    t->params += count;
  }
  printf("\n");
  return CREMA_OK;
}

static void print_declared(const Caffe__LayerParameter *l) {
  if (l->input_param) {
    for (size_t i = 0; i < l->input_param->n_shape; i++) {
      const Caffe__BlobShape *s = l->input_param->shape[i];
      printf("    shape:");
      printf(" ");
      if (s->n_dim == 0)
        printf("scalar");
      for (size_t d = 0; d < s->n_dim; d++)
        printf("%s%lld", d ? "x" : "", (long long)s->dim[d]);
      printf("\n");
    }
  }
  if (l->n_param > 0) {
    printf("    param specs:");
    for (size_t i = 0; i < l->n_param; i++) {
      const Caffe__ParamSpec *p = l->param[i];
      printf(" {lr_mult %g decay_mult %g%s%s}", p->lr_mult, p->decay_mult,
             p->name ? " name " : "", p->name ? p->name : "");
    }
    printf("\n");
  }
}

/* A BlobProto file (a mean file): its shape and value counts. */
static crema_status print_blobproto(const char *path, const Caffe__BlobProto *bp,
                                    crema_error *err) {
  int n;
  int dims[BLOB_MAX_AXES];
  CREMA_TRY(blobproto_shape(bp, &n, dims, err));
  printf("blob: BlobProto\nfile: %s\nshape: ", path);
  print_dims(dims, n);
  printf("\ndata: %zu values\ndiff: %zu values\n", bp->n_data + bp->n_double_data,
         bp->n_diff + bp->n_double_diff);
  return CREMA_OK;
}

static void print_solver_state(const char *path, const Caffe__SolverState *s) {
  printf("solver state: SolverState\nfile: %s\niter: %d\ncurrent_step: %d\n", path, s->iter,
         s->current_step);
  printf("learned_net: %s\nhistory: %zu blobs\n", s->learned_net ? s->learned_net : "-",
         s->n_history);
}

/* Names of Caffe's binary files: never read as text definitions. */
static int binary_name(const char *path) {
  return path_has_suffix(path, ".caffemodel") || path_has_suffix(path, ".binaryproto") ||
         path_has_suffix(path, ".solverstate");
}

/* FILE as Caffe's tools read it: a text definition when named so, else a
 * binary NetParameter, BlobProto or SolverState, whichever parses; a
 * definition under another name last.  *net, *bp or *state is set; when
 * nothing fits, the binary model's error. */
static crema_status read_info_file(const char *path, Caffe__NetParameter **net,
                                   Caffe__BlobProto **bp, Caffe__SolverState **state,
                                   crema_error *err) {
  if (path_is_text_proto(path))
    return net_param_read_text(path, CREMA_LOG_INFO, net, err);
  crema_status st = net_param_read_binary(path, CREMA_LOG_INFO, net, err);
  if (st == CREMA_OK || st == CREMA_ERR_NOMEM)
    return st;
  crema_error first = *err, ignored = {CREMA_OK, ""};
  ProtobufCMessage *m = NULL;
  if (bin_read_file(path, &caffe__blob_proto__descriptor, &m, &ignored) == CREMA_OK) {
    *bp = (Caffe__BlobProto *)m;
    return CREMA_OK;
  }
  if (bin_read_file(path, &caffe__solver_state__descriptor, &m, &ignored) == CREMA_OK) {
    *state = (Caffe__SolverState *)m;
    return CREMA_OK;
  }
  if (!binary_name(path) && net_param_read_text(path, CREMA_LOG_INFO, net, &ignored) == CREMA_OK)
    return CREMA_OK;
  *err = first;
  return st;
}

static crema_status print_info(const char *path, crema_error *err) {
  Caffe__NetParameter *net = NULL;
  Caffe__BlobProto *bp = NULL;
  Caffe__SolverState *state = NULL;
  CREMA_TRY(read_info_file(path, &net, &bp, &state, err));
  if (bp) {
    crema_status st = print_blobproto(path, bp, err);
    if (st != CREMA_OK)
      crema_error_prefix(err, "%s: ", path);
    protobuf_c_message_free_unpacked(&bp->base, NULL);
    return st;
  }
  if (state) {
    print_solver_state(path, state);
    protobuf_c_message_free_unpacked(&state->base, NULL);
    return CREMA_OK;
  }
  info_totals t = {0, 0, 0};
  printf("net: %s\nfile: %s\n", net->name ? net->name : "(unnamed)", path);
  crema_status st = CREMA_OK;
  for (size_t i = 0; i < net->n_layer && st == CREMA_OK; i++) {
    const Caffe__LayerParameter *l = net->layer[i];
    printf("layer %zu: %s (%s)\n", i, l->name ? l->name : "(unnamed)", l->type ? l->type : "");
    print_names("bottoms", l->bottom, l->n_bottom);
    print_names("tops", l->top, l->n_top);
    if (l->n_blobs > 0)
      st = print_blobs(l, &t, err);
    else
      print_declared(l);
    t.layers++;
  }
  if (st == CREMA_OK)
    printf("total: %zu layers, %zu parameter blobs, %llu parameters\n", t.layers, t.blobs,
           t.params);
  protobuf_c_message_free_unpacked(&net->base, NULL);
  return st;
}

int cmd_info(int argc, char **argv) {
  crema_error err = {CREMA_OK, ""};
  flag_result res;
  if (flags_parse(argc, argv, NULL, 0, &res, &err) != CREMA_OK)
    return cli_report("info", &err);
  int rc = 0;
  if (res.help) {
    flags_print_usage(stdout, usage, description, NULL, 0);
  } else if (res.npositional != 1) {
    fprintf(stderr, "crema info: expected 1 argument (FILE), got %d; see --help\n",
            res.npositional);
    rc = 2;
  } else if (print_info(res.positional[0], &err) != CREMA_OK) {
    fflush(stdout);
    rc = cli_report("info", &err);
  }
  flags_result_free(&res);
  return rc;
}
