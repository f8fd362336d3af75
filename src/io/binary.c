#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "io/binary.h"
#include "io/file.h"

/* "caffe.NetParameter" -> "NetParameter": the name users know. */
static const char *short_message_name(const ProtobufCMessageDescriptor *desc) {
  return desc->short_name ? desc->short_name : desc->name;
}

/* What a user calls the file: a NetParameter is a model (weights). */
static const char *file_kind(const ProtobufCMessageDescriptor *desc) {
  return strcmp(short_message_name(desc), "NetParameter") ? short_message_name(desc) : "model";
}

crema_status bin_read_file(const char *path, const ProtobufCMessageDescriptor *desc,
                           ProtobufCMessage **out, crema_error *err) {
  *out = NULL;
  file_view v;
  CREMA_TRY(file_view_open(path, BIN_MAX_FILE_SIZE, &v, err));
  if (v.size == 0) {
    file_view_close(&v);
    return crema_fail(err, CREMA_ERR_INVALID, "%s: empty file, not a Caffe binary %s", path,
                      file_kind(desc));
  }
  ProtobufCMessage *msg = protobuf_c_message_unpack(desc, NULL, v.size, v.data);
  file_view_close(&v);
  if (!msg)
    return crema_fail(err, CREMA_ERR_INVALID,
                      "%s: not a Caffe binary %s (truncated or corrupt)", path, file_kind(desc));
  *out = msg;
  return CREMA_OK;
}

crema_status bin_write_file(const char *path, const ProtobufCMessage *msg, crema_error *err) {
  size_t len = protobuf_c_message_get_packed_size(msg);
  if (len > BIN_MAX_FILE_SIZE)
    return crema_fail(err, CREMA_ERR_INVALID,
                      "%s: the %s would take %zu bytes, more than protobuf's 2 GiB limit", path,
                      short_message_name(msg->descriptor), len);
  unsigned char *buf = crema_malloc(len, err);
  if (!buf)
    return CREMA_ERR_NOMEM;
  size_t packed = protobuf_c_message_pack(msg, buf);
  crema_status st = CREMA_OK;
  if (packed != len)
    st = crema_fail(err, CREMA_ERR_INVALID, "%s: the %s could not be encoded", path,
                    short_message_name(msg->descriptor));
  else
    st = file_write_atomic(path, buf, len, err);
  free(buf);
  return st;
}
