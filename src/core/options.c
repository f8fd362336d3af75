/* crema_options: the runtime settings, and the one place that reads them
 * from the environment.  Everything below takes them from the net, the
 * solver or the layer context it is given. */
#include "config.h"

#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/memcap.h"
#include "core/options.h"
#include "core/parallel.h"

void crema_options_init(crema_options *opts) {
  if (opts)
    memset(opts, 0, sizeof *opts);
}

/* A positive count from the environment variable name, else 0. */
static long env_count(const char *name) {
  const char *v = getenv(name);
  if (!v || !*v)
    return 0;
  char *end;
  long n = strtol(v, &end, 10);
  return *end == '\0' && n > 0 ? n : 0;
}

/* A byte count from the environment variable name: "1073741824", "512M",
 * "2G" (K, M, G, T: powers of 1024, optionally followed by B); 0 when unset
 * or malformed. */
static size_t env_bytes(const char *name) {
  const char *s = getenv(name);
  if (!s || !*s)
    return 0;
  char *end;
  unsigned long long v = strtoull(s, &end, 10);
  unsigned shift = 0;
  switch (toupper((unsigned char)*end)) {
    case 'K': shift = 10; break;
    case 'M': shift = 20; break;
    case 'G': shift = 30; break;
    case 'T': shift = 40; break;
    case '\0': break;
    default: return 0;
  }
  if (shift && end[1] != '\0' && !(toupper((unsigned char)end[1]) == 'B' && end[2] == '\0'))
    return 0;
  if (v == 0 || v > (SIZE_MAX >> shift))
    return 0;
  return (size_t)v << shift;
}

void crema_options_from_env(crema_options *opts) {
  if (!opts)
    return;
  crema_options_init(opts);
  const char *conv = getenv("CREMA_CONV");
  if (conv && *conv)
    opts->conv_engine = conv;
  const char *simd = getenv("CREMA_SIMD");
  if (simd && !strcmp(simd, "generic"))
    opts->simd = CREMA_SIMD_GENERIC;
  /* As OpenBLAS reads them. */
  long n = env_count("OPENBLAS_NUM_THREADS");
  if (!n)
    n = env_count("OMP_NUM_THREADS");
  opts->threads = n > PAR_MAX_THREADS ? PAR_MAX_THREADS : (int)n;
  long level = env_count("GLOG_minloglevel");
  opts->log_level = level > CREMA_LOG_NONE ? CREMA_LOG_NONE : (crema_log_level)level;
  opts->max_allocation = env_bytes("CREMA_MAX_MEMORY");
}

options_scope options_enter(const crema_options *opts) {
  options_scope saved;
  saved.threads = par_threads_enter(options_threads(opts));
  saved.max_allocation = mem_cap_enter(opts ? opts->max_allocation : 0);
  return saved;
}

void options_leave(options_scope saved) {
  mem_cap_leave(saved.max_allocation);
  par_threads_leave(saved.threads);
}

int options_threads(const crema_options *opts) {
  return opts && opts->threads > 0 ? (opts->threads > PAR_MAX_THREADS ? PAR_MAX_THREADS
                                                                       : opts->threads)
                                   : par_cpu_threads();
}
