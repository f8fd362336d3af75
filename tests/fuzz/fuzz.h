/* What every harness of tests/fuzz shares.  A harness is one file,
 * fuzz_<reader>.c, defining LLVMFuzzerTestOneInput; it is linked either with
 * libFuzzer (make fuzz: clang, sanitizers, coverage) or with replay.c (make
 * check: the files of corpus_<reader>, crashers found included, run once).
 * A harness aborts only when the library broke a promise: a failure
 * without a message, a result that does not round-trip. */
#ifndef CREMA_TESTS_FUZZ_H
#define CREMA_TESTS_FUZZ_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"
#include "core/memcap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Readers that take a path get the input through one file per process,
 * rewritten for each input and removed at exit. */
static char fuzz_path_[64];

static void fuzz_remove_file_(void) {
  if (fuzz_path_[0])
    unlink(fuzz_path_);
}

static inline const char *fuzz_write_file(const uint8_t *data, size_t size, const char *suffix) {
  if (!fuzz_path_[0]) {
    const char *dir = getenv("TMPDIR");
    snprintf(fuzz_path_, sizeof fuzz_path_, "%s/crema-fuzz-%ld%s", dir && *dir ? dir : "/tmp",
             (long)getpid(), suffix);
    atexit(fuzz_remove_file_);
  }
  FILE *f = fopen(fuzz_path_, "wb");
  if (!f)
    abort(); /* the harness's own environment, not the input */
  if (size && fwrite(data, 1, size, f) != size)
    abort();
  if (fclose(f) != 0)
    abort();
  return fuzz_path_;
}

/* A few hundred bytes of JPEG or PNG may legitimately decode to 2^28
 * pixels (a truncated file is filled in, as OpenCV does), which takes
 * seconds: the image harnesses run under a 16 MiB memory cap
 * (core/memcap.h), so such images are refused from their header and the
 * fuzzer spends its time on the decoders' code.  Huge sizes have their
 * own tests (tests/cli/resource_limits.sh).  A cap set by the caller
 * (CREMA_MAX_MEMORY) stays.  The cap is the calling thread's
 * (core/memcap.h), as a command's run sets it. */
static inline void fuzz_cap_memory(void) {
  crema_options env;
  crema_options_from_env(&env);
  mem_cap_enter(env.max_allocation ? env.max_allocation : (size_t)16 << 20);
}

/* Every failure must say what went wrong.  CREMA_FUZZ_VERBOSE=1 prints
 * the messages (to see how far the inputs of a corpus get). */
static inline void fuzz_expect_message(crema_status st, const crema_error *err) {
  if (st != CREMA_OK && err->message[0] == '\0')
    abort();
  if (st != CREMA_OK && getenv("CREMA_FUZZ_VERBOSE"))
    fprintf(stderr, "refused: %s\n", err->message);
}

#endif
