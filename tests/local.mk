# The test suite (Check).  Each tests/unit/check_<module>.c is one program.
TEST_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
TEST_LIBS = libcrema_impl.la $(CHECK_LIBS)
# Tests find their fixtures through these.
AM_TESTS_ENVIRONMENT = \
	CREMA_TEST_DATA='$(abs_top_srcdir)/tests/data'; export CREMA_TEST_DATA; \
	CREMA_BIN='$(abs_top_builddir)/crema'; export CREMA_BIN; \
	CK_DEFAULT_TIMEOUT=600; export CK_DEFAULT_TIMEOUT;

# The numeric gradient checker shared by the layer tests, and the helpers
# (testutil.h) shared by all tests.
check_LTLIBRARIES = tests/libgradcheck.la
tests_libgradcheck_la_SOURCES = tests/unit/gradcheck.c tests/unit/gradcheck.h \
	tests/unit/testutil.c tests/unit/testutil.h
tests_libgradcheck_la_CFLAGS = $(TEST_CFLAGS)
GRADCHECK_LIBS = tests/libgradcheck.la

# solver: learning rate policies
check_PROGRAMS += tests/unit/check_lr_policy
TESTS += tests/unit/check_lr_policy
tests_unit_check_lr_policy_SOURCES = tests/unit/check_lr_policy.c
tests_unit_check_lr_policy_CFLAGS = $(TEST_CFLAGS)
tests_unit_check_lr_policy_LDADD = $(TEST_LIBS)

# solver: update rules
check_PROGRAMS += tests/unit/check_update
TESTS += tests/unit/check_update
tests_unit_check_update_SOURCES = tests/unit/check_update.c
tests_unit_check_update_CFLAGS = $(TEST_CFLAGS)
tests_unit_check_update_LDADD = $(TEST_LIBS)

# io: text format (prototxt) parser and printer; text_test.proto adds the
# scalar types, oneof, required and recursive fields caffe.proto lacks.
check_PROGRAMS += tests/unit/check_text
TESTS += tests/unit/check_text
tests_unit_check_text_SOURCES = tests/unit/check_text.c
nodist_tests_unit_check_text_SOURCES = tests/unit/text_test.pb-c.c tests/unit/text_test.pb-c.h
tests_unit_check_text_CFLAGS = $(TEST_CFLAGS) -I$(top_builddir)/tests/unit
tests_unit_check_text_LDADD = $(TEST_LIBS)
BUILT_SOURCES += tests/unit/text_test.pb-c.h tests/unit/text_test.pb-c.c
CLEANFILES += tests/unit/text_test.pb-c.h tests/unit/text_test.pb-c.c
EXTRA_DIST += tests/unit/text_test.proto tests/fuzz/fuzz_text.c tests/fuzz/corpus_text \
	tests/fuzz/text.dict
tests/unit/text_test.pb-c.c tests/unit/text_test.pb-c.h: $(srcdir)/tests/unit/text_test.proto
	@$(MKDIR_P) tests/unit
	$(AM_V_GEN)$(PROTOC_C) --proto_path=$(srcdir)/tests/unit --c_out=tests/unit \
		$(srcdir)/tests/unit/text_test.proto

# layers: softmax, losses, LRN/BatchNorm/MVN, Accuracy/ArgMax, Reduction
check_PROGRAMS += tests/unit/check_layers_c
TESTS += tests/unit/check_layers_c
tests_unit_check_layers_c_SOURCES = tests/unit/check_layers_c.c
tests_unit_check_layers_c_CFLAGS = $(TEST_CFLAGS)
tests_unit_check_layers_c_LDADD = $(GRADCHECK_LIBS) $(TEST_LIBS)

# layers: the bilinear pooling family (Bilinear, CompactBilinear, SignedSqrt,
# L2Normalize)
check_PROGRAMS += tests/unit/check_bilinear
TESTS += tests/unit/check_bilinear
tests_unit_check_bilinear_SOURCES = tests/unit/check_bilinear.c
tests_unit_check_bilinear_CFLAGS = $(TEST_CFLAGS)
tests_unit_check_bilinear_LDADD = $(GRADCHECK_LIBS) $(TEST_LIBS)

# layers: Convolution, Deconvolution, Pooling, InnerProduct, Embed, im2col, fillers
check_PROGRAMS += tests/unit/check_layers_a
TESTS += tests/unit/check_layers_a
tests_unit_check_layers_a_SOURCES = tests/unit/check_layers_a.c
tests_unit_check_layers_a_CFLAGS = $(TEST_CFLAGS)
tests_unit_check_layers_a_LDADD = $(GRADCHECK_LIBS) $(TEST_LIBS)

