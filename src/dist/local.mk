# Sources of src/dist/: gradient sums and broadcasts for data-parallel
# training; the MPI backend only with ./configure --with-mpi.
libcrema_impl_la_SOURCES += \
	src/dist/dist.c src/dist/dist.h \
	src/dist/threads.c
if WITH_MPI
libcrema_impl_la_SOURCES += src/dist/mpi.c
endif
EXTRA_DIST += src/dist/mpi.c
