/* A small fork-join team for the convolution kernels.
 *
 * Threads are started per call and joined before it returns, so there is no
 * pool to own or tear down.  Waiting threads spin briefly and then sleep, so
 * the team never keeps a core busy once its work is done: on a 2-core
 * machine a spinning OpenMP runtime next to OpenBLAS's threads made
 * convolution several times slower. */
#ifndef CREMA_MATH_PARALLEL_H
#define CREMA_MATH_PARALLEL_H

#include <stddef.h>

typedef struct par_team par_team;

/* Body run by every member: tid in [0, nthreads). */
typedef void (*par_body)(par_team *team, int tid, int nthreads, void *ctx);

/* Threads crema uses: OPENBLAS_NUM_THREADS, else OMP_NUM_THREADS (as
 * OpenBLAS reads them), else the online CPUs. */
int par_threads(void);

/* Runs OpenBLAS on the calling thread only; crema splits its own BLAS
 * calls over its teams (math/blas.c).  After every call OpenBLAS's idle
 * workers spin for about 0.1 s, yielding the core in a loop: next to a
 * team of ours on 2 cores that cost a quarter of VGG-16's forward time. */
void par_blas_one_thread(void);

/* Runs body on up to nthreads threads (the caller is member 0).  When a
 * thread cannot be started the team is simply smaller: body must split its
 * work by the nthreads it is given. */
void par_run(int nthreads, par_body body, void *ctx);

/* Waits until every member of the team reached this point. */
void par_sync(par_team *team);

/* Member tid's share [*lo, *hi) of n items split evenly. */
void par_split(long n, int tid, int nthreads, long *lo, long *hi);

/* memset(p, 0, bytes), split over the team when large.  The first touch of
 * fresh memory is page faults, and in a virtual machine the host's too:
 * loading VGG-16's weights spent most of its time there, and faults on
 * two cores go nearly twice as fast. */
void par_zero(void *p, size_t bytes);

#endif
