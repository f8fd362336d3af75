#include "config.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>

#include "core/parallel.h"

/* Barrier polls before sleeping: about 0.5 ms on Zen 3 (a pause is some 30
 * ns there, longer on other cores), longer than the gap between members
 * finishing evenly split work usually is. */
#define PAR_SPIN 20000
/* Polls an idle worker makes for the next job before it sleeps: some
 * 0.1 ms on Zen 3, longer than the serial stretches between one layer's
 * kernels and the next layer's, so a training step's jobs find their
 * workers awake. */
#define PAR_IDLE_SPIN 4000

struct par_team {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  atomic_int arrived;
  atomic_uint generation;
  int n;
  par_body body;
  void *ctx;
};

/* The workers of one calling thread.  Threads started per job were placed
 * by the kernel's fork balancing on their starter's CPU about half the
 * time when the job was short (a few ms): the two members then ran one
 * after the other, and a training step's many short kernels gained little
 * from a second core.  Workers that persist stay on their own CPU and are
 * woken there. */
typedef struct par_pool {
  pthread_mutex_t mu;
  pthread_cond_t wake; /* workers wait here for a job */
  pthread_cond_t done; /* the caller waits here for the workers */
  /* The latest job: its number times JOB_SIZES plus its team size, in one
   * word, so that a worker outside the team learns so without reading
   * anything the next job rewrites. */
  atomic_ullong job;
  atomic_int busy; /* members not yet through the latest job */
  int shutdown;
  int nworkers;
  pthread_t threads[PAR_MAX_THREADS];
  par_team team;
} par_pool;

/* Team sizes fit below this in the job word. */
#define JOB_SIZES 128ULL
_Static_assert(PAR_MAX_THREADS < JOB_SIZES, "team sizes must fit in the job word");

typedef struct par_worker {
  par_pool *pool;
  int tid;
  unsigned long long seen; /* the job word when it started: older jobs are done */
} par_worker;

/* Each calling thread owns its pool, made on its first parallel job and
 * torn down when the thread exits: callers on different threads never
 * share workers or wait for each other.  The key is set once per process
 * and never changes. */
static pthread_key_t pool_key;
static pthread_once_t pool_once = PTHREAD_ONCE_INIT;
static int pool_key_ok;
/* Whether this thread is running a member's share now: a job started
 * inside a job runs on that member alone instead of multiplying threads. */
static _Thread_local int in_team;

int par_cpu_threads(void) {
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  return cpus < 1 ? 1 : cpus > PAR_MAX_THREADS ? PAR_MAX_THREADS : (int)cpus;
}

/* The team size the calling thread's jobs use (0: par_cpu_threads).  It
 * belongs to the thread, as its workers do, and is set only for the span
 * of a scope (par_threads_enter/leave): a net's pass, a solver's step, a
 * command's run. */
static _Thread_local int scope_threads;

int par_threads(void) { return scope_threads > 0 ? scope_threads : par_cpu_threads(); }

int par_threads_enter(int n) {
  const int saved = scope_threads;
  scope_threads = n < 0 ? 0 : n > PAR_MAX_THREADS ? PAR_MAX_THREADS : n;
  return saved;
}

void par_threads_leave(int saved) { scope_threads = saved; }

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

/* Waits for a job newer than seen (or shutdown): polls first, then
 * sleeps.  Returns the job word, or seen on shutdown. */
static unsigned long long worker_wait(par_pool *p, unsigned long long seen) {
  for (int i = 0; i < PAR_IDLE_SPIN; i++) {
    unsigned long long j = atomic_load_explicit(&p->job, memory_order_acquire);
    if (j != seen)
      return j;
    cpu_relax();
  }
  pthread_mutex_lock(&p->mu);
  unsigned long long j;
  while ((j = atomic_load(&p->job)) == seen && !p->shutdown)
    pthread_cond_wait(&p->wake, &p->mu);
  pthread_mutex_unlock(&p->mu);
  return j;
}

