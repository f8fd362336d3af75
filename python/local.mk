# The Python 3 module (configure's --enable-python): the package crema,
# installed in Python's site-packages under the prefix (pyexecdir): the
# extension _crema (over libcrema's public API), the pure-Python parts, and
# caffe.proto's descriptor, written by protoc-c.
CREMA_PY_SOURCES = python/crema/__init__.py python/crema/pycaffe.py python/crema/io.py
CREMA_PY_PROTO_SOURCES = python/crema/proto/__init__.py python/crema/proto/caffe_pb2.py
EXTRA_DIST += $(CREMA_PY_SOURCES) $(CREMA_PY_PROTO_SOURCES) python/crema/_crema.c

if WITH_PYTHON
cremapydir = $(pyexecdir)/crema
cremapy_LTLIBRARIES = python/crema/_crema.la
python_crema__crema_la_SOURCES = python/crema/_crema.c
python_crema__crema_la_CPPFLAGS = $(AM_CPPFLAGS) $(PYTHON_CPPFLAGS)
python_crema__crema_la_LDFLAGS = $(AM_LDFLAGS) -module -avoid-version -shared \
	-export-symbols-regex '^PyInit__crema$$'
python_crema__crema_la_LIBADD = libcrema.la
cremapy_PYTHON = $(CREMA_PY_SOURCES)

cremaprotodir = $(pyexecdir)/crema/proto
cremaproto_PYTHON = $(CREMA_PY_PROTO_SOURCES)
nodist_cremaproto_DATA = python/crema/proto/caffe.desc
CLEANFILES += python/crema/proto/caffe.desc

python/crema/proto/caffe.desc: $(srcdir)/proto/caffe.proto
	@$(MKDIR_P) python/crema/proto
	$(AM_V_GEN)$(PROTOC_C) --proto_path=$(srcdir)/proto --include_imports \
		--descriptor_set_out=$@ $(srcdir)/proto/caffe.proto

# The package as Python imports it, in the build tree (for the tests):
# links to the sources and to the extension libtool built.
all-local: python/crema/.built
python/crema/.built: python/crema/_crema.la python/crema/proto/caffe.desc \
		$(CREMA_PY_SOURCES) $(CREMA_PY_PROTO_SOURCES)
	@for f in $(CREMA_PY_SOURCES) $(CREMA_PY_PROTO_SOURCES); do \
	  test -f $$f || $(LN_S) $(abs_srcdir)/$$f $$f || exit 1; \
	done
	@rm -f python/crema/_crema.so && $(LN_S) .libs/_crema.so python/crema/_crema.so
	@touch $@
clean-local: clean-python-tree
clean-python-tree:
	rm -f python/crema/.built python/crema/_crema.so
	test "$(abs_srcdir)" = "$(abs_builddir)" || \
	  rm -f $(CREMA_PY_SOURCES) $(CREMA_PY_PROTO_SOURCES)
	rm -rf python/crema/__pycache__ python/crema/proto/__pycache__

# Python imports the .so; libtool's .la has no use there.
install-data-hook: remove-python-la
remove-python-la:
	rm -f $(DESTDIR)$(cremapydir)/_crema.la
endif
.PHONY: clean-python-tree remove-python-la

# pycaffe-style scripts with only the import changed, checked against the
# C library and the golden data (skipped when the module is not built).
TESTS += tests/python/run.sh
EXTRA_DIST += tests/python/run.sh tests/python/classify_vgg.py \
	tests/python/lenet_surgery.py tests/python/blobs_after_forward.py \
	tests/python/transformer_chain.py tests/python/solver_loop.py \
	tests/python/api_errors.py tests/python/compare_training.py
AM_TESTS_ENVIRONMENT += \
	CREMA_PYTHON='$(PYTHON)'; export CREMA_PYTHON; \
	CREMA_PYTHONPATH='$(abs_top_builddir)/python'; export CREMA_PYTHONPATH; \
	CREMA_PY_ASAN_PRELOAD='$(PYTHON_ASAN_PRELOAD)'; export CREMA_PY_ASAN_PRELOAD;
if WITH_PYTHON
AM_TESTS_ENVIRONMENT += CREMA_PY_BUILT=yes; export CREMA_PY_BUILT;
endif
