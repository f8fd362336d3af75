# Sources of src/layers/: one layer family per file.
libcrema_impl_la_SOURCES += \
	src/layers/layer.c src/layers/layer.h \
	src/layers/registry.c src/layers/registry.h src/layers/types.def \
	src/layers/conv.c src/layers/conv.h src/layers/pool.c src/layers/inner_product.c \
	src/layers/embed.c
libcrema_impl_la_SOURCES += \
	src/layers/softmax.c src/layers/softmax.h src/layers/loss.c src/layers/norm.c \
	src/layers/metric.c src/layers/reduction.c
libcrema_impl_la_SOURCES += \
	src/layers/neuron.c src/layers/eltwise.c src/layers/shape.c src/layers/input.c
libcrema_impl_la_SOURCES += src/layers/data.c src/layers/bilinear.c
