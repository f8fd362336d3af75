/* Similarity retrieval: feature databases in Caffe's extract_features
 * layout, bit-equal to the forward pass; exact nearest neighbours against
 * a double-precision brute force; the retrieval measures worked by hand. */
#include "config.h"

#define _XOPEN_SOURCE 700
#include <check.h>
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/datum.h"
#include "data/lmdb_source.h"
#include "graph/net.h"
#include "graph/weights.h"
#include "retrieval/features.h"
#include "retrieval/knn.h"
#include "retrieval/measures.h"
#include "retrieval/queries.h"
#include "io/file.h"
#include "io/image.h"
#include "retrieval/report.h"
#include "tests/unit/testutil.h"

/* ---- scratch directory (testutil.h) ---- */

/* ---- a small net over a small image database ------------------------------------------------ */

enum { RECORDS = 7, BATCH = 3 };

/* RECORDS raw 3 x 6 x 6 records with keys img_I and labels I % 3. */
static void make_source(const char *path) {
  crema_error err = {0};
  lmdb_writer *w;
  ck_assert_msg(lmdb_writer_create(path, &w, &err) == CREMA_OK, "%s", err.message);
  unsigned char bytes[108];
  for (int r = 0; r < RECORDS; r++) {
    for (int i = 0; i < 108; i++)
      bytes[i] = (unsigned char)((r * 37 + i * 11) % 251);
    Caffe__Datum d = CAFFE__DATUM__INIT;
    d.has_channels = d.has_height = d.has_width = d.has_data = d.has_label = 1;
    d.channels = 3;
    d.height = d.width = 6;
    d.data.data = bytes;
    d.data.len = sizeof bytes;
    d.label = r % 3;
    unsigned char *buf;
    size_t len;
    ck_assert_int_eq(datum_pack(&d, &buf, &len, &err), CREMA_OK);
    char key[32];
    snprintf(key, sizeof key, "img_%d", r);
    ck_assert_int_eq(lmdb_writer_put(w, key, strlen(key), buf, len, &err), CREMA_OK);
    free(buf);
  }
  ck_assert_int_eq(lmdb_writer_finish(w, &err), CREMA_OK);
}

static void net_text(char *text, size_t size, const char *source) {
  snprintf(text, size,
           "name: 't' "
           "layer { name: 'data' type: 'Data' top: 'data' top: 'label' transform_param { scale: "
           "0.01 } data_param { source: '%s' batch_size: %d backend: LMDB } } "
           "layer { name: 'conv' type: 'Convolution' bottom: 'data' top: 'conv' "
           "convolution_param { num_output: 4 kernel_size: 3 weight_filler { type: 'gaussian' "
           "std: 0.3 } bias_filler { type: 'constant' value: 0.1 } } } "
           "layer { name: 'relu' type: 'ReLU' bottom: 'conv' top: 'conv' } "
           "layer { name: 'pool' type: 'Pooling' bottom: 'conv' top: 'pool' "
           "pooling_param { pool: AVE global_pooling: true } } "
           "layer { name: 'sil' type: 'Silence' bottom: 'label' }",
           source, BATCH);
}

static net *open_net(const char *source, int keep_all) {
  char text[2048];
  net_text(text, sizeof text, source);
  Caffe__NetParameter *p = test_parse_net_text(text);
  net_options o;
  net_options_init(&o, CAFFE__PHASE__TEST);
  o.keep_all = keep_all;
  net *n;
  crema_error err = {0};
  ck_assert_msg(net_create(p, &o, &n, &err) == CREMA_OK, "%s", err.message);
  protobuf_c_message_free_unpacked(&p->base, NULL);
  return n;
}

/* Runs a fresh net forward `batches` times and returns blob `name` of all
 * samples, concatenated. */
static float *forward_reference(const char *source, const char *name, int batches,
                                size_t *dim) {
  net *n = open_net(source, 1);
  crema_error err = {0};
  const blob *b = net_blob_by_name(n, name);
  *dim = b->count / (size_t)b->shape[0];
  float *all = malloc((size_t)batches * b->count * sizeof(float));
  for (int i = 0; i < batches; i++) {
    ck_assert_msg(net_forward(n, NULL, &err) == CREMA_OK, "%s", err.message);
    memcpy(all + (size_t)i * b->count, b->data, b->count * sizeof(float));
  }
  net_free(n);
  return all;
}

