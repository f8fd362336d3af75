/* The runtime settings (crema_options, declared in crema.h) as the layers
 * below the API use them.  A net keeps its copy in its layer context
 * (layers/layer.h), a solver its own; nothing reads the environment but
 * crema_options_from_env. */
#ifndef CREMA_CORE_OPTIONS_H
#define CREMA_CORE_OPTIONS_H

#include "crema.h"

/* The threads opts asks for: its count, or one per online CPU. */
int options_threads(const crema_options *opts);

/* The settings that work deep below takes from the calling thread rather
 * than from its arguments: the team size (core/parallel.h) and the cap on
 * single allocations (core/memcap.h).  options_enter sets them from opts
 * (NULL: the defaults) around a piece of work and returns what to restore:
 *
 *     const options_scope scope = options_enter(&opts);
 *     ...
 *     options_leave(scope);
 */
typedef struct options_scope {
  int threads;
  size_t max_allocation;
} options_scope;

options_scope options_enter(const crema_options *opts);
void options_leave(options_scope saved);

#endif
