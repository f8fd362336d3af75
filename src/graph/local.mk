# Sources of src/graph/: the network, its memory plan, weights, the public API.
libcrema_impl_la_SOURCES += \
	src/graph/net.c src/graph/net.h \
	src/graph/plan.c src/graph/plan.h \
	src/graph/weights.c src/graph/weights.h \
	src/graph/stride.c src/graph/stride.h \
	src/graph/api.c src/graph/api.h
