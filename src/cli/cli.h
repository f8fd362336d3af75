/* The crema command and its subcommands.  Each subcommand lives in its own
 * cmd_<name>.c and is listed in main.c's table. */
#ifndef CREMA_CLI_CLI_H
#define CREMA_CLI_CLI_H

#include "core/error.h"

/* argv[0] is the subcommand name.  Returns the process exit status. */
typedef int (*cli_run_fn)(int argc, char **argv);

typedef struct cli_command {
  const char *name;
  const char *summary;
  cli_run_fn run;
} cli_command;

/* Prints "crema NAME: message" on one line to stderr and returns 1. */
int cli_report(const char *command, const crema_error *err);

int cmd_upgrade_net(int argc, char **argv);
int cmd_upgrade_solver(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_test(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_time(int argc, char **argv);
int cmd_init(int argc, char **argv);

int cmd_convert_imageset(int argc, char **argv);
int cmd_compute_image_mean(int argc, char **argv);

int cmd_lesion_db(int argc, char **argv);
int cmd_segment(int argc, char **argv);
int cmd_synth(int argc, char **argv);
int cmd_evaluate(int argc, char **argv);

int cmd_extract_features(int argc, char **argv);
int cmd_retrieve(int argc, char **argv);

#endif
