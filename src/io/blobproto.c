#include "config.h"

#include <ctype.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/binary.h"
#include "io/blobproto.h"
#include "io/file.h"

/* ------------------------------------------------------------------------ */
/* BlobProto                                                                  */

static int uses_legacy_dims(const Caffe__BlobProto *bp) {
  return bp->has_num || bp->has_channels || bp->has_height || bp->has_width;
}

/* Like Caffe's Blob::FromProto, the legacy num/channels/height/width win
 * when any of them is set; otherwise `shape` (absent = no axes). */
crema_status blobproto_shape(const Caffe__BlobProto *bp, int *num_axes, int *shape,
                             crema_error *err) {
  if (uses_legacy_dims(bp)) {
    const int32_t dims[4] = {bp->num, bp->channels, bp->height, bp->width};
    for (int i = 0; i < 4; i++) {
      if (dims[i] < 0)
        return crema_fail(err, CREMA_ERR_SHAPE, "blob dimension %d is negative (%d)", i,
                          (int)dims[i]);
      shape[i] = dims[i];
    }
    *num_axes = 4;
    return CREMA_OK;
  }
  size_t n = bp->shape ? bp->shape->n_dim : 0;
  if (n > BLOB_MAX_AXES)
    return crema_fail(err, CREMA_ERR_SHAPE, "blob has %zu axes, at most %d are supported", n,
                      BLOB_MAX_AXES);
  for (size_t i = 0; i < n; i++) {
    int64_t d = bp->shape->dim[i];
    if (d < 0 || d > INT_MAX)
      return crema_fail(err, CREMA_ERR_SHAPE, "blob axis %zu has invalid size %lld", i,
                        (long long)d);
    shape[i] = (int)d;
  }
  *num_axes = (int)n;
  return CREMA_OK;
}

static crema_status shape_count(int num_axes, const int *shape, size_t *count, crema_error *err) {
  size_t c = 1;
  for (int i = 0; i < num_axes; i++)
    if (!size_mul(c, (size_t)shape[i], &c) || c > (size_t)INT_MAX)
      return crema_fail(err, CREMA_ERR_SHAPE, "blob element count exceeds %d", INT_MAX);
  *count = c;
  return CREMA_OK;
}

static size_t data_values(const Caffe__BlobProto *bp) {
  return bp->n_double_data > 0 ? bp->n_double_data : bp->n_data;
}

static size_t diff_values(const Caffe__BlobProto *bp) {
  return bp->n_double_diff > 0 ? bp->n_double_diff : bp->n_diff;
}

static void copy_values(float *dst, const float *f, const double *d, size_t n) {
  if (d) {
    for (size_t i = 0; i < n; i++)
      dst[i] = (float)d[i];
  } else if (n > 0) {
    memcpy(dst, f, n * sizeof *dst);
  }
}

static void copy_data(const Caffe__BlobProto *bp, float *dst, size_t n) {
  copy_values(dst, bp->data, bp->n_double_data > 0 ? bp->double_data : NULL, n);
}

static void copy_diff(const Caffe__BlobProto *bp, float *dst, size_t n) {
  copy_values(dst, bp->diff, bp->n_double_diff > 0 ? bp->double_diff : NULL, n);
}

void blobproto_values(const Caffe__BlobProto *bp, int diff, float *dst) {
  if (diff)
    copy_diff(bp, dst, diff_values(bp));
  else
    copy_data(bp, dst, data_values(bp));
}

static const char *shape_text(int num_axes, const int *shape, char *buf, size_t size) {
  if (num_axes == 0) {
    snprintf(buf, size, "scalar");
    return buf;
  }
  size_t used = 0;
  buf[0] = '\0';
  for (int i = 0; i < num_axes && used < size; i++) {
    int w = snprintf(buf + used, size - used, "%s%d", i ? "x" : "", shape[i]);
    if (w < 0)
      break;
    used += (size_t)w;
  }
  return buf;
}

