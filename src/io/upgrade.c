/* Reading Caffe definitions, and the dispatch of the legacy upgrades
 * (io/upgrade.h): which layout a net uses, and the passes it needs, V0
 * (upgrade_v0.c), V1 and the data transformation fields (upgrade_v1.c), and
 * here the net inputs and BatchNorm params.  The solver's upgrade is
 * upgrade_solver.c. */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "io/binary.h"
#include "io/file.h"
#include "io/text.h"
#include "io/upgrade.h"
#include "io/upgrade_impl.h"

/* ------------------------------------------------------------------------ */
/* input / input_shape / input_dim -> an Input layer                         */

static crema_status input_layer_shapes(Caffe__NetParameter *net, Caffe__InputParameter *ip,
                                       const char *path, crema_error *err) {
  size_t n = net->n_input;
  ip->shape = crema_calloc(n ? n : 1, sizeof *ip->shape, err);
  if (!ip->shape)
    return CREMA_ERR_NOMEM;
  if (net->n_input_shape > 0) {
    if (net->n_input_shape < n)
      return crema_fail(err, CREMA_ERR_INVALID,
                        "%s: %zu net inputs but only %zu input_shape entries", path, n,
                        net->n_input_shape);
    for (size_t i = 0; i < n; i++) {
      MOVE(ip->shape[i], net->input_shape[i]);
      ip->n_shape++;
    }
    return CREMA_OK;
  }
  size_t need;
  if (!size_mul(n, 4, &need) || net->n_input_dim < need)
    return crema_fail(err, CREMA_ERR_INVALID,
                      "%s: %zu net inputs need %zu input_dim values (4 each), found %zu", path, n,
                      n * 4, net->n_input_dim);
  for (size_t i = 0; i < n; i++) {
    Caffe__BlobShape *s = msg_new(&caffe__blob_shape__descriptor, err);
    if (!s)
      return CREMA_ERR_NOMEM;
    ip->shape[ip->n_shape++] = s;
    s->dim = crema_calloc(4, sizeof *s->dim, err);
    if (!s->dim)
      return CREMA_ERR_NOMEM;
    for (size_t j = 0; j < 4; j++)
      s->dim[j] = net->input_dim[4 * i + j];
    s->n_dim = 4;
  }
  return CREMA_OK;
}

static crema_status make_input_layer(Caffe__NetParameter *net, Caffe__LayerParameter *l,
                                     const char *path, crema_error *err) {
  l->name = crema_strdup("input", err);
  l->type = crema_strdup("Input", err);
  if (!l->name || !l->type)
    return CREMA_ERR_NOMEM;
  ENSURE_SUB(l->input_param, caffe__input_parameter__descriptor);
  CREMA_TRY(input_layer_shapes(net, l->input_param, path, err));
  MOVE_ARRAY(l->top, net->input, l->n_top, net->n_input);
  return CREMA_OK;
}

static void clear_net_inputs(Caffe__NetParameter *net) {
  for (size_t i = 0; i < net->n_input; i++)
    free(net->input[i]);
  free(net->input);
  net->input = NULL;
  net->n_input = 0;
  for (size_t i = 0; i < net->n_input_shape; i++)
    free_msg(net->input_shape[i]);
  free(net->input_shape);
  net->input_shape = NULL;
  net->n_input_shape = 0;
  free(net->input_dim);
  net->input_dim = NULL;
  net->n_input_dim = 0;
}

/* Inputs without any shape come from legacy caffemodels; Caffe just drops
 * them.  Otherwise one Input layer named "input" goes first in the net. */
static crema_status upgrade_net_input(Caffe__NetParameter *net, const char *path,
                                      crema_error *err) {
  if (net->n_input_shape > 0 || net->n_input_dim > 0) {
    Caffe__LayerParameter **grown = realloc(net->layer, (net->n_layer + 1) * sizeof *grown);
    if (!grown)
      return crema_fail(err, CREMA_ERR_NOMEM, "out of memory upgrading a net");
    net->layer = grown;
    Caffe__LayerParameter *l = msg_new(&caffe__layer_parameter__descriptor, err);
    if (!l)
      return CREMA_ERR_NOMEM;
    crema_status st = make_input_layer(net, l, path, err);
    if (st != CREMA_OK) {
      free_msg(l);
      return st;
    }
    memmove(net->layer + 1, net->layer, net->n_layer * sizeof *net->layer);
    net->layer[0] = l;
    net->n_layer++;
  }
  clear_net_inputs(net);
  return CREMA_OK;
}

/* ------------------------------------------------------------------------ */
/* BatchNorm layers declaring their three statistics blobs as parameters     */

static int is_old_batch_norm(const Caffe__LayerParameter *l) {
  return l->type && !strcmp(l->type, "BatchNorm") && l->n_param == 3;
}

static int net_needs_batch_norm_upgrade(const Caffe__NetParameter *net) {
  for (size_t i = 0; i < net->n_layer; i++)
    if (is_old_batch_norm(net->layer[i]))
      return 1;
  return 0;
}

/* Current Caffe keeps the three ParamSpecs (names may share statistics) and
 * only freezes them: lr_mult and decay_mult 0. */
static void upgrade_batch_norm(Caffe__NetParameter *net) {
  for (size_t i = 0; i < net->n_layer; i++) {
    Caffe__LayerParameter *l = net->layer[i];
    if (!is_old_batch_norm(l))
      continue;
    for (size_t p = 0; p < l->n_param; p++) {
      l->param[p]->has_lr_mult = 1;
      l->param[p]->lr_mult = 0.f;
      l->param[p]->has_decay_mult = 1;
      l->param[p]->decay_mult = 0.f;
    }
  }
}

