/* What the public API's parts share: the net handle (graph/api.c), which
 * the solver's API (solver/api.c) also hands out for the nets it owns. */
#ifndef CREMA_GRAPH_API_H
#define CREMA_GRAPH_API_H

#include "crema.h"
#include "graph/net.h"

struct crema_net {
  net *n;
  int owned; /* 0 for a solver's nets: the solver frees them */
};

/* A handle on n; crema_net_close frees n only when owned. */
crema_status api_net_wrap(net *n, int owned, crema_net **out, crema_error *err);

#endif
