/* crema upgrade-solver: Caffe's upgrade_solver_proto_text. */
#include "config.h"

#include <stdio.h>

#include "caffe.pb-c.h"
#include "cli/cli.h"
#include "cli/flags.h"
#include "core/log.h"
#include "io/text.h"
#include "io/upgrade.h"

static const char usage[] = "crema upgrade-solver IN OUT";
static const char description[] =
    "Rewrites a solver definition that uses the legacy solver_type enum with the type string\n"
    "instead, as Caffe's upgrade_solver_proto_text does.  OUT is replaced atomically.";

static crema_status upgrade_file(const char *in, const char *out, crema_error *err) {
  ProtobufCMessage *msg = NULL;
  CREMA_TRY(txt_parse_file(in, &caffe__solver_parameter__descriptor, &msg, err));
  int upgraded = 0;
  crema_status st = upgrade_solver((Caffe__SolverParameter *)msg, in, CREMA_LOG_INFO,
                                   &upgraded, err);
  if (st == CREMA_OK) {
    if (!upgraded)
      LOG_ERROR("File already in latest proto format: %s", in);
    st = txt_write_file(out, msg, err);
    if (st == CREMA_OK)
      LOG_INFO("Wrote upgraded SolverParameter text proto to %s", out);
  }
  protobuf_c_message_free_unpacked(msg, NULL);
  return st;
}

int cmd_upgrade_solver(int argc, char **argv) {
  crema_error err = {CREMA_OK, ""};
  flag_result res;
  if (flags_parse(argc, argv, NULL, 0, &res, &err) != CREMA_OK)
    return cli_report("upgrade-solver", &err);
  int rc = 0;
  if (res.help) {
    flags_print_usage(stdout, usage, description, NULL, 0);
  } else if (res.npositional != 2) {
    fprintf(stderr, "crema upgrade-solver: expected 2 arguments (IN OUT), got %d; see --help\n",
            res.npositional);
    rc = 2;
  } else if (upgrade_file(res.positional[0], res.positional[1], &err) != CREMA_OK) {
    rc = cli_report("upgrade-solver", &err);
  }
  flags_result_free(&res);
  return rc;
}