/* ------------------------------------------------------------------------ */

crema_status upgrade_net(Caffe__NetParameter *net, const char *path, crema_log_level level,
                         int *upgraded, crema_error *err) {
  const upgrade_src src = {path, level};
  int changed = 0;
  if (upgraded)
    *upgraded = 0;
  if (net_needs_v0_upgrade(net)) {
    LOG_INFO_AT(level,
                "Attempting to upgrade input file specified using deprecated V0LayerParameter: %s",
                path);
    int ok = 1;
    CREMA_TRY(upgrade_v0_net(net, &src, &ok, err));
    if (ok)
      LOG_INFO_AT(level, "Successfully upgraded file specified using deprecated V0LayerParameter");
    else
      LOG_ERROR_AT(level,
                   "Warning: had one or more problems upgrading V0NetParameter to NetParameter "
                   "(see above); continuing anyway.");
    LOG_WARN_AT(level,
                "Note that future Caffe releases will not support V0NetParameter; use "
                "'crema upgrade-net' to upgrade this and any other net protos to the new format.");
    changed = 1;
  }
  if (net_needs_data_upgrade(net)) {
    LOG_INFO_AT(level,
                "Attempting to upgrade input file specified using deprecated transformation "
                "parameters: %s",
                path);
    CREMA_TRY(upgrade_data_transformation(net, err));
    LOG_INFO_AT(level,
                "Successfully upgraded file specified using deprecated data transformation "
                "parameters.");
    LOG_WARN_AT(level,
                "Note that future Caffe releases will only support transform_param messages for "
                "transformation fields.");
    changed = 1;
  }
  if (net->n_layers > 0) {
    LOG_INFO_AT(level,
                "Attempting to upgrade input file specified using deprecated V1LayerParameter: %s",
                path);
    int ok = 1;
    CREMA_TRY(upgrade_net_v1_to_v2(net, path, level, &ok, err));
    if (ok)
      LOG_INFO_AT(level, "Successfully upgraded file specified using deprecated V1LayerParameter");
    else
      LOG_ERROR_AT(level,
                   "Warning: had one or more problems upgrading V1LayerParameter (see above); "
                   "continuing anyway.");
    changed = 1;
  }
  if (net->n_input > 0) {
    LOG_INFO_AT(level,
                "Attempting to upgrade input file specified using deprecated input fields: %s",
                path);
    CREMA_TRY(upgrade_net_input(net, path, err));
    LOG_INFO_AT(level, "Successfully upgraded file specified using deprecated input fields.");
    LOG_WARN_AT(level,
                "Note that future Caffe releases will only support input layers and not input "
                "fields.");
    changed = 1;
  }
  if (net_needs_batch_norm_upgrade(net)) {
    LOG_INFO_AT(level, "Attempting to upgrade batch norm layers using deprecated params: %s", path);
    upgrade_batch_norm(net);
    LOG_INFO_AT(level, "Successfully upgraded batch norm layers using deprecated params.");
    changed = 1;
  }
  if (upgraded)
    *upgraded = changed;
  return CREMA_OK;
}

static crema_status finish_net_read(const char *path, crema_log_level level,
                                    Caffe__NetParameter *net, Caffe__NetParameter **out,
                                    crema_error *err) {
  crema_status st = upgrade_net(net, path, level, NULL, err);
  if (st != CREMA_OK) {
    free_msg(net);
    return st;
  }
  *out = net;
  return CREMA_OK;
}

crema_status net_param_read_text(const char *path, crema_log_level level, Caffe__NetParameter **out,
    crema_error *err) {
  *out = NULL;
  ProtobufCMessage *msg = NULL;
  CREMA_TRY(txt_parse_file(path, &caffe__net_parameter__descriptor, &msg, err));
  return finish_net_read(path, level, (Caffe__NetParameter *)msg, out, err);
}

crema_status net_param_read_binary(const char *path, crema_log_level level,
                                   Caffe__NetParameter **out, crema_error *err) {
  *out = NULL;
  ProtobufCMessage *msg = NULL;
  CREMA_TRY(bin_read_file(path, &caffe__net_parameter__descriptor, &msg, err));
  return finish_net_read(path, level, (Caffe__NetParameter *)msg, out, err);
}

crema_status net_param_read(const char *path, crema_log_level level, Caffe__NetParameter **out,
    crema_error *err) {
  if (path_has_suffix(path, ".caffemodel") || path_has_suffix(path, ".binaryproto"))
    return net_param_read_binary(path, level, out, err);
  return net_param_read_text(path, level, out, err);
}

crema_status net_weights_read(const char *path, crema_log_level level, Caffe__NetParameter **out,
    crema_error *err) {
  if (path_is_text_proto(path))
    return net_param_read_text(path, level, out, err);
  return net_param_read_binary(path, level, out, err);
}

crema_status solver_param_read_text(const char *path, crema_log_level level,
                                    Caffe__SolverParameter **out, crema_error *err) {
  *out = NULL;
  ProtobufCMessage *msg = NULL;
  CREMA_TRY(txt_parse_file(path, &caffe__solver_parameter__descriptor, &msg, err));
  Caffe__SolverParameter *solver = (Caffe__SolverParameter *)msg;
  crema_status st = upgrade_solver(solver, path, level, NULL, err);
  if (st != CREMA_OK) {
    free_msg(solver);
    return st;
  }
  *out = solver;
  return CREMA_OK;
}
