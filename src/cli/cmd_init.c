/* crema init: a .caffemodel of filler-initialised weights for any net, as
 * Caffe would initialise it before training.  Benchmarks and tests use it to
 * get full-size weight files without downloading trained models. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "caffe.pb-c.h"
#include "cli/cli.h"
#include "cli/common.h"
#include "cli/flags.h"
#include "core/log.h"
#include "graph/net.h"
#include "graph/weights.h"
#include "io/binary.h"
#include "io/upgrade.h"

static const char usage[] =
    "crema init --model NET.prototxt --output W.caffemodel [--seed N] [--phase all|train|test] "
    "[--v1]";
static const char description[] =
    "Builds the net, lets every layer's fillers initialise its parameters (seeded: a given\n"
    "seed always gives the same weights) and writes them as a binary .caffemodel.  With\n"
    "--phase all (the default) the parameters of layers that only the TRAIN or only the TEST\n"
    "phase includes are written too.  --v1 writes the legacy layout of the published Caffe\n"
    "models (V1 layers, num/channels/height/width blob dims, fc weights as 1x1xOUTxIN).";

typedef struct init_flags {
  const char *model, *output, *phase;
  int seed, v1;
} init_flags;

/* Whether any layer has include/exclude rules: otherwise every phase builds
 * the same layers and one net suffices. */
static int has_phase_rules(const Caffe__NetParameter *p) {
  for (size_t i = 0; i < p->n_layer; i++)
    if (p->layer[i]->n_include > 0 || p->layer[i]->n_exclude > 0)
      return 1;
  return 0;
}

static crema_status build_phase_proto(const Caffe__NetParameter *param, Caffe__Phase phase,
                                      uint32_t seed, Caffe__NetParameter **out,
                                      crema_error *err) {
  net_options opts;
  cli_net_options(&opts, phase);
  opts.seed = seed;
  net *n = NULL;
  crema_status st = net_create(param, &opts, &n, err);
  if (st != CREMA_OK) {
    crema_error_prefix(err, "%s phase: ", phase == CAFFE__PHASE__TRAIN ? "TRAIN" : "TEST");
    return st;
  }
  st = net_to_proto(n, 0, out, err);
  net_free(n);
  return st;
}

static int proto_has_layer(const Caffe__NetParameter *p, const char *name) {
  for (size_t i = 0; i < p->n_layer; i++)
    if (p->layer[i]->name && name && !strcmp(p->layer[i]->name, name))
      return 1;
  return 0;
}

/* Moves the parameter layers of extra that dst lacks to the end of dst. */
static crema_status merge_parameter_layers(Caffe__NetParameter *dst, Caffe__NetParameter *extra,
                                           crema_error *err) {
  size_t add = 0;
  for (size_t i = 0; i < extra->n_layer; i++)
    if (extra->layer[i]->n_blobs > 0 && !proto_has_layer(dst, extra->layer[i]->name))
      add++;
  if (!add)
    return CREMA_OK;
  Caffe__LayerParameter **grown =
      realloc(dst->layer, (dst->n_layer + add) * sizeof *dst->layer);
  if (!grown)
    return crema_fail(err, CREMA_ERR_NOMEM, "out of memory merging the phases' layers");
  dst->layer = grown;
  for (size_t i = 0; i < extra->n_layer; i++) {
    Caffe__LayerParameter *l = extra->layer[i];
    if (l->n_blobs > 0 && !proto_has_layer(dst, l->name)) {
      dst->layer[dst->n_layer++] = l;
      extra->layer[i] = NULL;
    }
  }
  /* Compact extra so that freeing it skips the moved layers. */
  size_t kept = 0;
  for (size_t i = 0; i < extra->n_layer; i++)
    if (extra->layer[i])
      extra->layer[kept++] = extra->layer[i];
  extra->n_layer = kept;
  return CREMA_OK;
}

