#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/binary.h"
#include "io/blobproto.h"
#include "solver/state.h"

static void free_history_protos(Caffe__BlobProto **h, int n) {
  for (int i = 0; i < n; i++)
    if (h[i])
      protobuf_c_message_free_unpacked(&h[i]->base, NULL);
  free(h);
}

crema_status solver_state_write(const char *path, int iter, const char *learned_net,
                                int current_step, blob *const *history, int nhistory,
                                crema_error *err) {
  Caffe__BlobProto **protos = crema_calloc((size_t)(nhistory ? nhistory : 1),
                                           sizeof *protos, err);
  if (!protos)
    return CREMA_ERR_NOMEM;
  crema_status st = CREMA_OK;
  for (int i = 0; i < nhistory && st == CREMA_OK; i++)
    st = blob_to_blobproto(history[i], 0, &protos[i], err);
  if (st == CREMA_OK) {
    Caffe__SolverState state;
    caffe__solver_state__init(&state);
    state.has_iter = 1;
    state.iter = iter;
    state.learned_net = (char *)learned_net;
    state.has_current_step = 1;
    state.current_step = current_step;
    state.n_history = (size_t)nhistory;
    state.history = protos;
    st = bin_write_file(path, &state.base, err);
  }
  free_history_protos(protos, nhistory);
  return st;
}

crema_status solver_state_read(const char *path, Caffe__SolverState **out, crema_error *err) {
  ProtobufCMessage *msg = NULL;
  CREMA_TRY(bin_read_file(path, &caffe__solver_state__descriptor, &msg, err));
  *out = (Caffe__SolverState *)msg;
  return CREMA_OK;
}

crema_status solver_state_copy_history(const Caffe__SolverState *st, const char *path,
                                       blob *const *history, int nhistory, crema_error *err) {
  if (st->n_history != (size_t)nhistory)
    return crema_fail(err, CREMA_ERR_SHAPE,
                      "%s: the solver state holds %zu history blobs, this solver and net need %d",
                      path, st->n_history, nhistory);
  for (int i = 0; i < nhistory; i++) {
    int axes = 0, shape[BLOB_MAX_AXES];
    crema_status s = blobproto_shape(st->history[i], &axes, shape, err);
    if (s == CREMA_OK) {
      int same = axes == history[i]->num_axes;
      for (int a = 0; same && a < axes; a++)
        same = shape[a] == history[i]->shape[a];
      if (!same) {
        char want[256];
        return crema_fail(err, CREMA_ERR_SHAPE,
                          "%s: history blob %d has another shape than the %s this net needs",
                          path, i, blob_shape_string(history[i], want, sizeof want));
      }
      s = blobproto_copy_data(st->history[i], history[i], err);
    }
    if (s != CREMA_OK) {
      crema_error_prefix(err, "%s: history blob %d: ", path, i);
      return s;
    }
  }
  return CREMA_OK;
}

char *solver_state_learned_net_path(const Caffe__SolverState *st, const char *state_path,
                                    crema_error *err) {
  const char *name = st->learned_net;
  if (!name || !name[0]) {
    crema_fail(err, CREMA_ERR_INVALID, "%s: the solver state names no learned net", state_path);
    return NULL;
  }
  if (name[0] == '/' || access(name, F_OK) == 0)
    return crema_strdup(name, err);
  const char *slash = strrchr(state_path, '/');
  if (!slash)
    return crema_strdup(name, err);
  size_t dir_len = (size_t)(slash - state_path) + 1;
  size_t len = dir_len + strlen(name) + 1;
  char *joined = crema_malloc(len, err);
  if (joined)
    snprintf(joined, len, "%.*s%s", (int)dir_len, state_path, name);
  return joined;
}