/* Checks a database against the reference values: Caffe's layout, and
 * the floats bit for bit. */
static void check_db(const char *path, const float *ref, size_t dim, long samples, int c, int h,
                     int w, int with_source) {
  crema_error err = {0};
  lmdb_source *s;
  ck_assert_msg(lmdb_source_open(path, &s, &err) == CREMA_OK, "%s", err.message);
  ck_assert_uint_eq(lmdb_source_count(s), (size_t)samples);
  for (long i = 0; i < samples; i++) {
    char want[64], key[256];
    if (with_source)
      snprintf(want, sizeof want, "%010ld_img_%ld", i, i % RECORDS);
    else
      snprintf(want, sizeof want, "%010ld", i);
    ck_assert_str_eq(lmdb_source_key_string(s, key, sizeof key), want);
    const void *v;
    size_t len;
    lmdb_source_value(s, &v, &len);
    Caffe__Datum *d;
    ck_assert_int_eq(datum_parse(v, len, &d, &err), CREMA_OK);
    ck_assert_int_eq(d->channels, c);
    ck_assert_int_eq(d->height, h);
    ck_assert_int_eq(d->width, w);
    ck_assert(!d->has_data || d->data.len == 0);
    ck_assert_uint_eq(d->n_float_data, dim);
    ck_assert_msg(!memcmp(d->float_data, ref + (size_t)i * dim, dim * sizeof(float)),
                  "%s: sample %ld differs from the forward pass", path, i);
    ck_assert_int_eq(d->label, with_source ? (int)(i % RECORDS) % 3 : 0);
    protobuf_c_message_free_unpacked(&d->base, NULL);
    ck_assert_int_eq(lmdb_source_next(s, NULL, &err), CREMA_OK);
  }
  lmdb_source_close(s);
}

START_TEST(extract_matches_forward_in_caffe_layout) {
  test_scratch_make("check-retrieval");
  const char *src = test_scratch_path("src");
  make_source(src);
  size_t dconv, dpool;
  float *conv = forward_reference(src, "conv", 3, &dconv);
  float *pool = forward_reference(src, "pool", 3, &dpool);
  ck_assert_uint_eq(dconv, 4 * 4 * 4);
  ck_assert_uint_eq(dpool, 4);

  /* Two blobs, 3 batches of 3: 9 samples, the source wrapping around. */
  net *n = open_net(src, 1);
  const char *blobs[] = {"conv", "pool"};
  const char *dbs[] = {test_scratch_path("conv_db"), test_scratch_path("pool_db")};
  features_extract_options o = {.blobs = blobs, .dbs = dbs, .nblobs = 2, .batches = 3};
  long written[2];
  crema_error err = {0};
  ck_assert_msg(features_extract(n, &o, written, &err) == CREMA_OK, "%s", err.message);
  net_free(n);
  ck_assert_int_eq(written[0], 9);
  check_db(dbs[0], conv, dconv, 9, 4, 4, 4, 0);
  check_db(dbs[1], pool, dpool, 9, 4, 1, 1, 0);

  /* An existing database is an error, and no temporary is left. */
  n = open_net(src, 1);
  ck_assert_int_ne(features_extract(n, &o, written, &err), CREMA_OK);
  ck_assert_msg(strstr(err.message, "already exists"), "%s", err.message);
  net_free(n);

  /* Exactly 7 samples, with the source's labels and keys. */
  n = open_net(src, 1);
  const char *db7[] = {test_scratch_path("pool7")};
  features_extract_options o7 = {.blobs = blobs + 1, .dbs = db7, .nblobs = 1, .batches = 1,
                                 .count = RECORDS, .source = features_net_source(n)};
  ck_assert_str_eq(o7.source, src);
  ck_assert_msg(features_extract(n, &o7, written, &err) == CREMA_OK, "%s", err.message);
  net_free(n);
  ck_assert_int_eq(written[0], RECORDS);
  check_db(db7[0], pool, dpool, RECORDS, 4, 1, 1, 1);

  /* Loading for retrieval. */
  feature_set fs;
  ck_assert_msg(feature_set_load(db7[0], &fs, &err) == CREMA_OK, "%s", err.message);
  ck_assert_uint_eq(fs.n, RECORDS);
  ck_assert_uint_eq(fs.dim, 4);
  ck_assert(!memcmp(fs.data, pool, RECORDS * 4 * sizeof(float)));
  ck_assert_str_eq(feature_key_source(fs.keys[5]), "img_5");
  ck_assert_int_eq(fs.labels[5], 2);
  feature_set_free(&fs);

  /* A blob the net lacks. */
  n = open_net(src, 1);
  const char *nope[] = {"nope"}, *nope_db[] = {test_scratch_path("nope")};
  features_extract_options on = {.blobs = nope, .dbs = nope_db, .nblobs = 1, .batches = 1};
  ck_assert_int_ne(features_extract(n, &on, written, &err), CREMA_OK);
  ck_assert_msg(strstr(err.message, "'nope'"), "%s", err.message);
  ck_assert_int_ne(access(nope_db[0], F_OK), 0);
  net_free(n);

  free(conv);
  free(pool);
  test_scratch_remove();
}
END_TEST


