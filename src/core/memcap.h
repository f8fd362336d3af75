/* The memory cap: sizes read from files (blob shapes, image dimensions,
 * record lengths) are checked against it before anything is allocated, so
 * that hostile or mistaken input is refused with a message instead of
 * being killed by the kernel's OOM killer half way through.
 *
 * The cap is the smallest of: the caller's crema_options.max_allocation
 * (CREMA_MAX_MEMORY for the command) when set, the machine's physical
 * memory, and the process's address-space and data limits (ulimit -v,
 * ulimit -d).  Like the team size (core/parallel.h), the option belongs to
 * the calling thread and is set around each piece of work, by
 * options_enter (core/options.h): the sizes are checked deep in blobs,
 * records and images, which have no options of their own.  Large requests
 * (64 MiB and more) are also checked against the memory available right
 * now (MemAvailable) and the address space left under ulimit -v. */
#ifndef CREMA_CORE_MEMCAP_H
#define CREMA_CORE_MEMCAP_H

#include <stddef.h>
#include "core/error.h"

/* The cap in bytes (SIZE_MAX when nothing limits). */
size_t mem_cap_bytes(void);

/* Sets the calling thread's max_allocation (0: none) and returns the
 * previous one for mem_cap_leave. */
size_t mem_cap_enter(size_t max_allocation);
void mem_cap_leave(size_t saved);

/* CREMA_OK when bytes may be allocated; else CREMA_ERR_NOMEM and a
 * message "WHAT needs N MiB, more than ...". */
crema_status mem_check(size_t bytes, const char *what, crema_error *err);

/* mem_check of count * size (overflow refused too). */
crema_status mem_check_array(size_t count, size_t size, const char *what, crema_error *err);

#endif
