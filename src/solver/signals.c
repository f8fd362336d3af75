#include "config.h"

#include <string.h>

#include "solver/signals.h"

/* The one piece of global mutable state in crema: a signal handler cannot
 * be given a context pointer, and the only thing it may safely do is set a
 * volatile sig_atomic_t.  Everything else (which action a signal means,
 * what to do about it) lives in the caller's signal_guard and is acted on
 * outside the handler when the solver polls. */
static volatile sig_atomic_t got_sigint;
static volatile sig_atomic_t got_sighup;

static void on_signal(int sig) {
  if (sig == SIGINT)
    got_sigint = 1;
  else if (sig == SIGHUP)
    got_sighup = 1;
}

crema_status solver_action_parse(const char *name, solver_action *out, crema_error *err) {
  if (name && !strcmp(name, "stop"))
    *out = SOLVER_ACTION_STOP;
  else if (name && !strcmp(name, "snapshot"))
    *out = SOLVER_ACTION_SNAPSHOT;
  else if (name && !strcmp(name, "none"))
    *out = SOLVER_ACTION_NONE;
  else
    return crema_fail(err, CREMA_ERR_INVALID,
                      "invalid signal effect '%s' (expected snapshot, stop or none)",
                      name ? name : "");
  return CREMA_OK;
}

crema_status signal_guard_install(signal_guard *g, solver_action on_sigint,
                                  solver_action on_sighup, crema_error *err) {
  memset(g, 0, sizeof *g);
  g->on_sigint = on_sigint;
  g->on_sighup = on_sighup;
  got_sigint = 0;
  got_sighup = 0;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  /* Restart interrupted reads and writes: the solver reacts at its next
   * poll, not by failing the system call it happened to be in. */
  sa.sa_flags = SA_RESTART;
  if (sigaction(SIGINT, &sa, &g->old_sigint) != 0)
    return crema_fail(err, CREMA_ERR_IO, "cannot install the SIGINT handler");
  if (sigaction(SIGHUP, &sa, &g->old_sighup) != 0) {
    sigaction(SIGINT, &g->old_sigint, NULL);
    return crema_fail(err, CREMA_ERR_IO, "cannot install the SIGHUP handler");
  }
  g->installed = 1;
  return CREMA_OK;
}

solver_action signal_guard_poll(void *guard) {
  signal_guard *g = guard;
  if (got_sighup) {
    got_sighup = 0;
    return g->on_sighup;
  }
  if (got_sigint) {
    got_sigint = 0;
    return g->on_sigint;
  }
  return SOLVER_ACTION_NONE;
}

void signal_guard_remove(signal_guard *g) {
  if (!g->installed)
    return;
  sigaction(SIGINT, &g->old_sigint, NULL);
  sigaction(SIGHUP, &g->old_sighup, NULL);
  g->installed = 0;
}
