/* The public API (src/crema.h) over the internal net. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "crema.h"
#include "graph/api.h"
#include "graph/stride.h"
#include "graph/net.h"
#include "graph/weights.h"
#include "io/image.h"

crema_status api_net_wrap(net *n, int owned, crema_net **out, crema_error *err) {
  crema_net *cn = crema_calloc(1, sizeof *cn, err);
  if (!cn)
    return CREMA_ERR_NOMEM;
  cn->n = n;
  cn->owned = owned;
  *out = cn;
  return CREMA_OK;
}

void crema_net_config_init(crema_net_config *cfg, crema_phase phase) {
  memset(cfg, 0, sizeof *cfg);
  cfg->phase = phase;
}

crema_status crema_net_open(const char *model_path, const char *weights_path,
                            crema_phase phase, crema_net **out, crema_error *err) {
  crema_net_config cfg;
  crema_net_config_init(&cfg, phase);
  return crema_net_open_config(model_path, weights_path, &cfg, out, err);
}

crema_status crema_net_open_config(const char *model_path, const char *weights_path,
                                   const crema_net_config *cfg, crema_net **out,
                                   crema_error *err) {
  if (!model_path || !out || !cfg)
    return crema_fail(err, CREMA_ERR_INVALID,
                      "crema_net_open: model path, settings and output required");
  if (cfg->phase != CREMA_TRAIN && cfg->phase != CREMA_TEST)
    return crema_fail(err, CREMA_ERR_INVALID, "crema_net_open: phase must be TRAIN or TEST");
  if (cfg->nstages < 0 || (cfg->nstages > 0 && !cfg->stages))
    return crema_fail(err, CREMA_ERR_INVALID, "crema_net_open: bad stage list");
  *out = NULL;
  net_options opts;
  net_options_init(&opts, cfg->phase == CREMA_TRAIN ? CAFFE__PHASE__TRAIN : CAFFE__PHASE__TEST);
  opts.has_level = 1;
  opts.level = cfg->level;
  opts.stages = cfg->stages;
  opts.nstages = cfg->nstages;
  if (cfg->has_seed)
    opts.seed = cfg->seed;
  opts.observable = cfg->observable;
  if (cfg->options)
    opts.run = *cfg->options;
  else
    crema_options_from_env(&opts.run);
  net *n = NULL;
  crema_status st = net_open(model_path, weights_path, &opts, &n, err);
  if (st != CREMA_OK)
    return st;
  if ((st = api_net_wrap(n, 1, out, err)) != CREMA_OK)
    net_free(n);
  return st;
}

void crema_net_close(crema_net *net_) {
  if (!net_)
    return;
  if (net_->owned)
    net_free(net_->n);
  free(net_);
}

int crema_net_num_inputs(const crema_net *cn) { return cn ? cn->n->ninputs : 0; }
int crema_net_num_outputs(const crema_net *cn) { return cn ? cn->n->noutputs : 0; }

int crema_net_size_multiple(const crema_net *cn) { return cn ? net_size_multiple(cn->n) : 1; }

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
  const options_scope scope = options_enter(&cn->n->ctx.opts);
  crema_status st = blob_reshape(b, num_axes, dims, err);
  options_leave(scope);
  CREMA_TRY(st);
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

/* ---- hosts that drive a net layer by layer ------------------------------- */

/* A public crema_blob is an internal blob; the handle type only hides it. */
static blob *as_blob(crema_blob *b) { return (blob *)b; }
static const blob *as_const_blob(const crema_blob *b) { return (const blob *)b; }
static crema_blob *as_handle(blob *b) { return (crema_blob *)b; }

static int layer_in_range(const crema_net *cn, int i) {
  return cn && i >= 0 && i < cn->n->nlayers;
}

static int blob_in_range(const crema_net *cn, int i) { return cn && i >= 0 && i < cn->n->nblobs; }

int crema_net_num_blobs(const crema_net *cn) { return cn ? cn->n->nblobs : 0; }

crema_blob *crema_net_blob(crema_net *cn, int i) {
  return blob_in_range(cn, i) ? as_handle(cn->n->blobs[i]) : NULL;
}

const char *crema_net_blob_name(const crema_net *cn, int i) {
  return blob_in_range(cn, i) ? cn->n->blobs[i]->name : NULL;
}

float crema_net_blob_loss_weight(const crema_net *cn, int i) {
  return blob_in_range(cn, i) ? cn->n->blob_loss_weight[i] : 0.0f;
}

int crema_net_blob_index(const crema_net *cn, const char *name) {
  return cn && name ? net_blob_index(cn->n, name) : -1;
}

int crema_net_layer_index(const crema_net *cn, const char *name) {
  return cn && name ? net_layer_index(cn->n, name) : -1;
}

int crema_net_num_layers(const crema_net *cn) { return cn ? cn->n->nlayers : 0; }

const char *crema_net_layer_name(const crema_net *cn, int i) {
  return layer_in_range(cn, i) ? cn->n->layers[i]->name : NULL;
}

const char *crema_net_layer_type(const crema_net *cn, int i) {
  return layer_in_range(cn, i) ? cn->n->layers[i]->ops->type : NULL;
}

int crema_net_layer_num_bottoms(const crema_net *cn, int i) {
  return layer_in_range(cn, i) ? cn->n->bottoms[i].n : 0;
}