crema_status blobproto_to_blob(const Caffe__BlobProto *bp, blob *b, int with_diff,
                               crema_error *err) {
  int num_axes;
  int shape[BLOB_MAX_AXES];
  size_t count;
  CREMA_TRY(blobproto_shape(bp, &num_axes, shape, err));
  CREMA_TRY(shape_count(num_axes, shape, &count, err));
  char buf[256];
  if (data_values(bp) != count)
    return crema_fail(err, CREMA_ERR_SHAPE, "blob of shape %s needs %zu values but has %zu",
                      shape_text(num_axes, shape, buf, sizeof buf), count, data_values(bp));
  size_t ndiff = diff_values(bp);
  int take_diff = with_diff && ndiff > 0;
  if (take_diff && ndiff != count)
    return crema_fail(err, CREMA_ERR_SHAPE, "blob of shape %s needs %zu diff values but has %zu",
                      shape_text(num_axes, shape, buf, sizeof buf), count, ndiff);
  CREMA_TRY(blob_reshape(b, num_axes, shape, err));
  copy_data(bp, b->data, count);
  if (take_diff) {
    CREMA_TRY(blob_ensure_diff(b, err));
    copy_diff(bp, b->diff, count);
  }
  return CREMA_OK;
}

crema_status blobproto_copy_data(const Caffe__BlobProto *bp, blob *b, crema_error *err) {
  if (data_values(bp) != b->count) {
    char buf[256];
    return crema_fail(err, CREMA_ERR_SHAPE, "blob '%s' of shape %s holds %zu values, the stored "
                      "one has %zu", b->name ? b->name : "",
                      blob_shape_string(b, buf, sizeof buf), b->count, data_values(bp));
  }
  copy_data(bp, b->data, b->count);
  return CREMA_OK;
}

crema_status blob_to_blobproto(const blob *b, int with_diff, Caffe__BlobProto **out,
                               crema_error *err) {
  *out = NULL;
  Caffe__BlobProto *bp = crema_malloc(sizeof *bp, err);
  if (!bp)
    return CREMA_ERR_NOMEM;
  caffe__blob_proto__init(bp);
  crema_status st = CREMA_OK;
  bp->shape = crema_malloc(sizeof *bp->shape, err);
  if (!bp->shape) {
    st = CREMA_ERR_NOMEM;
    goto done;
  }
  caffe__blob_shape__init(bp->shape);
  if (b->num_axes > 0) {
    bp->shape->dim = crema_calloc((size_t)b->num_axes, sizeof *bp->shape->dim, err);
    if (!bp->shape->dim) {
      st = CREMA_ERR_NOMEM;
      goto done;
    }
    for (int i = 0; i < b->num_axes; i++)
      bp->shape->dim[i] = b->shape[i];
    bp->shape->n_dim = (size_t)b->num_axes;
  }
  bp->data = crema_calloc(b->count, sizeof *bp->data, err);
  if (!bp->data) {
    st = CREMA_ERR_NOMEM;
    goto done;
  }
  bp->n_data = b->count;
  if (b->count > 0 && b->data)
    memcpy(bp->data, b->data, b->count * sizeof *bp->data);
  if (with_diff && b->diff) {
    bp->diff = crema_calloc(b->count, sizeof *bp->diff, err);
    if (!bp->diff) {
      st = CREMA_ERR_NOMEM;
      goto done;
    }
    bp->n_diff = b->count;
    if (b->count > 0)
      memcpy(bp->diff, b->diff, b->count * sizeof *bp->diff);
  }
done:
  if (st != CREMA_OK) {
    protobuf_c_message_free_unpacked(&bp->base, NULL);
    return st;
  }
  *out = bp;
  return CREMA_OK;
}

crema_status blob_read_file(const char *path, blob *b, int *has_diff, crema_error *err) {
  if (has_diff)
    *has_diff = 0;
  if (path_has_suffix(path, ".npy"))
    return npy_read(path, b, err);
  ProtobufCMessage *msg = NULL;
  CREMA_TRY(bin_read_file(path, &caffe__blob_proto__descriptor, &msg, err));
  Caffe__BlobProto *bp = (Caffe__BlobProto *)msg;
  crema_status st = blobproto_to_blob(bp, b, 1, err);
  if (st != CREMA_OK)
    crema_error_prefix(err, "%s: ", path);
  else if (has_diff)
    *has_diff = diff_values(bp) > 0;
  protobuf_c_message_free_unpacked(msg, NULL);
  return st;
}