static void *worker_main(void *arg) {
  par_worker w = *(par_worker *)arg;
  free(arg);
  par_pool *p = w.pool;
  in_team = 1;
  unsigned long long seen = w.seen;
  for (;;) {
    unsigned long long j = worker_wait(p, seen);
    if (j == seen)
      return NULL;
    seen = j;
    /* Outside the team: nothing to do, and nothing of the job to read. */
    if ((unsigned long long)w.tid >= j % JOB_SIZES)
      continue;
    /* The team was written before the job word was published. */
    p->team.body(&p->team, w.tid, p->team.n, p->team.ctx);
    if (atomic_fetch_sub(&p->busy, 1) == 1) {
      pthread_mutex_lock(&p->mu);
      pthread_cond_signal(&p->done);
      pthread_mutex_unlock(&p->mu);
    }
  }
}

static void pool_destroy(void *arg) {
  par_pool *p = arg;
  pthread_mutex_lock(&p->mu);
  p->shutdown = 1;
  pthread_cond_broadcast(&p->wake);
  pthread_mutex_unlock(&p->mu);
  for (int i = 0; i < p->nworkers; i++)
    pthread_join(p->threads[i], NULL);
  pthread_cond_destroy(&p->team.cv);
  pthread_mutex_destroy(&p->team.mu);
  pthread_cond_destroy(&p->done);
  pthread_cond_destroy(&p->wake);
  pthread_mutex_destroy(&p->mu);
  free(p);
}

/* A forked child has the pool's memory but none of its threads: it starts
 * afresh (the parent's pool is not freed there, its state being unknown). */
static void forget_pool_after_fork(void) {
  if (pool_key_ok)
    pthread_setspecific(pool_key, NULL);
}

static void make_pool_key(void) {
  pool_key_ok = pthread_key_create(&pool_key, pool_destroy) == 0;
  if (pool_key_ok)
    pthread_atfork(NULL, NULL, forget_pool_after_fork);
}

static par_pool *pool_new(void) {
  par_pool *p = calloc(1, sizeof *p);
  if (!p)
    return NULL;
  pthread_mutex_init(&p->mu, NULL);
  pthread_cond_init(&p->wake, NULL);
  pthread_cond_init(&p->done, NULL);
  pthread_mutex_init(&p->team.mu, NULL);
  pthread_cond_init(&p->team.cv, NULL);
  atomic_init(&p->job, 0);
  atomic_init(&p->busy, 0);
  atomic_init(&p->team.arrived, 0);
  atomic_init(&p->team.generation, 0);
  return p;
}

/* This thread's pool with up to want workers started (fewer when threads
 * cannot be started), or NULL. */
static par_pool *thread_pool(int want) {
  pthread_once(&pool_once, make_pool_key);
  if (!pool_key_ok)
    return NULL;
  par_pool *p = pthread_getspecific(pool_key);
  if (!p) {
    if (!(p = pool_new()))
      return NULL;
    if (pthread_setspecific(pool_key, p) != 0) {
      pool_destroy(p);
      return NULL;
    }
  }
  /* Workers are idle between jobs, so one started now just waits for the
   * next job number. */
  while (p->nworkers < want) {
    par_worker *w = malloc(sizeof *w);
    if (!w)
      break;
    /* Only this thread moves the job word, so it is the current one. */
    *w = (par_worker){p, p->nworkers + 1, atomic_load(&p->job)};
    if (pthread_create(&p->threads[p->nworkers], NULL, worker_main, w) != 0) {
      free(w);
      break;
    }
    p->nworkers++;
  }
  return p;
}

static void run_alone(par_body body, void *ctx) {
  par_team t = {.n = 1, .body = body, .ctx = ctx};
  const int outer = in_team;
  in_team = 1;
  body(&t, 0, 1, ctx);
  in_team = outer;
}

