/* Data-parallel training's communication: a group of ranks that sum their
 * gradients and receive rank 0's state, behind one small interface with two
 * backends.  threads.c runs the ranks as threads of one process (the unit
 * tests, everywhere); mpi.c runs them as MPI processes (`./configure
 * --with-mpi`, under mpirun).  The solver sees only this header.
 *
 * Every call is collective: each rank of the group makes the same calls in
 * the same order.  A rank that fails calls dist_abort, so that the others
 * do not wait for it forever: with threads their pending and later calls
 * fail with its message; with MPI the whole job ends. */
#ifndef CREMA_DIST_DIST_H
#define CREMA_DIST_DIST_H

#include <stddef.h>

#include "core/error.h"

typedef struct dist dist;

typedef struct dist_ops {
  const char *name;
  crema_status (*allreduce_sum)(dist *d, float *buf, size_t n, crema_error *err);
  crema_status (*broadcast)(dist *d, void *buf, size_t bytes, crema_error *err);
  void (*abort)(dist *d, const char *message);
  void (*free)(dist *d);
} dist_ops;

struct dist {
  const dist_ops *ops;
  int rank;       /* 0 .. size - 1 */
  int size;
  void *impl;     /* the backend's */
};

/* buf[0..n) becomes the sum over ranks of every rank's buf, with the same
 * bits on every rank (each element is summed once, in one order, and the
 * result copied), so that identical updates keep the weights identical. */
crema_status dist_allreduce_sum(dist *d, float *buf, size_t n, crema_error *err);
/* bytes of rank 0's buf are copied into every other rank's buf. */
crema_status dist_broadcast(dist *d, void *buf, size_t bytes, crema_error *err);
/* A rank that failed tells the others (see above); message says why. */
void dist_abort(dist *d, const char *message);
/* Leaves the group (MPI: finalises).  NULL is ignored. */
void dist_free(dist *d);

/* A group of size ranks in this process: comms[r] is rank r's handle, to
 * be used by one thread only and freed by it (the group goes with the
 * last). */
crema_status dist_threads_create(int size, dist **comms, crema_error *err);

/* Whether this process was started by an MPI launcher (mpirun, mpiexec:
 * Open MPI's or MPICH's environment variables), and the number of ranks it
 * announces (1 when it is not). */
int dist_launched_size(void);

#ifdef HAVE_MPI
/* Initialises MPI and returns the world's group.  Call once per process. */
crema_status dist_mpi_open(dist **out, crema_error *err);
#endif

#endif