# libFuzzer harness for the text format, built only on request (not by make
# check):  make fuzz-text && ./fuzz_text -max_total_time=300 \
#            -dict=$(top_srcdir)/tests/fuzz/text.dict \
#            $(top_srcdir)/tests/fuzz/corpus_text
FUZZ_CC = clang
FUZZ_CFLAGS = -g -O1 -fsanitize=fuzzer,address,undefined -std=gnu11
fuzz-text: proto/caffe.pb-c.c proto/caffe.pb-c.h
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(DEFS) -I$(top_builddir) $(AM_CPPFLAGS) \
		$(top_srcdir)/tests/fuzz/fuzz_text.c $(top_srcdir)/src/io/text.c \
		$(top_srcdir)/src/io/text_print.c $(top_srcdir)/src/io/pbutil.c \
		$(top_srcdir)/src/io/file.c $(top_srcdir)/src/core/error.c proto/caffe.pb-c.c \
		$(PROTOBUF_C_LIBS) -o fuzz_text
.PHONY: fuzz-text
CLEANFILES += fuzz_text

# io: binary files, BlobProto/.npy, legacy upgrades; the upgrade/info CLI
check_PROGRAMS += tests/unit/check_binary tests/unit/check_upgrade
TESTS += tests/unit/check_binary tests/unit/check_upgrade tests/cli/upgrade.sh
tests_unit_check_binary_SOURCES = tests/unit/check_binary.c
tests_unit_check_binary_CFLAGS = $(TEST_CFLAGS)
tests_unit_check_binary_LDADD = $(GRADCHECK_LIBS) $(TEST_LIBS)
tests_unit_check_upgrade_SOURCES = tests/unit/check_upgrade.c
tests_unit_check_upgrade_CFLAGS = $(TEST_CFLAGS)
tests_unit_check_upgrade_LDADD = $(GRADCHECK_LIBS) $(TEST_LIBS)
EXTRA_DIST += tests/cli/upgrade.sh tests/cli/testlib.sh

# layers: neuron, element-wise, shape and input layers
check_PROGRAMS += tests/unit/check_layers_b
TESTS += tests/unit/check_layers_b
tests_unit_check_layers_b_SOURCES = tests/unit/check_layers_b.c
tests_unit_check_layers_b_CFLAGS = $(TEST_CFLAGS)
tests_unit_check_layers_b_LDADD = $(GRADCHECK_LIBS) $(TEST_LIBS)

# solver: training trajectories against Caffe's (tests/data/golden/solvers)
check_PROGRAMS += tests/golden/check_solvers
TESTS += tests/golden/check_solvers
tests_golden_check_solvers_SOURCES = tests/golden/check_solvers.c
tests_golden_check_solvers_CFLAGS = $(TEST_CFLAGS)
tests_golden_check_solvers_LDADD = $(TEST_LIBS)

# solver: SolverState files, atomic snapshots, signals
check_PROGRAMS += tests/unit/check_solver_state
TESTS += tests/unit/check_solver_state
tests_unit_check_solver_state_SOURCES = tests/unit/check_solver_state.c
tests_unit_check_solver_state_CFLAGS = $(TEST_CFLAGS)
tests_unit_check_solver_state_LDADD = $(TEST_LIBS)

# The binary NetParameter loader and the legacy upgrades under libFuzzer (not
# part of check):  make fuzz-binary && ./fuzz_binary -max_total_time=300 \
#                    -close_fd_mask=2 $(top_srcdir)/tests/fuzz/corpus_binary
fuzz-binary: proto/caffe.pb-c.c proto/caffe.pb-c.h
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(DEFS) -I$(top_builddir) $(AM_CPPFLAGS) \
		$(top_srcdir)/tests/fuzz/fuzz_binary.c $(top_srcdir)/src/io/upgrade.c \
		$(top_srcdir)/src/io/binary.c $(top_srcdir)/src/io/blobproto.c \
		$(top_srcdir)/src/io/file.c $(top_srcdir)/src/io/text.c \
		$(top_srcdir)/src/io/text_print.c $(top_srcdir)/src/io/pbutil.c \
		$(top_srcdir)/src/core/error.c $(top_srcdir)/src/core/log.c \
		$(top_srcdir)/src/core/blob.c proto/caffe.pb-c.c $(PROTOBUF_C_LIBS) -o fuzz_binary
.PHONY: fuzz-binary
CLEANFILES += fuzz_binary
EXTRA_DIST += tests/fuzz/fuzz_binary.c tests/fuzz/corpus_binary

# solver: crema train / crema test
TESTS += tests/cli/train.sh
EXTRA_DIST += tests/cli/train.sh

# io: PNG/JPEG decoding and encoding, OpenCV-compatible resize
check_PROGRAMS += tests/unit/check_image
TESTS += tests/unit/check_image
tests_unit_check_image_SOURCES = tests/unit/check_image.c
tests_unit_check_image_CFLAGS = $(TEST_CFLAGS)
tests_unit_check_image_LDADD = $(TEST_LIBS)

# graph: net construction, weights, memory plan, public API; golden cases
# through crema verify (tests/data/golden/layers, tests/data/nets)
check_PROGRAMS += tests/unit/check_net
TESTS += tests/unit/check_net tests/golden/run_golden.sh
tests_unit_check_net_SOURCES = tests/unit/check_net.c
tests_unit_check_net_CFLAGS = $(TEST_CFLAGS)
tests_unit_check_net_LDADD = $(GRADCHECK_LIBS) $(TEST_LIBS)
EXTRA_DIST += tests/golden/run_golden.sh

