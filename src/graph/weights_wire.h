/* Loading a binary .caffemodel without unpacking it: the file is mapped,
 * its layers and blobs located by walking the wire format, and each blob's
 * values copied straight from the mapping into the net's blob (protobuf-c
 * would first copy all of them into arrays of its own).  Pages already
 * copied are released, so the file never adds its size to peak memory.
 * Same rules and messages as net_copy_trained_layers on the upgraded
 * NetParameter: V2 `layer` and V1 `layers` entries, legacy blob dims,
 * packed or unpacked float and double values. */
#ifndef CREMA_GRAPH_WEIGHTS_WIRE_H
#define CREMA_GRAPH_WEIGHTS_WIRE_H

#include "graph/net.h"

/* *handled is 0 (and nothing is copied) for files this reader leaves to
 * the unpacking path: V0 layers, whose upgrade renames and drops layers. */
crema_status weights_wire_load(net *n, const char *path, int *handled, crema_error *err);

#endif
