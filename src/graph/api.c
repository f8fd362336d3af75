/* The public API (src/crema.h) over the internal net. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "crema.h"
#include "graph/net.h"
#include "graph/weights.h"
#include "io/upgrade.h"

struct crema_net {
  net *n;
};

crema_status crema_net_open(const char *model_path, const char *weights_path,
                            crema_phase phase, crema_net **out, crema_error *err) {
  if (!model_path || !out)
    return crema_fail(err, CREMA_ERR_INVALID, "crema_net_open: model path and output required");
  if (phase != CREMA_TRAIN && phase != CREMA_TEST)
    return crema_fail(err, CREMA_ERR_INVALID, "crema_net_open: phase must be TRAIN or TEST");
  *out = NULL;
  Caffe__NetParameter *param = NULL;
  CREMA_TRY(net_param_read(model_path, &param, err));
  net_options opts;
  net_options_init(&opts, phase == CREMA_TRAIN ? CAFFE__PHASE__TRAIN : CAFFE__PHASE__TEST);
  opts.weights_follow = weights_path != NULL;
  net *n = NULL;
  crema_status st = net_create(param, &opts, &n, err);
  protobuf_c_message_free_unpacked(&param->base, NULL);
  if (st != CREMA_OK) {
    crema_error_prefix(err, "%s: ", model_path);
    return st;
  }
  if (weights_path && (st = net_load_weights(n, weights_path, err)) != CREMA_OK) {
    net_free(n);
    return st;
  }
  net_settle_params(n);
  crema_net *cn = crema_calloc(1, sizeof *cn, err);
  if (!cn) {
    net_free(n);
    return CREMA_ERR_NOMEM;
  }
  cn->n = n;
  *out = cn;
  return CREMA_OK;
}

void crema_net_close(crema_net *net_) {
  if (!net_)
    return;
  net_free(net_->n);
  free(net_);
}

int crema_net_num_inputs(const crema_net *cn) { return cn ? cn->n->ninputs : 0; }
int crema_net_num_outputs(const crema_net *cn) { return cn ? cn->n->noutputs : 0; }

const char *crema_net_input_name(const crema_net *cn, int i) {
  if (!cn || i < 0 || i >= cn->n->ninputs)
    return NULL;
  return cn->n->blobs[cn->n->input_ids[i]]->name;
}

const char *crema_net_output_name(const crema_net *cn, int i) {
  if (!cn || i < 0 || i >= cn->n->noutputs)
    return NULL;
  return cn->n->blobs[cn->n->output_ids[i]]->name;
}

static crema_status find_blob(const crema_net *cn, const char *name, blob **out,
                              crema_error *err) {
  if (!cn || !name)
    return crema_fail(err, CREMA_ERR_INVALID, "a net and a blob name are required");
  blob *b = net_blob_by_name(cn->n, name);
  if (!b)
    return crema_fail(err, CREMA_ERR_NOT_FOUND, "net '%s' has no blob named '%s'", cn->n->name,
                      name);
  *out = b;
  return CREMA_OK;
}

crema_status crema_net_blob_shape(const crema_net *cn, const char *name, int *num_axes,
                                  int *dims, int max_axes, crema_error *err) {
  blob *b = NULL;
  CREMA_TRY(find_blob(cn, name, &b, err));
  if (num_axes)
    *num_axes = b->num_axes;
  for (int i = 0; dims && i < b->num_axes && i < max_axes; i++)
    dims[i] = b->shape[i];
  return CREMA_OK;
}

crema_status crema_net_blob_data(crema_net *cn, const char *name, float **data, size_t *count,
                                 crema_error *err) {
  blob *b = NULL;
  CREMA_TRY(find_blob(cn, name, &b, err));
  if (!b->data)
    return crema_fail(err, CREMA_ERR_INVALID,
                      "blob '%s' has no storage (the last reshape of net '%s' failed)", name,
                      cn->n->name);
  if (data)
    *data = b->data;
  if (count)
    *count = b->count;
  return CREMA_OK;
}

crema_status crema_net_reshape_input(crema_net *cn, const char *name, int num_axes,
                                     const int *dims, crema_error *err) {
  blob *b = NULL;
  CREMA_TRY(find_blob(cn, name, &b, err));
  int is_input = 0;
  for (int k = 0; k < cn->n->ninputs; k++)
    if (cn->n->blobs[cn->n->input_ids[k]] == b)
      is_input = 1;
  if (!is_input)
    return crema_fail(err, CREMA_ERR_INVALID, "blob '%s' is not an input of net '%s'", name,
                      cn->n->name);
  if (num_axes < 0 || num_axes > BLOB_MAX_AXES || (num_axes > 0 && !dims))
    return crema_fail(err, CREMA_ERR_INVALID, "blob '%s': bad shape (%d axes)", name, num_axes);
  CREMA_TRY(blob_reshape(b, num_axes, dims, err));
  return net_reshape(cn->n, err);
}

crema_status crema_net_forward(crema_net *cn, float *loss, crema_error *err) {
  if (!cn)
    return crema_fail(err, CREMA_ERR_INVALID, "crema_net_forward: no net");
  return net_forward(cn->n, loss, err);
}

crema_status crema_net_backward(crema_net *cn, crema_error *err) {
  if (!cn)
    return crema_fail(err, CREMA_ERR_INVALID, "crema_net_backward: no net");
  /* The public call gives this pass's gradients, not a running sum. */
  net_clear_param_diffs(cn->n);
  return net_backward(cn->n, err);
}

crema_status crema_net_save(const crema_net *cn, const char *path, crema_error *err) {
  if (!cn || !path)
    return crema_fail(err, CREMA_ERR_INVALID, "crema_net_save: net and path required");
  return net_save_weights(cn->n, path, err);
}
