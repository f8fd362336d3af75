/* The retrieval report: TSV listing and self-contained HTML page. */
#include "config.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/file.h"
#include "io/image.h"
#include "math/blas.h"
#include "retrieval/report.h"

/* ---- text buffer ---------------------------------------------------------------------------- */

static int sb_reserve(strbuf *b, size_t more) {
  if (b->failed)
    return 0;
  if (b->len + more + 1 <= b->cap)
    return 1;
  size_t cap = b->cap ? b->cap : 4096;
  while (cap < b->len + more + 1)
    cap *= 2;
  char *s = realloc(b->s, cap);
  if (!s) {
    b->failed = 1;
    return 0;
  }
  b->s = s;
  b->cap = cap;
  return 1;
}

void sb_printf(strbuf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0 || !sb_reserve(b, (size_t)n))
    return;
  va_start(ap, fmt);
  vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
}

static void sb_put(strbuf *b, const char *s, size_t n) {
  if (!sb_reserve(b, n))
    return;
  memcpy(b->s + b->len, s, n);
  b->len += n;
  b->s[b->len] = '\0';
}

void sb_free(strbuf *b) {
  free(b->s);
  memset(b, 0, sizeof *b);
}

/* Text for HTML: &, <, >, " escaped. */
static void sb_html(strbuf *b, const char *s) {
  for (; *s; s++) {
    switch (*s) {
    case '&': sb_put(b, "&amp;", 5); break;
    case '<': sb_put(b, "&lt;", 4); break;
    case '>': sb_put(b, "&gt;", 4); break;
    case '"': sb_put(b, "&quot;", 6); break;
    default: sb_put(b, s, 1);
    }
  }
}

static void sb_base64(strbuf *b, const unsigned char *d, size_t n) {
  static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  if (!sb_reserve(b, (n + 2) / 3 * 4))
    return;
  char *o = b->s + b->len;
  size_t i = 0;
  for (; i + 2 < n; i += 3) {
    const unsigned v = (unsigned)d[i] << 16 | (unsigned)d[i + 1] << 8 | d[i + 2];
    *o++ = t[v >> 18];
    *o++ = t[(v >> 12) & 63];
    *o++ = t[(v >> 6) & 63];
    *o++ = t[v & 63];
  }
  if (i < n) {
    const unsigned v = (unsigned)d[i] << 16 | (i + 1 < n ? (unsigned)d[i + 1] << 8 : 0u);
    *o++ = t[v >> 18];
    *o++ = t[(v >> 12) & 63];
    *o++ = i + 1 < n ? t[(v >> 6) & 63] : '=';
    *o++ = '=';
  }
  b->len = (size_t)(o - b->s);
  b->s[b->len] = '\0';
}

/* ---- labels and keys ------------------------------------------------------------------------ */

static const char *label_name(const report_input *in, int label, char *buf, size_t size) {
  if (label >= 0 && label < in->nclass_names && in->class_names[label])
    return in->class_names[label];
  snprintf(buf, size, "class %d", label);
  return buf;
}

crema_status report_tsv(const report_input *in, strbuf *out, crema_error *err) {
  sb_printf(out, "query\trank\tkey\tscore\tlabel\n");
  for (size_t q = 0; q < in->queries->n; q++) {
    const size_t shown = in->found[q] < in->k ? in->found[q] : in->k;
    for (size_t j = 0; j < shown; j++) {
      const knn_hit *h = &in->hits[q * in->stride + j];
      sb_printf(out, "%s\t%zu\t%s\t%.6g\t%d\n", in->queries->keys[q], j + 1,
                in->db->keys[h->index], (double)h->score, in->db->labels[h->index]);
    }
  }
  return out->failed ? crema_fail(err, CREMA_ERR_NOMEM, "out of memory for the TSV listing")
                     : CREMA_OK;
}

/* ---- images --------------------------------------------------------------------------------- */

/* The image of a record: DIR/SOURCE, or DIR/NAME when SOURCE is
 * convert_imageset's "%08d_NAME"; with DIR "", the key is the image's path
 * (queries given as image files). */
static int find_image(const char *dir, const char *key, char *path, size_t size) {
  if (!dir)
    return 0;
  if (!*dir)
    return (size_t)snprintf(path, size, "%s", key) < size && file_exists(path);
  const char *src = feature_key_source(key);
  if ((size_t)snprintf(path, size, "%s/%s", dir, src) < size && file_exists(path))
    return 1;
  const char *us = strchr(src, '_');
  if (us && (size_t)snprintf(path, size, "%s/%s", dir, us + 1) < size && file_exists(path))
    return 1;
  return 0;
}

