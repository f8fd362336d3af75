# Sources of src/graph/
libcrema_impl_la_SOURCES +=
