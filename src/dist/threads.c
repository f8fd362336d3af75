/* The in-process backend of src/dist/: ranks are threads sharing a group.
 * Collectives meet at an abortable barrier; a sum is computed once per
 * element, in rank order, into the group's scratch, then copied by every
 * rank, so all ranks get the same bits (as mpi.c's reduce-scatter and
 * all-gather give).  It lets the unit tests run the distributed solver
 * without MPI. */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dist/dist.h"

typedef struct group {
  pthread_mutex_t mutex;
  pthread_cond_t cond;
  int size;
  int arrived;                /* at the current barrier */
  unsigned long generation;   /* barriers passed */
  int aborted;
  int failed_rank;
  char message[CREMA_ERROR_MAX];
  int members;                /* handles not yet freed */
  void **posted;              /* per rank: its buffer in the current collective */
  float *scratch;             /* the sums */
  size_t scratch_cap;
  dist *handles;
} group;

static crema_status aborted_error(const group *g, crema_error *err) {
  return crema_fail(err, CREMA_ERR_INTERRUPTED, "rank %d failed: %s", g->failed_rank,
                    g->message);
}

/* Waits until every rank arrived; fails once any rank aborted. */
static crema_status barrier(group *g, crema_error *err) {
  pthread_mutex_lock(&g->mutex);
  const unsigned long gen = g->generation;
  if (!g->aborted && ++g->arrived == g->size) {
    g->arrived = 0;
    g->generation++;
    pthread_cond_broadcast(&g->cond);
  }
  while (!g->aborted && g->generation == gen)
    pthread_cond_wait(&g->cond, &g->mutex);
  const int aborted = g->aborted;
  pthread_mutex_unlock(&g->mutex);
  return aborted ? aborted_error(g, err) : CREMA_OK;
}

/* Rank 0 grows the scratch before the first barrier of a sum, while
 * nobody reads it (the previous collective ended with a barrier); on
 * failure the capacity stays short, which every rank sees after it. */
static void grow_scratch(group *g, size_t n) {
  if (n <= g->scratch_cap)
    return;
  float *s = realloc(g->scratch, n * sizeof *s);
  if (s) {
    g->scratch = s;
    g->scratch_cap = n;
  }
}

static crema_status threads_allreduce(dist *d, float *buf, size_t n, crema_error *err) {
  group *g = d->impl;
  size_t bytes;
  if (!size_mul(n, sizeof(float), &bytes))
    return crema_fail(err, CREMA_ERR_NOMEM, "a sum of %zu floats is too large", n);
  g->posted[d->rank] = buf;
  if (d->rank == 0)
    grow_scratch(g, n);
  CREMA_TRY(barrier(g, err));
  if (g->scratch_cap < n)
    return crema_fail(err, CREMA_ERR_NOMEM, "out of memory for a sum of %zu floats", n);
  const size_t lo = n * (size_t)d->rank / (size_t)d->size;
  const size_t hi = n * (size_t)(d->rank + 1) / (size_t)d->size;
  for (size_t i = lo; i < hi; i++) {
    float s = ((const float *)g->posted[0])[i];
    for (int r = 1; r < d->size; r++)
      s += ((const float *)g->posted[r])[i];
    g->scratch[i] = s;
  }
  CREMA_TRY(barrier(g, err));
  memcpy(buf, g->scratch, bytes);
  /* Nobody may start the next collective's sums before all have copied. */
  return barrier(g, err);
}

static crema_status threads_broadcast(dist *d, void *buf, size_t bytes, crema_error *err) {
  group *g = d->impl;
  g->posted[d->rank] = buf;
  CREMA_TRY(barrier(g, err));
  if (d->rank != 0)
    memcpy(buf, g->posted[0], bytes);
  return barrier(g, err);
}

static void threads_abort(dist *d, const char *message) {
  group *g = d->impl;
  pthread_mutex_lock(&g->mutex);
  if (!g->aborted) {
    g->aborted = 1;
    g->failed_rank = d->rank;
    snprintf(g->message, sizeof g->message, "%s", message ? message : "");
  }
  pthread_cond_broadcast(&g->cond);
  pthread_mutex_unlock(&g->mutex);
}

static void group_free(group *g) {
  pthread_cond_destroy(&g->cond);
  pthread_mutex_destroy(&g->mutex);
  free(g->scratch);
  free(g->posted);
  free(g->handles);
  free(g);
}

static void threads_free(dist *d) {
  group *g = d->impl;
  pthread_mutex_lock(&g->mutex);
  const int last = --g->members == 0;
  pthread_mutex_unlock(&g->mutex);
  if (last)
    group_free(g);
}

static const dist_ops threads_ops = {
    .name = "threads",
    .allreduce_sum = threads_allreduce,
    .broadcast = threads_broadcast,
    .abort = threads_abort,
    .free = threads_free,
};

crema_status dist_threads_create(int size, dist **comms, crema_error *err) {
  if (size < 1)
    return crema_fail(err, CREMA_ERR_INVALID, "a group needs at least one rank, not %d", size);
  group *g = crema_calloc(1, sizeof *g, err);
  if (!g)
    return CREMA_ERR_NOMEM;
  g->posted = crema_calloc((size_t)size, sizeof *g->posted, err);
  g->handles = g->posted ? crema_calloc((size_t)size, sizeof *g->handles, err) : NULL;
  if (!g->handles) {
    free(g->posted);
    free(g);
    return CREMA_ERR_NOMEM;
  }
  pthread_mutex_init(&g->mutex, NULL);
  pthread_cond_init(&g->cond, NULL);
  g->size = g->members = size;
  for (int r = 0; r < size; r++) {
    g->handles[r] = (dist){&threads_ops, r, size, g};
    comms[r] = &g->handles[r];
  }
  return CREMA_OK;
}
