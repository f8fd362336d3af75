/* crema retrieve: exact nearest neighbours of query features in a feature
 * database (both as extract-features writes them), as a TSV listing, an
 * HTML page of similar cases and, with --eval, retrieval measures. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "cli/flags.h"
#include "core/log.h"
#include "io/file.h"
#include "retrieval/features.h"
#include "retrieval/knn.h"
#include "lesion/files.h"
#include "retrieval/maskpool.h"
#include "retrieval/measures.h"
#include "retrieval/queries.h"
#include "retrieval/report.h"

static const char usage[] =
    "crema retrieve --features DB --queries DB [--k K] [--metric cosine|l2] [--exclude-self]\n"
    "crema retrieve --features DB --net NET --weights W --blob NAME\n"
    "               --query-images DIR|FILE [FILE...] [--query-list LIST] [--heat-blob NAME]\n"
    "               [--resize-width W --resize-height H] [--stage S] [options as above]\n"
    "               [--tsv FILE] [--eval] [--positive L1,L2...] [--html FILE]\n"
    "               [--images DIR] [--query-images DIR] [--class-names N0,N1,...]\n"
    "               [--heat DB --query-heat DB] [--html-queries N]";
static const char description[] =
    "Finds, for each record of the query LMDB, the K nearest records of the feature LMDB "
    "(cosine similarity or Euclidean distance, computed exactly as blocked matrix products). "
    "The TSV listing (query, rank, key, score, label) goes to --tsv, or to standard output "
    "when neither --eval nor --html is given.  --eval prints P@1, P@K, mAP (over the whole "
    "ranking), the accuracy of a K-nearest majority vote and, with --positive (the malignant "
    "labels), the AUC of the share of malignant images among the K nearest.  --html writes a "
    "self-contained page with the images (found in --images by the source keys "
    "extract-features --keep-source stores) and, given spatial features of the same records "
    "(--heat, --query-heat), heat maps of the regions that made each pair similar: each "
    "location's share of the pair's score, exact when the descriptors (or the part "
    "--heat-offset names) are the average or the bilinear pooling of those features, "
    "elementwise rescaled (signed square root, L2 normalisation) or not.  "
    "With --net, the queries are images (--query-images: a directory's images, or files; "
    "--query-list: convert-imageset's list of names and labels under that directory) run "
    "through NET (TEST phase): decoded and resized as convert-imageset does, transformed "
    "as NET's Data (or Input) layer says, and blob --blob (and --heat-blob, the queries' "
    "spatial features for the heat maps) kept: the values extract-features gives for the "
    "same images in a database.  --masks pools the descriptors' part that pools the --heat "
    "features again inside each image's mask (e.g. the lesion net's): the features weighted "
    "by the mask's mean over each cell, then the sum of outer products, signed square root "
    "and L2 normalisation (bilinear) or the weighted mean (average).";

typedef struct retrieve_flags {
  const char *features, *queries, *metric, *tsv, *html, *images, *query_images;
  const char *class_names, *positive, *heat, *query_heat;
  const char *net, *weights, *blob, *heat_blob, *query_list, *stage, *heat_pool;
  const char *masks, *query_masks, *mask_suffix;
  int heat_offset;
  int k, exclude_self, eval, html_queries, thumb, resize_width, resize_height;
  char **files;   /* query image files after --query-images */
  int nfiles;
} retrieve_flags;

/* Splits a ','-separated list in place into at most max items. */
static int split_list(char *s, char **items, int max) {
  int n = 0;
  for (char *next; s && n < max; s = next) {
    next = strchr(s, ',');
    if (next)
      *next++ = '\0';
    items[n++] = s;
  }
  return n;
}

/* The image a key names: the source key extract-features --keep-source
 * stores, without convert-imageset's "%08d_" prefix. */
static const char *image_name(const char *key) {
  const char *s = feature_key_source(key);
  size_t i = 0;
  while (i < 8 && s[i] >= '0' && s[i] <= '9')
    i++;
  return i == 8 && s[8] == '_' ? s + 9 : s;
}

