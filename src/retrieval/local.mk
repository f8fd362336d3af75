# Similarity retrieval (issue 16): feature databases in Caffe's
# extract_features layout, exact nearest neighbours by blocked products,
# retrieval measures and the HTML report.  The commands are in src/cli.
libcrema_impl_la_SOURCES += src/retrieval/features.c src/retrieval/features.h
libcrema_impl_la_SOURCES += src/retrieval/knn.c src/retrieval/knn.h
libcrema_impl_la_SOURCES += src/retrieval/queries.c src/retrieval/queries.h
libcrema_impl_la_SOURCES += src/retrieval/maskpool.c src/retrieval/maskpool.h
libcrema_impl_la_SOURCES += src/retrieval/measures.c src/retrieval/measures.h
libcrema_impl_la_SOURCES += src/retrieval/report.c src/retrieval/report.h

# The FIG. 9 pattern-discovery network and the README's example.
EXTRA_DIST += models/patterns/README models/patterns/train_val.prototxt \
	models/patterns/solver.prototxt models/patterns/run-example.sh
