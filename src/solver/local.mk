# Sources of src/solver/
libcrema_impl_la_SOURCES +=