/* Keys compared whole, or (queries given as images) by the image named. */
typedef struct key_order {
  char **keys;
  int by_name;
} key_order;

static const char *order_key(const key_order *o, size_t i) {
  return o->by_name ? image_name(o->keys[i]) : o->keys[i];
}

static int cmp_key_index(const void *a, const void *b, void *ctx) {
  return strcmp(order_key(ctx, *(const size_t *)a), order_key(ctx, *(const size_t *)b));
}

/* Per query, the database row with the same key (by_name: naming the same
 * image), or (size_t)-1. */
static size_t *self_rows(const feature_set *db, const feature_set *q, int by_name,
                         crema_error *err) {
  size_t *order = crema_malloc((db->n + 1) * sizeof *order, err);
  size_t *rows = crema_malloc((q->n + 1) * sizeof *rows, err);
  if (!order || !rows) {
    free(order);
    free(rows);
    return NULL;
  }
  key_order ko = {db->keys, by_name};
  for (size_t i = 0; i < db->n; i++)
    order[i] = i;
  qsort_r(order, db->n, sizeof *order, cmp_key_index, &ko);
  for (size_t i = 0; i < q->n; i++) {
    const char *want = by_name ? image_name(q->keys[i]) : q->keys[i];
    size_t lo = 0, hi = db->n;
    rows[i] = (size_t)-1;
    while (lo < hi) {
      const size_t mid = (lo + hi) / 2;
      const int c = strcmp(order_key(&ko, order[mid]), want);
      if (c == 0) {
        rows[i] = order[mid];
        break;
      }
      if (c < 0)
        lo = mid + 1;
      else
        hi = mid;
    }
  }
  free(order);
  return rows;
}

static crema_status parse_positive(char *list, int *out, int *n, crema_error *err) {
  char *items[256];
  *n = list ? split_list(list, items, 256) : 0;
  for (int i = 0; i < *n; i++) {
    char *end;
    long v = strtol(items[i], &end, 10);
    if (*end || end == items[i] || v < -2147483647L || v > 2147483647L)
      return crema_fail(err, CREMA_ERR_INVALID, "--positive: '%s' is not a label", items[i]);
    out[i] = (int)v;
  }
  return CREMA_OK;
}

/* Everything the command holds, freed in one place. */
typedef struct retrieve_run {
  feature_set db, q, db_heat, q_heat;
  heat_pool pool;    /* how the descriptors pool the heat features */
  size_t heat_offset;
  knn_hit *hits;
  size_t *found, *self;
  retrieval_eval ev;
  retrieval_measures m;
  strbuf tsv, html;
} retrieve_run;

static void run_free(retrieve_run *r) {
  feature_set_free(&r->db);
  feature_set_free(&r->q);
  feature_set_free(&r->db_heat);
  feature_set_free(&r->q_heat);
  free(r->hits);
  free(r->found);
  free(r->self);
  retrieval_eval_free(&r->ev);
  sb_free(&r->tsv);
  sb_free(&r->html);
}

/* The query images: paths, keys (names under the directory, or the files
 * as given) and labels (from --query-list; 0 otherwise). */
typedef struct query_files {
  char **paths, **keys;
  int *labels;
  size_t n, cap;
} query_files;

static void query_files_free(query_files *q) {
  for (size_t i = 0; i < q->n; i++) {
    free(q->paths[i]);
    free(q->keys[i]);
  }
  free(q->paths);
  free(q->keys);
  free(q->labels);
  memset(q, 0, sizeof *q);
}

static crema_status query_files_add(query_files *q, const char *dir, const char *name,
                                    int label, crema_error *err) {
  if (q->n == q->cap) {
    const size_t cap = q->cap ? 2 * q->cap : 64;
    char **p = realloc(q->paths, cap * sizeof *p);
    if (p)
      q->paths = p;
    char **k = p ? realloc(q->keys, cap * sizeof *k) : NULL;
    if (k)
      q->keys = k;
    int *l = k ? realloc(q->labels, cap * sizeof *l) : NULL;
    if (!l)
      return crema_fail(err, CREMA_ERR_NOMEM, "out of memory for %zu query images", cap);
    q->labels = l;
    q->cap = cap;
  }
  char *path = lesion_path_join(dir, name, err), *key = path ? crema_strdup(name, err) : NULL;
  if (!key) {
    free(path);
    return CREMA_ERR_NOMEM;
  }
  q->paths[q->n] = path;
  q->keys[q->n] = key;
  q->labels[q->n++] = label;
  return CREMA_OK;
}