# data: LMDB, Datum, DataTransformer, the Data layer (golden), convert-imageset
check_PROGRAMS += tests/unit/check_data
TESTS += tests/unit/check_data
tests_unit_check_data_SOURCES = tests/unit/check_data.c
tests_unit_check_data_CFLAGS = $(TEST_CFLAGS)
tests_unit_check_data_LDADD = $(TEST_LIBS)

# graph: whole-net gradient checks (central differences of the loss), in
# place versus out of place, propagate_down, lr_mult, Dropout, Silence
check_PROGRAMS += tests/unit/check_net_grad
TESTS += tests/unit/check_net_grad
tests_unit_check_net_grad_SOURCES = tests/unit/check_net_grad.c
tests_unit_check_net_grad_CFLAGS = $(TEST_CFLAGS)
tests_unit_check_net_grad_LDADD = $(GRADCHECK_LIBS) $(TEST_LIBS)

# io: the cases of Caffe's own upgrade test suite (tests/data/upgrade/caffe_suite)
check_PROGRAMS += tests/unit/check_upgrade_suite
TESTS += tests/unit/check_upgrade_suite
tests_unit_check_upgrade_suite_SOURCES = tests/unit/check_upgrade_suite.c
tests_unit_check_upgrade_suite_CFLAGS = $(TEST_CFLAGS)
tests_unit_check_upgrade_suite_LDADD = $(GRADCHECK_LIBS) $(TEST_LIBS)

# lesion: synthetic dermoscopy images and the ISIC segmentation metrics;
# crema synth / crema evaluate
check_PROGRAMS += tests/unit/check_synth tests/unit/check_metrics
TESTS += tests/unit/check_synth tests/unit/check_metrics tests/cli/evaluate.sh
tests_unit_check_synth_SOURCES = tests/unit/check_synth.c
tests_unit_check_synth_CFLAGS = $(TEST_CFLAGS)
tests_unit_check_synth_LDADD = $(TEST_LIBS)
tests_unit_check_metrics_SOURCES = tests/unit/check_metrics.c
tests_unit_check_metrics_CFLAGS = $(TEST_CFLAGS)
tests_unit_check_metrics_LDADD = $(TEST_LIBS)
EXTRA_DIST += tests/cli/evaluate.sh

# math: every convolution engine against a direct reference (forward, both
# gradients), bounded scratch, the thread team
check_PROGRAMS += tests/unit/check_conv_engines
TESTS += tests/unit/check_conv_engines
tests_unit_check_conv_engines_SOURCES = tests/unit/check_conv_engines.c
tests_unit_check_conv_engines_CFLAGS = $(TEST_CFLAGS)
tests_unit_check_conv_engines_LDADD = $(TEST_LIBS)

# math: the BLAS wrappers (gemv routing, products split over the team)
check_PROGRAMS += tests/unit/check_blas
TESTS += tests/unit/check_blas
tests_unit_check_blas_SOURCES = tests/unit/check_blas.c
tests_unit_check_blas_CFLAGS = $(TEST_CFLAGS)
tests_unit_check_blas_LDADD = $(TEST_LIBS)

# Everything the tests read: fixtures (with their LICENSE files) and the
# leak suppressions .ci/run uses.
EXTRA_DIST += tests/data tests/lsan.supp

# lesion: the networks of models/lesion, lesion-db, segment; the CLI and a
# small end-to-end run (synth -> lesion-db -> train -> segment -> evaluate)
check_PROGRAMS += tests/unit/check_lesion
TESTS += tests/unit/check_lesion tests/cli/lesion_cli.sh tests/cli/lesion_e2e.sh
tests_unit_check_lesion_SOURCES = tests/unit/check_lesion.c
tests_unit_check_lesion_CFLAGS = $(TEST_CFLAGS)
tests_unit_check_lesion_LDADD = $(TEST_LIBS)
EXTRA_DIST += tests/cli/lesion_cli.sh tests/cli/lesion_e2e.sh

# graph: the wire-format weights loader and crema init; bench/run --quick
# (tests/cli/bench_quick.sh: the OpenCV side only where python3-opencv is)
check_PROGRAMS += tests/unit/check_weights_wire
TESTS += tests/unit/check_weights_wire tests/cli/bench_quick.sh
tests_unit_check_weights_wire_SOURCES = tests/unit/check_weights_wire.c
tests_unit_check_weights_wire_CFLAGS = $(TEST_CFLAGS)
tests_unit_check_weights_wire_LDADD = $(GRADCHECK_LIBS) $(TEST_LIBS)
EXTRA_DIST += tests/cli/bench_quick.sh

# Optional cross-check against OpenCV's dnn (skipped without python3-opencv).
TESTS += tests/cli/opencv_deploy.sh
EXTRA_DIST += tests/cli/opencv_deploy.sh
