# Fuzzing (tests/fuzz): one libFuzzer harness per reader of untrusted bytes.
#   make check     replays each harness's corpus (corpus_<reader>: seeds
#                  and every input that ever crashed it) with the ordinary
#                  compiler: replay_<reader>.
#   make fuzz      builds fuzz_<reader> with clang and libFuzzer (configure
#                  finds clang with -fsanitize=fuzzer; see tests/fuzz/fuzz.mk).
#   make fuzz-run FUZZ_SECONDS=20   runs each for that long (tools/fuzz-long),
#                  new inputs in fuzz-work/, and prints executions and coverage.
FUZZ_READERS = text binary solver datum png jpeg blobproto npy solverstate flags
FUZZ_REPLAYS = tests/fuzz/replay_text tests/fuzz/replay_binary tests/fuzz/replay_solver \
	tests/fuzz/replay_datum tests/fuzz/replay_png tests/fuzz/replay_jpeg \
	tests/fuzz/replay_blobproto tests/fuzz/replay_npy tests/fuzz/replay_solverstate \
	tests/fuzz/replay_flags
check_PROGRAMS += $(FUZZ_REPLAYS)
TESTS += $(FUZZ_REPLAYS)
AM_TESTS_ENVIRONMENT += CREMA_FUZZ_DIR='$(abs_top_srcdir)/tests/fuzz'; export CREMA_FUZZ_DIR;
FUZZ_COMMON = tests/fuzz/replay.c tests/fuzz/fuzz.h
tests_fuzz_replay_text_SOURCES = tests/fuzz/fuzz_text.c $(FUZZ_COMMON)
tests_fuzz_replay_binary_SOURCES = tests/fuzz/fuzz_binary.c $(FUZZ_COMMON)
tests_fuzz_replay_solver_SOURCES = tests/fuzz/fuzz_solver.c $(FUZZ_COMMON)
tests_fuzz_replay_datum_SOURCES = tests/fuzz/fuzz_datum.c $(FUZZ_COMMON)
tests_fuzz_replay_png_SOURCES = tests/fuzz/fuzz_png.c tests/fuzz/fuzz_image.h $(FUZZ_COMMON)
tests_fuzz_replay_jpeg_SOURCES = tests/fuzz/fuzz_jpeg.c tests/fuzz/fuzz_image.h $(FUZZ_COMMON)
tests_fuzz_replay_blobproto_SOURCES = tests/fuzz/fuzz_blobproto.c $(FUZZ_COMMON)
tests_fuzz_replay_npy_SOURCES = tests/fuzz/fuzz_npy.c $(FUZZ_COMMON)
tests_fuzz_replay_solverstate_SOURCES = tests/fuzz/fuzz_solverstate.c $(FUZZ_COMMON)
tests_fuzz_replay_flags_SOURCES = tests/fuzz/fuzz_flags.c src/cli/flags.c src/cli/flags.h \
	$(FUZZ_COMMON)
EXTRA_DIST += tests/fuzz tools/fuzz-long

fuzz: $(BUILT_SOURCES)
	@if test -z '$(FUZZ_CC)'; then \
	  echo 'make fuzz: no clang with -fsanitize=fuzzer was found by configure: install the Debian package clang and rerun configure' >&2; \
	  exit 1; fi
	$(AM_V_at)$(MAKE) -f $(srcdir)/tests/fuzz/fuzz.mk srcdir='$(srcdir)' FUZZ_CC='$(FUZZ_CC)' \
	  CPPFLAGS='$(DEFS) -I. $(AM_CPPFLAGS) $(CPPFLAGS)' LIBS='$(CREMA_DEP_LIBS) $(LIBS)' \
	  LIB_SOURCES='$(libcrema_impl_la_SOURCES) $(nodist_libcrema_impl_la_SOURCES) src/cli/flags.c' \
	  READERS='$(FUZZ_READERS)'
FUZZ_SECONDS = 20
fuzz-run: fuzz
	$(srcdir)/tools/fuzz-long $(FUZZ_SECONDS) $(FUZZ_READERS)
.PHONY: fuzz fuzz-run
mostlyclean-local: clean-fuzz
clean-fuzz:
	-rm -rf fuzz-obj fuzz-work
	-for r in $(FUZZ_READERS); do rm -f fuzz_$$r; done
.PHONY: clean-fuzz
