/* crema verify: runs a net on reference inputs and compares every blob (and
 * parameter) with reference values, e.g. outputs of BVLC Caffe. */
#include "config.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/common.h"
#include "cli/flags.h"
#include "graph/net.h"
#include "graph/weights.h"
#include "io/blobproto.h"
#include "io/file.h"

/* A reference file: blob <name>.binaryproto|npy, or parameter <layer>.<i>. */
typedef struct ref_entry {
  char *name;
  char *path;
  blob *value;       /* loaded on demand */
  int has_diff;
  int loaded;
} ref_entry;

typedef struct ref_dir {
  ref_entry *v;
  int n;
} ref_dir;

typedef struct verify_tally {
  int passed, failed;
  double tolerance;
} verify_tally;

static void ref_dir_free(ref_dir *d) {
  for (int i = 0; i < d->n; i++) {
    free(d->v[i].name);
    free(d->v[i].path);
    blob_free(d->v[i].value);
  }
  free(d->v);
  d->v = NULL;
  d->n = 0;
}

static int hex_value(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/* File names write '/' as %2F and '%' as %25. */
static void decode_name(const char *s, size_t len, char *out) {
  size_t o = 0;
  for (size_t i = 0; i < len; i++) {
    if (s[i] == '%' && i + 2 < len && hex_value(s[i + 1]) >= 0 && hex_value(s[i + 2]) >= 0) {
      out[o++] = (char)(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
      i += 2;
    } else {
      out[o++] = s[i];
    }
  }
  out[o] = '\0';
}

static int cmp_entries(const void *a, const void *b) {
  return strcmp(((const ref_entry *)a)->name, ((const ref_entry *)b)->name);
}

static int find_entry(const ref_dir *d, const char *name) {
  for (int i = 0; i < d->n; i++)
    if (!strcmp(d->v[i].name, name))
      return i;
  return -1;
}

static crema_status ref_dir_read(const char *dir, ref_dir *d, crema_error *err) {
  memset(d, 0, sizeof *d);
  DIR *dh = opendir(dir);
  if (!dh)
    return crema_fail(err, CREMA_ERR_IO, "%s: cannot open the reference directory", dir);
  int cap = 0;
  crema_status st = CREMA_OK;
  struct dirent *e;
  while ((e = readdir(dh)) && st == CREMA_OK) {
    const char *fn = e->d_name;
    size_t len = strlen(fn), stem;
    int npy = 0;
    if (path_has_suffix(fn, ".binaryproto"))
      stem = len - strlen(".binaryproto");
    else if (path_has_suffix(fn, ".npy"))
      stem = len - strlen(".npy"), npy = 1;
    else
      continue;
    char *name = crema_malloc(stem + 1, err);
    size_t plen = strlen(dir) + 1 + len + 1;
    char *path = crema_malloc(plen, err);
    if (!name || !path) {
      free(name);
      free(path);
      st = CREMA_ERR_NOMEM;
      break;
    }
    decode_name(fn, stem, name);
    snprintf(path, plen, "%s/%s", dir, fn);
    int k = find_entry(d, name);
    if (k >= 0) {
      /* Both forms present: the BlobProto wins (it may carry a diff). */
      if (!npy) {
        free(d->v[k].path);
        d->v[k].path = path;
      } else {
        free(path);
      }
      free(name);
      continue;
    }
    if (d->n == cap) {
      int ncap = cap ? cap * 2 : 32;
      ref_entry *v = realloc(d->v, (size_t)ncap * sizeof *v);
      if (!v) {
        free(name);
        free(path);
        st = crema_fail(err, CREMA_ERR_NOMEM, "out of memory listing %s", dir);
        break;
      }
      d->v = v;
      cap = ncap;
    }
    d->v[d->n++] = (ref_entry){.name = name, .path = path};
  }
  closedir(dh);
  if (st != CREMA_OK) {
    ref_dir_free(d);
    return st;
  }
  if (d->n > 1)
    qsort(d->v, (size_t)d->n, sizeof *d->v, cmp_entries);
  return CREMA_OK;
}

static crema_status ref_load(ref_entry *e, crema_error *err) {
  if (e->loaded)
    return CREMA_OK;
  if (!e->value && !(e->value = blob_create(e->name, err)))
    return CREMA_ERR_NOMEM;
  CREMA_TRY(blob_read_file(e->path, e->value, &e->has_diff, err));
  e->loaded = 1;
  return CREMA_OK;
}

static void report_failure(verify_tally *t, const char *name, const char *what,
                           const char *reason) {
  printf("%s %s FAIL (%s)\n", name, what, reason);
  t->failed++;
}

/* One comparison line: max_abs, rel = max_abs / max|ref| (max_abs when the
 * reference is all zeros), ok when rel <= tolerance. */
static void compare_values(verify_tally *t, const char *name, const char *what,
                           const blob *ours_shape, const float *ours, const blob *ref,
                           const float *refv) {
  char s1[128], s2[128], reason[320];
  if (!blob_same_shape(ours_shape, ref)) {
    snprintf(reason, sizeof reason, "shape %s, reference %s",
             blob_shape_string(ours_shape, s1, sizeof s1), blob_shape_string(ref, s2, sizeof s2));
    report_failure(t, name, what, reason);
    return;
  }
  if (!ours) {
    report_failure(t, name, what, "the net holds no values for it");
    return;
  }
  double max_abs = 0, max_ref = 0;
  int nan = 0;
  for (size_t k = 0; k < ref->count; k++) {
    double d = fabs((double)ours[k] - (double)refv[k]);
    if (isnan(d))
      nan = 1;
    else if (d > max_abs)
      max_abs = d;
    double r = fabs((double)refv[k]);
    if (r > max_ref)
      max_ref = r;
  }
  if (nan)
    max_abs = NAN;
  double rel = max_ref > 0 ? max_abs / max_ref : max_abs;
  int ok = rel <= t->tolerance;
  printf("%s %s %s max_abs=%.3g rel=%.3g %s\n", name, what,
         blob_shape_string(ref, s1, sizeof s1), max_abs, rel, ok ? "ok" : "FAIL");
  if (ok)
    t->passed++;
  else
    t->failed++;
}

static int is_input(const net *n, int id) {
  for (int k = 0; k < n->ninputs; k++)
    if (n->input_ids[k] == id)
      return 1;
  return 0;
}

static crema_status feed_inputs(net *n, ref_dir *d, verify_tally *t, crema_error *err) {
  for (int k = 0; k < n->ninputs; k++) {
    blob *in = n->blobs[n->input_ids[k]];
    int e = find_entry(d, in->name);
    if (e < 0) {
      report_failure(t, in->name, "data", "input missing from the reference directory");
      continue;
    }
    CREMA_TRY(ref_load(&d->v[e], err));
    const blob *r = d->v[e].value;
    CREMA_TRY(blob_reshape(in, r->num_axes, r->shape, err));
    memcpy(in->data, r->data, r->count * sizeof(float));
  }
  return net_reshape(n, err);
}

static crema_status compare_blobs(net *n, ref_dir *d, int diffs, verify_tally *t,
                                  crema_error *err) {
  for (int e = 0; e < d->n; e++) {
    ref_entry *re = &d->v[e];
    int id = net_blob_index(n, re->name);
    if (!diffs && id >= 0 && is_input(n, id))
      continue;
    if (id < 0) {
      if (!diffs)
        report_failure(t, re->name, "data", "no blob of that name in the net");
      continue;
    }
    CREMA_TRY(ref_load(re, err));
    const blob *b = n->blobs[id];
    if (!diffs)
      compare_values(t, re->name, "data", b, b->data, re->value, re->value->data);
    else if (re->has_diff)
      compare_values(t, re->name, "diff", b, b->diff, re->value, re->value->diff);
  }
  return CREMA_OK;
}

/* "<layer>.<i>" -> the parameter blob, or NULL with a reason. */
static blob *param_by_entry(const net *n, const char *name, char *reason, size_t size) {
  const char *dot = strrchr(name, '.');
  if (!dot || !dot[1]) {
    snprintf(reason, size, "parameter files are named <layer>.<index>");
    return NULL;
  }
  char *end;
  long idx = strtol(dot + 1, &end, 10);
  if (*end || idx < 0) {
    snprintf(reason, size, "parameter files are named <layer>.<index>");
    return NULL;
  }
  char layer_name[1024];
  size_t len = (size_t)(dot - name);
  if (len >= sizeof layer_name) {
    snprintf(reason, size, "layer name too long");
    return NULL;
  }
  memcpy(layer_name, name, len);
  layer_name[len] = '\0';
  int li = net_layer_index(n, layer_name);
  if (li < 0) {
    snprintf(reason, size, "no layer '%s' in the net", layer_name);
    return NULL;
  }
  if (idx >= n->layers[li]->nblobs) {
    snprintf(reason, size, "layer '%s' has %d parameter blobs", layer_name,
             n->layers[li]->nblobs);
    return NULL;
  }
  return n->layers[li]->blobs[idx];
}

static crema_status compare_params(net *n, ref_dir *d, int diffs, verify_tally *t,
                                   crema_error *err) {
  for (int e = 0; e < d->n; e++) {
    ref_entry *re = &d->v[e];
    char reason[1200];
    blob *p = param_by_entry(n, re->name, reason, sizeof reason);
    if (!p) {
      if (!diffs)
        report_failure(t, re->name, "data", reason);
      continue;
    }
    CREMA_TRY(ref_load(re, err));
    if (!diffs)
      compare_values(t, re->name, "data", p, p->data, re->value, re->value->data);
    else if (re->has_diff)
      compare_values(t, re->name, "diff", p, p->diff, re->value, re->value->diff);
  }
  return CREMA_OK;
}

/* Output diffs given by the reference start the backward pass; losses
 * start from their loss weight. */
static crema_status seed_output_diffs(net *n, ref_dir *d, crema_error *err) {
  for (int k = 0; k < n->noutputs; k++) {
    int id = n->output_ids[k];
    blob *b = n->blobs[id];
    if (n->blob_loss_weight[id] != 0.0f || !b->diff)
      continue;
    int e = find_entry(d, b->name);
    if (e < 0)
      continue;
    CREMA_TRY(ref_load(&d->v[e], err));
    const blob *r = d->v[e].value;
    if (d->v[e].has_diff && r->count == b->count)
      memcpy(b->diff, r->diff, b->count * sizeof(float));
  }
  return CREMA_OK;
}

typedef struct verify_flags {
  const char *model, *weights, *reference, *params, *phase;
  int backward;
  double tolerance;
} verify_flags;

static crema_status open_net(const verify_flags *f, net **out, crema_error *err) {
  Caffe__Phase phase;
  CREMA_TRY(cli_parse_phase(f->phase, &phase, err));
  net_options opts;
  cli_net_options(&opts, phase);
  opts.backward = f->backward;
  opts.keep_all = 1;
  return net_open(f->model, f->weights, &opts, out, err);
}

static crema_status run_verify(const verify_flags *f, verify_tally *t, crema_error *err) {
  net *n = NULL;
  ref_dir blobs = {0}, params = {0};
  crema_status st = open_net(f, &n, err);
  if (st == CREMA_OK)
    st = ref_dir_read(f->reference, &blobs, err);
  if (st == CREMA_OK && f->params)
    st = ref_dir_read(f->params, &params, err);
  /* Parameters as loaded: forward may change some (BatchNorm statistics). */
  if (st == CREMA_OK)
    st = compare_params(n, &params, 0, t, err);
  if (st == CREMA_OK)
    st = feed_inputs(n, &blobs, t, err);
  if (st == CREMA_OK)
    st = net_forward(n, NULL, err);
  if (st == CREMA_OK)
    st = compare_blobs(n, &blobs, 0, t, err);
  if (st == CREMA_OK && f->backward) {
    st = seed_output_diffs(n, &blobs, err);
    if (st == CREMA_OK)
      st = net_backward(n, err);
    if (st == CREMA_OK)
      st = compare_blobs(n, &blobs, 1, t, err);
    if (st == CREMA_OK)
      st = compare_params(n, &params, 1, t, err);
  }
  ref_dir_free(&blobs);
  ref_dir_free(&params);
  net_free(n);
  return st;
}

int cmd_verify(int argc, char **argv) {
  verify_flags f = {.phase = "test", .tolerance = 1e-4};
  const flag_spec specs[] = {
      {"model", FLAG_STRING, &f.model, "the net definition (.prototxt)"},
      {"weights", FLAG_STRING, &f.weights, "weights (.caffemodel), comma-separated list allowed"},
      {"reference", FLAG_STRING, &f.reference,
       "directory of reference blobs <blob>.binaryproto|npy ('/' written %2F, '%' as %25)"},
      {"params", FLAG_STRING, &f.params,
       "directory of reference parameters <layer>.<i>.binaryproto|npy"},
      {"backward", FLAG_BOOL, &f.backward, "also run backward and compare diffs"},
      {"phase", FLAG_STRING, &f.phase, "train or test (default test)"},
      {"tolerance", FLAG_DOUBLE, &f.tolerance,
       "largest accepted max|ours - ref| / max|ref| (default 1e-4)"},
  };
  const int nspecs = (int)(sizeof specs / sizeof specs[0]);
  int code;
  if (!cli_parse_flags("verify", argc, argv, specs, nspecs,
                       "crema verify --model NET.prototxt [--weights W.caffemodel] "
                       "--reference DIR [--params DIR] [--backward] [--phase train|test] "
                       "[--tolerance T]",
                       "Feeds the Input blobs from DIR, runs forward (and backward), and compares "
                       "every blob of DIR.\nPrints one line per comparison and 'N passed, N "
                       "failed'; exits 0 only when nothing failed.",
                       &code))
    return code;
  crema_error err = {0};
  if (!f.model || !f.reference) {
    crema_fail(&err, CREMA_ERR_INVALID, "--model and --reference are required (see --help)");
    return cli_report("verify", &err);
  }
  verify_tally t = {.tolerance = f.tolerance};
  if (run_verify(&f, &t, &err) != CREMA_OK) {
    fflush(stdout);
    return cli_report("verify", &err);
  }
  printf("%d passed, %d failed\n", t.passed, t.failed);
  return t.failed ? 1 : 0;
}