/* The colour of heat v in [0, 1] on a blue-cyan-yellow-red scale. */
static void heat_colour(float v, unsigned char rgb[3]) {
  const float r = fminf(fmaxf(1.5f - fabsf(4.0f * v - 3.0f), 0.0f), 1.0f);
  const float g = fminf(fmaxf(1.5f - fabsf(4.0f * v - 2.0f), 0.0f), 1.0f);
  const float b = fminf(fmaxf(1.5f - fabsf(4.0f * v - 1.0f), 0.0f), 1.0f);
  rgb[0] = (unsigned char)(255.0f * r);
  rgb[1] = (unsigned char)(255.0f * g);
  rgb[2] = (unsigned char)(255.0f * b);
}

/* Bilinear sample of an hh x hw map at the centre of output pixel (y, x)
 * of an h x w image. */
static float heat_at(const float *heat, int hh, int hw, int y, int x, int h, int w) {
  float fy = ((float)y + 0.5f) * (float)hh / (float)h - 0.5f;
  float fx = ((float)x + 0.5f) * (float)hw / (float)w - 0.5f;
  fy = fminf(fmaxf(fy, 0.0f), (float)(hh - 1));
  fx = fminf(fmaxf(fx, 0.0f), (float)(hw - 1));
  const int y0 = (int)fy, x0 = (int)fx;
  const int y1 = y0 + 1 < hh ? y0 + 1 : y0, x1 = x0 + 1 < hw ? x0 + 1 : x0;
  const float ay = fy - (float)y0, ax = fx - (float)x0;
  const float top = heat[y0 * hw + x0] * (1 - ax) + heat[y0 * hw + x1] * ax;
  const float bot = heat[y1 * hw + x0] * (1 - ax) + heat[y1 * hw + x1] * ax;
  return top * (1 - ay) + bot * ay;
}

/* Blends the heat map over the image, opacity growing with the heat. */
static void overlay_heat(image *img, const float *heat, int hh, int hw) {
  for (int y = 0; y < img->height; y++)
    for (int x = 0; x < img->width; x++) {
      const float v = heat_at(heat, hh, hw, y, x, img->height, img->width);
      unsigned char c[3];
      heat_colour(v, c);
      const float a = 0.25f + 0.45f * v;
      unsigned char *p = img->pixels + ((size_t)y * img->width + x) * 3;
      for (int k = 0; k < 3; k++)
        p[k] = (unsigned char)lrintf((1 - a) * p[k] + a * c[k]);
    }
}

/* A thumbnail of the image at path, fitted into size x size; a grey
 * square when path is NULL or unreadable. */
static crema_status thumbnail(const char *path, int size, image *out, crema_error *err) {
  image src = {0};
  crema_error ignored = {0};
  if (path && image_read_file(path, IMAGE_COLOR, &src, &ignored) == CREMA_OK) {
    const int big = src.width > src.height ? src.width : src.height;
    int w = (int)lrint((double)src.width * size / big), h = (int)lrint((double)src.height * size / big);
    crema_status st = image_resize(&src, w > 0 ? w : 1, h > 0 ? h : 1, out, err);
    image_free(&src);
    return st;
  }
  CREMA_TRY(image_alloc(out, size, size, 3, err));
  memset(out->pixels, 200, (size_t)size * size * 3);
  return CREMA_OK;
}

static void sb_png(strbuf *b, const image *img, const char *cls, const char *alt) {
  unsigned char *png;
  size_t len;
  crema_error e = {0};
  if (image_encode_png(img, &png, &len, &e) != CREMA_OK) {
    b->failed = 1;
    return;
  }
  sb_printf(b, "<img class=\"%s\" width=\"%d\" height=\"%d\" alt=\"", cls, img->width,
            img->height);
  sb_html(b, alt);
  sb_printf(b, "\" src=\"data:image/png;base64,");
  sb_base64(b, png, len);
  sb_printf(b, "\">");
  free(png);
}

/* ---- heat maps ------------------------------------------------------------------------------ */

size_t heat_pool_size(heat_pool pool, size_t c) {
  return pool == HEAT_BILINEAR ? c * c : c;
}

