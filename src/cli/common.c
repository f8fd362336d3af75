#include "config.h"

#include <stdio.h>
#include <strings.h>

#include "cli/cli.h"
#include "cli/common.h"
#include "core/clock.h"
#include "graph/weights.h"
#include "io/upgrade.h"

int cli_parse_flags(const char *name, int argc, char **argv, const flag_spec *specs, int nspecs,
                    const char *usage, const char *description, int *exit_code) {
  crema_error err = {0};
  flag_result res;
  if (flags_parse(argc, argv, specs, nspecs, &res, &err) != CREMA_OK) {
    *exit_code = cli_report(name, &err);
    return 0;
  }
  const int help = res.help, extra = res.npositional;
  flags_result_free(&res);
  if (help) {
    flags_print_usage(stdout, usage, description, specs, nspecs);
    *exit_code = 0;
    return 0;
  }
  if (extra) {
    crema_fail(&err, CREMA_ERR_INVALID, "unexpected argument (see --help)");
    *exit_code = cli_report(name, &err);
    return 0;
  }
  return 1;
}

crema_status cli_parse_phase(const char *name, Caffe__Phase *phase, crema_error *err) {
  if (!strcasecmp(name, "train"))
    *phase = CAFFE__PHASE__TRAIN;
  else if (!strcasecmp(name, "test"))
    *phase = CAFFE__PHASE__TEST;
  else
    return crema_fail(err, CREMA_ERR_INVALID, "--phase must be train or test, not '%s'", name);
  return CREMA_OK;
}

void cli_progress_show(const cli_progress *p, long pos, long total) {
  enum { WIDTH = 30 };
  if (total <= 0)
    return;
  const double elapsed = now_seconds() - p->start;
  const long done = pos - p->start_pos;
  const double rate = elapsed > 0 && done > 0 ? done / elapsed : 0;
  const double eta = rate > 0 ? (total - pos) / rate : 0;
  const long secs = eta > 0 ? (long)(eta + 0.5) : 0;
  const int filled = pos >= total ? WIDTH : (int)((double)WIDTH * pos / total);
  char bar[WIDTH + 1];
  for (int i = 0; i < WIDTH; i++)
    bar[i] = i < filled ? '#' : '.';
  bar[WIDTH] = '\0';
  /* Ends with '\r' too, so that the next log line overwrites it. */
  fprintf(stderr, "\rcrema %s: [%s] %ld/%ld (%.0f%%), %.2f %s/s, ETA %ld:%02ld:%02ld \r",
          p->command, bar, pos, total, 100.0 * pos / total, rate, p->unit, secs / 3600,
          secs / 60 % 60, secs % 60);
  fflush(stderr);
}

void cli_progress_clear(void) {
  fprintf(stderr, "\r%*s\r", 79, "");
}

void cli_net_options(net_options *o, Caffe__Phase phase) {
  net_options_init(o, phase);
  crema_options_from_env(&o->run);
}
