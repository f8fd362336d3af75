/* Helpers shared by the test programs.
 *
 * Use: #include "tests/unit/testutil.h" and in tests/local.mk
 *   tests_unit_check_foo_LDADD = $(GRADCHECK_LIBS) $(TEST_LIBS) */
#ifndef CREMA_TESTS_TESTUTIL_H
#define CREMA_TESTS_TESTUTIL_H

#include "caffe.pb-c.h"

/* CREMA_TEST_DATA joined with the printf-style relative path fmt, malloc'd;
 * the caller frees it.  Fails the test if the variable is unset or memory
 * runs out. */
char *test_data_path(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

/* The NetParameter in the text (prototxt) file at path; fails the test on a
 * parse error.  Free with protobuf_c_message_free_unpacked. */
Caffe__NetParameter *test_parse_net_file(const char *path);

/* The NetParameter in prototxt text; fails the test on a parse error.
 * Free with protobuf_c_message_free_unpacked. */
Caffe__NetParameter *test_parse_net_text(const char *text);

/* A scratch directory per test.  test_scratch_make creates
 * /tmp/crema-<tag>-XXXXXX and remembers the working directory;
 * test_scratch_remove returns there (a test may chdir into the scratch)
 * and removes the directory with all it holds, read-only entries too
 * (the permission tests make some).  test_scratch_path gives DIR/name;
 * its last 8 results stay valid. */
void test_scratch_make(const char *tag);
void test_scratch_remove(void);
const char *test_scratch_dir(void);
/* The working directory test_scratch_make found, to return to. */
const char *test_start_dir(void);
const char *test_scratch_path(const char *name);

#endif
