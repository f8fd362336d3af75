/* crema retrieve: exact nearest neighbours of query features in a feature
 * database (both as extract-features writes them), as a TSV listing, an
 * HTML page of similar cases and, with --eval, retrieval measures. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/flags.h"
#include "core/log.h"
#include "io/file.h"
#include "retrieval/features.h"
#include "retrieval/knn.h"
#include "retrieval/measures.h"
#include "retrieval/report.h"

static const char usage[] =
    "crema retrieve --features DB --queries DB [--k K] [--metric cosine|l2] [--exclude-self]\n"
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
    "(--heat, --query-heat), heat maps of the regions that made each pair similar.";

typedef struct retrieve_flags {
  const char *features, *queries, *metric, *tsv, *html, *images, *query_images;
  const char *class_names, *positive, *heat, *query_heat;
  int k, exclude_self, eval, html_queries, thumb;
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

static int cmp_key_index(const void *a, const void *b, void *keys) {
  char *const *k = keys;
  return strcmp(k[*(const size_t *)a], k[*(const size_t *)b]);
}

/* Per query, the database row with the same key, or (size_t)-1. */
static size_t *self_rows(const feature_set *db, const feature_set *q, crema_error *err) {
  size_t *order = crema_malloc((db->n + 1) * sizeof *order, err);
  size_t *rows = crema_malloc((q->n + 1) * sizeof *rows, err);
  if (!order || !rows) {
    free(order);
    free(rows);
    return NULL;
  }
  for (size_t i = 0; i < db->n; i++)
    order[i] = i;
  qsort_r(order, db->n, sizeof *order, cmp_key_index, db->keys);
  for (size_t i = 0; i < q->n; i++) {
    size_t lo = 0, hi = db->n;
    rows[i] = (size_t)-1;
    while (lo < hi) {
      const size_t mid = (lo + hi) / 2;
      const int c = strcmp(db->keys[order[mid]], q->keys[i]);
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

static crema_status load_all(const retrieve_flags *f, retrieve_run *r, crema_error *err) {
  CREMA_TRY(feature_set_load(f->features, &r->db, err));
  CREMA_TRY(feature_set_load(f->queries, &r->q, err));
  if (r->q.dim != r->db.dim)
    return crema_fail(err, CREMA_ERR_INVALID,
                      "queries '%s' have %zu values per record, the features '%s' %zu",
                      f->queries, r->q.dim, f->features, r->db.dim);
  if (!f->heat != !f->query_heat)
    return crema_fail(err, CREMA_ERR_INVALID, "give both --heat and --query-heat, or neither");
  if (f->heat) {
    CREMA_TRY(feature_set_load(f->heat, &r->db_heat, err));
    CREMA_TRY(feature_set_load(f->query_heat, &r->q_heat, err));
    if (r->db_heat.n != r->db.n || r->q_heat.n != r->q.n ||
        r->db_heat.channels != r->q_heat.channels)
      return crema_fail(err, CREMA_ERR_INVALID,
                        "heat features: %zu and %zu records of %d and %d channels for %zu "
                        "database and %zu query records",
                        r->db_heat.n, r->q_heat.n, r->db_heat.channels, r->q_heat.channels,
                        r->db.n, r->q.n);
  }
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
  if (f->exclude_self && !(r->self = self_rows(&r->db, &r->q, err)))
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
  if (!f->features || !f->queries)
    return crema_fail(err, CREMA_ERR_INVALID, "need --features and --queries (LMDBs)");
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
                     .query_images = f->query_images ? f->query_images : f->images,
                     .db_heat = f->heat ? &r.db_heat : NULL,
                     .query_heat = f->heat ? &r.q_heat : NULL,
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
  retrieve_flags f = {.metric = "cosine", .k = 10, .html_queries = 20, .thumb = 128};
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
  else if (res.npositional)
    rc = cli_report("retrieve", (crema_fail(&err, CREMA_ERR_INVALID,
                                            "unexpected argument '%s' (see --help)",
                                            res.positional[0]),
                                 &err));
  else if (f.thumb < 8 || f.thumb > 1024 || f.html_queries < 0)
    rc = cli_report("retrieve", (crema_fail(&err, CREMA_ERR_INVALID,
                                            "--thumb must be in [8, 1024] and --html-queries "
                                            ">= 0"),
                                 &err));
  else if (run(&f, &err) != CREMA_OK)
    rc = cli_report("retrieve", &err);
  flags_result_free(&res);
  return rc;
}
