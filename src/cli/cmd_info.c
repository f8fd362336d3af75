/* crema info: what a network definition or trained model contains. */
#include "config.h"

#include <stdio.h>

#include "caffe.pb-c.h"
#include "cli/cli.h"
#include "cli/flags.h"
#include "core/blob.h"
#include "io/blobproto.h"
#include "io/upgrade.h"

static const char usage[] = "crema info FILE";
static const char description[] =
    "Lists the layers of a network definition (.prototxt) or trained model (.caffemodel,\n"
    "read as binary) after Caffe's legacy upgrades: each layer's name, type, bottoms, tops\n"
    "and parameter blobs (their shapes as stored in a model; a definition declares none\n"
    "unless it embeds blobs, so its param specs and Input shapes are shown instead), then\n"
    "the number of layers, parameter blobs and parameters.";

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

static crema_status print_info(const char *path, crema_error *err) {
  Caffe__NetParameter *net = NULL;
  CREMA_TRY(net_param_read(path, &net, err));
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
