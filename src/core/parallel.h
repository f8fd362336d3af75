/* A small fork-join team for the kernels.  It lives in core so that
 * everything above (blobs, math, layers, graph) can split work over it.
 *
 * Each thread that starts a job owns its workers: they are started on its
 * first parallel job, kept between jobs and joined when it exits (see
 * core/parallel.c).  Waiting members poll briefly and then sleep, so the
 * team never keeps a core busy for long once its work is done: on a 2-core
 * machine a spinning OpenMP runtime next to OpenBLAS's threads made
 * convolution several times slower. */
#ifndef CREMA_MATH_PARALLEL_H
#define CREMA_MATH_PARALLEL_H

#include <stdatomic.h>
#include <stddef.h>

/* Members a team has at most. */
#define PAR_MAX_THREADS 64

typedef struct par_team par_team;

/* Body run by every member: tid in [0, nthreads). */
typedef void (*par_body)(par_team *team, int tid, int nthreads, void *ctx);

/* The online CPUs (at most PAR_MAX_THREADS). */
int par_cpu_threads(void);

/* Threads the calling thread's jobs use: those of the innermost
 * par_threads_enter still open on this thread, else par_cpu_threads.  The
 * count comes from the caller's crema_options (core/options.h), set around
 * each piece of work:
 *
 *     const options_scope scope = options_enter(&opts);
 *     ... par_for, par_run(par_threads(), ...) ...
 *     options_leave(scope);
 */
int par_threads(void);
/* Sets the calling thread's team size to n (0: the CPUs) and returns the
 * previous setting for par_threads_leave. */
int par_threads_enter(int n);
void par_threads_leave(int saved);

/* Runs body on up to nthreads threads (the caller is member 0).  When a
 * thread cannot be started the team is simply smaller: body must split its
 * work by the nthreads it is given. */
void par_run(int nthreads, par_body body, void *ctx);

/* Waits until every member of the team reached this point. */
void par_sync(par_team *team);

/* Part tid's share [*lo, *hi) of n items split evenly in nthreads parts
 * (a member's share, or a chunk's). */
void par_split(long n, int tid, int nthreads, long *lo, long *hi);

/* Items [0, n) handed out one at a time to whichever member asks first.
 * On a shared host one core often runs slower for a while (the other
 * tenants' turn), and with fixed shares the whole team would wait for it.
 * Work dealt this way must not depend on which member does an item, so
 * that results stay the same from run to run. */
typedef struct par_dealer {
  atomic_long next;
  long n;
} par_dealer;

/* Sets d up to deal items [0, n).  Only while no member is dealing from it:
 * before the job starts, or between two par_sync. */
void par_dealer_reset(par_dealer *d, long n);

/* The next item, or -1 once all are dealt. */
long par_deal(par_dealer *d);

/* par_sync, then member 0 sets d up to deal [0, n) again: for a dealer
 * used between two barriers of a loop, which nobody deals from again
 * before the next par_sync. */
void par_sync_redeal(par_team *team, int tid, par_dealer *d, long n);

/* A share [lo, hi) of an element-wise loop. */
typedef void (*par_range)(long lo, long hi, void *ctx);

/* Elements below which an element-wise pass runs on one thread: waking a
 * worker costs about as much as a few microseconds of streaming. */
#define PAR_ELEMENTWISE_MIN (1L << 17)

/* fn over [0, n): in one call, or when n is at least min_n in even chunks
 * dealt over the team (eight a member at most and, unless the team is
 * larger than 16, none much below min_n / 16 items).  fn must treat every
 * item on its own. */
void par_for(long n, long min_n, par_range fn, void *ctx);

/* The min_n for a loop over items of `values` values each: enough items
 * for PAR_ELEMENTWISE_MIN values, and at least two. */
long par_min_items(size_t values);

/* memset(p, 0, bytes), split over the team when large.  The first touch of
 * fresh memory is page faults, and in a virtual machine the host's too:
 * loading VGG-16's weights spent most of its time there, and faults on
 * two cores go nearly twice as fast. */
void par_zero(void *p, size_t bytes);

#endif