/* convert-imageset's list: "NAME LABEL" per line, the name up to the last
 * space. */
static crema_status read_query_list(const char *list, const char *dir, query_files *q,
                                    crema_error *err) {
  file_view v;
  CREMA_TRY(file_view_open(list, (size_t)1 << 30, &v, err));
  crema_status st = CREMA_OK;
  const char *s = (const char *)v.data, *end = s + v.size;
  for (int line = 1; s < end && st == CREMA_OK; line++) {
    const char *nl = memchr(s, '\n', (size_t)(end - s));
    const char *e = nl ? nl : end;
    while (e > s && (e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t'))
      e--;
    const char *sp = e;
    while (sp > s && sp[-1] != ' ' && sp[-1] != '\t')
      sp--;
    if (e > s) {
      char num[32], name[4096];
      long label = 0;
      char *stop = NULL;
      if (sp > s && (size_t)(e - sp) < sizeof num && (size_t)(sp - 1 - s) < sizeof name) {
        memcpy(num, sp, (size_t)(e - sp));
        num[e - sp] = '\0';
        label = strtol(num, &stop, 10);
      }
      if (!stop || *stop || stop == num || label < -2147483647L || label > 2147483647L) {
        st = crema_fail(err, CREMA_ERR_PARSE, "%s:%d: expected 'NAME LABEL'", list, line);
      } else {
        const char *ne = sp - 1;
        while (ne > s && (ne[-1] == ' ' || ne[-1] == '\t'))
          ne--;
        memcpy(name, s, (size_t)(ne - s));
        name[ne - s] = '\0';
        st = query_files_add(q, dir, name, (int)label, err);
      }
    }
    s = nl ? nl + 1 : end;
  }
  file_view_close(&v);
  return st;
}

/* --query-images: a directory's images (not ISIC masks or crema segment's
 * maps), or files; --query-list: the list's names under the directory. */
static crema_status gather_queries(const retrieve_flags *f, query_files *q, crema_error *err) {
  if (f->query_list)
    return read_query_list(f->query_list, f->query_images, q, err);
  struct stat st;
  if (stat(f->query_images, &st) == 0 && S_ISDIR(st.st_mode)) {
    lesion_names names;
    CREMA_TRY(lesion_list_dir(f->query_images, &names, err));
    crema_status s = CREMA_OK;
    for (size_t i = 0; i < names.n && s == CREMA_OK; i++)
      if (lesion_has_image_extension(names.v[i]) && !lesion_is_companion_name(names.v[i]))
        s = query_files_add(q, f->query_images, names.v[i], 0, err);
    lesion_names_free(&names);
    return s;
  }
  CREMA_TRY(query_files_add(q, NULL, f->query_images, 0, err));
  for (int i = 0; i < f->nfiles; i++)
    CREMA_TRY(query_files_add(q, NULL, f->files[i], 0, err));
  return CREMA_OK;
}

/* The queries as images run through --net. */
static crema_status load_image_queries(const retrieve_flags *f, retrieve_run *r,
                                       crema_error *err) {
  if (!f->blob || !f->query_images)
    return crema_fail(err, CREMA_ERR_INVALID, "--net needs --blob and --query-images");
  if (f->heat && !f->heat_blob)
    return crema_fail(err, CREMA_ERR_INVALID,
                      "with --net, the queries' spatial features for --heat come from "
                      "--heat-blob");
  query_files q = {0};
  crema_status st = gather_queries(f, &q, err);
  if (st == CREMA_OK && q.n == 0)
    st = crema_fail(err, CREMA_ERR_INVALID, "%s: no query image (.jpg, .jpeg, .png)",
                    f->query_images);
  image_query_options o = {.model = f->net, .weights = f->weights, .stage = f->stage,
                           .blob = f->blob, .heat_blob = f->heat ? f->heat_blob : NULL,
                           .resize_width = f->resize_width, .resize_height = f->resize_height};
  crema_options_from_env(&o.run);
  if (st == CREMA_OK)
    st = image_queries_extract(&o, (const char *const *)q.paths, (const char *const *)q.keys,
                               q.labels, q.n, &r->q, f->heat ? &r->q_heat : NULL, err);
  if (st == CREMA_OK)
    LOG_INFO("Ran %zu query images through %s", q.n, f->net);
  query_files_free(&q);
  return st;
}

/* Which part of the descriptors pools the heat features, and how: given
 * by --heat-pool and --heat-offset, or the whole descriptor when its size
 * says (C values: the average, C*C: the bilinear pooling). */
static crema_status heat_layout(const retrieve_flags *f, retrieve_run *r, crema_error *err) {
  const size_t c = (size_t)r->db_heat.channels, dim = r->db.dim;
  if (f->heat_pool && strcmp(f->heat_pool, "average") && strcmp(f->heat_pool, "bilinear"))
    return crema_fail(err, CREMA_ERR_INVALID, "--heat-pool must be average or bilinear, not '%s'",
                      f->heat_pool);
  if (f->heat_pool)
    r->pool = strcmp(f->heat_pool, "bilinear") ? HEAT_AVERAGE : HEAT_BILINEAR;
  else if (dim == c * c)
    r->pool = HEAT_BILINEAR;
  else if (dim == c)
    r->pool = HEAT_AVERAGE;
  else
    return crema_fail(err, CREMA_ERR_INVALID,
                      "descriptors of %zu values are neither the average (%zu) nor the "
                      "bilinear pooling (%zu) of the %zu-channel heat features: say which part "
                      "pools them with --heat-pool and --heat-offset",
                      dim, c, c * c, c);
  const size_t n = heat_pool_size(r->pool, c);
  if (f->heat_offset < 0 && n != dim)
    return crema_fail(err, CREMA_ERR_INVALID,
                      "the %s pooling of %zu channels is %zu of the descriptors' %zu values: "
                      "give --heat-offset (where it starts)",
                      r->pool == HEAT_BILINEAR ? "bilinear" : "average", c, n, dim);
  r->heat_offset = f->heat_offset < 0 ? 0 : (size_t)f->heat_offset;
  if (r->heat_offset > dim || dim - r->heat_offset < n)
    return crema_fail(err, CREMA_ERR_INVALID,
                      "--heat-offset %zu: the %zu pooled values end past the descriptors' %zu",
                      r->heat_offset, n, dim);
  return CREMA_OK;
}

/* --masks: the descriptors' pooled part recomputed inside the masks, for
 * the database and the queries. */
static crema_status pool_in_masks(const retrieve_flags *f, retrieve_run *r, crema_error *err) {
  if (!f->heat)
    return crema_fail(err, CREMA_ERR_INVALID,
                      "--masks pools the spatial features of --heat (and --query-heat or "
                      "--heat-blob) inside the masks: give them");
  mask_pool_options o = {.dir = f->masks ? f->masks : f->query_masks,
                         .suffix = f->mask_suffix, .pool = r->pool, .offset = r->heat_offset};
  size_t empty_db, empty_q;
  CREMA_TRY(mask_pool_apply(&o, &r->db, &r->db_heat, &empty_db, err));
  o.dir = f->query_masks ? f->query_masks : o.dir;
  CREMA_TRY(mask_pool_apply(&o, &r->q, &r->q_heat, &empty_q, err));
  LOG_INFO("Pooled %s inside the masks (%zu database and %zu query masks empty: whole images)",
           r->pool == HEAT_BILINEAR ? "bilinear" : "average", empty_db, empty_q);
  return CREMA_OK;
}

static crema_status load_all(const retrieve_flags *f, retrieve_run *r, crema_error *err) {
  CREMA_TRY(feature_set_load(f->features, &r->db, err));
  if (f->net)
    CREMA_TRY(load_image_queries(f, r, err));
  else
    CREMA_TRY(feature_set_load(f->queries, &r->q, err));
  const char *qname = f->net ? f->blob : f->queries;
  if (r->q.dim != r->db.dim)
    return crema_fail(err, CREMA_ERR_INVALID,
                      "queries '%s' have %zu values per record, the features '%s' %zu", qname,
                      r->q.dim, f->features, r->db.dim);
  if (!f->net && !f->heat != !f->query_heat)
    return crema_fail(err, CREMA_ERR_INVALID, "give both --heat and --query-heat, or neither");
  if (f->heat) {
    CREMA_TRY(feature_set_load(f->heat, &r->db_heat, err));
    if (!f->net)
      CREMA_TRY(feature_set_load(f->query_heat, &r->q_heat, err));
    if (r->db_heat.n != r->db.n || r->q_heat.n != r->q.n ||
        r->db_heat.channels != r->q_heat.channels)
      return crema_fail(err, CREMA_ERR_INVALID,
                        "heat features: %zu and %zu records of %d and %d channels for %zu "
                        "database and %zu query records",
                        r->db_heat.n, r->q_heat.n, r->db_heat.channels, r->q_heat.channels,
                        r->db.n, r->q.n);
    CREMA_TRY(heat_layout(f, r, err));
  }
  if (f->masks || f->query_masks)
    CREMA_TRY(pool_in_masks(f, r, err));
  return CREMA_OK;
}

/* Ranks the database for every query: the k first, or the whole database
 * when the measures need it; the measures are taken along the way. */
static crema_status search(const retrieve_flags *f, retrieve_run *r, size_t stride,
                           crema_error *err) {
  const knn_metric metric = strcmp(f->metric, "l2") ? KNN_COSINE : KNN_L2;
  size_t bytes;
  if (!size_mul(r->q.n, stride, &bytes) || !size_mul(bytes, sizeof(knn_hit), &bytes))
    return crema_fail(err, CREMA_ERR_NOMEM, "%zu queries x %zu results overflow memory",
                      r->q.n, stride);
  r->hits = crema_malloc(bytes + 1, err);
  r->found = crema_malloc((r->q.n + 1) * sizeof(size_t), err);
  if (!r->hits || !r->found)
    return CREMA_ERR_NOMEM;
  if (f->exclude_self && !(r->self = self_rows(&r->db, &r->q, f->net != NULL, err)))
    return CREMA_ERR_NOMEM;
  CREMA_TRY(knn_search(r->db.data, r->db.n, r->db.dim, r->q.data, r->q.n, metric, stride,
                       r->self, r->hits, r->found, err));
  if (!f->eval)
    return CREMA_OK;
  int *labels = crema_malloc((stride + 1) * sizeof(int), err);
  if (!labels)
    return CREMA_ERR_NOMEM;
  crema_status st = CREMA_OK;
  for (size_t i = 0; i < r->q.n && st == CREMA_OK; i++) {
    for (size_t j = 0; j < r->found[i]; j++)
      labels[j] = r->db.labels[r->hits[i * stride + j].index];
    st = retrieval_eval_add(&r->ev, r->q.labels[i], labels, r->found[i], err);
    if (st != CREMA_OK)
      crema_error_prefix(err, "query '%s': ", r->q.keys[i]);
  }
  free(labels);
  if (st == CREMA_OK)
    retrieval_eval_result(&r->ev, &r->m);
  return st;
}

static void print_measures(const retrieve_flags *f, const retrieval_measures *m) {
  printf("queries %zu, k %zu, metric %s%s\n", m->queries, m->k, f->metric,
         f->exclude_self ? ", self excluded" : "");
  printf("P@1 %.4f\nP@%zu %.4f\nmAP %.4f\n%zu-NN vote accuracy %.4f\n", m->p1, m->k, m->pk,
         m->map, m->k, m->knn_accuracy);
  if (m->has_auc)
    printf("AUC (malignant: %s; %zu positive, %zu negative queries) %.4f\n", f->positive,
           m->positives, m->negatives, m->auc);
}

static crema_status write_out(const char *path, const strbuf *b, crema_error *err) {
  return file_write_atomic(path, b->s ? b->s : "", b->len, err);
}

static crema_status run(const retrieve_flags *f, crema_error *err) {
  if (!f->features || !f->queries == !f->net)
    return crema_fail(err, CREMA_ERR_INVALID,
                      "need --features and either --queries (an LMDB) or --net (queries given "
                      "as images)");
  if (f->k <= 0)
    return crema_fail(err, CREMA_ERR_INVALID, "--k must be > 0, got %d", f->k);
  if (strcmp(f->metric, "cosine") && strcmp(f->metric, "l2"))
    return crema_fail(err, CREMA_ERR_INVALID, "--metric must be cosine or l2, not '%s'",
                      f->metric);
  char positive_copy[4096] = "";
  int positive[256], npositive = 0;
  if (f->positive) {
    snprintf(positive_copy, sizeof positive_copy, "%s", f->positive);
    CREMA_TRY(parse_positive(positive_copy, positive, &npositive, err));
  }
  struct stat qs;
  /* Image queries named as files are found by the names given. */
  const int query_dir = f->query_images && stat(f->query_images, &qs) == 0 && S_ISDIR(qs.st_mode);
  retrieve_run r = {0};
  crema_status st = load_all(f, &r, err);
  const size_t stride = f->eval ? r.db.n : (size_t)f->k;
  retrieval_eval_init(&r.ev, (size_t)f->k, positive, npositive);
  if (st == CREMA_OK)
    st = search(f, &r, stride, err);
  char names_copy[8192] = "";
  char *names[1024];
  int nnames = 0;
  if (f->class_names) {
    snprintf(names_copy, sizeof names_copy, "%s", f->class_names);
    nnames = split_list(names_copy, names, 1024);
  }
  report_input in = {.db = &r.db, .queries = &r.q, .hits = r.hits, .found = r.found,
                     .stride = stride, .k = (size_t)f->k, .metric = f->metric,
                     .class_names = (const char *const *)names, .nclass_names = nnames,
                     .images = f->images,
                     .query_images = f->net && !query_dir ? "" :
                                     f->query_images ? f->query_images : f->images,
                     .db_heat = f->heat ? &r.db_heat : NULL,
                     .query_heat = f->heat ? &r.q_heat : NULL,
                     .pool = r.pool, .heat_offset = r.heat_offset,
                     .max_queries = (size_t)f->html_queries,
                     .measures = f->eval ? &r.m : NULL, .thumb = f->thumb};
  if (st == CREMA_OK && (f->tsv || (!f->eval && !f->html))) {
    st = report_tsv(&in, &r.tsv, err);
    if (st == CREMA_OK && f->tsv)
      st = write_out(f->tsv, &r.tsv, err);
    else if (st == CREMA_OK)
      fwrite(r.tsv.s, 1, r.tsv.len, stdout);
  }
  if (st == CREMA_OK && f->html && (st = report_html(&in, &r.html, err)) == CREMA_OK)
    st = write_out(f->html, &r.html, err);
  if (st == CREMA_OK && f->eval)
    print_measures(f, &r.m);
  run_free(&r);
  return st;
}

int cmd_retrieve(int argc, char **argv) {
  retrieve_flags f = {.metric = "cosine", .k = 10, .html_queries = 20, .thumb = 128,
                      .heat_offset = -1, .mask_suffix = "_segmentation.png"};
  const flag_spec specs[] = {
      {"features", FLAG_STRING, &f.features, "the database: an LMDB of feature Datums"},
      {"queries", FLAG_STRING, &f.queries, "the queries: an LMDB of feature Datums"},
      {"k", FLAG_INT, &f.k, "neighbours per query (default 10)"},
      {"metric", FLAG_STRING, &f.metric, "cosine (default) or l2"},
      {"exclude-self", FLAG_BOOL, &f.exclude_self,
       "skip the database record whose key is the query's (queries taken from the database)"},
      {"tsv", FLAG_STRING, &f.tsv, "write the listing (query, rank, key, score, label) here"},
      {"eval", FLAG_BOOL, &f.eval, "print P@1, P@k, mAP, k-NN vote accuracy (and AUC)"},
      {"positive", FLAG_STRING, &f.positive,
       "labels counted as malignant for the AUC, separated by ','"},
      {"html", FLAG_STRING, &f.html, "write the page of similar cases here"},
      {"images", FLAG_STRING, &f.images, "directory of the database's images"},
      {"query-images", FLAG_STRING, &f.query_images,
       "directory of the queries' images (default --images)"},
      {"class-names", FLAG_STRING, &f.class_names,
       "diagnosis of each label 0, 1, ..., separated by ','"},
      {"heat", FLAG_STRING, &f.heat, "spatial features (C x H x W) of the database's records"},
      {"query-heat", FLAG_STRING, &f.query_heat, "spatial features of the queries' records"},
      {"net", FLAG_STRING, &f.net,
       "queries are images run through this net (TEST phase) instead of --queries"},
      {"weights", FLAG_STRING, &f.weights, "the trained weights of --net"},
      {"blob", FLAG_STRING, &f.blob, "--net's blob holding the descriptor"},
      {"heat-blob", FLAG_STRING, &f.heat_blob,
       "--net's blob of spatial features for the heat maps (with --heat)"},
      {"query-list", FLAG_STRING, &f.query_list,
       "with --net: convert-imageset's list (NAME LABEL) of query images under --query-images"},
      {"resize-width", FLAG_INT, &f.resize_width,
       "with --net: width query images are resized to, as convert-imageset --resize_width"},
      {"resize-height", FLAG_INT, &f.resize_height,
       "with --net: height query images are resized to"},
      {"stage", FLAG_STRING, &f.stage, "with --net: a stage of the net's state"},
      {"heat-pool", FLAG_STRING, &f.heat_pool,
       "how the descriptors pool the heat features: average or bilinear (default: from the "
       "sizes)"},
      {"heat-offset", FLAG_INT, &f.heat_offset,
       "where the pooled part starts in the descriptors (default 0 when it is all of them)"},
      {"masks", FLAG_STRING, &f.masks,
       "pool the descriptors' part (--heat-pool, --heat-offset) inside these masks of the "
       "images (DIR/ID + --mask-suffix), from the --heat features"},
      {"query-masks", FLAG_STRING, &f.query_masks, "the queries' masks (default --masks)"},
      {"mask-suffix", FLAG_STRING, &f.mask_suffix,
       "mask file of image ID: ID + this (default _segmentation.png; crema segment's "
       "probabilities: _lesion.png)"},
      {"html-queries", FLAG_INT, &f.html_queries, "queries shown in the page (default 20)"},
      {"thumb", FLAG_INT, &f.thumb, "thumbnail size in pixels (default 128)"},
  };
  const int nspecs = (int)(sizeof specs / sizeof specs[0]);
  crema_error err = {CREMA_OK, ""};
  flag_result res;
  if (flags_parse(argc, argv, specs, nspecs, &res, &err) != CREMA_OK)
    return cli_report("retrieve", &err);
  int rc = 0;
  if (res.help)
    flags_print_usage(stdout, usage, description, specs, nspecs);
  else if (res.npositional && !f.net)
    rc = cli_report("retrieve", (crema_fail(&err, CREMA_ERR_INVALID,
                                            "unexpected argument '%s' (see --help)",
                                            res.positional[0]),
                                 &err));
  else if (f.thumb < 8 || f.thumb > 1024 || f.html_queries < 0)
    rc = cli_report("retrieve", (crema_fail(&err, CREMA_ERR_INVALID,
                                            "--thumb must be in [8, 1024] and --html-queries "
                                            ">= 0"),
                                 &err));
  else {
    f.files = res.positional; /* more query images after --query-images */
    f.nfiles = res.npositional;
    if (run(&f, &err) != CREMA_OK)
      rc = cli_report("retrieve", &err);
  }
  flags_result_free(&res);
  return rc;
}