/* Images as PNG files and, as convert-imageset stores them, as raw
 * records of a database (keys img_I, labels I % 3). */
static void make_image_source(const char *db, char paths[RECORDS][512]) {
  crema_error err = {0};
  lmdb_writer *w;
  ck_assert_msg(lmdb_writer_create(db, &w, &err) == CREMA_OK, "%s", err.message);
  unsigned state = 12345u;
  for (int i = 0; i < RECORDS; i++) {
    image img;
    ck_assert_int_eq(image_alloc(&img, 6, 6, 3, &err), CREMA_OK);
    for (int k = 0; k < 6 * 6 * 3; k++) {
      state = state * 1103515245u + 12345u;
      img.pixels[k] = (unsigned char)(state >> 16);
    }
    unsigned char *png;
    size_t len;
    ck_assert_int_eq(image_encode_png(&img, &png, &len, &err), CREMA_OK);
    snprintf(paths[i], 512, "%s/img_%d.png", test_scratch_dir(), i);
    ck_assert_int_eq(file_write_atomic(paths[i], png, len, &err), CREMA_OK);
    free(png);
    Caffe__Datum d = CAFFE__DATUM__INIT;
    ck_assert_int_eq(datum_from_image(&img, i % 3, &d, &err), CREMA_OK);
    image_free(&img);
    unsigned char *buf;
    ck_assert_int_eq(datum_pack(&d, &buf, &len, &err), CREMA_OK);
    free(d.data.data);
    char key[32];
    snprintf(key, sizeof key, "img_%d", i);
    ck_assert_int_eq(lmdb_writer_put(w, key, strlen(key), buf, len, &err), CREMA_OK);
    free(buf);
  }
  ck_assert_int_eq(lmdb_writer_finish(w, &err), CREMA_OK);
}

/* Images run through the net one at a time give the values
 * extract-features writes for them in batches from the database. */
