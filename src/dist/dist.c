/* The backend-independent part of src/dist/: dispatch and the launcher's
 * environment. */
#include "config.h"

#include <stdlib.h>

#include "dist/dist.h"

crema_status dist_allreduce_sum(dist *d, float *buf, size_t n, crema_error *err) {
  if (d->size == 1 || n == 0)
    return CREMA_OK;
  return d->ops->allreduce_sum(d, buf, n, err);
}

crema_status dist_broadcast(dist *d, void *buf, size_t bytes, crema_error *err) {
  if (d->size == 1 || bytes == 0)
    return CREMA_OK;
  return d->ops->broadcast(d, buf, bytes, err);
}

void dist_abort(dist *d, const char *message) {
  d->ops->abort(d, message);
}

void dist_free(dist *d) {
  if (d)
    d->ops->free(d);
}

/* Open MPI's mpirun sets OMPI_COMM_WORLD_SIZE, MPICH's Hydra PMI_SIZE,
 * PMIx launchers PMIX_SIZE; the first that is set counts. */
int dist_launched_size(void) {
  static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE"};
  for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
    const char *v = getenv(vars[i]);
    if (v && *v) {
      char *end;
      long n = strtol(v, &end, 10);
      if (*end == '\0' && n >= 1 && n <= 1 << 20)
        return (int)n;
    }
  }
  return 1;
}
