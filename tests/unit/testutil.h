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

#endif
