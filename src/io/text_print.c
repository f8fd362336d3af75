/* Text format printer with the layout of Google's TextFormat::Print. */
#include "config.h"

#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/pbutil.h"
#include "io/text.h"
#include "io/text_local.h"

/* Deeper messages can only come from a cyclic schema; refuse rather than
 * exhaust the stack. */
#define TXT_PRINT_MAX_DEPTH 1000

typedef struct strbuf {
  char *data;
  size_t len, cap;
  int failed; /* out of memory or too deep: the output is abandoned */
} strbuf;

static void sb_append(strbuf *sb, const char *s, size_t n) {
  if (sb->failed)
    return;
  size_t need;
  if (!size_add(sb->len, n, &need) || !size_add(need, 1, &need)) {
    sb->failed = 1;
    return;
  }
  if (need > sb->cap) {
    size_t cap = sb->cap ? sb->cap : 256;
    while (cap < need)
      if (!size_mul(cap, 2, &cap)) {
        sb->failed = 1;
        return;
      }
    char *grown = realloc(sb->data, cap);
    if (grown == NULL) {
      sb->failed = 1;
      return;
    }
    sb->data = grown;
    sb->cap = cap;
  }
  memcpy(sb->data + sb->len, s, n);
  sb->len += n;
  sb->data[sb->len] = '\0';
}

static void sb_puts(strbuf *sb, const char *s) { sb_append(sb, s, strlen(s)); }

static void sb_indent(strbuf *sb, int indent) {
  static const char spaces[] = "                                ";
  while (indent > 0) {
    int n = indent < (int)sizeof spaces - 1 ? indent : (int)sizeof spaces - 1;
    sb_append(sb, spaces, (size_t)n);
    indent -= n;
  }
}

/* Quoted with C escapes for ", ', \ and the usual control characters, and
 * three-digit octal for every other byte outside printable ASCII, as
 * Google's CEscape. */
static void print_escaped(strbuf *sb, const uint8_t *s, size_t n) {
  sb_append(sb, "\"", 1);
  size_t run = 0; /* bytes copied verbatim are batched */
  for (size_t i = 0; i < n; i++) {
    const char *esc = NULL;
    char octal[5];
    switch (s[i]) {
      case '\n': esc = "\\n"; break;
      case '\r': esc = "\\r"; break;
      case '\t': esc = "\\t"; break;
      case '"': esc = "\\\""; break;
      case '\'': esc = "\\'"; break;
      case '\\': esc = "\\\\"; break;
      default:
        if (s[i] < 0x20 || s[i] >= 0x7f) {
          snprintf(octal, sizeof octal, "\\%03o", s[i]);
          esc = octal;
        }
    }
    if (esc == NULL) {
      run++;
      continue;
    }
    sb_append(sb, (const char *)s + i - run, run);
    run = 0;
    sb_puts(sb, esc);
  }
  if (run) /* an empty bytes field has no storage: s may be NULL */
    sb_append(sb, (const char *)s + n - run, run);
  sb_append(sb, "\"", 1);
}

/* Google's SimpleFtoa: 6 significant digits when they read back as the
 * same float, else 9 (always enough). */
static void format_float(float v, char *buf, size_t cap) {
  if (isnan(v)) {
    snprintf(buf, cap, "nan");
    return;
  }
  if (isinf(v)) {
    snprintf(buf, cap, v < 0 ? "-inf" : "inf");
    return;
  }
  snprintf(buf, cap, "%.*g", FLT_DIG, (double)v);
  /* Checked with strtof as Google's safe_strtof does, which also rejects a
   * result strtof flags with ERANGE: subnormals always get 9 digits. */
  errno = 0;
  float back = strtof(buf, NULL);
  if (errno != 0 || back != v)
    snprintf(buf, cap, "%.*g", FLT_DIG + 3, (double)v);
}

/* SimpleDtoa: 15 significant digits, else 17. */
static void format_double(double v, char *buf, size_t cap) {
  if (isnan(v)) {
    snprintf(buf, cap, "nan");
    return;
  }
  if (isinf(v)) {
    snprintf(buf, cap, v < 0 ? "-inf" : "inf");
    return;
  }
  snprintf(buf, cap, "%.*g", DBL_DIG, v);
  if (strtod(buf, NULL) != v)
    snprintf(buf, cap, "%.*g", DBL_DIG + 2, v);
}