static crema_status init_weights(const init_flags *f, Caffe__NetParameter **out,
                                 crema_error *err) {
  Caffe__NetParameter *param = NULL;
  CREMA_TRY(net_param_read(f->model, CREMA_LOG_INFO, &param, err));
  Caffe__Phase phases[2];
  int nphases = 0;
  if (!strcasecmp(f->phase, "test")) {
    phases[nphases++] = CAFFE__PHASE__TEST;
  } else if (!strcasecmp(f->phase, "train")) {
    phases[nphases++] = CAFFE__PHASE__TRAIN;
  } else if (!strcasecmp(f->phase, "all")) {
    phases[nphases++] = CAFFE__PHASE__TEST;
    if (has_phase_rules(param))
      phases[nphases++] = CAFFE__PHASE__TRAIN;
  } else {
    protobuf_c_message_free_unpacked(&param->base, NULL);
    return crema_fail(err, CREMA_ERR_INVALID, "--phase must be all, train or test, not '%s'",
                      f->phase);
  }
  Caffe__NetParameter *result = NULL;
  crema_status st = CREMA_OK;
  for (int k = 0; k < nphases && st == CREMA_OK; k++) {
    Caffe__NetParameter *np = NULL;
    st = build_phase_proto(param, phases[k], (uint32_t)f->seed, &np, err);
    if (st != CREMA_OK)
      break;
    if (!result) {
      result = np;
      continue;
    }
    st = merge_parameter_layers(result, np, err);
    protobuf_c_message_free_unpacked(&np->base, NULL);
  }
  protobuf_c_message_free_unpacked(&param->base, NULL);
  if (st != CREMA_OK) {
    crema_error_prefix(err, "%s: ", f->model);
    if (result)
      protobuf_c_message_free_unpacked(&result->base, NULL);
    return st;
  }
  *out = result;
  return CREMA_OK;
}

static unsigned long long count_parameters(const Caffe__NetParameter *np) {
  unsigned long long total = 0;
  for (size_t i = 0; i < np->n_layer; i++)
    for (size_t j = 0; j < np->layer[i]->n_blobs; j++)
      total += np->layer[i]->blobs[j]->n_data;
  for (size_t i = 0; i < np->n_layers; i++)
    for (size_t j = 0; j < np->layers[i]->n_blobs; j++)
      total += np->layers[i]->blobs[j]->n_data;
  return total;
}

static crema_status run_init(const init_flags *f, crema_error *err) {
  Caffe__NetParameter *np = NULL;
  CREMA_TRY(init_weights(f, &np, err));
  crema_status st = f->v1 ? downgrade_net_v2_to_v1(np, err) : CREMA_OK;
  if (st == CREMA_OK)
    st = bin_write_file(f->output, &np->base, err);
  if (st == CREMA_OK)
    LOG_INFO("Wrote %llu parameters (seed %d%s) to %s", count_parameters(np), f->seed,
             f->v1 ? ", V1 layout" : "", f->output);
  protobuf_c_message_free_unpacked(&np->base, NULL);
  return st;
}

int cmd_init(int argc, char **argv) {
  init_flags f = {.phase = "all", .seed = (int)NET_DEFAULT_SEED};
  const flag_spec specs[] = {
      {"model", FLAG_STRING, &f.model, "the net definition (.prototxt)"},
      {"output", FLAG_STRING, &f.output, "the .caffemodel to write"},
      {"seed", FLAG_INT, &f.seed, "seed of the fillers (default 1701)"},
      {"phase", FLAG_STRING, &f.phase, "all, train or test: the layers to include (default all)"},
      {"v1", FLAG_BOOL, &f.v1, "write the legacy V1 layout"},
  };
  const int nspecs = (int)(sizeof specs / sizeof specs[0]);
  int code;
  if (!cli_parse_flags("init", argc, argv, specs, nspecs, usage, description, &code))
    return code;
  crema_error err = {0};
  if (!f.model || !f.output) {
    crema_fail(&err, CREMA_ERR_INVALID, !f.model ? "--model is required" : "--output is required");
    return cli_report("init", &err);
  }
  if (f.seed < 0) {
    crema_fail(&err, CREMA_ERR_INVALID, "--seed must not be negative, got %d", f.seed);
    return cli_report("init", &err);
  }
  if (run_init(&f, &err) != CREMA_OK)
    return cli_report("init", &err);
  return 0;
}
