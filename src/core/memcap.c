#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "core/memcap.h"

/* Below this, requests are only checked against the cap: reading
 * /proc/meminfo for every small blob would cost more than it saves. */
#define MEM_CHECK_AVAILABLE_FROM ((size_t)64 << 20)

#define MIB(x) ((double)(x) / (1024.0 * 1024.0))

/* The calling thread's crema_options.max_allocation (0: none), set only
 * for the span of a scope (options_enter/leave): a net's pass, a solver's
 * step, a command's run. */
static _Thread_local size_t scope_cap;

size_t mem_cap_enter(size_t max_allocation) {
  const size_t saved = scope_cap;
  scope_cap = max_allocation;
  return saved;
}

void mem_cap_leave(size_t saved) { scope_cap = saved; }

static size_t rlimit_of(int resource) {
  struct rlimit rl;
  if (getrlimit(resource, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > SIZE_MAX)
    return SIZE_MAX;
  return (size_t)rl.rlim_cur;
}

static size_t min_size(size_t a, size_t b) { return a < b ? a : b; }

size_t mem_cap_bytes(void) {
  size_t cap = scope_cap;
  if (cap == 0)
    cap = SIZE_MAX;
  long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  if (pages > 0 && page > 0 && (unsigned long)pages <= SIZE_MAX / (unsigned long)page)
    cap = min_size(cap, (size_t)pages * (size_t)page);
  cap = min_size(cap, rlimit_of(RLIMIT_AS));
  return min_size(cap, rlimit_of(RLIMIT_DATA));
}

/* MemAvailable of /proc/meminfo in bytes (SIZE_MAX when unknown). */
static size_t mem_available(void) {
  FILE *f = fopen("/proc/meminfo", "r");
  if (!f)
    return SIZE_MAX;
  char line[256];
  size_t avail = SIZE_MAX;
  unsigned long long kb;
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1) {
      if (kb <= SIZE_MAX / 1024)
        avail = (size_t)kb * 1024;
      break;
    }
  fclose(f);
  return avail;
}

/* The address space left under ulimit -v (SIZE_MAX when unlimited). */
static size_t address_space_left(void) {
  size_t limit = rlimit_of(RLIMIT_AS);
  if (limit == SIZE_MAX)
    return SIZE_MAX;
  FILE *f = fopen("/proc/self/statm", "r");
  if (!f)
    return SIZE_MAX;
  unsigned long long pages = 0;
  int ok = fscanf(f, "%llu", &pages) == 1;
  fclose(f);
  long page = sysconf(_SC_PAGESIZE);
  if (!ok || page <= 0)
    return SIZE_MAX;
  unsigned long long used = pages * (unsigned long long)page;
  return used >= limit ? 0 : limit - (size_t)used;
}

crema_status mem_check(size_t bytes, const char *what, crema_error *err) {
  size_t cap = mem_cap_bytes();
  if (bytes > cap)
    return crema_fail(err, CREMA_ERR_NOMEM,
                      "%s needs %.1f MiB, more than the memory cap of %.1f MiB (the least of "
                      "CREMA_MAX_MEMORY, physical memory, ulimit -v and -d)",
                      what, MIB(bytes), MIB(cap));
  if (bytes < MEM_CHECK_AVAILABLE_FROM)
    return CREMA_OK;
  size_t avail = min_size(mem_available(), address_space_left());
  if (bytes > avail)
    return crema_fail(err, CREMA_ERR_NOMEM,
                      "%s needs %.1f MiB, more than the %.1f MiB of memory available", what,
                      MIB(bytes), MIB(avail));
  return CREMA_OK;
}

crema_status mem_check_array(size_t count, size_t size, const char *what, crema_error *err) {
  size_t bytes;
  if (!size_mul(count, size, &bytes))
    return crema_fail(err, CREMA_ERR_NOMEM, "%s: %zu x %zu bytes overflows", what, count, size);
  return mem_check(bytes, what, err);
}
