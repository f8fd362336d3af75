/* crema test: score a model over a number of batches, as `caffe test`. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/common.h"
#include "cli/flags.h"
#include "core/log.h"
#include "graph/net.h"
#include "graph/weights.h"
#include "io/upgrade.h"

typedef struct test_flags {
  const char *model;
  const char *weights;
  const char *stage;
  int iterations;
  int level;
} test_flags;

/* Splits "a,b" into a malloc'd array of pointers into a malloc'd copy. */
static crema_status split_commas(const char *list, char **copy, const char ***items, int *n,
                                 crema_error *err) {
  *copy = crema_strdup(list ? list : "", err);
  if (!*copy)
    return CREMA_ERR_NOMEM;
  size_t cap = 1;
  for (const char *c = *copy; *c; c++)
    cap += *c == ',';
  *items = crema_calloc(cap, sizeof **items, err);
  if (!*items) {
    free(*copy);
    *copy = NULL; /* the caller frees it too */
    return CREMA_ERR_NOMEM;
  }
  *n = 0;
  for (char *s = *copy, *next; s; s = next) {
    next = strchr(s, ',');
    if (next)
      *next++ = '\0';
    if (*s)
      (*items)[(*n)++] = s;
  }
  return CREMA_OK;
}

static crema_status open_test_net(const test_flags *f, net **out, crema_error *err) {
  char *stage_copy = NULL;
  const char **stages = NULL;
  net_options o;
  cli_net_options(&o, CAFFE__PHASE__TEST);
  o.has_level = 1;
  o.level = f->level;
  crema_status st = split_commas(f->stage, &stage_copy, &stages, &o.nstages, err);
  if (st == CREMA_OK) {
    o.stages = stages;
    st = net_open(f->model, f->weights, &o, out, err);
  }
  free(stages);
  free(stage_copy);
  return st;
}

static void log_batch(const net *n, int batch, float *scores) {
  int idx = 0;
  for (int j = 0; j < n->noutputs; j++) {
    const blob *b = n->blobs[n->output_ids[j]];
    for (size_t k = 0; k < b->count; k++, idx++) {
      scores[idx] = batch == 0 ? b->data[k] : scores[idx] + b->data[k];
      LOG_INFO("Batch %d, %s = %g", batch, b->name, (double)b->data[k]);
    }
  }
}

static void log_means(const net *n, int iterations, const float *scores) {
  int idx = 0;
  for (int j = 0; j < n->noutputs; j++) {
    const int id = n->output_ids[j];
    const blob *b = n->blobs[id];
    const float w = n->blob_loss_weight[id];
    for (size_t k = 0; k < b->count; k++, idx++) {
      const float mean = scores[idx] / (float)iterations;
      char loss_msg[96] = "";
      if (w != 0)
        snprintf(loss_msg, sizeof loss_msg, " (* %g = %g loss)", (double)w, (double)(w * mean));
      LOG_INFO("%s = %g%s", b->name, (double)mean, loss_msg);
    }
  }
}

static crema_status score(net *n, int iterations, crema_error *err) {
  size_t nscores = 0;
  for (int j = 0; j < n->noutputs; j++)
    nscores += n->blobs[n->output_ids[j]]->count;
  float *scores = crema_calloc(nscores ? nscores : 1, sizeof(float), err);
  if (!scores)
    return CREMA_ERR_NOMEM;
  LOG_INFO("Running for %d iterations.", iterations);
  float loss = 0;
  crema_status st = CREMA_OK;
  for (int i = 0; i < iterations && st == CREMA_OK; i++) {
    float iter_loss = 0;
    st = net_forward(n, &iter_loss, err);
    if (st == CREMA_OK) {
      loss += iter_loss;
      log_batch(n, i, scores);
    } else {
      crema_error_prefix(err, "batch %d: ", i);
    }
  }
  if (st == CREMA_OK) {
    LOG_INFO("Loss: %g", (double)(loss / (float)iterations));
    log_means(n, iterations, scores);
  }
  free(scores);
  return st;
}

static crema_status test(const test_flags *f, crema_error *err) {
  if (!f->model)
    return crema_fail(err, CREMA_ERR_INVALID, "need a model definition to score (--model)");
  if (!f->weights)
    return crema_fail(err, CREMA_ERR_INVALID, "need model weights to score (--weights)");
  if (f->iterations <= 0)
    return crema_fail(err, CREMA_ERR_INVALID, "--iterations must be > 0, got %d",
                      f->iterations);
  LOG_INFO("Use CPU.");
  net *n = NULL;
  CREMA_TRY(open_test_net(f, &n, err));
  crema_status st = score(n, f->iterations, err);
  net_free(n);
  return st;
}

int cmd_test(int argc, char **argv) {
  test_flags f = {.iterations = 50};
  const flag_spec specs[] = {
      {"model", FLAG_STRING, &f.model, "the model definition (prototxt)"},
      {"weights", FLAG_STRING, &f.weights, "the trained weights (.caffemodel), ','-separated"},
      {"iterations", FLAG_INT, &f.iterations, "the number of batches to run (default 50)"},
      {"level", FLAG_INT, &f.level, "the net's state level (default 0)"},
      {"stage", FLAG_STRING, &f.stage, "the net's stages, separated by ','"},
  };
  const int nspecs = (int)(sizeof specs / sizeof specs[0]);
  int code;
  if (!cli_parse_flags("test", argc, argv, specs, nspecs,
                       "crema test --model NET --weights W [--iterations N]",
                       "Runs the net forward in TEST phase for N batches and reports each "
                       "output per batch and its mean, as `caffe test` does.",
                       &code))
    return code;
  crema_error err = {0};
  if (test(&f, &err) != CREMA_OK)
    return cli_report("test", &err);
  return 0;
}
