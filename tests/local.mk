# The test suite (Check).  A test program is one file,
# tests/unit/check_<what>.c (or tests/golden/check_<what>.c), named after
# what it tests: adding one is one line, CHECK_UNITS += its name.  Every
# program is built from its file alone with the test flags and linked with
# the gradient checker, the test helpers and the library (the defaults
# below); only programs with more to them (check_text) have a block.
TEST_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
TEST_LIBS = libcrema_impl.la $(CHECK_LIBS)
AM_CFLAGS += $(CHECK_CFLAGS)
LDADD = $(GRADCHECK_LIBS) $(TEST_LIBS)
CHECK_UNITS =
# Tests find their fixtures through these.
AM_TESTS_ENVIRONMENT = \
	CREMA_TEST_DATA='$(abs_top_srcdir)/tests/data'; export CREMA_TEST_DATA; \
	CREMA_BIN='$(abs_top_builddir)/crema'; export CREMA_BIN; \
	CK_DEFAULT_TIMEOUT=600; export CK_DEFAULT_TIMEOUT; \
	CREMA_MPI='$(CREMA_MPI)'; export CREMA_MPI; \
	MPIRUN='$(MPIRUN)'; export MPIRUN;

# The numeric gradient checker shared by the layer tests, and the helpers
# (testutil.h) shared by all tests.
check_LTLIBRARIES = tests/libgradcheck.la
tests_libgradcheck_la_SOURCES = tests/unit/gradcheck.c tests/unit/gradcheck.h \
	tests/unit/testutil.c tests/unit/testutil.h
tests_libgradcheck_la_CFLAGS = $(TEST_CFLAGS)
GRADCHECK_LIBS = tests/libgradcheck.la

# solver: learning rate policies
CHECK_UNITS += tests/unit/check_lr_policy

# solver: update rules
CHECK_UNITS += tests/unit/check_update

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
EXTRA_DIST += tests/unit/text_test.proto
tests/unit/text_test.pb-c.c tests/unit/text_test.pb-c.h: $(srcdir)/tests/unit/text_test.proto
	@$(MKDIR_P) tests/unit
	$(AM_V_GEN)$(PROTOC_C) --proto_path=$(srcdir)/tests/unit --c_out=tests/unit \
		$(srcdir)/tests/unit/text_test.proto

# layers: softmax, losses, LRN/BatchNorm/MVN, Accuracy/ArgMax, Reduction
CHECK_UNITS += tests/unit/check_layers_loss_norm_metric

# layers: the bilinear pooling family (Bilinear, CompactBilinear, SignedSqrt,
# L2Normalize)
CHECK_UNITS += tests/unit/check_bilinear

# retrieval: feature databases, nearest neighbours, retrieval measures
check_PROGRAMS += tests/unit/check_retrieval
TESTS += tests/unit/check_retrieval
tests_unit_check_retrieval_SOURCES = tests/unit/check_retrieval.c
tests_unit_check_retrieval_CFLAGS = $(TEST_CFLAGS)
tests_unit_check_retrieval_LDADD = $(GRADCHECK_LIBS) $(TEST_LIBS)
TESTS += tests/cli/retrieve.sh tests/cli/retrieve_html.sh tests/cli/retrieve_images.sh \
	tests/cli/retrieve_masks.sh
EXTRA_DIST += tests/cli/retrieve.sh tests/cli/retrieve_html.sh tests/cli/retrieve_images.sh \
	tests/cli/retrieve_masks.sh

# layers: Convolution, Deconvolution, Pooling, InnerProduct, Embed, im2col, fillers
CHECK_UNITS += tests/unit/check_layers_conv_pool_ip

# io: binary files, BlobProto/.npy, legacy upgrades; the upgrade/info CLI
CHECK_UNITS += tests/unit/check_binary tests/unit/check_upgrade
TESTS += tests/cli/upgrade.sh
EXTRA_DIST += tests/cli/upgrade.sh tests/cli/testlib.sh

# layers: neuron, element-wise, shape and input layers
CHECK_UNITS += tests/unit/check_layers_neuron_eltwise_shape

# solver: training trajectories against Caffe's (tests/data/golden/solvers)
CHECK_UNITS += tests/golden/check_solvers

# solver: SolverState files, atomic snapshots, signals
CHECK_UNITS += tests/unit/check_solver_state

# solver: crema train / crema test
TESTS += tests/cli/train.sh
EXTRA_DIST += tests/cli/train.sh

# io: PNG/JPEG decoding and encoding, OpenCV-compatible resize
CHECK_UNITS += tests/unit/check_image

# graph: net construction, weights, memory plan, public API; golden cases
# through crema verify (tests/data/golden/layers, tests/data/nets)
CHECK_UNITS += tests/unit/check_net
TESTS += tests/golden/run_golden.sh
EXTRA_DIST += tests/golden/run_golden.sh

# data: LMDB, Datum, DataTransformer, the Data layer (golden), convert-imageset
CHECK_UNITS += tests/unit/check_data

