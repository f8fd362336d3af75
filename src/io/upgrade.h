/* Reading Caffe definitions with Caffe's legacy upgrades applied
 * (upgrade_proto.cpp semantics): V0 -> V1 -> V2 layers, data transformation
 * fields, input/input_dim/input_shape -> Input layer, BatchNorm params,
 * solver_type -> type. */
#ifndef CREMA_IO_UPGRADE_H
#define CREMA_IO_UPGRADE_H

#include "caffe.pb-c.h"
#include "core/error.h"

/* Upgrades net in place when it uses any legacy layout.  path is used for
 * messages.  *upgraded (if not NULL) is set to 1 when anything changed. */
crema_status upgrade_net(Caffe__NetParameter *net, const char *path, int *upgraded,
                         crema_error *err);
crema_status upgrade_solver(Caffe__SolverParameter *solver, const char *path, int *upgraded,
                            crema_error *err);

/* Read a file and upgrade it.  net_param_read picks text or binary by the
 * extension (.caffemodel/.binaryproto are binary, anything else text). */
crema_status net_param_read_text(const char *path, Caffe__NetParameter **out, crema_error *err);
crema_status net_param_read_binary(const char *path, Caffe__NetParameter **out, crema_error *err);
crema_status net_param_read(const char *path, Caffe__NetParameter **out, crema_error *err);
crema_status solver_param_read_text(const char *path, Caffe__SolverParameter **out,
                                    crema_error *err);

#endif
