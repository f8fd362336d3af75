/* Reading Caffe definitions with Caffe's legacy upgrades applied
 * (upgrade_proto.cpp semantics): V0 -> V1 -> V2 layers, data transformation
 * fields, input/input_dim/input_shape -> Input layer, BatchNorm params,
 * solver_type -> type. */
#ifndef CREMA_IO_UPGRADE_H
#define CREMA_IO_UPGRADE_H

#include "caffe.pb-c.h"
#include "core/error.h"

/* Upgrades net in place when it uses any legacy layout.  path is used for
 * messages; Caffe's notices about the upgrade are logged under level (the
 * caller's crema_options.log_level).  *upgraded (if not NULL) is set to 1
 * when anything changed. */
crema_status upgrade_net(Caffe__NetParameter *net, const char *path, crema_log_level level,
                         int *upgraded, crema_error *err);
crema_status upgrade_solver(Caffe__SolverParameter *solver, const char *path,
                            crema_log_level level, int *upgraded, crema_error *err);

/* The single passes of upgrade_net, with the semantics of Caffe's
 * UpgradeV0PaddingLayers, UpgradeV0Net (padding included) and UpgradeV1Net;
 * upgrade_net runs them as needed.  *compatible (if not NULL) is cleared when
 * a setting had no place in the new layout: reported, not fatal. */
crema_status upgrade_net_v0_padding(Caffe__NetParameter *net, const char *path, crema_error *err);
crema_status upgrade_net_v0_to_v1(Caffe__NetParameter *net, const char *path,
                                  crema_log_level level, int *compatible, crema_error *err);
crema_status upgrade_net_v1_to_v2(Caffe__NetParameter *net, const char *path,
                                  crema_log_level level, int *compatible, crema_error *err);

/* The V2 type string of a V1 layer type ("" for NONE), NULL if unknown:
 * the one table of V1 type names, read both ways. */
const char *upgrade_v1_type_name(int v1_type);

/* The other way (io/downgrade.c), for `crema init --v1': np's V2 layers
 * become V1 layers (their names, bottoms, tops and blobs, blob shapes as
 * num/channels/height/width) as in the published legacy models.  Layers
 * V1 cannot name (Input: the net's inputs were fields then) are dropped
 * when they hold no weights. */
crema_status downgrade_net_v2_to_v1(Caffe__NetParameter *np, crema_error *err);

/* Read a file and upgrade it (upgrade_net, logging under level).
 * net_param_read picks text or binary by the extension
 * (.caffemodel/.binaryproto are binary, anything else text). */
crema_status net_param_read_text(const char *path, crema_log_level level,
                                 Caffe__NetParameter **out, crema_error *err);
crema_status net_param_read_binary(const char *path, crema_log_level level,
                                   Caffe__NetParameter **out, crema_error *err);
crema_status net_param_read(const char *path, crema_log_level level, Caffe__NetParameter **out,
                            crema_error *err);
/* Weights as Caffe reads them: binary whatever the name, except that a
 * name ending in .prototxt or .pbtxt is text (path_is_text_proto). */
crema_status net_weights_read(const char *path, crema_log_level level, Caffe__NetParameter **out,
                              crema_error *err);
crema_status solver_param_read_text(const char *path, crema_log_level level,
                                    Caffe__SolverParameter **out, crema_error *err);

#endif
