/* ISIC segmentation metrics (see metrics.h). */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "io/file.h"
#include "lesion/files.h"
#include "lesion/metrics.h"

#define MASK_SUFFIX "_segmentation.png"

crema_status metrics_count(const image *truth, const image *pred, int threshold,
                           metrics_confusion *out, crema_error *err) {
  memset(out, 0, sizeof *out);
  if (truth->channels != 1 || pred->channels != 1)
    return crema_fail(err, CREMA_ERR_INVALID, "masks must have one channel, got %d and %d",
                      truth->channels, pred->channels);
  if (truth->width != pred->width || truth->height != pred->height)
    return crema_fail(err, CREMA_ERR_SHAPE,
                      "size mismatch: the prediction is %dx%d, the truth %dx%d", pred->width,
                      pred->height, truth->width, truth->height);
  size_t n = (size_t)truth->width * (size_t)truth->height;
  uint64_t both = 0, t_only = 0, p_only = 0;
  for (size_t i = 0; i < n; i++) {
    int t = truth->pixels[i] > threshold, p = pred->pixels[i] > threshold;
    both += (uint64_t)(t && p);
    t_only += (uint64_t)(t && !p);
    p_only += (uint64_t)(!t && p);
  }
  out->tp = both;
  out->fn = t_only;
  out->fp = p_only;
  out->tn = (uint64_t)n - both - t_only - p_only;
  return CREMA_OK;
}

/* num / den, or `otherwise` when den is 0 (the ISIC scoring's free
 * points for undefined ratios). */
static double ratio(uint64_t num, uint64_t den, double otherwise) {
  return den ? (double)num / (double)den : otherwise;
}

void metrics_from_confusion(const metrics_confusion *c, metrics_scores *out) {
  uint64_t all = c->tp + c->fp + c->fn + c->tn;
  out->accuracy = ratio(c->tp + c->tn, all, 1.0);
  out->sensitivity = ratio(c->tp, c->tp + c->fn, 1.0);
  out->specificity = ratio(c->tn, c->tn + c->fp, 1.0);
  out->jaccard = ratio(c->tp, c->tp + c->fp + c->fn, 1.0);
  out->dice = ratio(2 * c->tp, 2 * c->tp + c->fp + c->fn, 1.0);
  out->threshold_jaccard = out->jaccard >= METRICS_JACCARD_CUTOFF ? out->jaccard : 0.0;
}

/* ---- folders ------------------------------------------------------------ */

void metrics_report_free(metrics_report *r) {
  for (size_t i = 0; i < r->n; i++) {
    free(r->items[i].id);
    free(r->items[i].problem);
  }
  free(r->items);
  for (size_t i = 0; i < r->nnotes; i++)
    free(r->notes[i]);
  free(r->notes);
  memset(r, 0, sizeof *r);
}

static crema_status add_note(metrics_report *r, crema_error *err, const char *fmt, ...)
    CREMA_PRINTF(3, 4);

