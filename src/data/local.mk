# Sources of src/data/
libcrema_impl_la_SOURCES += \
	src/data/lmdb_source.c src/data/lmdb_source.h \
	src/data/datum.c src/data/datum.h \
	src/data/transform.c src/data/transform.h
