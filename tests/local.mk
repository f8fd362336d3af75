# The test suite (Check).  Each tests/unit/check_<module>.c is one program.
TEST_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
TEST_LIBS = libcrema_impl.la $(CHECK_LIBS)
# Tests find their fixtures through these.
AM_TESTS_ENVIRONMENT = \
	CREMA_TEST_DATA='$(abs_top_srcdir)/tests/data'; export CREMA_TEST_DATA; \
	CREMA_BIN='$(abs_top_builddir)/crema'; export CREMA_BIN; \
	CK_DEFAULT_TIMEOUT=600; export CK_DEFAULT_TIMEOUT;

# The numeric gradient checker shared by the layer tests.
check_LTLIBRARIES = tests/libgradcheck.la
tests_libgradcheck_la_SOURCES = tests/unit/gradcheck.c tests/unit/gradcheck.h
tests_libgradcheck_la_CFLAGS = $(TEST_CFLAGS)
GRADCHECK_LIBS = tests/libgradcheck.la
