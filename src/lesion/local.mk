# The lesion segmentation application (issue 5): datasets, segmentation,
# synthetic images and ISIC metrics.  Library code goes into
# libcrema_impl_la_SOURCES, the commands into src/cli/local.mk.
# Synthetic dermoscopy images and the ISIC segmentation metrics.
libcrema_impl_la_SOURCES += src/lesion/synth.c src/lesion/synth.h
libcrema_impl_la_SOURCES += src/lesion/metrics.c src/lesion/metrics.h
# Training databases (lesion-db) and segmentation (segment) with the side-output network.
libcrema_impl_la_SOURCES += src/lesion/files.c src/lesion/files.h
libcrema_impl_la_SOURCES += src/lesion/imageops.c src/lesion/imageops.h
libcrema_impl_la_SOURCES += src/lesion/dataset.c src/lesion/dataset.h
libcrema_impl_la_SOURCES += src/lesion/segment.c src/lesion/segment.h
libcrema_impl_la_SOURCES += src/lesion/postproc.c src/lesion/postproc.h
# crema.h's segmentation functions over segment.c.
libcrema_impl_la_SOURCES += src/lesion/api.c

# The lesion models, the bundled synthetic-data model and its samples.
EXTRA_DIST += models/lesion/README models/lesion/train_val.prototxt \
	models/lesion/deploy.prototxt models/lesion/solver.prototxt \
	models/lesion/train-synthetic.sh models/lesion/bundled models/lesion/samples \
	models/lesion/demo-overlay.png \
	models/vgg16/deploy.prototxt

# make install: the bundled model in $(datadir)/crema/lesion (pkg-config's
# modeldir), so that programs and scripts find it without the source tree.
lesionmodeldir = $(pkgdatadir)/lesion
lesionmodel_DATA = models/lesion/bundled/deploy.prototxt \
	models/lesion/bundled/lesion_w8_128.caffemodel

# make demo: the bundled model segments the bundled synthetic samples into
# demo/ and crema evaluate scores them against their masks.
LESION_BUNDLED = $(top_srcdir)/models/lesion/bundled
demo: crema$(EXEEXT)
	@$(MKDIR_P) demo
	./crema$(EXEEXT) segment --model $(LESION_BUNDLED)/deploy.prototxt \
		--weights $(LESION_BUNDLED)/lesion_w8_128.caffemodel --output demo \
		$(top_srcdir)/models/lesion/samples
	./crema$(EXEEXT) evaluate --truth $(top_srcdir)/models/lesion/samples --pred demo
.PHONY: demo
CLEANFILES += demo/*.png
