# The libFuzzer build, run by `make fuzz` from the build tree (GNU make).
# The library is compiled a second time with clang, coverage and the
# sanitizers, from the very source list of libcrema_impl.la (passed in as
# LIB_SOURCES), so a file added to the library is in the harnesses too.
#   srcdir FUZZ_CC CPPFLAGS LIBS LIB_SOURCES READERS: set by tests/fuzz/local.mk
FUZZ_CFLAGS ?= -g -O1 -fno-omit-frame-pointer -std=gnu11 \
	-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined
FUZZ_LINK_FLAGS = $(subst fuzzer-no-link,fuzzer,$(FUZZ_CFLAGS))
OBJDIR = fuzz-obj
LIB_OBJS = $(patsubst %.c,$(OBJDIR)/%.o,$(filter %.c,$(LIB_SOURCES)))
HARNESSES = $(addprefix fuzz_,$(READERS))

vpath %.c $(srcdir)

all: $(HARNESSES)

$(OBJDIR)/%.o: %.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(CPPFLAGS) -MMD -MP -c $< -o $@

$(OBJDIR)/libcrema_fuzz.a: $(LIB_OBJS)
	rm -f $@ && ar rcs $@ $(LIB_OBJS)

fuzz_%: $(OBJDIR)/tests/fuzz/fuzz_%.o $(OBJDIR)/libcrema_fuzz.a
	$(FUZZ_CC) $(FUZZ_LINK_FLAGS) $^ $(LIBS) -o $@

.PHONY: all
.SECONDARY:
-include $(LIB_OBJS:.o=.d) $(patsubst %,$(OBJDIR)/tests/fuzz/%.d,$(HARNESSES))
