/* Binary protocol buffer files: .caffemodel, .binaryproto, .solverstate. */
#ifndef CREMA_IO_BINARY_H
#define CREMA_IO_BINARY_H

#include <protobuf-c/protobuf-c.h>
#include "core/error.h"

/* Largest binary message accepted: protobuf's own 2 GiB limit. */
#define BIN_MAX_FILE_SIZE ((size_t)2147483647)

/* Reads and decodes a whole file into a new message of type desc (free with
 * protobuf_c_message_free_unpacked(msg, NULL)). */
crema_status bin_read_file(const char *path, const ProtobufCMessageDescriptor *desc,
                           ProtobufCMessage **out, crema_error *err);
/* Encodes msg and writes it atomically. */
crema_status bin_write_file(const char *path, const ProtobufCMessage *msg, crema_error *err);

#endif
