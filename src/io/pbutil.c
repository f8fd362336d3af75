#include "config.h"

#include "io/pbutil.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MEMBER(m, off) ((const char *)(m) + (off))

size_t pb_type_size(ProtobufCType t) {
  switch (t) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_ENUM:
      return 4;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
      return 8;
    case PROTOBUF_C_TYPE_FLOAT:
      return sizeof(float);
    case PROTOBUF_C_TYPE_DOUBLE:
      return sizeof(double);
    case PROTOBUF_C_TYPE_BOOL:
      return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_STRING:
      return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES:
      return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE:
      return sizeof(ProtobufCMessage *);
  }
  return 0;
}

/* Whether a proto3-style field (no presence information) differs from zero. */
static int value_is_nonzero(const ProtobufCFieldDescriptor *f, const void *p) {
  switch (f->type) {
    case PROTOBUF_C_TYPE_STRING: {
      const char *s = *(char *const *)p;
      return s != NULL && s[0] != '\0';
    }
    case PROTOBUF_C_TYPE_BYTES:
      return ((const ProtobufCBinaryData *)p)->len > 0;
    case PROTOBUF_C_TYPE_MESSAGE:
      return *(ProtobufCMessage *const *)p != NULL;
    default: {
      static const unsigned char zero[8];
      return memcmp(p, zero, pb_type_size(f->type)) != 0;
    }
  }
}

int pb_field_present(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f) {
  const void *p = MEMBER(m, f->offset);
  int pointer_type = f->type == PROTOBUF_C_TYPE_STRING || f->type == PROTOBUF_C_TYPE_MESSAGE;
  if (f->label == PROTOBUF_C_LABEL_REPEATED)
    return *(const size_t *)MEMBER(m, f->quantifier_offset) > 0;
  if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
    if (*(const uint32_t *)MEMBER(m, f->quantifier_offset) != f->id)
      return 0;
    if (pointer_type) {
      const void *ptr = *(void *const *)p;
      return ptr != NULL && ptr != f->default_value;
    }
    return 1;
  }
  switch (f->label) {
    case PROTOBUF_C_LABEL_REQUIRED:
      return !pointer_type || *(void *const *)p != NULL;
    case PROTOBUF_C_LABEL_OPTIONAL:
      if (pointer_type) {
        const void *ptr = *(void *const *)p;
        return ptr != NULL && ptr != f->default_value;
      }
      return *(const protobuf_c_boolean *)MEMBER(m, f->quantifier_offset) != 0;
    case PROTOBUF_C_LABEL_NONE:
      return value_is_nonzero(f, p);
    default:
      return 0;
  }
}

static int floats_equal(float x, float y) {
  if (isnan(x) && isnan(y))
    return 1;
  return memcmp(&x, &y, sizeof x) == 0;
}

static int doubles_equal(double x, double y) {
  if (isnan(x) && isnan(y))
    return 1;
  return memcmp(&x, &y, sizeof x) == 0;
}

static int values_equal(const ProtobufCFieldDescriptor *f, const void *a, const void *b) {
  switch (f->type) {
    case PROTOBUF_C_TYPE_FLOAT:
      return floats_equal(*(const float *)a, *(const float *)b);
    case PROTOBUF_C_TYPE_DOUBLE:
      return doubles_equal(*(const double *)a, *(const double *)b);
    case PROTOBUF_C_TYPE_BOOL:
      return !*(const protobuf_c_boolean *)a == !*(const protobuf_c_boolean *)b;
    case PROTOBUF_C_TYPE_STRING: {
      const char *x = *(char *const *)a, *y = *(char *const *)b;
      if (x == NULL || y == NULL)
        return x == y;
      return strcmp(x, y) == 0;
    }
    case PROTOBUF_C_TYPE_BYTES: {
      const ProtobufCBinaryData *x = a, *y = b;
      return x->len == y->len && (x->len == 0 || memcmp(x->data, y->data, x->len) == 0);
    }
    case PROTOBUF_C_TYPE_MESSAGE:
      return pb_message_equal(*(ProtobufCMessage *const *)a, *(ProtobufCMessage *const *)b);
    default:
      return memcmp(a, b, pb_type_size(f->type)) == 0;
  }
}