/* ------------------------------------------------------------------------ */
/* NumPy .npy                                                                 */

typedef enum npy_type { NPY_F4, NPY_F8, NPY_I4, NPY_I8, NPY_U1 } npy_type;

typedef struct npy_header {
  npy_type type;
  int big_endian;
  size_t item_size;
  int fortran_order;
  int num_axes;
  int shape[BLOB_MAX_AXES];
  int seen_descr, seen_order, seen_shape;
} npy_header;

typedef struct npy_cursor {
  const char *p, *end;
} npy_cursor;

static void skip_space(npy_cursor *c) {
  while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
    c->p++;
}

static int accept_char(npy_cursor *c, char ch) {
  skip_space(c);
  if (c->p < c->end && *c->p == ch) {
    c->p++;
    return 1;
  }
  return 0;
}

/* A Python string literal in quotes; no escapes occur in .npy headers. */
static int read_quoted(npy_cursor *c, char *out, size_t size) {
  skip_space(c);
  if (c->p >= c->end || (*c->p != '\'' && *c->p != '"'))
    return 0;
  char quote = *c->p++;
  size_t n = 0;
  while (c->p < c->end && *c->p != quote) {
    if (n + 1 >= size)
      return 0;
    out[n++] = *c->p++;
  }
  if (c->p >= c->end)
    return 0;
  c->p++;
  out[n] = '\0';
  return 1;
}

static int read_word(npy_cursor *c, const char *word) {
  skip_space(c);
  size_t n = strlen(word);
  if ((size_t)(c->end - c->p) >= n && !memcmp(c->p, word, n)) {
    c->p += n;
    return 1;
  }
  return 0;
}

static int parse_descr(const char *d, npy_header *h) {
  char order = d[0];
  if (order != '<' && order != '>' && order != '|' && order != '=')
    return 0;
  h->big_endian = order == '>';
  const char *t = d + 1;
  if (!strcmp(t, "f4")) {
    h->type = NPY_F4;
    h->item_size = 4;
  } else if (!strcmp(t, "f8")) {
    h->type = NPY_F8;
    h->item_size = 8;
  } else if (!strcmp(t, "i4")) {
    h->type = NPY_I4;
    h->item_size = 4;
  } else if (!strcmp(t, "i8")) {
    h->type = NPY_I8;
    h->item_size = 8;
  } else if (!strcmp(t, "u1")) {
    h->type = NPY_U1;
    h->item_size = 1;
  } else {
    return 0;
  }
  return 1;
}

static int parse_shape_tuple(npy_cursor *c, npy_header *h) {
  if (!accept_char(c, '('))
    return 0;
  h->num_axes = 0;
  for (;;) {
    if (accept_char(c, ')'))
      return 1;
    skip_space(c);
    if (c->p >= c->end || !isdigit((unsigned char)*c->p))
      return 0;
    long long v = 0;
    while (c->p < c->end && isdigit((unsigned char)*c->p)) {
      v = v * 10 + (*c->p++ - '0');
      if (v > INT_MAX)
        return 0;
    }
    if (c->p < c->end && *c->p == 'L') /* Python 2 long literals */
      c->p++;
    if (h->num_axes >= BLOB_MAX_AXES)
      return 0;
    h->shape[h->num_axes++] = (int)v;
    if (!accept_char(c, ',')) {
      return accept_char(c, ')');
    }
  }
}

