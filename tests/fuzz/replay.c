/* Runs a harness of tests/fuzz once over each file of its regression
 * corpus, with the ordinary compiler and without libFuzzer, so that `make
 * check` keeps every input that once crashed a reader.  The program
 * replay_<reader> reads $CREMA_FUZZ_DIR/corpus_<reader> unless files or
 * directories are given as arguments. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "%s: %s\n", path, strerror(errno));
    return 1;
  }
  size_t cap = 4096, len = 0;
  uint8_t *buf = malloc(cap);
  size_t n;
  while (buf && (n = fread(buf + len, 1, cap - len, f)) > 0) {
    len += n;
    if (len == cap) {
      uint8_t *bigger = realloc(buf, cap *= 2);
      if (!bigger)
        free(buf);
      buf = bigger;
    }
  }
  fclose(f);
  if (!buf) {
    fprintf(stderr, "%s: out of memory\n", path);
    return 1;
  }
  /* An exact-size copy, as libFuzzer passes, so overreads are caught. */
  uint8_t *exact = malloc(len ? len : 1);
  if (!exact) {
    free(buf);
    return 1;
  }
  memcpy(exact, buf, len);
  free(buf);
  LLVMFuzzerTestOneInput(exact, len);
  free(exact);
  return 0;
}

static int cmp_names(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The files of a directory in name order, so that runs are repeatable. */
static int run_dir(const char *dir, int *count) {
  DIR *d = opendir(dir);
  if (!d) {
    fprintf(stderr, "%s: %s\n", dir, strerror(errno));
    return 1;
  }
  char **names = NULL;
  size_t n = 0, cap = 0;
  struct dirent *e;
  int bad = 0;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.')
      continue;
    if (n == cap) {
      char **bigger = realloc(names, (cap = cap ? 2 * cap : 64) * sizeof *names);
      if (!bigger) {
        bad = 1;
        break;
      }
      names = bigger;
    }
    if (!(names[n] = malloc(strlen(dir) + strlen(e->d_name) + 2))) {
      bad = 1;
      break;
    }
    sprintf(names[n++], "%s/%s", dir, e->d_name);
  }
  closedir(d);
  if (n)
    qsort(names, n, sizeof *names, cmp_names);
  for (size_t i = 0; i < n; i++) {
    struct stat st;
    if (stat(names[i], &st) == 0 && S_ISREG(st.st_mode)) {
      bad |= run_file(names[i]);
      ++*count;
    }
    free(names[i]);
  }
  free(names);
  return bad;
}

static int run_path(const char *path, int *count) {
  struct stat st;
  if (stat(path, &st) != 0) {
    fprintf(stderr, "%s: %s\n", path, strerror(errno));
    return 1;
  }
  if (S_ISDIR(st.st_mode))
    return run_dir(path, count);
  ++*count;
  return run_file(path);
}

int main(int argc, char **argv) {
  int count = 0, bad = 0;
  if (argc > 1) {
    for (int i = 1; i < argc; i++)
      bad |= run_path(argv[i], &count);
  } else {
    const char *base = strrchr(argv[0], '/');
    base = base ? base + 1 : argv[0];
    if (strncmp(base, "lt-", 3) == 0)
      base += 3;
    const char *reader = strchr(base, '_');
    const char *dir = getenv("CREMA_FUZZ_DIR");
    if (!reader || !dir) {
      fprintf(stderr, "usage: replay_<reader> [FILE|DIR]... (or set CREMA_FUZZ_DIR)\n");
      return 2;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/corpus%s", dir, reader);
    bad |= run_path(path, &count);
  }
  printf("%s: %d input(s) replayed%s\n", argv[0], count, bad ? ", some unreadable" : "");
  return bad || count == 0;
}
