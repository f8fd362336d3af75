/* libFuzzer harness for binary NetParameter files (.caffemodel, binary
 * net definitions) and the legacy upgrades.  Any bytes that decode as a
 * NetParameter must upgrade (or fail with a message), re-encode, and have
 * every parameter blob either convert to a blob or be refused; the same
 * bytes as a file go through the wire-format weights reader that loading
 * weights uses.  Nothing may crash or leak. */
#include "config.h"

#include "fuzz.h"

#include "caffe.pb-c.h"
#include "core/blob.h"
#include "io/blobproto.h"
#include "io/upgrade.h"
#include "io/weights_source.h"

static void convert_blobs(const Caffe__NetParameter *net) {
  crema_error err;
  blob *b = blob_create("fuzz", &err);
  if (!b)
    return;
  b->wants_diff = 0;
  for (size_t i = 0; i < net->n_layer; i++)
    for (size_t j = 0; j < net->layer[i]->n_blobs; j++)
      (void)blobproto_to_blob(net->layer[i]->blobs[j], b, 1, &err);
  blob_free(b);
}

static void repack(const ProtobufCMessage *m) {
  size_t len = protobuf_c_message_get_packed_size(m);
  uint8_t *buf = malloc(len ? len : 1);
  if (!buf)
    return;
  size_t packed = protobuf_c_message_pack(m, buf);
  if (packed != len)
    abort();
  /* protobuf-c keeps an unknown field numbered 0 on unpack but refuses it
   * when reading back its own encoding, so a failed re-read is no error. */
  ProtobufCMessage *again = protobuf_c_message_unpack(m->descriptor, NULL, len, buf);
  if (again)
    protobuf_c_message_free_unpacked(again, NULL);
  free(buf);
}

/* What net_open does with a weights file: every blob's header, then its
 * values into a buffer of the counted size. */
static void read_weights(const uint8_t *data, size_t size) {
  crema_error err;
  weights_source *ws = NULL;
  crema_status st =
      weights_source_open(fuzz_write_file(data, size, ".caffemodel"), CREMA_LOG_NONE, &ws, &err);
  fuzz_expect_message(st, &err);
  if (st != CREMA_OK)
    return;
  for (size_t k = 0; k < weights_source_num_layers(ws); k++) {
    (void)weights_source_layer_name(ws, k);
    for (size_t j = 0; j < weights_source_num_blobs(ws, k); j++) {
      const Caffe__BlobProto *h;
      st = weights_source_blob(ws, k, j, &h, &err);
      fuzz_expect_message(st, &err);
      if (st != CREMA_OK)
        continue;
      size_t n = h->n_double_data ? h->n_double_data : h->n_data;
      if (n > ((size_t)1 << 26))
        continue; /* no more than the file holds, but a slow copy */
      float *dst = malloc((n ? n : 1) * sizeof *dst);
      if (dst)
        weights_source_copy(ws, 0, dst);
      free(dst);
    }
  }
  weights_source_close(ws);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  read_weights(data, size);
  ProtobufCMessage *msg = protobuf_c_message_unpack(&caffe__net_parameter__descriptor, NULL,
                                                    size, data);
  if (!msg)
    return 0;
  Caffe__NetParameter *net = (Caffe__NetParameter *)msg;
  crema_error err;
  memset(&err, 0, sizeof err);
  if (upgrade_net(net, "fuzz.caffemodel", CREMA_LOG_NONE, NULL, &err) == CREMA_OK) {
    convert_blobs(net);
    repack(msg);
  } else if (err.message[0] == '\0') {
    abort(); /* every failure must say why */
  }
  protobuf_c_message_free_unpacked(msg, NULL);
  return 0;
}