static crema_status add_note(metrics_report *r, crema_error *err, const char *fmt, ...) {
  char buf[CREMA_ERROR_MAX + 512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  char **v = realloc(r->notes, (r->nnotes + 1) * sizeof *v);
  if (!v)
    return crema_fail(err, CREMA_ERR_NOMEM, "out of memory");
  r->notes = v;
  if (!(r->notes[r->nnotes] = crema_strdup(buf, err)))
    return CREMA_ERR_NOMEM;
  r->nnotes++;
  return CREMA_OK;
}

/* Finds and scores the prediction for one truth mask; problems with the
 * prediction become the item's outcome, not an error. */
static crema_status score_item(const char *pred_dir, const char *truth_name, const image *truth,
                               int threshold, metrics_item *item, crema_error *err) {
  char *path = lesion_path_join(pred_dir, truth_name, err);
  if (!path)
    return CREMA_ERR_NOMEM;
  if (!file_exists(path)) {
    /* Masks named ..._Segmentation.png (ISIC 2016) may be answered in
     * lower case. */
    free(path);
    char name[1024];
    snprintf(name, sizeof name, "%s%s", item->id, MASK_SUFFIX);
    if (!(path = lesion_path_join(pred_dir, name, err)))
      return CREMA_ERR_NOMEM;
    if (!file_exists(path)) {
      free(path);
      item->outcome = METRICS_MISSING;
      return CREMA_OK;
    }
  }
  image pred;
  crema_error why = {CREMA_OK, ""};
  crema_status st = image_read_file(path, IMAGE_GRAY, &pred, &why);
  if (st == CREMA_OK) {
    st = metrics_count(truth, &pred, threshold, &item->confusion, &why);
    if (st != CREMA_OK)
      crema_error_prefix(&why, "%s: ", path);
    image_free(&pred);
  }
  free(path);
  if (st == CREMA_ERR_NOMEM)
    return crema_fail(err, st, "%s", why.message);
  if (st != CREMA_OK) {
    item->outcome = METRICS_FAILED;
    item->size_mismatch = st == CREMA_ERR_SHAPE;
    if (!(item->problem = crema_strdup(why.message, err)))
      return CREMA_ERR_NOMEM;
    return CREMA_OK;
  }
  item->outcome = METRICS_SCORED;
  metrics_from_confusion(&item->confusion, &item->scores);
  return CREMA_OK;
}

static void add_scores(metrics_scores *sum, const metrics_scores *s) {
  sum->jaccard += s->jaccard;
  sum->dice += s->dice;
  sum->accuracy += s->accuracy;
  sum->sensitivity += s->sensitivity;
  sum->specificity += s->specificity;
  sum->threshold_jaccard += s->threshold_jaccard;
}

static void finish_mean(metrics_report *r) {
  memset(&r->mean, 0, sizeof r->mean);
  for (size_t i = 0; i < r->n; i++)
    add_scores(&r->mean, &r->items[i].scores);
  if (r->n == 0)
    return;
  double k = 1.0 / (double)r->n;
  r->mean.jaccard *= k;
  r->mean.dice *= k;
  r->mean.accuracy *= k;
  r->mean.sensitivity *= k;
  r->mean.specificity *= k;
  r->mean.threshold_jaccard *= k;
}

/* Handles one file of the truth folder: a mask is scored, anything else
 * is skipped (with a note unless it is an image beside the masks). */
static crema_status visit_truth(const char *truth_dir, const char *pred_dir, const char *name,
                                int threshold, metrics_report *r, crema_error *err) {
  if (!path_has_suffix(name, MASK_SUFFIX)) {
    if (lesion_has_image_extension(name))
      return CREMA_OK;
    return add_note(r, err, "skipped '%s': not an ISIC mask (ID%s)", name, MASK_SUFFIX);
  }
  char *path = lesion_path_join(truth_dir, name, err);
  if (!path)
    return CREMA_ERR_NOMEM;
  image truth;
  crema_error why = {CREMA_OK, ""};
  crema_status st = image_read_file(path, IMAGE_GRAY, &truth, &why);
  free(path);
  if (st != CREMA_OK)
    return add_note(r, err, "skipped truth '%s': %s", name, why.message);
  metrics_item *items = realloc(r->items, (r->n + 1) * sizeof *items);
  if (!items) {
    image_free(&truth);
    return crema_fail(err, CREMA_ERR_NOMEM, "out of memory");
  }
  r->items = items;
  metrics_item *item = &r->items[r->n];
  memset(item, 0, sizeof *item);
  size_t id_len = strlen(name) - strlen(MASK_SUFFIX);
  if (!(item->id = crema_malloc(id_len + 1, err))) {
    image_free(&truth);
    return CREMA_ERR_NOMEM;
  }
  memcpy(item->id, name, id_len);
  item->id[id_len] = '\0';
  r->n++;
  st = score_item(pred_dir, name, &truth, threshold, item, err);
  image_free(&truth);
  if (st == CREMA_OK) {
    r->missing += item->outcome == METRICS_MISSING;
    r->failed += item->outcome == METRICS_FAILED;
  }
  return st;
}

crema_status metrics_evaluate_dirs(const char *truth_dir, const char *pred_dir, int threshold,
                                   metrics_report *out, crema_error *err) {
  memset(out, 0, sizeof *out);
  if (threshold < 0 || threshold > 254)
    return crema_fail(err, CREMA_ERR_INVALID, "threshold %d is out of range [0, 254]", threshold);
  struct stat st_pred;
  if (stat(pred_dir, &st_pred) != 0 || !S_ISDIR(st_pred.st_mode))
    return crema_fail(err, CREMA_ERR_IO, "cannot open prediction folder '%s': %s", pred_dir,
                      errno ? strerror(errno) : "not a folder");
  lesion_names names;
  CREMA_TRY(lesion_list_dir(truth_dir, &names, err));
  crema_status st = CREMA_OK;
  for (size_t i = 0; st == CREMA_OK && i < names.n; i++)
    st = visit_truth(truth_dir, pred_dir, names.v[i], threshold, out, err);
  lesion_names_free(&names);
  if (st == CREMA_OK && out->n == 0)
    st = crema_fail(err, CREMA_ERR_NOT_FOUND, "no ground-truth masks (ID%s) in '%s'", MASK_SUFFIX,
                    truth_dir);
  if (st != CREMA_OK) {
    metrics_report_free(out);
    return st;
  }
  finish_mean(out);
  return CREMA_OK;
}

void metrics_report_drop_missing(metrics_report *r) {
  size_t kept = 0;
  for (size_t i = 0; i < r->n; i++) {
    if (r->items[i].outcome == METRICS_MISSING) {
      free(r->items[i].id);
      free(r->items[i].problem);
      r->unpredicted++;
      continue;
    }
    r->items[kept++] = r->items[i];
  }
  r->n = kept;
  r->missing = 0;
  finish_mean(r);
}

/* ---- CSV ---------------------------------------------------------------- */

typedef struct text_buf {
  char *data;
  size_t len, cap;
  int failed;
} text_buf;

static void buf_printf(text_buf *b, const char *fmt, ...) CREMA_PRINTF(2, 3);

static void buf_printf(text_buf *b, const char *fmt, ...) {
  if (b->failed)
    return;
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(b->data ? b->data + b->len : NULL, b->data ? b->cap - b->len : 0, fmt, ap);
    va_end(ap);
    if (w < 0) {
      b->failed = 1;
      return;
    }
    if (b->data && b->len + (size_t)w < b->cap) {
      b->len += (size_t)w;
      return;
    }
    size_t cap = b->cap ? b->cap : 4096;
    while (cap <= b->len + (size_t)w)
      cap *= 2;
    char *d = realloc(b->data, cap);
    if (!d) {
      b->failed = 1;
      return;
    }
    b->data = d;
    b->cap = cap;
  }
}