# graph: whole-net gradient checks (central differences of the loss), in
# place versus out of place, propagate_down, lr_mult, Dropout, Silence
CHECK_UNITS += tests/unit/check_net_grad

# io: the cases of Caffe's own upgrade test suite (tests/data/upgrade/caffe_suite)
CHECK_UNITS += tests/unit/check_upgrade_suite

# lesion: synthetic dermoscopy images and the ISIC segmentation metrics;
# crema synth / crema evaluate
CHECK_UNITS += tests/unit/check_synth tests/unit/check_metrics
TESTS += tests/cli/evaluate.sh
EXTRA_DIST += tests/cli/evaluate.sh

# math: every convolution engine against a direct reference (forward, both
# gradients), bounded scratch, the thread team
CHECK_UNITS += tests/unit/check_conv_engines

# math: the BLAS wrappers (gemv routing, products split over the team)
CHECK_UNITS += tests/unit/check_blas

# Everything the tests read: fixtures (with their LICENSE files) and the
# leak suppressions .ci/run uses.
EXTRA_DIST += tests/data tests/lsan.supp

# lesion: the networks of models/lesion, lesion-db, segment; the CLI and a
# small end-to-end run (synth -> lesion-db -> train -> segment -> evaluate)
CHECK_UNITS += tests/unit/check_lesion
TESTS += tests/cli/lesion_cli.sh tests/cli/lesion_e2e.sh
EXTRA_DIST += tests/cli/lesion_cli.sh tests/cli/lesion_e2e.sh

# The workflow gaps of issue 15: help, aliases, lesion-db progress, --size
# checks, duplicate IDs, quiet logs
TESTS += tests/cli/workflow.sh
EXTRA_DIST += tests/cli/workflow.sh

# lesion: the library segments by itself (crema.h), as crema segment does;
# the example links with the public libcrema only
check_PROGRAMS += tests/cli/segment_example
tests_cli_segment_example_SOURCES = tests/cli/segment_example.c
tests_cli_segment_example_LDADD = libcrema.la
TESTS += tests/cli/segment_api.sh
EXTRA_DIST += tests/cli/segment_api.sh

# lesion: segment's post-processing (--keep, --fill-holes) and test-time flips
CHECK_UNITS += tests/unit/check_postproc
TESTS += tests/cli/segment_post.sh
EXTRA_DIST += tests/cli/segment_post.sh

# io: the wire-format weights reader (io/weights_source.c) and crema init; bench/run --quick
# (tests/cli/bench_quick.sh: the OpenCV side only where python3-opencv is)
CHECK_UNITS += tests/unit/check_weights_wire
TESTS += tests/cli/bench_quick.sh
EXTRA_DIST += tests/cli/bench_quick.sh

# dist: gradient sums and broadcasts through the in-process backend; the
# data-parallel solver on ranks that are threads
CHECK_UNITS += tests/unit/check_dist

# dist: data-parallel training under mpirun (skipped unless --with-mpi and
# mpirun); cmp_models compares the snapshots
check_PROGRAMS += tests/mpi/cmp_models
TESTS += tests/mpi/run.sh
EXTRA_DIST += tests/mpi/run.sh tools/mpirun-local

check_PROGRAMS += $(CHECK_UNITS)
TESTS += $(CHECK_UNITS)

# The symbols libcrema exports (only those of src/crema.h), and the
# dependency picture of src/ (tools/check-layering: a strict layering of
# the folders, no include cycle).
TESTS += tests/cli/exports.sh tests/cli/layering.sh
EXTRA_DIST += tests/cli/exports.sh tests/cli/layering.sh tools/check-layering

# Optional cross-check against OpenCV's dnn (skipped without python3-opencv).
TESTS += tests/cli/opencv_deploy.sh
EXTRA_DIST += tests/cli/opencv_deploy.sh

# Caffe's file rules: weights, mean files and solver states binary whatever
# their names (only .prototxt/.pbtxt are text); crema info on them.
TESTS += tests/cli/file_rules.sh
EXTRA_DIST += tests/cli/file_rules.sh

# crema time, with and without --forward-only (no gradient storage).
TESTS += tests/cli/time.sh
EXTRA_DIST += tests/cli/time.sh

# Full-width VGG-16 and lesion nets under every convolution engine: forward
# against OpenCV's dnn, gradients against float64 (skipped without
# python3-opencv); and issue 14's AdaDelta lesion case under each engine.
TESTS += tests/cli/full_width.sh tests/cli/lesion_adadelta.sh
EXTRA_DIST += tests/cli/full_width.sh tests/cli/full_width.py tests/cli/lesion_adadelta.sh

# Crash safety: kill -9 during snapshots and database/mask output, a full
# disk, convert-imageset with no record to write.
TESTS += tests/cli/crash_safety.sh
EXTRA_DIST += tests/cli/crash_safety.sh

# Resource limits: hostile sizes refused within the memory cap.
TESTS += tests/cli/resource_limits.sh
EXTRA_DIST += tests/cli/resource_limits.sh
