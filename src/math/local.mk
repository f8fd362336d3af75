# Sources of src/math/: BLAS wrappers, im2col, fillers, element-wise kernels.
libcrema_impl_la_SOURCES += \
	src/math/blas.c src/math/blas.h
