#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

const char *crema_version(void) { return PACKAGE_VERSION; }

const char *crema_status_name(crema_status status) {
  switch (status) {
    case CREMA_OK: return "ok";
    case CREMA_ERR_INVALID: return "invalid input";
    case CREMA_ERR_PARSE: return "parse error";
    case CREMA_ERR_IO: return "i/o error";
    case CREMA_ERR_NOMEM: return "out of memory";
    case CREMA_ERR_SHAPE: return "shape mismatch";
    case CREMA_ERR_UNSUPPORTED: return "unsupported";
    case CREMA_ERR_NOT_FOUND: return "not found";
    case CREMA_ERR_INTERRUPTED: return "interrupted";
  }
  return "unknown error";
}

crema_status crema_fail(crema_error *err, crema_status status, const char *fmt, ...) {
  if (err) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    err->status = status;
  }
  return status;
}

void crema_error_prefix(crema_error *err, const char *fmt, ...) {
  if (!err)
    return;
  char prefix[CREMA_ERROR_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(prefix, sizeof prefix, fmt, ap);
  va_end(ap);
  /* Shift the message right and put the prefix in front; what no longer
   * fits is cut at the end, where it matters least. */
  size_t plen = strnlen(prefix, sizeof err->message - 1);
  size_t mlen = strnlen(err->message, sizeof err->message - 1);
  if (mlen > sizeof err->message - 1 - plen)
    mlen = sizeof err->message - 1 - plen;
  memmove(err->message + plen, err->message, mlen);
  memcpy(err->message, prefix, plen);
  err->message[plen + mlen] = '\0';
}

void crema_error_clear(crema_error *err) {
  if (err) {
    err->status = CREMA_OK;
    err->message[0] = '\0';
  }
}

int size_mul(size_t a, size_t b, size_t *out) {
  if (a != 0 && b > SIZE_MAX / a)
    return 0;
  *out = a * b;
  return 1;
}

int size_add(size_t a, size_t b, size_t *out) {
  if (b > SIZE_MAX - a)
    return 0;
  *out = a + b;
  return 1;
}

void *crema_malloc(size_t n, crema_error *err) {
  void *p = malloc(n ? n : 1);
  if (!p)
    crema_fail(err, CREMA_ERR_NOMEM, "out of memory allocating %zu bytes", n);
  return p;
}

void *crema_calloc(size_t count, size_t size, crema_error *err) {
  size_t n;
  if (!size_mul(count, size, &n)) {
    crema_fail(err, CREMA_ERR_NOMEM, "allocation of %zu x %zu bytes overflows", count, size);
    return NULL;
  }
  void *p = calloc(count ? count : 1, size ? size : 1);
  if (!p)
    crema_fail(err, CREMA_ERR_NOMEM, "out of memory allocating %zu bytes", n);
  return p;
}

char *crema_strdup(const char *s, crema_error *err) {
  size_t n = strlen(s) + 1;
  char *p = crema_malloc(n, err);
  if (p)
    memcpy(p, s, n);
  return p;
}
