# Similarity retrieval (issue 16): feature databases in Caffe's
# extract_features layout, exact nearest neighbours by blocked products,
# retrieval measures and the HTML report.  The commands are in src/cli.
libcrema_impl_la_SOURCES += src/retrieval/features.c src/retrieval/features.h
libcrema_impl_la_SOURCES += src/retrieval/knn.c src/retrieval/knn.h
libcrema_impl_la_SOURCES += src/retrieval/measures.c src/retrieval/measures.h
libcrema_impl_la_SOURCES += src/retrieval/report.c src/retrieval/report.h