int crema_net_layer_bottom(const crema_net *cn, int i, int j) {
  return crema_net_layer_num_bottoms(cn, i) > j && j >= 0 ? cn->n->bottom_ids[i][j] : -1;
}

int crema_net_layer_num_tops(const crema_net *cn, int i) {
  return layer_in_range(cn, i) ? cn->n->tops[i].n : 0;
}

int crema_net_layer_top(const crema_net *cn, int i, int j) {
  return crema_net_layer_num_tops(cn, i) > j && j >= 0 ? cn->n->top_ids[i][j] : -1;
}

int crema_net_layer_num_params(const crema_net *cn, int i) {
  return layer_in_range(cn, i) ? cn->n->layers[i]->nblobs : 0;
}

crema_blob *crema_net_layer_param(crema_net *cn, int i, int k) {
  if (k < 0 || k >= crema_net_layer_num_params(cn, i))
    return NULL;
  return as_handle(cn->n->layers[i]->blobs[k]);
}

int crema_blob_shape(const crema_blob *h, int *dims, int max_axes) {
  const blob *b = as_const_blob(h);
  if (!b)
    return 0;
  for (int i = 0; dims && i < b->num_axes && i < max_axes; i++)
    dims[i] = b->shape[i];
  return b->num_axes;
}

size_t crema_blob_count(const crema_blob *h) { return h ? as_const_blob(h)->count : 0; }

float *crema_blob_data(crema_blob *h) { return h ? as_blob(h)->data : NULL; }

crema_status crema_blob_diff(crema_blob *h, float **diff, crema_error *err) {
  blob *b = as_blob(h);
  if (!b || !diff)
    return crema_fail(err, CREMA_ERR_INVALID, "crema_blob_diff: blob and output required");
  /* A blob whose net keeps no gradients gets one on first use, as Caffe's
   * lazily allocated diffs. */
  CREMA_TRY(blob_ensure_diff(b, err));
  *diff = b->diff;
  return CREMA_OK;
}

crema_status crema_blob_reshape(crema_blob *h, int num_axes, const int *dims, crema_error *err) {
  blob *b = as_blob(h);
  if (!b || num_axes < 0 || num_axes > BLOB_MAX_AXES || (num_axes > 0 && !dims))
    return crema_fail(err, CREMA_ERR_INVALID, "crema_blob_reshape: bad blob or shape (%d axes)",
                      num_axes);
  /* Storage borrowed from another blob (a parameter shared by name, a test
   * net's copy of the train net's weights) is sized by its owner. */
  size_t count = 1;
  for (int i = 0; i < num_axes; i++)
    if (dims[i] < 0 || !size_mul(count, (size_t)dims[i], &count))
      return crema_fail(err, CREMA_ERR_SHAPE, "blob '%s': bad dimension %d on axis %d",
                        b->name ? b->name : "", dims[i], i);
  if (((!b->owns_data && b->data) || (!b->owns_diff && b->diff)) && count > b->count)
    return crema_fail(err, CREMA_ERR_INVALID,
                      "blob '%s' shares its storage with another blob: it cannot grow from %zu "
                      "to %zu values", b->name ? b->name : "", b->count, count);
  return blob_reshape(b, num_axes, dims, err);
}

crema_status crema_net_reshape(crema_net *cn, crema_error *err) {
  if (!cn)
    return crema_fail(err, CREMA_ERR_INVALID, "crema_net_reshape: no net");
  return net_reshape(cn->n, err);
}

crema_status crema_net_forward_range(crema_net *cn, int start, int end, float *loss,
                                     crema_error *err) {
  if (!cn)
    return crema_fail(err, CREMA_ERR_INVALID, "crema_net_forward_range: no net");
  if (cn->n->plan && start == 0 && end == cn->n->nlayers - 1)
    return net_forward(cn->n, loss, err);
  return net_forward_range(cn->n, start, end, loss, err);
}

crema_status crema_net_backward_range(crema_net *cn, int start, int end, crema_error *err) {
  if (!cn)
    return crema_fail(err, CREMA_ERR_INVALID, "crema_net_backward_range: no net");
  return net_backward_range(cn->n, start, end, err);
}

void crema_net_clear_param_diffs(crema_net *cn) {
  if (cn)
    net_clear_param_diffs(cn->n);
}

crema_status crema_net_copy_from(crema_net *cn, const char *weights_path, crema_error *err) {
  if (!cn || !weights_path)
    return crema_fail(err, CREMA_ERR_INVALID, "crema_net_copy_from: net and path required");
  return net_load_weights(cn->n, weights_path, err);
}

crema_status crema_image_read(const char *path, int channels, int *height, int *width,
                              int *out_channels, unsigned char **pixels, crema_error *err) {
  if (!path || !height || !width || !out_channels || !pixels)
    return crema_fail(err, CREMA_ERR_INVALID, "crema_image_read: path and outputs required");
  if (channels != 0 && channels != 1 && channels != 3)
    return crema_fail(err, CREMA_ERR_INVALID, "crema_image_read: channels must be 0, 1 or 3");
  image_color color = channels == 0 ? IMAGE_NATIVE : channels == 1 ? IMAGE_GRAY : IMAGE_COLOR;
  image img = {0};
  CREMA_TRY(image_read_file(path, color, &img, err));
  *height = img.height;
  *width = img.width;
  *out_channels = img.channels;
  *pixels = img.pixels;
  return CREMA_OK;
}

void crema_free(void *p) { free(p); }
