# Sources of src/io/
libcrema_impl_la_SOURCES +=