static crema_status parse_npy_dict(const char *text, size_t len, const char *path,
                                   npy_header *h, crema_error *err) {
  npy_cursor c = {text, text + len};
  if (!accept_char(&c, '{'))
    return crema_fail(err, CREMA_ERR_INVALID, "%s: .npy header is not a dictionary", path);
  for (;;) {
    if (accept_char(&c, '}'))
      break;
    char key[32];
    if (!read_quoted(&c, key, sizeof key) || !accept_char(&c, ':'))
      return crema_fail(err, CREMA_ERR_INVALID, "%s: malformed .npy header", path);
    if (!strcmp(key, "descr")) {
      char descr[32];
      if (!read_quoted(&c, descr, sizeof descr))
        return crema_fail(err, CREMA_ERR_INVALID, "%s: malformed 'descr' in .npy header", path);
      if (!parse_descr(descr, h))
        return crema_fail(err, CREMA_ERR_UNSUPPORTED,
                          "%s: .npy element type '%s' is not supported (expected <f4, <f8, "
                          "<i4, <i8 or |u1)", path, descr);
      h->seen_descr = 1;
    } else if (!strcmp(key, "fortran_order")) {
      if (read_word(&c, "False"))
        h->fortran_order = 0;
      else if (read_word(&c, "True"))
        h->fortran_order = 1;
      else
        return crema_fail(err, CREMA_ERR_INVALID, "%s: malformed 'fortran_order' in .npy header",
                          path);
      h->seen_order = 1;
    } else if (!strcmp(key, "shape")) {
      if (!parse_shape_tuple(&c, h))
        return crema_fail(err, CREMA_ERR_INVALID,
                          "%s: malformed 'shape' in .npy header (a tuple of at most %d sizes)",
                          path, BLOB_MAX_AXES);
      h->seen_shape = 1;
    } else {
      return crema_fail(err, CREMA_ERR_INVALID, "%s: unexpected key '%s' in .npy header", path,
                        key);
    }
    if (!accept_char(&c, ',')) {
      if (!accept_char(&c, '}'))
        return crema_fail(err, CREMA_ERR_INVALID, "%s: malformed .npy header", path);
      break;
    }
  }
  if (!h->seen_descr || !h->seen_order || !h->seen_shape)
    return crema_fail(err, CREMA_ERR_INVALID,
                      "%s: .npy header lacks one of 'descr', 'fortran_order', 'shape'", path);
  if (h->fortran_order)
    return crema_fail(err, CREMA_ERR_UNSUPPORTED,
                      "%s: Fortran-ordered .npy arrays are not supported (save with C order)",
                      path);
  return CREMA_OK;
}

static uint64_t load_uint(const unsigned char *p, size_t n, int big_endian) {
  uint64_t v = 0;
  for (size_t i = 0; i < n; i++) {
    size_t k = big_endian ? i : n - 1 - i;
    v = (v << 8) | p[k];
  }
  return v;
}

static float npy_value(const unsigned char *p, const npy_header *h) {
  uint64_t bits = load_uint(p, h->item_size, h->big_endian);
  switch (h->type) {
    case NPY_F4: {
      uint32_t u = (uint32_t)bits;
      float f;
      memcpy(&f, &u, sizeof f);
      return f;
    }
    case NPY_F8: {
      double d;
      memcpy(&d, &bits, sizeof d);
      return (float)d;
    }
    case NPY_I4:
      return (float)(int32_t)(uint32_t)bits;
    case NPY_I8:
      return (float)(int64_t)bits;
    case NPY_U1:
      return (float)bits;
  }
  return 0.f;
}