static void print_scalar(strbuf *sb, const ProtobufCFieldDescriptor *f, const void *p) {
  char buf[64];
  switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
      snprintf(buf, sizeof buf, "%" PRId32, *(const int32_t *)p);
      break;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
      snprintf(buf, sizeof buf, "%" PRIu32, *(const uint32_t *)p);
      break;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
      snprintf(buf, sizeof buf, "%" PRId64, *(const int64_t *)p);
      break;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
      snprintf(buf, sizeof buf, "%" PRIu64, *(const uint64_t *)p);
      break;
    case PROTOBUF_C_TYPE_FLOAT:
      format_float(*(const float *)p, buf, sizeof buf);
      break;
    case PROTOBUF_C_TYPE_DOUBLE:
      format_double(*(const double *)p, buf, sizeof buf);
      break;
    case PROTOBUF_C_TYPE_BOOL:
      snprintf(buf, sizeof buf, "%s", *(const protobuf_c_boolean *)p ? "true" : "false");
      break;
    case PROTOBUF_C_TYPE_ENUM: {
      int32_t v = *(const int32_t *)p;
      const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(f->descriptor, v);
      if (ev != NULL)
        snprintf(buf, sizeof buf, "%s", ev->name);
      else /* a value this schema does not know, as Google prints it */
        snprintf(buf, sizeof buf, "%" PRId32, v);
      break;
    }
    case PROTOBUF_C_TYPE_STRING: {
      const char *s = *(char *const *)p;
      print_escaped(sb, (const uint8_t *)(s ? s : ""), s ? strlen(s) : 0);
      return;
    }
    case PROTOBUF_C_TYPE_BYTES: {
      const ProtobufCBinaryData *b = p;
      print_escaped(sb, b->data, b->data ? b->len : 0);
      return;
    }
    case PROTOBUF_C_TYPE_MESSAGE:
      return;
  }
  sb_puts(sb, buf);
}

static void print_message(strbuf *sb, const ProtobufCMessage *m, int indent, int depth);

static void print_one(strbuf *sb, const ProtobufCFieldDescriptor *f, const void *p, int indent,
                      int depth) {
  sb_indent(sb, indent);
  sb_puts(sb, f->name);
  if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
    sb_puts(sb, " {\n");
    print_message(sb, *(ProtobufCMessage *const *)p, indent + 2, depth + 1);
    sb_indent(sb, indent);
    sb_puts(sb, "}\n");
  } else {
    sb_puts(sb, ": ");
    print_scalar(sb, f, p);
    sb_puts(sb, "\n");
  }
}

static void print_field(strbuf *sb, const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f,
                        int indent, int depth) {
  const char *base = (const char *)m;
  if (f->label == PROTOBUF_C_LABEL_REPEATED) {
    size_t n = *(const size_t *)(base + f->quantifier_offset);
    const char *arr = *(char *const *)(base + f->offset);
    size_t size = pb_type_size(f->type);
    for (size_t i = 0; i < n && !sb->failed; i++)
      print_one(sb, f, arr + i * size, indent, depth);
  } else if (pb_field_present(m, f)) {
    print_one(sb, f, base + f->offset, indent, depth);
  }
}

static int compare_field_numbers(const void *a, const void *b) {
  const ProtobufCFieldDescriptor *x = *(const ProtobufCFieldDescriptor *const *)a;
  const ProtobufCFieldDescriptor *y = *(const ProtobufCFieldDescriptor *const *)b;
  return x->id < y->id ? -1 : x->id > y->id;
}

static void print_message(strbuf *sb, const ProtobufCMessage *m, int indent, int depth) {
  if (m == NULL || sb->failed)
    return;
  if (depth > TXT_PRINT_MAX_DEPTH) {
    sb->failed = 1;
    return;
  }
  const ProtobufCMessageDescriptor *d = m->descriptor;
  int sorted = 1;
  for (unsigned i = 1; i < d->n_fields; i++)
    if (d->fields[i - 1].id > d->fields[i].id)
      sorted = 0;
  if (sorted) { /* protoc-c emits fields by number: the usual case */
    for (unsigned i = 0; i < d->n_fields; i++)
      print_field(sb, m, &d->fields[i], indent, depth);
    return;
  }
  const ProtobufCFieldDescriptor **order = malloc(d->n_fields * sizeof *order);
  if (order == NULL) {
    sb->failed = 1;
    return;
  }
  for (unsigned i = 0; i < d->n_fields; i++)
    order[i] = &d->fields[i];
  qsort(order, d->n_fields, sizeof *order, compare_field_numbers);
  for (unsigned i = 0; i < d->n_fields; i++)
    print_field(sb, m, order[i], indent, depth);
  free(order);
}

crema_status txt_print(const ProtobufCMessage *msg, char **out, size_t *len, crema_error *err) {
  if (msg == NULL || out == NULL)
    return crema_fail(err, CREMA_ERR_INVALID, "txt_print: invalid argument");
  *out = NULL;
  strbuf sb = {NULL, 0, 0, 0};
  sb_append(&sb, "", 0);
  txt_numeric_locale saved = txt_enter_c_locale();
  print_message(&sb, msg, 0, 0);
  txt_leave_c_locale(saved);
  if (sb.failed) {
    free(sb.data);
    return crema_fail(err, CREMA_ERR_NOMEM, "cannot print a %s message: out of memory or "
                      "nested deeper than %d levels", msg->descriptor->name,
                      TXT_PRINT_MAX_DEPTH);
  }
  *out = sb.data;
  if (len != NULL)
    *len = sb.len;
  return CREMA_OK;
}