crema_status report_contrib(const float *da, const float *db, const float *xb, size_t c,
                            size_t s, heat_pool pool, float *contrib, crema_error *err) {
  const size_t n = heat_pool_size(pool, c);
  /* P, the pooling of xb, computed as the layers compute it; then
   * w = da o r, the weight of each pooled value in the inner product. */
  float *pw = crema_malloc((n + c * s) * sizeof(float) + 1, err);
  if (!pw)
    return CREMA_ERR_NOMEM;
  float *y = pw + n;
  if (pool == HEAT_BILINEAR) {
    math_gemm(0, 1, (int)c, (int)c, (int)s, 1.0f, xb, xb, 0.0f, pw);
  } else {
    for (size_t i = 0; i < c; i++) {
      double sum = 0.0;
      for (size_t t = 0; t < s; t++)
        sum += xb[i * s + t];
      pw[i] = (float)(sum / (double)s);
    }
  }
  for (size_t k = 0; k < n; k++)
    pw[k] = pw[k] != 0.0f ? da[k] * (db[k] / pw[k]) : 0.0f;
  if (pool == HEAT_BILINEAR) {
    /* c_t = x_t' W x_t: Y = W X, then the column sums of X o Y. */
    math_gemm(0, 0, (int)c, (int)s, (int)c, 1.0f, pw, xb, 0.0f, y);
    for (size_t t = 0; t < s; t++) {
      double h = 0.0;
      for (size_t i = 0; i < c; i++)
        h += (double)xb[i * s + t] * y[i * s + t];
      contrib[t] = (float)h;
    }
  } else {
    for (size_t t = 0; t < s; t++) {
      double h = 0.0;
      for (size_t i = 0; i < c; i++)
        h += (double)pw[i] * xb[i * s + t];
      contrib[t] = (float)(h / (double)s);
    }
  }
  free(pw);
  return CREMA_OK;
}

/* One figure: thumbnail, heat overlay of `heat` (may be NULL), caption. */
static crema_status figure(strbuf *b, const report_input *in, const char *dir, const char *key,
                           const float *heat, const feature_set *hs, const char *cls,
                           const char *caption_html, crema_error *err) {
  char path[4096];
  image img = {0};
  CREMA_TRY(thumbnail(find_image(dir, key, path, sizeof path) ? path : NULL, in->thumb, &img,
                      err));
  sb_printf(b, "<figure class=\"%s\">", cls);
  sb_png(b, &img, "thumb", key);
  if (heat) {
    overlay_heat(&img, heat, hs->height, hs->width);
    sb_png(b, &img, "heat", "heat map");
  }
  image_free(&img);
  sb_printf(b, "<figcaption>%s<br><span class=\"key\">", caption_html);
  sb_html(b, feature_key_source(key));
  sb_printf(b, "</span></figcaption></figure>\n");
  return CREMA_OK;
}

static const char style[] =
    "body{font-family:sans-serif;margin:16px;background:#fafafa;color:#222}"
    "h1{font-size:20px}table.m td{padding:2px 10px}"
    "section{margin:12px 0;padding:8px;background:#fff;border:1px solid #ddd}"
    ".row{display:flex;flex-wrap:wrap;gap:8px;align-items:flex-start}"
    "figure{margin:0;padding:4px;border:3px solid #ccc;text-align:center;font-size:12px}"
    "figure.query{border-color:#246}figure.same{border-color:#2a2}figure.other{border-color:#c33}"
    "img{display:block;margin:0 auto 2px auto}.key{color:#777;font-size:10px}";

static void measures_html(strbuf *b, const retrieval_measures *m) {
  sb_printf(b, "<table class=\"m\"><tr><td>queries</td><td>%zu</td></tr>", m->queries);
  sb_printf(b, "<tr><td>P@1</td><td>%.4f</td></tr><tr><td>P@%zu</td><td>%.4f</td></tr>", m->p1,
            m->k, m->pk);
  sb_printf(b, "<tr><td>mAP</td><td>%.4f</td></tr>", m->map);
  sb_printf(b, "<tr><td>%zu-nearest vote accuracy</td><td>%.4f</td></tr>", m->k,
            m->knn_accuracy);
  if (m->has_auc)
    sb_printf(b, "<tr><td>AUC (malignant)</td><td>%.4f</td></tr>", m->auc);
  sb_printf(b, "</table>\n");
}

static float norm2(const float *v, size_t n) {
  double s = 0.0;
  for (size_t i = 0; i < n; i++)
    s += (double)v[i] * v[i];
  return (float)sqrt(s);
}

/* For display: the positive contributions (the regions that made the pair
 * similar) scaled to a maximum of 1; *sum receives the sum of all. */
static void heat_display(float *h, size_t n, double *sum) {
  float top = 0.0f;
  *sum = 0.0;
  for (size_t t = 0; t < n; t++) {
    *sum += h[t];
    top = fmaxf(top, h[t]);
  }
  for (size_t t = 0; t < n; t++)
    h[t] = top > 0.0f ? fmaxf(h[t], 0.0f) / top : 0.0f;
}

/* Heat maps of one pair (query q, database row) and the sum of the
 * neighbour's contributions (the score's part the maps explain: the
 * pooled part's share of the cosine, or of the inner product for l2);
 * *have is 0 when there are no spatial features. */