START_TEST(image_queries_match_extract) {
  test_scratch_make("check-retrieval");
  const char *src = test_scratch_path("images_db");
  char paths[RECORDS][512], keys[RECORDS][16];
  make_image_source(src, paths);
  crema_error err = {0};
  char text[2048];
  net_text(text, sizeof text, src);
  const char *model = test_scratch_path("net.prototxt"), *weights = test_scratch_path("w.caffemodel");
  ck_assert_int_eq(file_write_atomic(model, text, strlen(text), &err), CREMA_OK);
  net *n = open_net(src, 1);
  ck_assert_msg(net_save_weights(n, weights, &err) == CREMA_OK, "%s", err.message);
  const char *blobs[] = {"pool", "conv"};
  const char *dbs[] = {test_scratch_path("pool_db"), test_scratch_path("conv_db")};
  features_extract_options eo = {.blobs = blobs, .dbs = dbs, .nblobs = 2, .batches = 1,
                                 .count = RECORDS, .source = src};
  ck_assert_msg(features_extract(n, &eo, NULL, &err) == CREMA_OK, "%s", err.message);
  net_free(n);
  feature_set pool, conv, qpool, qconv;
  ck_assert_int_eq(feature_set_load(dbs[0], &pool, &err), CREMA_OK);
  ck_assert_int_eq(feature_set_load(dbs[1], &conv, &err), CREMA_OK);

  const char *path_v[RECORDS], *key_v[RECORDS];
  int labels[RECORDS];
  for (int i = 0; i < RECORDS; i++) {
    snprintf(keys[i], sizeof keys[i], "q%d", i);
    path_v[i] = paths[i];
    key_v[i] = keys[i];
    labels[i] = 10 + i;
  }
  image_query_options qo = {.model = model, .weights = weights, .blob = "pool",
                            .heat_blob = "conv"};
  ck_assert_msg(image_queries_extract(&qo, path_v, key_v, labels, RECORDS, &qpool, &qconv,
                                      &err) == CREMA_OK,
                "%s", err.message);
  ck_assert_uint_eq(qpool.n, RECORDS);
  ck_assert_uint_eq(qpool.dim, pool.dim);
  ck_assert_uint_eq(qconv.dim, conv.dim);
  ck_assert_int_eq(qconv.channels, 4);
  ck_assert_int_eq(qconv.height, 4);
  ck_assert(!memcmp(qpool.data, pool.data, RECORDS * pool.dim * sizeof(float)));
  ck_assert(!memcmp(qconv.data, conv.data, RECORDS * conv.dim * sizeof(float)));
  ck_assert_str_eq(qpool.keys[3], "q3");
  ck_assert_int_eq(qpool.labels[3], 13);
  feature_set_free(&qpool);

  /* A blob the net lacks; an unreadable image. */
  qo.blob = "nope";
  ck_assert_int_ne(image_queries_extract(&qo, path_v, key_v, NULL, 1, &qpool, NULL, &err),
                   CREMA_OK);
  ck_assert_msg(strstr(err.message, "'nope'"), "%s", err.message);
  qo.blob = "pool";
  const char *bad[] = {paths[0], model};
  ck_assert_int_ne(image_queries_extract(&qo, bad, key_v, NULL, 2, &qpool, NULL, &err),
                   CREMA_OK);
  ck_assert_msg(strstr(err.message, "net.prototxt"), "%s", err.message);
  feature_set_free(&qconv);
  feature_set_free(&pool);
  feature_set_free(&conv);
  test_scratch_remove();
}
END_TEST

/* ---- nearest neighbours --------------------------------------------------------------------- */

typedef struct ref_hit {
  size_t index;
  double score;
} ref_hit;

static int ref_lower;

static int cmp_ref(const void *a, const void *b) {
  const ref_hit *x = a, *y = b;
  if (x->score != y->score)
    return (ref_lower ? x->score > y->score : x->score < y->score) ? 1 : -1;
  return x->index < y->index ? -1 : 1;
}

/* Brute force in double: every score, sorted. */
static void brute_force(const float *db, size_t n, size_t dim, const float *q, knn_metric m,
                        size_t skip, ref_hit *out, size_t *nout) {
  double qq = 0.0;
  for (size_t j = 0; j < dim; j++)
    qq += (double)q[j] * q[j];
  *nout = 0;
  for (size_t i = 0; i < n; i++) {
    if (i == skip)
      continue;
    double dot = 0.0, xx = 0.0;
    for (size_t j = 0; j < dim; j++) {
      dot += (double)q[j] * db[i * dim + j];
      xx += (double)db[i * dim + j] * db[i * dim + j];
    }
    const double s = m == KNN_L2 ? sqrt(fmax(qq + xx - 2 * dot, 0.0))
                                 : (qq > 0 && xx > 0 ? dot / sqrt(qq * xx) : 0.0);
    out[(*nout)++] = (ref_hit){i, s};
  }
  ref_lower = m == KNN_L2;
  qsort(out, *nout, sizeof *out, cmp_ref);
}