void par_run(int nthreads, par_body body, void *ctx) {
  if (nthreads > PAR_MAX_THREADS)
    nthreads = PAR_MAX_THREADS;
  par_pool *p = nthreads > 1 && !in_team ? thread_pool(nthreads - 1) : NULL;
  if (!p || p->nworkers == 0) {
    run_alone(body, ctx);
    return;
  }
  int n = nthreads - 1 < p->nworkers ? nthreads : p->nworkers + 1;
  p->team.n = n;
  p->team.body = body;
  p->team.ctx = ctx;
  /* Only members read the team, and the caller waits for all of them
   * before the next job rewrites it. */
  atomic_store(&p->busy, n - 1);
  unsigned long long next = (atomic_load(&p->job) / JOB_SIZES + 1) * JOB_SIZES + (unsigned)n;
  pthread_mutex_lock(&p->mu);
  atomic_store_explicit(&p->job, next, memory_order_release);
  pthread_cond_broadcast(&p->wake);
  pthread_mutex_unlock(&p->mu);
  in_team = 1;
  body(&p->team, 0, n, ctx);
  in_team = 0;
  for (int i = 0; i < PAR_SPIN && atomic_load(&p->busy) > 0; i++)
    cpu_relax();
  if (atomic_load(&p->busy) > 0) {
    pthread_mutex_lock(&p->mu);
    while (atomic_load(&p->busy) > 0)
      pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
  }
}

void par_split(long n, int tid, int nthreads, long *lo, long *hi) {
  *lo = n * tid / nthreads;
  *hi = n * (tid + 1) / nthreads;
}

void par_dealer_reset(par_dealer *d, long n) {
  atomic_store_explicit(&d->next, 0, memory_order_relaxed);
  d->n = n;
}

/* Relaxed is enough: items are independent, and par_run and par_sync
 * publish what the members wrote. */
long par_deal(par_dealer *d) {
  if (atomic_load_explicit(&d->next, memory_order_relaxed) >= d->n)
    return -1;
  long i = atomic_fetch_add_explicit(&d->next, 1, memory_order_relaxed);
  return i < d->n ? i : -1;
}

void par_sync_redeal(par_team *team, int tid, par_dealer *d, long n) {
  par_sync(team);
  if (tid == 0)
    par_dealer_reset(d, n);
}

/* Chunks a member is dealt on average in par_for: enough that a member
 * slowed down for a while holds back at most a small part of the loop. */
#define PAR_FOR_CHUNKS 8

typedef struct for_job {
  long n, chunks;
  par_range fn;
  void *ctx;
  par_dealer dealer;
} for_job;

static void for_member(par_team *team, int tid, int nthreads, void *ctx) {
  for_job *j = ctx;
  for (long c; (c = par_deal(&j->dealer)) >= 0;) {
    long lo, hi;
    par_split(j->n, (int)c, (int)j->chunks, &lo, &hi);
    if (lo < hi)
      j->fn(lo, hi, j->ctx);
  }
}

void par_for(long n, long min_n, par_range fn, void *ctx) {
  if (n <= 0)
    return;
  const int threads = par_threads();
  if (n < min_n || threads <= 1) {
    fn(0, n, ctx);
    return;
  }
  /* Chunks of at least min_n / 16 items, so that dealing (an atomic add)
   * stays negligible next to a chunk's work. */
  long min_chunk = min_n / 16 > 1 ? min_n / 16 : 1;
  long chunks = (long)threads * PAR_FOR_CHUNKS;
  if (chunks > n / min_chunk)
    chunks = n / min_chunk;
  if (chunks < threads)
    chunks = n < threads ? n : threads;
  for_job j = {n, chunks, fn, ctx};
  par_dealer_reset(&j.dealer, chunks);
  par_run(threads, for_member, &j);
}

long par_min_items(size_t values) {
  long n = PAR_ELEMENTWISE_MIN / (long)(values ? values : 1) + 1;
  return n < 2 ? 2 : n;
}

/* Below this, waking the team costs more than it saves. */
#define PAR_ZERO_MIN ((size_t)1 << 20)

typedef struct zero_job {
  unsigned char *p;
  size_t bytes;
} zero_job;

/* Whole pages per member, so no page is faulted by two. */
static void zero_pages(long lo, long hi, void *ctx) {
  const zero_job *j = ctx;
  size_t a = (size_t)lo * 4096, b = (size_t)hi * 4096;
  if (b > j->bytes)
    b = j->bytes;
  memset(j->p + a, 0, b - a);
}

void par_zero(void *p, size_t bytes) {
  zero_job j = {p, bytes};
  par_for((long)((bytes + 4095) / 4096), (long)(PAR_ZERO_MIN / 4096), zero_pages, &j);
}
