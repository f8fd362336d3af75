/* Steps shared by several subcommands: flag parsing with --help, the
 * --phase flag and the progress line (nets open through graph/weights.h's
 * net_open). */
#ifndef CREMA_CLI_COMMON_H
#define CREMA_CLI_COMMON_H

#include "caffe.pb-c.h"
#include "cli/flags.h"
#include "core/error.h"
#include "graph/net.h"

/* Parses the flags of `crema NAME`, which takes no positional argument.
 * Returns 1 when the command should run; else 0 with *exit_code set: 0 once
 * --help printed the usage, 1 once an error was reported. */
int cli_parse_flags(const char *name, int argc, char **argv, const flag_spec *specs, int nspecs,
                    const char *usage, const char *description, int *exit_code);

/* net_options_init with the environment's runtime options
 * (crema_options_from_env: CREMA_CONV, CREMA_SIMD, OPENBLAS_NUM_THREADS,
 * ...), the commands' defaults. */
void cli_net_options(net_options *o, Caffe__Phase phase);

/* "train" or "test", in any case. */
crema_status cli_parse_phase(const char *name, Caffe__Phase *phase, crema_error *err);

/* The one progress display of the commands, a line on stderr redrawn in
 * place (only when stderr is a terminal: the caller checks):
 *     crema CMD: [#####.....] 12/40 (30%), 2.50 UNIT/s, ETA 0:00:11
 * Rate and ETA count from `start_pos' at `start' (now_seconds), so a
 * resumed run's rate is its own. */
typedef struct cli_progress {
  const char *command; /* "train" */
  const char *unit;    /* "iterations" */
  double start;
  long start_pos;
} cli_progress;

void cli_progress_show(const cli_progress *p, long pos, long total);
/* Blanks the line, for a message to print in its place. */
void cli_progress_clear(void);

#endif
