/* crema compute-image-mean: Caffe's compute_image_mean tool.  Averages the
 * records of a database into a mean file (BlobProto in the legacy layout:
 * num 1, channels, height, width, float data). */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "caffe.pb-c.h"
#include "cli/cli.h"
#include "cli/flags.h"
#include "core/log.h"
#include "data/datum.h"
#include "data/lmdb_source.h"
#include "io/binary.h"

static const char usage[] = "crema compute-image-mean [flags] INPUT_DB [OUTPUT_FILE]";
static const char description[] =
    "Computes the mean image of the records of an LMDB database, as Caffe's\n"
    "compute_image_mean, and writes it to OUTPUT_FILE (a .binaryproto usable as\n"
    "transform_param.mean_file).  Encoded records are decoded as stored.";

typedef struct mean_sum {
  int channels, height, width;
  float *sum; /* float, as Caffe accumulates in the BlobProto itself */
  size_t size;
  size_t count;
} mean_sum;

static crema_status add_record(lmdb_source *src, mean_sum *m, crema_error *err) {
  const void *value;
  size_t len;
  lmdb_source_value(src, &value, &len);
  Caffe__Datum *d;
  CREMA_TRY(datum_parse(value, len, &d, err));
  datum_pixels px;
  crema_status st = datum_pixels_get(d, IMAGE_NATIVE, &px, err);
  if (st == CREMA_OK) {
    size_t size = (size_t)px.channels * px.height * px.width;
    if (!m->sum) {
      m->channels = px.channels;
      m->height = px.height;
      m->width = px.width;
      m->size = size;
      if (!(m->sum = crema_calloc(size, sizeof(float), err)))
        st = CREMA_ERR_NOMEM;
    } else if (size != m->size) {
      st = crema_fail(err, CREMA_ERR_SHAPE,
                      "incorrect data field size %zu: the first record has %dx%dx%d = %zu", size,
                      m->channels, m->height, m->width, m->size);
    }
    for (size_t i = 0; st == CREMA_OK && i < size; i++)
      m->sum[i] += px.bytes ? (float)px.bytes[i] : px.floats[i];
    datum_pixels_free(&px);
  }
  protobuf_c_message_free_unpacked(&d->base, NULL);
  if (st == CREMA_OK)
    m->count++;
  return st;
}

static crema_status write_mean(const mean_sum *m, const char *path, crema_error *err) {
  Caffe__BlobProto bp;
  caffe__blob_proto__init(&bp);
  bp.has_num = bp.has_channels = bp.has_height = bp.has_width = 1;
  bp.num = 1;
  bp.channels = m->channels;
  bp.height = m->height;
  bp.width = m->width;
  bp.n_data = m->size;
  bp.data = m->sum;
  LOG_INFO("Write to %s", path);
  return bin_write_file(path, &bp.base, err);
}

static void log_channel_means(const mean_sum *m) {
  size_t dim = (size_t)m->height * m->width;
  LOG_INFO("Number of channels: %d", m->channels);
  for (int c = 0; c < m->channels; c++) {
    float total = 0.f;
    for (size_t i = 0; i < dim; i++)
      total += m->sum[dim * c + i];
    LOG_INFO("mean_value channel [%d]: %g", c, total / (float)dim);
  }
}

static crema_status compute_mean(const char *db, const char *out, const char *backend,
                                 crema_error *err) {
  if (!strcasecmp(backend, "leveldb"))
    return crema_fail(err, CREMA_ERR_UNSUPPORTED,
                      "LEVELDB is not supported: crema reads LMDB only (rebuild the database "
                      "with `crema convert-imageset --backend=lmdb`)");
  if (strcasecmp(backend, "lmdb"))
    return crema_fail(err, CREMA_ERR_INVALID, "unknown backend '%s' (use lmdb)", backend);
  lmdb_source *src;
  CREMA_TRY(lmdb_source_open(db, &src, err));
  mean_sum m = {0};
  crema_status st = CREMA_OK;
  LOG_INFO("Starting iteration");
  size_t n = lmdb_source_count(src);
  for (size_t i = 0; st == CREMA_OK && i < n; i++) {
    st = add_record(src, &m, err);
    if (st != CREMA_OK) {
      char key[256];
      crema_error_prefix(err, "database '%s', key '%s': ", db,
                         lmdb_source_key_string(src, key, sizeof key));
      break;
    }
    if (m.count % 10000 == 0)
      LOG_INFO("Processed %zu files.", m.count);
    st = lmdb_source_next(src, NULL, err);
  }
  lmdb_source_close(src);
  if (st == CREMA_OK) {
    if (m.count % 10000 != 0)
      LOG_INFO("Processed %zu files.", m.count);
    for (size_t i = 0; i < m.size; i++)
      m.sum[i] /= (float)m.count;
    if (out)
      st = write_mean(&m, out, err);
    if (st == CREMA_OK)
      log_channel_means(&m);
  }
  free(m.sum);
  return st;
}

int cmd_compute_image_mean(int argc, char **argv) {
  const char *backend = "lmdb";
  const flag_spec specs[] = {
      {"backend", FLAG_STRING, &backend, "the backend containing the images (lmdb)"},
  };
  crema_error err = {CREMA_OK, ""};
  flag_result res;
  if (flags_parse(argc, argv, specs, 1, &res, &err) != CREMA_OK)
    return cli_report("compute-image-mean", &err);
  int rc = 0;
  if (res.help) {
    flags_print_usage(stdout, usage, description, specs, 1);
  } else if (res.npositional < 1 || res.npositional > 2) {
    fprintf(stderr,
            "crema compute-image-mean: expected INPUT_DB [OUTPUT_FILE], got %d arguments; see "
            "--help\n",
            res.npositional);
    rc = 2;
  } else if (compute_mean(res.positional[0], res.npositional == 2 ? res.positional[1] : NULL,
                          backend, &err) != CREMA_OK) {
    rc = cli_report("compute-image-mean", &err);
  }
  flags_result_free(&res);
  return rc;
}
