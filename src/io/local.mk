# Sources of src/io/
libcrema_impl_la_SOURCES += src/io/text.c src/io/text_print.c src/io/text_local.h \
	src/io/pbutil.c src/io/pbutil.h
libcrema_impl_la_SOURCES += src/io/file.c src/io/binary.c src/io/upgrade.c src/io/blobproto.c
libcrema_impl_la_SOURCES += src/io/image.c src/io/image.h
