/* Generic helpers for protobuf-c messages, driven by their descriptors.
 *
 * "Present" follows protobuf-c's own packing rules (proto2): a repeated field
 * is present when it has elements, an optional scalar or bytes field when its
 * has_ flag is set, an optional string or message when its pointer is neither
 * NULL nor the descriptor's default, a oneof member when its case is selected,
 * and a required field always (strings and messages: when not NULL). */
#ifndef CREMA_IO_PBUTIL_H
#define CREMA_IO_PBUTIL_H

#include <stddef.h>
#include <protobuf-c/protobuf-c.h>
#include "core/error.h"

/* 1 if a and b are messages of the same type whose present fields are equal,
 * recursively.  Floats and doubles compare bitwise, except that any NaN
 * equals any NaN.  Unknown fields are ignored.  Two NULLs are equal. */
int pb_message_equal(const ProtobufCMessage *a, const ProtobufCMessage *b);

/* A deep copy made by packing and unpacking (so it can be freed with
 * protobuf_c_message_free_unpacked(copy, NULL)).  NULL with err set on
 * failure. */
ProtobufCMessage *pb_message_clone(const ProtobufCMessage *m, crema_error *err);

/* A new message of type desc (malloc'd, proto2 defaults applied). */
ProtobufCMessage *pb_message_new(const ProtobufCMessageDescriptor *desc, crema_error *err);

int pb_field_present(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f);

/* Size of one value of type t in a message struct or repeated array. */
size_t pb_type_size(ProtobufCType t);

/* Appends one zeroed element to repeated field f of m and returns a pointer
 * to it (an int32_t *, a char **, ...).  For message fields the element is
 * set to a new initialised sub-message, which is returned instead. */
void *pb_repeated_append(ProtobufCMessage *m, const ProtobufCFieldDescriptor *f,
                         crema_error *err);

#endif
