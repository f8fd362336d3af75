/* The protocol buffer wire format, read field by field over bytes in memory.
 *
 * protobuf-c unpacks a whole message, copying every repeated field into
 * fresh arrays; a 553 MB .caffemodel then costs 553 MB of allocation and a
 * copy before its floats reach the net.  This reader lets a caller walk the
 * structure, skip what it does not need and copy float payloads straight to
 * their destination.  Every length is checked against the enclosing range,
 * so malformed input ends the walk with an error, never a read out of
 * bounds. */
#ifndef CREMA_IO_WIRE_H
#define CREMA_IO_WIRE_H

#include <stddef.h>
#include <stdint.h>

typedef enum wire_type {
  WIRE_VARINT = 0,
  WIRE_FIXED64 = 1,
  WIRE_LEN = 2,
  WIRE_FIXED32 = 5
} wire_type;

/* The unread part of a message: [p, end). */
typedef struct wire_reader {
  const uint8_t *p, *end;
} wire_reader;

typedef struct wire_field {
  uint32_t number;
  wire_type type;
  uint64_t varint;       /* WIRE_VARINT: the value */
  const uint8_t *data;   /* WIRE_LEN, FIXED32, FIXED64: the payload */
  size_t len;            /* its length in bytes */
} wire_field;

typedef enum wire_result { WIRE_END = 0, WIRE_FIELD = 1, WIRE_MALFORMED = -1 } wire_result;

static inline wire_reader wire_reader_of(const uint8_t *data, size_t len) {
  wire_reader r = {data, data + len};
  return r;
}

/* Reads the next field.  Group wire types (unused by Caffe, rejected by
 * protobuf-c) and field number 0 are malformed. */
wire_result wire_next(wire_reader *r, wire_field *f);

/* Reads one varint from [*p, end), advancing *p; 0 if malformed. */
int wire_read_varint(const uint8_t **p, const uint8_t *end, uint64_t *out);

/* Little-endian payloads into host values (n values). */
void wire_copy_floats(float *dst, const uint8_t *src, size_t n);
void wire_copy_doubles_to_floats(float *dst, const uint8_t *src, size_t n);

#endif