static int fields_equal(const ProtobufCMessage *a, const ProtobufCMessage *b,
                        const ProtobufCFieldDescriptor *f) {
  if (f->label == PROTOBUF_C_LABEL_REPEATED) {
    size_t n = *(const size_t *)MEMBER(a, f->quantifier_offset);
    size_t size = pb_type_size(f->type);
    if (n != *(const size_t *)MEMBER(b, f->quantifier_offset))
      return 0;
    const char *xa = *(char *const *)MEMBER(a, f->offset);
    const char *xb = *(char *const *)MEMBER(b, f->offset);
    for (size_t i = 0; i < n; i++)
      if (!values_equal(f, xa + i * size, xb + i * size))
        return 0;
    return 1;
  }
  int pa = pb_field_present(a, f);
  if (pa != pb_field_present(b, f))
    return 0;
  return !pa || values_equal(f, MEMBER(a, f->offset), MEMBER(b, f->offset));
}

int pb_message_equal(const ProtobufCMessage *a, const ProtobufCMessage *b) {
  if (a == NULL || b == NULL)
    return a == b;
  if (a->descriptor != b->descriptor)
    return 0;
  const ProtobufCMessageDescriptor *d = a->descriptor;
  for (unsigned i = 0; i < d->n_fields; i++)
    if (!fields_equal(a, b, &d->fields[i]))
      return 0;
  return 1;
}

ProtobufCMessage *pb_message_new(const ProtobufCMessageDescriptor *desc, crema_error *err) {
  ProtobufCMessage *m = crema_malloc(desc->sizeof_message, err);
  if (m != NULL)
    protobuf_c_message_init(desc, m);
  return m;
}

ProtobufCMessage *pb_message_clone(const ProtobufCMessage *m, crema_error *err) {
  if (m == NULL) {
    crema_fail(err, CREMA_ERR_INVALID, "cannot copy a NULL message");
    return NULL;
  }
  size_t size = protobuf_c_message_get_packed_size(m);
  uint8_t *buf = crema_malloc(size > 0 ? size : 1, err);
  if (buf == NULL)
    return NULL;
  size_t packed = protobuf_c_message_pack(m, buf);
  ProtobufCMessage *copy = protobuf_c_message_unpack(m->descriptor, NULL, packed, buf);
  free(buf);
  if (copy == NULL)
    crema_fail(err, CREMA_ERR_INVALID,
               "cannot copy a %s message (a required field is missing or memory ran out)",
               m->descriptor->name);
  return copy;
}

void *pb_repeated_append(ProtobufCMessage *m, const ProtobufCFieldDescriptor *f,
                         crema_error *err) {
  if (f->label != PROTOBUF_C_LABEL_REPEATED) {
    crema_fail(err, CREMA_ERR_INVALID, "field '%s' is not repeated", f->name);
    return NULL;
  }
  size_t *n = (size_t *)((char *)m + f->quantifier_offset);
  char **arr = (char **)((char *)m + f->offset);
  size_t size = pb_type_size(f->type), count, bytes;
  if (!size_add(*n, 1, &count) || !size_mul(count, size, &bytes)) {
    crema_fail(err, CREMA_ERR_NOMEM, "repeated field '%s' is too large", f->name);
    return NULL;
  }
  ProtobufCMessage *sub = NULL;
  if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
    sub = pb_message_new(f->descriptor, err);
    if (sub == NULL)
      return NULL;
  }
  char *grown = realloc(*arr, bytes);
  if (grown == NULL) {
    free(sub);
    crema_fail(err, CREMA_ERR_NOMEM, "out of memory growing repeated field '%s'", f->name);
    return NULL;
  }
  *arr = grown;
  void *slot = grown + *n * size;
  memset(slot, 0, size);
  if (sub != NULL)
    *(ProtobufCMessage **)slot = sub;
  *n = count;
  return sub != NULL ? (void *)sub : slot;
}