static const char *outcome_name(metrics_outcome o) {
  return o == METRICS_SCORED ? "ok" : o == METRICS_MISSING ? "missing" : "failed";
}

/* IDs come from file names: quoted (quotes doubled) when they need it. */
static void csv_field(text_buf *b, const char *s) {
  if (!strpbrk(s, ",\"\r\n")) {
    buf_printf(b, "%s", s);
    return;
  }
  buf_printf(b, "\"");
  for (; *s; s++) {
    if (*s == '"')
      buf_printf(b, "\"\"");
    else
      buf_printf(b, "%c", *s);
  }
  buf_printf(b, "\"");
}

static void csv_scores(text_buf *b, const metrics_scores *s) {
  buf_printf(b, "%.6f,%.6f,%.6f,%.6f,%.6f,%.6f", s->jaccard, s->dice, s->accuracy, s->sensitivity,
             s->specificity, s->threshold_jaccard);
}

crema_status metrics_report_csv(const metrics_report *r, char **out, size_t *len,
                                crema_error *err) {
  text_buf b = {NULL, 0, 0, 0};
  buf_printf(&b, "image,jaccard,dice,accuracy,sensitivity,specificity,threshold_jaccard,status\n");
  for (size_t i = 0; i < r->n; i++) {
    csv_field(&b, r->items[i].id);
    buf_printf(&b, ",");
    csv_scores(&b, &r->items[i].scores);
    buf_printf(&b, ",%s\n", outcome_name(r->items[i].outcome));
  }
  buf_printf(&b, "mean,");
  csv_scores(&b, &r->mean);
  buf_printf(&b, ",%zu images\n", r->n);
  if (b.failed || !b.data) {
    free(b.data);
    return crema_fail(err, CREMA_ERR_NOMEM, "out of memory writing CSV");
  }
  *out = b.data;
  *len = b.len;
  return CREMA_OK;
}
