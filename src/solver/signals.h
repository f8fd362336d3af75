/* SIGINT / SIGHUP during training, as Caffe's -sigint_effect and
 * -sighup_effect: each signal maps to an action (stop, snapshot or none)
 * that the solver polls once per iteration. */
#ifndef CREMA_SOLVER_SIGNALS_H
#define CREMA_SOLVER_SIGNALS_H

#include <signal.h>
#include "core/error.h"

typedef enum solver_action {
  SOLVER_ACTION_NONE,
  SOLVER_ACTION_STOP,
  SOLVER_ACTION_SNAPSHOT
} solver_action;

/* "stop", "snapshot" or "none". */
crema_status solver_action_parse(const char *name, solver_action *out, crema_error *err);

typedef struct signal_guard {
  solver_action on_sigint;
  solver_action on_sighup;
  struct sigaction old_sigint;
  struct sigaction old_sighup;
  int installed;
} signal_guard;

/* Installs handlers for SIGINT and SIGHUP (only one guard at a time). */
crema_status signal_guard_install(signal_guard *g, solver_action on_sigint,
                                  solver_action on_sighup, crema_error *err);
/* The action requested since the last poll (SIGHUP first, as Caffe), and
 * forgets that signal.  Matches the solver's poll callback signature. */
solver_action signal_guard_poll(void *guard);
/* Restores the previous handlers. */
void signal_guard_remove(signal_guard *g);

#endif
