/* Weights in and out of a net, by Caffe's rules (Net::CopyTrainedLayersFrom
 * and Net::ToProto). */
#ifndef CREMA_GRAPH_WEIGHTS_H
#define CREMA_GRAPH_WEIGHTS_H

#include "caffe.pb-c.h"
#include "graph/net.h"

/* Copies the blobs of src's layers into the net's layers of the same name.
 * Source layers the net lacks are ignored (logged); a matched layer must
 * have as many blobs as the net's, each of the same shape (a legacy
 * num/channels/height/width shape matches a shape padded with leading 1s). */
crema_status net_copy_trained_layers(net *n, const Caffe__NetParameter *src, crema_error *err);

/* Reads weights (binary .caffemodel read in place, or text for other
 * extensions, legacy layouts upgraded: io/weights_source.h) and copies
 * them in by net_copy_trained_layers's rules.  paths may list several files
 * separated by commas, applied in order as caffe train --weights does.
 * For a net made with net_options.weights_follow, parameters no file
 * covered are then zeroed (net_settle_params): the promise is kept. */
crema_status net_load_weights(net *n, const char *paths, crema_error *err);

/* The one way to open a net from files: reads the model (text or binary by
 * its extension, legacy layouts upgraded), builds the net with opts (NULL:
 * TEST defaults) and, when weights is not NULL, loads them (a
 * comma-separated list).  Parameters the weights will overwrite are not
 * filled first.  Errors of the net name the model file, errors of the
 * weights their file. */
crema_status net_open(const char *model, const char *weights, const net_options *opts, net **out,
                      crema_error *err);
/* The same from a NetParameter in memory (a solver's nets, a model the
 * caller rewrote); errors of the net are prefixed with model (the file
 * it came from) unless it is NULL.  Only these two set
 * net_options.weights_follow. */
crema_status net_open_param(const Caffe__NetParameter *param, const char *model,
                            const char *weights, const net_options *opts, net **out,
                            crema_error *err);

/* The net as Caffe's ToProto writes it: every layer's parameter (splits
 * included) with its blobs (shape + data, and diff when with_diff). */
crema_status net_to_proto(const net *n, int with_diff, Caffe__NetParameter **out,
                          crema_error *err);
/* Writes net_to_proto's message as a binary .caffemodel, atomically. */
crema_status net_save_weights(const net *n, const char *path, crema_error *err);

#endif
