/* The one clock crema measures durations with: monotonic seconds, for
 * timing passes, ETAs and rates (the solver's display, crema time, the
 * progress lines, the benchmark). */
#ifndef CREMA_CORE_CLOCK_H
#define CREMA_CORE_CLOCK_H

/* Seconds on CLOCK_MONOTONIC: only differences mean anything. */
double now_seconds(void);

#endif