START_TEST(knn_matches_double_brute_force) {
  /* More rows than one database block and queries than one query block,
   * so that the blocking and the heap across blocks are exercised. */
  enum { N = 2500, DIM = 37, NQ = 70, K = 12 };
  float *db = malloc(sizeof(float) * N * DIM), *q = malloc(sizeof(float) * NQ * DIM);
  crema_rng g;
  rng_seed(&g, 99);
  for (size_t i = 0; i < (size_t)N * DIM; i++)
    db[i] = rng_uniform(&g, -1.0f, 1.0f);
  memset(db + 7 * DIM, 0, DIM * sizeof(float)); /* a zero row */
  for (size_t i = 0; i < (size_t)NQ * DIM; i++)
    q[i] = i < 5 * DIM ? db[i + 100 * DIM] : rng_uniform(&g, -1.0f, 1.0f);
  knn_hit *hits = malloc(sizeof(knn_hit) * NQ * K);
  size_t found[NQ], exclude[NQ];
  ref_hit *ref = malloc(sizeof(ref_hit) * N);
  crema_error err = {0};
  for (int m = 0; m < 2; m++)
    for (int ex = 0; ex < 2; ex++) {
      const knn_metric metric = m ? KNN_L2 : KNN_COSINE;
      for (size_t i = 0; i < NQ; i++)
        exclude[i] = ex && i < 5 ? 100 + i : (size_t)-1;
      ck_assert_int_eq(knn_search(db, N, DIM, q, NQ, metric, K, ex ? exclude : NULL, hits,
                                  found, &err),
                       CREMA_OK);
      for (size_t i = 0; i < NQ; i++) {
        size_t nref;
        brute_force(db, N, DIM, q + i * DIM, metric, ex ? exclude[i] : (size_t)-1, ref, &nref);
        ck_assert_uint_eq(found[i], K);
        for (size_t j = 0; j < K; j++) {
          ck_assert_msg(hits[i * K + j].index == ref[j].index,
                        "metric %d exclude %d query %zu rank %zu: row %zu, brute force %zu", m,
                        ex, i, j, hits[i * K + j].index, ref[j].index);
          ck_assert(fabs(hits[i * K + j].score - ref[j].score) <= 1e-5 * fmax(1, ref[j].score));
        }
        /* A query taken from the database finds itself first unless excluded. */
        if (i < 5 && !ex)
          ck_assert_uint_eq(hits[i * K].index, 100 + i);
      }
    }
  /* A database smaller than k. */
  ck_assert_int_eq(knn_search(db, 3, DIM, q, 1, KNN_COSINE, K, NULL, hits, found, &err),
                   CREMA_OK);
  ck_assert_uint_eq(found[0], 3);
  free(db);
  free(q);
  free(hits);
  free(ref);
}
END_TEST

/* ---- measures ------------------------------------------------------------------------------- */

START_TEST(measures_by_hand) {
  /* Query label 1; ranking 1 0 1 0 0 1: AP = (1/1 + 2/3 + 3/6) / 3. */
  const int r1[] = {1, 0, 1, 0, 0, 1};
  /* Query label 0; ranking 1 1 0 0 0 1: AP = (1/3 + 2/4 + 3/5) / 3. */
  const int r2[] = {1, 1, 0, 0, 0, 1};
  const int positive[] = {1};
  retrieval_eval e;
  retrieval_eval_init(&e, 3, positive, 1);
  crema_error err = {0};
  ck_assert_int_eq(retrieval_eval_add(&e, 1, r1, 6, &err), CREMA_OK);
  ck_assert_int_eq(retrieval_eval_add(&e, 0, r2, 6, &err), CREMA_OK);
  retrieval_measures m;
  retrieval_eval_result(&e, &m);
  ck_assert(fabs(m.p1 - 0.5) < 1e-12);
  ck_assert(fabs(m.pk - (2.0 / 3 + 1.0 / 3) / 2) < 1e-12);
  const double ap1 = (1.0 + 2.0 / 3 + 3.0 / 6) / 3, ap2 = (1.0 / 3 + 2.0 / 4 + 3.0 / 5) / 3;
  ck_assert(fabs(m.map - (ap1 + ap2) / 2) < 1e-12);
  /* Votes of the 3 nearest: 1 (right), 1 (wrong). */
  ck_assert(fabs(m.knn_accuracy - 0.5) < 1e-12);
  /* Malignancy scores 2/3 (positive query) and 2/3 (negative): a tie. */
  ck_assert(m.has_auc);
  ck_assert(fabs(m.auc - 0.5) < 1e-12);
  retrieval_eval_free(&e);
  ck_assert_int_eq(retrieval_vote((const int[]){2, 3, 3, 2}, 4), 2);
  ck_assert_int_eq(retrieval_vote((const int[]){2, 3, 3}, 3), 3);
  const double s[] = {0.1, 0.4, 0.35, 0.8};
  const unsigned char t[] = {0, 0, 1, 1};
  ck_assert(fabs(retrieval_auc(s, t, 4) - 0.75) < 1e-12);
  ck_assert(retrieval_auc(s, (const unsigned char[]){1, 1, 1, 1}, 4) < 0);
}
END_TEST

