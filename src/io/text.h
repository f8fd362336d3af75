/* Protocol buffer text format (prototxt), driven by protobuf-c descriptors.
 *
 * Messages returned here are allocated with the default protobuf-c allocator
 * (plain malloc for the message, its strings, repeated arrays and
 * sub-messages), so protobuf_c_message_free_unpacked(msg, NULL) frees them,
 * exactly like a message from protobuf_c_message_unpack. */
#ifndef CREMA_IO_TEXT_H
#define CREMA_IO_TEXT_H

#include <stddef.h>
#include <protobuf-c/protobuf-c.h>
#include "core/error.h"

/* Parses len bytes of text (need not be NUL-terminated) into a new message
 * of type desc with proto2 defaults applied.  filename is used only in error
 * messages ("file:line:col: ..."). */
crema_status txt_parse(const char *text, size_t len, const char *filename,
                       const ProtobufCMessageDescriptor *desc, ProtobufCMessage **out,
                       crema_error *err);
crema_status txt_parse_file(const char *path, const ProtobufCMessageDescriptor *desc,
                            ProtobufCMessage **out, crema_error *err);

/* Prints msg as Google's TextFormat::Print does (two-space indent, fields in
 * field-number order, shortest round-tripping floats).  *out is malloc'd and
 * NUL-terminated; *len (if not NULL) receives its length. */
crema_status txt_print(const ProtobufCMessage *msg, char **out, size_t *len, crema_error *err);
/* Prints msg to path atomically (temp file + rename). */
crema_status txt_write_file(const char *path, const ProtobufCMessage *msg, crema_error *err);

#endif
