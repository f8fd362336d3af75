/* libFuzzer harness for binary NetParameter files and the legacy upgrades.
 *
 * Not part of `make check`.  Build and run from a configured build tree:
 *   make fuzz-binary
 *   ./fuzz_binary -max_total_time=300 -close_fd_mask=2 \
 *       $(srcdir)/tests/fuzz/corpus_binary
 * Any bytes that decode as a NetParameter must upgrade (or fail with a
 * message), re-encode, and have every parameter blob either convert to a blob
 * or be refused; nothing may crash or leak. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "caffe.pb-c.h"
#include "core/blob.h"
#include "io/blobproto.h"
#include "io/upgrade.h"

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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  ProtobufCMessage *msg = protobuf_c_message_unpack(&caffe__net_parameter__descriptor, NULL,
                                                    size, data);
  if (!msg)
    return 0;
  Caffe__NetParameter *net = (Caffe__NetParameter *)msg;
  crema_error err;
  memset(&err, 0, sizeof err);
  if (upgrade_net(net, "fuzz.caffemodel", NULL, &err) == CREMA_OK) {
    convert_blobs(net);
    repack(msg);
  } else if (err.message[0] == '\0') {
    abort(); /* every failure must say why */
  }
  protobuf_c_message_free_unpacked(msg, NULL);
  return 0;
}
