/* Caffe's .solverstate (SolverState): the iteration, the name of the
 * .caffemodel written with it, the solver's history blobs and the lr
 * policy's current_step. */
#ifndef CREMA_SOLVER_STATE_H
#define CREMA_SOLVER_STATE_H

#include "caffe.pb-c.h"
#include "core/blob.h"
#include "core/error.h"

/* Writes path atomically, every field set as Caffe sets them. */
crema_status solver_state_write(const char *path, int iter, const char *learned_net,
                                int current_step, blob *const *history, int nhistory,
                                crema_error *err);

/* Reads path (free with protobuf_c_message_free_unpacked). */
crema_status solver_state_read(const char *path, Caffe__SolverState **out, crema_error *err);

/* Copies the state's history blobs into history; count and shapes must
 * match what this solver keeps for this net. */
crema_status solver_state_copy_history(const Caffe__SolverState *st, const char *path,
                                       blob *const *history, int nhistory, crema_error *err);

/* Where the state's learned_net is: as stored when that file exists (Caffe
 * opens it relative to the working directory), else relative to the
 * directory of the .solverstate.  Returns a malloc'd path. */
char *solver_state_learned_net_path(const Caffe__SolverState *st, const char *state_path,
                                    crema_error *err);

#endif
