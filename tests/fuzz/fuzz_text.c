/* libFuzzer harness for the text format parser and printer.  The first
 * input byte picks the message type, the rest is the text.  Any
 * text that parses must print, re-parse to an equal message, survive a
 * binary round trip and print the same again. */
#include "config.h"

#include "fuzz.h"

#include "caffe.pb-c.h"
#include "io/pbutil.h"
#include "io/text.h"

static const ProtobufCMessageDescriptor *pick_type(uint8_t selector) {
  switch (selector % 4) {
    case 0: return &caffe__net_parameter__descriptor;
    case 1: return &caffe__solver_parameter__descriptor;
    case 2: return &caffe__datum__descriptor;
    default: return &caffe__blob_proto__descriptor;
  }
}

static void check_round_trip(ProtobufCMessage *m) {
  crema_error err;
  char *text = NULL, *text2 = NULL;
  size_t len, len2;
  if (txt_print(m, &text, &len, &err) != CREMA_OK)
    abort();
  ProtobufCMessage *again = NULL;
  if (txt_parse(text, len, "printed", m->descriptor, &again, &err) != CREMA_OK)
    abort();
  if (!pb_message_equal(m, again))
    abort();
  ProtobufCMessage *copy = pb_message_clone(m, &err);
  if (copy == NULL || !pb_message_equal(m, copy))
    abort();
  if (txt_print(copy, &text2, &len2, &err) != CREMA_OK)
    abort();
  if (len != len2 || memcmp(text, text2, len) != 0)
    abort();
  free(text);
  free(text2);
  protobuf_c_message_free_unpacked(again, NULL);
  protobuf_c_message_free_unpacked(copy, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0)
    return 0;
  const ProtobufCMessageDescriptor *desc = pick_type(data[0]);
  /* An exact-size copy, so reading past the text is caught by ASan. */
  size_t n = size - 1;
  char *text = malloc(n ? n : 1);
  if (text == NULL)
    return 0;
  memcpy(text, data + 1, n);
  crema_error err;
  ProtobufCMessage *m = NULL;
  if (txt_parse(text, n, "fuzz", desc, &m, &err) == CREMA_OK) {
    check_round_trip(m);
    protobuf_c_message_free_unpacked(m, NULL);
  } else if (m != NULL || strncmp(err.message, "fuzz:", 5) != 0) {
    abort(); /* failures leave no message and always name a position */
  }
  free(text);
  return 0;
}
