# Sources of src/layers/: one layer family per file.
libcrema_impl_la_SOURCES += \
	src/layers/layer.c src/layers/layer.h \
	src/layers/registry.c src/layers/registry.h