/* A descriptor as the FIG. 9 branches make it: pooling (average or
 * bilinear) of X (c x s), signed square root, L2 normalisation; in double. */
static void pooled_descriptor(const float *x, size_t c, size_t s, heat_pool pool, float *d) {
  const size_t n = heat_pool_size(pool, c);
  double v[64], norm = 0.0;
  for (size_t k = 0; k < n; k++) {
    double p = 0.0;
    for (size_t t = 0; t < s; t++)
      p += pool == HEAT_BILINEAR ? (double)x[k / c * s + t] * x[k % c * s + t] : x[k * s + t];
    if (pool == HEAT_AVERAGE)
      p /= (double)s;
    v[k] = p < 0 ? -sqrt(-p) : sqrt(p);
    norm += v[k] * v[k];
  }
  for (size_t k = 0; k < n; k++)
    d[k] = (float)(v[k] / (sqrt(norm) + 1e-7));
}

/* The locations' contributions add up to the pair's score, from either
 * side, for both poolings; by hand for a small average case. */
START_TEST(contributions_sum_to_score) {
  enum { C = 4, SA = 6, SB = 9 };
  float xa[C * SA], xb[C * SB];
  unsigned state = 77u;
  for (size_t k = 0; k < C * SB; k++) {
    state = state * 1103515245u + 12345u;
    const float v = (float)((state >> 8) & 0xffff) / 65536.0f - 0.3f;
    if (k < C * SA)
      xa[k] = v;
    xb[k] = 1.0f - v;
  }
  crema_error err = {0};
  for (int pool = HEAT_AVERAGE; pool <= HEAT_BILINEAR; pool++) {
    float da[C * C], db[C * C], cb[SB], ca[SA];
    pooled_descriptor(xa, C, SA, (heat_pool)pool, da);
    pooled_descriptor(xb, C, SB, (heat_pool)pool, db);
    double score = 0.0, sb = 0.0, sa = 0.0;
    for (size_t k = 0; k < heat_pool_size((heat_pool)pool, C); k++)
      score += (double)da[k] * db[k];
    ck_assert_int_eq(report_contrib(da, db, xb, C, SB, (heat_pool)pool, cb, &err), CREMA_OK);
    ck_assert_int_eq(report_contrib(db, da, xa, C, SA, (heat_pool)pool, ca, &err), CREMA_OK);
    for (size_t t = 0; t < SB; t++)
      sb += cb[t];
    for (size_t t = 0; t < SA; t++)
      sa += ca[t];
    ck_assert_msg(fabs(sb - score) < 1e-5 && fabs(sa - score) < 1e-5,
                  "pool %d: contributions %g and %g, score %g", pool, sb, sa, score);
  }
  /* C = 1, 2 locations 1 and 3: average 2, descriptor 1 (scaled by 1/2);
   * the other's descriptor 0.5: c_t = 0.5 * (1 / 2) * x_t / 2. */
  const float x[] = {1, 3}, one = 1.0f, half = 0.5f;
  float h[2];
  ck_assert_int_eq(report_contrib(&half, &one, x, 1, 2, HEAT_AVERAGE, h, &err), CREMA_OK);
  ck_assert(fabsf(h[0] - 0.125f) < 1e-7f && fabsf(h[1] - 0.375f) < 1e-7f);
}
END_TEST

static Suite *retrieval_suite(void) {
  Suite *s = suite_create("retrieval");
  TCase *t = tcase_create("features");
  tcase_add_test(t, extract_matches_forward_in_caffe_layout);
  tcase_add_test(t, image_queries_match_extract);
  suite_add_tcase(s, t);
  t = tcase_create("search");
  tcase_add_test(t, knn_matches_double_brute_force);
  tcase_add_test(t, measures_by_hand);
  tcase_add_test(t, contributions_sum_to_score);
  suite_add_tcase(s, t);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(retrieval_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
