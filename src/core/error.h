/* Error reporting: a status plus a message that says where and what. */
#ifndef CREMA_CORE_ERROR_H
#define CREMA_CORE_ERROR_H

#include <stdarg.h>
#include <stddef.h>
#include "crema.h"

#if defined(__GNUC__)
#define CREMA_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define CREMA_PRINTF(a, b)
#endif

/* Sets err (when not NULL) to status and a formatted message; returns status
 * so callers can write `return crema_fail(err, CREMA_ERR_IO, ...)`. */
crema_status crema_fail(crema_error *err, crema_status status, const char *fmt, ...)
    CREMA_PRINTF(3, 4);

/* Prepends context to an existing message ("layer 'conv1': " + message). */
void crema_error_prefix(crema_error *err, const char *fmt, ...) CREMA_PRINTF(2, 3);

void crema_error_clear(crema_error *err);

/* Overflow-checked size arithmetic: return 0 and leave *out untouched on
 * overflow. */
int size_mul(size_t a, size_t b, size_t *out);
int size_add(size_t a, size_t b, size_t *out);

/* Allocation helpers that report failure through err. */
void *crema_malloc(size_t n, crema_error *err);
void *crema_calloc(size_t count, size_t size, crema_error *err);
char *crema_strdup(const char *s, crema_error *err);

#define CREMA_TRY(expr)                  \
  do {                                   \
    crema_status crema_try_st_ = (expr); \
    if (crema_try_st_ != CREMA_OK)       \
      return crema_try_st_;              \
  } while (0)

#endif
