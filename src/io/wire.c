#include "config.h"

#include <string.h>

#include "io/wire.h"

int wire_read_varint(const uint8_t **p, const uint8_t *end, uint64_t *out) {
  uint64_t v = 0;
  const uint8_t *q = *p;
  for (int shift = 0; shift < 64; shift += 7) {
    if (q >= end)
      return 0;
    uint8_t byte = *q++;
    v |= (uint64_t)(byte & 0x7f) << shift;
    if (!(byte & 0x80)) {
      *p = q;
      *out = v;
      return 1;
    }
  }
  return 0; /* more than 10 bytes */
}

wire_result wire_next(wire_reader *r, wire_field *f) {
  if (r->p >= r->end)
    return WIRE_END;
  uint64_t tag;
  if (!wire_read_varint(&r->p, r->end, &tag) || (tag >> 3) == 0 || (tag >> 3) > UINT32_MAX)
    return WIRE_MALFORMED;
  f->number = (uint32_t)(tag >> 3);
  f->type = (wire_type)(tag & 7);
  f->varint = 0;
  f->data = NULL;
  f->len = 0;
  size_t avail = (size_t)(r->end - r->p);
  switch (f->type) {
  case WIRE_VARINT:
    return wire_read_varint(&r->p, r->end, &f->varint) ? WIRE_FIELD : WIRE_MALFORMED;
  case WIRE_FIXED64:
  case WIRE_FIXED32:
    f->len = f->type == WIRE_FIXED64 ? 8 : 4;
    break;
  case WIRE_LEN: {
    uint64_t len;
    if (!wire_read_varint(&r->p, r->end, &len))
      return WIRE_MALFORMED;
    avail = (size_t)(r->end - r->p);
    if (len > avail)
      return WIRE_MALFORMED;
    f->len = (size_t)len;
    break;
  }
  default:
    return WIRE_MALFORMED;
  }
  if (f->len > avail)
    return WIRE_MALFORMED;
  f->data = r->p;
  r->p += f->len;
  return WIRE_FIELD;
}

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define WIRE_HOST_IS_LITTLE_ENDIAN 1
#else
#define WIRE_HOST_IS_LITTLE_ENDIAN 0
#endif

static uint32_t load_le32(const uint8_t *s) {
  return (uint32_t)s[0] | (uint32_t)s[1] << 8 | (uint32_t)s[2] << 16 | (uint32_t)s[3] << 24;
}

static uint64_t load_le64(const uint8_t *s) {
  return (uint64_t)load_le32(s) | (uint64_t)load_le32(s + 4) << 32;
}

void wire_copy_floats(float *dst, const uint8_t *src, size_t n) {
  if (WIRE_HOST_IS_LITTLE_ENDIAN) {
    memcpy(dst, src, n * sizeof(float));
    return;
  }
  for (size_t i = 0; i < n; i++) {
    uint32_t u = load_le32(src + 4 * i);
    memcpy(&dst[i], &u, sizeof u);
  }
}

void wire_copy_doubles_to_floats(float *dst, const uint8_t *src, size_t n) {
  for (size_t i = 0; i < n; i++) {
    uint64_t u = load_le64(src + 8 * i);
    double d;
    memcpy(&d, &u, sizeof d);
    dst[i] = (float)d;
  }
}
