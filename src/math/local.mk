# Sources of src/math/: BLAS wrappers, im2col, fillers, element-wise kernels.
libcrema_impl_la_SOURCES += \
	src/math/blas.c src/math/blas.h \
	src/math/im2col.c src/math/im2col.h src/math/conv_engine.c src/math/conv_engine.h \
	src/math/conv_direct.c src/math/conv_depthwise.c src/math/simd.h \
	src/math/winograd.c src/math/winograd_wgrad.c src/math/winograd_wgrad.h \
	src/math/winograd_points.h \
	src/math/filler.c src/math/filler.h src/math/activation.h \
	src/math/elementwise.c src/math/elementwise.h \
	src/math/pooling.c src/math/pooling.h
