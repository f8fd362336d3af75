#include "config.h"

#include <cblas.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>

#include "math/parallel.h"

#define PAR_MAX_THREADS 64
/* Barrier polls before sleeping: a few microseconds, about the gap between
 * two members finishing evenly split work. */
#define PAR_SPIN 20000

struct par_team {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  atomic_int arrived;
  atomic_uint generation;
  int n;
  par_body body;
  void *ctx;
};

typedef struct par_member {
  par_team *team;
  int tid;
} par_member;

/* A positive thread count from the environment variable name, else 0. */
static int env_threads(const char *name) {
  const char *v = getenv(name);
  if (!v || !*v)
    return 0;
  char *end;
  long n = strtol(v, &end, 10);
  return *end == '\0' && n > 0 ? (n > PAR_MAX_THREADS ? PAR_MAX_THREADS : (int)n) : 0;
}

int par_threads(void) {
  int n = env_threads("OPENBLAS_NUM_THREADS");
  if (!n)
    n = env_threads("OMP_NUM_THREADS");
  if (!n) {
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    n = cpus < 1 ? 1 : cpus > PAR_MAX_THREADS ? PAR_MAX_THREADS : (int)cpus;
  }
  return n;
}

void par_blas_one_thread(void) {
  if (openblas_get_num_threads() != 1)
    openblas_set_num_threads(1);
}

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

void par_sync(par_team *t) {
  if (t->n <= 1)
    return;
  unsigned gen = atomic_load(&t->generation);
  if (atomic_fetch_add(&t->arrived, 1) == t->n - 1) {
    /* Nobody can reach the next barrier before the generation moves, so
     * resetting the count first is safe. */
    atomic_store(&t->arrived, 0);
    pthread_mutex_lock(&t->mu);
    atomic_fetch_add(&t->generation, 1);
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
    return;
  }
  for (int i = 0; i < PAR_SPIN; i++) {
    if (atomic_load(&t->generation) != gen)
      return;
    cpu_relax();
  }
  pthread_mutex_lock(&t->mu);
  while (atomic_load(&t->generation) == gen)
    pthread_cond_wait(&t->cv, &t->mu);
  pthread_mutex_unlock(&t->mu);
}

static void *member_main(void *arg) {
  par_member *m = arg;
  par_team *t = m->team;
  /* The team size is final once the starter releases the mutex. */
  pthread_mutex_lock(&t->mu);
  int n = t->n;
  pthread_mutex_unlock(&t->mu);
  t->body(t, m->tid, n, t->ctx);
  return NULL;
}

void par_run(int nthreads, par_body body, void *ctx) {
  if (nthreads > PAR_MAX_THREADS)
    nthreads = PAR_MAX_THREADS;
  par_team t = {.n = 1, .body = body, .ctx = ctx};
  if (nthreads <= 1) {
    body(&t, 0, 1, ctx);
    return;
  }
  pthread_t threads[PAR_MAX_THREADS];
  par_member members[PAR_MAX_THREADS];
  pthread_mutex_init(&t.mu, NULL);
  pthread_cond_init(&t.cv, NULL);
  atomic_init(&t.arrived, 0);
  atomic_init(&t.generation, 0);
  pthread_mutex_lock(&t.mu);
  int started = 1;
  for (int i = 1; i < nthreads; i++) {
    members[started] = (par_member){&t, started};
    if (pthread_create(&threads[started], NULL, member_main, &members[started]) != 0)
      break;
    started++;
  }
  t.n = started;
  pthread_mutex_unlock(&t.mu);
  body(&t, 0, started, ctx);
  for (int i = 1; i < started; i++)
    pthread_join(threads[i], NULL);
  pthread_cond_destroy(&t.cv);
  pthread_mutex_destroy(&t.mu);
}

void par_split(long n, int tid, int nthreads, long *lo, long *hi) {
  *lo = n * tid / nthreads;
  *hi = n * (tid + 1) / nthreads;
}

/* Below this, starting a thread costs more than it saves. */
#define PAR_ZERO_MIN ((size_t)16 << 20)

typedef struct zero_job {
  unsigned char *p;
  size_t bytes;
} zero_job;

static void zero_body(par_team *team, int tid, int nthreads, void *ctx) {
  const zero_job *j = ctx;
  /* Whole pages per member, so no page is faulted by two. */
  long pages = (long)((j->bytes + 4095) / 4096), lo, hi;
  par_split(pages, tid, nthreads, &lo, &hi);
  size_t a = (size_t)lo * 4096, b = (size_t)hi * 4096;
  if (b > j->bytes)
    b = j->bytes;
  if (a < b)
    memset(j->p + a, 0, b - a);
}

void par_zero(void *p, size_t bytes) {
  int n = par_threads();
  if (n <= 1 || bytes < PAR_ZERO_MIN) {
    memset(p, 0, bytes);
    return;
  }
  zero_job j = {p, bytes};
  par_run(n, zero_body, &j);
}
