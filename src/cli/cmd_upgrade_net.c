/* crema upgrade-net: Caffe's upgrade_net_proto_text and
 * upgrade_net_proto_binary in one command. */
#include "config.h"

#include <stdio.h>

#include "caffe.pb-c.h"
#include "cli/cli.h"
#include "cli/flags.h"
#include "core/log.h"
#include "io/binary.h"
#include "io/file.h"
#include "io/text.h"
#include "io/upgrade.h"

static const char usage[] = "crema upgrade-net IN OUT";
static const char description[] =
    "Rewrites a network definition or trained model that uses a legacy Caffe layout (V0 or V1\n"
    "layers, transformation fields in data layers, input/input_dim fields, BatchNorm layers\n"
    "with 3 param specs) in the current layout, as Caffe's upgrade_net_proto_text and\n"
    "upgrade_net_proto_binary do.  Files ending in .caffemodel or .binaryproto are binary,\n"
    "others text; IN and OUT may differ.  OUT is replaced atomically.";

static int is_binary_path(const char *path) {
  return path_has_suffix(path, ".caffemodel") || path_has_suffix(path, ".binaryproto");
}

static crema_status read_net(const char *path, Caffe__NetParameter **out, crema_error *err) {
  ProtobufCMessage *msg = NULL;
  if (is_binary_path(path))
    CREMA_TRY(bin_read_file(path, &caffe__net_parameter__descriptor, &msg, err));
  else
    CREMA_TRY(txt_parse_file(path, &caffe__net_parameter__descriptor, &msg, err));
  *out = (Caffe__NetParameter *)msg;
  return CREMA_OK;
}

static crema_status upgrade_file(const char *in, const char *out, crema_error *err) {
  Caffe__NetParameter *net = NULL;
  CREMA_TRY(read_net(in, &net, err));
  int upgraded = 0;
  crema_status st = upgrade_net(net, in, CREMA_LOG_INFO, &upgraded, err);
  if (st == CREMA_OK) {
    if (!upgraded)
      LOG_ERROR("File already in latest proto format: %s", in);
    int binary = is_binary_path(out);
    st = binary ? bin_write_file(out, &net->base, err) : txt_write_file(out, &net->base, err);
    if (st == CREMA_OK)
      LOG_INFO("Wrote upgraded NetParameter %s proto to %s", binary ? "binary" : "text", out);
  }
  protobuf_c_message_free_unpacked(&net->base, NULL);
  return st;
}

int cmd_upgrade_net(int argc, char **argv) {
  crema_error err = {CREMA_OK, ""};
  flag_result res;
  if (flags_parse(argc, argv, NULL, 0, &res, &err) != CREMA_OK)
    return cli_report("upgrade-net", &err);
  int rc = 0;
  if (res.help) {
    flags_print_usage(stdout, usage, description, NULL, 0);
  } else if (res.npositional != 2) {
    fprintf(stderr, "crema upgrade-net: expected 2 arguments (IN OUT), got %d; see --help\n",
            res.npositional);
    rc = 2;
  } else if (upgrade_file(res.positional[0], res.positional[1], &err) != CREMA_OK) {
    rc = cli_report("upgrade-net", &err);
  }
  flags_result_free(&res);
  return rc;
}
