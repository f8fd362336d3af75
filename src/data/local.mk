# Sources of src/data/
libcrema_impl_la_SOURCES +=
