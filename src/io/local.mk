# Sources of src/io/
libcrema_impl_la_SOURCES += src/io/text.c src/io/text.h src/io/text_print.c src/io/text_local.h \
	src/io/pbutil.c src/io/pbutil.h
libcrema_impl_la_SOURCES += src/io/file.c src/io/file.h src/io/binary.c src/io/binary.h \
	src/io/upgrade.c src/io/upgrade.h src/io/upgrade_impl.h src/io/upgrade_v0.c \
	src/io/upgrade_v1.c src/io/upgrade_solver.c src/io/downgrade.c \
	src/io/blobproto.c src/io/blobproto.h
libcrema_impl_la_SOURCES += src/io/image.c src/io/image.h
libcrema_impl_la_SOURCES += src/io/wire.c src/io/wire.h
libcrema_impl_la_SOURCES += src/io/weights_source.c src/io/weights_source.h
