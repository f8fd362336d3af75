/* Helpers shared by the test programs (see testutil.h). */
#include "config.h"

#include <check.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/text.h"
#include "tests/unit/testutil.h"

char *test_data_path(const char *fmt, ...) {
  const char *root = getenv("CREMA_TEST_DATA");
  ck_assert_msg(root != NULL, "CREMA_TEST_DATA is not set");
  va_list ap;
  va_start(ap, fmt);
  int rel_len = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  ck_assert_msg(rel_len >= 0, "bad test data path format '%s'", fmt);
  size_t root_len = strlen(root);
  size_t n = root_len + 1 + (size_t)rel_len + 1;
  char *p = malloc(n);
  ck_assert_ptr_nonnull(p);
  memcpy(p, root, root_len);
  p[root_len] = '/';
  va_start(ap, fmt);
  vsnprintf(p + root_len + 1, (size_t)rel_len + 1, fmt, ap);
  va_end(ap);
  return p;
}

Caffe__NetParameter *test_parse_net_file(const char *path) {
  crema_error err = {0};
  ProtobufCMessage *msg = NULL;
  crema_status st = txt_parse_file(path, &caffe__net_parameter__descriptor, &msg, &err);
  ck_assert_msg(st == CREMA_OK, "%s", err.message);
  return (Caffe__NetParameter *)msg;
}

Caffe__NetParameter *test_parse_net_text(const char *text) {
  crema_error err = {0};
  ProtobufCMessage *msg = NULL;
  crema_status st = txt_parse(text, strlen(text), "test.prototxt",
                              &caffe__net_parameter__descriptor, &msg, &err);
  ck_assert_msg(st == CREMA_OK, "parse: %s", err.message);
  return (Caffe__NetParameter *)msg;
}

/* ---- scratch directory ---- */

/* One per test process: Check runs each test in its own fork. */
static char scratch_dir[256];
static char scratch_start[4096];

void test_scratch_make(const char *tag) {
  snprintf(scratch_dir, sizeof scratch_dir, "/tmp/crema-%s-XXXXXX", tag);
  ck_assert_ptr_nonnull(mkdtemp(scratch_dir));
  ck_assert_ptr_nonnull(getcwd(scratch_start, sizeof scratch_start));
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st, (void)flag, (void)ftw;
  chmod(path, 0700);
  return remove(path);
}

void test_scratch_remove(void) {
  if (!scratch_dir[0] || chdir(scratch_start) != 0)
    return;
  chmod(scratch_dir, 0700);
  nftw(scratch_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
  scratch_dir[0] = '\0';
}

const char *test_scratch_dir(void) { return scratch_dir; }

const char *test_start_dir(void) { return scratch_start; }

const char *test_scratch_path(const char *name) {
  static char paths[8][512];
  static int next;
  char *p = paths[next++ % 8];
  snprintf(p, sizeof paths[0], "%s/%s", scratch_dir, name);
  return p;
}
