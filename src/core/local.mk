# Sources of src/core/: errors, blobs, random numbers, logging, the clock
# and the thread team.
libcrema_impl_la_SOURCES += \
	src/core/error.c src/core/error.h \
	src/core/memcap.c src/core/memcap.h \
	src/core/blob.c src/core/blob.h \
	src/core/rng.c src/core/rng.h \
	src/core/log.c src/core/log.h \
	src/core/clock.c src/core/clock.h \
	src/core/parallel.c src/core/parallel.h \
	src/core/options.c src/core/options.h