static crema_status npy_decode(const unsigned char *data, size_t size, const char *path,
                               blob *b, crema_error *err) {
  static const unsigned char magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
  if (size < 10 || memcmp(data, magic, sizeof magic) != 0)
    return crema_fail(err, CREMA_ERR_INVALID, "%s: not a .npy file (bad magic)", path);
  int major = data[6];
  size_t header_len, offset;
  if (major == 1) {
    header_len = (size_t)data[8] | (size_t)data[9] << 8;
    offset = 10;
  } else if (major == 2 || major == 3) {
    if (size < 12)
      return crema_fail(err, CREMA_ERR_INVALID, "%s: truncated .npy header", path);
    header_len = (size_t)data[8] | (size_t)data[9] << 8 | (size_t)data[10] << 16 |
                 (size_t)data[11] << 24;
    offset = 12;
  } else {
    return crema_fail(err, CREMA_ERR_UNSUPPORTED, "%s: .npy format version %d.%d is not "
                      "supported (1.0, 2.0 and 3.0 are)", path, major, data[7]);
  }
  if (header_len > size - offset)
    return crema_fail(err, CREMA_ERR_INVALID, "%s: truncated .npy header", path);
  npy_header h;
  memset(&h, 0, sizeof h);
  CREMA_TRY(parse_npy_dict((const char *)data + offset, header_len, path, &h, err));
  size_t count, bytes;
  CREMA_TRY(shape_count(h.num_axes, h.shape, &count, err));
  if (!size_mul(count, h.item_size, &bytes))
    return crema_fail(err, CREMA_ERR_INVALID, "%s: .npy array size overflows", path);
  size_t body = size - offset - header_len;
  if (body != bytes) {
    char buf[256];
    return crema_fail(err, CREMA_ERR_INVALID, "%s: .npy array of shape %s needs %zu bytes of "
                      "data but the file has %zu", path,
                      shape_text(h.num_axes, h.shape, buf, sizeof buf), bytes, body);
  }
  CREMA_TRY(blob_reshape(b, h.num_axes, h.shape, err));
  const unsigned char *p = data + offset + header_len;
  for (size_t i = 0; i < count; i++)
    b->data[i] = npy_value(p + i * h.item_size, &h);
  return CREMA_OK;
}

crema_status npy_read(const char *path, blob *b, crema_error *err) {
  file_view v;
  CREMA_TRY(file_view_open(path, SIZE_MAX, &v, err));
  crema_status st = npy_decode(v.data, v.size, path, b, err);
  file_view_close(&v);
  return st;
}

static void store_le32(unsigned char *p, uint32_t v) {
  for (int i = 0; i < 4; i++)
    p[i] = (unsigned char)(v >> (8 * i));
}

crema_status npy_write(const char *path, const blob *b, int use_diff, crema_error *err) {
  const float *values = use_diff ? b->diff : b->data;
  if (!values && b->count > 0)
    return crema_fail(err, CREMA_ERR_INVALID, "%s: blob '%s' has no %s to write", path,
                      b->name ? b->name : "", use_diff ? "diff" : "data");
  char dict[64 + 12 * BLOB_MAX_AXES];
  int n = snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (");
  for (int i = 0; i < b->num_axes; i++)
    n += snprintf(dict + n, sizeof dict - (size_t)n, "%d, ", b->shape[i]);
  if (b->num_axes > 0)
    n -= b->num_axes == 1 ? 1 : 2; /* "(5,)" keeps its comma, "(2, 3)" does not */
  n += snprintf(dict + n, sizeof dict - (size_t)n, "), }");
  /* The header (magic, version, length, dict, padding, newline) fills a
   * multiple of 64 bytes, as NumPy writes it. */
  size_t prefix = 10;
  size_t header = (size_t)n + 1;
  size_t total_header = (prefix + header + 63) / 64 * 64;
  size_t data_bytes = b->count * sizeof(float);
  size_t size = total_header + data_bytes;
  unsigned char *buf = crema_malloc(size, err);
  if (!buf)
    return CREMA_ERR_NOMEM;
  static const unsigned char magic[8] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0};
  memcpy(buf, magic, sizeof magic);
  size_t header_len = total_header - prefix;
  buf[8] = (unsigned char)(header_len & 0xff);
  buf[9] = (unsigned char)(header_len >> 8);
  memcpy(buf + prefix, dict, (size_t)n);
  memset(buf + prefix + n, ' ', header_len - (size_t)n - 1);
  buf[total_header - 1] = '\n';
  unsigned char *p = buf + total_header;
  for (size_t i = 0; i < b->count; i++) {
    uint32_t u;
    memcpy(&u, &values[i], sizeof u);
    store_le32(p + 4 * i, u);
  }
  crema_status st = file_write_atomic(path, buf, size, err);
  free(buf);
  return st;
}
