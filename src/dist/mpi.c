/* The MPI backend of src/dist/ (./configure --with-mpi): the ranks of
 * MPI_COMM_WORLD, as started by mpirun / mpiexec.  Only standard MPI-2.2
 * calls, so that Open MPI and MPICH both serve.
 *
 * A sum is a reduce-scatter then an all-gather: each element is summed by
 * one rank only and its bits copied to the others, so the ranks' weights
 * stay identical whatever algorithm the library picks (the standard only
 * advises, not requires, that MPI_Allreduce give every rank the same
 * result).  It moves as many bytes as a ring all-reduce. */
#include "config.h"

#include <limits.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dist/dist.h"

typedef struct mpi_group {
  dist handle;
  int *counts;       /* per rank: elements it sums */
  int *displs;
  float *part;       /* this rank's sums */
  size_t part_cap;
} mpi_group;

static crema_status mpi_fail(int code, const char *what, crema_error *err) {
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(code, text, &len) != MPI_SUCCESS)
    snprintf(text, sizeof text, "error %d", code);
  return crema_fail(err, CREMA_ERR_IO, "MPI: %s: %s", what, text);
}

/* Rank r sums elements [displs[r], displs[r] + counts[r]). */
static crema_status split(mpi_group *g, size_t n, crema_error *err) {
  const int size = g->handle.size;
  const size_t base = n / (size_t)size, extra = n % (size_t)size;
  if (base + 1 > INT_MAX || n > INT_MAX)
    return crema_fail(err, CREMA_ERR_UNSUPPORTED,
                      "MPI: a sum of %zu floats exceeds MPI's int counts", n);
  size_t at = 0;
  for (int r = 0; r < size; r++) {
    g->counts[r] = (int)(base + ((size_t)r < extra));
    g->displs[r] = (int)at;
    at += (size_t)g->counts[r];
  }
  const size_t mine = (size_t)g->counts[g->handle.rank];
  if (mine > g->part_cap) {
    float *p = realloc(g->part, (mine ? mine : 1) * sizeof *p);
    if (!p)
      return crema_fail(err, CREMA_ERR_NOMEM, "out of memory for a sum of %zu floats", n);
    g->part = p;
    g->part_cap = mine;
  }
  return CREMA_OK;
}

static crema_status mpi_allreduce(dist *d, float *buf, size_t n, crema_error *err) {
  mpi_group *g = d->impl;
  CREMA_TRY(split(g, n, err));
  int rc = MPI_Reduce_scatter(buf, g->part, g->counts, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
  if (rc != MPI_SUCCESS)
    return mpi_fail(rc, "summing the gradients (MPI_Reduce_scatter)", err);
  const int mine = g->counts[d->rank];
  memcpy(buf + g->displs[d->rank], g->part, (size_t)mine * sizeof(float));
  rc = MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buf, g->counts, g->displs, MPI_FLOAT,
                      MPI_COMM_WORLD);
  if (rc != MPI_SUCCESS)
    return mpi_fail(rc, "gathering the gradients (MPI_Allgatherv)", err);
  return CREMA_OK;
}

static crema_status mpi_broadcast(dist *d, void *buf, size_t bytes, crema_error *err) {
  (void)d;
  /* MPI counts are ints: large blobs go in pieces of 1 GiB. */
  const size_t piece = (size_t)1 << 30;
  for (size_t at = 0; at < bytes; at += piece) {
    const size_t len = bytes - at < piece ? bytes - at : piece;
    int rc = MPI_Bcast((char *)buf + at, (int)len, MPI_BYTE, 0, MPI_COMM_WORLD);
    if (rc != MPI_SUCCESS)
      return mpi_fail(rc, "broadcasting rank 0's state (MPI_Bcast)", err);
  }
  return CREMA_OK;
}

/* The caller printed its message; MPI_Abort makes the launcher end every
 * rank, which is all a rank can do for the others blocked in a sum. */
static void mpi_abort(dist *d, const char *message) {
  (void)d, (void)message;
  fflush(stdout);
  fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, 1);
}

static void mpi_free(dist *d) {
  mpi_group *g = d->impl;
  free(g->counts);
  free(g->displs);
  free(g->part);
  free(g);
  MPI_Finalize();
}

static const dist_ops mpi_ops = {
    .name = "mpi",
    .allreduce_sum = mpi_allreduce,
    .broadcast = mpi_broadcast,
    .abort = mpi_abort,
    .free = mpi_free,
};

crema_status dist_mpi_open(dist **out, crema_error *err) {
  *out = NULL;
  /* Only the training thread calls MPI (prefetch and compute threads never
   * do), which is what FUNNELED promises. */
  int provided = 0;
  int rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
  if (rc != MPI_SUCCESS)
    return crema_fail(err, CREMA_ERR_IO, "MPI: MPI_Init_thread failed (error %d)", rc);
  /* Errors come back as codes with a message, not as a silent abort. */
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  mpi_group *g = crema_calloc(1, sizeof *g, err);
  if (!g) {
    MPI_Finalize();
    return CREMA_ERR_NOMEM;
  }
  MPI_Comm_rank(MPI_COMM_WORLD, &g->handle.rank);
  MPI_Comm_size(MPI_COMM_WORLD, &g->handle.size);
  g->handle.ops = &mpi_ops;
  g->handle.impl = g;
  g->counts = crema_calloc((size_t)g->handle.size, sizeof *g->counts, err);
  g->displs = g->counts ? crema_calloc((size_t)g->handle.size, sizeof *g->displs, err) : NULL;
  if (!g->displs) {
    free(g->counts);
    free(g);
    MPI_Finalize();
    return CREMA_ERR_NOMEM;
  }
  *out = &g->handle;
  return CREMA_OK;
}
