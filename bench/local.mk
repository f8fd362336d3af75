# Benchmarks (bench/run, `make bench`): crema against OpenCV's dnn module.
# crema_bench is the crema side of bench/run, one measurement per process.
noinst_PROGRAMS += bench/crema_bench
bench_crema_bench_SOURCES = bench/crema_bench.c
bench_crema_bench_LDADD = libcrema_impl.la
EXTRA_DIST += bench/run bench/opencv_bench.py bench/vgg16.sh

# bench/retrieve (`make bench-retrieve`): nearest-neighbour search speed.
noinst_PROGRAMS += bench/retrieve_bench
bench_retrieve_bench_SOURCES = bench/retrieve_bench.c
bench_retrieve_bench_LDADD = libcrema_impl.la
EXTRA_DIST += bench/retrieve
bench-retrieve: bench/retrieve_bench$(EXEEXT)
	CREMA_RETRIEVE_BENCH_BIN='$(abs_top_builddir)/bench/retrieve_bench' \
	$(SHELL) '$(abs_top_srcdir)/bench/retrieve'
.PHONY: bench-retrieve

# Weights and logs go to bench-data/ in the build tree; BENCH_FLAGS passes
# options (e.g. BENCH_FLAGS=--quick).
bench: crema$(EXEEXT) bench/crema_bench$(EXEEXT)
	CREMA_BIN='$(abs_top_builddir)/crema' \
	CREMA_BENCH_BIN='$(abs_top_builddir)/bench/crema_bench' \
	$(SHELL) '$(abs_top_srcdir)/bench/run' --workdir '$(abs_top_builddir)/bench-data' $(BENCH_FLAGS)
.PHONY: bench