static crema_status pair_heats(const report_input *in, size_t q, size_t row, float *hq,
                               float *hd, int *have, double *sum, crema_error *err) {
  *have = 0;
  const feature_set *a = in->query_heat, *d = in->db_heat;
  if (!a || !d || q >= a->n || row >= d->n || a->channels != d->channels)
    return CREMA_OK;
  const size_t c = (size_t)a->channels, sa = a->dim / c, sd = d->dim / c;
  const size_t dim = in->db->dim;
  const float *qa = in->queries->data + q * dim, *db = in->db->data + row * dim;
  const size_t off = in->heat_offset;
  CREMA_TRY(report_contrib(qa + off, db + off, d->data + row * d->dim, c, sd, in->pool, hd, err));
  CREMA_TRY(report_contrib(db + off, qa + off, a->data + q * a->dim, c, sa, in->pool, hq, err));
  float scale = 1.0f;
  if (!strcmp(in->metric, "cosine")) {
    const float nn = norm2(qa, dim) * norm2(db, dim);
    scale = nn > 0.0f ? 1.0f / nn : 0.0f;
  }
  for (size_t t = 0; t < sd; t++)
    hd[t] *= scale;
  for (size_t t = 0; t < sa; t++)
    hq[t] *= scale;
  double qsum;
  heat_display(hd, sd, sum);
  heat_display(hq, sa, &qsum);
  *have = 1;
  return CREMA_OK;
}

static crema_status query_section(strbuf *b, const report_input *in, size_t q, float *hq,
                                  float *hd, crema_error *err) {
  char name[64], cap[512];
  const int ql = in->queries->labels[q];
  sb_printf(b, "<section><div class=\"row\">\n");
  /* The query shows the heat of its first neighbour pair. */
  int have = 0;
  double sum;
  if (in->found[q] > 0)
    CREMA_TRY(pair_heats(in, q, in->hits[q * in->stride].index, hq, hd, &have, &sum, err));
  snprintf(cap, sizeof cap, "<b>query</b><br>%s", label_name(in, ql, name, sizeof name));
  CREMA_TRY(figure(b, in, in->query_images, in->queries->keys[q], have ? hq : NULL,
                   in->query_heat, "query", cap, err));
  const size_t shown = in->found[q] < in->k ? in->found[q] : in->k;
  for (size_t j = 0; j < shown; j++) {
    const knn_hit *h = &in->hits[q * in->stride + j];
    const int l = in->db->labels[h->index];
    CREMA_TRY(pair_heats(in, q, h->index, hq, hd, &have, &sum, err));
    strbuf c = {0};
    sb_printf(&c, "#%zu ", j + 1);
    sb_html(&c, label_name(in, l, name, sizeof name));
    sb_printf(&c, "<br>%s <span class=\"score\">%.6f</span>", in->metric, (double)h->score);
    if (have)
      sb_printf(&c, "<br>map sum <span class=\"heatsum\">%.6f</span>", sum);
    crema_status st = figure(b, in, in->images, in->db->keys[h->index], have ? hd : NULL,
                             in->db_heat, l == ql ? "same" : "other", c.s ? c.s : "", err);
    sb_free(&c);
    CREMA_TRY(st);
  }
  sb_printf(b, "</div></section>\n");
  return CREMA_OK;
}

crema_status report_html(const report_input *in, strbuf *out, crema_error *err) {
  sb_printf(out, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
                 "<title>crema retrieve: similar cases</title><style>%s</style></head><body>\n",
            style);
  sb_printf(out, "<h1>Similar cases</h1><p>%zu database images, %zu queries, %zu nearest by %s "
                 "(green: same diagnosis as the query, red: another).%s</p>\n",
            in->db->n, in->queries->n, in->k, in->metric,
            !in->db_heat ? ""
            : !strcmp(in->metric, "cosine")
                ? " Heat maps: the locations whose features made the pair similar (each "
                  "location's share of the cosine, positive shares shown; the map sum is the "
                  "part of the cosine the pooled features make)."
                : " Heat maps: the locations whose features made the pair similar (each "
                  "location's share of the descriptors' inner product, positive shares shown).");
  if (in->measures)
    measures_html(out, in->measures);
  const size_t hq_n = in->query_heat ? in->query_heat->dim : 1;
  const size_t hd_n = in->db_heat ? in->db_heat->dim : 1;
  float *hq = crema_malloc(hq_n * sizeof(float), err), *hd = crema_malloc(hd_n * sizeof(float), err);
  crema_status st = hq && hd ? CREMA_OK : CREMA_ERR_NOMEM;
  const size_t nq = in->queries->n < in->max_queries ? in->queries->n : in->max_queries;
  const int blas = blas_threads_enter(); /* the heat maps' products */
  for (size_t q = 0; q < nq && st == CREMA_OK; q++)
    st = query_section(out, in, q, hq, hd, err);
  blas_threads_leave(blas);
  free(hq);
  free(hd);
  sb_printf(out, "</body></html>\n");
  if (st == CREMA_OK && out->failed)
    st = crema_fail(err, CREMA_ERR_NOMEM, "out of memory for the HTML page");
  return st;
}
